//! `MutateNoteInput`: a patch. Omitted fields stay; `null` clears an `Option` field.

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        ag,
        ag_crate,
        model,
        mutate_input,
        ..
    } = g;
    let vis = model.vis;
    let name = format!("Mutate{}Input", g.type_name);
    let doc = format!(
        "Input of `update{0}` and `delete{0}`: the id, the `_version` the change is based on, \
         and the fields to change (omitted fields stay as they are; `null` clears an optional field).",
        g.type_name
    );
    let fields = g.inputs.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: #ag::MaybeUndefined<#ty>,)
    });
    quote! {
        #[doc = #doc]
        #[derive(#ag::InputObject, ::core::default::Default)]
        #[graphql(name = #name, crate = #ag_crate)]
        #vis struct #mutate_input {
            /// Which record.
            pub id: #ag::ID,
            #(#fields)*
            /// The `_version` this change is based on (the last one the client saw).
            #[graphql(name = "_version")]
            pub _version: i64,
        }
    }
}
