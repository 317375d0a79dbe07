//! Authorization: owners, attribute rules, a custom read scope that changes with the data,
//! tokens, and request limits. Alice never sees or changes Bob's records, and "not yours"
//! answers exactly like "does not exist".

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::blog;
use common::ws::{Protocol, WsClient};
use common::{code, ids, next_message, Backend, Gql};
use datasync::async_graphql::{Request, Variables};
use datasync::http::HttpConfig;
use datasync::{Principal, Store};
use serde_json::{json, Value as Json};

store_tests!(
    alice_never_sees_or_changes_bobs_records,
    owners_come_from_the_principal_and_admins_see_all,
    anonymous_callers_must_sign_in,
    attribute_rules,
    a_record_leaving_the_read_scope_arrives_as_a_redacted_removal,
);

fn user(name: &str) -> Option<Principal> {
    Some(Principal::new(name))
}

/// The error of a response with one, with the record id masked so that answers about
/// different ids compare equal.
fn masked(resp: &Json, id: &str) -> Json {
    let mut error = resp["errors"][0].clone();
    let message = error["message"].as_str().unwrap().replace(id, "<id>");
    error["message"] = json!(message);
    error.as_object_mut().unwrap().remove("locations");
    error
}

async fn alice_never_sees_or_changes_bobs_records(b: Backend) {
    let g = b.gql().await;
    let alice = g.acting_as(user("alice"));
    let bob = g.acting_as(user("bob"));
    alice.note(json!({"id": "a1", "title": "alice's"})).await;
    bob.note(json!({"id": "b1", "title": "bob's"})).await;
    let start = alice.sync("0", None, json!(null)).await;
    assert_eq!(ids(&start["items"]), ["a1"], "sync from 0");
    let token = start["lastSync"].as_str().unwrap().to_owned();
    let mut changes = alice.subscribe(
        "subscription { noteChanges { lastSync items { id } } }",
        json!({}),
    );
    next_message(&mut changes).await.unwrap();

    // Reads: Bob's record and a missing one look the same.
    for id in ["b1", "nope"] {
        let got = alice
            .ok(
                "query($id: ID!) { getNote(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(got["getNote"], json!(null), "{id}");
    }
    let found = alice
        .ok(
            "{ findNotes(filter: {title: {endsWith: \"'s\"}}) { count items { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        found["findNotes"],
        json!({"count": 1, "items": [{"id": "a1"}]})
    );
    let count = alice.ok("{ findNotes { count } }", json!({})).await;
    assert_eq!(count["findNotes"]["count"], 1);

    // Writes: Bob's record and a missing one answer alike, and nothing changes.
    for (op, input) in [
        ("updateNote", json!({"_version": 1, "title": "mine now"})),
        ("deleteNote", json!({"_version": 1})),
    ] {
        let query = format!("mutation($i: MutateNoteInput!) {{ {op}(input: $i) {{ id }} }}");
        let mut answers = Vec::new();
        for id in ["b1", "nope"] {
            let mut input = input.clone();
            input["id"] = json!(id);
            let resp = alice.run(&query, json!({"i": input})).await;
            answers.push(masked(&resp, id));
        }
        assert_eq!(code(&answers[0]), "NOT_FOUND");
        assert_eq!(answers[0], answers[1], "{op}: not yours = does not exist");
    }
    let untouched = bob
        .ok("{ getNote(id: \"b1\") { title _version } }", json!({}))
        .await;
    assert_eq!(
        untouched["getNote"],
        json!({"title": "bob's", "_version": 1})
    );

    // A create with Bob's id is refused without showing Bob's record.
    let resp = alice
        .run(
            "mutation { createNote(input: {id: \"b1\", title: \"x\", priority: 1, done: false, tags: []}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&resp["errors"][0]), "ALREADY_EXISTS");
    assert!(
        resp["errors"][0]["extensions"].get("serverState").is_none(),
        "{resp}"
    );

    // Bob's changes never reach Alice: not in her sync, not in her subscriptions.
    bob.ok(
        "mutation { updateNote(input: {id: \"b1\", _version: 1, title: \"changed\"}) { id } }",
        json!({}),
    )
    .await;
    bob.note(json!({"id": "b2"})).await;
    alice.note(json!({"id": "a2"})).await;
    let page = alice.sync(&token, None, json!(null)).await;
    assert_eq!(ids(&page["items"]), ["a2"]);
    let message = next_message(&mut changes).await.unwrap();
    assert_eq!(
        ids(&message["data"]["noteChanges"]["items"]),
        ["a2"],
        "Bob's changes came first but were not sent"
    );
}

async fn owners_come_from_the_principal_and_admins_see_all(b: Backend) {
    let g = b.gql().await;
    let alice = g.acting_as(user("alice"));
    let created = alice
        .ok(
            "mutation { createNote(input: {id: \"a1\", title: \"t\", priority: 1, done: false, tags: []}) { owner } }",
            json!({}),
        )
        .await;
    assert_eq!(created["createNote"]["owner"], "alice");
    // No input type has the owner: setting it is a validation error.
    for query in [
        "mutation { createNote(input: {owner: \"bob\", title: \"t\", priority: 1, done: false, tags: []}) { id } }",
        "mutation { updateNote(input: {id: \"a1\", _version: 1, owner: \"bob\"}) { id } }",
    ] {
        let err = alice.err(query, json!({})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
    }
    g.acting_as(user("bob")).note(json!({"id": "b1"})).await;
    // An admin sees and changes everything; the owner stays.
    let admin = g.acting_as(Some(Principal::new("root").with_groups(["admin"])));
    let all = admin.ok("{ findNotes { count } }", json!({})).await;
    assert_eq!(all["findNotes"]["count"], 2);
    let changed = admin
        .ok(
            "mutation { updateNote(input: {id: \"b1\", _version: 1, title: \"by admin\"}) { owner title } }",
            json!({}),
        )
        .await;
    assert_eq!(
        changed["updateNote"],
        json!({"owner": "bob", "title": "by admin"})
    );
    let page = admin.sync("0", None, json!(null)).await;
    assert_eq!(ids(&page["items"]), ["a1", "b1"]);
}

async fn anonymous_callers_must_sign_in(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "n1"})).await;
    let anonymous = g.acting_as(None);
    for query in [
        "{ getNote(id: \"n1\") { id } }",
        "{ findNotes { count } }",
        "{ syncNotes(lastSync: \"0\") { lastSync } }",
        "mutation { createNote(input: {title: \"t\", priority: 1, done: false, tags: []}) { id } }",
        "mutation { updateNote(input: {id: \"n1\", _version: 1, title: \"x\"}) { id } }",
        "mutation { deleteNote(input: {id: \"n1\", _version: 1}) { id } }",
    ] {
        let err = anonymous.err(query, json!({})).await;
        assert_eq!(code(&err), "UNAUTHENTICATED", "{query}: {err}");
    }
    let mut sub = anonymous.subscribe("subscription { noteChanges { lastSync } }", json!({}));
    let message = next_message(&mut sub).await.unwrap();
    assert_eq!(code(&message["errors"][0]), "UNAUTHENTICATED");
    let unchanged = g
        .ok("{ getNote(id: \"n1\") { _version } }", json!({}))
        .await;
    assert_eq!(unchanged["getNote"]["_version"], 1);
}

