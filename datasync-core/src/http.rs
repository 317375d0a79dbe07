//! The HTTP and WebSocket service (cargo feature `axum`): one call turns a schema into an
//! axum [`Router`].
//!
//! - `POST /graphql`: GraphQL over HTTP, a single request or a batch (a JSON array), with a
//!   body limit; oversized bodies are read and dropped up to a larger limit, so that a client
//!   still sending gets the error response instead of a reset connection.
//! - `GET /graphql` with a WebSocket upgrade: subscriptions (and queries and mutations) over
//!   async-graphql's implementation of both protocols, `graphql-transport-ws` (the
//!   `graphql-ws` npm client) and the legacy `graphql-ws` (subscriptions-transport-ws, Apollo),
//!   with a limit on concurrent operations per connection. Closing the socket drops every
//!   operation of the connection.
//! - `GET /`: GraphiQL, with subscriptions over the same path.
//!
//! Every failure, at the HTTP level too, is a GraphQL error body with `extensions.code`.
//!
//! **Who is calling** ([`Authentication`]): the service puts a [`Principal`] into each
//! request's context data (and each WebSocket connection's), where the generated resolvers
//! find it. With JSON Web Tokens it comes from `Authorization: Bearer <token>`, on a WebSocket
//! from the `connection_init` payload (`{"Authorization": "Bearer <token>"}`, also inside
//! `headers`, as browser clients cannot set handshake headers) or the handshake header. A
//! missing (where required), malformed, wrongly signed or expired token is refused with
//! `UNAUTHENTICATED` and the reason, before anything runs.

use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_graphql::http::{
    GraphiQLSource, WebSocket as GqlWebSocket, WebSocketProtocols, WsMessage,
};
use async_graphql::{
    BatchRequest, BatchResponse, Data, Executor, ObjectType, Request, Response, Schema,
    SubscriptionType,
};
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response as HttpResponse};
use axum::routing::{any, get};
use axum::Router;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use futures_util::SinkExt;

use crate::auth::Principal;
use crate::error::DataSyncError;

/// How the service learns who is calling.
#[derive(Debug, Clone, Default)]
pub enum Authentication {
    /// Nobody signs in: requests are anonymous (models with rules answer `UNAUTHENTICATED`).
    #[default]
    Anonymous,
    /// Nobody signs in, and every request acts as this principal: single-user development.
    As(Principal),
    /// Bearer JSON Web Tokens (cargo feature `jwt`).
    #[cfg(feature = "jwt")]
    Jwt(Box<crate::auth::Jwt>),
}

#[cfg(feature = "jwt")]
impl From<crate::auth::Jwt> for Authentication {
    fn from(jwt: crate::auth::Jwt) -> Self {
        Authentication::Jwt(Box::new(jwt))
    }
}

impl Authentication {
    /// The principal a request with these headers acts for.
    #[cfg_attr(not(feature = "jwt"), allow(unused_variables))]
    fn principal_of_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Principal>, DataSyncError> {
        match self {
            Authentication::Anonymous => Ok(None),
            Authentication::As(principal) => Ok(Some(principal.clone())),
            #[cfg(feature = "jwt")]
            Authentication::Jwt(jwt) => {
                match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
                    Some(Ok(value)) => jwt.verify_header(value).map(Some),
                    Some(Err(_)) => Err(DataSyncError::Unauthenticated {
                        message: "the Authorization header is not text".to_owned(),
                    }),
                    None if jwt.is_required() => Err(missing_token()),
                    None => Ok(None),
                }
            }
        }
    }

    /// The principal a WebSocket's `connection_init` payload names, if it names one.
    fn principal_of_payload(
        &self,
        payload: &serde_json::Value,
    ) -> Result<Option<Principal>, DataSyncError> {
        let value = ["Authorization", "authorization"]
            .iter()
            .find_map(|k| payload.get(*k).or_else(|| payload.get("headers")?.get(*k)))
            .and_then(|v| v.as_str());
        match (self, value) {
            #[cfg(feature = "jwt")]
            (Authentication::Jwt(jwt), Some(value)) => jwt.verify_header(value).map(Some),
            _ => Ok(None),
        }
    }

    fn required(&self) -> bool {
        match self {
            #[cfg(feature = "jwt")]
            Authentication::Jwt(jwt) => jwt.is_required(),
            _ => false,
        }
    }
}

#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
fn missing_token() -> DataSyncError {
    DataSyncError::Unauthenticated {
        message: "sign in first: send `Authorization: Bearer <token>`".to_owned(),
    }
}

