//! Errors, each with the stable `extensions.code` of the GraphQL contract.

use async_graphql::ErrorExtensions;
use serde_json::Value as Json;

use crate::conflict::ConflictInfo;

/// Result type of every datasync operation.
pub type Result<T, E = DataSyncError> = std::result::Result<T, E>;

/// A failure, as the client will see it.
///
/// Each variant maps to one `extensions.code`:
///
/// ```
/// use datasync_core::DataSyncError;
/// let err = DataSyncError::bad_input("limit", "limit must be between 1 and 1000");
/// assert_eq!(err.code(), "BAD_USER_INPUT");
/// use async_graphql::ErrorExtensions;
/// let gql = err.extend();
/// assert!(gql.extensions.unwrap().get("code").is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum DataSyncError {
    /// `CONFLICT`: the client's `_version` is stale and the conflict strategy rejected it.
    Conflict(Box<ConflictInfo>),
    /// `NOT_FOUND`: no record with this id (or only a tombstone).
    NotFound {
        /// The id that was asked for.
        id: String,
    },
    /// `ALREADY_EXISTS`: create with an id that is taken.
    AlreadyExists {
        /// The id that was asked for.
        id: String,
        /// The stored record, in the `<Model>Delta` shape.
        server_state: Json,
    },
    /// `BAD_USER_INPUT`: the request itself is wrong.
    BadInput {
        /// The input field at fault, where known (`lastSync`, `filter.title`, `input.title`).
        field: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `SYNC_EXPIRED`: `lastSync` predates the newest tombstone purge; sync again from "0".
    SyncExpired {
        /// Explanation for the client.
        message: String,
    },
    /// `UNAUTHENTICATED`: the operation needs an authenticated caller, or the credentials
    /// are missing, malformed, wrongly signed or expired (the message says which).
    Unauthenticated {
        /// The reason.
        message: String,
    },
    /// `FORBIDDEN`: the rules deny this write on a record the caller may see.
    Forbidden {
        /// What was denied.
        message: String,
    },
    /// `SUBSCRIPTION_LAGGING`: a subscriber fell more than its buffer behind; resubscribe with
    /// the last `lastSync` received.
    SubscriptionLagging,
    /// `LIMIT_EXCEEDED`: the request goes beyond a configured limit.
    LimitExceeded {
        /// Which limit (`subscriptionsPerConnection`, `batchSize`, ...).
        limit: String,
        /// Its value.
        max: u64,
        /// What happened and what to do.
        message: String,
    },
    /// `INTERNAL`: the store failed. The message is safe to show; details go to the log.
    Internal {
        /// A message without internals.
        message: String,
    },
}

impl DataSyncError {
    /// A `BAD_USER_INPUT` error about one input field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        DataSyncError::BadInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// An `INTERNAL` error: logs `detail` and keeps only `context` for the client.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(target: "datasync", "{context}: {detail}");
        DataSyncError::Internal {
            message: format!("{context}; the server log has details"),
        }
    }

    /// The stable `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DataSyncError::Conflict(_) => "CONFLICT",
            DataSyncError::NotFound { .. } => "NOT_FOUND",
            DataSyncError::AlreadyExists { .. } => "ALREADY_EXISTS",
            DataSyncError::BadInput { .. } => "BAD_USER_INPUT",
            DataSyncError::SyncExpired { .. } => "SYNC_EXPIRED",
            DataSyncError::Unauthenticated { .. } => "UNAUTHENTICATED",
            DataSyncError::Forbidden { .. } => "FORBIDDEN",
            DataSyncError::SubscriptionLagging => "SUBSCRIPTION_LAGGING",
            DataSyncError::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            DataSyncError::Internal { .. } => "INTERNAL",
        }
    }
}

impl std::fmt::Display for DataSyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSyncError::Conflict(info) => write!(
                f,
                "conflict: the record changed since version {} (server has version {})",
                info.client_version(),
                info.server_version()
            ),
            DataSyncError::NotFound { id } => write!(f, "no record with id {id:?}"),
            DataSyncError::AlreadyExists { id, .. } => {
                write!(f, "a record with id {id:?} already exists")
            }
            DataSyncError::BadInput { message, .. } => f.write_str(message),
            DataSyncError::SyncExpired { message } => f.write_str(message),
            DataSyncError::Unauthenticated { message } => f.write_str(message),
            DataSyncError::Forbidden { message } => f.write_str(message),
            DataSyncError::SubscriptionLagging => f.write_str(
                "this subscription fell too far behind the changes and was ended; subscribe \
                 again with the last lastSync you received",
            ),
            DataSyncError::LimitExceeded { message, .. } => f.write_str(message),
            DataSyncError::Internal { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for DataSyncError {}

/// The GraphQL form: message plus `extensions.code` and the extra fields of DESIGN §6.
///
/// Note: async-graphql converts any `Display` error with `?`, which would drop the code;
/// always convert with `.extend()`.
impl ErrorExtensions for DataSyncError {
    fn extend(&self) -> async_graphql::Error {
        let err = self;
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", err.code());
            match err {
                DataSyncError::Conflict(info) => {
                    ext.set("conflictInfo", to_gql(info.to_json()));
                }
                DataSyncError::AlreadyExists { server_state, .. } if !server_state.is_null() => {
                    ext.set("serverState", to_gql(server_state.clone()));
                }
                DataSyncError::BadInput {
                    field: Some(field), ..
                } => ext.set("field", field.as_str()),
                DataSyncError::LimitExceeded { limit, max, .. } => {
                    ext.set("limit", limit.as_str());
                    ext.set("max", *max);
                }
                _ => {}
            }
        })
    }
}

impl DataSyncError {
    /// As an error of a whole request (no position, no path), with its code.
    pub fn into_request_error(self) -> async_graphql::ServerError {
        let coded = self.extend();
        let mut error = async_graphql::ServerError::new(coded.message, None);
        error.extensions = coded.extensions;
        error
    }
}

fn to_gql(json: Json) -> async_graphql::Value {
    async_graphql::Value::from_json(json).unwrap_or(async_graphql::Value::Null)
}