/// Runs `query` on the blog schema as `principal`.
async fn blog(schema: &blog::BlogSchema, principal: Option<Principal>, query: &str) -> Json {
    let mut request = Request::new(query).variables(Variables::from_json(json!({})));
    if let Some(p) = principal {
        request = request.data(p);
    }
    serde_json::to_value(schema.execute(request).await).unwrap()
}

async fn attribute_rules(b: Backend) {
    let schema = blog::schema(b.store().await);
    let editor = Some(Principal::new("ed").with_groups(["editors"]));
    let create = "mutation { createArticle(input: {id: \"a\", title: \"news\"}) { id } }";
    // write = "group:editors"
    let resp = blog(&schema, user("reader"), create).await;
    assert_eq!(code(&resp["errors"][0]), "FORBIDDEN");
    let resp = blog(&schema, None, create).await;
    assert_eq!(code(&resp["errors"][0]), "UNAUTHENTICATED");
    let resp = blog(&schema, editor.clone(), create).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    // read = "public": anyone, signed in or not.
    let resp = blog(&schema, None, "{ findArticles { count } }").await;
    assert_eq!(resp["data"]["findArticles"]["count"], 1);
    // read = "private", write = "nobody"
    let resp = blog(&schema, None, "{ findNotices { count } }").await;
    assert_eq!(code(&resp["errors"][0]), "UNAUTHENTICATED");
    let resp = blog(&schema, user("reader"), "{ findNotices { count } }").await;
    assert_eq!(resp["data"]["findNotices"]["count"], 0);
    let notice = "mutation { createNotice(input: {text: \"hi\"}) { id } }";
    let resp = blog(&schema, editor, notice).await;
    assert_eq!(code(&resp["errors"][0]), "FORBIDDEN");
    let admin = Some(Principal::new("root").with_groups(["admin"]));
    let resp = blog(&schema, admin, notice).await;
    assert!(resp.get("errors").is_none(), "{resp}");
}

