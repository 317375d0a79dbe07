//! Conflict strategies: every built-in strategy against the same scenarios, on every store,
//! checking both the answer and what is stored afterwards.

mod common;

use std::sync::Arc;

use common::app::{Mutation, Note, Query, Subscription};
use common::{code, Backend, Gql};
use datasync::conflict::{by_name, Conflict, ConflictStrategy, Resolution};
use datasync::prelude::*;
use datasync::{ConflictOverrides, Store};
use serde_json::{json, Value as Json};

store_tests!(
    throw,
    client_wins,
    server_wins,
    merge,
    merge_under_contention,
    deep_equality,
    custom_strategy
);

/// The example schema with Note's conflict strategy replaced by `name`.
fn schema_with(store: Arc<dyn Store>, name: &str) -> Gql {
    let mut g = Gql::new(store.clone());
    g.schema = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .datasync_with(
        store,
        ConflictOverrides::new().set_shared::<Note>(by_name(name).unwrap()),
    )
    .finish();
    g
}

/// What a scenario must end in.
enum Expect {
    /// The client's write succeeds; the stored note then has these fields.
    Stored(Json),
    /// The client gets this code; the stored note keeps these fields.
    Rejected(&'static str, Json, Json),
}

const FIELDS: &str = "title priority tags done _version _deleted";

async fn stored(g: &Gql, id: &str) -> Json {
    let page = g.sync("0", Some(1000), json!({"id": {"eq": id}})).await;
    let mut item = page["items"][0].clone();
    let keep: Vec<&str> = FIELDS.split(' ').collect();
    item.as_object_mut()
        .unwrap()
        .retain(|k, _| keep.contains(&k.as_str()));
    item
}

fn subset(actual: &Json, expected: &Json) -> bool {
    expected
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| &actual[k] == v)
}

/// Creates note `id` (title "base", priority 1, tags ["a"]), lets the server change it with
/// `server` (a mutation at version 1), then sends the client's `client` mutation based on
/// version 1, and checks `expect`.
async fn scenario(g: &Gql, id: &str, server: &str, client: &str, expect: Expect) {
    g.note(json!({"id": id, "title": "base", "priority": 1, "tags": ["a"]}))
        .await;
    g.ok(&server.replace("$ID", id), json!({})).await;
    let resp = g.run(&client.replace("$ID", id), json!({})).await;
    let now = stored(g, id).await;
    match expect {
        Expect::Stored(fields) => {
            assert!(resp.get("errors").is_none(), "{id}: {resp}");
            assert!(
                subset(&now, &fields),
                "{id}: stored {now}, expected {fields}"
            );
        }
        Expect::Rejected(want, conflicting, fields) => {
            let err = &resp["errors"][0];
            assert_eq!(code(err), want, "{id}: {resp}");
            if want == "CONFLICT" {
                let info = &err["extensions"]["conflictInfo"];
                assert_eq!(info["conflictingFields"], conflicting, "{id}");
                assert!(
                    subset(&info["serverState"], &fields),
                    "{id}: serverState {}",
                    info["serverState"]
                );
                assert_eq!(info["clientState"]["_version"], 1);
            }
            assert!(
                subset(&now, &fields),
                "{id}: stored {now}, expected {fields}"
            );
        }
    }
}

const SET_TITLE_SERVER: &str =
    "mutation { updateNote(input: {id: \"$ID\", _version: 1, title: \"server\"}) { id } }";
const SET_TITLE_CLIENT: &str =
    "mutation { updateNote(input: {id: \"$ID\", _version: 1, title: \"client\"}) { id } }";
const SET_TITLE_SAME: &str =
    "mutation { updateNote(input: {id: \"$ID\", _version: 1, title: \"same\"}) { id } }";
const SET_PRIORITY_CLIENT: &str =
    "mutation { updateNote(input: {id: \"$ID\", _version: 1, priority: 9}) { id } }";
const DELETE: &str = "mutation { deleteNote(input: {id: \"$ID\", _version: 1}) { id } }";

