//! The typed repository: every operation of a model, on any store, with or without GraphQL.
//!
//! This is where the sync semantics live (patches, versions, conflicts, validation); stores
//! only provide atomic primitives. Every write is a compare-and-set on `_version`, retried a
//! bounded number of times when the record changes between reading it and writing it.

use std::marker::PhantomData;

use serde_json::{json, Value as Json};

use crate::conflict::{differing_fields, Conflict, ConflictInfo, Operation, Resolution};
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::graphql::{OrderByInput, PageRequest, SortDirectionEnum};
use crate::meta::Record;
use crate::model::{Document, FieldError, Model, ModelFilter, ModelSpec, MutateParts};
use crate::query::{FindQuery, Order, OrderField, SyncRequest, DEFAULT_SYNC_LIMIT, MAX_LIMIT};
use crate::store::{CasOutcome, InsertOutcome, Store, StoreRef, StoredRecord};
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
}

/// Typed access to one model's records in a store.
///
/// ```
/// # use datasync_core::*;
/// # fn demo<M: Model>(store: SqliteStore) {
/// let repo: Repository<M> = Repository::new(store);
/// # }
/// ```
pub struct Repository<M> {
    store: StoreRef,
    model: PhantomData<fn() -> M>,
}

impl<M> Clone for Repository<M> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            model: PhantomData,
        }
    }
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
            model: PhantomData,
        }
    }

    fn spec() -> &'static ModelSpec {
        M::spec()
    }

    /// Creates a record (version 1). Without an id in the input the server generates one.
    ///
    /// Fails with `ALREADY_EXISTS` if the id is taken (tombstones included).
    pub async fn create(&self, input: M::Create) -> Result<Record<M>> {
        let spec = Self::spec();
        let (id, mut data) = M::create_parts(input)?;
        spec.normalize(&mut data);
        let id = match id {
            Some(id) => check_id(id)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        match self.store.insert(spec, &id, data).await? {
            InsertOutcome::Inserted(rec) => decode(rec),
            InsertOutcome::Exists(existing) => Err(DataSyncError::AlreadyExists {
                id,
                server_state: existing.to_delta_json(),
            }),
        }
    }

    /// The live record with this id; `None` for unknown ids and tombstones.
    pub async fn get(&self, id: &str) -> Result<Option<Record<M>>> {
        match self.store.get(Self::spec(), id).await? {
            Some(rec) if rec.meta.is_live() => decode(rec).map(Some),
            _ => Ok(None),
        }
    }

    /// Live records matching `filter`, sorted by `order_by` (default: id) and paged.
    pub async fn find(
        &self,
        filter: Option<&M::Filter>,
        page: Option<PageRequest>,
        order_by: Option<&OrderByInput>,
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
        let query = FindQuery {
            filter: to_filter::<M>(filter)?,
            order: order_by
                .map(|o| order(spec, o))
                .transpose()?
                .unwrap_or_default(),
            offset: offset.unwrap_or(0).into(),
            limit: limit.map(u64::from),
        };
        let found = self.store.find(spec, &query).await?;
        Ok(Page {
            items: found.items.into_iter().map(decode).collect::<Result<_>>()?,
            count: found.count,
            offset,
            limit,
        })
    }

    /// Applies a patch (`Mutate<Model>Input`): omitted fields stay, `null` clears an optional
    /// field. The input's `_version` must be the stored one, or the conflict strategy decides.
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
        let request = SyncRequest {
            since,
            filter: to_filter::<M>(filter)?,
            limit,
        };
        let page = self.store.sync(Self::spec(), &request).await?;
        let items = page.items.into_iter().map(|item| {
            let mut record = item.record;
            // Changed and no longer matching: for this client the record is gone.
            record.meta.deleted |= !item.matches;
            decode(record)
        });
        Ok(Delta {
            items: items.collect::<Result<_>>()?,
            last_sync: page.next,
            has_more: page.has_more,
            limit,
        })
    }

    /// The compare-and-set loop shared by update and delete.
    async fn write(&self, op: Operation, parts: MutateParts) -> Result<Record<M>> {
        let spec = Self::spec();
        let MutateParts {
            id,
            version: base,
            mut patch,
        } = parts;
        spec.normalize(&mut patch);
        let client_state = || {
            let mut state = patch.clone();
            state.insert("id".into(), json!(id));
            state.insert("_version".into(), json!(base));
            Json::Object(state)
        };
        let mut last_seen = None;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match self.store.get(spec, &id).await? {
                Some(rec) if rec.meta.is_live() => rec,
                // Deleting what is already deleted: a retry of the delete that made this
                // tombstone succeeds without writing again; any other base version learns
                // of the delete through `CONFLICT`.
                Some(tomb) if op == Operation::Delete => {
                    return if tomb.meta.version == base + 1 {
                        decode(tomb)
                    } else {
                        Err(conflict_error(op, &tomb, client_state(), &patch))
                    };
                }
                _ => return Err(DataSyncError::NotFound { id }),
            };
            let data = if current.meta.version == base {
                match op {
                    Operation::Update => merged(&current.data, &patch),
                    Operation::Delete => current.data.clone(),
                }
            } else {
                let conflict = Conflict {
                    operation: op,
                    server: &current,
                    base_version: base,
                    patch: &patch,
                };
                match spec.conflict.resolve(&conflict) {
                    Resolution::Apply(doc) => doc,
                    Resolution::Reject => {
                        return Err(conflict_error(op, &current, client_state(), &patch))
                    }
                }
            };
            let value =
                M::from_document(id.clone(), data.clone()).map_err(FieldError::into_bad_input)?;
            let deleted = op == Operation::Delete;
            match self
                .store
                .compare_and_set(spec, &current, data, deleted)
                .await?
            {
                CasOutcome::Written(rec) => {
                    return Ok(Record {
                        data: value,
                        meta: rec.meta,
                    })
                }
                CasOutcome::Stale(now) => last_seen = now,
            }
        }
        // The record kept changing under us: report the conflict against its latest state.
        match last_seen {
            Some(rec) if rec.meta.is_live() => {
                Err(conflict_error(op, &rec, client_state(), &patch))
            }
            _ => Err(DataSyncError::NotFound { id }),
        }
    }
}

