//! The notes example's router over real HTTP, on a SQLite file.

mod common;

use std::net::SocketAddr;

use common::app;
use datasync::SqliteStore;
use reqwest::StatusCode;
use serde_json::{json, Value as Json};

/// Serves the example router on a free loopback port until the returned handle is aborted.
async fn serve(db: &std::path::Path) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let store = SqliteStore::open(db).await.unwrap();
    let router = app::router(
        app::schema_with(store, datasync::Config::default()),
        datasync::http::Authentication::As(datasync::Principal::new("tester")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        datasync::axum::serve(listener, router).await.unwrap();
    });
    (addr, handle)
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Json) {
    let resp = client
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let json = resp
        .json::<Json>()
        .await
        .expect("every response has a JSON body");
    (status, json)
}

fn gql(query: &str, variables: Json) -> String {
    json!({"query": query, "variables": variables}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_over_http_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let (addr, server) = serve(&db).await;
    let client = reqwest::Client::new();

    let (status, body) = post(
        &client,
        addr,
        gql(
            "mutation($i: CreateNoteInput!) { createNote(input: $i) { id title _version } }",
            json!({"i": {"id": "h1", "title": "over HTTP", "priority": 2, "done": false, "tags": ["net"]}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": {"createNote": {"id": "h1", "title": "over HTTP", "_version": 1}}})
    );

    // A batch of two writers based on the same version (async-graphql runs a batch
    // concurrently): one wins, the other gets CONFLICT with the winner's state.
    let batch = json!([
        {"query": "mutation { updateNote(input: {id: \"h1\", _version: 1, done: true}) { _version done } }"},
        {"query": "mutation { updateNote(input: {id: \"h1\", _version: 1, done: true}) { _version done } }"},
    ]);
    let (status, body) = post(&client, addr, batch.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let (won, lost) = if body[0].get("errors").is_none() {
        (&body[0], &body[1])
    } else {
        (&body[1], &body[0])
    };
    assert_eq!(
        won["data"]["updateNote"],
        json!({"_version": 2, "done": true}),
        "{body}"
    );
    assert_eq!(
        lost["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    assert_eq!(
        lost["errors"][0]["extensions"]["conflictInfo"]["serverState"]["_version"],
        2
    );

    let (_, body) = post(&client, addr, gql("{ syncNotes(lastSync: \"0\") { items { id done _version _deleted } hasMore } serverInfo }", json!({}))).await;
    assert_eq!(
        body["data"]["syncNotes"]["items"],
        json!([{"id": "h1", "done": true, "_version": 2, "_deleted": false}])
    );
    assert!(body["data"]["serverInfo"]
        .as_str()
        .unwrap()
        .starts_with("datasync notes example"));

    // GraphiQL is served at /.
    let page = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("GraphiQL"));

    // The data survives a restart of the server on the same file.
    server.abort();
    let _ = server.await;
    let (addr, server) = serve(&db).await;
    let (_, body) = post(
        &client,
        addr,
        gql("{ getNote(id: \"h1\") { title done _version } }", json!({})),
    )
    .await;
    assert_eq!(
        body,
        json!({"data": {"getNote": {"title": "over HTTP", "done": true, "_version": 2}}})
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_requests_get_graphql_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, server) = serve(&dir.path().join("notes.db")).await;
    let client = reqwest::Client::new();
    let code = |body: &Json| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    };

    for (body, want) in [
        ("not json".to_string(), StatusCode::BAD_REQUEST),
        ("{\"variables\": {}}".to_string(), StatusCode::OK),
        ("[1, 2]".to_string(), StatusCode::BAD_REQUEST),
        ("".to_string(), StatusCode::BAD_REQUEST),
        ("x".repeat(3 * 1024 * 1024), StatusCode::PAYLOAD_TOO_LARGE),
        (
            format!(
                "{{\"query\": \"query($f: NoteFilter) {{ findNotes(filter: $f) {{ count }} }}\", \"variables\": {{\"f\": {}{}}}}}",
                "{\"not\": ".repeat(5000),
                "}".repeat(5000)
            ),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, body) = post(&client, addr, body).await;
        assert_eq!(status, want);
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }
    // GraphQL-level problems are 200 with errors.
    for (query, want) in [
        (
            "{ syncNotes(lastSync: \"yesterday\") { lastSync } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ syncNotes(lastSync: \"0\", limit: 100000) { lastSync } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ findNotes(filter: {priority: {between: [1]}}) { count } }",
            "BAD_USER_INPUT",
        ),
        (
            "mutation { deleteNote(input: {id: \"nobody\", _version: 1}) { id } }",
            "NOT_FOUND",
        ),
        ("{ nonsense }", "BAD_USER_INPUT"),
    ] {
        let (status, body) = post(&client, addr, gql(query, json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(code(&body).as_deref(), Some(want), "{query}: {body}");
    }

    let resp = client
        .get(format!("http://{addr}/graphql"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        code(&resp.json::<Json>().await.unwrap()).as_deref(),
        Some("BAD_USER_INPUT")
    );
    let resp = client
        .get(format!("http://{addr}/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        code(&resp.json::<Json>().await.unwrap()).as_deref(),
        Some("NOT_FOUND")
    );
    server.abort();
}
