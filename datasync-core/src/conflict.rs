//! Conflict detection and the strategies that resolve conflicts.
//!
//! A write carries the `_version` the client last saw (its base version). When that differs
//! from the stored version, the write is a conflict and the model's [`ConflictStrategy`]
//! decides. The repository runs the strategy inside its compare-and-set loop, so a decision is
//! only ever applied to the exact server state it was made on.

use serde_json::{json, Value as Json};

use crate::model::Document;
use crate::store::StoredRecord;

/// What the client was doing when the conflict happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An `update<Model>` mutation.
    Update,
    /// A `delete<Model>` mutation.
    Delete,
}

impl Operation {
    /// The name used in `conflictInfo.operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A conflict, as shown to a strategy.
#[derive(Debug)]
pub struct Conflict<'a> {
    /// Update or delete.
    pub operation: Operation,
    /// The record as stored now (never modified by the strategy).
    pub server: &'a StoredRecord,
    /// The `_version` the client based its change on.
    pub base_version: i64,
    /// The fields the client sent (external names; `null` clears).
    pub patch: &'a Document,
}

/// What a strategy decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Write these data fields (a full document) over the server state.
    Apply(Document),
    /// Refuse the write: the client gets `CONFLICT`.
    Reject,
}

/// Decides what happens when a write's base version is stale.
///
/// ```
/// use datasync_core::conflict::{ConflictStrategy, Throw};
/// assert_eq!(Throw.name(), "throw");
/// ```
pub trait ConflictStrategy: Send + Sync + 'static {
    /// The name used in `#[datasync(conflict = "...")]`.
    fn name(&self) -> &'static str;
    /// Looks at the conflict and decides. Must not have side effects: it may be called again
    /// if the record changes before the decision is written.
    fn resolve(&self, conflict: &Conflict<'_>) -> Resolution;
}

/// The default strategy: every version mismatch is rejected with `CONFLICT`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throw;

impl ConflictStrategy for Throw {
    fn name(&self) -> &'static str {
        "throw"
    }

    fn resolve(&self, _conflict: &Conflict<'_>) -> Resolution {
        Resolution::Reject
    }
}

/// What a rejected client gets in `extensions.conflictInfo`: enough to resolve the conflict on
/// its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictInfo {
    /// Update or delete.
    pub operation: Operation,
    /// The stored record in the `<Model>Delta` shape.
    pub server_state: Json,
    /// The client's input, echoed.
    pub client_state: Json,
    /// Fields whose client value differs from the server value.
    pub conflicting_fields: Vec<String>,
}

impl ConflictInfo {
    /// The JSON form placed in `extensions.conflictInfo`.
    pub fn to_json(&self) -> Json {
        json!({
            "operation": self.operation.as_str(),
            "serverState": self.server_state,
            "clientState": self.client_state,
            "conflictingFields": self.conflicting_fields,
        })
    }

    pub(crate) fn client_version(&self) -> i64 {
        self.client_state["_version"].as_i64().unwrap_or_default()
    }

    pub(crate) fn server_version(&self) -> i64 {
        self.server_state["_version"].as_i64().unwrap_or_default()
    }
}

/// The fields of `patch` whose value differs from the stored one, by deep equality on the
/// stored (normalized) JSON form; a missing field counts as `null`.
///
/// ```
/// use datasync_core::conflict::differing_fields;
/// let server = serde_json::json!({"title": "a", "tags": ["x"], "description": null});
/// let patch = serde_json::json!({"title": "a", "tags": ["y"], "description": null, "done": null});
/// let fields = differing_fields(server.as_object().unwrap(), patch.as_object().unwrap());
/// assert_eq!(fields, vec!["tags".to_string()]);
/// ```
pub fn differing_fields(server: &Document, patch: &Document) -> Vec<String> {
    patch
        .iter()
        .filter(|(name, value)| server.get(name.as_str()).unwrap_or(&Json::Null) != *value)
        .map(|(name, _)| name.clone())
        .collect()
}
