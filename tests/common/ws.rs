//! A GraphQL-over-WebSocket test client speaking either subprotocol on a real socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// `graphql-transport-ws` (the graphql-ws npm client) or `graphql-ws` (legacy
/// subscriptions-transport-ws).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        }
    }
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Protocol,
}

/// A message for one operation, in a protocol-neutral form.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A result: `{data, errors}`.
    Next(String, Json),
    /// The operation ended.
    Complete(String),
}

impl WsClient {
    /// Connects to `ws://addr/graphql`, initialises (with `payload`) and waits for the ack.
    pub async fn connect(addr: std::net::SocketAddr, protocol: Protocol) -> WsClient {
        Self::connect_with(addr, protocol, json!({})).await
    }

    pub async fn connect_with(
        addr: std::net::SocketAddr,
        protocol: Protocol,
        payload: Json,
    ) -> WsClient {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(protocol.name()),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name()),
            "the server speaks the protocol it was offered"
        );
        let mut client = WsClient { socket, protocol };
        client
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        loop {
            let message = client.raw().await.expect("connection_ack");
            match message["type"].as_str() {
                Some("connection_ack") => break,
                Some("ka") => continue,
                other => panic!("expected connection_ack, got {other:?}: {message}"),
            }
        }
        client
    }

    async fn send(&mut self, message: Json) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next protocol message as JSON (`None` when the socket closed).
    pub async fn raw(&mut self) -> Option<Json> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a message within 20 s")?;
            match message.ok()? {
                Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Json) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::Legacy => "start",
        };
        self.send(
            json!({"id": id, "type": kind, "payload": {"query": query, "variables": variables}}),
        )
        .await;
    }

    /// Stops operation `id`.
    pub async fn stop(&mut self, id: &str) {
        let kind = match self.protocol {
            Protocol::TransportWs => "complete",
            Protocol::Legacy => "stop",
        };
        self.send(json!({"id": id, "type": kind})).await;
    }

    /// The next result or completion.
    pub async fn event(&mut self) -> Event {
        loop {
            let message = self.raw().await.expect("the socket is open");
            let id = message["id"].as_str().unwrap_or_default().to_owned();
            match message["type"].as_str() {
                Some("next") | Some("data") => return Event::Next(id, message["payload"].clone()),
                Some("complete") => return Event::Complete(id),
                Some("ka") | Some("ping") | Some("pong") => continue,
                other => panic!("unexpected {other:?}: {message}"),
            }
        }
    }

    /// The next result, failing on a completion.
    pub async fn next(&mut self) -> (String, Json) {
        match self.event().await {
            Event::Next(id, payload) => (id, payload),
            other => panic!("expected a result, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
