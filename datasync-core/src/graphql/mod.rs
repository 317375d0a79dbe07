//! GraphQL glue shared by every model: the page and order inputs, schema wiring, and the
//! extensions that keep every request's failures well-formed.

mod error_codes;
mod input_depth;
mod limits;
mod operations;
pub mod resolve;

pub use error_codes::ErrorCodes;
pub use input_depth::{InputDepthLimit, MAX_INPUT_DEPTH};
pub use limits::{find_cost, sync_cost, RequestLimits};
pub use operations::colliding_operations;

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, OutputType, SchemaBuilder};

use crate::auth::{Authorize, Caller, Principal};
use crate::conflict::ConflictStrategy;
use crate::error::DataSyncError;
use crate::model::Model;
use crate::query::{OrderBy, Paging, DEFAULT_FIND_LIMIT, MAX_LIMIT};
use crate::repository::Repository;
use crate::store::{Store, StoreRef};

/// `PageRequest { limit offset }` of `find<Models>`: `limit` 0..=1000 (absent: the schema's
/// default find limit, 100 unless configured), `offset` >= 0.
#[derive(InputObject, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// How many records at most.
    pub limit: Option<i32>,
    /// How many matching records to skip.
    pub offset: Option<i32>,
}

impl From<PageRequest> for Paging {
    fn from(page: PageRequest) -> Self {
        Paging {
            limit: page.limit.map(i64::from),
            offset: page.offset.map(i64::from),
        }
    }
}

/// Sort direction.
#[derive(Enum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortDirectionEnum {
    /// Ascending.
    #[default]
    #[graphql(name = "ASC")]
    Asc,
    /// Descending.
    #[graphql(name = "DESC")]
    Desc,
}

/// `OrderByInput { field order }` of `find<Models>`. Ties are broken by id.
///
/// ```
/// use datasync_core::{OrderByInput, SortDirectionEnum};
/// let by_priority = OrderByInput { field: "priority".into(), order: Some(SortDirectionEnum::Desc) };
/// # let _ = by_priority;
/// ```
#[derive(InputObject, Debug, Clone, PartialEq, Eq)]
pub struct OrderByInput {
    /// `id`, `createdAt`, `updatedAt`, `_version`, or a filterable field's name.
    pub field: String,
    /// `ASC` (default) or `DESC`.
    #[graphql(default_with = "Some(SortDirectionEnum::Asc)")]
    pub order: Option<SortDirectionEnum>,
}

impl From<&OrderByInput> for OrderBy {
    fn from(input: &OrderByInput) -> Self {
        OrderBy {
            field: input.field.clone(),
            descending: input.order == Some(SortDirectionEnum::Desc),
        }
    }
}

/// How datasync behaves in one schema: conflict strategies, authorization, limits. Passed
/// to [`SchemaBuilderExt::datasync_with`].
///
/// ```
/// use datasync_core::{conflict::Merge, Config, ConflictOverrides};
/// use datasync_core::graphql::RequestLimits;
/// # fn demo<Note: datasync_core::Model>() {
/// let config = Config::new()
///     .conflicts(ConflictOverrides::new().set::<Note>(Merge))
///     .find_limit(50)
///     .admin_group("staff")
///     .limits(RequestLimits::default().complexity(50_000));
/// # let _ = config; }
/// ```
#[derive(Clone)]
pub struct Config {
    conflicts: ConflictOverrides,
    find_limit: u32,
    admin_group: Option<String>,
    rules: HashMap<&'static str, Arc<dyn Authorize>>,
    limits: RequestLimits,
    push_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            conflicts: ConflictOverrides::default(),
            find_limit: DEFAULT_FIND_LIMIT,
            admin_group: Some("admin".to_owned()),
            rules: HashMap::new(),
            limits: RequestLimits::default(),
            push_limit: crate::rxdb::DEFAULT_PUSH_LIMIT,
        }
    }
}

impl Config {
    /// The defaults: each model's own conflict strategy and rules, finds without a limit
    /// return at most 100 records, members of group `admin` see and write everything, the
    /// default [`RequestLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Members of `group` see and write every record of every model (default `admin`).
    pub fn admin_group(mut self, group: impl Into<String>) -> Self {
        self.admin_group = Some(group.into());
        self
    }

    /// No admin group: nobody bypasses the rules.
    pub fn no_admin_group(mut self) -> Self {
        self.admin_group = None;
        self
    }

    /// Checks `M`'s reads and writes with `rules` instead of its `owner`/`auth` attributes.
    pub fn authorize<M: Model>(mut self, rules: impl Authorize) -> Self {
        self.rules.insert(M::spec().type_name, Arc::new(rules));
        self
    }

    /// Most rows one RxDB `push<Model>` may carry (default 100); more are refused whole.
    pub fn push_limit(mut self, rows: usize) -> Self {
        self.push_limit = rows;
        self
    }

    /// The push limit.
    pub fn max_push_rows(&self) -> usize {
        self.push_limit
    }

    /// Request limits (depth, complexity, fields); see [`RequestLimits`].
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The caller a request's principal makes.
    pub fn caller(&self, principal: Option<&Principal>) -> Caller {
        match principal {
            None => Caller::Anonymous,
            Some(p) if self.admin_group.as_deref().is_some_and(|g| p.in_group(g)) => {
                Caller::Admin(p.clone())
            }
            Some(p) => Caller::User(p.clone()),
        }
    }

