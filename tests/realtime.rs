//! Realtime subscriptions: what each one delivers (both stores, in process), the WebSocket
//! transport over a real socket (both subprotocols), limits and clean-up, and delivery across
//! server processes sharing one database.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::ws::{Event, Protocol, WsClient};
use common::{code, ids, next_message, Backend, Gql};
use datasync::http::{Authentication, HttpConfig};
use datasync::{Principal, Store, StoreOptions};
use futures_util::stream::BoxStream;
use serde_json::{json, Value as Json};

store_tests!(
    changes_follow_every_write,
    filtered_changes_send_removals,
    event_subscriptions,
    resume_after_a_disconnect_misses_nothing,
    bad_arguments_fail_only_that_subscription,
    a_lagging_subscriber_is_ended,
    websocket_both_protocols,
    websocket_limits_and_clean_up,
);

const CHANGES: &str = "subscription($s: String, $f: NoteFilter) { noteChanges(lastSync: $s, filter: $f) { lastSync hasMore items { id title done _version _deleted } } }";

/// Reads messages until `done` holds for the items received so far (by id, newest version).
async fn until(
    sub: &mut BoxStream<'static, Json>,
    mut done: impl FnMut(&BTreeMap<String, Json>) -> bool,
) -> (BTreeMap<String, Json>, String) {
    let mut seen = BTreeMap::new();
    loop {
        let message = next_message(sub).await.expect("the subscription is open");
        assert!(message.get("errors").is_none(), "{message}");
        let list = &message["data"]["noteChanges"];
        for item in list["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap().to_owned();
            let newer = seen
                .get(&id)
                .is_none_or(|old: &Json| old["_version"].as_i64() <= item["_version"].as_i64());
            if newer {
                seen.insert(id, item.clone());
            }
        }
        if done(&seen) {
            return (seen, list["lastSync"].as_str().unwrap().to_owned());
        }
    }
}

async fn changes_follow_every_write(b: Backend) {
    let g = b.gql().await;
    let mut sub = g.subscribe(CHANGES, json!({}));
    let first = next_message(&mut sub).await.unwrap();
    let first = &first["data"]["noteChanges"];
    assert_eq!(first["items"], json!([]), "without lastSync: from now on");
    assert!(first["lastSync"].as_str().unwrap().starts_with('s'));

    g.note(json!({"id": "a", "title": "one"})).await;
    let (seen, _) = until(&mut sub, |s| s.contains_key("a")).await;
    assert_eq!(seen["a"]["_version"], 1);
    g.ok(
        "mutation { updateNote(input: {id: \"a\", _version: 1, title: \"two\"}) { id } }",
        json!({}),
    )
    .await;
    let (seen, _) = until(&mut sub, |s| s.get("a").is_some_and(|a| a["_version"] == 2)).await;
    assert_eq!(seen["a"]["title"], "two");
    g.ok(
        "mutation { deleteNote(input: {id: \"a\", _version: 2}) { id } }",
        json!({}),
    )
    .await;
    let (seen, _) = until(&mut sub, |s| s.get("a").is_some_and(|a| a["_version"] == 3)).await;
    assert_eq!(seen["a"]["_deleted"], true, "tombstones are delivered");
}

async fn filtered_changes_send_removals(b: Backend) {
    let g = b.gql().await;
    let mut sub = g.subscribe(CHANGES, json!({"f": {"done": {"eq": false}}}));
    next_message(&mut sub).await.unwrap();
    g.note(json!({"id": "a", "done": false})).await;
    let (seen, _) = until(&mut sub, |s| s.contains_key("a")).await;
    assert_eq!(seen["a"]["_deleted"], false);
    // It leaves the filter: for this subscriber it is gone.
    g.ok(
        "mutation { updateNote(input: {id: \"a\", _version: 1, done: true}) { id } }",
        json!({}),
    )
    .await;
    let (seen, _) = until(&mut sub, |s| s.get("a").is_some_and(|a| a["_version"] == 2)).await;
    assert_eq!(
        seen["a"]["_deleted"], true,
        "a record that left the filter is a removal"
    );
    assert_eq!(seen["a"]["done"], true);
}

