//! The production store: MongoDB through the official driver.
//!
//! One collection per model; `_id` is the record id and the sync metadata lives beside the
//! data fields (`_version`, `_deleted`, `createdAt`, `updatedAt`, plus `_seq`, the change
//! position, and `_expireAt` on tombstones). A bookkeeping collection `_datasync_collections`
//! holds one counter document per collection: the change counter, the newest timestamp handed
//! out, the purge watermark, and the reservations of writes in flight.
//!
//! Several server processes may write to one database, each with its own clock, and MongoDB
//! makes single-document writes visible in no particular order. The sync cursor therefore
//! comes from the database, and a reader never moves it past a position that may still be
//! written: see `docs/sync.md` ("MongoDB").

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};
use serde_json::Value as Json;

use super::mongo_filter;
use super::{
    check_cursor, next_watermark, BoxFuture, CasOutcome, CollectionOwners, InsertOutcome,
    PurgeSchedule, Replacement, Store, StoreOptions, Watermark,
};
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::{Document as Data, FieldVersions, StoredRecord, SyncMeta};
use crate::model::ModelSpec;
use crate::query::{FindQuery, FindResult, SyncItem, SyncPage, SyncRequest};
use crate::realtime::Hub;
use crate::token::{Cursor, SyncToken, TokenKey};

const COUNTERS: &str = "_datasync_collections";
/// The `_id` of the document in `COUNTERS` that holds the token key (no collection can be
/// named like that: names starting with `_datasync` are refused).
const TOKEN_KEY_ID: &str = "_datasync:token_key";
/// A reservation older than this belongs to a writer that died; readers stop waiting for it.
const RESERVATION_TIMEOUT_MS: i64 = 60_000;
/// Keys of a stored document that are not data fields.
const META_KEYS: [&str; 10] = [
    "_id",
    "_version",
    "_deleted",
    "createdAt",
    "updatedAt",
    "_seq",
    "_expireAt",
    "_fv",
    "_purged",
    "_first",
];

/// A store in a MongoDB database.
///
/// Cheap to clone: clones share the driver's connection pool. The driver reconnects on its
/// own: while MongoDB is unreachable operations fail with `INTERNAL`, and succeed again once
/// it is back.
///
/// ```no_run
/// # async fn demo() -> datasync_core::Result<()> {
/// use datasync_core::MongoStore;
/// let store = MongoStore::connect("mongodb://localhost:27017", "notes").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    opts: StoreOptions,
    /// Collections whose indexes and counter document exist.
    ready: Mutex<HashSet<&'static str>>,
    /// Which model each collection belongs to.
    owners: CollectionOwners,
    /// The key that seals sync tokens, read from (or made in) the database on first use.
    key: tokio::sync::OnceCell<TokenKey>,
    purges: PurgeSchedule,
    /// Whether the background purge task runs.
    purger: std::sync::Once,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.inner.db.name())
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// A sequence number taken for one write, and the reservation that announces it.
struct Reservation {
    key: String,
    seq: i64,
    ms: i64,
}

impl MongoStore {
    /// Connects to `uri` and uses `database`, with default options.
    pub async fn connect(uri: &str, database: &str) -> Result<Self> {
        Self::connect_with(uri, database, StoreOptions::default()).await
    }

