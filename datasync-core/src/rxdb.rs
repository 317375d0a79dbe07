//! The RxDB replication dialect (`#[datasync(rxdb)]`): what RxDB's GraphQL replication plugin
//! calls, on the same cursor, rules and conflict handling as the rest of the API.
//!
//! - **pull** (`pull<Model>(checkpoint, limit)`): a sync page; the checkpoint is an object
//!   wrapping the sync token (RxDB merges checkpoints with `Object.assign`).
//! - **push** (`push<Model>(<model>PushRow)`): rows `{assumedMasterState, newDocumentState}`,
//!   each applied on its own: with the assumed state's version as the base version (a
//!   compare-and-set, so the model's conflict strategy decides on a stale one); without one,
//!   as a create. A row whose new state is what is stored already succeeds without writing (a
//!   retry after a lost response). The answer lists the current master state of every row
//!   that conflicted.
//! - **stream** (`stream<Model>`): the realtime feed as pull bulks. Its first message has no
//!   documents: the client is told to pull (RxDB's `RESYNC`) once the feed runs, so nothing
//!   that happened between its last pull and the feed's start is missed. The same message
//!   comes again whenever the feed had to start over (the subscriber fell behind, or a purge
//!   expired the feed), and the stream never sends an error (RxDB's stream cannot recover
//!   from one).
//!
//! Documents carry the metadata under names RxDB accepts: `version` (the `_version`),
//! `updatedAt`, and `deleted` (RxDB's `deletedField`).

use futures_util::stream::{self, BoxStream, StreamExt};

use crate::conflict::Operation;
use crate::error::{DataSyncError, Result};
use crate::meta::{Document, Record, StoredRecord};
use crate::model::{Model, MutateParts};
use crate::realtime::{Batch, Subscription};
use crate::repository::{decode_all, removal_or_record, Repository};
use crate::token::SyncToken;

/// Most rows a push may carry unless configured otherwise.
pub const DEFAULT_PUSH_LIMIT: usize = 100;

/// One row of a push, in the stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRow {
    /// The record id.
    pub id: String,
    /// The new state's data fields (those a client may set).
    pub data: Document,
    /// Whether the new state is deleted.
    pub deleted: bool,
    /// The master state the client based its change on; `None` for a document the client
    /// created.
    pub assumed: Option<Assumed>,
}

/// The master state a pushed change is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumed {
    /// Its `version`, if the client has it. RxDB assumes that what it pushed is stored as it
    /// is, so a document pushed and then changed again before its next pull arrives without
    /// one: its data then tells whether it is the stored state.
    pub version: Option<i64>,
    /// Its data fields.
    pub data: Document,
    /// Whether it is deleted.
    pub deleted: bool,
}

/// A page of documents and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct PullBulk<M> {
    /// Changed records, deleted ones included.
    pub documents: Vec<Record<M>>,
    /// The checkpoint's sync token.
    pub last_sync: SyncToken,
}

impl<M: Model> Repository<M> {
    /// RxDB's pull: changes after `checkpoint` (a `lastSync`; `None` from the beginning).
    pub async fn pull(&self, checkpoint: Option<&str>, limit: i32) -> Result<PullBulk<M>> {
        let since = checkpoint.map_or(Ok(SyncToken::ZERO), SyncToken::parse)?;
        let limit = crate::repository::in_range("limit", limit, 1, crate::query::MAX_LIMIT)?;
        let delta = self.sync(since, None, limit).await?;
        Ok(PullBulk {
            documents: delta.items,
            last_sync: delta.last_sync,
        })
    }

