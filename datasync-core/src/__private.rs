//! What `#[derive(DataSync)]` output refers to, by absolute path
//! (`::datasync::__private::...`), so user crates need no direct dependencies.

pub use async_graphql;
pub use futures_util::stream::{BoxStream, StreamExt};
pub use serde_json;

pub use crate::auth::{Rule, Rules};
pub use crate::graphql::{find_cost, sync_cost};
pub use crate::model::OwnerField;
pub use crate::rxdb::{Assumed, PullBulk, PushRow};
pub use crate::subscription::Event;

pub use crate::conflict::{ClientWins, Merge, ServerWins, Throw};
pub use crate::error::{DataSyncError, Result};
pub use crate::filter::FieldKind;
pub use crate::filter::{FieldFilter, FieldRef, Filter, FilterInput, FilterableField, IDInput};
pub use crate::graphql::{repository, resolve, OrderByInput, PageRequest};
pub use crate::meta::{Document, Record, SyncMeta};
pub use crate::model::{
    FieldError, FieldSpec, IdField, Model, ModelFilter, ModelSpec, MutateParts,
};
pub use crate::repository::{Delta, Page, Repository};
pub use crate::store::Store;
pub use crate::token::SyncToken;

use async_graphql::MaybeUndefined;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;

/// Stores `value` under `name`. Infinite and NaN numbers (JSON cannot hold them; a literal
/// too large for an `f32` becomes infinity) are refused with `BAD_USER_INPUT`.
pub fn put_field<T: Serialize>(doc: &mut Document, name: &'static str, value: &T) -> Result<()> {
    if !crate::finite::is_finite(value) {
        return Err(DataSyncError::bad_input(
            format!("input.{name}"),
            format!(
                "field {name:?}: a number is out of range for its type (or not finite); nothing \
                 was written"
            ),
        ));
    }
    let json = serde_json::to_value(value).map_err(|e| {
        DataSyncError::bad_input(
            format!("input.{name}"),
            format!("cannot store field {name:?}: {e}"),
        )
    })?;
    doc.insert(name.to_owned(), json);
    Ok(())
}

/// Adds a patch entry for `name` unless the client left the field out; `null` is kept.
pub fn patch_field<T: Serialize>(
    patch: &mut Document,
    name: &'static str,
    value: &MaybeUndefined<T>,
) -> Result<()> {
    match value {
        MaybeUndefined::Undefined => Ok(()),
        MaybeUndefined::Null => {
            patch.insert(name.to_owned(), Json::Null);
            Ok(())
        }
        MaybeUndefined::Value(v) => put_field(patch, name, v),
    }
}

/// Takes field `name` out of a stored document (missing counts as `null`).
pub fn take_field<T: DeserializeOwned>(
    doc: &mut Document,
    name: &'static str,
) -> std::result::Result<T, FieldError> {
    let json = doc.remove(name).unwrap_or(Json::Null);
    serde_json::from_value(json).map_err(|e| FieldError {
        field: name,
        message: e.to_string(),
    })
}

/// Milliseconds as the decimal string the GraphQL contract uses for timestamps.
pub fn millis_text(ms: i64) -> String {
    ms.to_string()
}
