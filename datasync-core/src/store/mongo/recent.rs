//! Copies of records this process wrote or read lately, to seed compare-and-set writes.
//!
//! An update or delete must know the stored state to decide what to write. With a current
//! copy at hand it skips reading it: the compare-and-set filters on the version the copy
//! has, so a stale copy makes the write fail harmlessly (the store then reads the record and
//! the repository decides again). Versions never repeat for an id, even across a purge and a
//! re-creation, so a stale copy can never pass for the current one.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value as Json;

use crate::meta::StoredRecord;

/// Records kept at most (first in, first out).
const CAPACITY: usize = 4096;
/// Records larger than this (roughly, in bytes of data) are not kept.
const MAX_RECORD: usize = 16 * 1024;

type Key = (&'static str, String);

#[derive(Default)]
pub(super) struct Recent(Mutex<Cache>);

#[derive(Default)]
struct Cache {
    records: HashMap<Key, StoredRecord>,
    order: VecDeque<Key>,
}

impl Recent {
    /// The copy of `id`, if any.
    pub fn get(&self, collection: &'static str, id: &str) -> Option<StoredRecord> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.records.get(&(collection, id.to_owned())).cloned()
    }

    /// Keeps `record` as the latest known state of its id (unless it is large).
    pub fn put(&self, collection: &'static str, record: &StoredRecord) {
        if record.data.values().map(size).sum::<usize>() > MAX_RECORD {
            self.forget(collection, &record.id);
            return;
        }
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (collection, record.id.clone());
        if cache.records.insert(key.clone(), record.clone()).is_none() {
            cache.order.push_back(key);
            if cache.order.len() > CAPACITY {
                if let Some(oldest) = cache.order.pop_front() {
                    cache.records.remove(&oldest);
                }
            }
        }
    }

    /// Drops the copy of `id`.
    pub fn forget(&self, collection: &'static str, id: &str) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (collection, id.to_owned());
        if cache.records.remove(&key).is_some() {
            cache.order.retain(|k| *k != key);
        }
    }
}

/// Roughly the bytes `value` takes.
fn size(value: &Json) -> usize {
    match value {
        Json::String(s) => s.len() + 8,
        Json::Array(items) => items.iter().map(size).sum::<usize>() + 8,
        Json::Object(map) => map.iter().map(|(k, v)| k.len() + size(v)).sum::<usize>() + 8,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{FieldVersions, SyncMeta};

    fn record(id: &str, version: i64, text: &str) -> StoredRecord {
        let mut data = crate::meta::Document::new();
        data.insert("text".into(), Json::from(text));
        StoredRecord {
            id: id.into(),
            data,
            meta: SyncMeta {
                version,
                created_at: 0,
                updated_at: 0,
                deleted: false,
            },
            field_versions: FieldVersions::new(),
            created_version: 1,
        }
    }

    #[test]
    fn keeps_the_latest_copy_within_bounds() {
        let recent = Recent::default();
        recent.put("notes", &record("a", 1, "x"));
        recent.put("notes", &record("a", 2, "y"));
        assert_eq!(recent.get("notes", "a").unwrap().meta.version, 2);
        assert!(recent.get("comments", "a").is_none());
        recent.put("notes", &record("a", 3, &"z".repeat(MAX_RECORD + 1)));
        assert!(
            recent.get("notes", "a").is_none(),
            "large records are not kept"
        );
        for i in 0..CAPACITY + 10 {
            recent.put("notes", &record(&i.to_string(), 1, "x"));
        }
        assert!(recent.get("notes", "0").is_none());
        assert!(recent.get("notes", &(CAPACITY + 9).to_string()).is_some());
        let cache = recent.0.lock().unwrap();
        assert_eq!(cache.records.len(), CAPACITY);
        assert_eq!(cache.order.len(), CAPACITY);
    }
}
