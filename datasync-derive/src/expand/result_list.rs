//! `NoteResultList`: a page of `findNotes`.

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
        ..
    } = g;
    let (ident, vis) = (model.ident, model.vis);
    let name = format!("{}ResultList", g.type_name);
    let doc = format!("A page of {} (`find{}`).", g.plural, g.plural);
    quote! {
        #[doc = #doc]
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #name, crate = #ag_crate)]
        #vis struct #result_list {
            /// The records of this page.
            pub items: ::std::vec::Vec<#object>,
            /// The requested offset.
            pub offset: ::core::option::Option<i64>,
            /// The requested limit.
            pub limit: ::core::option::Option<i64>,
            /// How many records match the filter, ignoring the page.
            pub count: ::core::option::Option<i64>,
        }

        impl ::core::convert::From<#rt::Page<#ident>> for #result_list {
            fn from(page: #rt::Page<#ident>) -> Self {
                #result_list {
                    items: page.items.into_iter().map(#object::from).collect(),
                    offset: page.offset.map(i64::from),
                    limit: page.limit.map(i64::from),
                    count: ::core::option::Option::Some(i64::try_from(page.count).unwrap_or(i64::MAX)),
                }
            }
        }
    }
}
