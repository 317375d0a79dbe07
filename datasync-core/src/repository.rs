//! The typed repository: every operation of a model, on any store, with or without GraphQL.
//!
//! This is where the sync semantics live (patches, versions, conflicts, validation); stores
//! only provide atomic primitives. Every write is a compare-and-set on `_version`, retried a
//! bounded number of times when the record changes between reading it and writing it.

use std::marker::PhantomData;

use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::auth::{Authorize, Caller, Principal, Scope, Write, WriteKind};
use crate::conflict::{
    differing_fields, json_eq, Conflict, ConflictInfo, ConflictStrategy, Operation, Resolution,
};
use crate::error::{DataSyncError, Result};
use crate::filter::{Filter, MAX_FILTER_WEIGHT};
use crate::meta::{overlay, Document, FieldVersions, Record, StoredRecord};
use crate::model::{FieldError, Model, ModelFilter, ModelSpec, MutateParts};
use crate::query::{
    FindQuery, Order, OrderBy, OrderField, Paging, SyncRequest, DEFAULT_FIND_LIMIT,
    DEFAULT_SYNC_LIMIT, MAX_LIMIT,
};
use crate::store::{CasOutcome, InsertOutcome, Replacement, Store, StoreRef};
use crate::token::SyncToken;

/// How often a write re-reads and retries when the record changes under it.
const MAX_CAS_ATTEMPTS: usize = 8;
/// Longest id a client may choose.
const MAX_ID_LEN: usize = 512;

/// A page of `find` results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<M> {
    /// The records of the page.
    pub items: Vec<Record<M>>,
    /// All live records matching the filter, page ignored.
    pub count: u64,
    /// The requested offset.
    pub offset: Option<u32>,
    /// The requested limit.
    pub limit: Option<u32>,
    /// Records of the page that could not be read as `M` (stored data that no longer fits
    /// the model): left out and logged, so that one bad record never takes a page down.
    pub unreadable: Vec<Unreadable>,
}

/// A stored record that could not be read as its model, left out of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Its id.
    pub id: String,
    /// What did not fit (also in the server log).
    pub reason: String,
}

impl Unreadable {
    /// The error reported beside the result: `INTERNAL`, with the record's id.
    pub fn to_error(&self) -> DataSyncError {
        DataSyncError::Internal {
            message: format!(
                "record {:?} could not be read and was left out; the server log has details",
                self.id
            ),
        }
    }
}

/// A page of changes from `sync`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta<M> {
    /// Changed records, tombstones included (`meta.deleted`), in change order.
    pub items: Vec<Record<M>>,
    /// Pass this as `since` next time.
    pub last_sync: SyncToken,
    /// More changes are waiting: call again now with `last_sync`.
    pub has_more: bool,
    /// The page size used.
    pub limit: u32,
    /// Changes that could not be read as `M`: left out and logged (see [`Page::unreadable`]).
    pub unreadable: Vec<Unreadable>,
}

/// Typed access to one model's records in a store.
///
/// ```
/// # use datasync_core::*;
/// # fn demo<M: Model>(store: SqliteStore) {
/// let repo: Repository<M> = Repository::new(store);
/// # }
/// ```
///
/// A repository acts for a [`Caller`]: by default the server itself, to which no rules
/// apply; [`for_principal`](Self::for_principal) makes it act for a user, under the model's
/// read scope and write rules (the GraphQL resolvers do this for every request).
pub struct Repository<M> {
    store: StoreRef,
    /// Overrides the model's `#[datasync(conflict = ...)]` strategy.
    strategy: Option<Arc<dyn ConflictStrategy>>,
    /// Overrides the model's `owner`/`auth` rules.
    rules: Option<Arc<dyn Authorize>>,
    caller: Caller,
    /// How many records a find without a limit returns at most.
    find_limit: u32,
    model: PhantomData<fn() -> M>,
}

impl<M> Clone for Repository<M> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            strategy: self.strategy.clone(),
            rules: self.rules.clone(),
            caller: self.caller.clone(),
            find_limit: self.find_limit,
            model: PhantomData,
        }
    }
}

/// Which parts of a find to compute: a query that selects only `count` reads no records, one
/// that selects only `items` counts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindParts {
    /// Read the page's records.
    pub items: bool,
    /// Count every match.
    pub count: bool,
}

impl FindParts {
    /// Both.
    pub const ALL: FindParts = FindParts {
        items: true,
        count: true,
    };
}

