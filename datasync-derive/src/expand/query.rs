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
    let pull = g.rx.enabled.then(|| {
        let (pull_bulk, input_checkpoint) = (&g.rx.pull_bulk, &g.rx.input_checkpoint);
        let name = g.op("pull", false);
        let doc = format!(
            "RxDB replication: changes to {} after `checkpoint` (null: from the beginning), at \
             most `limit` (1..=1000).",
            g.plural
        );
        quote! {
            #[doc = #doc]
            #[graphql(name = #name, complexity = "::datasync::__private::sync_cost(&::core::option::Option::Some(limit), child_complexity)")]
            async fn pull(
                &self,
                ctx: &#ag::Context<'_>,
                checkpoint: ::core::option::Option<#input_checkpoint>,
                limit: i32,
            ) -> #ag::Result<#pull_bulk> {
                let checkpoint = checkpoint.map(|c| c.last_sync);
                let bulk = #rt::resolve::pull::<#ident>(ctx, checkpoint.as_deref(), limit).await?;
                ::core::result::Result::Ok(#pull_bulk::from(bulk))
            }
        }
    });
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
                ::core::result::Result::Ok(#rt::resolve::get::<#ident>(ctx, &id).await?.map(#object::from))
            }

            #[doc = #find_doc]
            #[graphql(name = #find, complexity = "::datasync::__private::find_cost(&page, child_complexity)")]
            async fn find(
                &self,
                ctx: &#ag::Context<'_>,
                filter: ::core::option::Option<#filter>,
                page: ::core::option::Option<#rt::PageRequest>,
                #[graphql(name = "orderBy")] order_by: ::core::option::Option<#rt::OrderByInput>,
            ) -> #ag::Result<#result_list> {
                let page = #rt::resolve::find::<#ident>(ctx, filter.as_ref(), page, order_by.as_ref()).await?;
                ::core::result::Result::Ok(#result_list::from(page))
            }

            #[doc = #sync_doc]
            #[graphql(name = #sync, complexity = "::datasync::__private::sync_cost(&limit, child_complexity)")]
            async fn sync(
                &self,
                ctx: &#ag::Context<'_>,
                #[graphql(name = "lastSync")] last_sync: ::std::string::String,
                filter: ::core::option::Option<#filter>,
                limit: ::core::option::Option<i32>,
            ) -> #ag::Result<#delta_list> {
                let delta = #rt::resolve::sync::<#ident>(ctx, &last_sync, filter.as_ref(), limit).await?;
                ::core::result::Result::Ok(#delta_list::from(delta))
            }

            #pull
        }
    }
}