/// Two writers based on version 1 at once: one sets the title, one the priority.
async fn double_stale(g: &Gql, id: &str) -> (Vec<Json>, Json) {
    g.note(json!({"id": id, "title": "base", "priority": 1, "tags": ["a"]}))
        .await;
    let a = format!(
        "mutation {{ updateNote(input: {{id: \"{id}\", _version: 1, title: \"A\"}}) {{ id }} }}"
    );
    let b = format!(
        "mutation {{ updateNote(input: {{id: \"{id}\", _version: 1, priority: 7}}) {{ id }} }}"
    );
    let (ra, rb) = tokio::join!(g.run(&a, json!({})), g.run(&b, json!({})));
    (vec![ra, rb], stored(g, id).await)
}

async fn throw(b: Backend) {
    let g = schema_with(b.store().await, "throw");
    scenario(
        &g,
        "same",
        SET_TITLE_SERVER,
        SET_TITLE_CLIENT,
        Expect::Rejected(
            "CONFLICT",
            json!(["title"]),
            json!({"title": "server", "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "equal",
        SET_TITLE_SAME,
        SET_TITLE_SAME,
        Expect::Rejected(
            "CONFLICT",
            json!([]),
            json!({"title": "same", "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "different",
        SET_TITLE_SERVER,
        SET_PRIORITY_CLIENT,
        Expect::Rejected(
            "CONFLICT",
            json!(["priority"]),
            json!({"title": "server", "priority": 1, "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "after-delete",
        DELETE,
        SET_TITLE_CLIENT,
        Expect::Rejected(
            "NOT_FOUND",
            json!(null),
            json!({"_deleted": true, "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "stale-delete",
        SET_TITLE_SERVER,
        DELETE,
        Expect::Rejected(
            "CONFLICT",
            json!(["title"]),
            json!({"_deleted": false, "_version": 2}),
        ),
    )
    .await;
    let (answers, now) = double_stale(&g, "double").await;
    let ok = answers.iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(answers
        .iter()
        .any(|r| r.get("errors").is_some_and(|e| code(&e[0]) == "CONFLICT")));
    assert_eq!(now["_version"], 2);
}

async fn client_wins(b: Backend) {
    let g = schema_with(b.store().await, "client_wins");
    scenario(
        &g,
        "same",
        SET_TITLE_SERVER,
        SET_TITLE_CLIENT,
        Expect::Stored(json!({"title": "client", "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "equal",
        SET_TITLE_SAME,
        SET_TITLE_SAME,
        Expect::Stored(json!({"title": "same", "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "different",
        SET_TITLE_SERVER,
        SET_PRIORITY_CLIENT,
        Expect::Stored(json!({"title": "server", "priority": 9, "_version": 3})),
    )
    .await;
    // An update of a deleted record restores it.
    scenario(
        &g,
        "after-delete",
        DELETE,
        SET_TITLE_CLIENT,
        Expect::Stored(json!({"title": "client", "_deleted": false, "_version": 3})),
    )
    .await;
    let got = g
        .ok("{ getNote(id: \"after-delete\") { title } }", json!({}))
        .await;
    assert_eq!(
        got["getNote"]["title"], "client",
        "restored records are live again"
    );
    // A stale delete still deletes.
    scenario(
        &g,
        "stale-delete",
        SET_TITLE_SERVER,
        DELETE,
        Expect::Stored(json!({"title": "server", "_deleted": true, "_version": 3})),
    )
    .await;
    let (answers, now) = double_stale(&g, "double").await;
    assert!(
        answers.iter().all(|r| r.get("errors").is_none()),
        "{answers:?}"
    );
    assert_eq!(
        (
            now["title"].clone(),
            now["priority"].clone(),
            now["_version"].clone()
        ),
        (json!("A"), json!(7), json!(3))
    );
}

async fn server_wins(b: Backend) {
    let g = schema_with(b.store().await, "server_wins");
    scenario(
        &g,
        "same",
        SET_TITLE_SERVER,
        SET_TITLE_CLIENT,
        Expect::Stored(json!({"title": "server", "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "equal",
        SET_TITLE_SAME,
        SET_TITLE_SAME,
        Expect::Stored(json!({"title": "same", "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "different",
        SET_TITLE_SERVER,
        SET_PRIORITY_CLIENT,
        Expect::Stored(json!({"title": "server", "priority": 9, "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "after-delete",
        DELETE,
        SET_TITLE_CLIENT,
        Expect::Rejected(
            "NOT_FOUND",
            json!(null),
            json!({"_deleted": true, "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "stale-delete",
        SET_TITLE_SERVER,
        DELETE,
        Expect::Rejected(
            "CONFLICT",
            json!(["title"]),
            json!({"title": "server", "_deleted": false, "_version": 2}),
        ),
    )
    .await;
    let (answers, now) = double_stale(&g, "double").await;
    assert!(
        answers.iter().all(|r| r.get("errors").is_none()),
        "{answers:?}"
    );
    assert_eq!(
        (
            now["title"].clone(),
            now["priority"].clone(),
            now["_version"].clone()
        ),
        (json!("A"), json!(7), json!(3))
    );
}

async fn merge(b: Backend) {
    let g = schema_with(b.store().await, "merge");
    scenario(
        &g,
        "same",
        SET_TITLE_SERVER,
        SET_TITLE_CLIENT,
        Expect::Rejected(
            "CONFLICT",
            json!(["title"]),
            json!({"title": "server", "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "equal",
        SET_TITLE_SAME,
        SET_TITLE_SAME,
        Expect::Stored(json!({"title": "same", "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "different",
        SET_TITLE_SERVER,
        SET_PRIORITY_CLIENT,
        Expect::Stored(json!({"title": "server", "priority": 9, "_version": 3})),
    )
    .await;
    scenario(
        &g,
        "after-delete",
        DELETE,
        SET_TITLE_CLIENT,
        Expect::Rejected(
            "NOT_FOUND",
            json!(null),
            json!({"_deleted": true, "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "stale-delete",
        SET_TITLE_SERVER,
        DELETE,
        Expect::Rejected(
            "CONFLICT",
            json!(["title"]),
            json!({"title": "server", "_deleted": false, "_version": 2}),
        ),
    )
    .await;
    let (answers, now) = double_stale(&g, "double").await;
    assert!(
        answers.iter().all(|r| r.get("errors").is_none()),
        "{answers:?}"
    );
    assert_eq!(
        (
            now["title"].clone(),
            now["priority"].clone(),
            now["_version"].clone()
        ),
        (json!("A"), json!(7), json!(3))
    );
    // Lists are single values: two different edits conflict, the same edit does not.
    let tags = |t: &str| {
        format!(
            "mutation {{ updateNote(input: {{id: \"$ID\", _version: 1, tags: [{t}]}}) {{ id }} }}"
        )
    };
    scenario(
        &g,
        "lists",
        &tags("\"a\", \"s\""),
        &tags("\"a\", \"c\""),
        Expect::Rejected(
            "CONFLICT",
            json!(["tags"]),
            json!({"tags": ["a", "s"], "_version": 2}),
        ),
    )
    .await;
    scenario(
        &g,
        "lists-equal",
        &tags("\"b\""),
        &tags("\"b\""),
        Expect::Stored(json!({"tags": ["b"], "_version": 3})),
    )
    .await;
    // A base version the server never had proves nothing: it cannot merge over changes.
    g.note(json!({"id": "future", "title": "base"})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"future\", _version: 1, title: \"server\"}) { id } }",
        json!({}),
    )
    .await;
    let err = g
        .err(
            "mutation { updateNote(input: {id: \"future\", _version: 99, title: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
    assert_eq!(
        err["extensions"]["conflictInfo"]["conflictingFields"],
        json!(["title"])
    );
    // A change older than the client's base is not a conflict.
    g.note(json!({"id": "old", "title": "base"})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"old\", _version: 1, title: \"v2\"}) { id } }",
        json!({}),
    )
    .await;
    g.ok(
        "mutation { updateNote(input: {id: \"old\", _version: 2, priority: 5}) { id } }",
        json!({}),
    )
    .await;
    let resp = g.run("mutation { updateNote(input: {id: \"old\", _version: 2, title: \"mine\"}) { title priority _version } }", json!({})).await;
    assert_eq!(
        resp["data"]["updateNote"],
        json!({"title": "mine", "priority": 5, "_version": 4}),
        "{resp}"
    );
}

/// Five writers based on the same version change five different fields at once: under
/// `merge` every one succeeds (losers of a compare-and-set read again and merge again) and
/// nothing is lost.
async fn merge_under_contention(b: Backend) {
    let g = Arc::new(schema_with(b.store().await, "merge"));
    g.note(json!({"id": "hot", "title": "base", "priority": 1, "tags": []}))
        .await;
    let patches = [
        "title: \"T\"",
        "description: \"D\"",
        "priority: 9",
        "done: true",
        "tags: [\"x\"]",
    ];
    let tasks: Vec<_> = patches
        .iter()
        .map(|patch| {
            let (g, q) = (Arc::clone(&g), format!("mutation {{ updateNote(input: {{id: \"hot\", _version: 1, {patch}}}) {{ _version }} }}"));
            tokio::spawn(async move { g.run(&q, json!({})).await })
        })
        .collect();
    for task in tasks {
        let resp = task.await.unwrap();
        assert!(resp.get("errors").is_none(), "{resp}");
    }
    let got = g
        .ok(
            "{ getNote(id: \"hot\") { title description priority done tags _version } }",
            json!({}),
        )
        .await;
    assert_eq!(
        got["getNote"],
        json!({"title": "T", "description": "D", "priority": 9, "done": true, "tags": ["x"], "_version": 6})
    );
}

/// Equal values in other forms are not conflicts: date-times in another text form, equal
/// nested objects, numbers written as floats.
async fn deep_equality(b: Backend) {
    let store = b.store().await;
    let gadgets = Schema::build(
        common::gadget::Query::default(),
        common::gadget::Mutation::default(),
        EmptySubscription,
    )
    .datasync_with(
        store,
        ConflictOverrides::new().set_shared::<common::gadget::Gadget>(by_name("merge").unwrap()),
    )
    .finish();
    let run = |q: &str| {
        let gadgets = gadgets.clone();
        let q = q.to_owned();
        async move { serde_json::to_value(gadgets.execute(q.as_str()).await).unwrap() }
    };
    let create = r#"mutation { createGadget(input: {id: "g", name: "n", active: true, count: 1, big: 2, ratio: 0.5, ratio32: 0.5,
        seenAt: "2024-01-01T00:00:00Z", labels: [], scores: [], address: {street: "s", zip: null}}) { _version } }"#;
    assert!(run(create).await.get("errors").is_none());
    let server = r#"mutation { updateGadget(input: {id: "g", _version: 1, seenAt: "2024-06-01T12:00:00Z", address: {street: "t", zip: null}, ratio: 2}) { _version } }"#;
    assert!(run(server).await.get("errors").is_none());
    // The same instant in another zone, the same address with `zip` left out, 2 as 2.0: all
    // equal to the server's values, so only `name` is new and the merge succeeds.
    let client = r#"mutation { updateGadget(input: {id: "g", _version: 1, seenAt: "2024-06-01T14:00:00+02:00", address: {street: "t"}, ratio: 2.0, name: "mine"}) { _version } }"#;
    let resp = run(client).await;
    assert_eq!(
        resp["data"]["updateGadget"],
        json!({"_version": 3}),
        "{resp}"
    );
    let stored =
        run(r#"{ getGadget(id: "g") { name seenAt address { street zip } ratio } }"#).await;
    assert_eq!(
        stored["data"]["getGadget"],
        json!({"name": "mine", "seenAt": "2024-06-01T12:00:00+00:00", "address": {"street": "t", "zip": null}, "ratio": 2.0})
    );
    // A different value of a field the server changed is still a conflict.
    let clash = r#"mutation { updateGadget(input: {id: "g", _version: 1, seenAt: "2024-06-02T00:00:00Z"}) { _version } }"#;
    let resp = run(clash).await;
    assert_eq!(
        resp["errors"][0]["extensions"]["conflictInfo"]["conflictingFields"],
        json!(["seenAt"]),
        "{resp}"
    );
}

/// A strategy of the application's own, registered on the schema and on a repository.
struct HigherPriorityWins;

impl ConflictStrategy for HigherPriorityWins {
    fn name(&self) -> &'static str {
        "higher_priority_wins"
    }
    fn resolve(&self, c: &Conflict<'_>) -> Resolution {
        let mine = c
            .patch
            .get("priority")
            .and_then(Json::as_i64)
            .unwrap_or(i64::MIN);
        let theirs = c
            .server
            .data
            .get("priority")
            .and_then(Json::as_i64)
            .unwrap_or(i64::MIN);
        if mine > theirs {
            Resolution::Apply(c.client_over_server())
        } else if mine == theirs {
            Resolution::KeepServer
        } else {
            Resolution::Reject {
                conflicting_fields: vec!["priority".into()],
            }
        }
    }
}

async fn custom_strategy(b: Backend) {
    let store = b.store().await;
    let mut g = Gql::new(store.clone());
    g.schema = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .datasync_with(
        store.clone(),
        ConflictOverrides::new().set::<Note>(HigherPriorityWins),
    )
    .finish();
    g.note(json!({"id": "c", "priority": 5})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"c\", _version: 1, title: \"server\"}) { id } }",
        json!({}),
    )
    .await;
    let low = g
        .run(
            "mutation { updateNote(input: {id: \"c\", _version: 1, priority: 1}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&low["errors"][0]), "CONFLICT");
    assert_eq!(
        low["errors"][0]["extensions"]["conflictInfo"]["conflictingFields"],
        json!(["priority"])
    );
    let same = g.ok("mutation { updateNote(input: {id: \"c\", _version: 1, priority: 5, title: \"ignored\"}) { title _version } }", json!({})).await;
    assert_eq!(
        same["updateNote"],
        json!({"title": "server", "_version": 2}),
        "keep-server writes nothing"
    );
    let high = g.ok("mutation { updateNote(input: {id: \"c\", _version: 1, priority: 9}) { title priority _version } }", json!({})).await;
    assert_eq!(
        high["updateNote"],
        json!({"title": "server", "priority": 9, "_version": 3})
    );

    // The same strategy on a repository, without GraphQL.
    let repo = Note::repository(&store).with_strategy(Arc::new(HigherPriorityWins));
    let input = common::app::MutateNoteInput {
        id: "c".into(),
        _version: 1,
        priority: MaybeUndefined::Value(20),
        ..Default::default()
    };
    assert_eq!(repo.update(input).await.unwrap().meta.version, 4);
}

#[tokio::test]
async fn the_attribute_chooses_the_strategy() {
    use common::gadget::{CreateMemoInput, Memo, MutateMemoInput};
    let store = Backend::Sqlite.store().await;
    let memos = Memo::repository(&store);
    memos
        .create(CreateMemoInput {
            id: Some("m".into()),
            text: "a".into(),
        })
        .await
        .unwrap();
    let patch = |v: i64, t: &str| MutateMemoInput {
        id: "m".into(),
        _version: v,
        text: MaybeUndefined::Value(t.into()),
    };
    memos.update(patch(1, "b")).await.unwrap();
    let stale = memos.update(patch(1, "c")).await.unwrap();
    assert_eq!(
        (stale.data.text.as_str(), stale.meta.version),
        ("c", 3),
        "client_wins applied a stale update"
    );
}