impl<M: Model> Repository<M> {
    /// A repository over `store`.
    pub fn new(store: impl Store) -> Self {
        Self::from_ref(StoreRef::new(store))
    }

    /// A repository over an already shared store.
    pub fn from_ref(store: StoreRef) -> Self {
        Repository {
            store,
            strategy: None,
            rules: None,
            caller: Caller::System,
            find_limit: DEFAULT_FIND_LIMIT,
            model: PhantomData,
        }
    }

    /// Acts for `principal`: reads see only its read scope, writes are checked, and the owner
    /// field of a created record is set to its id.
    ///
    /// ```
    /// # use datasync_core::*;
    /// # fn demo<M: Model>(repo: Repository<M>) -> Repository<M> {
    /// repo.for_principal(Principal::new("alice"))
    /// # }
    /// ```
    pub fn for_principal(self, principal: Principal) -> Self {
        self.as_caller(Caller::User(principal))
    }

    /// Acts for `caller` (see [`Caller`]).
    pub fn as_caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// Checks reads and writes with `rules` instead of the model's `owner`/`auth` attributes.
    pub fn with_rules(mut self, rules: Arc<dyn Authorize>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Who this repository acts for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    fn authorizer(&self) -> &dyn Authorize {
        match &self.rules {
            Some(rules) => rules.as_ref(),
            None => &Self::spec().rules,
        }
    }

    /// The records the caller may read.
    pub fn read_scope(&self) -> Result<Scope> {
        self.authorizer().read_scope(Self::spec(), &self.caller)
    }

    /// `FORBIDDEN` (`UNAUTHENTICATED` without a principal) unless the rules allow `write`.
    fn check_write(&self, write: Write<'_>) -> Result<()> {
        if self
            .authorizer()
            .allow_write(Self::spec(), &self.caller, &write)
        {
            return Ok(());
        }
        Err(match self.caller {
            Caller::Anonymous => DataSyncError::Unauthenticated {
                message: "sign in first: this write needs an authenticated caller".to_owned(),
            },
            _ => DataSyncError::Forbidden {
                message: format!(
                    "the rules of {} do not allow this {}",
                    Self::spec().type_name,
                    match write.kind {
                        WriteKind::Create => "create",
                        WriteKind::Update => "update",
                        WriteKind::Delete => "delete",
                    }
                ),
            },
        })
    }

    /// How many records a find without `page.limit` returns at most (default
    /// [`DEFAULT_FIND_LIMIT`]; at most 1000). `count` still counts every match.
    ///
    /// ```
    /// # use datasync_core::*;
    /// # fn demo<M: Model>(repo: Repository<M>) -> Repository<M> {
    /// repo.with_find_limit(500)
    /// # }
    /// ```
    pub fn with_find_limit(mut self, limit: u32) -> Self {
        self.find_limit = limit.min(MAX_LIMIT);
        self
    }

    /// The store this repository works on.
    pub fn store(&self) -> &StoreRef {
        &self.store
    }

    /// Resolves conflicts with `strategy` instead of the model's own.
    ///
    /// ```
    /// # use datasync_core::*;
    /// # fn demo<M: Model>(repo: Repository<M>) -> Repository<M> {
    /// repo.with_strategy(std::sync::Arc::new(datasync_core::conflict::Merge))
    /// # }
    /// ```
    pub fn with_strategy(mut self, strategy: Arc<dyn ConflictStrategy>) -> Self {
        self.strategy = Some(strategy);
        self
    }

    fn spec() -> &'static ModelSpec {
        M::spec()
    }

    /// Creates a record (version 1). Without an id in the input the server generates one.
    ///
    /// Fails with `ALREADY_EXISTS` if the id is taken (tombstones included).
    pub async fn create(&self, input: M::Create) -> Result<Record<M>> {
        let (id, data) = M::create_parts(input)?;
        self.create_document(id, data).await
    }

