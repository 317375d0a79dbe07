//! Every supported field type, with no direct async-graphql dependency in this crate.
use chrono::{DateTime, Utc};
use datasync::async_graphql::{InputObject, SimpleObject};
use datasync::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug)]
#[graphql(input_name = "PlaceInput", crate = "datasync::async_graphql")]
pub struct Place {
    pub name: String,
}

/// All types.
#[derive(DataSync, Clone, Debug)]
pub struct Everything {
    /// The id.
    pub id: String,
    pub text: String,
    pub flag: bool,
    pub small: i32,
    pub big: i64,
    pub single: f32,
    pub double: f64,
    pub when: DateTime<Utc>,
    pub maybe_text: Option<String>,
    pub maybe_flag: Option<bool>,
    pub maybe_small: Option<i32>,
    pub maybe_big: Option<i64>,
    pub maybe_double: Option<f64>,
    pub maybe_when: Option<DateTime<Utc>>,
    pub texts: Vec<String>,
    pub smalls: Vec<i32>,
    #[datasync(skip_filter)]
    pub place: Place,
    #[datasync(skip_filter)]
    pub places: Vec<Place>,
    #[datasync(skip_filter)]
    pub maybe_place: Option<Place>,
}

fn main() {
    let _ = EverythingQuery;
    let _ = EverythingMutation;
    let _: Option<EverythingFilter> = None;
}
