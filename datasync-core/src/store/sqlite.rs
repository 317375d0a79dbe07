//! The embedded store: one SQLite file, zero setup.
//!
//! Layout: one table per collection with the data fields as a JSON document beside the sync
//! metadata columns; `_datasync_collections` holds, per collection, the change-sequence
//! counter, the newest `updatedAt` handed out and the tombstone purge watermark;
//! `_datasync_purged` keeps the id and last version of each purged tombstone, so that a
//! re-created id continues its version numbers; `_datasync_meta` holds the token key.
//!
//! Every write runs in an `IMMEDIATE` transaction on the one writer connection that takes the
//! next sequence number and writes the row, so sequence order is commit order. The database
//! runs in WAL mode: reads (get, find, sync pages) run on a small pool of read connections,
//! each in one read transaction (a consistent snapshot), and never wait for the writer, nor
//! the writer for them. All SQLite work runs on tokio's blocking pool.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::Semaphore;

use super::sqlite_filter::{ident, SqlBuf};
use super::{
    check_cursor, next_watermark, BoxFuture, CasOutcome, CollectionOwners, InsertOutcome,
    PurgeSchedule, Replacement, Store, StoreOptions, Watermark,
};
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::{Document, FieldVersions, StoredRecord, SyncMeta};
use crate::model::ModelSpec;
use crate::query::{FindQuery, FindResult, SyncItem, SyncPage, SyncRequest};
use crate::realtime::Hub;
use crate::token::{Cursor, SyncToken, TokenKey};

/// How many read connections a store keeps.
const READERS: usize = 4;

/// A store in one SQLite database file.
///
/// Cheap to clone: clones share the connections. Several processes may open one file (WAL
/// mode; writers take turns).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datasync_core::Result<()> {
/// use datasync_core::{SqliteStore, StoreOptions};
/// let private = SqliteStore::memory().await?;
/// let dir = std::env::temp_dir().join(format!("datasync-doc-{}.db", std::process::id()));
/// let on_disk = SqliteStore::open_with(&dir, StoreOptions::default()).await?;
/// # drop(on_disk); let _ = std::fs::remove_file(&dir); Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The writer connection's thread.
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// One permit per idle read connection.
    reader_slots: Semaphore,
    /// Collections whose table exists (created on first use).
    ready: Mutex<HashSet<&'static str>>,
    opts: StoreOptions,
    owners: CollectionOwners,
    key: TokenKey,
    purges: PurgeSchedule,
    hub: Arc<Hub>,
    /// For [`SqliteStore::memory`]: the file, removed after the connections above close.
    _temporary: Option<TemporaryFile>,
}

/// A database file that is removed (with its WAL files) when dropped.
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A failure inside a blocking closure: the database's, or a domain error to pass through.
enum Failure {
    Db(rusqlite::Error),
    Domain(DataSyncError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<DataSyncError> for Failure {
    fn from(e: DataSyncError) -> Self {
        Failure::Domain(e)
    }
}

type Step<T> = std::result::Result<T, Failure>;

const COLLECTIONS: &str = "_datasync_collections";
const PURGED: &str = "_datasync_purged";
const META: &str = "_datasync_meta";
const COLUMNS: &str = "t.id, t.data, t.version, t.created_at, t.updated_at, t.deleted, t.seq, \
                       t.field_versions, t.first_version";
/// `COLUMNS` without the table alias, for `RETURNING`.
const RETURNED: &str =
    "id, data, version, created_at, updated_at, deleted, seq, field_versions, first_version";

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// Opens (or creates) the database file at `path`.
    pub async fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Self> {
        Self::start(path.as_ref().to_owned(), opts, None).await
    }

    /// A private database with default options, gone when the last clone drops.
    pub async fn memory() -> Result<Self> {
        Self::memory_with(StoreOptions::default()).await
    }

    /// A private database, gone when the last clone drops. It lives in a temporary file
    /// (removed on drop), so that it works exactly like a file store, WAL mode included.
    pub async fn memory_with(opts: StoreOptions) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "datasync-{}-{}.db",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        Self::start(path.clone(), opts, Some(TemporaryFile(path))).await
    }

