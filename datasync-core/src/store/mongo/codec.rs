//! Records to BSON documents and back. Numbers are read leniently: servers may hand back
//! Int32 or Double where Int64 was written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::{Bson, DateTime as BsonDateTime, Document};
use serde_json::Value as Json;

use crate::error::{DataSyncError, Result};
use crate::meta::{Document as Data, FieldVersions, StoredRecord, SyncMeta};

/// Keys of a stored document that are not data fields: the id, the sync metadata, and the
/// store's own bookkeeping (`_seq`: change position; `_u`: the mark of a write that has no
/// position yet; `_expireAt`: when a tombstone is due; `_fv`: field versions; `_purged`: a
/// husk; `_first`: the version a re-created record started at).
pub(super) const META_KEYS: [&str; 11] = [
    "_id",
    "_version",
    "_deleted",
    "createdAt",
    "updatedAt",
    "_seq",
    "_u",
    "_expireAt",
    "_fv",
    "_purged",
    "_first",
];

/// A record as one write stores it.
#[derive(Clone, Copy)]
pub(super) struct Written<'a> {
    pub id: &'a str,
    pub data: &'a Data,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted: bool,
    pub field_versions: &'a FieldVersions,
    pub created_version: i64,
    /// How long a tombstone is kept.
    pub retention: Duration,
}

impl Written<'_> {
    /// The document to store: the data, the metadata, and a fresh mark `_u` (no position
    /// yet: the stamper gives it one).
    pub fn document(&self) -> Document {
        let mut document = to_bson_document(self.data);
        document.insert("_id", self.id);
        document.insert("_version", self.version);
        document.insert("_deleted", self.deleted);
        document.insert("createdAt", self.created_at);
        document.insert("updatedAt", self.updated_at);
        document.insert("_u", fresh_mark());
        if !self.field_versions.is_empty() {
            document.insert("_fv", field_versions_bson(self.field_versions));
        }
        if self.created_version != 1 {
            document.insert("_first", self.created_version);
        }
        if self.deleted {
            let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
            document.insert(
                "_expireAt",
                BsonDateTime::from_millis(self.updated_at.saturating_add(retention)),
            );
        }
        document
    }

    /// The record as stored by [`Self::document`].
    pub fn record(&self) -> StoredRecord {
        StoredRecord {
            id: self.id.to_owned(),
            data: self.data.clone(),
            meta: SyncMeta {
                version: self.version,
                created_at: self.created_at,
                updated_at: self.updated_at,
                deleted: self.deleted,
            },
            field_versions: self.field_versions.clone(),
            created_version: self.created_version,
        }
    }
}

/// A fresh mark for a write waiting for its position (`_u`): unique across processes, and
/// increasing within this one, so that the stamper gives a batch its positions in the order
/// this process wrote them. A hybrid clock: milliseconds since the epoch with a counter in
/// the low 16 bits (never going backwards), then a random number drawn once per process.
pub(super) fn fresh_mark() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static PROCESS: OnceLock<u32> = OnceLock::new();
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u128() as u32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
        << 16;
    let mut last = LAST.load(Ordering::Relaxed);
    let stamp = loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    format!("{stamp:016x}{process:08x}")
}

/// Reads a number leniently.
pub(super) fn int(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// A purged tombstone reduced to its id, last version and change position.
pub(super) fn is_husk(doc: &Document) -> bool {
    flag(doc.get("_purged"))
}

/// Reads a boolean leniently (a server may hand back `1` where `$set` wrote `true`).
fn flag(value: Option<&Bson>) -> bool {
    match value {
        Some(Bson::Boolean(b)) => *b,
        other => int(other).is_some_and(|i| i != 0),
    }
}

/// The change position of a stored document (`None`: not given one yet).
pub(super) fn position(doc: &Document) -> Option<i64> {
    int(doc.get("_seq"))
}

fn field_versions_bson(versions: &FieldVersions) -> Document {
    versions
        .iter()
        .map(|(k, v)| (k.clone(), Bson::Int64(*v)))
        .collect()
}

/// A stored document as a record.
pub(super) fn decode(mut doc: Document) -> Result<StoredRecord> {
    let id = match doc.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::ObjectId(o)) => o.to_hex(),
        other => {
            return Err(DataSyncError::internal(
                "a stored record has no usable id",
                format!("_id = {other:?}"),
            ))
        }
    };
    let meta = SyncMeta {
        version: int(doc.get("_version")).unwrap_or(0),
        created_at: int(doc.get("createdAt")).unwrap_or(0),
        updated_at: int(doc.get("updatedAt")).unwrap_or(0),
        deleted: flag(doc.get("_deleted")),
    };
    let field_versions = match doc.get("_fv") {
        Some(Bson::Document(fv)) => fv
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), int(Some(v))?)))
            .collect(),
        _ => FieldVersions::new(),
    };
    let created_version = int(doc.get("_first")).unwrap_or(1);
    for key in META_KEYS {
        doc.remove(key);
    }
    let data = doc.into_iter().map(|(k, v)| (k, to_json(v))).collect();
    Ok(StoredRecord {
        id,
        data,
        meta,
        field_versions,
        created_version,
    })
}

fn to_bson_document(data: &Data) -> Document {
    data.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()
}

fn to_bson(value: &Json) -> Bson {
    match value {
        Json::Null => Bson::Null,
        Json::Bool(b) => Bson::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Bson::String(s.clone()),
        Json::Array(items) => Bson::Array(items.iter().map(to_bson).collect()),
        Json::Object(map) => Bson::Document(to_bson_document(map)),
    }
}

fn to_json(value: Bson) -> Json {
    match value {
        Bson::Null | Bson::Undefined => Json::Null,
        Bson::Boolean(b) => Json::Bool(b),
        Bson::Int32(i) => Json::from(i),
        Bson::Int64(i) => Json::from(i),
        Bson::Double(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Bson::String(s) => Json::String(s),
        Bson::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Bson::Document(d) => Json::Object(d.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Bson::DateTime(dt) => Json::String(dt.try_to_rfc3339_string().unwrap_or_default()),
        Bson::ObjectId(o) => Json::String(o.to_hex()),
        other => Json::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn reads_numbers_leniently_and_strips_metadata() {
        let record = decode(doc! {
            "_id": "n1", "_version": 3i32, "_deleted": false, "createdAt": 5.0,
            "updatedAt": 7i64, "_seq": 9i32, "_u": "m", "title": "t", "n": 2i32,
        })
        .unwrap();
        assert_eq!((record.meta.version, record.meta.created_at), (3, 5));
        assert_eq!(record.meta.updated_at, 7);
        assert_eq!(
            serde_json::Value::Object(record.data),
            serde_json::json!({"title": "t", "n": 2})
        );
        assert_eq!(position(&doc! {"_seq": 4.0}), Some(4));
        assert_eq!(position(&doc! {"_u": "m"}), None);
        assert!(is_husk(&doc! {"_purged": 1i32}) && is_husk(&doc! {"_purged": true}));
        assert!(!is_husk(&doc! {"_deleted": true}));
    }

    #[test]
    fn marks_increase_within_a_process() {
        let marks: Vec<String> = (0..10_000).map(|_| fresh_mark()).collect();
        assert!(marks.windows(2).all(|w| w[0] < w[1]));
        assert!(marks.iter().all(|m| m.len() == 24));
    }
}