    /// Conflict strategies that replace the models' own.
    pub fn conflicts(mut self, overrides: ConflictOverrides) -> Self {
        self.conflicts = overrides;
        self
    }

    /// How many records `find<Models>` without `page.limit` returns at most (default 100, at
    /// most 1000). `count` still counts every match, so a client knows to page.
    pub fn find_limit(mut self, limit: u32) -> Self {
        self.find_limit = limit.min(MAX_LIMIT);
        self
    }
}

impl From<ConflictOverrides> for Config {
    fn from(conflicts: ConflictOverrides) -> Self {
        Config::new().conflicts(conflicts)
    }
}

/// Wires datasync into an async-graphql schema.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datasync_core::Result<()> {
/// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
/// use datasync_core::{SchemaBuilderExt, SqliteStore};
/// struct Query;
/// #[Object] impl Query { async fn hello(&self) -> &str { "hi" } }
/// let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
///     .datasync(SqliteStore::memory().await?)
///     .finish();
/// # let _ = schema; Ok(()) }
/// ```
pub trait SchemaBuilderExt: Sized {
    /// Makes `store` available to the generated resolvers and installs [`ErrorCodes`] and
    /// [`InputDepthLimit`].
    ///
    /// # Panics
    ///
    /// When two models in the query would generate the same operation (the same plural),
    /// which the merged schema would otherwise drop silently; see [`colliding_operations`].
    fn datasync(self, store: impl Store) -> Self;

    /// [`datasync`](Self::datasync), configured: conflict strategies that replace the
    /// models' own (a [`ConflictOverrides`] converts into a [`Config`]), limits.
    fn datasync_with(self, store: impl Store, config: impl Into<Config>) -> Self;
}

impl<Q: OutputType, M, S> SchemaBuilderExt for SchemaBuilder<Q, M, S> {
    fn datasync(self, store: impl Store) -> Self {
        self.datasync_with(store, Config::default())
    }

    fn datasync_with(self, store: impl Store, config: impl Into<Config>) -> Self {
        if let Some(problem) = colliding_operations::<Q>() {
            panic!("{problem}");
        }
        let config = config.into();
        let limits = config.limits;
        self.data(StoreRef::new(store))
            .data(config)
            .limit_depth(limits.max_depth())
            .limit_complexity(limits.max_complexity())
            .limit_recursive_depth(limits.max_recursive_depth())
            .extension(ErrorCodes)
            .extension(limits::FieldCounts(limits))
            .extension(InputDepthLimit)
    }
}

/// Conflict strategies chosen when the schema is built, per model, replacing the
/// `#[datasync(conflict = "...")]` of the model.
///
/// ```
/// use datasync_core::{conflict::ClientWins, ConflictOverrides};
/// # fn demo<Note: datasync_core::Model>() {
/// let overrides = ConflictOverrides::new().set::<Note>(ClientWins);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ConflictOverrides(HashMap<&'static str, Arc<dyn ConflictStrategy>>);

impl ConflictOverrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves `M`'s conflicts with `strategy`.
    pub fn set<M: Model>(self, strategy: impl ConflictStrategy) -> Self {
        self.set_shared::<M>(Arc::new(strategy))
    }

    /// Resolves `M`'s conflicts with a shared `strategy` (e.g. from [`by_name`](crate::conflict::by_name)).
    pub fn set_shared<M: Model>(mut self, strategy: Arc<dyn ConflictStrategy>) -> Self {
        self.0.insert(M::spec().type_name, strategy);
        self
    }

    fn get(&self, type_name: &str) -> Option<Arc<dyn ConflictStrategy>> {
        self.0.get(type_name).cloned()
    }
}

/// The repository of `M` over the store registered with [`SchemaBuilderExt::datasync`].
///
/// A store added with plain `.data(store)` is found too (for the stores of this crate), but
/// only `.datasync(store)` also installs the extensions that keep errors well-formed.
///
/// The repository acts for the request's caller: the [`Principal`] in the request's (or the
/// WebSocket connection's) context data, if any.
pub fn repository<M: Model>(ctx: &Context<'_>) -> Result<Repository<M>, DataSyncError> {
    let repo = store_repository::<M>(ctx)?;
    let principal = ctx.data_opt::<Principal>();
    let Some(config) = ctx.data_opt::<Config>() else {
        return Ok(repo.as_caller(Config::default().caller(principal)));
    };
    let mut repo = repo
        .with_find_limit(config.find_limit)
        .as_caller(config.caller(principal));
    if let Some(strategy) = config.conflicts.get(M::spec().type_name) {
        repo = repo.with_strategy(strategy);
    }
    if let Some(rules) = config.rules.get(M::spec().type_name) {
        repo = repo.with_rules(Arc::clone(rules));
    }
    Ok(repo)
}

fn store_repository<M: Model>(ctx: &Context<'_>) -> Result<Repository<M>, DataSyncError> {
    if let Some(store) = ctx.data_opt::<StoreRef>() {
        return Ok(Repository::from_ref(store.clone()));
    }
    #[cfg(feature = "sqlite")]
    if let Some(store) = ctx.data_opt::<crate::SqliteStore>() {
        return Ok(Repository::new(store.clone()));
    }
    #[cfg(feature = "mongodb")]
    if let Some(store) = ctx.data_opt::<crate::MongoStore>() {
        return Ok(Repository::new(store.clone()));
    }
    Err(DataSyncError::internal(
        "the schema has no datasync store",
        "build the schema with `.datasync(store)` (datasync::SchemaBuilderExt)",
    ))
}
