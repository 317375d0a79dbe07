//! The embedded store: one SQLite file (or memory), zero setup.
//!
//! Layout: one table per collection with the data fields as a JSON document beside the sync
//! metadata columns, and one bookkeeping table `_datasync_collections` holding, per
//! collection, the change-sequence counter, the newest `updatedAt` handed out and the
//! tombstone purge watermark. Every write runs in an `IMMEDIATE` transaction that takes the
//! next sequence number and writes the row, so sequence order is commit order.
//!
//! All SQLite work runs on tokio's blocking pool, one statement batch at a time on a single
//! connection, so it never stalls the async runtime.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::sqlite_filter::{ident, SqlBuf};
use super::{
    BoxFuture, CasOutcome, CollectionOwners, FieldVersions, InsertOutcome, Replacement, Store,
    StoreOptions, StoredRecord,
};
use crate::error::{DataSyncError, Result};
use crate::meta::SyncMeta;
use crate::model::{Document, ModelSpec};
use crate::query::{FindQuery, FindResult, SyncItem, SyncPage, SyncRequest};
use crate::token::SyncToken;

/// A store in one SQLite database file, or in memory.
///
/// Cheap to clone: clones share the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datasync_core::Result<()> {
/// use datasync_core::{SqliteStore, StoreOptions};
/// let in_memory = SqliteStore::memory().await?;
/// let dir = std::env::temp_dir().join(format!("datasync-doc-{}.db", std::process::id()));
/// let on_disk = SqliteStore::open_with(&dir, StoreOptions::default()).await?;
/// # drop(on_disk); let _ = std::fs::remove_file(&dir); Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    opts: StoreOptions,
    owners: CollectionOwners,
}

