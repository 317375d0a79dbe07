//! The notes server: two synced models merged with a query of our own, served over HTTP.
//! `main.rs` runs it; the HTTP tests build the same router.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use datasync::async_graphql::{BatchRequest, Context};
use datasync::prelude::*;
use datasync::ConflictOverrides;
use futures_util::StreamExt;

/// A note on someone's list.
#[derive(DataSync, Clone, Debug)]
pub struct Note {
    pub id: String,
    /// Short title shown in lists.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Higher is more urgent.
    pub priority: i32,
    pub done: bool,
    pub tags: Vec<String>,
}

/// A comment on a note.
#[derive(DataSync, Clone, Debug)]
pub struct Comment {
    pub id: String,
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

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema over `store`, with conflict strategies chosen at start-up.
pub fn schema_with(store: impl Store, overrides: ConflictOverrides) -> AppSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .datasync_with(store, overrides)
        .finish()
}

/// `GET /`: GraphiQL; `POST /graphql`: GraphQL over HTTP (JSON, single or batched).
pub fn router(schema: AppSchema) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", any(graphql))
        .fallback(|| async {
            gql_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such route; GraphQL is served at POST /graphql",
            )
        })
        .with_state(schema)
}

/// Largest request body accepted.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Oversized bodies are read (and dropped) up to this size, so that the client, still
/// sending, receives the error response instead of a reset connection.
const MAX_DRAIN: usize = 32 * 1024 * 1024;

async fn graphql(State(schema): State<AppSchema>, method: Method, body: Body) -> Response {
    if method != Method::POST {
        return gql_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "send GraphQL requests with POST",
        );
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return gql_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("the body is not a GraphQL request: {e}"),
            )
        }
    };
    let response = schema.execute_batch(request).await;
    let body = serde_json::to_vec(&response).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn read_body(body: Body) -> Result<Vec<u8>, Response> {
    let mut stream = body.into_data_stream();
    let (mut kept, mut total) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            gql_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("cannot read the request body: {e}"),
            )
        })?;
        total += chunk.len();
        if total <= MAX_BODY {
            kept.extend_from_slice(&chunk);
        } else if total > MAX_DRAIN {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(gql_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_USER_INPUT",
            &format!("the request body is larger than {MAX_BODY} bytes"),
        ));
    }
    Ok(kept)
}

/// An HTTP error that still carries a GraphQL error body.
fn gql_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL)
}

const GRAPHIQL: &str = r#"<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>datasync notes</title>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body style="margin:0">
  <div id="graphiql" style="height:100vh"></div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultQuery: '{ findNotes { count items { id title _version } } }' }));
  </script>
</body>
</html>"#;
