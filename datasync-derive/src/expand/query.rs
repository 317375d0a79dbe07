//! `NoteQuery`: `getNote`, `findNotes`, `syncNotes`, to merge into the user's Query.

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        object,
        result_list,
        delta_list,
        filter,
        query,
        ..
    } = g;
    let (ident, vis) = (model.ident, model.vis);
    let (get, find, sync) = (g.op("get", false), g.op("find", true), g.op("sync", true));
    let doc = format!(
        "The queries of {}: `{get}`, `{find}`, `{sync}`. Merge it into your Query with \
         `MergedObject`.",
        g.type_name
    );
    let get_doc = format!(
        "The {} with this id, or null (deleted records are not returned).",
        g.type_name
    );
    let find_doc = format!(
        "{} matching `filter`, ordered by `orderBy` (default: id), paged by `page`.",
        g.plural
    );
    let sync_doc = format!(
        "Changes to {} after `lastSync` (\"0\" for everything), deletions included, in change \
         order. While `hasMore` is true, call again with the returned `lastSync`.",
        g.plural
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::default::Default, ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #query;

        #[#ag::Object(crate = #ag_crate)]
        impl #query {
            #[doc = #get_doc]
            #[graphql(name = #get)]
            async fn get(
                &self,
                ctx: &#ag::Context<'_>,
                id: #ag::ID,
            ) -> #ag::Result<::core::option::Option<#object>> {
                let run = async {
                    let repo = #rt::repository::<#ident>(ctx)?;
                    ::core::result::Result::Ok::<_, #rt::DataSyncError>(
                        repo.get(&id).await?.map(#object::from),
                    )
                };
                run.await.map_err(|e| #ag::ErrorExtensions::extend(&e))
            }

            #[doc = #find_doc]
            #[graphql(name = #find)]
            async fn find(
                &self,
                ctx: &#ag::Context<'_>,
                filter: ::core::option::Option<#filter>,
                page: ::core::option::Option<#rt::PageRequest>,
                #[graphql(name = "orderBy")] order_by: ::core::option::Option<#rt::OrderByInput>,
            ) -> #ag::Result<#result_list> {
                let run = async {
                    let repo = #rt::repository::<#ident>(ctx)?;
                    let page = repo.find(filter.as_ref(), page, order_by.as_ref()).await?;
                    ::core::result::Result::Ok::<_, #rt::DataSyncError>(#result_list::from(page))
                };
                run.await.map_err(|e| #ag::ErrorExtensions::extend(&e))
            }

            #[doc = #sync_doc]
            #[graphql(name = #sync)]
            async fn sync(
                &self,
                ctx: &#ag::Context<'_>,
                #[graphql(name = "lastSync")] last_sync: ::std::string::String,
                filter: ::core::option::Option<#filter>,
                limit: ::core::option::Option<i32>,
            ) -> #ag::Result<#delta_list> {
                let run = async {
                    let since = #rt::SyncToken::parse(&last_sync)?;
                    let limit = #rt::sync_limit(limit)?;
                    let repo = #rt::repository::<#ident>(ctx)?;
                    let delta = repo.sync(since, filter.as_ref(), limit).await?;
                    ::core::result::Result::Ok::<_, #rt::DataSyncError>(#delta_list::from(delta))
                };
                run.await.map_err(|e| #ag::ErrorExtensions::extend(&e))
            }
        }
    }
}
