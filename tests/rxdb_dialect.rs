//! The RxDB dialect at the GraphQL level (both stores): pull with checkpoints, push rows with
//! and without an assumed master state, retries, conflicts, the strategy, limits, the stream.
//! The real RxDB client runs against it in tests/rxdb (Node).

mod common;

use common::{code, next_message, Backend, Gql};
use serde_json::{json, Value as Json};

store_tests!(
    pull_iterates_with_checkpoints,
    push_applies_rows_retries_and_conflicts,
    the_strategy_decides_before_a_conflict_is_answered,
    pushes_are_bounded,
    the_stream_first_asks_for_a_pull,
);

const FIELDS: &str = "id title description priority done tags version deleted";

async fn pull(g: &Gql, checkpoint: Json, limit: i32) -> Json {
    g.ok(
        &format!("query($c: NoteInputCheckpoint, $l: Int!) {{ pullNote(checkpoint: $c, limit: $l) {{ documents {{ {FIELDS} }} checkpoint {{ lastSync }} }} }}"),
        json!({"c": checkpoint, "l": limit}),
    )
    .await["pullNote"]
        .clone()
}

async fn push(g: &Gql, rows: Json) -> Json {
    g.run(
        &format!(
            "mutation($r: [NoteInputPushRow!]) {{ pushNote(notePushRow: $r) {{ {FIELDS} }} }}"
        ),
        json!({"r": rows}),
    )
    .await
}

fn doc(id: &str, title: &str, version: Option<i64>) -> Json {
    let mut d = json!({"id": id, "title": title, "priority": 1, "done": false, "tags": [], "deleted": false});
    if let Some(v) = version {
        d["version"] = json!(v);
    }
    d
}

