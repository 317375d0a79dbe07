//! `NoteMutation`: `createNote`, `updateNote`, `deleteNote`, to merge into the user's Mutation.

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
        create_input,
        mutate_input,
        mutation,
        ..
    } = g;
    let (ident, vis) = (model.ident, model.vis);
    let (create, update, delete) = (
        g.op("create", false),
        g.op("update", false),
        g.op("delete", false),
    );
    let doc = format!(
        "The mutations of {}: `{create}`, `{update}`, `{delete}`. Merge it into your Mutation \
         with `MergedObject`.",
        g.type_name
    );
    let create_doc = format!("Creates a {} (version 1).", g.type_name);
    let update_doc = format!(
        "Changes a {}. `_version` must be the stored one, or the conflict strategy decides.",
        g.type_name
    );
    let delete_doc = format!(
        "Deletes a {}: it becomes a tombstone that `sync{}` reports with `_deleted: true`.",
        g.type_name, g.plural
    );
    let push = g.rx.enabled.then(|| {
        let (document, push_row) = (&g.rx.document, &g.rx.push_row);
        let name = g.op("push", false);
        let argument = format!("{}PushRow", crate::naming::lower_first(&g.type_name));
        let doc = format!(
            "RxDB replication: applies each row (a change based on `assumedMasterState`'s \
             `version`, or a new {}), and answers the current state of every row that \
             conflicted.",
            g.type_name
        );
        quote! {
            #[doc = #doc]
            #[graphql(name = #name)]
            async fn push(
                &self,
                ctx: &#ag::Context<'_>,
                #[graphql(name = #argument)] rows: ::core::option::Option<::std::vec::Vec<#push_row>>,
            ) -> #ag::Result<::std::vec::Vec<#document>> {
                let rows = rows
                    .unwrap_or_default()
                    .into_iter()
                    .map(#push_row::into_row)
                    .collect::<#rt::Result<::std::vec::Vec<_>>>()
                    .map_err(|e| #ag::ErrorExtensions::extend(&e))?;
                let masters = #rt::resolve::push::<#ident>(ctx, rows).await?;
                ::core::result::Result::Ok(masters.into_iter().map(#document::from).collect())
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::default::Default, ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #mutation;

        #[#ag::Object(crate = #ag_crate)]
        impl #mutation {
            #[doc = #create_doc]
            #[graphql(name = #create)]
            async fn create(&self, ctx: &#ag::Context<'_>, input: #create_input) -> #ag::Result<#object> {
                ::core::result::Result::Ok(#object::from(#rt::resolve::create::<#ident>(ctx, input).await?))
            }

            #[doc = #update_doc]
            #[graphql(name = #update)]
            async fn update(&self, ctx: &#ag::Context<'_>, input: #mutate_input) -> #ag::Result<#object> {
                ::core::result::Result::Ok(#object::from(#rt::resolve::update::<#ident>(ctx, input).await?))
            }

            #[doc = #delete_doc]
            #[graphql(name = #delete)]
            async fn delete(&self, ctx: &#ag::Context<'_>, input: #mutate_input) -> #ag::Result<#object> {
                ::core::result::Result::Ok(#object::from(#rt::resolve::delete::<#ident>(ctx, input).await?))
            }

            #push
        }
    }
}
