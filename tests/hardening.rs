//! Regression tests from an outside review: no lost update after a purge, no first sync
//! expired by purges of what it never held, no record poisoned by a number JSON cannot hold,
//! no page taken down by one unreadable record, bounded finds, exact text operators, and
//! sealed tokens (tests/sync.rs).

mod common;

use std::time::Duration;

use common::{code, ids, Backend, Gql, ManualClock};
use datasync::{Store, StoreOptions};
use serde_json::{json, Value as Json};

store_tests!(
    recreated_id_never_reuses_a_version,
    first_sync_survives_purges_of_older_tombstones,
    numbers_json_cannot_hold_are_refused,
    an_unreadable_record_does_not_take_a_page_down,
    finds_without_a_page_are_bounded,
    text_operators_treat_nul_as_a_character,
    text_operands_are_limited,
    every_filter_term_counts,
);

/// A store whose tombstones expire after 2 s of its manual clock, purged on every sync.
async fn purging(b: Backend) -> (Gql, ManualClock) {
    let clock = ManualClock::now();
    let opts = StoreOptions::default()
        .tombstone_retention(Duration::from_secs(2))
        .purge_interval(Duration::ZERO)
        .clock(clock.clone());
    (Gql::new(b.store_with(opts).await), clock)
}

const UPDATE: &str =
    "mutation($i: MutateNoteInput!) { updateNote(input: $i) { _version title priority } }";

async fn recreated_id_never_reuses_a_version(b: Backend) {
    let (g, clock) = purging(b).await;
    g.note(json!({"id": "n1", "title": "old"})).await;
    g.ok(
        "mutation { deleteNote(input: {id: \"n1\", _version: 1}) { _version } }",
        json!({}),
    )
    .await;
    clock.advance(3_000);
    assert_eq!(g.store.purge_tombstones(note_spec()).await.unwrap(), 1);
    // The id is free again; the new record continues after the old one's versions.
    let created = g.note(json!({"id": "n1", "title": "new"})).await;
    assert_eq!(created["_version"], 3);
    // An offline client replays an edit it made against the old record at version 1: a
    // conflict, not a silent overwrite of the new record.
    let err = g
        .err(
            UPDATE,
            json!({"i": {"id": "n1", "_version": 1, "title": "stale"}}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
    assert_eq!(
        err["extensions"]["conflictInfo"]["serverState"]["title"],
        "new"
    );
    // ... also under `merge`, which would otherwise see no field changed since version 1.
    let merging = common::app::schema_with(
        g.store.clone(),
        datasync::ConflictOverrides::new().set::<common::app::Note>(datasync::conflict::Merge),
    );
    let resp = merging
        .execute(
            datasync::async_graphql::Request::new(UPDATE)
                .variables(datasync::async_graphql::Variables::from_json(
                    json!({"i": {"id": "n1", "_version": 1, "title": "stale"}}),
                ))
                .data(datasync::Principal::new("tester")),
        )
        .await;
    assert_eq!(
        resp.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&datasync::async_graphql::Value::from("CONFLICT"))
    );
    let ok = g
        .ok(
            UPDATE,
            json!({"i": {"id": "n1", "_version": 3, "priority": 9}}),
        )
        .await;
    assert_eq!(
        ok["updateNote"],
        json!({"_version": 4, "title": "new", "priority": 9})
    );
    // Deleted and purged again: the next incarnation starts after version 5.
    g.ok(
        "mutation { deleteNote(input: {id: \"n1\", _version: 4}) { _version } }",
        json!({}),
    )
    .await;
    clock.advance(3_000);
    g.store.purge_tombstones(note_spec()).await.unwrap();
    assert_eq!(g.note(json!({"id": "n1"})).await["_version"], 6);
}

fn note_spec() -> &'static datasync::ModelSpec {
    <common::app::Note as datasync::Model>::spec()
}

/// Pages from `token` to the end; returns the live ids held and the final token.
async fn drain(g: &Gql, mut token: String, limit: i32) -> (Vec<String>, String) {
    let mut held = std::collections::BTreeMap::new();
    loop {
        let page = g.sync(&token, Some(limit), json!(null)).await;
        for item in page["items"].as_array().unwrap() {
            held.insert(
                item["id"].as_str().unwrap().to_owned(),
                item["_deleted"] == false,
            );
        }
        token = page["lastSync"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            let live = held.into_iter().filter(|(_, l)| *l).map(|(id, _)| id);
            return (live.collect(), token);
        }
    }
}

