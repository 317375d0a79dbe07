//! The production store: MongoDB through the official driver.
//!
//! One collection per model; `_id` is the record id and the sync metadata lives beside the
//! data fields (`_version`, `_deleted`, `createdAt`, `updatedAt`, plus `_seq`, the change
//! position, `_u` while a write waits for its position, and `_expireAt` on tombstones). A
//! bookkeeping collection `_datasync_collections` holds one counter document per collection:
//! the change counter, the purge watermark, and the reservations of stamping runs in flight.
//!
//! Several server processes may write to one database, each with its own clock, and MongoDB
//! makes single-document writes visible in no particular order. A write is therefore one
//! plain driver call on its own record; change positions come from the database afterwards,
//! in batches (the `sequence` module), and a reader never moves its cursor past a position
//! that may still be written: see `docs/sync.md` ("MongoDB").

mod codec;
mod filter;
mod recent;
mod sequence;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database, IndexModel};

use self::codec::{decode, int, is_husk, position, Written, META_KEYS};
use self::filter::all_of;
use self::recent::Recent;
use self::sequence::{Sequencing, STAMP_DELAY};
use super::{
    check_cursor, next_watermark, sync_expired, BoxFuture, CasOutcome, CollectionOwners,
    InsertOutcome, PurgeSchedule, Replacement, Store, StoreOptions,
};
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::{Document as Data, FieldVersions, StoredRecord};
use crate::model::ModelSpec;
use crate::query::{FindQuery, FindResult, SyncItem, SyncPage, SyncRequest};
use crate::realtime::Hub;
use crate::token::{Cursor, SyncToken, TokenKey};