    /// RxDB's push: applies each row on its own and answers the current master state of the
    /// rows that conflicted. More than `limit` rows are refused (`BAD_USER_INPUT`) before
    /// anything is written. A row that fails for another reason fails the push after all
    /// rows were tried (the rows applied stay applied; a retry finds them equal).
    pub async fn push(&self, rows: Vec<PushRow>, limit: usize) -> Result<Vec<StoredRecord>> {
        if rows.len() > limit {
            return Err(DataSyncError::bad_input(
                "rows",
                format!(
                    "a push holds at most {limit} rows, this one {}; nothing was written",
                    rows.len()
                ),
            ));
        }
        let mut conflicts = Vec::new();
        let mut failure = None;
        for row in rows {
            match self.push_row(row).await {
                Ok(None) => {}
                Ok(Some(master)) => conflicts.push(master),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(conflicts),
        }
    }

    /// One row: `None` when applied (or already in place), else the master state.
    async fn push_row(&self, row: PushRow) -> Result<Option<StoredRecord>> {
        let spec = M::spec();
        let mut data = row.data;
        spec.normalize(&mut data);
        let scope = self.read_scope()?;
        let current = self
            .store()
            .get(spec, &row.id)
            .await?
            .filter(|rec| scope.allows(rec));
        if let Some(current) = &current {
            if in_place(current, &data, row.deleted) {
                return Ok(None);
            }
        }
        // The version the change is based on: the assumed state's, or, without one, the stored
        // version if the assumed state is what is stored.
        let base = row
            .assumed
            .as_ref()
            .map(|assumed| match (assumed.version, &current) {
                (Some(version), _) => version,
                (None, Some(current)) if in_place(current, &assumed.data, assumed.deleted) => {
                    current.meta.version
                }
                (None, _) => 0,
            });
        let outcome = match (&current, base) {
            // Nothing (the client created it, or what it knew is gone): create.
            (None, _) if row.deleted => return Ok(None),
            (None, _) => self
                .create_document(Some(row.id.clone()), data)
                .await
                .map(|_| ()),
            // The client never saw the stored record: a conflict.
            (Some(current), None) => return Ok(Some(current.clone())),
            (Some(_), Some(version)) => {
                let op = if row.deleted {
                    Operation::Delete
                } else {
                    Operation::Update
                };
                // RxDB sends whole documents: the change is what differs from the state it
                // is based on, so that a strategy like `merge` sees only the fields the client
                // changed.
                let patch = match &row.assumed {
                    Some(assumed) => changed_fields(&assumed.data, &data),
                    None => data,
                };
                let parts = MutateParts {
                    id: row.id.clone(),
                    version,
                    patch,
                };
                self.write(op, parts).await.map(|_| ())
            }
        };
        match outcome {
            Ok(()) => Ok(None),
            Err(
                DataSyncError::Conflict(_)
                | DataSyncError::NotFound { .. }
                | DataSyncError::AlreadyExists { .. },
            ) => {
                // Answer with what is there now (the record may have changed again).
                let master = self
                    .store()
                    .get(spec, &row.id)
                    .await?
                    .filter(|rec| scope.allows(rec));
                match master {
                    Some(master) => Ok(Some(master)),
                    None => Err(DataSyncError::NotFound { id: row.id }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// RxDB's stream: pull bulks of new changes; an empty bulk asks the client to pull
    /// (see the module documentation). Never fails: a stream that cannot start ends at once.
    pub async fn stream(&self) -> BoxStream<'static, PullBulk<M>> {
        let Ok(scope) = self.read_scope() else {
            return stream::empty().boxed();
        };
        let state = RxStream {
            repo: self.clone(),
            scope,
            feed: None,
        };
        stream::unfold(state, next_bulk::<M>).boxed()
    }
}

/// Whether `current` already is the pushed state: the same deleted flag and the same value for
/// every field the client sent (RxDB leaves out fields it does not know).
fn in_place(current: &StoredRecord, data: &Document, deleted: bool) -> bool {
    current.meta.deleted == deleted
        && data.iter().all(|(k, v)| {
            crate::conflict::json_eq(v, current.data.get(k).unwrap_or(&serde_json::Value::Null))
        })
}

/// The fields of `new` that differ from `base` (a field missing from one side counts as null).
fn changed_fields(base: &Document, new: &Document) -> Document {
    let null = serde_json::Value::Null;
    base.keys()
        .chain(new.keys())
        .filter(|k| {
            !crate::conflict::json_eq(base.get(*k).unwrap_or(&null), new.get(*k).unwrap_or(&null))
        })
        .map(|k| {
            (
                k.clone(),
                new.get(k).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect()
}

struct RxStream<M> {
    repo: Repository<M>,
    scope: crate::auth::Scope,
    feed: Option<Subscription>,
}

async fn next_bulk<M: Model>(mut s: RxStream<M>) -> Option<(PullBulk<M>, RxStream<M>)> {
    loop {
        let Some(feed) = s.feed.as_mut() else {
            // (Re)start the feed, then tell the client to pull.
            let Ok(feed) = s
                .repo
                .store()
                .hub()
                .subscribe(s.repo.store(), M::spec())
                .await
            else {
                return None;
            };
            let resync = PullBulk {
                documents: Vec::new(),
                last_sync: feed.start.clone(),
            };
            s.feed = Some(feed);
            return Some((resync, s));
        };
        match feed.next().await {
            Ok(batch) => match &*batch {
                Batch::Changes { records, next } => {
                    let rows: Vec<StoredRecord> = records
                        .iter()
                        .filter(|r| match &s.scope {
                            crate::auth::Scope::Fixed(f) => f.matches(r),
                            crate::auth::Scope::Nothing => false,
                            _ => true,
                        })
                        .filter_map(|r| {
                            removal_or_record::<M>(&s.scope, r.clone(), s.scope.allows(r))
                        })
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let (documents, _) = decode_all::<M, _>(rows, |r| r);
                    let bulk = PullBulk {
                        documents,
                        last_sync: next.clone(),
                    };
                    return Some((bulk, s));
                }
                Batch::Expired => s.feed = None,
            },
            // Behind, or the feed stopped: start over (the client pulls what it missed).
            Err(_) => s.feed = None,
        }
    }
}
