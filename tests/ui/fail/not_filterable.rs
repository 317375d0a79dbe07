use datasync::async_graphql::{InputObject, SimpleObject};
use datasync::prelude::*;
use serde::{Deserialize, Serialize};

/// A proper nested GraphQL type; it just has no filter input.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug)]
#[graphql(input_name = "AddressInput", crate = "datasync::async_graphql")]
pub struct Address {
    pub street: String,
}

#[derive(DataSync)]
pub struct Note {
    pub id: String,
    pub address: Address,
    pub previous: Option<Vec<Address>>,
    /// Fine: stored and returned, but not in `NoteFilter`.
    #[datasync(skip_filter)]
    pub home: Address,
}

fn main() {}
