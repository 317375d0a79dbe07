//! `impl Model for Note` (with its static spec) and `Note::repository`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen { rt, model, .. } = g;
    let ident = model.ident;
    let vis = model.vis;
    let (create, mutate, filter) = (&g.create_input, &g.mutate_input, &g.filter);
    let (type_name, plural, collection) = (&g.type_name, &g.plural, model.collection());
    let id_ident = g.id.ident;
    let id_ty = g.id.ty;
    let id_from = quote_spanned!(id_ty.span()=> <#id_ty as #rt::IdField>::from_id);
    let id_as = quote_spanned!(id_ty.span()=> <#id_ty as #rt::IdField>::as_id);
    // `check` accepted only names from CONFLICT_STRATEGIES; each names a runtime type.
    let strategy = crate::attr::strategy_type(&model.conflict());
    let conflict = quote!(#rt::#strategy);

    let specs = g.data.iter().enumerate().map(|(index, f)| {
        let name = &f.name;
        let kind = if f.attrs.skip_filter.is_some() {
            quote!(::core::option::Option::None)
        } else {
            quote!(::core::option::Option::Some(#rt::FieldFilter::<#ident, #index>::KIND))
        };
        quote!(#rt::FieldSpec { name: #name, filter: #kind })
    });
    let names: Vec<_> = g.data.iter().map(|f| &f.name).collect();
    let idents: Vec<_> = g.data.iter().map(|f| f.ident).collect();
    // What a client may set: every data field but the owner.
    let input_names: Vec<_> = g.inputs.iter().map(|f| &f.name).collect();
    let input_idents: Vec<_> = g.inputs.iter().map(|f| f.ident).collect();
    let rules = rules(g);
    let owner_check = g.owner.map(|owner| {
        let ty = owner.ty;
        let check = quote_spanned!(ty.span()=> owner_is_text::<#ty>);
        quote! {
            const _: () = {
                fn owner_is_text<T: #rt::OwnerField>() {}
                let _ = #check;
            };
        }
    });

    quote! {
        impl #rt::Model for #ident {
            type Create = #create;
            type Mutate = #mutate;
            type Filter = #filter;

            fn spec() -> &'static #rt::ModelSpec {
                static SPEC: #rt::ModelSpec = #rt::ModelSpec {
                    type_name: #type_name,
                    plural: #plural,
                    collection: #collection,
                    fields: &[#(#specs),*],
                    conflict: &#conflict,
                    rules: #rules,
                };
                &SPEC
            }

            fn to_document(&self) -> #rt::Result<(::std::string::String, #rt::Document)> {
                let mut doc = #rt::Document::new();
                #( #rt::put_field(&mut doc, #names, &self.#idents)?; )*
                ::core::result::Result::Ok((::std::string::ToString::to_string(#id_as(&self.#id_ident)), doc))
            }

            fn from_document(
                id: ::std::string::String,
                mut data: #rt::Document,
            ) -> ::core::result::Result<Self, #rt::FieldError> {
                ::core::result::Result::Ok(#ident {
                    #id_ident: #id_from(id),
                    #( #idents: #rt::take_field(&mut data, #names)?, )*
                })
            }

            fn create_parts(
                input: #create,
            ) -> #rt::Result<(::core::option::Option<::std::string::String>, #rt::Document)> {
                let mut doc = #rt::Document::new();
                #( #rt::put_field(&mut doc, #input_names, &input.#input_idents)?; )*
                ::core::result::Result::Ok((input.id.map(|id| id.0), doc))
            }

            fn mutate_parts(input: #mutate) -> #rt::Result<#rt::MutateParts> {
                let mut patch = #rt::Document::new();
                #( #rt::patch_field(&mut patch, #input_names, &input.#input_idents)?; )*
                ::core::result::Result::Ok(#rt::MutateParts {
                    id: input.id.0,
                    version: input._version,
                    patch,
                })
            }

            fn placeholder() -> ::core::option::Option<Self> {
                // `Default`, if the model has it (autoref picks the `Default` impl first).
                struct Probe<T>(::core::marker::PhantomData<T>);
                trait ViaDefault<T> {
                    fn make(&self) -> ::core::option::Option<T>;
                }
                impl<T: ::core::default::Default> ViaDefault<T> for Probe<T> {
                    fn make(&self) -> ::core::option::Option<T> {
                        ::core::option::Option::Some(T::default())
                    }
                }
                trait WithoutDefault<T> {
                    fn make(&self) -> ::core::option::Option<T>;
                }
                impl<T> WithoutDefault<T> for &Probe<T> {
                    fn make(&self) -> ::core::option::Option<T> {
                        ::core::option::Option::None
                    }
                }
                (&Probe::<Self>(::core::marker::PhantomData)).make()
            }
        }

        #owner_check

        impl #ident {
            /// The typed repository of this model over `store`: create, get, find, update,
            /// delete and sync without GraphQL.
            #vis fn repository<S: #rt::Store + ::core::clone::Clone>(store: &S) -> #rt::Repository<Self> {
                #rt::Repository::new(::core::clone::Clone::clone(store))
            }
        }
    }
}

/// `Rules { owner, read, write }` for the model's spec.
fn rules(g: &Gen<'_>) -> TokenStream {
    let rt = &g.rt;
    let owner = match g.owner {
        Some(field) => {
            let name = &field.name;
            quote!(::core::option::Option::Some(#name))
        }
        None => quote!(::core::option::Option::None),
    };
    let rule = |text: String| match crate::check::parse_rule(&text) {
        Ok(crate::check::Rule::Groups(groups)) => quote!(#rt::Rule::Groups(&[#(#groups),*])),
        Ok(crate::check::Rule::Named(variant)) => {
            let variant = syn::Ident::new(variant, proc_macro2::Span::call_site());
            quote!(#rt::Rule::#variant)
        }
        // `check` reported it already.
        Err(_) => quote!(#rt::Rule::Nobody),
    };
    let (read, write) = (rule(g.model.read_rule()), rule(g.model.write_rule()));
    quote!(#rt::Rules { owner: #owner, read: #read, write: #write })
}
