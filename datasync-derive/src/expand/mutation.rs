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
        }
    }
}
