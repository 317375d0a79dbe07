//! A model with every supported field type and attribute.

use chrono::{DateTime, Utc};
use datasync::async_graphql::{InputObject, SimpleObject};
use datasync::prelude::*;
use serde::{Deserialize, Serialize};

/// A postal address: a nested async-graphql + serde type, stored and returned as a whole.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AddressInput", crate = "datasync::async_graphql")]
pub struct Address {
    pub street: String,
    pub zip: Option<String>,
}

/// A gadget: exercises every field type and attribute.
#[derive(DataSync, Clone, Debug, PartialEq)]
#[datasync(collection = "gadget_store", plural = "GadgetList", conflict = "throw")]
pub struct Gadget {
    #[datasync(id)]
    pub key: String,
    /// The gadget's name.
    pub name: String,
    pub active: bool,
    pub count: i32,
    pub big: i64,
    pub ratio: f64,
    pub ratio32: f32,
    pub seen_at: DateTime<Utc>,
    pub maybe_name: Option<String>,
    pub maybe_count: Option<i32>,
    pub maybe_at: Option<DateTime<Utc>>,
    pub labels: Vec<String>,
    pub scores: Vec<i32>,
    #[datasync(skip_filter)]
    pub address: Address,
    #[datasync(skip_filter)]
    pub history: Option<Vec<Address>>,
    #[datasync(rename = "colour")]
    pub color: Option<String>,
}

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Query(GadgetQuery);

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Mutation(GadgetMutation);

pub type GadgetSchema = Schema<Query, Mutation, EmptySubscription>;

pub fn schema(store: impl Store) -> GadgetSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .datasync(store)
        .finish()
}

/// Field names that collide with names generated code might use.
#[derive(DataSync, Clone, Debug, PartialEq)]
pub struct Awkward {
    #[datasync(id)]
    pub rec: String,
    pub data: String,
    pub doc: Option<String>,
    pub input: i32,
    pub ctx: bool,
    pub page: Vec<String>,
    pub delta: Option<i64>,
    pub patch: f64,
    pub r#type: String,
    pub filter: String,
    pub limit: i32,
    pub spec: String,
    pub meta: String,
    #[datasync(rename = "isNot")]
    pub is_not: bool,
}

/// A model whose strategy comes from the attribute.
#[derive(DataSync, Clone, Debug, PartialEq)]
#[datasync(conflict = "client_wins", plural = "Memos")]
pub struct Memo {
    pub id: String,
    pub text: String,
}
