//! The storage seam: the [`Store`] trait and its implementations.
//!
//! A store keeps, per collection, documents with their sync metadata and a change sequence.
//! It offers exactly the primitives the [`Repository`](crate::Repository) needs to keep the
//! sync guarantees: an atomic insert-if-absent, an atomic compare-and-set on `_version`,
//! filtered/ordered/paged reads, and change-ordered sync pages. Conflict handling, patching
//! and validation happen above it, so every store behaves the same.

// Built without a store feature, only the trait is left, and the stores' shared helpers
// have no user.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "mongodb")),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "mongodb")]
pub mod mongo;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_filter;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::{Document, FieldVersions, StoredRecord};
use crate::model::ModelSpec;
use crate::query::{FindQuery, FindResult, SyncPage, SyncRequest};
use crate::realtime::Hub;
use crate::token::{Cursor, SyncToken, TokenKey};

/// The purge watermark of a collection: the newest position and the newest `updatedAt` among
/// the tombstones purged so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Watermark {
    pub seq: i64,
    pub ms: i64,
}

/// `SYNC_EXPIRED` unless `cursor` is still good for a collection whose change counter is at
/// `counter` and whose purge watermark is `purged`.
///
/// The rule is exact: a client is expired when a purge it has not been checked against (the
/// watermark moved past the one in its token) removed a tombstone it has not received (one
/// after its cursor, or one of its pending positions). A client that started from "0" after a
/// tombstone was written never held that record, so a purge of it does not expire the client
/// (its token's watermark starts at the position its first page started from). A cursor ahead
/// of every change ever made comes from another database and is expired too.
pub(crate) fn check_cursor(cursor: &Cursor, counter: i64, purged: Watermark) -> Result<()> {
    let expired = match cursor {
        Cursor::Beginning => false,
        Cursor::Seq {
            seq: n,
            pending,
            watermark,
        } => {
            let unseen_purge = purged.seq > *watermark
                && (purged.seq > *n || pending.iter().any(|p| *p > *watermark && *p <= purged.seq));
            *n > counter || unseen_purge
        }
        Cursor::Millis(ms) => *ms < purged.ms,
    };
    if expired {
        return Err(sync_expired());
    }
    Ok(())
}

/// The `SYNC_EXPIRED` error.
pub(crate) fn sync_expired() -> DataSyncError {
    DataSyncError::SyncExpired {
        message: "lastSync is too old: deleted records it has not seen were purged (or it does \
                  not come from this server); drop the local copy and sync again from \"0\""
            .to_owned(),
    }
}

/// The watermark the next token carries after `cursor` passed [`check_cursor`] against
/// `purged`: purges up to it can no longer concern the client. `origin` is the position below
/// which every change was committed before this page read anything: for a client starting
/// from "0", no tombstone at or below it can be of a record the client ever held.
pub(crate) fn next_watermark(cursor: &Cursor, purged: Watermark, origin: i64) -> i64 {
    match cursor {
        Cursor::Beginning => purged.seq.max(origin),
        Cursor::Seq { watermark, .. } => purged.seq.max(*watermark),
        Cursor::Millis(_) => purged.seq,
    }
}

/// A boxed `Send` future, as returned by [`Store`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The new state [`Store::compare_and_set`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Replacement {
    /// All data fields.
    pub data: Document,
    /// Field versions after this write.
    pub field_versions: FieldVersions,
    /// Whether the record is a tombstone afterwards.
    pub deleted: bool,
}

/// Result of [`Store::insert`].
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// Stored with version 1.
    Inserted(StoredRecord),
    /// The id was taken; this is what is stored under it (possibly a tombstone).
    Exists(StoredRecord),
}

/// Result of [`Store::compare_and_set`].
#[derive(Debug, Clone, PartialEq)]
pub enum CasOutcome {
    /// Written: the new stored state, version incremented.
    Written(StoredRecord),
    /// Not written: the stored version was not the expected one. Carries the current state
    /// (`None` if the record is gone).
    Stale(Option<StoredRecord>),
}

/// Settings shared by every store.
///
/// ```
/// use std::time::Duration;
/// use datasync_core::StoreOptions;
/// let opts = StoreOptions::default()
///     .tombstone_retention(Duration::from_secs(7 * 24 * 3600))
///     .purge_interval(Duration::from_secs(300));
/// assert_eq!(opts.retention(), Duration::from_secs(604800));
/// ```
#[derive(Clone)]
pub struct StoreOptions {
    retention: Duration,
    purge_interval: Option<Duration>,
    clock: Arc<dyn Clock>,
    token_key: Option<TokenKey>,
    poll_interval: Duration,
    subscription_buffer: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Duration::from_secs(30 * 24 * 3600),
            purge_interval: None,
            clock: Arc::new(SystemClock),
            token_key: None,
            poll_interval: Duration::from_millis(250),
            subscription_buffer: 128,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("retention", &self.retention)
            .field("purge_interval", &self.purge_every())
            .field("poll_interval", &self.poll_interval)
            .field("subscription_buffer", &self.subscription_buffer)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// How long tombstones are kept before they are purged (default 30 days). Clients whose
    /// `lastSync` predates a purge get `SYNC_EXPIRED`.
    pub fn tombstone_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often each collection is purged of expired tombstones (default: every minute, or
    /// every quarter of the retention if that is shorter): by a background task of the store,
    /// and by sync pages when the last purge is at least this old by the store's clock. Zero
    /// purges on every sync page.
    pub fn purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = Some(interval);
        self
    }