    /// [`create`](Self::create) from the stored form of the input's fields.
    pub(crate) async fn create_document(
        &self,
        id: Option<String>,
        mut data: Document,
    ) -> Result<Record<M>> {
        let spec = Self::spec();
        spec.normalize(&mut data);
        if let Some(owner) = spec.rules.owner {
            let Some(principal) = self.caller.principal() else {
                return Err(match self.caller {
                    Caller::Anonymous => DataSyncError::Unauthenticated {
                        message: "sign in first: records of this model belong to their creator"
                            .to_owned(),
                    },
                    _ => DataSyncError::bad_input(
                        format!("input.{owner}"),
                        "records of an owner-scoped model are created for a principal: use \
                         Repository::for_principal",
                    ),
                });
            };
            data.insert(owner.to_owned(), Json::String(principal.id.clone()));
        }
        let id = match id {
            Some(id) => check_id(id)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        self.check_write(Write {
            kind: WriteKind::Create,
            before: None,
            after: &data,
        })?;
        match self.store.insert(spec, &id, data).await? {
            InsertOutcome::Inserted(rec) => decode(rec).map_err(|e| e.into_internal()),
            // Only a record the caller may read is shown; otherwise the id is just taken.
            InsertOutcome::Exists(existing) => Err(DataSyncError::AlreadyExists {
                id,
                server_state: match self.read_scope()?.allows(&existing) {
                    true => existing.to_delta_json(),
                    false => Json::Null,
                },
            }),
        }
    }

    /// The live record with this id; `None` for unknown ids, tombstones and records outside
    /// the caller's read scope.
    pub async fn get(&self, id: &str) -> Result<Option<Record<M>>> {
        let scope = self.read_scope()?;
        if scope == Scope::Nothing {
            return Ok(None);
        }
        match self.store.get(Self::spec(), id).await? {
            Some(rec) if rec.meta.is_live() && scope.allows(&rec) => {
                decode(rec).map(Some).map_err(|e| e.into_internal())
            }
            _ => Ok(None),
        }
    }

    /// Live records matching `filter`, sorted by `order` (default: id) and paged. Without
    /// `page.limit` at most the repository's find limit are returned (see
    /// [`with_find_limit`](Self::with_find_limit)); `count` counts every match.
    pub async fn find(
        &self,
        filter: Option<&M::Filter>,
        page: Option<Paging>,
        order: Option<&OrderBy>,
    ) -> Result<Page<M>> {
        self.find_parts(filter, page, order, FindParts::ALL).await
    }

    /// [`find`](Self::find), computing only `parts` (the other part comes back empty).
    pub async fn find_parts(
        &self,
        filter: Option<&M::Filter>,
        page: Option<Paging>,
        order: Option<&OrderBy>,
        parts: FindParts,
    ) -> Result<Page<M>> {
        let spec = Self::spec();
        let page = page.unwrap_or_default();
        let limit = page
            .limit
            .map(|l| in_range("page.limit", l, 0, MAX_LIMIT))
            .transpose()?;
        let offset = page
            .offset
            .map(|o| in_range("page.offset", o, 0, u32::MAX))
            .transpose()?;
        let take = limit.unwrap_or(self.find_limit);
        let filter = match self.read_scope()? {
            Scope::All => to_filter::<M>(filter)?,
            Scope::Nothing => Filter::Or(Vec::new()),
            Scope::Fixed(scope) | Scope::Where(scope) => {
                Filter::all_of(vec![to_filter::<M>(filter)?, scope])
            }
        };
        let query = FindQuery {
            filter,
            order: order
                .map(|o| sort_order(spec, o))
                .transpose()?
                .unwrap_or_default(),
            offset: offset.unwrap_or(0).into(),
            limit: Some(if parts.items { take.into() } else { 0 }),
            count: parts.count,
        };
        let found = self.store.find(spec, &query).await?;
        let (items, unreadable) = decode_all(found.items, |rec| rec);
        Ok(Page {
            items,
            count: found.count.unwrap_or(0),
            offset,
            limit,
            unreadable,
        })
    }

    /// Applies a patch (`Mutate<Model>Input`): omitted fields stay, `null` clears an optional
    /// field. The input's `_version` must be the stored one, or the conflict strategy decides
    /// (as it does for an update of a deleted record: `throw` answers `NOT_FOUND`).
    pub async fn update(&self, input: M::Mutate) -> Result<Record<M>> {
        self.write(Operation::Update, M::mutate_parts(input)?).await
    }

    /// Soft-deletes the record: it becomes a tombstone with a new version, kept for the
    /// store's retention so that syncing clients learn of the delete.
    ///
    /// Deleting a tombstone with the version the delete was based on (a retried delete)
    /// returns the tombstone and writes nothing; with another version it is a `CONFLICT`
    /// whose `serverState` shows `_deleted: true`.
    pub async fn delete(&self, id: &str, version: i64) -> Result<Record<M>> {
        let parts = MutateParts {
            id: id.to_owned(),
            version,
            patch: Document::new(),
        };
        self.write(Operation::Delete, parts).await
    }

    /// [`delete`](Self::delete) from a `Mutate<Model>Input` (its fields are only echoed in
    /// `conflictInfo.clientState`).
    pub async fn delete_input(&self, input: M::Mutate) -> Result<Record<M>> {
        self.write(Operation::Delete, M::mutate_parts(input)?).await
    }

    /// Changes after `since` (tombstones included), at most `limit` (1..=1000), optionally
    /// only records matching `filter`. With a filter, a record that changed and no longer
    /// matches is delivered as deleted (`meta.deleted`): the client must drop its copy.
    pub async fn sync(
        &self,
        since: SyncToken,
        filter: Option<&M::Filter>,
        limit: u32,
    ) -> Result<Delta<M>> {
        let limit = in_range("limit", limit, 1, MAX_LIMIT)?;
        let filter = to_filter::<M>(filter)?;
        let scope = self.read_scope()?;
        // A fixed scope leaves other records out entirely; a changing one is part of the
        // filter, so that a record leaving it arrives as a removal.
        let request = match &scope {
            Scope::All => SyncRequest::new(since, filter, limit),
            Scope::Nothing => {
                SyncRequest::new(since, Filter::All, limit).scoped(Filter::Or(vec![]))
            }
            Scope::Fixed(f) => SyncRequest::new(since, filter, limit).scoped(f.clone()),
            Scope::Where(f) => {
                SyncRequest::new(since, Filter::all_of(vec![filter, f.clone()]), limit)
            }
        };
        let page = self.store.sync(Self::spec(), &request).await?;
        let rows = page
            .items
            .into_iter()
            .filter_map(|item| removal_or_record::<M>(&scope, item.record, item.matches))
            .collect();
        let (items, unreadable) = decode_all(rows, |record| record);
        Ok(Delta {
            items,
            last_sync: page.next,
            has_more: page.has_more,
            limit,
            unreadable,
        })
    }

    /// The compare-and-set loop shared by update and delete: read, decide (directly, or by
    /// the conflict strategy), write if the version is still the one read; otherwise again.
    pub(crate) async fn write(&self, op: Operation, parts: MutateParts) -> Result<Record<M>> {
        let spec = Self::spec();
        let MutateParts {
            id,
            version: base,
            mut patch,
        } = parts;
        spec.normalize(&mut patch);
        let strategy = self.strategy.as_deref().unwrap_or(spec.conflict);
        let scope = self.read_scope()?;
        // The store's recent copy saves a read when it is current: the compare-and-set
        // checks that. Any answer that writes nothing is decided on a fresh read instead.
        let mut seen = self.store.recent(spec, &id);
        let mut fresh = seen.is_none();
        if fresh {
            seen = self.store.get(spec, &id).await?;
        }
        let mut attempts = 0;
        while attempts < MAX_CAS_ATTEMPTS {
            let decision = self.decide(op, &id, base, &patch, &scope, strategy, seen);
            let (current, data) = match decision {
                Ok(Decision::Write { current, data }) => (current, data),
                _ if !fresh => {
                    seen = self.store.get(spec, &id).await?;
                    fresh = true;
                    continue;
                }
                Ok(Decision::Answer(current)) => {
                    return decode(current).map_err(|e| e.into_internal())
                }
                Err(e) => return Err(e),
            };
            attempts += 1;
            let value =
                M::from_document(id.clone(), data.clone()).map_err(FieldError::into_bad_input)?;
            let new = Replacement {
                field_versions: field_versions(&current, &data),
                data,
                deleted: op == Operation::Delete,
            };
            match self.store.compare_and_set(spec, &current, new).await? {
                CasOutcome::Written(rec) => {
                    return Ok(Record {
                        data: value,
                        meta: rec.meta,
                    })
                }
                CasOutcome::Stale(now) => {
                    seen = now;
                    fresh = true;
                }
            }
        }
        // The record kept changing under us: report the conflict against its latest state.
        match seen {
            Some(rec) => {
                let fields = differing_fields(&rec.data, &patch);
                Err(conflict_error(
                    op,
                    &rec,
                    client_state(&id, base, &patch),
                    fields,
                ))
            }
            None => Err(DataSyncError::NotFound { id }),
        }
    }

    /// What an update or delete based on version `base` does to `seen`: write `data` over
    /// `current`, answer with a record as it is, or fail.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        op: Operation,
        id: &str,
        base: i64,
        patch: &Document,
        scope: &Scope,
        strategy: &dyn ConflictStrategy,
        seen: Option<StoredRecord>,
    ) -> Result<Decision> {
        let spec = Self::spec();
        let id = id.to_owned();
        // A record the caller may not read is, for it, not there.
        let Some(current) = seen.filter(|rec| scope.allows(rec)) else {
            return Err(DataSyncError::NotFound { id });
        };
        // Deleting what is already deleted, based on the version the delete started
        // from: a retry, answered with the tombstone it made.
        if op == Operation::Delete && deleted_retry(&current, base) {
            return Ok(Decision::Answer(current));
        }
        let deleted = current.meta.deleted;
        let data = if !deleted && current.meta.version == base {
            match op {
                Operation::Update => overlay(&current.data, patch),
                Operation::Delete => current.data.clone(),
            }
        } else {
            let conflict = Conflict {
                operation: op,
                server: &current,
                base_version: base,
                patch,
            };
            match strategy.resolve(&conflict) {
                Resolution::Apply(_) | Resolution::KeepServer
                    if deleted && op == Operation::Delete =>
                {
                    return Ok(Decision::Answer(current))
                }
                Resolution::Apply(data) => data,
                Resolution::KeepServer if !deleted => return Ok(Decision::Answer(current)),
                Resolution::KeepServer => return Err(DataSyncError::NotFound { id }),
                Resolution::Reject { .. } if deleted && op == Operation::Update => {
                    return Err(DataSyncError::NotFound { id })
                }
                Resolution::Reject { conflicting_fields } => {
                    return Err(conflict_error(
                        op,
                        &current,
                        client_state(&id, base, patch),
                        conflicting_fields,
                    ))
                }
            }
        };
        // The owner never changes, whatever a strategy decided.
        let mut data = data;
        if let Some(owner) = spec.rules.owner {
            match current.data.get(owner) {
                Some(value) => data.insert(owner.to_owned(), value.clone()),
                None => data.remove(owner),
            };
        }
        self.check_write(Write {
            kind: match op {
                Operation::Update => WriteKind::Update,
                Operation::Delete => WriteKind::Delete,
            },
            before: Some(&current),
            after: &data,
        })?;
        Ok(Decision::Write { current, data })
    }
}

