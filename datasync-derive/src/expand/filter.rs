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
    // Each field's input is named through the model (`FieldFilter<Note, I>`), so the
    // filter type is well-formed whatever the field type is; an unfilterable type is
    // reported once, by the `FilterableField` impl, at the field's type.
    let filterable: Vec<_> = g.filterable().collect();
    let impls = filterable.iter().map(|(index, f)| {
        let (ident, ty) = (model.ident, f.ty);
        let field = quote_spanned!(ty.span()=> type Type = #ty;);
        quote!(impl #rt::FilterableField<#index> for #ident { #field })
    });
    let fields = filterable.iter().map(|(index, f)| {
        let (ident, name, docs, model) = (f.ident, &f.name, &f.docs, model.ident);
        quote! {
            #(#docs)*
            #[graphql(name = #name)]
            pub #ident: ::core::option::Option<#rt::FieldFilter<#model, #index>>,
        }
    });
    let conditions = filterable.iter().map(|(_, f)| {
        let (ident, name) = (f.ident, &f.name);
        let path = format!("filter.{name}");
        quote! {
            if let ::core::option::Option::Some(input) = &self.#ident {
                all.push(input.to_filter(#name, #path)?);
            }
        }
    });
    let weights = filterable.iter().map(|(_, f)| {
        let ident = f.ident;
        quote! {
            if let ::core::option::Option::Some(input) = &self.#ident {
                w = w.saturating_add(input.weight());
            }
        }
    });
    quote! {
        #(#impls)*

        #[doc = #doc]
        #[derive(#ag::InputObject, ::core::default::Default, ::core::clone::Clone, ::core::fmt::Debug)]
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

            fn weight(&self) -> usize {
                let mut w: usize = 1;
                if let ::core::option::Option::Some(input) = &self.id {
                    w = w.saturating_add(#rt::FilterInput::weight(input));
                }
                #(#weights)*
                for filters in [&self.and, &self.or].into_iter().flatten() {
                    for f in filters {
                        w = w.saturating_add(#rt::ModelFilter::weight(f));
                    }
                }
                if let ::core::option::Option::Some(filter) = &self.not {
                    w = w.saturating_add(#rt::ModelFilter::weight(&**filter));
                }
                w
            }
        }
    }
}
