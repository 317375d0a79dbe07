//! Version conflicts with the default (reject) strategy.

mod common;

use std::sync::Arc;

use common::{code, Backend};
use serde_json::json;

store_tests!(
    stale_update_is_rejected_with_conflict_info,
    stale_delete_is_rejected,
    version_from_the_future_is_a_conflict,
    concurrent_updates_with_one_version_have_one_winner,
    concurrent_delete_and_updates_have_one_winner,
);

async fn stale_update_is_rejected_with_conflict_info(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a", "title": "base", "priority": 1}))
        .await;
    g.ok(
        "mutation { updateNote(input: {id: \"a\", _version: 1, title: \"server\"}) { id } }",
        json!({}),
    )
    .await;
    let err = g
        .err(
            "mutation($i: MutateNoteInput!) { updateNote(input: $i) { id } }",
            json!({"i": {"id": "a", "_version": 1, "title": "client", "priority": 1, "description": null}}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
    let info = &err["extensions"]["conflictInfo"];
    assert_eq!(info["operation"], "update");
    let server = &info["serverState"];
    assert_eq!(
        (
            server["id"].clone(),
            server["title"].clone(),
            server["_version"].clone(),
            server["_deleted"].clone()
        ),
        (json!("a"), json!("server"), json!(2), json!(false))
    );
    assert!(server["createdAt"].is_string() && server["updatedAt"].is_string());
    assert_eq!(
        info["clientState"],
        json!({"id": "a", "_version": 1, "title": "client", "priority": 1, "description": null})
    );
    assert_eq!(
        info["conflictingFields"],
        json!(["title"]),
        "equal values (and null vs missing) do not conflict"
    );
    let got = g
        .ok("{ getNote(id: \"a\") { title _version } }", json!({}))
        .await;
    assert_eq!(got["getNote"], json!({"title": "server", "_version": 2}));
}

async fn stale_delete_is_rejected(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a"})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"a\", _version: 1, done: true}) { id } }",
        json!({}),
    )
    .await;
    let err = g
        .err(
            "mutation { deleteNote(input: {id: \"a\", _version: 1}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
    let info = &err["extensions"]["conflictInfo"];
    assert_eq!(info["operation"], "delete");
    assert_eq!(info["serverState"]["_version"], 2);
    assert_eq!(info["serverState"]["done"], true);
    assert_eq!(info["clientState"], json!({"id": "a", "_version": 1}));
    let got = g.ok("{ getNote(id: \"a\") { _version } }", json!({})).await;
    assert_eq!(got["getNote"]["_version"], 2, "still there");
}

async fn version_from_the_future_is_a_conflict(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a"})).await;
    let err = g
        .err(
            "mutation { updateNote(input: {id: \"a\", _version: 7, title: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
}

async fn concurrent_updates_with_one_version_have_one_winner(b: Backend) {
    let g = Arc::new(b.gql().await);
    g.note(json!({"id": "hot"})).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let g = Arc::clone(&g);
            tokio::spawn(async move {
                g.run(
                    "mutation($i: MutateNoteInput!) { updateNote(input: $i) { title _version } }",
                    json!({"i": {"id": "hot", "_version": 1, "title": format!("writer {i}")}}),
                )
                .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.get("errors") {
            None => winners.push(resp["data"]["updateNote"].clone()),
            Some(errors) => assert_eq!(code(&errors[0]), "CONFLICT", "{resp}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins: {winners:?}");
    assert_eq!(winners[0]["_version"], 2);
    let got = g
        .ok("{ getNote(id: \"hot\") { title _version } }", json!({}))
        .await;
    assert_eq!(
        got["getNote"], winners[0],
        "the stored state is the winner's"
    );
}

async fn concurrent_delete_and_updates_have_one_winner(b: Backend) {
    let g = Arc::new(b.gql().await);
    g.note(json!({"id": "hot"})).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let g = Arc::clone(&g);
            let op = if i % 2 == 0 { "deleteNote" } else { "updateNote" };
            tokio::spawn(async move {
                let resp = g
                    .run(&format!("mutation {{ {op}(input: {{id: \"hot\", _version: 1, priority: {i}}}) {{ _version }} }}"), json!({}))
                    .await;
                (op, resp)
            })
        })
        .collect();
    let mut succeeded = Vec::new();
    for task in tasks {
        let (op, resp) = task.await.unwrap();
        match resp.get("errors") {
            None => {
                assert_eq!(resp["data"][op]["_version"], 2, "{resp}");
                succeeded.push(op);
            }
            Some(errors) => assert!(
                ["CONFLICT", "NOT_FOUND"].contains(&code(&errors[0])),
                "{resp}"
            ),
        }
    }
    // Exactly one write happened: one update, or deletes (the same delete, repeated, is
    // answered with the tombstone it made).
    assert!(!succeeded.is_empty());
    assert!(
        succeeded.len() == 1 || succeeded.iter().all(|op| *op == "deleteNote"),
        "{succeeded:?}"
    );
    let page = g.sync("0", None, json!(null)).await;
    assert_eq!(page["items"][0]["_version"], 2);
    assert_eq!(page["items"][0]["_deleted"], succeeded[0] == "deleteNote");
}
