//! `CreateNoteInput`: optional id plus the model fields (non-`Option` ones required).

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        ag,
        ag_crate,
        model,
        create_input,
        ..
    } = g;
    let vis = model.vis;
    let name = format!("Create{}Input", g.type_name);
    let doc = format!("Input of `create{}`.", g.type_name);
    let fields = g.inputs.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: #ty,)
    });
    quote! {
        #[doc = #doc]
        #[derive(#ag::InputObject)]
        #[graphql(name = #name, crate = #ag_crate)]
        #vis struct #create_input {
            /// Client-chosen id (offline clients generate their own); the server generates
            /// one when it is omitted.
            pub id: ::core::option::Option<#ag::ID>,
            #(#fields)*
        }
    }
}