/// Polls `sub` until the store's hub counts `subscribers` (an event subscription sends
/// nothing until an event, and an in-process stream only starts when polled).
async fn started(g: &Gql, sub: &mut BoxStream<'static, Json>, subscribers: usize) {
    let hub = g.store.hub().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.stats().subscribers < subscribers {
        assert!(Instant::now() < deadline, "the subscription did not start");
        let polled = tokio::time::timeout(
            Duration::from_millis(20),
            futures_util::StreamExt::next(sub),
        )
        .await;
        assert!(polled.is_err(), "no event yet: {polled:?}");
    }
}

async fn event_subscriptions(b: Backend) {
    let g = b.gql().await;
    let mut created = g.subscribe(
        "subscription { newNote(filter: {priority: {ge: 5}}) { id priority _version } }",
        json!({}),
    );
    started(&g, &mut created, 1).await;
    let mut updated = g.subscribe(
        "subscription { updatedNote { id title _version } }",
        json!({}),
    );
    started(&g, &mut updated, 2).await;
    let mut deleted = g.subscribe(
        "subscription { deletedNote { id _version _deleted } }",
        json!({}),
    );
    started(&g, &mut deleted, 3).await;
    g.note(json!({"id": "low", "priority": 1})).await;
    g.note(json!({"id": "high", "priority": 9})).await;
    let message = next_message(&mut created).await.unwrap();
    assert_eq!(
        message["data"]["newNote"],
        json!({"id": "high", "priority": 9, "_version": 1}),
        "only creates matching the filter"
    );
    g.ok(
        "mutation { updateNote(input: {id: \"low\", _version: 1, title: \"x\"}) { id } }",
        json!({}),
    )
    .await;
    let message = next_message(&mut updated).await.unwrap();
    assert_eq!(
        message["data"]["updatedNote"],
        json!({"id": "low", "title": "x", "_version": 2})
    );
    g.ok(
        "mutation { deleteNote(input: {id: \"high\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let message = next_message(&mut deleted).await.unwrap();
    assert_eq!(
        message["data"]["deletedNote"],
        json!({"id": "high", "_version": 2, "_deleted": true})
    );
}

async fn resume_after_a_disconnect_misses_nothing(b: Backend) {
    let g = b.gql().await;
    for i in 0..150 {
        g.note(json!({"id": format!("n{i:03}")})).await;
    }
    // From "0": the existing records in pages (hasMore until caught up), then live.
    let mut sub = g.subscribe(CHANGES, json!({"s": "0"}));
    let page = next_message(&mut sub).await.unwrap();
    assert_eq!(
        page["data"]["noteChanges"]["items"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(page["data"]["noteChanges"]["hasMore"], true);
    let (rest, last) = until(&mut sub, |s| s.len() == 50).await;
    assert_eq!(rest.keys().next().map(String::as_str), Some("n100"));
    drop(sub);

    // While disconnected: changes.
    g.note(json!({"id": "new"})).await;
    g.ok(
        "mutation { deleteNote(input: {id: \"n007\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    g.ok(
        "mutation { updateNote(input: {id: \"n008\", _version: 1, title: \"t2\"}) { id } }",
        json!({}),
    )
    .await;
    let mut sub = g.subscribe(CHANGES, json!({"s": last}));
    let (seen, _) = until(&mut sub, |s| s.len() >= 3).await;
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["n007", "n008", "new"]
    );
    assert_eq!(seen["n007"]["_deleted"], true);
    assert_eq!(seen["n008"]["title"], "t2");
    // ... and on live.
    g.note(json!({"id": "later"})).await;
    until(&mut sub, |s| s.contains_key("later")).await;
}

async fn bad_arguments_fail_only_that_subscription(b: Backend) {
    let g = b.gql().await;
    for (vars, want) in [
        (json!({"s": "garbage"}), "BAD_USER_INPUT"),
        (json!({"s": "s5-0123456789abcdef01234567"}), "SYNC_EXPIRED"),
        (
            json!({"f": {"title": {"contains": "x".repeat(2000)}}}),
            "BAD_USER_INPUT",
        ),
    ] {
        let mut sub = g.subscribe(CHANGES, vars);
        let message = next_message(&mut sub).await.unwrap();
        assert_eq!(code(&message["errors"][0]), want, "{message}");
        assert!(
            next_message(&mut sub).await.is_none(),
            "the subscription ended"
        );
    }
    let mut sub = g.subscribe(CHANGES, json!({}));
    next_message(&mut sub).await.unwrap();
    g.note(json!({"id": "a"})).await;
    until(&mut sub, |s| s.contains_key("a")).await;
}

async fn a_lagging_subscriber_is_ended(b: Backend) {
    let g = Gql::new(
        b.store_with(StoreOptions::default().subscription_buffer(2))
            .await,
    );
    let mut sub = g.subscribe(CHANGES, json!({}));
    next_message(&mut sub).await.unwrap();
    // Many separate batches while the subscriber reads nothing.
    for i in 0..30 {
        g.note(json!({"id": format!("n{i}")})).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut ended = None;
    while let Some(message) = next_message(&mut sub).await {
        if let Some(errors) = message.get("errors") {
            ended = Some(errors[0].clone());
        }
    }
    let error = ended.expect("the subscriber was ended");
    assert_eq!(code(&error), "SUBSCRIPTION_LAGGING");
    assert!(error["message"].as_str().unwrap().contains("lastSync"));
}

/// Serves the example router over `g`'s store on a free port.
async fn serve(g: &Gql, config: HttpConfig) -> SocketAddr {
    let router = datasync::http::router_with(
        common::app::schema_with(g.store.clone(), datasync::Config::default()),
        config.authentication(Authentication::As(Principal::new("tester"))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        datasync::axum::serve(listener, router).await.unwrap();
    });
    addr
}

async fn websocket_both_protocols(b: Backend) {
    let g = b.gql().await;
    let addr = serve(&g, HttpConfig::default()).await;
    for (i, protocol) in [Protocol::TransportWs, Protocol::Legacy]
        .into_iter()
        .enumerate()
    {
        let mut ws = WsClient::connect(addr, protocol).await;
        ws.subscribe("c", CHANGES, json!({})).await;
        let (id, first) = ws.next().await;
        assert_eq!(id, "c");
        assert_eq!(first["data"]["noteChanges"]["items"], json!([]));
        let note = format!("ws{i}");
        g.note(json!({"id": note})).await;
        let (_, message) = ws.next().await;
        assert_eq!(
            ids(&message["data"]["noteChanges"]["items"]),
            [note.as_str()]
        );
        // Queries work over the socket too.
        ws.subscribe("q", "{ findNotes { count } }", json!({}))
            .await;
        let (id, answer) = ws.next().await;
        assert_eq!(
            (id.as_str(), &answer["data"]["findNotes"]["count"]),
            ("q", &json!(i + 1))
        );
        assert_eq!(ws.event().await, Event::Complete("q".into()));
        ws.stop("c").await;
        assert_eq!(ws.event().await, Event::Complete("c".into()));
        ws.close().await;
    }
}

async fn websocket_limits_and_clean_up(b: Backend) {
    let g = b.gql().await;
    let hub = g.store.hub().unwrap();
    let addr = serve(&g, HttpConfig::default().subscriptions_per_connection(2)).await;
    let mut ws = WsClient::connect(addr, Protocol::TransportWs).await;
    ws.subscribe("a", CHANGES, json!({})).await;
    ws.next().await;
    ws.subscribe("b", "subscription { newNote { id } }", json!({}))
        .await;
    // (newNote sends nothing until a create.)
    ws.subscribe("c", CHANGES, json!({})).await;
    let (id, refused) = ws.next().await;
    assert_eq!(id, "c");
    assert_eq!(code(&refused["errors"][0]), "LIMIT_EXCEEDED");
    assert_eq!(refused["errors"][0]["extensions"]["max"], 2);
    assert_eq!(ws.event().await, Event::Complete("c".into()));
    // A bad subscription fails alone (it frees its place) ...
    ws.stop("b").await;
    assert_eq!(ws.event().await, Event::Complete("b".into()));
    ws.subscribe("d", CHANGES, json!({"s": "garbage"})).await;
    let (id, failed) = ws.next().await;
    assert_eq!(
        (id.as_str(), code(&failed["errors"][0])),
        ("d", "BAD_USER_INPUT")
    );
    assert_eq!(ws.event().await, Event::Complete("d".into()));
    // ... and the good one goes on.
    g.note(json!({"id": "x"})).await;
    let (id, message) = ws.next().await;
    assert_eq!(
        (id.as_str(), ids(&message["data"]["noteChanges"]["items"])),
        ("a", vec!["x".to_owned()])
    );
    let stats = hub.stats();
    assert_eq!((stats.readers, stats.subscribers), (1, 1), "{stats:?}");

    // Closing the socket ends its subscriptions, and the reader with its buffer.
    ws.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = hub.stats();
        if stats.readers == 0 && stats.subscribers == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after close: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The notes example as a second server process on the same database.
struct OtherProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl OtherProcess {
    fn start(env: &[(&str, &str)]) -> OtherProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Examples are built with the tests: target/<profile>/examples/notes.
        let exe = std::env::current_exe().unwrap();
        let binary = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/notes");
        assert!(
            binary.exists(),
            "{} (built by cargo test)",
            binary.display()
        );
        let child = std::process::Command::new(binary)
            .env_remove("MONGODB_URI")
            .envs(env.iter().copied())
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "the example did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        OtherProcess { child, addr }
    }

    async fn post(&self, query: &str) -> Json {
        reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A write through one process reaches subscribers of the other, both ways.
async fn across_processes(g: Gql, other: OtherProcess) {
    // A subscriber here; the write goes through the other process.
    let mut sub = g.subscribe(CHANGES, json!({}));
    next_message(&mut sub).await.unwrap();
    let created = other
        .post("mutation { createNote(input: {id: \"from-b\", title: \"t\", priority: 1, done: false, tags: []}) { id } }")
        .await;
    assert!(created.get("errors").is_none(), "{created}");
    let (seen, _) = until(&mut sub, |s| s.contains_key("from-b")).await;
    assert_eq!(seen["from-b"]["_version"], 1);

    // A subscriber on the other process (over its WebSocket); the write goes through here.
    let mut ws = WsClient::connect(other.addr, Protocol::TransportWs).await;
    ws.subscribe("s", CHANGES, json!({})).await;
    // The first message says the subscription runs (its feed has a position).
    let (_, first) = ws.next().await;
    assert_eq!(first["data"]["noteChanges"]["items"], json!([]));
    g.note(json!({"id": "from-a"})).await;
    let (_, message) = ws.next().await;
    assert_eq!(ids(&message["data"]["noteChanges"]["items"]), ["from-a"]);
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.db");
    let store = datasync::SqliteStore::open(&file).await.unwrap();
    // The example runs in development mode: everyone is user "dev".
    let g = Gql::new(std::sync::Arc::new(store)).acting_as(Some(Principal::new("dev")));
    g.note(json!({"id": "first"})).await;
    let other = OtherProcess::start(&[("NOTES_DB", file.to_str().unwrap())]);
    across_processes(g, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_across_processes() {
    let db = common::fresh_database();
    let store = datasync::MongoStore::connect(&common::mongodb_uri(), &db)
        .await
        .unwrap();
    let g = Gql::new(std::sync::Arc::new(store)).acting_as(Some(Principal::new("dev")));
    g.note(json!({"id": "first"})).await;
    let uri = common::mongodb_uri();
    let other = OtherProcess::start(&[("MONGODB_URI", uri.as_str()), ("MONGODB_DB", db.as_str())]);
    across_processes(g, other).await;
}
