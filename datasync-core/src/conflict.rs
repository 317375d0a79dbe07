//! Conflict detection and the strategies that resolve conflicts.
//!
//! A write carries the `_version` the client last saw (its base version). When that differs
//! from the stored version, the write is a conflict and the model's [`ConflictStrategy`]
//! decides. The repository runs the strategy inside its compare-and-set loop, so a decision is
//! only ever applied to the exact server state it was made on.

use serde_json::{json, Value as Json};

use crate::meta::{overlay, Document, StoredRecord};

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

/// A conflict, as shown to a strategy: a write whose base version is not the stored one, or
/// an update of a deleted record.
#[derive(Debug)]
pub struct Conflict<'a> {
    /// Update or delete.
    pub operation: Operation,
    /// The record as stored now, with its per-field versions (never modified by the strategy).
    pub server: &'a StoredRecord,
    /// The `_version` the client based its change on.
    pub base_version: i64,
    /// The fields the client sent (external names; `null` clears).
    pub patch: &'a Document,
}

impl Conflict<'_> {
    /// The version at which `field` last changed on the server (1: never since creation).
    pub fn field_version(&self, field: &str) -> i64 {
        self.server.field_version(field)
    }

    /// Whether the server changed `field` after the client's base version. A base version
    /// the server never had (above the stored one) proves nothing: every field counts as
    /// changed.
    pub fn changed(&self, field: &str) -> bool {
        self.base_version > self.server.meta.version
            || self.field_version(field) > self.base_version
    }

    /// Fields the server changed after the client's base version (see [`changed`](Self::changed)).
    pub fn changed_since_base(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .server
            .data
            .keys()
            .chain(self.server.field_versions.keys())
            .chain(self.patch.keys())
            .filter(|f| self.changed(f))
            .cloned()
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }

    /// For strategies that only merge updates of live records: a rejection (listing the
    /// fields changed since the base) for a stale delete or an update of a deleted record.
    pub fn reject_removal(&self) -> Option<Resolution> {
        (self.server.meta.deleted || self.operation == Operation::Delete).then(|| {
            Resolution::Reject {
                conflicting_fields: self.changed_since_base(),
            }
        })
    }

    /// The server's data with the patch's fields written over it.
    pub fn client_over_server(&self) -> Document {
        overlay(&self.server.data, self.patch)
    }
}

/// What a strategy decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Write these data fields (the whole document). For a delete, the record becomes a
    /// tombstone with them; for an update of a tombstone, the record is restored.
    Apply(Document),
    /// Refuse: the client gets `CONFLICT` (`NOT_FOUND` for an update of a deleted record)
    /// listing these fields in `conflictingFields`.
    Reject {
        /// The fields in conflict.
        conflicting_fields: Vec<String>,
    },
    /// Keep the server state as it is: the write succeeds without changing anything and the
    /// client gets the stored record.
    KeepServer,
}

/// Decides what happens when a write's base version is stale, or an update meets a deleted
/// record. Implement it for custom rules and register it with
/// [`ConflictOverrides`](crate::ConflictOverrides) or [`Repository::with_strategy`](crate::Repository::with_strategy).
///
/// ```
/// use datasync_core::conflict::{Conflict, ConflictStrategy, Resolution};
///
/// /// Higher priority wins; otherwise reject.
/// struct HigherPriorityWins;
///
/// impl ConflictStrategy for HigherPriorityWins {
///     fn name(&self) -> &'static str { "higher_priority_wins" }
///     fn resolve(&self, c: &Conflict<'_>) -> Resolution {
///         let mine = c.patch.get("priority").and_then(|p| p.as_i64());
///         let theirs = c.server.data.get("priority").and_then(|p| p.as_i64());
///         match (mine, theirs) {
///             (Some(m), Some(t)) if m > t => Resolution::Apply(c.client_over_server()),
///             _ => Resolution::Reject { conflicting_fields: c.changed_since_base() },
///         }
///     }
/// }
/// ```
pub trait ConflictStrategy: Send + Sync + 'static {
    /// The name used in `#[datasync(conflict = "...")]` and in logs.
    fn name(&self) -> &'static str;
    /// Looks at the conflict and decides. Must not have side effects: it runs again if the
    /// record changes before the decision is written.
    fn resolve(&self, conflict: &Conflict<'_>) -> Resolution;
}

/// `throw` (the default): every conflict is rejected with `CONFLICT`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throw;

