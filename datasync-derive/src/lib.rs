//! `#[derive(DataSync)]`: turns a plain struct into a sync-enabled GraphQL model.
//!
//! The input is parsed once into a small AST ([`ast`], attributes in [`attr`]), checked in a
//! separate pass ([`check`]) that collects every error with its span ([`ctxt`]), then expanded
//! into one item per file under [`expand`]. Generated code names the runtime only through
//! `::datasync::__private`, so user crates need no other dependency.
//!
//! Use it through the `datasync` crate, which re-exports it and documents the attributes.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod naming;

use proc_macro::TokenStream;

/// Derives a sync-enabled GraphQL API for a struct. See the `datasync` crate documentation.
#[proc_macro_derive(DataSync, attributes(datasync))]
pub fn derive_data_sync(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
