//! The notes server: two synced models merged with a query of our own, served over HTTP and
//! WebSocket by datasync's service. `main.rs` runs it; the HTTP tests build the same router.

use datasync::async_graphql::Context;
use datasync::http::{Authentication, HttpConfig};
use datasync::prelude::*;
use datasync::Config;

/// A note on someone's list. Each note belongs to the user who created it: only they see and
/// change it (and members of the admin group).
#[derive(DataSync, Clone, Debug)]
#[datasync(rxdb)]
pub struct Note {
    pub id: String,
    /// Who created it (set by the server from the caller).
    #[datasync(owner)]
    pub owner: String,
    /// Short title shown in lists.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Higher is more urgent.
    pub priority: i32,
    pub done: bool,
    pub tags: Vec<String>,
}

/// A comment on a note, owned like notes.
#[derive(DataSync, Clone, Debug)]
pub struct Comment {
    pub id: String,
    #[datasync(owner)]
    pub owner: String,
    /// The note this comment belongs to.
    pub note_id: String,
    pub text: String,
}

/// The server's own query, merged with the generated ones.
#[derive(Default)]
pub struct AppQuery;

#[Object(crate = "datasync::async_graphql")]
impl AppQuery {
    /// Server name and version.
    async fn server_info(&self, _ctx: &Context<'_>) -> String {
        format!("datasync notes example {}", env!("CARGO_PKG_VERSION"))
    }
}

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Query(AppQuery, NoteQuery, CommentQuery);

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Mutation(NoteMutation, CommentMutation);

#[derive(MergedSubscription, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Subscription(NoteSubscription, CommentSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema over `store`, configured at start-up (conflict strategies, limits).
pub fn schema_with(store: impl Store, config: impl Into<Config>) -> AppSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .datasync_with(store, config)
    .finish()
}

/// `POST /graphql` (single or batched), subscriptions over WebSocket on `GET /graphql`,
/// GraphiQL at `/`; callers identified as `authentication` says.
pub fn router(schema: AppSchema, authentication: Authentication) -> datasync::axum::Router {
    datasync::http::router_with(
        schema,
        HttpConfig::default()
            .title("datasync notes")
            .authentication(authentication),
    )
}