    /// Connects to `uri` and uses `database`. Fails with `INTERNAL` if the server cannot be
    /// reached within the server selection timeout (5 s unless the URI sets one).
    pub async fn connect_with(uri: &str, database: &str, opts: StoreOptions) -> Result<Self> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| DataSyncError::internal("invalid MongoDB connection string", e))?;
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(5));
        let client = Client::with_options(options)
            .map_err(|e| DataSyncError::internal("cannot create the MongoDB client", e))?;
        let store = Self::from_database(client.database(database), opts);
        store
            .inner
            .db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| DataSyncError::internal("cannot reach MongoDB", e))?;
        Ok(store)
    }

    /// Uses an existing driver database handle (custom client options, sessions, ...).
    pub fn from_database(db: Database, opts: StoreOptions) -> Self {
        MongoStore {
            inner: Arc::new(Inner {
                db,
                ready: Mutex::new(HashSet::new()),
                owners: CollectionOwners::default(),
                key: tokio::sync::OnceCell::new(),
                purges: PurgeSchedule::default(),
                purger: std::sync::Once::new(),
                hub: opts.new_hub(),
                opts,
            }),
        }
    }

    /// The key sealing this database's sync tokens: the configured one, or the one kept in
    /// the database (the first process to need it stores a random one; all share it).
    async fn key(&self) -> Result<&TokenKey> {
        self.inner
            .key
            .get_or_try_init(|| async {
                if let Some(key) = self.inner.opts.configured_token_key() {
                    return Ok(key.clone());
                }
                let fresh = TokenKey::random();
                let secret = Bson::Binary(mongodb::bson::Binary {
                    subtype: mongodb::bson::spec::BinarySubtype::Generic,
                    bytes: fresh.secret().to_vec(),
                });
                // Concurrent first uses race to insert; the loser's duplicate key is harmless.
                let inserted = self
                    .counters()
                    .update_one(
                        doc! { "_id": TOKEN_KEY_ID },
                        doc! { "$setOnInsert": { "secret": secret } },
                    )
                    .upsert(true)
                    .await;
                match inserted {
                    Err(e) if !is_duplicate_key(&e) => return Err(db_error(e)),
                    _ => {}
                }
                let stored = self
                    .counters()
                    .find_one(doc! { "_id": TOKEN_KEY_ID })
                    .await
                    .map_err(db_error)?;
                match stored.as_ref().and_then(|d| d.get("secret")) {
                    Some(Bson::Binary(b)) => Ok(TokenKey::from_secret(&b.bytes)),
                    other => Err(DataSyncError::internal(
                        "the MongoDB store failed",
                        format!("unreadable token key document: {other:?}"),
                    )),
                }
            })
            .await
    }

    /// Starts the task that purges every collection in use once per purge interval, for as
    /// long as the store lives.
    fn spawn_purger(&self) {
        let period = self.inner.opts.purge_every();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if period.is_zero() {
            return;
        }
        self.inner.purger.call_once(|| {
            let weak = Arc::downgrade(&self.inner);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(period.max(Duration::from_millis(100))).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let store = MongoStore { inner };
                    let specs = store.inner.owners.specs();
                    for spec in specs {
                        if let Err(e) = store.purge(spec).await {
                            tracing::warn!(target: "datasync", "purging {} failed: {e}", spec.collection);
                        }
                    }
                }
            });
        });
    }

    fn data(&self, spec: &ModelSpec) -> Collection<Document> {
        self.inner.db.collection(spec.collection)
    }

    fn counters(&self) -> Collection<Document> {
        self.inner.db.collection(COUNTERS)
    }

    /// Creates the collection's indexes and counter document, once per process (again after
    /// a failure). Index creation is idempotent.
    async fn ensure(&self, spec: &'static ModelSpec) -> Result<()> {
        self.inner.owners.claim(spec)?;
        if self
            .inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(spec.collection)
        {
            return Ok(());
        }
        let coll = self.data(spec);
        self.drop_ttl_index(&coll).await?;
        let indexes = [
            IndexModel::builder().keys(doc! { "_seq": 1 }).build(),
            IndexModel::builder().keys(doc! { "_deleted": 1 }).build(),
            IndexModel::builder().keys(doc! { "_expireAt": 1 }).build(),
        ];
        for index in indexes {
            if let Err(e) = coll.create_index(index).await {
                // An index with other options (say, a changed retention) stays as it is.
                if !matches!(*e.kind, ErrorKind::Command(ref c) if c.code == 85 || c.code == 86) {
                    return Err(db_error(e));
                }
                tracing::warn!(target: "datasync", "keeping an existing index on {}: {e}", spec.collection);
            }
        }
        self.counters()
            .update_one(
                doc! { "_id": spec.collection },
                doc! { "$setOnInsert": { "seq": 0i64, "lastMs": 0i64, "purgedSeq": 0i64, "purgedMs": 0i64 } },
            )
            .upsert(true)
            .await
            .map_err(db_error)?;
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.collection);
        self.spawn_purger();
        Ok(())
    }

    /// Removes a TTL index on `_expireAt` (earlier versions made one as a backstop): MongoDB
    /// would delete tombstones behind the purge watermark's back, and clients holding those
    /// records would never be told to resync.
    async fn drop_ttl_index(&self, coll: &Collection<Document>) -> Result<()> {
        let indexes: Vec<IndexModel> = match coll.list_indexes().await {
            Ok(cursor) => cursor.try_collect().await.map_err(db_error)?,
            // No collection yet (code 26, NamespaceNotFound): no index either.
            Err(e) if matches!(*e.kind, ErrorKind::Command(ref c) if c.code == 26) => Vec::new(),
            Err(e) => return Err(db_error(e)),
        };
        for index in indexes {
            let options = index.options.as_ref();
            let ttl = options.and_then(|o| o.expire_after).is_some();
            if ttl && index.keys.contains_key("_expireAt") {
                let name = options
                    .and_then(|o| o.name.clone())
                    .unwrap_or_else(|| "_expireAt_1".to_owned());
                tracing::warn!(target: "datasync", "dropping the TTL index {name} of {}: tombstones are purged by datasync", coll.name());
                coll.drop_index(name).await.map_err(db_error)?;
            }
        }
        Ok(())
    }

    /// Takes the next sequence number and announces it: the reservation says "a position
    /// above `lo` and at most the counter may still be written".
    async fn reserve(&self, spec: &ModelSpec) -> Result<Reservation> {
        let counters = self.counters();
        let current = counters
            .find_one(doc! { "_id": spec.collection })
            .await
            .map_err(db_error)?;
        let lo = current.and_then(|c| int(c.get("seq"))).unwrap_or(0);
        let now = self.inner.opts.now_millis();
        let key = uuid::Uuid::new_v4().simple().to_string();
        let mut set = Document::new();
        set.insert(format!("res.{key}.lo"), lo);
        // The reservation's age is measured on the database's clock, never a writer's.
        let mut stamp = Document::new();
        stamp.insert(format!("res.{key}.at"), true);
        // Upsert: a counter that vanished (a replaced server) starts again at zero.
        let counter = counters
            .find_one_and_update(
                doc! { "_id": spec.collection },
                doc! {
                    "$inc": { "seq": 1i64 },
                    "$max": { "lastMs": now },
                    "$set": set,
                    "$currentDate": stamp,
                },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_error)?
            .unwrap_or_default();
        Ok(Reservation {
            key,
            seq: int(counter.get("seq")).unwrap_or(0),
            ms: int(counter.get("lastMs")).unwrap_or(now),
        })
    }

    /// Withdraws a reservation once its write is done (or failed). If this fails, readers
    /// wait for the reservation until it times out, which costs duplicates, never changes.
    async fn release(&self, spec: &ModelSpec, reservation: &Reservation) {
        let mut unset = Document::new();
        unset.insert(format!("res.{}", reservation.key), "");
        if let Err(e) = self
            .counters()
            .update_one(doc! { "_id": spec.collection }, doc! { "$unset": unset })
            .await
        {
            tracing::warn!(target: "datasync", "cannot withdraw a write reservation: {e}");
        }
    }

    async fn get_record(&self, spec: &'static ModelSpec, id: &str) -> Result<Option<StoredRecord>> {
        let found = self
            .data(spec)
            .find_one(doc! { "_id": id })
            .await
            .map_err(db_error)?;
        match found {
            Some(d) if !is_husk(&d) => decode(d).map(|(rec, _)| Some(rec)),
            _ => Ok(None),
        }
    }

    /// Purges tombstones past their expiry: raises the purge watermark first, then reduces
    /// each to a husk (`_id`, `_version`, `_purged`), so that a re-created id continues its
    /// version numbers.
    async fn purge(&self, spec: &'static ModelSpec) -> Result<u64> {
        let coll = self.data(spec);
        let now = BsonDateTime::from_millis(self.inner.opts.now_millis());
        let due = doc! { "_deleted": true, "_expireAt": { "$lte": now } };
        let Some(newest) = coll
            .find_one(due.clone())
            .sort(doc! { "_seq": -1 })
            .await
            .map_err(db_error)?
        else {
            return Ok(0);
        };
        let (seq, ms) = (
            int(newest.get("_seq")).unwrap_or(0),
            int(newest.get("updatedAt")).unwrap_or(0),
        );
        self.counters()
            .update_one(
                doc! { "_id": spec.collection },
                doc! { "$max": { "purgedSeq": seq, "purgedMs": ms } },
            )
            .await
            .map_err(db_error)?;
        let mut filter = due;
        filter.insert("_seq", doc! { "$lte": seq });
        let mut unset = Document::new();
        for key in META_KEYS
            .iter()
            .filter(|k| !matches!(**k, "_id" | "_version" | "_deleted" | "_purged"))
            .copied()
            .chain(spec.fields.iter().map(|f| f.name))
        {
            unset.insert(key, "");
        }
        let husked = coll
            .update_many(
                filter,
                doc! { "$set": { "_purged": true }, "$unset": unset },
            )
            .await
            .map_err(db_error)?;
        Ok(husked.modified_count)
    }

    async fn sync_page(&self, spec: &'static ModelSpec, request: &SyncRequest) -> Result<SyncPage> {
        let key = self.key().await?;
        let cursor = request.since.verify(key, spec.collection)?.clone();
        let opts = &self.inner.opts;
        if self
            .inner
            .purges
            .due(spec.collection, opts.now_millis(), opts.purge_every())
        {
            // Housekeeping: the page is exact with or without it.
            if let Err(e) = self.purge(spec).await {
                tracing::warn!(target: "datasync", "purging {} failed: {e}", spec.collection);
            }
        }
        // Read the counter and the database's time in one step.
        let counter = self
            .counters()
            .find_one_and_update(
                doc! { "_id": spec.collection },
                doc! { "$currentDate": { "readAt": true } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_error)?
            .unwrap_or_default();
        let top = int(counter.get("seq")).unwrap_or(0);
        let purged = watermark(&counter);
        check_cursor(&cursor, top, purged)?;
        let (in_flight, oldest_lo, overflow) = self.in_flight(spec, &counter, top).await;

        // Only positions up to `top` (read above): a later position may belong to a write
        // that began after that read and is not announced in `in_flight`.
        let upto = doc! { "_seq": { "$lte": top } };
        let (from, pending, query) = match &cursor {
            Cursor::Beginning => (
                0,
                Vec::new(),
                doc! { "$and": [upto, mongo_filter::query(&request.filter)] },
            ),
            Cursor::Millis(ms) => (
                0,
                Vec::new(),
                doc! { "$and": [upto, { "updatedAt": { "$gt": ms } }] },
            ),
            Cursor::Seq { seq, pending, .. } if pending.is_empty() => (
                *seq,
                Vec::new(),
                doc! { "_seq": { "$gt": seq, "$lte": top } },
            ),
            Cursor::Seq { seq, pending, .. } => (
                *seq,
                pending.clone(),
                doc! { "$or": [
                    { "_seq": { "$gt": seq, "$lte": top } },
                    { "_seq": { "$in": pending.clone() } },
                ] },
            ),
        };
        let query = if request.scope == Filter::All {
            query
        } else {
            doc! { "$and": [query, mongo_filter::query(&request.scope)] }
        };
        let limit = i64::from(request.limit);
        let docs: Vec<Document> = self
            .data(spec)
            .find(query)
            .sort(doc! { "_seq": 1 })
            .limit(limit + 1)
            .batch_size(u32::try_from(limit + 1).unwrap_or(u32::MAX))
            .await
            .map_err(db_error)?
            .try_collect()
            .await
            .map_err(db_error)?;

        // A purge by another request between the check above and the query may have removed
        // a tombstone this client has not seen: check again against the newest watermark.
        let now_purged = self
            .counters()
            .find_one(doc! { "_id": spec.collection })
            .await
            .map_err(db_error)?
            .map_or(purged, |c| watermark(&c));
        if now_purged != purged {
            check_cursor(&cursor, top, now_purged)?;
        }

        let mut rows = docs.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
        let mut has_more = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);

        let matching = self.matching(spec, request, &cursor, &rows).await?;
        let returned: HashSet<i64> = rows.iter().map(|(_, seq)| *seq).collect();
        let last = rows.last().map_or(from, |(_, seq)| *seq);
        let mut next_cursor = if has_more {
            from.max(last)
        } else {
            top.max(from)
        };
        // Still owed: pending positions not returned that are still in flight or were not
        // reached on this page, and positions newly passed by the cursor whose writes are in
        // flight. Positions at or below the old cursor are never added again, so every page
        // either moves the cursor or shrinks the pending set.
        let owed_from = |next_cursor: i64| -> BTreeSet<i64> {
            let mut owed: BTreeSet<i64> = pending
                .iter()
                .copied()
                .filter(|p| {
                    !returned.contains(p) && ((has_more && *p > last) || in_flight.contains(p))
                })
                .collect();
            // (`range` panics on an empty interval written backwards.)
            if next_cursor > from {
                owed.extend(
                    in_flight
                        .range(from + 1..=next_cursor)
                        .filter(|p| !returned.contains(p)),
                );
            }
            owed
        };
        let mut owed = owed_from(next_cursor);
        if overflow || owed.len() > SyncToken::MAX_PENDING {
            // Too many writes in flight to name them all: stop the cursor below the oldest
            // reservation (everything above it is delivered later, some of it twice).
            next_cursor = from.max(oldest_lo.unwrap_or(from));
            has_more = false;
            owed = pending
                .iter()
                .copied()
                .filter(|p| *p <= next_cursor)
                .collect();
        }
        // Every position at or below `origin` was committed before this page read anything.
        let origin = top.min(oldest_lo.unwrap_or(top));
        let next = Cursor::Seq {
            seq: next_cursor,
            pending: owed.into_iter().collect(),
            watermark: next_watermark(&cursor, now_purged, origin),
        };
        Ok(SyncPage {
            items: rows
                .into_iter()
                .map(|(record, _)| {
                    let matches = matching.as_ref().is_none_or(|m| m.contains(&record.id));
                    SyncItem { record, matches }
                })
                .collect(),
            next: SyncToken::issue(next, key, spec.collection),
            has_more,
        })
    }

    /// The current end of the change log: the counter, with the positions below it that may
    /// still be written pending.
    async fn head_token(&self, spec: &'static ModelSpec) -> Result<SyncToken> {
        let key = self.key().await?;
        let counter = self
            .counters()
            .find_one_and_update(
                doc! { "_id": spec.collection },
                doc! { "$currentDate": { "readAt": true } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_error)?
            .unwrap_or_default();
        let top = int(counter.get("seq")).unwrap_or(0);
        let (in_flight, oldest_lo, overflow) = self.in_flight(spec, &counter, top).await;
        let cursor = if overflow || in_flight.len() > SyncToken::MAX_PENDING {
            Cursor::Seq {
                seq: oldest_lo.unwrap_or(top),
                pending: Vec::new(),
                watermark: watermark(&counter).seq,
            }
        } else {
            Cursor::Seq {
                seq: top,
                pending: in_flight.into_iter().collect(),
                watermark: watermark(&counter).seq,
            }
        };
        Ok(SyncToken::issue(cursor, key, spec.collection))
    }

    /// Ids on the page that match the request's filter (`None`: all of them do).
    async fn matching(
        &self,
        spec: &'static ModelSpec,
        request: &SyncRequest,
        cursor: &Cursor,
        rows: &[(StoredRecord, i64)],
    ) -> Result<Option<HashSet<String>>> {
        if request.filter == Filter::All || *cursor == Cursor::Beginning || rows.is_empty() {
            return Ok(None);
        }
        let ids: Vec<&str> = rows.iter().map(|(r, _)| r.id.as_str()).collect();
        let query =
            doc! { "$and": [{ "_id": { "$in": ids } }, mongo_filter::query(&request.filter)] };
        let found: Vec<Document> = self
            .data(spec)
            .find(query)
            .projection(doc! { "_id": 1 })
            .await
            .map_err(db_error)?
            .try_collect()
            .await
            .map_err(db_error)?;
        Ok(Some(
            found
                .iter()
                .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
                .collect(),
        ))
    }

    /// Positions that may still be written: for each live reservation, everything above its
    /// `lo` up to `top`; the lowest live `lo`; and whether a range was too large to list.
    /// Reservations older than the timeout (by
    /// the database's clock, read with the counter) are dropped from the counter document.
    async fn in_flight(
        &self,
        spec: &ModelSpec,
        counter: &Document,
        top: i64,
    ) -> (BTreeSet<i64>, Option<i64>, bool) {
        let now = counter
            .get_datetime("readAt")
            .map_or(0, |d| d.timestamp_millis());
        let mut positions = BTreeSet::new();
        let mut oldest_lo: Option<i64> = None;
        let mut overflow = false;
        let mut dead = Document::new();
        if let Ok(reservations) = counter.get_document("res") {
            for (key, r) in reservations {
                let Some(r) = r.as_document() else { continue };
                let lo = int(r.get("lo")).unwrap_or(0);
                let at = r.get_datetime("at").map_or(0, |d| d.timestamp_millis());
                if now - at > RESERVATION_TIMEOUT_MS {
                    dead.insert(format!("res.{key}"), "");
                } else {
                    oldest_lo = Some(oldest_lo.map_or(lo, |o| o.min(lo)));
                    if top - lo > SyncToken::MAX_PENDING as i64 {
                        // Too many to name: the caller stops below the oldest reservation.
                        overflow = true;
                    } else {
                        positions.extend((lo + 1)..=top);
                    }
                }
            }
        }
        if !dead.is_empty() {
            let _ = self
                .counters()
                .update_one(doc! { "_id": spec.collection }, doc! { "$unset": dead })
                .await;
        }
        (positions, oldest_lo, overflow)
    }

    async fn insert_record(
        &self,
        spec: &'static ModelSpec,
        id: &str,
        data: Data,
    ) -> Result<InsertOutcome> {
        // A husk that appears or goes between looking for it and inserting makes the attempt
        // void; a few attempts settle it.
        for _ in 0..4 {
            if let Some(outcome) = self.try_insert(spec, id, &data).await? {
                return Ok(outcome);
            }
        }
        Err(DataSyncError::internal(
            "the record could not be created",
            format!(
                "{}: id {id:?} kept being purged and re-created",
                spec.collection
            ),
        ))
    }

    /// One attempt at a create; `None` when a concurrent purge or re-creation of the id got
    /// in between.
    async fn try_insert(
        &self,
        spec: &'static ModelSpec,
        id: &str,
        data: &Data,
    ) -> Result<Option<InsertOutcome>> {
        let coll = self.data(spec);
        // An id whose tombstone was purged left a husk with its last version: the new record
        // replaces that husk and continues after its version.
        let husk = coll
            .find_one(doc! { "_id": id, "_purged": true })
            .await
            .map_err(db_error)?;
        let previous = husk.as_ref().and_then(|h| int(h.get("_version")));
        let version = previous.map_or(1, |v| v.saturating_add(1));
        let r = self.reserve(spec).await?;
        let mut document = to_bson_document(data);
        document.insert("_id", id);
        document.insert("_version", version);
        document.insert("_deleted", false);
        document.insert("createdAt", r.ms);
        document.insert("updatedAt", r.ms);
        document.insert("_seq", r.seq);
        if previous.is_some() {
            document.insert("_first", version);
        }
        let written = match previous {
            None => coll.insert_one(document).await.map(|_| true),
            Some(v) => coll
                .replace_one(doc! { "_id": id, "_purged": true, "_version": v }, document)
                .await
                .map(|r| r.matched_count == 1),
        };
        self.release(spec, &r).await;
        match written {
            Ok(true) => Ok(Some(InsertOutcome::Inserted(StoredRecord {
                id: id.to_owned(),
                data: data.clone(),
                meta: SyncMeta {
                    version,
                    created_at: r.ms,
                    updated_at: r.ms,
                    deleted: false,
                },
                field_versions: FieldVersions::new(),
                created_version: version,
            }))),
            Ok(false) => Ok(self.get_record(spec, id).await?.map(InsertOutcome::Exists)),
            Err(e) if is_duplicate_key(&e) => match self.get_record(spec, id).await? {
                Some(existing) => Ok(Some(InsertOutcome::Exists(existing))),
                None => Ok(None),
            },
            Err(e) => Err(db_error(e)),
        }
    }

    async fn cas_record(
        &self,
        spec: &'static ModelSpec,
        expected: &StoredRecord,
        new: Replacement,
    ) -> Result<CasOutcome> {
        let r = self.reserve(spec).await?;
        // The whole document is replaced (the data plus fresh metadata): a restored tombstone
        // thereby loses its expiry, and every value keeps its BSON type.
        let mut document = to_bson_document(&new.data);
        document.insert("_id", expected.id.as_str());
        document.insert("_version", expected.meta.version + 1);
        document.insert("_deleted", new.deleted);
        document.insert("createdAt", expected.meta.created_at);
        document.insert("updatedAt", r.ms);
        document.insert("_seq", r.seq);
        document.insert("_fv", field_versions_bson(&new.field_versions));
        if expected.created_version != 1 {
            document.insert("_first", expected.created_version);
        }
        if new.deleted {
            let retention =
                i64::try_from(self.inner.opts.retention().as_millis()).unwrap_or(i64::MAX);
            document.insert(
                "_expireAt",
                BsonDateTime::from_millis(r.ms.saturating_add(retention)),
            );
        }
        let written = self
            .data(spec)
            .find_one_and_replace(
                doc! { "_id": expected.id.as_str(), "_version": expected.meta.version },
                document,
            )
            .return_document(ReturnDocument::After)
            .await;
        self.release(spec, &r).await;
        match written.map_err(db_error)? {
            Some(doc) => Ok(CasOutcome::Written(decode(doc)?.0)),
            None => Ok(CasOutcome::Stale(
                self.get_record(spec, &expected.id).await?,
            )),
        }
    }

    async fn find_records(
        &self,
        spec: &'static ModelSpec,
        query: &FindQuery,
    ) -> Result<FindResult> {
        let condition = mongo_filter::query(&query.filter);
        let filter = if condition.is_empty() {
            doc! { "_deleted": { "$ne": true } }
        } else {
            doc! { "$and": [{ "_deleted": { "$ne": true } }, condition] }
        };
        let coll = self.data(spec);
        let count = if query.count {
            Some(
                coll.count_documents(filter.clone())
                    .await
                    .map_err(db_error)?,
            )
        } else {
            None
        };
        // MongoDB reads `limit(0)` as "no limit".
        let items = if query.limit == Some(0) {
            Vec::new()
        } else {
            let mut find = coll
                .find(filter)
                .sort(mongo_filter::sort(&query.order))
                .skip(query.offset);
            if let Some(limit) = query.limit {
                find = find.limit(i64::try_from(limit).unwrap_or(i64::MAX));
            }
            let docs: Vec<Document> = find
                .await
                .map_err(db_error)?
                .try_collect()
                .await
                .map_err(db_error)?;
            docs.into_iter()
                .map(|d| decode(d).map(|(rec, _)| rec))
                .collect::<Result<_>>()?
        };
        Ok(FindResult { items, count })
    }
}