struct State {
    conn: Connection,
    /// Collections whose table exists (created on first use).
    ready: HashSet<&'static str>,
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

type Step<T> = std::result::Result<T, Failure>;

const COLLECTIONS: &str = "_datasync_collections";
const COLUMNS: &str =
    "t.id, t.data, t.version, t.created_at, t.updated_at, t.deleted, t.seq, t.field_versions";
/// `COLUMNS` without the table alias, for `RETURNING`.
const RETURNED: &str = "id, data, version, created_at, updated_at, deleted, seq, field_versions";

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
        let path = path.as_ref().to_owned();
        let shown = path.display().to_string();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok::<_, rusqlite::Error>(conn)
        })
        .await
        .map_err(|e| DataSyncError::internal("the SQLite store could not start", e))?
        .map_err(|e| DataSyncError::internal(&format!("cannot open SQLite database {shown}"), e))?;
        Self::from_connection(conn, opts).await
    }

    /// A private in-memory database with default options (gone when the last clone drops).
    pub async fn memory() -> Result<Self> {
        Self::memory_with(StoreOptions::default()).await
    }

    /// A private in-memory database.
    pub async fn memory_with(opts: StoreOptions) -> Result<Self> {
        let conn = Connection::open_in_memory()
            .map_err(|e| DataSyncError::internal("cannot open an in-memory SQLite database", e))?;
        Self::from_connection(conn, opts).await
    }

    async fn from_connection(conn: Connection, opts: StoreOptions) -> Result<Self> {
        let store = SqliteStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    conn,
                    ready: HashSet::new(),
                }),
                opts,
                owners: CollectionOwners::default(),
            }),
        };
        store
            .blocking(None, |conn, _| {
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {COLLECTIONS} (
                        name TEXT PRIMARY KEY NOT NULL,
                        seq INTEGER NOT NULL,
                        last_ms INTEGER NOT NULL,
                        purged_seq INTEGER NOT NULL,
                        purged_ms INTEGER NOT NULL
                    )"
                ))?;
                Ok(())
            })
            .await?;
        Ok(store)
    }

    /// Runs `f` on the blocking pool with the connection, after making sure the collection
    /// of `spec` (if any) has its table.
    async fn blocking<T, F>(&self, spec: Option<&'static ModelSpec>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &StoreOptions) -> Step<T> + Send + 'static,
    {
        if let Some(spec) = spec {
            self.inner.owners.claim(spec)?;
        }
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            let State { conn, ready } = &mut *state;
            if let Some(spec) = spec {
                if !ready.contains(spec.collection) {
                    create_collection(conn, spec.collection)?;
                    ready.insert(spec.collection);
                }
            }
            f(conn, &inner.opts)
        })
        .await;
        match joined {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Domain(e))) => Err(e),
            Ok(Err(Failure::Db(e))) => Err(DataSyncError::internal("the SQLite store failed", e)),
            Err(e) => Err(DataSyncError::internal("the SQLite store failed", e)),
        }
    }
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
            field_versions TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {seq_index} ON {table}(seq);
        CREATE INDEX IF NOT EXISTS {tomb_index} ON {table}(deleted, updated_at);"
    ))?;
    // Tables made before field versions existed get the column.
    let has_versions: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = 'field_versions'",
        params![collection],
        |r| r.get(0),
    )?;
    if !has_versions {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN field_versions TEXT NOT NULL DEFAULT '{{}}'"
        ))?;
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
fn stamp(tx: &Transaction<'_>, collection: &str, now: i64) -> rusqlite::Result<(i64, i64)> {
    tx.query_row(
        &format!(
            "UPDATE {COLLECTIONS} SET seq = seq + 1, last_ms = MAX(last_ms, ?1)
             WHERE name = ?2 RETURNING seq, last_ms"
        ),
        params![now, collection],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A row of `COLUMNS` as a record, and its sequence number.
fn read_row(row: &Row<'_>) -> rusqlite::Result<(StoredRecord, i64)> {
    let json = |i: usize| -> rusqlite::Result<String> { row.get(i) };
    let decode_err = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let data: Document = serde_json::from_str(&json(1)?).map_err(|e| decode_err(1, e))?;
    let field_versions: FieldVersions =
        serde_json::from_str(&json(7)?).map_err(|e| decode_err(7, e))?;
    Ok((
        StoredRecord {
            id: row.get(0)?,
            data,
            meta: SyncMeta {
                version: row.get(2)?,
                created_at: row.get(3)?,
                updated_at: row.get(4)?,
                deleted: row.get::<_, i64>(5)? != 0,
            },
            field_versions,
        },
        row.get(6)?,
    ))
}

fn select_one(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<StoredRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM {table} AS t WHERE t.id = ?1"),
        params![id],
        read_row,
    )
    .optional()
    .map(|found| found.map(|(rec, _)| rec))
}

fn to_json_text(data: &Document) -> Step<String> {
    serde_json::to_string(data)
        .map_err(|e| Failure::Domain(DataSyncError::internal("cannot encode a record", e)))
}

/// Deletes tombstones older than the retention and raises the purge watermark.
fn purge(tx: &Transaction<'_>, collection: &str, cutoff: i64) -> rusqlite::Result<u64> {
    let table = ident(collection);
    let mut stmt = tx.prepare(&format!(
        "DELETE FROM {table} WHERE deleted = 1 AND updated_at < ?1 RETURNING seq, updated_at"
    ))?;
    let purged: Vec<(i64, i64)> = stmt
        .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if let (Some(max_seq), Some(max_ms)) = (
        purged.iter().map(|p| p.0).max(),
        purged.iter().map(|p| p.1).max(),
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

fn check_token(since: &SyncToken, seq: i64, purged_seq: i64, purged_ms: i64) -> Step<()> {
    super::check_token(since, seq, purged_seq, purged_ms).map_err(Failure::Domain)
}

impl Store for SqliteStore {
    fn get<'a>(
        &'a self,
        spec: &'static ModelSpec,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        let id = id.to_owned();
        Box::pin(self.blocking(Some(spec), move |conn, _| {
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
        Box::pin(self.blocking(Some(spec), move |conn, opts| {
            let table = ident(spec.collection);
            let text = to_json_text(&data)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(existing) = select_one(&tx, &table, &id)? {
                return Ok(InsertOutcome::Exists(existing));
            }
            let (seq, ms) = stamp(&tx, spec.collection, opts.now_millis())?;
            tx.execute(
                &format!(
                    "INSERT INTO {table} (id, data, version, created_at, updated_at, deleted, seq)
                     VALUES (?1, ?2, 1, ?3, ?3, 0, ?4)"
                ),
                params![id, text, ms, seq],
            )?;
            tx.commit()?;
            Ok(InsertOutcome::Inserted(StoredRecord {
                id,
                data,
                meta: SyncMeta {
                    version: 1,
                    created_at: ms,
                    updated_at: ms,
                    deleted: false,
                },
                field_versions: FieldVersions::new(),
            }))
        }))
    }

    fn compare_and_set<'a>(
        &'a self,
        spec: &'static ModelSpec,
        expected: &'a StoredRecord,
        new: Replacement,
    ) -> BoxFuture<'a, Result<CasOutcome>> {
        let (id, expected) = (expected.id.clone(), expected.meta.version);
        Box::pin(self.blocking(Some(spec), move |conn, opts| {
            let table = ident(spec.collection);
            let text = to_json_text(&new.data)?;
            let versions = serde_json::to_string(&new.field_versions).map_err(|e| {
                Failure::Domain(DataSyncError::internal("cannot encode a record", e))
            })?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (seq, ms) = stamp(&tx, spec.collection, opts.now_millis())?;
            let written = tx
                .query_row(
                    &format!(
                        "UPDATE {table} SET data = ?1, version = version + 1,
                         updated_at = ?2, deleted = ?3, seq = ?4, field_versions = ?5
                         WHERE id = ?6 AND version = ?7 RETURNING {RETURNED}"
                    ),
                    params![text, ms, new.deleted, seq, versions, id, expected],
                    read_row,
                )
                .optional()?;
            match written {
                Some((rec, _)) => {
                    tx.commit()?;
                    Ok(CasOutcome::Written(rec))
                }
                None => {
                    // Nothing written: give the sequence number back and report what is there.
                    tx.rollback()?;
                    Ok(CasOutcome::Stale(select_one(conn, &table, &id)?))
                }
            }
        }))
    }

    fn find<'a>(
        &'a self,
        spec: &'static ModelSpec,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<FindResult>> {
        let query = query.clone();
        Box::pin(self.blocking(Some(spec), move |conn, _| {
            let table = ident(spec.collection);
            let mut cond = SqlBuf::default();
            cond.filter(&query.filter);
            let tx = conn.transaction()?;
            let count: i64 = tx.query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table} AS t WHERE t.deleted = 0 AND {}",
                    cond.text
                ),
                rusqlite::params_from_iter(cond.params.iter()),
                |r| r.get(0),
            )?;
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
            let items = {
                let mut stmt = tx.prepare(&sql.text)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), read_row)?;
                rows.map(|r| r.map(|(rec, _)| rec))
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(FindResult {
                items,
                count: count as u64,
            })
        }))
    }

    fn sync<'a>(
        &'a self,
        spec: &'static ModelSpec,
        request: &'a SyncRequest,
    ) -> BoxFuture<'a, Result<SyncPage>> {
        let request = request.clone();
        Box::pin(self.blocking(Some(spec), move |conn, opts| {
            let table = ident(spec.collection);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            purge(&tx, spec.collection, opts.purge_cutoff())?;
            let (seq, purged_seq, purged_ms): (i64, i64, i64) = tx.query_row(
                &format!("SELECT seq, purged_seq, purged_ms FROM {COLLECTIONS} WHERE name = ?1"),
                params![spec.collection],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            check_token(&request.since, seq, purged_seq, purged_ms)?;

            // From the beginning only matching records; after a token every change, with
            // whether it still matches (a record that left the filter must reach the client).
            let mut sql = SqlBuf {
                text: format!("SELECT {COLUMNS}, "),
                params: Vec::new(),
            };
            match request.since {
                SyncToken::Beginning => sql.text.push('1'),
                _ => sql.filter(&request.filter),
            }
            sql.text.push_str(&format!(" FROM {table} AS t WHERE "));
            match request.since {
                SyncToken::Beginning => sql.filter(&request.filter),
                // One writer at a time: nothing is ever pending here.
                SyncToken::Seq { seq: n, .. } => {
                    sql.text.push_str("t.seq > ?");
                    sql.params.push(n.into());
                }
                SyncToken::Millis(ms) => {
                    sql.text.push_str("t.updated_at > ?");
                    sql.params.push(ms.into());
                }
            }
            sql.text.push_str(" ORDER BY t.seq LIMIT ?");
            sql.params.push((i64::from(request.limit) + 1).into());
            let mut rows = {
                let mut stmt = tx.prepare(&sql.text)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |row| {
                        let (record, seq) = read_row(row)?;
                        let matches = row.get::<_, Option<i64>>(8)?.unwrap_or(0) != 0;
                        Ok((SyncItem { record, matches }, seq))
                    })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;

            let has_more = rows.len() > request.limit as usize;
            rows.truncate(request.limit as usize);
            // With more to come, continue after the last row sent; otherwise everything up to
            // the counter (read in the same transaction) has been seen.
            let next = SyncToken::Seq {
                seq: match (has_more, rows.last()) {
                    (true, Some((_, last_seq))) => *last_seq,
                    _ => seq,
                },
                pending: Vec::new(),
                watermark: purged_seq,
            };
            Ok(SyncPage {
                items: rows.into_iter().map(|(item, _)| item).collect(),
                next,
                has_more,
            })
        }))
    }

    fn purge_tombstones<'a>(&'a self, spec: &'static ModelSpec) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.blocking(Some(spec), move |conn, opts| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = purge(&tx, spec.collection, opts.purge_cutoff())?;
            tx.commit()?;
            Ok(n)
        }))
    }
}
