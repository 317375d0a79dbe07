//! `NoteDeltaList`: a page of `syncNotes`.

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        delta,
        delta_list,
        ..
    } = g;
    let (ident, vis) = (model.ident, model.vis);
    let name = format!("{}DeltaList", g.type_name);
    let doc = format!("A page of changes to {} (`sync{}`).", g.plural, g.plural);
    quote! {
        #[doc = #doc]
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #name, crate = #ag_crate)]
        #vis struct #delta_list {
            /// Changed records in change order, deletions included.
            pub items: ::std::vec::Vec<#delta>,
            /// Pass this as `lastSync` next time.
            #[graphql(name = "lastSync")]
            pub last_sync: ::std::string::String,
            /// The page size used.
            pub limit: ::core::option::Option<i64>,
            /// More changes are waiting: sync again now with `lastSync`.
            #[graphql(name = "hasMore")]
            pub has_more: bool,
        }

        impl ::core::convert::From<#rt::Delta<#ident>> for #delta_list {
            fn from(delta: #rt::Delta<#ident>) -> Self {
                #delta_list {
                    items: delta.items.into_iter().map(#delta::from).collect(),
                    last_sync: ::std::string::ToString::to_string(&delta.last_sync),
                    limit: ::core::option::Option::Some(i64::from(delta.limit)),
                    has_more: delta.has_more,
                }
            }
        }
    }
}