impl MongoStore {
    /// Runs one operation after making sure the collection is set up. A lost connection
    /// forgets that it was, so the next operation sets it up again (the server may have been
    /// replaced meanwhile); other failures, and input errors above all, leave it alone.
    async fn run<T>(
        &self,
        spec: &'static ModelSpec,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.ensure(spec).await?;
        let lost_before = CONNECTION_LOSSES.load(Ordering::Relaxed);
        let result = op.await;
        if result.is_err() && CONNECTION_LOSSES.load(Ordering::Relaxed) != lost_before {
            self.inner
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(spec.collection);
        }
        result
    }

    /// The driver's database handle.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Creates `M`'s indexes and counter document now (idempotent), instead of on the first
    /// operation: call it at start-up, right after connecting.
    ///
    /// ```no_run
    /// # async fn demo<Note: datasync_core::Model>() -> datasync_core::Result<()> {
    /// let store = datasync_core::MongoStore::connect("mongodb://localhost:27017", "app").await?;
    /// store.prepare::<Note>().await?;
    /// # Ok(()) }
    /// ```
    pub async fn prepare<M: crate::model::Model>(&self) -> Result<()> {
        self.ensure(M::spec()).await
    }
}

impl Store for MongoStore {
    fn get<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        Box::pin(self.run(spec, self.get_record(spec, id)))
    }

    fn insert<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
        data: Data,
    ) -> BoxFuture<'a, Result<InsertOutcome>> {
        Box::pin(async move {
            let outcome = self.run(spec, self.insert_record(spec, id, data)).await?;
            if matches!(outcome, InsertOutcome::Inserted(_)) {
                self.inner.hub.notify(spec.collection);
            }
            Ok(outcome)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        spec: &'static ModelSpec,
        expected: &'a StoredRecord,
        new: Replacement,
    ) -> BoxFuture<'a, Result<CasOutcome>> {
        Box::pin(async move {
            let outcome = self.run(spec, self.cas_record(spec, expected, new)).await?;
            if matches!(outcome, CasOutcome::Written(_)) {
                self.inner.hub.notify(spec.collection);
            }
            Ok(outcome)
        })
    }

    fn find<'a>(
        &'a self,
        spec: &'static ModelSpec,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<FindResult>> {
        Box::pin(self.run(spec, self.find_records(spec, query)))
    }

    fn sync<'a>(
        &'a self,
        spec: &'static ModelSpec,
        request: &'a SyncRequest,
    ) -> BoxFuture<'a, Result<SyncPage>> {
        Box::pin(self.run(spec, self.sync_page(spec, request)))
    }

    fn purge_tombstones<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.run(spec, self.purge(spec)))
    }

    fn head<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<SyncToken>> {
        Box::pin(self.run(spec, self.head_token(spec)))
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        Some(Arc::clone(&self.inner.hub))
    }
}

