//! Generation: one generated item per file, all from the checked [`Model`].

mod create_input;
mod delta;
mod delta_list;
mod filter;
mod model_impl;
mod mutate_input;
mod mutation;
mod object;
mod query;
mod result_list;
mod rxdb;
mod subscription;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ast::{Field, Model};
use crate::check;
use crate::ctxt::Ctxt;

/// Runs the derive: parse, check, then generate; on error only the errors are emitted.
pub fn derive(input: &syn::DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let model = crate::ast::Model::from_input(&mut cx, input);
    if let Some(model) = &model {
        check::check(&mut cx, input, model);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => Gen::new(&model).expand(),
        (Err(err), _) => err.to_compile_error(),
        (Ok(()), None) => TokenStream::new(),
    }
}

/// Everything the generators share: the model, runtime paths and generated names.
pub struct Gen<'a> {
    pub model: &'a Model<'a>,
    pub id: &'a Field<'a>,
    pub data: Vec<&'a Field<'a>>,
    /// The data fields a client may set: all but the owner.
    pub inputs: Vec<&'a Field<'a>>,
    pub owner: Option<&'a Field<'a>>,
    /// `::datasync::__private`
    pub rt: TokenStream,
    /// `::datasync::__private::async_graphql`
    pub ag: TokenStream,
    /// The `crate = "..."` string for async-graphql derives.
    pub ag_crate: &'static str,
    pub type_name: String,
    pub plural: String,
    pub object: Ident,
    pub delta: Ident,
    pub delta_list: Ident,
    pub result_list: Ident,
    pub create_input: Ident,
    pub mutate_input: Ident,
    pub filter: Ident,
    pub query: Ident,
    pub mutation: Ident,
    pub subscription: Ident,
    /// The RxDB dialect's types (`NoteRxDocument`, `NotePullBulk`, ...).
    pub rx: RxNames,
}

/// The generated names of the RxDB dialect.
pub struct RxNames {
    pub enabled: bool,
    pub document: Ident,
    pub input_document: Ident,
    pub checkpoint: Ident,
    pub input_checkpoint: Ident,
    pub pull_bulk: Ident,
    pub push_row: Ident,
    pub headers: Ident,
}

impl<'a> Gen<'a> {
    fn new(model: &'a Model<'a>) -> Self {
        let ident = model.ident;
        let id = model
            .id_field()
            .expect("checked: the model has an id field");
        Gen {
            model,
            id,
            data: model.data_fields().collect(),
            inputs: model
                .data_fields()
                .filter(|f| Some(f.ident) != model.owner_field().map(|o| o.ident))
                .collect(),
            owner: model.owner_field(),
            rt: quote!(::datasync::__private),
            ag: quote!(::datasync::__private::async_graphql),
            ag_crate: "::datasync::__private::async_graphql",
            type_name: model.type_name(),
            plural: model.plural(),
            object: format_ident!("{}Object", ident),
            delta: format_ident!("{}Delta", ident),
            delta_list: format_ident!("{}DeltaList", ident),
            result_list: format_ident!("{}ResultList", ident),
            create_input: format_ident!("Create{}Input", ident),
            mutate_input: format_ident!("Mutate{}Input", ident),
            filter: format_ident!("{}Filter", ident),
            query: format_ident!("{}Query", ident),
            mutation: format_ident!("{}Mutation", ident),
            subscription: format_ident!("{}Subscription", ident),
            rx: RxNames {
                enabled: model.attrs.rxdb.is_some(),
                document: format_ident!("{}RxDocument", ident),
                input_document: format_ident!("{}InputRxDocument", ident),
                checkpoint: format_ident!("{}Checkpoint", ident),
                input_checkpoint: format_ident!("{}InputCheckpoint", ident),
                pull_bulk: format_ident!("{}PullBulk", ident),
                push_row: format_ident!("{}InputPushRow", ident),
                headers: format_ident!("{}InputHeaders", ident),
            },
        }
    }

    fn expand(&self) -> TokenStream {
        let items = [
            model_impl::expand(self),
            object::expand(self),
            delta::expand(self),
            result_list::expand(self),
            delta_list::expand(self),
            create_input::expand(self),
            mutate_input::expand(self),
            filter::expand(self),
            query::expand(self),
            mutation::expand(self),
            subscription::expand(self),
            rxdb::expand(self),
        ];
        quote!(#(#items)*)
    }

    /// The filterable data fields, each with its index among the data fields (the `I` of
    /// `FieldFilter<Note, I>`).
    pub fn filterable(&self) -> impl Iterator<Item = (usize, &'a Field<'a>)> + '_ {
        self.data
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, f)| f.attrs.skip_filter.is_none())
    }

    /// `getNote`-style operation names.
    pub fn op(&self, verb: &str, plural: bool) -> String {
        let noun = if plural {
            &self.plural
        } else {
            &self.type_name
        };
        format!("{verb}{noun}")
    }
}