/// What [`Repository::write`] does with the state it read.
enum Decision {
    /// Write `data` over `current` (compare-and-set on its version).
    Write {
        current: StoredRecord,
        data: Document,
    },
    /// Write nothing; answer with this record.
    Answer(StoredRecord),
}

/// What the client sent, as `conflictInfo.clientState` shows it.
fn client_state(id: &str, base: i64, patch: &Document) -> Json {
    let mut state = patch.clone();
    state.insert("id".into(), json!(id));
    state.insert("_version".into(), json!(base));
    Json::Object(state)
}

/// A delete based on `base` meets the tombstone that delete made: a retry.
fn deleted_retry(current: &StoredRecord, base: i64) -> bool {
    current.meta.deleted && base.checked_add(1) == Some(current.meta.version)
}

/// A changed record as a client with `scope` receives it: as it is when it `matches` the
/// request; otherwise as a removal (`deleted`), which carries the model's `Default` data
/// instead of the record's own when the record is outside the scope (a model without
/// `Default` leaves such a removal out).
pub(crate) fn removal_or_record<M: Model>(
    scope: &Scope,
    mut record: StoredRecord,
    matches: bool,
) -> Option<StoredRecord> {
    if matches {
        return Some(record);
    }
    record.meta.deleted = true;
    if let Scope::Where(f) = scope {
        if !f.matches(&record) {
            match M::placeholder().map(|p| p.to_document()) {
                Some(Ok((_, data))) => record.data = data,
                _ => {
                    tracing::warn!(target: "datasync", "{}: a record left a caller's read scope, but the model has no Default to stand in for its data: the removal is left out", M::spec().type_name);
                    return None;
                }
            }
            record.field_versions.clear();
        }
    }
    Some(record)
}