impl ConflictStrategy for Throw {
    fn name(&self) -> &'static str {
        "throw"
    }

    fn resolve(&self, c: &Conflict<'_>) -> Resolution {
        let conflicting_fields = match c.operation {
            Operation::Update => differing_fields(&c.server.data, c.patch),
            Operation::Delete => c.changed_since_base(),
        };
        Resolution::Reject { conflicting_fields }
    }
}

/// `client_wins`: the client's fields apply over the server state; a stale delete still
/// deletes; an update of a deleted record restores it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientWins;

impl ConflictStrategy for ClientWins {
    fn name(&self) -> &'static str {
        "client_wins"
    }

    fn resolve(&self, c: &Conflict<'_>) -> Resolution {
        match c.operation {
            Operation::Update => Resolution::Apply(c.client_over_server()),
            Operation::Delete => Resolution::Apply(c.server.data.clone()),
        }
    }
}

/// `server_wins`: fields the server changed after the client's base version keep the server
/// value, the client's other fields apply; an update of a deleted record and a stale delete
/// are rejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerWins;

impl ConflictStrategy for ServerWins {
    fn name(&self) -> &'static str {
        "server_wins"
    }

    fn resolve(&self, c: &Conflict<'_>) -> Resolution {
        if let Some(rejection) = c.reject_removal() {
            return rejection;
        }
        let mut data = c.server.data.clone();
        for (field, value) in c.patch {
            if !c.changed(field) {
                data.insert(field.clone(), value.clone());
            }
        }
        Resolution::Apply(data)
    }
}

/// `merge`: field-level automerge. Changes to different fields merge; a field both sides
/// changed is a conflict unless both wrote the same value. Lists are values like any other:
/// two different edits of one list conflict (no element-wise merge). An update of a deleted
/// record and a stale delete are rejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct Merge;

impl ConflictStrategy for Merge {
    fn name(&self) -> &'static str {
        "merge"
    }

    fn resolve(&self, c: &Conflict<'_>) -> Resolution {
        if let Some(rejection) = c.reject_removal() {
            return rejection;
        }
        let conflicting_fields: Vec<String> = c
            .changed_since_base()
            .into_iter()
            .filter(|f| match c.patch.get(f) {
                Some(mine) => !json_eq(mine, c.server.data.get(f).unwrap_or(&Json::Null)),
                None => false,
            })
            .collect();
        if conflicting_fields.is_empty() {
            Resolution::Apply(c.client_over_server())
        } else {
            Resolution::Reject { conflicting_fields }
        }
    }
}

/// The built-in strategy called `name` (`throw`, `client_wins`, `server_wins`, `merge`).
///
/// ```
/// assert_eq!(datasync_core::conflict::by_name("merge").unwrap().name(), "merge");
/// assert!(datasync_core::conflict::by_name("coin_flip").is_none());
/// ```
pub fn by_name(name: &str) -> Option<std::sync::Arc<dyn ConflictStrategy>> {
    let strategy: std::sync::Arc<dyn ConflictStrategy> = match name {
        "throw" => std::sync::Arc::new(Throw),
        "client_wins" => std::sync::Arc::new(ClientWins),
        "server_wins" => std::sync::Arc::new(ServerWins),
        "merge" => std::sync::Arc::new(Merge),
        _ => return None,
    };
    Some(strategy)
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

/// The fields of `patch` whose value differs from the stored one, by [`json_eq`]; a missing
/// field counts as `null`.
///
/// ```
/// use datasync_core::conflict::differing_fields;
/// let server = serde_json::json!({"title": "a", "tags": ["x"], "description": null, "n": 2});
/// let patch = serde_json::json!({"title": "a", "tags": ["y"], "description": null, "done": null, "n": 2.0});
/// let fields = differing_fields(server.as_object().unwrap(), patch.as_object().unwrap());
/// assert_eq!(fields, vec!["tags".to_string()]);
/// ```
pub fn differing_fields(server: &Document, patch: &Document) -> Vec<String> {
    patch
        .iter()
        .filter(|(name, value)| !json_eq(server.get(name.as_str()).unwrap_or(&Json::Null), value))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Deep equality of stored values: numbers by value (`2 == 2.0`), lists element by element
/// in order, objects key by key with a missing key equal to `null`. Date-times are stored in
/// one normalized text form, so equal instants compare equal.
pub fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Json::Object(x), Json::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            json_eq(
                x.get(k).unwrap_or(&Json::Null),
                y.get(k).unwrap_or(&Json::Null),
            )
        }),
        _ => a == b,
    }
}