const COUNTERS: &str = "_datasync_collections";
/// The `_id` of the document in `COUNTERS` that holds the token key (no collection can be
/// named like that: names starting with `_datasync` are refused).
const TOKEN_KEY_ID: &str = "_datasync:token_key";

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
    /// Held while a collection is being made ready (one at a time per process).
    ensuring: tokio::sync::Mutex<()>,
    /// Which model each collection belongs to.
    owners: CollectionOwners,
    /// The key that seals sync tokens, read from (or made in) the database on first use.
    key: tokio::sync::OnceCell<TokenKey>,
    purges: PurgeSchedule,
    /// Whether the background purge task runs.
    purger: std::sync::Once,
    /// Stamping state per collection.
    sequencing: Sequencing,
    /// Collections written since the background stamper last ran, and its wake-up call.
    unstamped: Mutex<HashSet<&'static str>>,
    stamp_wanted: Arc<tokio::sync::Notify>,
    stamper: std::sync::Once,
    /// The newest `updatedAt` this process wrote: timestamps never go backwards here.
    last_ms: AtomicI64,
    /// Records written or read lately, to seed compare-and-set writes.
    recent: Recent,
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
                ensuring: tokio::sync::Mutex::new(()),
                owners: CollectionOwners::default(),
                key: tokio::sync::OnceCell::new(),
                purges: PurgeSchedule::default(),
                purger: std::sync::Once::new(),
                sequencing: Sequencing::default(),
                unstamped: Mutex::new(HashSet::new()),
                stamp_wanted: Arc::new(tokio::sync::Notify::new()),
                stamper: std::sync::Once::new(),
                last_ms: AtomicI64::new(0),
                recent: Recent::default(),
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

    /// Starts the task that gives positions to written records shortly after the writes (so
    /// that sync pages find little to do), for as long as the store lives.
    fn spawn_stamper(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.inner.stamper.call_once(|| {
            // The task holds the store weakly: it ends within a second of the store's end.
            let weak = Arc::downgrade(&self.inner);
            let wanted = Arc::clone(&self.inner.stamp_wanted);
            runtime.spawn(async move {
                loop {
                    let woken = tokio::time::timeout(Duration::from_secs(1), wanted.notified());
                    let woken = woken.await.is_ok();
                    if woken {
                        tokio::time::sleep(STAMP_DELAY).await;
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if !woken {
                        continue;
                    }
                    let store = MongoStore { inner };
                    let written: HashSet<&'static str> = std::mem::take(
                        &mut *store
                            .inner
                            .unstamped
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()),
                    );
                    for spec in store.inner.owners.specs() {
                        if !written.contains(spec.collection) {
                            continue;
                        }
                        match store.stamp(spec).await {
                            Ok(Some(key)) => store.withdraw(spec, &key).await,
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(target: "datasync", "stamping {} failed: {e}", spec.collection)
                            }
                        }
                    }
                }
            });
        });
    }

    /// Notes a write that waits for its position.
    fn wrote(&self, spec: &'static ModelSpec) {
        self.inner
            .unstamped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.collection);
        self.inner.stamp_wanted.notify_one();
        self.inner.hub.notify(spec.collection);
    }

    /// `updatedAt` for a write: this process's clock, never behind what it wrote before.
    fn write_ms(&self) -> i64 {
        let now = self.inner.opts.now_millis();
        self.inner.last_ms.fetch_max(now, Ordering::AcqRel).max(now)
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
        let ready = || {
            self.inner
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(spec.collection)
        };
        if ready() {
            return Ok(());
        }
        let _one_at_a_time = self.inner.ensuring.lock().await;
        if ready() {
            return Ok(());
        }
        let coll = self.data(spec);
        self.drop_ttl_index(&coll).await?;
        let indexes = [
            IndexModel::builder().keys(doc! { "_seq": 1 }).build(),
            IndexModel::builder().keys(doc! { "_deleted": 1 }).build(),
            IndexModel::builder().keys(doc! { "_expireAt": 1 }).build(),
            // Only records waiting for a position carry `_u`.
            IndexModel::builder()
                .keys(doc! { "_u": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .sparse(true)
                        .build(),
                )
                .build(),
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
                doc! { "$setOnInsert": { "seq": 0i64, "purgedSeq": 0i64, "purgedMs": 0i64 } },
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
        self.spawn_stamper();
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

    async fn get_record(&self, spec: &'static ModelSpec, id: &str) -> Result<Option<StoredRecord>> {
        let found = self
            .data(spec)
            .find_one(doc! { "_id": id })
            .await
            .map_err(db_error)?;
        match found {
            Some(d) if !is_husk(&d) => {
                let record = decode(d)?;
                self.inner.recent.put(spec.collection, &record);
                Ok(Some(record))
            }
            _ => {
                self.inner.recent.forget(spec.collection, id);
                Ok(None)
            }
        }
    }

    /// Purges tombstones past their expiry: raises the purge watermark first, then reduces
    /// each to a husk (`_id`, `_version`, `_deleted`, `_purged`, its position and its
    /// `updatedAt`): a re-created id continues its version numbers, and a sync page that
    /// meets the husk knows that a tombstone went.
    async fn purge(&self, spec: &'static ModelSpec) -> Result<u64> {
        // Tombstones waiting for a position get it first: the watermark is a position.
        if let Some(key) = self.stamp(spec).await? {
            self.withdraw(spec, &key).await;
        }
        self.purge_stamped(spec).await
    }

    /// [`Self::purge`] of the tombstones that have a position, in batches on the
    /// `_expireAt` index (husks and live records have none).
    async fn purge_stamped(&self, spec: &'static ModelSpec) -> Result<u64> {
        const BATCH: usize = 1000;
        let coll = self.data(spec);
        let now = BsonDateTime::from_millis(self.inner.opts.now_millis());
        let mut unset = Document::new();
        for key in META_KEYS
            .iter()
            .filter(|k| {
                !matches!(
                    **k,
                    "_id" | "_version" | "_deleted" | "_purged" | "_seq" | "updatedAt"
                )
            })
            .copied()
            .chain(spec.fields.iter().map(|f| f.name))
        {
            unset.insert(key, "");
        }
        let mut husked = 0;
        loop {
            let due = find_batch(
                &coll,
                doc! { "_expireAt": { "$lte": now } },
                doc! { "_id": 1, "_seq": 1, "updatedAt": 1, "_deleted": 1, "_u": 1 },
                doc! { "_expireAt": 1 },
                BATCH,
            )
            .await?;
            // Only tombstones with a position: the watermark is one.
            let ready: Vec<&Document> = due
                .iter()
                .filter(|d| !d.contains_key("_u") && position(d).is_some_and(|p| p > 0))
                .collect();
            let (Some(seq), Some(ms)) = (
                ready.iter().filter_map(|d| position(d)).max(),
                ready.iter().filter_map(|d| int(d.get("updatedAt"))).max(),
            ) else {
                return Ok(husked);
            };
            // The watermark first: a page that meets a husk knows it is covered.
            self.counters()
                .update_one(
                    doc! { "_id": spec.collection },
                    doc! { "$max": { "purgedSeq": seq, "purgedMs": ms } },
                )
                .await
                .map_err(db_error)?;
            let ids: Vec<Bson> = ready.iter().filter_map(|d| d.get("_id").cloned()).collect();
            // Each still a tombstone past its expiry, at or below the watermark (one written
            // again since has no position or a higher one, and stays).
            let done = coll
                .update_many(
                    doc! {
                        "_id": { "$in": ids },
                        "_expireAt": { "$lte": now },
                        "_deleted": true,
                        "_seq": { "$gt": 0i64, "$lte": seq },
                    },
                    doc! { "$set": { "_purged": true }, "$unset": unset.clone() },
                )
                .await
                .map_err(db_error)?;
            husked += done.modified_count;
            if due.len() < BATCH {
                return Ok(husked);
            }
        }
    }

    async fn sync_page(&self, spec: &'static ModelSpec, request: &SyncRequest) -> Result<SyncPage> {
        let key = self.key().await?;
        let cursor = request.since.verify(key, spec.collection)?.clone();
        let opts = &self.inner.opts;
        // Writes committed before this point get their positions now (most have them).
        let held = self.stamp(spec).await?;
        if self
            .inner
            .purges
            .due(spec.collection, opts.now_millis(), opts.purge_every())
        {
            // Housekeeping: the page is exact with or without it.
            if let Err(e) = self.purge_stamped(spec).await {
                tracing::warn!(target: "datasync", "purging {} failed: {e}", spec.collection);
            }
        }
        let counter = self.read_counter(spec, held).await?;
        let top = counter.top;
        check_cursor(&cursor, top, counter.purged)?;
        let flight = self.in_flight(spec, &counter).await?;

        let (from, pending) = match &cursor {
            Cursor::Seq { seq, pending, .. } => (*seq, pending.clone()),
            Cursor::Beginning | Cursor::Millis(_) => (0, Vec::new()),
        };
        let limit = request.limit as usize;
        let scope = filter::query(&request.scope);
        // Pending positions (all below the cursor) first, then positions after the cursor,
        // up to `top` (read above): a later position may belong to a stamping run that began
        // after that read and is not in `flight`.
        let mut docs = if pending.is_empty() {
            Vec::new()
        } else {
            let query = all_of([doc! { "_seq": { "$in": pending.clone() } }, scope.clone()]);
            self.page_query(spec, query, None).await?
        };
        if docs.len() <= limit {
            let range = match &cursor {
                Cursor::Beginning => all_of([
                    doc! { "_seq": { "$lte": top }, "_purged": { "$exists": false } },
                    filter::query(&request.filter),
                    scope,
                ]),
                Cursor::Millis(ms) => all_of([
                    doc! { "_seq": { "$lte": top }, "updatedAt": { "$gt": ms } },
                    scope,
                ]),
                Cursor::Seq { seq, .. } => {
                    all_of([doc! { "_seq": { "$gt": seq, "$lte": top } }, scope])
                }
            };
            let rest = self
                .page_query(spec, range, Some(limit + 1 - docs.len()))
                .await?;
            docs.extend(rest);
        }
        let mut has_more = docs.len() > limit;
        docs.truncate(limit);

        // Each position on the page, with its record (none for a husk).
        let mut rows: Vec<(Option<StoredRecord>, i64)> = Vec::with_capacity(docs.len());
        for doc in docs {
            let seq = position(&doc).unwrap_or(0);
            if is_husk(&doc) {
                // A tombstone purged after this page read the watermark (the husk keeps its
                // position, so the page meets it). Fine if the client cannot hold the record.
                let harmless = match &cursor {
                    Cursor::Beginning => true,
                    Cursor::Seq { watermark, .. } => seq <= *watermark,
                    Cursor::Millis(_) => false,
                };
                if !harmless {
                    return Err(sync_expired());
                }
                rows.push((None, seq));
            } else {
                rows.push((Some(decode(doc)?), seq));
            }
        }

        let returned: HashSet<i64> = rows.iter().map(|(_, seq)| *seq).collect();
        let last = rows.last().map_or(from, |(_, seq)| *seq);
        let mut next_cursor = if has_more {
            from.max(last)
        } else {
            top.max(from)
        };
        // Still owed: pending positions not returned that are still in flight or were not
        // reached on this page, and positions newly passed by the cursor that are in flight.
        // Positions at or below the old cursor are never added again, so every page either
        // moves the cursor or shrinks the pending set.
        let owed_from = |next_cursor: i64| -> BTreeSet<i64> {
            let mut owed: BTreeSet<i64> = pending
                .iter()
                .copied()
                .filter(|p| {
                    !returned.contains(p)
                        && ((has_more && *p > last) || flight.positions.contains(p))
                })
                .collect();
            // (`range` panics on an empty interval written backwards.)
            if next_cursor > from {
                owed.extend(
                    flight
                        .positions
                        .range(from + 1..=next_cursor)
                        .filter(|p| !returned.contains(p)),
                );
            }
            owed
        };
        let mut owed = owed_from(next_cursor);
        if flight.overflow || owed.len() > SyncToken::MAX_PENDING {
            // Too many positions in flight to name them all: stop the cursor below the oldest
            // reservation (everything above it is delivered later, some of it twice).
            next_cursor = from.max(flight.oldest_lo.unwrap_or(from));
            has_more = false;
            owed = pending
                .iter()
                .copied()
                .filter(|p| *p <= next_cursor)
                .collect();
        }
        // Every position at or below `origin` was written before this page read anything.
        let origin = top.min(flight.oldest_lo.unwrap_or(top));
        let next = Cursor::Seq {
            seq: next_cursor,
            pending: owed.into_iter().collect(),
            watermark: next_watermark(&cursor, counter.purged, origin),
        };
        // A record that changed and no longer matches the filter reaches the client as a
        // removal; a first sync only asked for matching ones.
        let check = request.filter != Filter::All && cursor != Cursor::Beginning;
        Ok(SyncPage {
            items: rows
                .into_iter()
                .filter_map(|(record, _)| record)
                .map(|record| SyncItem {
                    matches: !check || request.filter.matches(&record),
                    record,
                })
                .collect(),
            next: SyncToken::issue(next, key, spec.collection),
            has_more,
        })
    }

    /// Records matching `query` in change order, at most `limit`.
    async fn page_query(
        &self,
        spec: &'static ModelSpec,
        query: Document,
        limit: Option<usize>,
    ) -> Result<Vec<Document>> {
        let coll = self.data(spec);
        let mut find = coll.find(query).sort(doc! { "_seq": 1 });
        if let Some(limit) = limit {
            find = find
                .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                .batch_size(u32::try_from(limit).unwrap_or(u32::MAX));
        }
        find.await
            .map_err(db_error)?
            .try_collect()
            .await
            .map_err(db_error)
    }

    /// The current end of the change log: the counter, with the positions below it that may
    /// still be written pending.
    async fn head_token(&self, spec: &'static ModelSpec) -> Result<SyncToken> {
        let key = self.key().await?;
        let counter = self.read_counter(spec, None).await?;
        let top = counter.top;
        let flight = self.in_flight(spec, &counter).await?;
        let cursor = if flight.overflow || flight.positions.len() > SyncToken::MAX_PENDING {
            Cursor::Seq {
                seq: flight.oldest_lo.unwrap_or(top),
                pending: Vec::new(),
                watermark: counter.purged.seq,
            }
        } else {
            Cursor::Seq {
                seq: top,
                pending: flight.positions.into_iter().collect(),
                watermark: counter.purged.seq,
            }
        };
        Ok(SyncToken::issue(cursor, key, spec.collection))
    }

    async fn insert_record(
        &self,
        spec: &'static ModelSpec,
        id: &str,
        data: Data,
    ) -> Result<InsertOutcome> {
        // A husk that appears or goes between the insert and looking at what took the id
        // makes the attempt void; a few attempts settle it.
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

    /// One attempt at a create: one insert, unless the id is taken. `None` when a concurrent
    /// purge or re-creation of the id got in between.
    async fn try_insert(
        &self,
        spec: &'static ModelSpec,
        id: &str,
        data: &Data,
    ) -> Result<Option<InsertOutcome>> {
        let coll = self.data(spec);
        let ms = self.write_ms();
        let fresh = Written {
            id,
            data,
            version: 1,
            created_at: ms,
            updated_at: ms,
            deleted: false,
            field_versions: &FieldVersions::new(),
            created_version: 1,
            retention: self.inner.opts.retention(),
        };
        match coll.insert_one(fresh.document()).await {
            Ok(_) => return Ok(Some(InsertOutcome::Inserted(fresh.record()))),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(db_error(e)),
        }
        // The id is taken: by a record, or by the husk of a purged one, which the new record
        // replaces, continuing after the husk's version.
        let Some(existing) = coll.find_one(doc! { "_id": id }).await.map_err(db_error)? else {
            return Ok(None);
        };
        if !is_husk(&existing) {
            return Ok(Some(InsertOutcome::Exists(decode(existing)?)));
        }
        let previous = int(existing.get("_version")).unwrap_or(0);
        let version = previous.saturating_add(1);
        let again = Written {
            version,
            created_version: version,
            ..fresh
        };
        let replaced = coll
            .replace_one(
                doc! { "_id": id, "_purged": true, "_version": previous },
                again.document(),
            )
            .await
            .map_err(db_error)?;
        Ok((replaced.matched_count == 1).then(|| InsertOutcome::Inserted(again.record())))
    }

    async fn cas_record(
        &self,
        spec: &'static ModelSpec,
        expected: &StoredRecord,
        new: Replacement,
    ) -> Result<CasOutcome> {
        let written = Written {
            id: &expected.id,
            data: &new.data,
            version: expected.meta.version + 1,
            created_at: expected.meta.created_at,
            // A record's own timestamps never go backwards, whichever process writes it.
            updated_at: self.write_ms().max(expected.meta.updated_at),
            deleted: new.deleted,
            field_versions: &new.field_versions,
            created_version: expected.created_version,
            retention: self.inner.opts.retention(),
        };
        // The whole document is replaced (the data plus fresh metadata): a restored tombstone
        // thereby loses its expiry, and every value keeps its BSON type.
        let replaced = self
            .data(spec)
            .replace_one(
                doc! {
                    "_id": expected.id.as_str(),
                    "_version": expected.meta.version,
                    "_purged": { "$exists": false },
                },
                written.document(),
            )
            .await
            .map_err(db_error)?;
        if replaced.matched_count == 1 {
            Ok(CasOutcome::Written(written.record()))
        } else {
            Ok(CasOutcome::Stale(
                self.get_record(spec, &expected.id).await?,
            ))
        }
    }

    async fn find_records(
        &self,
        spec: &'static ModelSpec,
        query: &FindQuery,
    ) -> Result<FindResult> {
        let condition = filter::query(&query.filter);
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
                .sort(filter::sort(&query.order))
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
            docs.into_iter().map(decode).collect::<Result<_>>()?
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
            if let InsertOutcome::Inserted(record) = &outcome {
                self.inner.recent.put(spec.collection, record);
                self.wrote(spec);
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
            if let CasOutcome::Written(record) = &outcome {
                self.inner.recent.put(spec.collection, record);
                self.wrote(spec);
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

    fn recent(&self, spec: &'static ModelSpec, id: &str) -> Option<StoredRecord> {
        self.inner.recent.get(spec.collection, id)
    }
}

/// How many driver errors so far said the server could not be reached.
static CONNECTION_LOSSES: AtomicU64 = AtomicU64::new(0);

/// At most `limit` documents matching `filter` (only the `projection` fields), in `sort`
/// order, fetched in one batch.
async fn find_batch(
    coll: &Collection<Document>,
    filter: Document,
    projection: Document,
    sort: Document,
    limit: usize,
) -> Result<Vec<Document>> {
    coll.find(filter)
        .projection(projection)
        .sort(sort)
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .batch_size(u32::try_from(limit).unwrap_or(u32::MAX))
        .await
        .map_err(db_error)?
        .try_collect()
        .await
        .map_err(db_error)
}

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

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
        || matches!(&*e.kind, ErrorKind::Command(c) if c.code == 11000)
}
