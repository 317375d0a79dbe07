//! `NoteFilter`: one input per filterable field, plus `and`, `or`, `not`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        filter,
        ..
    } = g;
    let vis = model.vis;
    let name = format!("{}Filter", g.type_name);
    let doc = format!(
        "Which {} to return; all conditions given must hold.",
        g.plural
    );
    let filterable: Vec<_> = g
        .data
        .iter()
        .filter(|f| f.attrs.skip_filter.is_none())
        .collect();
    let fields = filterable.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        let input = quote_spanned!(ty.span()=> <#ty as #rt::Filterable>::Input);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: ::core::option::Option<#input>,)
    });
    let conditions = filterable.iter().map(|f| {
        let (ident, ty, name) = (f.ident, f.ty, &f.name);
        let path = format!("filter.{name}");
        // Spanned at the field's type, like every other use: an unfilterable type is
        // reported once, there.
        let kind = quote_spanned!(ty.span()=> <#ty as #rt::Filterable>::KIND);
        quote! {
            if let ::core::option::Option::Some(input) = &self.#ident {
                all.push(#rt::FilterInput::to_filter(
                    input,
                    #rt::FieldRef::Data { name: #name, kind: #kind },
                    #path,
                )?);
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(#ag::InputObject, ::core::default::Default)]
        #[graphql(name = #name, crate = #ag_crate)]
        #vis struct #filter {
            /// Conditions on the id.
            pub id: ::core::option::Option<#rt::IDInput>,
            #(#fields)*
            /// Every one of these filters holds.
            pub and: ::core::option::Option<::std::vec::Vec<#filter>>,
            /// At least one of these filters holds (an empty list adds no condition).
            pub or: ::core::option::Option<::std::vec::Vec<#filter>>,
            /// This filter does not hold.
            pub not: ::core::option::Option<::std::boxed::Box<#filter>>,
        }

        impl #rt::ModelFilter for #filter {
            fn to_filter(&self) -> #rt::Result<#rt::Filter> {
                let mut all = ::std::vec::Vec::new();
                if let ::core::option::Option::Some(input) = &self.id {
                    all.push(#rt::FilterInput::to_filter(input, #rt::FieldRef::Id, "filter.id")?);
                }
                #(#conditions)*
                if let ::core::option::Option::Some(filters) = &self.and {
                    let parts = filters.iter().map(#rt::ModelFilter::to_filter).collect::<#rt::Result<_>>()?;
                    all.push(#rt::Filter::all_of(parts));
                }
                if let ::core::option::Option::Some(filters) = &self.or {
                    let parts = filters.iter().map(#rt::ModelFilter::to_filter).collect::<#rt::Result<_>>()?;
                    all.push(#rt::Filter::any_of(parts));
                }
                if let ::core::option::Option::Some(filter) = &self.not {
                    all.push(#rt::Filter::Not(::std::boxed::Box::new(filter.to_filter()?)));
                }
                ::core::result::Result::Ok(#rt::Filter::all_of(all))
            }
        }
    }
}