/// Settings of the HTTP service.
///
/// ```
/// use std::time::Duration;
/// let config = datasync_core::http::HttpConfig::default()
///     .max_body(4 * 1024 * 1024)
///     .subscriptions_per_connection(20)
///     .connection_init_timeout(Duration::from_secs(5));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    max_body: usize,
    max_drain: usize,
    max_batch: usize,
    per_connection: usize,
    init_timeout: Duration,
    title: String,
    authentication: Authentication,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body: 2 * 1024 * 1024,
            max_drain: 32 * 1024 * 1024,
            max_batch: 50,
            per_connection: 100,
            init_timeout: Duration::from_secs(10),
            title: "datasync".to_owned(),
            authentication: Authentication::Anonymous,
        }
    }
}

impl HttpConfig {
    /// Largest request body (and WebSocket message) accepted, in bytes (default 2 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Most operations in one batched POST (default 50); a larger batch is refused whole
    /// with `LIMIT_EXCEEDED` before any of it runs.
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.max_batch = operations;
        self
    }

    /// Most operations (subscriptions) running at once on one WebSocket connection (default
    /// 100); the next one is answered with `LIMIT_EXCEEDED`.
    pub fn subscriptions_per_connection(mut self, operations: usize) -> Self {
        self.per_connection = operations;
        self
    }

    /// How long a new WebSocket may take to send `connection_init` (default 10 s); then it is
    /// closed with code 4408.
    pub fn connection_init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// How callers are identified (default: anonymous). A [`Jwt`](crate::auth::Jwt)
    /// converts into [`Authentication::Jwt`].
    pub fn authentication(mut self, authentication: impl Into<Authentication>) -> Self {
        self.authentication = authentication.into();
        self
    }

    /// The GraphiQL page title (default "datasync").
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }
}

/// The service for `schema` with default settings: `POST /graphql`, WebSocket subscriptions
/// on `GET /graphql`, GraphiQL at `/`.
///
/// ```no_run
/// # async fn demo(schema: async_graphql::Schema<async_graphql::EmptyMutation, async_graphql::EmptyMutation, async_graphql::EmptySubscription>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
/// axum::serve(listener, datasync_core::http::router(schema)).await
/// # }
/// ```
pub fn router<Q, M, S>(schema: Schema<Q, M, S>) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    router_with(schema, HttpConfig::default())
}

/// [`router`] with settings.
pub fn router_with<Q, M, S>(schema: Schema<Q, M, S>, config: HttpConfig) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let page = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql")
        .title(&config.title)
        .finish();
    let state = Service {
        executor: schema,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(move || std::future::ready(Html(page.clone()))))
        .route("/graphql", any(graphql::<Schema<Q, M, S>>))
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                DataSyncError::NotFound {
                    id: "route".to_owned(),
                },
                "no such route: GraphQL is served at /graphql, GraphiQL at /",
            )
        })
        .with_state(state)
}

struct Service<E> {
    executor: E,
    config: Arc<HttpConfig>,
}

impl<E: Clone> Clone for Service<E> {
    fn clone(&self) -> Self {
        Service {
            executor: self.executor.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

async fn graphql<E: Executor>(
    State(service): State<Service<E>>,
    method: Method,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: Body,
) -> HttpResponse {
    let principal = match service.config.authentication.principal_of_headers(&headers) {
        Ok(principal) => principal,
        // A WebSocket may still sign in with its connection_init payload.
        Err(_) if upgrade.is_ok() && headers.get(header::AUTHORIZATION).is_none() => None,
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e, ""),
    };
    if let Ok(upgrade) = upgrade {
        return websocket(service, &headers, upgrade, principal);
    }
    if method != Method::POST {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            bad_input("send GraphQL requests with POST, subscriptions over a WebSocket"),
            "",
        );
    }
    let body = match read_body(body, &service.config).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                bad_input(&format!("the body is not a GraphQL request: {e}")),
                "",
            )
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        let max = service.config.max_batch;
        if requests.len() > max {
            return error_response(
                StatusCode::BAD_REQUEST,
                DataSyncError::LimitExceeded {
                    limit: "batchSize".to_owned(),
                    max: max as u64,
                    message: format!(
                        "a batch holds at most {max} operations, this one {}; nothing was run",
                        requests.len()
                    ),
                },
                "",
            );
        }
    }
    let batch = match principal {
        Some(principal) => batch.data(principal),
        None => batch,
    };
    let response: BatchResponse = service.executor.execute_batch(batch).await;
    let body = serde_json::to_vec(&response).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Reads at most `max_body` bytes; a larger body is drained (up to `max_drain`) and refused.
async fn read_body(body: Body, config: &HttpConfig) -> Result<Vec<u8>, HttpResponse> {
    let mut stream = body.into_data_stream();
    let (mut kept, mut total) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error_response(
                StatusCode::BAD_REQUEST,
                bad_input(&format!("cannot read the request body: {e}")),
                "",
            )
        })?;
        total += chunk.len();
        if total <= config.max_body {
            kept.extend_from_slice(&chunk);
        } else if total > config.max_drain {
            break;
        }
    }
    if total > config.max_body {
        return Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            bad_input(&format!(
                "the request body is larger than {} bytes",
                config.max_body
            )),
            "",
        ));
    }
    Ok(kept)
}