async fn a_record_leaving_the_read_scope_arrives_as_a_redacted_removal(b: Backend) {
    let schema = blog::schema(b.store().await);
    let sync = |token: &str| {
        format!("{{ syncPosts(lastSync: \"{token}\") {{ lastSync items {{ id author title published _deleted }} }} }}")
    };
    let resp = blog(
        &schema,
        user("bob"),
        "mutation { createPost(input: {id: \"p\", title: \"secret plans\", published: true}) { id } }",
    )
    .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    let first = blog(&schema, user("alice"), &sync("0")).await;
    let page = &first["data"]["syncPosts"];
    assert_eq!(
        page["items"][0]["title"], "secret plans",
        "published: Alice reads it"
    );
    let token = page["lastSync"].as_str().unwrap().to_owned();
    let mut changes = {
        let request = Request::new(
            "subscription($s: String) { postChanges(lastSync: $s) { items { id title _deleted } } }",
        )
        .variables(Variables::from_json(json!({"s": token})))
        .data(Principal::new("alice"));
        use futures_util::StreamExt;
        schema
            .execute_stream(request)
            .map(|r| serde_json::to_value(r).unwrap())
            .boxed()
    };
    next_message(&mut changes).await.unwrap();

    // Bob takes it back and changes the title: Alice may no longer see it.
    let resp = blog(
        &schema,
        user("bob"),
        "mutation { updatePost(input: {id: \"p\", _version: 1, published: false, title: \"new secret\"}) { id } }",
    )
    .await;
    assert!(resp.get("errors").is_none(), "{resp}");
    let next = blog(&schema, user("alice"), &sync(&token)).await;
    let removal = &next["data"]["syncPosts"]["items"][0];
    assert_eq!(removal["id"], "p");
    assert_eq!(
        removal["_deleted"], true,
        "it left Alice's scope: a removal"
    );
    assert_eq!(
        removal["title"], "",
        "the removal carries no data: {removal}"
    );
    assert_eq!(removal["author"], "");
    let message = next_message(&mut changes).await.unwrap();
    assert_eq!(
        message["data"]["postChanges"]["items"],
        json!([{"id": "p", "title": "", "_deleted": true}])
    );
    let got = blog(&schema, user("alice"), "{ getPost(id: \"p\") { id } }").await;
    assert_eq!(got["data"]["getPost"], json!(null));
    // Bob still has it all.
    let mine = blog(&schema, user("bob"), "{ getPost(id: \"p\") { title } }").await;
    assert_eq!(mine["data"]["getPost"]["title"], "new secret");
}

// ---- HTTP: tokens and limits --------------------------------------------------------------

const SECRET: &[u8] = b"test secret";