fn decode<M: Model>(rec: StoredRecord) -> Result<Record<M>> {
    let StoredRecord { id, data, meta } = rec;
    let value = M::from_document(id.clone(), data).map_err(|e| e.into_internal(&id))?;
    Ok(Record { data: value, meta })
}

/// The stored fields with the patch's fields replaced (top level only).
fn merged(current: &Document, patch: &Document) -> Document {
    let mut data = current.clone();
    data.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
    data
}

fn conflict_error(
    op: Operation,
    server: &StoredRecord,
    client_state: Json,
    patch: &Document,
) -> DataSyncError {
    DataSyncError::Conflict(Box::new(ConflictInfo {
        operation: op,
        server_state: server.to_delta_json(),
        client_state,
        conflicting_fields: differing_fields(&server.data, patch),
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

fn in_range<T>(field: &str, value: T, low: u32, high: u32) -> Result<u32>
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

fn to_filter<M: Model>(filter: Option<&M::Filter>) -> Result<Filter> {
    let filter = filter.map_or(Ok(Filter::All), ModelFilter::to_filter)?;
    if filter.weight() > Filter::MAX_WEIGHT {
        return Err(DataSyncError::bad_input(
            "filter",
            format!(
                "the filter is too large: at most {} conditions and `in` values in all",
                Filter::MAX_WEIGHT
            ),
        ));
    }
    Ok(filter)
}

/// Resolves `orderBy.field` to a sort key: `id`, `createdAt`, `updatedAt`, `_version`, or a
/// filterable non-list data field.
fn order(spec: &ModelSpec, input: &OrderByInput) -> Result<Order> {
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
        descending: input.order == Some(SortDirectionEnum::Desc),
    })
}

/// Sync page size from the GraphQL `limit` argument.
pub(crate) fn sync_limit(limit: Option<i32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_SYNC_LIMIT),
        Some(l) => in_range("limit", l, 1, MAX_LIMIT),
    }
}