    async fn start(
        path: PathBuf,
        opts: StoreOptions,
        temporary: Option<TemporaryFile>,
    ) -> Result<Self> {
        let shown = path.display().to_string();
        let configured = opts.configured_token_key().cloned();
        let opened = tokio::task::spawn_blocking(move || -> Step<_> {
            let writer = connection(&path)?;
            writer.pragma_update(None, "journal_mode", "WAL")?;
            writer.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {COLLECTIONS} (
                    name TEXT PRIMARY KEY NOT NULL,
                    seq INTEGER NOT NULL,
                    last_ms INTEGER NOT NULL,
                    purged_seq INTEGER NOT NULL,
                    purged_ms INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {PURGED} (
                    collection TEXT NOT NULL,
                    id TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    PRIMARY KEY (collection, id)
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS {META} (
                    name TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL
                );"
            ))?;
            let key = match configured {
                Some(key) => key,
                None => stored_key(&writer)?,
            };
            let readers = (0..READERS)
                .map(|_| {
                    let conn = connection(&path)?;
                    conn.pragma_update(None, "query_only", true)?;
                    Ok(conn)
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((writer, readers, key))
        })
        .await
        .map_err(|e| DataSyncError::internal("the SQLite store could not start", e))?;
        let (writer, readers, key) = match opened {
            Ok(opened) => opened,
            Err(Failure::Db(e)) => {
                return Err(DataSyncError::internal(
                    &format!("cannot open SQLite database {shown}"),
                    e,
                ))
            }
            Err(Failure::Domain(e)) => return Err(e),
        };
        let store = SqliteStore {
            inner: Arc::new(Inner {
                writer: Writer::start(writer, opts.clone())?,
                readers: Mutex::new(readers),
                reader_slots: Semaphore::new(READERS),
                ready: Mutex::new(HashSet::new()),
                owners: CollectionOwners::default(),
                key,
                purges: PurgeSchedule::default(),
                hub: opts.new_hub(),
                opts,
                _temporary: temporary,
            }),
        };
        store.spawn_purger();
        Ok(store)
    }

    /// Purges every collection in use once per purge interval, for as long as the store
    /// lives (nothing to do without a tokio runtime or with a zero interval: sync pages
    /// purge then).
    fn spawn_purger(&self) {
        let period = self.inner.opts.purge_every();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if period.is_zero() {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period.max(Duration::from_millis(100))).await;
                let Some(inner) = weak.upgrade() else { return };
                let store = SqliteStore { inner };
                let collections: Vec<&'static str> = store
                    .inner
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .copied()
                    .collect();
                for collection in collections {
                    if let Err(e) = store.purge_collection(collection).await {
                        tracing::warn!(target: "datasync", "purging {collection} failed: {e}");
                    }
                }
            }
        });
    }

    /// Makes sure `spec`'s collection belongs to it and has its table.
    async fn ensure(&self, spec: &'static ModelSpec) -> Result<()> {
        self.inner.owners.claim(spec)?;
        if self.is_ready(spec.collection) {
            return Ok(());
        }
        self.on_writer(move |conn, _| Ok(create_collection(conn, spec.collection)?))
            .await?;
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.collection);
        Ok(())
    }

    fn is_ready(&self, collection: &str) -> bool {
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(collection)
    }

    /// Runs `f` with the writer connection on the blocking pool, after setting up `spec`'s
    /// collection.
    async fn write<T, F>(&self, spec: &'static ModelSpec, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &StoreOptions) -> Step<T> + Send + 'static,
    {
        self.ensure(spec).await?;
        self.on_writer(f).await
    }

    /// Runs `f` on the writer thread, inside a transaction it may share with other writes
    /// (so `f` works in a savepoint); answers once that transaction committed.
    async fn on_writer<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &StoreOptions) -> Step<T> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }

    /// Runs `f` with a read connection on the blocking pool, after setting up `spec`'s
    /// collection.
    async fn read<T, F>(&self, spec: &'static ModelSpec, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Step<T> + Send + 'static,
    {
        self.ensure(spec).await?;
        let _slot = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|e| DataSyncError::internal("the SQLite store is closed", e))?;
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let taken = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let Some(mut conn) = taken else {
                return Err(Failure::Domain(DataSyncError::internal(
                    "the SQLite store failed",
                    "no idle read connection behind a free slot",
                )));
            };
            let result = f(&mut conn, &inner);
            inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await;
        finish(joined)
    }

    /// Purges `collection` of expired tombstones now.
    async fn purge_collection(&self, collection: &'static str) -> Result<u64> {
        self.on_writer(move |conn, opts| {
            let tx = conn.savepoint()?;
            let n = purge(&tx, collection, opts.purge_cutoff())?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}

fn finish<T>(joined: std::result::Result<Step<T>, tokio::task::JoinError>) -> Result<T> {
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Failure::Domain(e))) => Err(e),
        Ok(Err(Failure::Db(e))) => Err(DataSyncError::internal("the SQLite store failed", e)),
        Err(e) => Err(DataSyncError::internal("the SQLite store failed", e)),
    }
}