async fn pull_iterates_with_checkpoints(b: Backend) {
    let g = b.gql().await;
    for i in 0..250 {
        g.note(json!({"id": format!("n{i:03}")})).await;
    }
    let (mut checkpoint, mut seen, mut pages) = (json!(null), 0, 0);
    loop {
        let bulk = pull(&g, checkpoint.clone(), 100).await;
        let n = bulk["documents"].as_array().unwrap().len();
        seen += n;
        pages += 1;
        checkpoint = bulk["checkpoint"].clone();
        if n < 100 {
            break;
        }
    }
    assert_eq!((seen, pages), (250, 3));
    assert!(checkpoint["lastSync"].as_str().unwrap().starts_with('s'));
    // A deleted note arrives as `deleted: true`, with its version.
    g.ok(
        "mutation { deleteNote(input: {id: \"n001\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let bulk = pull(&g, checkpoint, 100).await;
    assert_eq!(
        bulk["documents"],
        json!([{"id": "n001", "title": "t", "description": null, "priority": 1, "done": false, "tags": [], "version": 2, "deleted": true}])
    );
    let err = g
        .err(
            "{ pullNote(limit: 0) { checkpoint { lastSync } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

async fn push_applies_rows_retries_and_conflicts(b: Backend) {
    let g = b.gql().await;
    // A new document (no assumed state), and the same push again (a retry): no conflict.
    let create = json!([{"newDocumentState": doc("p1", "first", None)}]);
    for _ in 0..2 {
        let resp = push(&g, create.clone()).await;
        assert_eq!(resp["data"]["pushNote"], json!([]), "{resp}");
    }
    let stored = g
        .ok("{ getNote(id: \"p1\") { title _version } }", json!({}))
        .await;
    assert_eq!(stored["getNote"], json!({"title": "first", "_version": 1}));

    // A change based on version 1; retried after a lost answer: applied once.
    let change = json!([{"assumedMasterState": doc("p1", "first", Some(1)), "newDocumentState": doc("p1", "second", Some(1))}]);
    for _ in 0..2 {
        let resp = push(&g, change.clone()).await;
        assert_eq!(resp["data"]["pushNote"], json!([]), "{resp}");
    }
    let stored = g
        .ok("{ getNote(id: \"p1\") { title _version } }", json!({}))
        .await;
    assert_eq!(stored["getNote"], json!({"title": "second", "_version": 2}));

    // A stale change (based on version 1 again, different content): the master is answered.
    let stale = json!([{"assumedMasterState": doc("p1", "first", Some(1)), "newDocumentState": doc("p1", "third", Some(1))}]);
    let resp = push(&g, stale).await;
    assert_eq!(resp["data"]["pushNote"][0]["title"], "second");
    assert_eq!(resp["data"]["pushNote"][0]["version"], 2);
    // A client that pushed a document and changed it again before pulling it back has no
    // version: its assumed state is the stored one, so the change applies.
    let unversioned = json!([{"assumedMasterState": doc("p1", "second", None), "newDocumentState": doc("p1", "fourth", None)}]);
    let resp = push(&g, unversioned).await;
    assert_eq!(resp["data"]["pushNote"], json!([]), "{resp}");
    // A new document whose id exists: a conflict.
    let resp = push(&g, json!([{"newDocumentState": doc("p1", "clash", None)}])).await;
    assert_eq!(resp["data"]["pushNote"][0]["title"], "fourth");
    // A delete.
    let mut gone = doc("p1", "fourth", Some(3));
    gone["deleted"] = json!(true);
    let resp = push(
        &g,
        json!([{"assumedMasterState": doc("p1", "fourth", Some(3)), "newDocumentState": gone}]),
    )
    .await;
    assert_eq!(resp["data"]["pushNote"], json!([]), "{resp}");
    let got = g.ok("{ getNote(id: \"p1\") { id } }", json!({})).await;
    assert_eq!(got["getNote"], json!(null));
}

async fn the_strategy_decides_before_a_conflict_is_answered(b: Backend) {
    let store = b.store().await;
    let mut g = Gql::new(store.clone());
    g.schema = common::app::schema_with(
        store,
        datasync::ConflictOverrides::new().set::<common::app::Note>(datasync::conflict::Merge),
    );
    push(&g, json!([{"newDocumentState": doc("m", "title", None)}])).await;
    g.ok(
        "mutation { updateNote(input: {id: \"m\", _version: 1, priority: 5}) { id } }",
        json!({}),
    )
    .await;
    // Based on version 1, changing only the title: merged with the server's priority.
    let mut new = doc("m", "new title", Some(1));
    new["priority"] = json!(1);
    let resp = push(
        &g,
        json!([{"assumedMasterState": doc("m", "title", Some(1)), "newDocumentState": new}]),
    )
    .await;
    assert_eq!(resp["data"]["pushNote"], json!([]), "{resp}");
    let stored = g
        .ok(
            "{ getNote(id: \"m\") { title priority _version } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stored["getNote"],
        json!({"title": "new title", "priority": 5, "_version": 3})
    );
}

async fn pushes_are_bounded(b: Backend) {
    let g = b.gql().await;
    let rows: Vec<Json> = (0..101)
        .map(|i| json!({"newDocumentState": doc(&format!("b{i}"), "t", None)}))
        .collect();
    let resp = push(&g, json!(rows)).await;
    assert_eq!(code(&resp["errors"][0]), "BAD_USER_INPUT", "{resp}");
    let count = g.ok("{ findNotes { count } }", json!({})).await;
    assert_eq!(count["findNotes"]["count"], 0, "nothing was written");
    let resp = push(&g, json!(rows[..100])).await;
    assert_eq!(resp["data"]["pushNote"], json!([]));
}

async fn the_stream_first_asks_for_a_pull(b: Backend) {
    let g = b.gql().await;
    let mut stream = g.subscribe(
        &format!("subscription {{ streamNote(headers: {{Authorization: \"x\"}}) {{ documents {{ {FIELDS} }} checkpoint {{ lastSync }} }} }}"),
        json!({}),
    );
    let first = next_message(&mut stream).await.unwrap();
    assert_eq!(
        first["data"]["streamNote"]["documents"],
        json!([]),
        "pull now"
    );
    g.note(json!({"id": "s1", "title": "live"})).await;
    let next = next_message(&mut stream).await.unwrap();
    assert_eq!(next["data"]["streamNote"]["documents"][0]["title"], "live");
    // Its checkpoint continues a pull.
    let checkpoint = next["data"]["streamNote"]["checkpoint"].clone();
    assert_eq!(pull(&g, checkpoint, 10).await["documents"], json!([]));
}