/// How many driver errors so far said the server could not be reached.
static CONNECTION_LOSSES: AtomicU64 = AtomicU64::new(0);

fn db_error(e: mongodb::error::Error) -> DataSyncError {
    if matches!(
        *e.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
    ) {
        CONNECTION_LOSSES.fetch_add(1, Ordering::Relaxed);
    }
    DataSyncError::internal("the MongoDB store failed", e)
}

/// The purge watermark kept in a collection's counter document.
fn watermark(counter: &Document) -> Watermark {
    Watermark {
        seq: int(counter.get("purgedSeq")).unwrap_or(0),
        ms: int(counter.get("purgedMs")).unwrap_or(0),
    }
}

/// A purged tombstone reduced to its id and last version.
fn is_husk(doc: &Document) -> bool {
    matches!(doc.get("_purged"), Some(Bson::Boolean(true)))
}

fn field_versions_bson(versions: &FieldVersions) -> Document {
    versions
        .iter()
        .map(|(k, v)| (k.clone(), Bson::Int64(*v)))
        .collect()
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
        || matches!(&*e.kind, ErrorKind::Command(c) if c.code == 11000)
}

/// Reads a number leniently: servers may hand back Int32 or Double where Int64 was written.
fn int(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// A stored document as a record, and its change position.
fn decode(mut doc: Document) -> Result<(StoredRecord, i64)> {
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
        deleted: match doc.get("_deleted") {
            Some(Bson::Boolean(b)) => *b,
            other => int(other).is_some_and(|i| i != 0),
        },
    };
    let seq = int(doc.get("_seq")).unwrap_or(0);
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
    Ok((
        StoredRecord {
            id,
            data,
            meta,
            field_versions,
            created_version,
        },
        seq,
    ))
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
