//! Runtime of [datasync](https://docs.rs/datasync): everything the `#[derive(DataSync)]` code
//! calls into, and the pieces users touch directly.
//!
//! One module per concern:
//! - [`model`]: the [`Model`] trait the derive implements and the static description of a model;
//! - [`auth`]: principals, read scopes and write rules;
//! - [`meta`]: server-owned sync metadata and stored records ([`SyncMeta`], [`Record`],
//!   [`StoredRecord`]);
//! - [`token`]: the `lastSync` cursor ([`SyncToken`]);
//! - [`filter`]: GraphQLCRUD filter inputs and the store-neutral [`Filter`] tree;
//! - [`conflict`]: conflict detection and strategies;
//! - [`store`]: the [`Store`] trait and its implementations ([`SqliteStore`], [`MongoStore`]);
//! - [`repository`]: the typed [`Repository`] that runs every operation against a store;
//! - [`graphql`]: shared GraphQL inputs, error codes and schema wiring;
//! - [`realtime`] and [`subscription`]: change feeds and the subscriptions built on them;
//! - [`rxdb`]: the RxDB replication dialect (pull, push, stream);
//! - `http` (cargo feature `axum`): the HTTP and WebSocket service.
//!
//! Users depend on the `datasync` facade crate, which re-exports this one.

pub mod auth;
pub mod clock;
pub mod conflict;
pub mod error;
pub mod filter;
pub mod finite;
pub mod graphql;
#[cfg(feature = "axum")]
pub mod http;
pub mod meta;
pub mod model;
pub mod query;
pub mod realtime;
pub mod repository;
pub mod rxdb;
pub mod store;
pub mod subscription;
pub mod token;

pub use async_graphql;
pub use auth::{Authorize, Caller, Principal, Scope};
/// The axum version the [`http`] service is built on.
#[cfg(feature = "axum")]
pub use axum;
pub use clock::{Clock, SystemClock};
pub use conflict::{ConflictInfo, ConflictStrategy, Operation};
pub use error::{DataSyncError, Result};
pub use filter::{
    BooleanInput, FieldFilter, FieldKind, FieldRef, Filter, FilterInput, Filterable,
    FilterableField, FloatInput, IDInput, IntInput, Scalar, ScalarKind, StringInput,
};
pub use graphql::{
    Config, ConflictOverrides, ErrorCodes, OrderByInput, PageRequest, SchemaBuilderExt,
    SortDirectionEnum,
};
pub use meta::{Document, FieldVersions, Record, StoredRecord, SyncMeta};
pub use model::{FieldSpec, IdField, Model, ModelFilter, ModelSpec, MutateParts};
/// The official MongoDB driver, for building clients ([`MongoStore::from_database`]).
#[cfg(feature = "mongodb")]
pub use mongodb;
pub use query::{FindQuery, Order, OrderBy, OrderField, Paging, SyncPage, SyncRequest};
pub use repository::{Delta, FindParts, Page, Repository, Unreadable};
#[cfg(feature = "mongodb")]
pub use store::mongo::MongoStore;
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteStore;
pub use store::{CasOutcome, InsertOutcome, Replacement, Store, StoreOptions, StoreRef};
pub use subscription::Event;
pub use token::{SyncToken, TokenKey};

/// Support for generated code. Not public API: may change in any release.
#[doc(hidden)]
pub mod __private;