/// The field versions after writing `data` over `current`: fields whose value changes get
/// the new version.
fn field_versions(current: &StoredRecord, data: &Document) -> FieldVersions {
    let next = current.meta.version + 1;
    let mut versions = current.field_versions.clone();
    for field in current.data.keys().chain(data.keys()) {
        let old = current.data.get(field).unwrap_or(&Json::Null);
        let new = data.get(field).unwrap_or(&Json::Null);
        if !json_eq(old, new) {
            versions.insert(field.clone(), next);
        }
    }
    versions
}

/// A stored record as `M`, or why it cannot be read.
pub(crate) fn decode<M: Model>(rec: StoredRecord) -> std::result::Result<Record<M>, Unreadable> {
    let StoredRecord { id, data, meta, .. } = rec;
    match M::from_document(id.clone(), data) {
        Ok(value) => Ok(Record { data: value, meta }),
        Err(e) => Err(Unreadable {
            reason: format!("field {:?}: {}", e.field, e.message),
            id,
        }),
    }
}

impl Unreadable {
    /// Logs it and turns it into the `INTERNAL` error of a single-record answer.
    fn into_internal(self) -> DataSyncError {
        DataSyncError::internal(
            &format!("record {:?} could not be read", self.id),
            format_args!("stored data does not match the model: {}", self.reason),
        )
    }
}

