//! Store-neutral requests: what to find, how to order and page, what to sync.

use crate::filter::Filter;
use crate::meta::StoredRecord;
use crate::token::SyncToken;

/// Largest `limit` a sync page or a find page may ask for.
pub const MAX_LIMIT: u32 = 1000;
/// Sync page size when the client gives no `limit`.
pub const DEFAULT_SYNC_LIMIT: u32 = 100;
/// How many records a find without a `limit` returns at most, unless configured otherwise.
pub const DEFAULT_FIND_LIMIT: u32 = 100;

/// Which slice of the matches a find returns: what `PageRequest` asks for, checked by the
/// repository (`limit` 0..=1000, `offset` >= 0).
///
/// ```
/// let page = datasync_core::Paging { limit: Some(20), offset: Some(40) };
/// # let _ = page;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paging {
    /// How many records at most (absent: the repository's default find limit).
    pub limit: Option<i64>,
    /// How many matching records to skip.
    pub offset: Option<i64>,
}

/// A requested sort order by external field name: `id`, `createdAt`, `updatedAt`,
/// `_version`, or a filterable non-list field. Ties are broken by id.
///
/// ```
/// let by = datasync_core::OrderBy { field: "priority".into(), descending: true };
/// # let _ = by;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderBy {
    /// The field's external name.
    pub field: String,
    /// Descending order?
    pub descending: bool,
}

/// What a sort key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    /// The record id.
    Id,
    /// `createdAt`.
    CreatedAt,
    /// `updatedAt`.
    UpdatedAt,
    /// `_version`.
    Version,
    /// A filterable, non-list data field, by external name.
    Data(&'static str),
}

/// A sort order. Ties are always broken by id, ascending, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// Sort key.
    pub field: OrderField,
    /// Descending?
    pub descending: bool,
}

impl Default for Order {
    fn default() -> Self {
        Order {
            field: OrderField::Id,
            descending: false,
        }
    }
}

/// A `find`: live records matching `filter`, ordered, then paged.
#[derive(Debug, Clone, PartialEq)]
pub struct FindQuery {
    /// Which records.
    pub filter: Filter,
    /// In which order.
    pub order: Order,
    /// How many to skip.
    pub offset: u64,
    /// How many at most (`None`: all).
    pub limit: Option<u64>,
    /// Whether to count every match (the page ignored); skipped when nobody asked.
    pub count: bool,
}

/// A page of a `find`.
#[derive(Debug, Clone, PartialEq)]
pub struct FindResult {
    /// The records of the page.
    pub items: Vec<StoredRecord>,
    /// How many live records match the filter, page ignored (if the query asked).
    pub count: Option<u64>,
}

/// A `sync`: changes after `since`, tombstones included.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    /// Where the client is.
    pub since: SyncToken,
    /// Which records the client replicates: after a token, a changed record that does not
    /// match is still returned, flagged (the client drops it).
    pub filter: Filter,
    /// Records the client may ever see (a fixed read scope): others are never returned.
    pub scope: Filter,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: u32,
}

impl SyncRequest {
    /// Changes after `since` matching `filter`, all records in scope.
    pub fn new(since: SyncToken, filter: Filter, limit: u32) -> Self {
        SyncRequest {
            since,
            filter,
            scope: Filter::All,
            limit,
        }
    }

    /// The same request, limited to records matching `scope`.
    pub fn scoped(mut self, scope: Filter) -> Self {
        self.scope = scope;
        self
    }
}

/// One change in a sync page.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncItem {
    /// The record's current state (possibly a tombstone).
    pub record: StoredRecord,
    /// Whether it matches the request's filter. A changed record that no longer matches
    /// must still reach a filtered client, which then drops it.
    pub matches: bool,
}

/// A page of changes.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPage {
    /// Changed records (tombstones included), in change order. From the beginning only
    /// matching records; after a token every change, flagged.
    pub items: Vec<SyncItem>,
    /// The token to send next time.
    pub next: SyncToken,
    /// More changes are waiting: call again now with `next`.
    pub has_more: bool,
}
