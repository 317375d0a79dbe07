//! Hostile input: deep nesting must give `BAD_USER_INPUT`, never a crash.

mod common;

use common::{code, Backend};
use serde_json::{json, Value as Json};

fn literal(depth: usize) -> String {
    format!(
        "{}{{title: {{eq: \"x\"}}}}{}",
        "{not: ".repeat(depth),
        "}".repeat(depth)
    )
}

fn variable(depth: usize) -> Json {
    let mut filter = json!({"title": {"eq": "x"}});
    for _ in 0..depth {
        filter = json!({"not": filter});
    }
    filter
}

#[tokio::test]
async fn deeply_nested_inputs_are_rejected_not_crashed_on() {
    let g = Backend::Sqlite.gql().await;
    g.note(json!({"id": "a", "title": "x"})).await;
    // Within the limit: answered (`not` 60 times: even count, so it matches).
    let ok = g
        .ok(
            &format!("{{ findNotes(filter: {}) {{ count }} }}", literal(60)),
            json!({}),
        )
        .await;
    assert_eq!(ok["findNotes"]["count"], 1);
    let ok = g
        .ok(
            "query($f: NoteFilter) { findNotes(filter: $f) { count } }",
            json!({"f": variable(61)}),
        )
        .await;
    assert_eq!(ok["findNotes"]["count"], 0);

    // In-process variables are limited to what serde can build on a test thread's stack;
    // deeper JSON over HTTP is stopped by the JSON parser (see tests/http.rs).
    for depth in [70, 200, 400] {
        let err = g
            .err(
                "query($f: NoteFilter) { findNotes(filter: $f) { count } }",
                json!({"f": variable(depth)}),
            )
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "variable depth {depth}");
    }
    for depth in [70, 200, 400, 5_000, 100_000] {
        let err = g
            .err(
                &format!("{{ findNotes(filter: {}) {{ count }} }}", literal(depth)),
                json!({}),
            )
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "literal depth {depth}");
        let err = g
            .err(
                &format!(
                    "query($f: NoteFilter = {}) {{ findNotes(filter: $f) {{ count }} }}",
                    literal(depth)
                ),
                json!({}),
            )
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "default value depth {depth}");
    }
    let deep_list = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let err = g
        .err(
            &format!("{{ findNotes(filter: {{priority: {{in: {deep_list}}}}}) {{ count }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn carriage_return_comments_do_not_hide_nesting() {
    let g = Backend::Sqlite.gql().await;
    for prefix in ["#\r", "# x\r\n#\r"] {
        let err = g
            .err(
                &format!(
                    "{prefix}{{ findNotes(filter: {}) {{ count }} }}",
                    literal(100_000)
                ),
                json!({}),
            )
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn wide_filters_are_answered_or_rejected_as_bad_input() {
    let g = Backend::Sqlite.gql().await;
    g.note(json!({"id": "a", "priority": 7})).await;
    let q = "query($f: NoteFilter) { findNotes(filter: $f) { count } }";
    // Wide but allowed: 1500 alternatives, 4000 `in` values.
    let ors: Vec<Json> = (0..1500).map(|i| json!({"priority": {"eq": i}})).collect();
    let ok = g.ok(q, json!({"f": {"or": ors}})).await;
    assert_eq!(ok["findNotes"]["count"], 1);
    let ids: Vec<String> = (0..4000)
        .map(|i| format!("id{i}"))
        .chain(["a".into()])
        .collect();
    let ok = g.ok(q, json!({"f": {"id": {"in": ids}}})).await;
    assert_eq!(ok["findNotes"]["count"], 1);
    // Too wide: a clear client error, not a store failure.
    let ors: Vec<Json> = (0..6000).map(|i| json!({"priority": {"eq": i}})).collect();
    let err = g.err(q, json!({"f": {"or": ors}})).await;
    assert_eq!(
        (code(&err), err["extensions"]["field"].as_str()),
        ("BAD_USER_INPUT", Some("filter"))
    );
    let ids: Vec<String> = (0..40_000).map(|i| format!("id{i}")).collect();
    let err = g.err(q, json!({"f": {"id": {"in": ids}}})).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    let err = g
        .err("query($s: String!, $f: NoteFilter) { syncNotes(lastSync: $s, filter: $f) { lastSync } }", json!({"s": "0", "f": {"title": {"in": vec!["x"; 6000]}}}))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}
