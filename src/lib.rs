#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use datasync_core::*;
pub use datasync_derive::DataSync;

/// Everything a typical server needs, in one `use`.
///
/// ```
/// use datasync::prelude::*;
/// ```
pub mod prelude {
    pub use crate::async_graphql::{
        self, EmptyMutation, EmptySubscription, MaybeUndefined, MergedObject, MergedSubscription,
        Object, Schema, ID,
    };
    #[cfg(feature = "sqlite")]
    pub use crate::SqliteStore;
    pub use crate::{
        BooleanInput, DataSync, DataSyncError, FieldFilter, FloatInput, IDInput, IntInput,
        OrderByInput, PageRequest, Record, Repository, SchemaBuilderExt, SortDirectionEnum, Store,
        StoreOptions, StringInput, SyncMeta, SyncToken,
    };
}