fn token(claims: Json, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

/// The example's service with tokens required.
async fn serve(store: std::sync::Arc<dyn Store>) -> SocketAddr {
    let schema = common::app::schema_with(store, datasync::Config::default());
    let router = datasync::http::router_with(
        schema,
        HttpConfig::default().authentication(datasync::auth::Jwt::hs256(SECRET)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { datasync::axum::serve(listener, router).await.unwrap() });
    addr
}

async fn post(addr: SocketAddr, auth: Option<&str>, body: Json) -> (u16, Json) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&body);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_anything_runs() {
    let store = Backend::Sqlite.store().await;
    let addr = serve(store.clone()).await;
    let create = json!({"query": "mutation { createNote(input: {title: \"t\", priority: 1, done: false, tags: []}) { owner } }"});
    let good = token(json!({"sub": "alice", "exp": in_an_hour()}), SECRET);
    let (status, body) = post(addr, Some(&format!("Bearer {good}")), create.clone()).await;
    assert_eq!(
        (status, &body["data"]["createNote"]["owner"]),
        (200, &json!("alice"))
    );

    let expired = token(json!({"sub": "alice", "exp": 1_000_000_000}), SECRET);
    let forged = token(
        json!({"sub": "alice", "exp": in_an_hour()}),
        b"another secret",
    );
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(
            json!({"sub": "alice", "exp": in_an_hour()})
                .to_string()
                .as_bytes()
        )
    );
    let cases = [
        (None, "sign in"),
        (Some("Basic YWxpY2U6c2VjcmV0".to_owned()), "Bearer"),
        (Some("Bearer not.a.token".to_owned()), "malformed"),
        (Some(format!("Bearer {forged}")), "signature"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {unsigned}")), ""),
    ];
    for (auth, reason) in cases {
        let (status, body) = post(addr, auth.as_deref(), create.clone()).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(code(&body["errors"][0]), "UNAUTHENTICATED", "{auth:?}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{auth:?}: {message}");
    }
    // Nothing was written by the refused requests.
    let (_, body) = post(
        addr,
        Some(&format!("Bearer {good}")),
        json!({"query": "{ findNotes { count } }"}),
    )
    .await;
    assert_eq!(body["data"]["findNotes"]["count"], 1);

    // WebSocket: the token in connection_init (as browsers send it) names the caller; a bad
    // one ends the connection.
    let mut ws = WsClient::connect_with(
        addr,
        Protocol::TransportWs,
        json!({"Authorization": format!("Bearer {good}")}),
    )
    .await;
    ws.subscribe("q", "{ findNotes { items { owner } } }", json!({}))
        .await;
    let (_, answer) = ws.next().await;
    assert_eq!(
        answer["data"]["findNotes"]["items"],
        json!([{"owner": "alice"}])
    );
    ws.close().await;
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        try_connect(
            addr,
            json!({"headers": {"Authorization": format!("Bearer {forged}")}}),
        ),
    )
    .await
    .unwrap();
    assert!(!refused, "a forged token is not acknowledged");
}

/// Whether a WebSocket with this `connection_init` payload gets its ack.
async fn try_connect(addr: SocketAddr, payload: Json) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::Text(
            json!({"type": "connection_init", "payload": payload})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            if text.contains("connection_ack") {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_requests_are_refused_and_others_go_on() {
    let store = Backend::Sqlite.store().await;
    let g = Gql::new(store.clone());
    for i in 0..300 {
        g.note(json!({"id": format!("n{i:03}"), "description": "x".repeat(100)}))
            .await;
    }
    let addr = serve(store).await;
    let auth = format!(
        "Bearer {}",
        token(json!({"sub": "tester", "exp": in_an_hour()}), SECRET)
    );
    let aliases: String = (0..2000)
        .map(|i| format!("a{i}: findNotes {{ items {{ id title description }} }} "))
        .collect();
    let deep = format!(
        "{{ __type(name: \"Note\") {{ {}name{} }} }}",
        "ofType { ".repeat(50),
        " }".repeat(50)
    );
    let batch: Vec<Json> = (0..1000)
        .map(|_| json!({"query": "{ findNotes { count } }"}))
        .collect();
    let costly = [
        (json!({"query": format!("{{ {aliases} }}")}), "rootFields"),
        (
            json!({"query": format!("{{ {} }}", (0..5).map(|i| format!("p{i}: findNotes(page: {{limit: 1000}}) {{ items {{ id title description tags }} }} ")).collect::<String>())}),
            "complexity",
        ),
        (json!({"query": deep}), "recursiveDepth"),
        (json!(batch), "batchSize"),
    ];
    // A normal client keeps being served meanwhile.
    let normal = tokio::spawn({
        let auth = auth.clone();
        async move {
            for _ in 0..20 {
                let (status, body) = post(
                    addr,
                    Some(&auth),
                    json!({"query": "{ findNotes(page: {limit: 5}) { count items { id } } }"}),
                )
                .await;
                assert_eq!(status, 200);
                assert_eq!(body["data"]["findNotes"]["count"], 300, "{body}");
            }
        }
    });
    for (body, limit) in costly {
        let (_, answer) = post(addr, Some(&auth), body).await;
        let error = &answer["errors"][0];
        assert_eq!(code(error), "LIMIT_EXCEEDED", "{limit}: {answer}");
        assert_eq!(error["extensions"]["limit"], limit, "{answer}");
        assert!(
            answer.get("data").is_none_or(|d| d.is_null()),
            "nothing ran: {answer}"
        );
    }
    normal.await.unwrap();
}