    /// Where timestamps come from (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Seals sync tokens with this key instead of the one the store keeps in its database
    /// (made on first use). Every server process of one database must use the same key.
    pub fn token_key(mut self, key: TokenKey) -> Self {
        self.token_key = Some(key);
        self
    }

    /// How often a realtime reader looks for changes written by other processes sharing the
    /// database (default 250 ms). Writes of this process wake it at once.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How many batches of changes each collection's realtime feed keeps for subscribers
    /// that are behind (default 128). A subscriber further behind is ended with
    /// `SUBSCRIPTION_LAGGING` and resumes from its last `lastSync`.
    pub fn subscription_buffer(mut self, batches: usize) -> Self {
        self.subscription_buffer = batches;
        self
    }

    /// The realtime hub these options describe.
    pub(crate) fn new_hub(&self) -> Arc<Hub> {
        Hub::new(self.poll_interval, self.subscription_buffer)
    }

    /// The tombstone retention.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The purge interval.
    pub fn purge_every(&self) -> Duration {
        self.purge_interval
            .unwrap_or_else(|| Duration::from_secs(60).min(self.retention / 4))
    }

    /// The configured token key, if any.
    pub fn configured_token_key(&self) -> Option<&TokenKey> {
        self.token_key.as_ref()
    }

    /// Now, in milliseconds since the epoch, by the configured clock.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Tombstones last written before this instant (ms) are due for purging.
    pub fn purge_cutoff(&self) -> i64 {
        self.now_millis()
            .saturating_sub(self.retention.as_millis().min(i64::MAX as u128) as i64)
    }
}

/// When each collection was last purged, by the store's clock: sync pages purge only when the
/// last purge is at least [`StoreOptions::purge_interval`] old.
#[derive(Default)]
pub(crate) struct PurgeSchedule(Mutex<std::collections::HashMap<&'static str, i64>>);

impl PurgeSchedule {
    /// Whether `collection` is due for a purge at `now`; if so, it counts as purged now.
    pub(crate) fn due(&self, collection: &'static str, now: i64, interval: Duration) -> bool {
        let interval = interval.as_millis().min(i64::MAX as u128) as i64;
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(collection) {
            Some(at) if now.saturating_sub(*at) < interval && now >= *at => false,
            _ => {
                last.insert(collection, now);
                true
            }
        }
    }
}

/// Where records live. Implemented by [`SqliteStore`](crate::SqliteStore); object-safe so
/// that generated code can hold any store as `Arc<dyn Store>`.
///
/// Every method is one atomic step on the store. Implementations must keep the invariants the
/// conformance tests check:
/// - every committed `insert` and `compare_and_set` gets a change position above every
///   position a `sync` could have handed out before the write committed (SQLite takes it in
///   the write's transaction; MongoDB gives positions to committed writes in batches, see
///   `docs/sync.md`);
/// - `compare_and_set` writes only if the stored version equals the expected one, and sets
///   `version = expected + 1`;
/// - `sync` returns changes strictly after the token in sequence order, and a token that lets
///   the client continue without missing a committed write.
pub trait Store: Send + Sync + 'static {
    /// The record with this id, tombstone or not.
    fn get<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredRecord>>>;

    /// Stores a new record (version 1) unless the id is taken.
    fn insert<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
        data: Document,
    ) -> BoxFuture<'a, Result<InsertOutcome>>;

    /// Replaces the record `expected` describes by `new`, if and only if its stored version
    /// is still `expected.meta.version`. A tombstone written here expires after the retention;
    /// a record restored from a tombstone loses its expiry.
    fn compare_and_set<'a>(
        &'a self,
        spec: &'static ModelSpec,
        expected: &'a StoredRecord,
        new: Replacement,
    ) -> BoxFuture<'a, Result<CasOutcome>>;

    /// Live records matching the query, and their total count.
    fn find<'a>(
        &'a self,
        spec: &'static ModelSpec,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<FindResult>>;

    /// One page of changes after `request.since`. Purges expired tombstones first, and fails
    /// with `SYNC_EXPIRED` when the token predates a purge.
    fn sync<'a>(
        &'a self,
        spec: &'static ModelSpec,
        request: &'a SyncRequest,
    ) -> BoxFuture<'a, Result<SyncPage>>;

    /// Removes tombstones older than the retention; returns how many went.
    fn purge_tombstones<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<u64>>;

    /// A token at the current end of the collection's change log: syncing from it returns
    /// only changes still to come. The default pages through the whole log; the built-in
    /// stores read it in one step.
    fn head<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<SyncToken>> {
        Box::pin(async move {
            let mut request =
                SyncRequest::new(SyncToken::ZERO, Filter::All, crate::query::MAX_LIMIT);
            loop {
                let page = self.sync(spec, &request).await?;
                request.since = page.next;
                if !page.has_more {
                    return Ok(request.since);
                }
            }
        })
    }

    /// The realtime hub of this store (shared by its clones), which runs one reader per
    /// collection for all subscribers. Stores without one get a hub per schema.
    fn hub(&self) -> Option<Arc<Hub>> {
        None
    }

    /// The record as this process last wrote or read it, if the store keeps such copies
    /// (the default keeps none). It may be stale: it only seeds a `compare_and_set`, which
    /// checks the version and hands back the stored state when it is not the one expected.
    /// Versions are never reused for an id, so a stale copy can never pass that check.
    fn recent(&self, spec: &'static ModelSpec, id: &str) -> Option<StoredRecord> {
        let _ = (spec, id);
        None
    }
}

