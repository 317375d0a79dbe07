//! The GraphQL output type `Note`: data fields plus server-owned metadata.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    output_type(g, &g.object, &g.type_name, false)
}

/// Shared by `Note` and `NoteDelta` (which adds `_deleted`).
pub fn output_type(g: &Gen<'_>, ident: &syn::Ident, gql_name: &str, deleted: bool) -> TokenStream {
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        ..
    } = g;
    let model_ident = model.ident;
    let vis = model.vis;
    let docs = &model.docs;
    let idents: Vec<_> = g.data.iter().map(|f| f.ident).collect();
    let fields = g.data.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: #ty,)
    });
    let id_ident = g.id.ident;
    let id_ty = g.id.ty;
    // Spanned at the id's type, like every other use: a wrong id type is reported once.
    let id_as = quote_spanned!(id_ty.span()=> <#id_ty as #rt::IdField>::as_id);
    let (deleted_field, deleted_value) = if deleted {
        (
            quote!(
                /// `true` if the record was deleted: drop it from the local copy.
                #[graphql(name = "_deleted")]
                pub _deleted: bool,
            ),
            quote!(_deleted: __datasync_meta.deleted,),
        )
    } else {
        (quote!(), quote!())
    };
    let doc = if deleted {
        format!(
            "A change to a {}: its new state, or a tombstone when `_deleted` is true.",
            g.type_name
        )
    } else {
        String::new()
    };
    let doc_attr = if deleted {
        quote!(#[doc = #doc])
    } else {
        quote!(#(#docs)*)
    };
    quote! {
        #doc_attr
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #gql_name, crate = #ag_crate)]
        #vis struct #ident {
            /// The record id.
            pub id: #ag::ID,
            #(#fields)*
            /// Server-owned version: 1 on create, +1 on every write. Send it back on update
            /// and delete.
            #[graphql(name = "_version")]
            pub _version: i64,
            /// When the record was created, in milliseconds since the Unix epoch.
            #[graphql(name = "createdAt")]
            pub _created_at: ::std::string::String,
            /// When the record last changed, in milliseconds since the Unix epoch.
            #[graphql(name = "updatedAt")]
            pub _updated_at: ::std::string::String,
            #deleted_field
        }

        impl ::core::convert::From<#rt::Record<#model_ident>> for #ident {
            fn from(__datasync_record: #rt::Record<#model_ident>) -> Self {
                // Split first: the model's own field names must not shadow anything used below.
                let #rt::Record { data: __datasync_data, meta: __datasync_meta } = __datasync_record;
                let #model_ident { #id_ident, #(#idents,)* } = __datasync_data;
                #ident {
                    id: #ag::ID(::std::string::ToString::to_string(#id_as(&#id_ident))),
                    #(#idents,)*
                    _version: __datasync_meta.version,
                    _created_at: #rt::millis_text(__datasync_meta.created_at),
                    _updated_at: #rt::millis_text(__datasync_meta.updated_at),
                    #deleted_value
                }
            }
        }
    }
}