fn bad_input(message: &str) -> DataSyncError {
    DataSyncError::BadInput {
        field: None,
        message: message.to_owned(),
    }
}

/// An HTTP error that still carries a GraphQL error body (`message` replaces the error's own
/// when given).
fn error_response(status: StatusCode, error: DataSyncError, message: &str) -> HttpResponse {
    let mut error = error.into_request_error();
    if !message.is_empty() {
        error.message = message.to_owned();
    }
    let body = serde_json::json!({ "errors": [error] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn websocket<E: Executor>(
    service: Service<E>,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
    principal: Option<Principal>,
) -> HttpResponse {
    // The first subprotocol the client offers that async-graphql speaks; the handshake
    // names exactly that one.
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok());
    let Some(protocol) = protocol else {
        return error_response(
            StatusCode::BAD_REQUEST,
            bad_input("offer the WebSocket subprotocol graphql-transport-ws or graphql-ws"),
            "",
        );
    };
    let config = Arc::clone(&service.config);
    let executor = PerConnection {
        inner: service.executor,
        running: Arc::new(AtomicUsize::new(0)),
        max: config.per_connection,
    };
    upgrade
        .protocols([protocol.sec_websocket_protocol()])
        .max_message_size(config.max_body)
        .on_upgrade(move |socket| serve_socket(socket, executor, protocol, config, principal))
}

/// Runs async-graphql's protocol over one socket until either side closes it; then every
/// operation of the connection is dropped with it.
async fn serve_socket<E: Executor>(
    socket: WebSocket,
    executor: E,
    protocol: WebSocketProtocols,
    config: Arc<HttpConfig>,
    principal: Option<Principal>,
) {
    let (mut sink, source) = socket.split();
    let input = source
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(|message| {
            std::future::ready(match message {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            })
        });
    let mut data = Data::default();
    if let Some(principal) = &principal {
        data.insert(principal.clone());
    }
    let authentication = config.authentication.clone();
    let signed_in = principal.is_some();
    let mut output = GqlWebSocket::new(executor, input, protocol)
        .connection_data(data)
        .on_connection_init(move |payload| async move {
            // A token in the payload wins over the handshake's header.
            let mut data = Data::default();
            match authentication.principal_of_payload(&payload) {
                Ok(Some(principal)) => data.insert(principal),
                Ok(None) if authentication.required() && !signed_in => {
                    return Err(async_graphql::Error::new(missing_token().to_string()));
                }
                Ok(None) => {}
                Err(e) => return Err(async_graphql::Error::new(e.to_string())),
            }
            Ok(data)
        });
    let deadline = tokio::time::sleep(config.init_timeout);
    tokio::pin!(deadline);
    let mut acknowledged = false;
    loop {
        let message = tokio::select! {
            message = output.next() => message,
            _ = &mut deadline, if !acknowledged => {
                let close = CloseFrame { code: 4408, reason: "Connection initialisation timeout".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                break;
            }
        };
        let Some(message) = message else { break };
        let message = match message {
            WsMessage::Text(text) => {
                acknowledged |= text.contains("\"connection_ack\"");
                Message::Text(text.into())
            }
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        };
        if sink.send(message).await.is_err() {
            break;
        }
    }
}

/// The executor of one WebSocket connection: caps the operations running at once, and makes
/// each operation's stream let the others go after every item it yields (async-graphql polls
/// a connection's streams in a fixed order, so a busy one could starve the rest).
#[derive(Clone)]
struct PerConnection<E> {
    inner: E,
    running: Arc<AtomicUsize>,
    max: usize,
}

impl<E: Executor> Executor for PerConnection<E> {
    async fn execute(&self, request: Request) -> Response {
        self.inner.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if self.running.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.running.fetch_sub(1, Ordering::SeqCst);
            let error = DataSyncError::LimitExceeded {
                limit: "subscriptionsPerConnection".to_owned(),
                max: self.max as u64,
                message: format!(
                    "at most {} operations may run at once on one connection; complete one first",
                    self.max
                ),
            };
            let response = Response::from_errors(vec![error.into_request_error()]);
            return stream::once(std::future::ready(response)).boxed();
        }
        Counted {
            inner: self.inner.execute_stream(request, session_data),
            running: Arc::clone(&self.running),
            yielded: false,
        }
        .boxed()
    }
}

/// An operation's stream, counted while it lives.
struct Counted {
    inner: BoxStream<'static, Response>,
    running: Arc<AtomicUsize>,
    yielded: bool,
}

impl Stream for Counted {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Response>> {
        if self.yielded {
            // Give the connection's other streams a turn.
            self.yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = self.inner.as_mut().poll_next(cx);
        self.yielded = matches!(polled, Poll::Ready(Some(_)));
        polled
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}