/// A shared, type-erased store and its realtime hub: what the schema keeps in its context
/// data.
///
/// ```no_run
/// # async fn demo() -> datasync_core::Result<()> {
/// use datasync_core::{SqliteStore, StoreRef};
/// let store = StoreRef::new(SqliteStore::memory().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StoreRef(pub Arc<dyn Store>, Arc<Hub>);

impl StoreRef {
    /// Wraps a store.
    pub fn new(store: impl Store) -> Self {
        let hub = store
            .hub()
            .unwrap_or_else(|| StoreOptions::default().new_hub());
        StoreRef(Arc::new(store), hub)
    }

    /// The realtime hub subscribers of this store share.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.1
    }
}

impl std::ops::Deref for StoreRef {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A shared store is a store: lets code pick a store at run time as `Arc<dyn Store>`.
impl<S: Store + ?Sized> Store for Arc<S> {
    fn get<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        (**self).get(spec, id)
    }

    fn insert<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
        data: Document,
    ) -> BoxFuture<'a, Result<InsertOutcome>> {
        (**self).insert(spec, id, data)
    }

    fn compare_and_set<'a>(
        &'a self,
        spec: &'static ModelSpec,
        expected: &'a StoredRecord,
        new: Replacement,
    ) -> BoxFuture<'a, Result<CasOutcome>> {
        (**self).compare_and_set(spec, expected, new)
    }

    fn find<'a>(
        &'a self,
        spec: &'static ModelSpec,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<FindResult>> {
        (**self).find(spec, query)
    }

    fn sync<'a>(
        &'a self,
        spec: &'static ModelSpec,
        request: &'a SyncRequest,
    ) -> BoxFuture<'a, Result<SyncPage>> {
        (**self).sync(spec, request)
    }

    fn purge_tombstones<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<u64>> {
        (**self).purge_tombstones(spec)
    }

    fn head<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<SyncToken>> {
        (**self).head(spec)
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        (**self).hub()
    }

    fn recent(&self, spec: &'static ModelSpec, id: &str) -> Option<StoredRecord> {
        (**self).recent(spec, id)
    }
}

/// Which model each collection of a store belongs to.
///
/// Two models on one collection (say, two models given the same plural, whose default
/// collection names match) would read and overwrite each other's records. The first model
/// a store value (or any clone of it) serves on a collection owns it; any other model gets
/// an error and touches nothing. Names compare ignoring ASCII case, as SQLite table names
/// do. `MongoStore::prepare::<M>()` at start-up fixes the owners before any request.
#[derive(Default)]
pub(crate) struct CollectionOwners(Mutex<Vec<&'static ModelSpec>>);

impl CollectionOwners {
    /// The models that own a collection so far.
    #[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
    pub(crate) fn specs(&self) -> Vec<&'static ModelSpec> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records `spec`'s model as the owner of its collection, or refuses another model.
    pub(crate) fn claim(&self, spec: &'static ModelSpec) -> Result<()> {
        let mut owners = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let owner = match owners
            .iter()
            .find(|o| o.collection.eq_ignore_ascii_case(spec.collection))
        {
            Some(owner) => *owner,
            None => {
                owners.push(spec);
                return Ok(());
            }
        };
        if std::ptr::eq(owner, spec) {
            return Ok(());
        }
        Err(DataSyncError::internal(
            &format!(
                "models `{}` and `{}` are configured to share one collection",
                owner.type_name, spec.type_name
            ),
            format_args!(
                "{:?} and {:?}; give one of them `#[datasync(collection = \"...\")]` or another `plural`",
                owner.collection, spec.collection
            ),
        ))
    }
}