/// Decodes every record of a result; records that do not fit the model are logged and set
/// aside instead of failing the whole result.
pub(crate) fn decode_all<M: Model, T>(
    rows: Vec<T>,
    record: impl Fn(T) -> StoredRecord,
) -> (Vec<Record<M>>, Vec<Unreadable>) {
    let mut items = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in rows {
        match decode(record(row)) {
            Ok(item) => items.push(item),
            Err(bad) => {
                tracing::error!(
                    target: "datasync",
                    "{}: record {:?} does not match the model and was left out: {}",
                    M::spec().collection, bad.id, bad.reason
                );
                unreadable.push(bad);
            }
        }
    }
    (items, unreadable)
}

fn conflict_error(
    op: Operation,
    server: &StoredRecord,
    client_state: Json,
    conflicting_fields: Vec<String>,
) -> DataSyncError {
    DataSyncError::Conflict(Box::new(ConflictInfo {
        operation: op,
        server_state: server.to_delta_json(),
        client_state,
        conflicting_fields,
    }))
}

fn check_id(id: String) -> Result<String> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(DataSyncError::bad_input(
            "input.id",
            format!("an id must be 1 to {MAX_ID_LEN} bytes of text without control characters"),
        ));
    }
    Ok(id)
}

pub(crate) fn in_range<T>(field: &str, value: T, low: u32, high: u32) -> Result<u32>
where
    T: Copy + std::fmt::Display + TryInto<u32>,
{
    match value.try_into() {
        Ok(v) if (low..=high).contains(&v) => Ok(v),
        _ => Err(DataSyncError::bad_input(
            field,
            format!("{field} must be between {low} and {high}, got {value}"),
        )),
    }
}

/// The filter tree of `filter`, after checking its size (every term counts, `{}` included).
pub(crate) fn to_filter<M: Model>(filter: Option<&M::Filter>) -> Result<Filter> {
    let Some(filter) = filter else {
        return Ok(Filter::All);
    };
    if filter.weight() > MAX_FILTER_WEIGHT {
        return Err(DataSyncError::bad_input(
            "filter",
            format!(
                "the filter is too large: at most {MAX_FILTER_WEIGHT} terms (filter objects, \
                 conditions and list values) in all"
            ),
        ));
    }
    filter.to_filter()
}

/// Resolves `orderBy.field` to a sort key: `id`, `createdAt`, `updatedAt`, `_version`, or a
/// filterable non-list data field.
fn sort_order(spec: &ModelSpec, input: &OrderBy) -> Result<Order> {
    let field = match input.field.as_str() {
        "id" => OrderField::Id,
        "createdAt" => OrderField::CreatedAt,
        "updatedAt" => OrderField::UpdatedAt,
        "_version" => OrderField::Version,
        name => match spec.field(name) {
            Some(f) if f.filter.is_some_and(|k| !k.list) => OrderField::Data(f.name),
            _ => {
                let sortable: Vec<&str> = ["id", "createdAt", "updatedAt", "_version"]
                    .into_iter()
                    .chain(
                        spec.fields
                            .iter()
                            .filter(|f| f.filter.is_some_and(|k| !k.list))
                            .map(|f| f.name),
                    )
                    .collect();
                return Err(DataSyncError::bad_input(
                    "orderBy.field",
                    format!(
                        "cannot order {} by {name:?}; sortable fields: {}",
                        spec.plural,
                        sortable.join(", ")
                    ),
                ));
            }
        },
    };
    Ok(Order {
        field,
        descending: input.descending,
    })
}

/// Sync page size from the GraphQL `limit` argument.
pub(crate) fn sync_limit(limit: Option<i32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_SYNC_LIMIT),
        Some(l) => in_range("limit", l, 1, MAX_LIMIT),
    }
}
