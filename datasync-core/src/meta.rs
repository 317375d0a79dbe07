//! Server-owned sync metadata and the stored form of a record, kept beside the model's own data.

/// The metadata the server owns for every record: clients never set it.
///
/// ```
/// use datasync_core::SyncMeta;
/// let meta = SyncMeta { version: 1, created_at: 1592634899084, updated_at: 1592634899084, deleted: false };
/// assert!(meta.is_live());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMeta {
    /// `_version`: 1 on create, +1 on every write (delete included).
    pub version: i64,
    /// `createdAt`, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// `updatedAt`, milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// `_deleted`: the record is a tombstone.
    pub deleted: bool,
}

impl SyncMeta {
    /// `true` unless the record is a tombstone.
    pub fn is_live(&self) -> bool {
        !self.deleted
    }
}

/// A model value together with its sync metadata.
///
/// ```
/// use datasync_core::{Record, SyncMeta};
/// let rec = Record { data: "hello", meta: SyncMeta { version: 2, created_at: 1, updated_at: 5, deleted: false } };
/// assert_eq!(rec.meta.version, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// The model's own fields.
    pub data: T,
    /// What the server keeps about them.
    pub meta: SyncMeta,
}

/// A model's data fields as stored: external (GraphQL) field names to JSON values.
///
/// The id and the sync metadata are not part of it.
pub type Document = serde_json::Map<String, serde_json::Value>;

/// Per data field, the `_version` at which it last changed; a field not listed has not changed
/// since the record was created.
pub type FieldVersions = std::collections::BTreeMap<String, i64>;

/// `base` with the fields of `patch` written over it (top level only): how a patch applies.
///
/// ```
/// let base = serde_json::json!({"a": 1, "b": 2});
/// let patch = serde_json::json!({"b": null});
/// let out = datasync_core::meta::overlay(base.as_object().unwrap(), patch.as_object().unwrap());
/// assert_eq!(serde_json::Value::Object(out), serde_json::json!({"a": 1, "b": null}));
/// ```
pub fn overlay(base: &Document, patch: &Document) -> Document {
    let mut data = base.clone();
    data.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
    data
}

/// One stored record: id, data fields and metadata, as every store hands it back.
///
/// ```
/// use datasync_core::{StoredRecord, SyncMeta};
/// let rec = StoredRecord {
///     id: "n1".into(),
///     data: serde_json::json!({"title": "Milk"}).as_object().unwrap().clone(),
///     meta: SyncMeta { version: 1, created_at: 5, updated_at: 5, deleted: false },
///     field_versions: Default::default(),
///     created_version: 1,
/// };
/// assert_eq!(rec.to_delta_json()["_version"], 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The record id.
    pub id: String,
    /// The data fields, external names.
    pub data: Document,
    /// Server-owned metadata.
    pub meta: SyncMeta,
    /// When each field last changed (for field-level conflict resolution).
    pub field_versions: FieldVersions,
    /// The version this record was created with: 1, or more for an id created again after
    /// its tombstone was purged (versions are never reused for an id).
    pub created_version: i64,
}

impl StoredRecord {
    /// The version at which `field` last changed: its entry in `field_versions`, or the
    /// version the record was created with (set then and never changed since).
    pub fn field_version(&self, field: &str) -> i64 {
        self.field_versions
            .get(field)
            .copied()
            .unwrap_or(self.created_version)
    }

    /// Whether this state is the record as it was created (no write since).
    pub fn is_new(&self) -> bool {
        !self.meta.deleted && self.meta.version == self.created_version
    }

    /// The `<Model>Delta` shape: id, data fields, `_version`, `createdAt`, `updatedAt`,
    /// `_deleted`. Used for `serverState` in errors.
    pub fn to_delta_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut obj = serde_json::Map::with_capacity(self.data.len() + 5);
        obj.insert("id".into(), json!(self.id));
        obj.extend(self.data.iter().map(|(k, v)| (k.clone(), v.clone())));
        obj.insert("_version".into(), json!(self.meta.version));
        obj.insert("createdAt".into(), json!(self.meta.created_at.to_string()));
        obj.insert("updatedAt".into(), json!(self.meta.updated_at.to_string()));
        obj.insert("_deleted".into(), json!(self.meta.deleted));
        serde_json::Value::Object(obj)
    }
}