async fn first_sync_survives_purges_of_older_tombstones(b: Backend) {
    let (g, clock) = purging(b).await;
    for i in 0..5 {
        g.note(json!({"id": format!("c{i}")})).await;
    }
    g.ok(
        "mutation { deleteNote(input: {id: \"c0\", _version: 1}) { _version } }",
        json!({}),
    )
    .await;
    // A new device starts its first sync...
    let first = g.sync("0", Some(2), json!(null)).await;
    assert_eq!(ids(&first["items"]), ["c1", "c2"]);
    assert_eq!(first["hasMore"], true);
    // ... c0's tombstone (written before it started) falls due and is purged ...
    clock.advance(3_000);
    // ... and the device carries on: it never held c0, so nothing can be a ghost.
    let token = first["lastSync"].as_str().unwrap().to_owned();
    let (mut live, token) = drain(&g, token, 2).await;
    live.extend(["c1".to_owned(), "c2".to_owned()]);
    live.sort();
    assert_eq!(live, ["c1", "c2", "c3", "c4"]);

    // The rule stays exact: a tombstone written after the device started, of a record it
    // holds, purged before the device saw it, does expire it.
    let second = g.sync("0", Some(1), json!(null)).await;
    assert_eq!(ids(&second["items"]), ["c1"]);
    g.ok(
        "mutation { deleteNote(input: {id: \"c1\", _version: 1}) { _version } }",
        json!({}),
    )
    .await;
    clock.advance(3_000);
    g.store.purge_tombstones(note_spec()).await.unwrap();
    let err = g
        .err(
            "query($s: String!) { syncNotes(lastSync: $s) { lastSync } }",
            json!({"s": second["lastSync"]}),
        )
        .await;
    assert_eq!(code(&err), "SYNC_EXPIRED");
    // The first device, past that tombstone's position? No: it had not seen it either.
    let err = g
        .err(
            "query($s: String!) { syncNotes(lastSync: $s) { lastSync } }",
            json!({"s": token}),
        )
        .await;
    assert_eq!(code(&err), "SYNC_EXPIRED");
}

const CREATE_GADGET: &str = "mutation($i: CreateGadgetInput!) { createGadget(input: $i) { id } }";

fn gadget(fields: Json) -> Json {
    let mut input = json!({
        "id": "g1", "name": "n", "active": true, "count": 1, "big": 1, "ratio": 1.0,
        "ratio32": 1.0, "seenAt": "2024-01-01T00:00:00Z", "labels": [], "scores": [],
        "address": {"street": "s"}
    });
    input
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    input
}

async fn numbers_json_cannot_hold_are_refused(b: Backend) {
    let g = b.gql().await;
    // Each out of range for its type: f32, i32, i64, f64 (as a literal and as a variable).
    for (field, value) in [
        ("ratio32", json!(1e39)),
        ("ratio32", json!(-3.5e38)),
        ("count", json!(3_000_000_000i64)),
        ("big", json!(1e30)),
    ] {
        let resp = g
            .gadget_run(CREATE_GADGET, json!({"i": gadget(json!({ field: value }))}))
            .await;
        assert_eq!(
            code(&resp["errors"][0]),
            "BAD_USER_INPUT",
            "{field}: {resp}"
        );
        let message = resp["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains("Unknown"), "{message}");
    }
    for literal in ["ratio32: 1e39", "ratio: 1e309", "count: 3000000000"] {
        let resp = g
            .gadget_run(
                &format!(
                    "mutation {{ createGadget(input: {{id: \"g1\", name: \"n\", active: true, count: 1, big: 1, ratio: 1.0, ratio32: 1.0, seenAt: \"2024-01-01T00:00:00Z\", labels: [], scores: [], address: {{street: \"s\"}}, {literal}}}) {{ id }} }}"
                ),
                json!({}),
            )
            .await;
        assert_eq!(
            code(&resp["errors"][0]),
            "BAD_USER_INPUT",
            "{literal}: {resp}"
        );
    }
    // Nothing was written, and every read still works.
    let found = g
        .gadget_ok("{ findGadgetList { count items { id } } }", json!({}))
        .await;
    assert_eq!(found["findGadgetList"]["count"], 0);
    g.gadget_ok(CREATE_GADGET, json!({"i": gadget(json!({}))}))
        .await;
    let resp = g
        .gadget_run(
            "mutation { updateGadget(input: {id: \"g1\", _version: 1, ratio32: 1e39}) { _version } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&resp["errors"][0]), "BAD_USER_INPUT", "{resp}");
    let synced = g
        .gadget_ok(
            "{ syncGadgetList(lastSync: \"0\") { items { id ratio32 _version } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        synced["syncGadgetList"]["items"],
        json!([{"id": "g1", "ratio32": 1.0, "_version": 1}])
    );
}

async fn an_unreadable_record_does_not_take_a_page_down(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a"})).await;
    // A record whose stored data no longer fits the model (written by another program, say).
    let bad =
        json!({"owner": "tester", "title": "t", "priority": "high", "done": false, "tags": []});
    g.store
        .insert(note_spec(), "bad", bad.as_object().unwrap().clone())
        .await
        .unwrap();
    g.note(json!({"id": "z"})).await;

    let resp = g
        .run("{ findNotes { count items { id } } }", json!({}))
        .await;
    assert_eq!(ids(&resp["data"]["findNotes"]["items"]), ["a", "z"]);
    let errors = resp["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{resp}");
    assert_eq!(code(&errors[0]), "INTERNAL");
    assert_eq!(errors[0]["extensions"]["recordId"], "bad");
    let resp = g
        .run(
            "{ syncNotes(lastSync: \"0\") { hasMore items { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&resp["data"]["syncNotes"]["items"]), ["a", "z"]);
    assert_eq!(resp["errors"][0]["extensions"]["recordId"], "bad");
    let err = g.err("{ getNote(id: \"bad\") { id } }", json!({})).await;
    assert_eq!(code(&err), "INTERNAL");
    assert!(g.ok("{ getNote(id: \"a\") { id } }", json!({})).await["getNote"].is_object());
}

async fn finds_without_a_page_are_bounded(b: Backend) {
    let store = b.store().await;
    let g = Gql::new(store.clone());
    for i in 0..105 {
        g.note(json!({"id": format!("n{i:03}")})).await;
    }
    let found = g
        .ok("{ findNotes { count limit items { id } } }", json!({}))
        .await;
    assert_eq!(found["findNotes"]["items"].as_array().unwrap().len(), 100);
    assert_eq!(
        found["findNotes"]["count"], 105,
        "count tells the client to page"
    );
    let rest = g
        .ok(
            "{ findNotes(page: {offset: 100}) { items { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ids(&rest["findNotes"]["items"]),
        ["n100", "n101", "n102", "n103", "n104"]
    );
    // Configurable on the schema builder.
    let schema = datasync::async_graphql::Schema::build(
        common::app::Query::default(),
        common::app::Mutation::default(),
        datasync::async_graphql::EmptySubscription,
    )
    .datasync_with(store, datasync::Config::new().find_limit(7));
    use datasync::SchemaBuilderExt;
    let resp = schema
        .data(datasync::Principal::new("tester"))
        .finish()
        .execute("{ findNotes { count items { id } } }")
        .await
        .into_result()
        .unwrap();
    let data = resp.data.into_json().unwrap();
    assert_eq!(data["findNotes"]["items"].as_array().unwrap().len(), 7);
    assert_eq!(data["findNotes"]["count"], 105);
}

async fn text_operators_treat_nul_as_a_character(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "nul", "title": "hello\u{0}x", "tags": ["a\u{0}b"]}))
        .await;
    g.note(json!({"id": "plain", "title": "hello"})).await;
    let cases = [
        (json!({"title": {"endsWith": "x"}}), vec!["nul"]),
        (json!({"title": {"endsWith": "hello"}}), vec!["plain"]),
        (json!({"title": {"endsWith": "o"}}), vec!["plain"]),
        (
            json!({"title": {"startsWith": "hello"}}),
            vec!["nul", "plain"],
        ),
        (json!({"title": {"contains": "o"}}), vec!["nul", "plain"]),
        (json!({"title": {"eq": "hello\u{0}x"}}), vec!["nul"]),
        (json!({"tags": {"eq": "a\u{0}b"}}), vec!["nul"]),
    ];
    for (filter, want) in cases {
        let got = g.find_ids(filter.clone()).await;
        let want: Vec<String> = want.into_iter().map(String::from).collect();
        assert_eq!(got, want, "{filter}");
    }
}

