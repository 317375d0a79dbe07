//! Server-owned sync metadata, kept beside the model's own data.

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