/// A connection to `path` with the store's settings.
fn connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The hot statements of a few collections stay compiled.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The token key kept in the database, made on first use.
fn stored_key(conn: &Connection) -> rusqlite::Result<TokenKey> {
    let fresh = TokenKey::random();
    conn.execute(
        &format!("INSERT OR IGNORE INTO {META} (name, value) VALUES ('token_key', ?1)"),
        params![fresh.secret()],
    )?;
    let secret: Vec<u8> = conn.query_row(
        &format!("SELECT value FROM {META} WHERE name = 'token_key'"),
        [],
        |r| r.get(0),
    )?;
    Ok(TokenKey::from_secret(&secret))
}

fn create_collection(conn: &Connection, collection: &str) -> rusqlite::Result<()> {
    let table = ident(collection);
    let seq_index = ident(&format!("{collection}__seq"));
    let tomb_index = ident(&format!("{collection}__tombstones"));
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            id TEXT PRIMARY KEY NOT NULL,
            data TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            deleted INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            field_versions TEXT NOT NULL DEFAULT '{{}}',
            first_version INTEGER NOT NULL DEFAULT 1
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {seq_index} ON {table}(seq);
        CREATE INDEX IF NOT EXISTS {tomb_index} ON {table}(deleted, updated_at);"
    ))?;
    // Tables made by earlier versions get the newer columns.
    for (column, definition) in [
        ("field_versions", "TEXT NOT NULL DEFAULT '{}'"),
        ("first_version", "INTEGER NOT NULL DEFAULT 1"),
    ] {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            params![collection, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    conn.execute(
        &format!(
            "INSERT OR IGNORE INTO {COLLECTIONS} (name, seq, last_ms, purged_seq, purged_ms)
             VALUES (?1, 0, 0, 0, 0)"
        ),
        params![collection],
    )?;
    Ok(())
}

/// Takes the collection's next sequence number and a timestamp that never goes backwards.
fn stamp(tx: &Connection, collection: &str, now: i64) -> rusqlite::Result<(i64, i64)> {
    tx.prepare_cached(&format!(
        "UPDATE {COLLECTIONS} SET seq = seq + 1, last_ms = MAX(last_ms, ?1)
         WHERE name = ?2 RETURNING seq, last_ms"
    ))?
    .query_row(params![now, collection], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// A row of `COLUMNS` as a record (`None`, logged, if its stored JSON is unreadable, so that
/// one damaged row never fails a whole result) and its sequence number.
fn read_row(row: &Row<'_>) -> rusqlite::Result<(Option<StoredRecord>, i64)> {
    let id: String = row.get(0)?;
    let seq: i64 = row.get(6)?;
    let data: std::result::Result<Document, _> = serde_json::from_str(&row.get::<_, String>(1)?);
    let field_versions: std::result::Result<FieldVersions, _> =
        serde_json::from_str(&row.get::<_, String>(7)?);
    let (Ok(data), Ok(field_versions)) = (data, field_versions) else {
        tracing::error!(target: "datasync", "record {id:?} has unreadable stored JSON and was left out");
        return Ok((None, seq));
    };
    Ok((
        Some(StoredRecord {
            id,
            data,
            meta: SyncMeta {
                version: row.get(2)?,
                created_at: row.get(3)?,
                updated_at: row.get(4)?,
                deleted: row.get::<_, i64>(5)? != 0,
            },
            field_versions,
            created_version: row.get(8)?,
        }),
        seq,
    ))
}

fn select_one(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<StoredRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {table} AS t WHERE t.id = ?1"
    ))?
    .query_row(params![id], read_row)
    .optional()
    .map(|found| found.and_then(|(rec, _)| rec))
}

fn to_json_text<T: serde::Serialize>(value: &T) -> Step<String> {
    serde_json::to_string(value)
        .map_err(|e| Failure::Domain(DataSyncError::internal("cannot encode a record", e)))
}

/// Deletes tombstones older than the retention, raising the purge watermark and keeping each
/// one's id and version (a re-created id continues after it).
fn purge(tx: &Connection, collection: &str, cutoff: i64) -> rusqlite::Result<u64> {
    let table = ident(collection);
    let mut stmt = tx.prepare(&format!(
        "DELETE FROM {table} WHERE deleted = 1 AND updated_at < ?1
         RETURNING id, version, seq, updated_at"
    ))?;
    let purged: Vec<(String, i64, i64, i64)> = stmt
        .query_map(params![cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut remember = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {PURGED} (collection, id, version) VALUES (?1, ?2, ?3)"
    ))?;
    for (id, version, _, _) in &purged {
        remember.execute(params![collection, id, version])?;
    }
    if let (Some(max_seq), Some(max_ms)) = (
        purged.iter().map(|p| p.2).max(),
        purged.iter().map(|p| p.3).max(),
    ) {
        tx.execute(
            &format!(
                "UPDATE {COLLECTIONS} SET purged_seq = MAX(purged_seq, ?1),
                 purged_ms = MAX(purged_ms, ?2) WHERE name = ?3"
            ),
            params![max_seq, max_ms, collection],
        )?;
    }
    Ok(purged.len() as u64)
}

impl Store for SqliteStore {
    fn get<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        let id = id.to_owned();
        Box::pin(self.read(spec, move |conn, _| {
            Ok(select_one(conn, &ident(spec.collection), &id)?)
        }))
    }

    fn insert<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
        data: Document,
    ) -> BoxFuture<'a, Result<InsertOutcome>> {
        let id = id.to_owned();
        let written = self.write(spec, move |conn, opts| {
            let table = ident(spec.collection);
            let text = to_json_text(&data)?;
            let tx = conn.savepoint()?;
            if let Some(existing) = select_one(&tx, &table, &id)? {
                return Ok(InsertOutcome::Exists(existing));
            }
            // An id whose tombstone was purged continues after its last version, so that an
            // edit based on the old record can never match the new one.
            let previous: Option<i64> = tx
                .prepare_cached(&format!(
                    "SELECT version FROM {PURGED} WHERE collection = ?1 AND id = ?2"
                ))?
                .query_row(params![spec.collection, id], |r| r.get(0))
                .optional()?;
            let version = previous.map_or(1, |v| v.saturating_add(1));
            let (seq, ms) = stamp(&tx, spec.collection, opts.now_millis())?;
            tx.prepare_cached(&format!(
                "INSERT INTO {table}
                 (id, data, version, created_at, updated_at, deleted, seq, first_version)
                 VALUES (?1, ?2, ?3, ?4, ?4, 0, ?5, ?3)"
            ))?
            .execute(params![id, text, version, ms, seq])?;
            if previous.is_some() {
                tx.execute(
                    &format!("DELETE FROM {PURGED} WHERE collection = ?1 AND id = ?2"),
                    params![spec.collection, id],
                )?;
            }
            tx.commit()?;
            Ok(InsertOutcome::Inserted(StoredRecord {
                id,
                data,
                meta: SyncMeta {
                    version,
                    created_at: ms,
                    updated_at: ms,
                    deleted: false,
                },
                field_versions: FieldVersions::new(),
                created_version: version,
            }))
        });
        Box::pin(async move {
            let outcome = written.await?;
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
        let (id, expected) = (expected.id.clone(), expected.meta.version);
        let written = self.write(spec, move |conn, opts| {
            let table = ident(spec.collection);
            let text = to_json_text(&new.data)?;
            let versions = to_json_text(&new.field_versions)?;
            let mut tx = conn.savepoint()?;
            let (seq, ms) = stamp(&tx, spec.collection, opts.now_millis())?;
            let written = tx
                .prepare_cached(&format!(
                    "UPDATE {table} SET data = ?1, version = version + 1,
                     updated_at = ?2, deleted = ?3, seq = ?4, field_versions = ?5
                     WHERE id = ?6 AND version = ?7 RETURNING {RETURNED}"
                ))?
                .query_row(
                    params![text, ms, new.deleted, seq, versions, id, expected],
                    read_row,
                )
                .optional()?
                .and_then(|(rec, _)| rec);
            match written {
                Some(rec) => {
                    tx.commit()?;
                    Ok(CasOutcome::Written(rec))
                }
                None => {
                    // Nothing written: give the sequence number back and report what is there.
                    tx.rollback()?;
                    drop(tx);
                    Ok(CasOutcome::Stale(select_one(conn, &table, &id)?))
                }
            }
        });
        Box::pin(async move {
            let outcome = written.await?;
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
        let query = query.clone();
        Box::pin(self.read(spec, move |conn, _| {
            let table = ident(spec.collection);
            let mut cond = SqlBuf::default();
            cond.filter(&query.filter);
            // One read transaction: the count and the page see the same snapshot.
            let tx = conn.transaction()?;
            let count = if query.count {
                let n: i64 = tx.query_row(
                    &format!(
                        "SELECT COUNT(*) FROM {table} AS t WHERE t.deleted = 0 AND {}",
                        cond.text
                    ),
                    rusqlite::params_from_iter(cond.params.iter()),
                    |r| r.get(0),
                )?;
                Some(n as u64)
            } else {
                None
            };
            let items = if query.limit == Some(0) {
                Vec::new()
            } else {
                let mut sql = cond;
                sql.text = format!(
                    "SELECT {COLUMNS} FROM {table} AS t WHERE t.deleted = 0 AND {}",
                    sql.text
                );
                sql.order_by(&query.order);
                sql.text.push_str(" LIMIT ? OFFSET ?");
                let limit = query.limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
                let offset = query.offset.min(i64::MAX as u64) as i64;
                sql.params.push(limit.into());
                sql.params.push(offset.into());
                let mut stmt = tx.prepare(&sql.text)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), read_row)?;
                rows.filter_map(|r| r.map(|(rec, _)| rec).transpose())
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(FindResult { items, count })
        }))
    }

    fn sync<'a>(
        &'a self,
        spec: &'static ModelSpec,
        request: &'a SyncRequest,
    ) -> BoxFuture<'a, Result<SyncPage>> {
        let request = request.clone();
        Box::pin(async move {
            self.ensure(spec).await?;
            let opts = &self.inner.opts;
            if self
                .inner
                .purges
                .due(spec.collection, opts.now_millis(), opts.purge_every())
            {
                // Housekeeping: the page is exact with or without it.
                if let Err(e) = self.purge_collection(spec.collection).await {
                    tracing::warn!(target: "datasync", "purging {} failed: {e}", spec.collection);
                }
            }
            self.read(spec, move |conn, inner| {
                sync_page(conn, inner, spec, &request)
            })
            .await
        })
    }

    fn purge_tombstones<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            self.ensure(spec).await?;
            self.purge_collection(spec.collection).await
        })
    }

    fn head<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<SyncToken>> {
        Box::pin(self.read(spec, move |conn, inner| {
            let (counter, purged_seq): (i64, i64) = conn.query_row(
                &format!("SELECT seq, purged_seq FROM {COLLECTIONS} WHERE name = ?1"),
                params![spec.collection],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let cursor = Cursor::Seq {
                seq: counter,
                pending: Vec::new(),
                watermark: purged_seq,
            };
            Ok(SyncToken::issue(cursor, &inner.key, spec.collection))
        }))
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        Some(Arc::clone(&self.inner.hub))
    }
}