async fn text_operands_are_limited(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a", "title": "x".repeat(5000)})).await;
    let q = "query($f: NoteFilter) { findNotes(filter: $f) { count } }";
    for filter in [
        json!({"title": {"contains": "x".repeat(1025)}}),
        json!({"title": {"startsWith": "x".repeat(100_000)}}),
        json!({"title": {"eq": "x".repeat(5000)}}),
        json!({"id": {"in": ["x".repeat(2000)]}}),
        json!({"title": {"contains": "a\u{0}"}}),
        json!({"tags": {"endsWith": "\u{0}"}}),
    ] {
        let err = g.err(q, json!({"f": filter})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
    }
    // At the limit: answered.
    let ok = g
        .ok(q, json!({"f": {"title": {"contains": "x".repeat(1024)}}}))
        .await;
    assert_eq!(ok["findNotes"]["count"], 1);
    // A failed input leaves the store working as before.
    g.note(json!({"id": "b"})).await;
    assert_eq!(g.find_ids(json!({"id": {"eq": "b"}})).await, ["b"]);
}

async fn every_filter_term_counts(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a"})).await;
    let q = "query($f: NoteFilter) { findNotes(filter: $f) { count } }";
    let empty_nots: Vec<Json> = (0..100_000).map(|_| json!({"not": {}})).collect();
    let empties: Vec<Json> = (0..6_000).map(|_| json!({})).collect();
    for filter in [json!({"or": empty_nots}), json!({"and": empties})] {
        let err = g.err(q, json!({"f": filter})).await;
        assert_eq!(
            (code(&err), err["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some("filter"))
        );
    }
    // Wrongly shaped arguments are input errors too.
    for (query, vars) in [
        (q, json!({"f": "title"})),
        (
            "query($p: PageRequest) { findNotes(page: $p) { count } }",
            json!({"p": 5}),
        ),
        (
            "query($o: OrderByInput) { findNotes(orderBy: $o) { count } }",
            json!({"o": "title"}),
        ),
    ] {
        let err = g.err(query, vars).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
    }
}
