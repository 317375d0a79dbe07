//! The GraphQL type `NoteDelta`: one change returned by `syncNotes`.

use proc_macro2::TokenStream;

use super::object::output_type;
use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    output_type(g, &g.delta, &format!("{}Delta", g.type_name), true)
}