/// One sync page, read in one read transaction (a snapshot of committed writes).
fn sync_page(
    conn: &mut Connection,
    inner: &Inner,
    spec: &'static ModelSpec,
    request: &SyncRequest,
) -> Step<SyncPage> {
    let table = ident(spec.collection);
    let cursor = request.since.verify(&inner.key, spec.collection)?.clone();
    let tx = conn.transaction()?;
    let (counter, purged_seq, purged_ms): (i64, i64, i64) = tx.query_row(
        &format!("SELECT seq, purged_seq, purged_ms FROM {COLLECTIONS} WHERE name = ?1"),
        params![spec.collection],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let purged = Watermark {
        seq: purged_seq,
        ms: purged_ms,
    };
    check_cursor(&cursor, counter, purged)?;

    // From the beginning only matching records; after a token every change, with whether it
    // still matches (a record that left the filter must reach the client).
    let mut sql = SqlBuf {
        text: format!("SELECT {COLUMNS}, "),
        params: Vec::new(),
    };
    match cursor {
        Cursor::Beginning => sql.text.push('1'),
        _ => sql.filter(&request.filter),
    }
    sql.text.push_str(&format!(" FROM {table} AS t WHERE "));
    match cursor {
        Cursor::Beginning => sql.filter(&request.filter),
        // One writer at a time: nothing is ever pending here.
        Cursor::Seq { seq: n, .. } => {
            sql.text.push_str("t.seq > ?");
            sql.params.push(n.into());
        }
        Cursor::Millis(ms) => {
            sql.text.push_str("t.updated_at > ?");
            sql.params.push(ms.into());
        }
    }
    if request.scope != Filter::All {
        sql.text.push_str(" AND ");
        sql.filter(&request.scope);
    }
    sql.text.push_str(" ORDER BY t.seq LIMIT ?");
    sql.params.push((i64::from(request.limit) + 1).into());
    let mut rows = {
        let mut stmt = tx.prepare(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |row| {
            let matches = row.get::<_, Option<i64>>(9)?.unwrap_or(0) != 0;
            let (record, seq) = read_row(row)?;
            Ok((record.map(|record| SyncItem { record, matches }), seq))
        })?;
        // A row whose JSON is unreadable is left out, but still moves the cursor.
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;

    let has_more = rows.len() > request.limit as usize;
    rows.truncate(request.limit as usize);
    // With more to come, continue after the last row sent; otherwise everything up to the
    // counter (read in the same snapshot) has been seen.
    let seq = match (has_more, rows.last().map(|(_, seq)| *seq)) {
        (true, Some(last)) => last,
        _ => counter,
    };
    let next = Cursor::Seq {
        seq,
        pending: Vec::new(),
        watermark: next_watermark(&cursor, purged, counter),
    };
    Ok(SyncPage {
        items: rows.into_iter().filter_map(|(item, _)| item).collect(),
        next: SyncToken::issue(next, &inner.key, spec.collection),
        has_more,
    })
}

/// A finished write, waiting for its transaction: told the commit's error, if any.
type Completion = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// A write to run on the writer thread.
type Job = Box<dyn FnOnce(&mut Connection, &StoreOptions) -> Completion + Send>;

/// Writes queued to this many at most share one transaction.
const GROUP_COMMIT: usize = 64;

/// The thread that owns the writer connection. It takes the writes queued for it, runs
/// those waiting together in one transaction (each in its own savepoint, so that a failing
/// write undoes only itself) and answers each after the commit: one commit for many
/// concurrent writes instead of one each, and no lock to contend for.
struct Writer(std::sync::mpsc::Sender<Job>);

impl Writer {
    fn start(mut conn: Connection, opts: StoreOptions) -> Result<Writer> {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("datasync-sqlite-writer".into())
            .spawn(move || {
                // Ends when the store (every sender) is gone.
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < GROUP_COMMIT {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                        // Dropping the writes answers each with an error.
                        tracing::error!(target: "datasync", "the SQLite writer cannot begin a transaction: {e}");
                        drop(batch);
                        continue;
                    }
                    let done: Vec<Completion> = batch
                        .into_iter()
                        .filter_map(|job| {
                            // A panicking write is dropped (its caller gets an error); its
                            // savepoint rolled back while unwinding.
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                job(&mut conn, &opts)
                            }))
                            .ok()
                        })
                        .collect();
                    let committed = conn.execute_batch("COMMIT");
                    if committed.is_err() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    for complete in done {
                        complete(committed.as_ref().err());
                    }
                }
            })
            .map_err(|e| DataSyncError::internal("the SQLite store could not start", e))?;
        Ok(Writer(queue))
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &StoreOptions) -> Step<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn, opts| {
            let result = f(conn, opts);
            Box::new(move |commit_error: Option<&rusqlite::Error>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(DataSyncError::internal(
                        "the SQLite store failed",
                        format!("commit: {e}"),
                    )),
                    (result, _) => finish(Ok(result)),
                };
                let _ = answer.send(result);
            })
        });
        self.0.send(job).map_err(|_| {
            DataSyncError::internal("the SQLite store failed", "the writer stopped")
        })?;
        answered.await.unwrap_or_else(|_| {
            Err(DataSyncError::internal(
                "the SQLite store failed",
                "a write ended without an answer",
            ))
        })
    }
}
