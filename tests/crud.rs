//! Create, get, update (as a patch), delete (soft), through GraphQL, on every store.

mod common;

use common::{code, Backend, NOTE};
use serde_json::json;

store_tests!(
    create_and_get,
    client_chosen_id_and_duplicate,
    bad_ids_are_rejected,
    get_unknown_id_is_null,
    update_is_a_patch,
    update_rejects_null_for_required_field,
    update_and_delete_unknown_id,
    delete_leaves_a_tombstone,
    tombstone_cannot_be_updated_or_deleted,
    every_field_type_round_trips,
    repository_without_graphql,
    two_models_cannot_share_a_collection,
);

async fn create_and_get(b: Backend) {
    let g = b.gql().await;
    let n = g
        .note(json!({"title": "Buy milk", "description": "2 litres", "priority": 3, "tags": ["home", "food"]}))
        .await;
    assert_eq!(n["title"], "Buy milk");
    assert_eq!(n["_version"], 1);
    assert_eq!(n["tags"], json!(["home", "food"]));
    assert_eq!(n["createdAt"], n["updatedAt"]);
    let created: i64 = n["createdAt"]
        .as_str()
        .unwrap()
        .parse()
        .expect("createdAt is decimal ms");
    assert!(created > 1_600_000_000_000);
    assert!(
        !n["id"].as_str().unwrap().is_empty(),
        "server generated an id"
    );

    let got = g
        .ok(
            &format!("query($id: ID!) {{ getNote(id: $id) {{ {NOTE} }} }}"),
            json!({"id": n["id"]}),
        )
        .await;
    assert_eq!(got["getNote"], n);
}

async fn client_chosen_id_and_duplicate(b: Backend) {
    let g = b.gql().await;
    let n = g.note(json!({"id": "offline-1", "title": "first"})).await;
    assert_eq!(n["id"], "offline-1");
    let err = g
        .err(
            "mutation { createNote(input: {id: \"offline-1\", title: \"again\", priority: 1, done: true, tags: []}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "ALREADY_EXISTS");
    let server = &err["extensions"]["serverState"];
    assert_eq!(server["title"], "first");
    assert_eq!(server["_version"], 1);
    assert_eq!(server["_deleted"], false);
    // The stored record is untouched.
    let got = g
        .ok("{ getNote(id: \"offline-1\") { title done } }", json!({}))
        .await;
    assert_eq!(got["getNote"], json!({"title": "first", "done": false}));
}

async fn bad_ids_are_rejected(b: Backend) {
    let g = b.gql().await;
    for id in [String::new(), "x".repeat(600), "a\u{0}b".to_string()] {
        let err = g
            .err(
                "mutation($id: ID) { createNote(input: {id: $id, title: \"t\", priority: 1, done: false, tags: []}) { id } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT");
        assert_eq!(err["extensions"]["field"], "input.id");
    }
    let count = g.ok("{ findNotes { count } }", json!({})).await;
    assert_eq!(count["findNotes"]["count"], 0);
}

async fn get_unknown_id_is_null(b: Backend) {
    let g = b.gql().await;
    let got = g.ok("{ getNote(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(got["getNote"], json!(null));
}

async fn update_is_a_patch(b: Backend) {
    let g = b.gql().await;
    let n = g
        .note(json!({"title": "a", "description": "keep me", "priority": 5, "tags": ["x"]}))
        .await;
    let upd = format!("mutation($i: MutateNoteInput!) {{ updateNote(input: $i) {{ {NOTE} }} }}");

    // Only the title changes; omitted fields stay.
    let v2 = g
        .ok(
            &upd,
            json!({"i": {"id": n["id"], "_version": 1, "title": "b"}}),
        )
        .await["updateNote"]
        .clone();
    assert_eq!(v2["title"], "b");
    assert_eq!(v2["description"], "keep me");
    assert_eq!(v2["priority"], 5);
    assert_eq!(v2["tags"], json!(["x"]));
    assert_eq!(v2["_version"], 2);
    assert_eq!(v2["createdAt"], n["createdAt"]);
    let (c, u): (i64, i64) = (
        v2["createdAt"].as_str().unwrap().parse().unwrap(),
        v2["updatedAt"].as_str().unwrap().parse().unwrap(),
    );
    assert!(u >= c);

    // Explicit null clears an optional field.
    let v3 = g
        .ok(
            &upd,
            json!({"i": {"id": n["id"], "_version": 2, "description": null, "tags": []}}),
        )
        .await["updateNote"]
        .clone();
    assert_eq!(v3["description"], json!(null));
    assert_eq!(v3["tags"], json!([]));
    assert_eq!(v3["title"], "b");
    assert_eq!(v3["_version"], 3);

    // An empty patch is still a write.
    let v4 = g
        .ok(&upd, json!({"i": {"id": n["id"], "_version": 3}}))
        .await["updateNote"]
        .clone();
    assert_eq!(v4["_version"], 4);
    let got = g
        .ok(
            &format!("{{ getNote(id: {}) {{ {NOTE} }} }}", n["id"]),
            json!({}),
        )
        .await;
    assert_eq!(got["getNote"], v4);
}

async fn update_rejects_null_for_required_field(b: Backend) {
    let g = b.gql().await;
    let n = g.note(json!({"title": "keep"})).await;
    let err = g
        .err(
            "mutation($i: MutateNoteInput!) { updateNote(input: $i) { id } }",
            json!({"i": {"id": n["id"], "_version": 1, "title": null}}),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "input.title");
    let got = g
        .ok(
            &format!("{{ getNote(id: {}) {{ title _version }} }}", n["id"]),
            json!({}),
        )
        .await;
    assert_eq!(got["getNote"], json!({"title": "keep", "_version": 1}));
}

async fn update_and_delete_unknown_id(b: Backend) {
    let g = b.gql().await;
    for op in ["updateNote", "deleteNote"] {
        let err = g
            .err(
                &format!("mutation {{ {op}(input: {{id: \"ghost\", _version: 1, title: \"x\"}}) {{ id }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(code(&err), "NOT_FOUND", "{op}");
    }
}

async fn delete_leaves_a_tombstone(b: Backend) {
    let g = b.gql().await;
    let keep = g.note(json!({"id": "keep", "title": "stays"})).await;
    let n = g
        .note(json!({"id": "gone", "title": "goes", "description": "last words"}))
        .await;
    let del = g
        .ok(
            &format!(
                "mutation {{ deleteNote(input: {{id: \"gone\", _version: 1}}) {{ {NOTE} }} }}"
            ),
            json!({}),
        )
        .await["deleteNote"]
        .clone();
    assert_eq!(del["_version"], 2);
    assert_eq!(del["title"], "goes", "the tombstone keeps the last data");

    let got = g.ok("{ getNote(id: \"gone\") { id } }", json!({})).await;
    assert_eq!(got["getNote"], json!(null));
    assert_eq!(g.find_ids(json!(null)).await, vec!["keep"]);
    let count = g.ok("{ findNotes { count } }", json!({})).await;
    assert_eq!(count["findNotes"]["count"], 1);

    let page = g.sync("0", None, json!(null)).await;
    let items = page["items"].as_array().unwrap();
    let tomb = items
        .iter()
        .find(|i| i["id"] == "gone")
        .expect("tombstone is synced");
    assert_eq!(tomb["_deleted"], true);
    assert_eq!(tomb["_version"], 2);
    assert_eq!(tomb["description"], "last words");
    let live = items.iter().find(|i| i["id"] == "keep").unwrap();
    assert_eq!(live["_deleted"], false);
    assert_eq!(live["_version"], keep["_version"]);
    let _ = n;
}

async fn tombstone_cannot_be_updated_or_deleted(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "t1"})).await;
    g.ok(
        "mutation { deleteNote(input: {id: \"t1\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    for version in [1, 2, 3] {
        let err = g
            .err(&format!("mutation {{ updateNote(input: {{id: \"t1\", _version: {version}, title: \"back\"}}) {{ id }} }}"), json!({}))
            .await;
        assert_eq!(code(&err), "NOT_FOUND", "update v{version}");
    }
    // A retried delete (same base version) succeeds without writing again.
    let again = g
        .ok(
            "mutation { deleteNote(input: {id: \"t1\", _version: 1}) { _version } }",
            json!({}),
        )
        .await;
    assert_eq!(again["deleteNote"]["_version"], 2);
    // Any other base version learns of the delete through CONFLICT (even absurd ones).
    for version in [2, 5, i64::MAX] {
        let err = g
            .err(&format!("mutation {{ deleteNote(input: {{id: \"t1\", _version: {version}}}) {{ id }} }}"), json!({}))
            .await;
        assert_eq!(code(&err), "CONFLICT", "delete v{version}");
        assert_eq!(
            err["extensions"]["conflictInfo"]["serverState"]["_deleted"],
            true
        );
        assert_eq!(err["extensions"]["conflictInfo"]["operation"], "delete");
    }
    let page = g.sync("0", None, json!(null)).await;
    assert_eq!(page["items"][0]["_version"], 2, "nothing was written");
    assert_eq!(page["items"][0]["title"], "t");
}

async fn every_field_type_round_trips(b: Backend) {
    let g = b.gql().await;
    let fields = "key name active count big ratio ratio32 seenAt maybeName maybeCount maybeAt labels scores address { street zip } history { street } colour _version";
    let input = json!({
        "id": "g1", "name": "Widget", "active": true, "count": -7, "big": 9_007_199_254_740_000i64,
        "ratio": 0.25, "ratio32": 1.5, "seenAt": "2024-02-29T12:00:00+01:00", "maybeName": null, "maybeCount": 4,
        "labels": ["a", "b"], "scores": [3, 1], "address": {"street": "Main St", "zip": null},
        "history": [{"street": "Old Rd", "zip": "123"}], "colour": "teal"
    });
    let created = g
        .gadget_ok(
            &format!(
                "mutation($i: CreateGadgetInput!) {{ createGadget(input: $i) {{ {} }} }}",
                fields.replacen("key ", "id ", 1)
            ),
            json!({"i": input}),
        )
        .await["createGadget"]
        .clone();
    assert_eq!(created["id"], "g1");
    assert_eq!(created["big"], 9_007_199_254_740_000i64);
    assert_eq!(created["ratio32"], 1.5);
    assert_eq!(created["seenAt"], "2024-02-29T11:00:00+00:00");
    assert_eq!(created["maybeName"], json!(null));
    assert_eq!(created["maybeAt"], json!(null));
    assert_eq!(
        created["address"],
        json!({"street": "Main St", "zip": null})
    );
    assert_eq!(created["history"], json!([{"street": "Old Rd"}]));
    assert_eq!(created["colour"], "teal");

    // Filters on every filterable type, ordering by a date-time, plural and rename.
    let found = g
        .gadget_ok(
            r#"{ findGadgetList(filter: {
                    active: {eq: true}, count: {lt: 0}, big: {gt: 9000000000000000}, ratio: {between: [0.2, 0.3]},
                    seenAt: {ge: "2024-02-29T11:00:00Z", lt: "2024-02-29T11:00:00.001Z"},
                    maybeCount: {in: [4, 5]}, labels: {eq: "b"}, scores: {ge: 3}, colour: {startsWith: "te"}
                 }, orderBy: {field: "seenAt", order: DESC}) { count items { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(found["findGadgetList"]["count"], 1);

    let updated = g
        .gadget_ok(
            "mutation { updateGadget(input: {id: \"g1\", _version: 1, maybeAt: \"2020-01-01T00:00:00Z\", address: {street: \"New St\", zip: \"9\"}, colour: null}) { maybeAt address { street zip } colour _version } }",
            json!({}),
        )
        .await["updateGadget"]
        .clone();
    assert_eq!(
        updated,
        json!({"maybeAt": "2020-01-01T00:00:00+00:00", "address": {"street": "New St", "zip": "9"}, "colour": null, "_version": 2})
    );
    let synced = g
        .gadget_ok(
            "{ syncGadgetList(lastSync: \"0\") { items { id _deleted maybeAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        synced["syncGadgetList"]["items"],
        json!([{"id": "g1", "_deleted": false, "maybeAt": "2020-01-01T00:00:00+00:00"}])
    );
}

async fn repository_without_graphql(b: Backend) {
    use common::app::{CreateNoteInput, MutateNoteInput, Note, NoteFilter};
    use datasync::async_graphql::MaybeUndefined;
    use datasync::{FieldFilter, StringInput, SyncToken};

    let store = b.store().await;
    // Notes belong to their creator: the repository acts for a principal.
    let notes = Note::repository(&store).for_principal(datasync::Principal::new("rusty"));
    let rec = notes
        .create(CreateNoteInput {
            id: Some("r1".into()),
            title: "From Rust".into(),
            description: None,
            priority: 2,
            done: false,
            tags: vec!["rust".into()],
        })
        .await
        .unwrap();
    assert_eq!(rec.meta.version, 1);
    assert_eq!(rec.data.title, "From Rust");
    assert_eq!(rec.data.owner, "rusty");

    let rec = notes
        .update(MutateNoteInput {
            id: "r1".into(),
            _version: 1,
            done: MaybeUndefined::Value(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rec.data.done);
    assert_eq!(rec.meta.version, 2);

    let filter = NoteFilter {
        title: Some(FieldFilter::new(StringInput {
            contains: Some("Rust".into()),
            ..Default::default()
        })),
        ..Default::default()
    };
    let page = notes.find(Some(&filter), None, None).await.unwrap();
    assert_eq!(page.count, 1);
    assert_eq!(page.items[0].data.id, "r1");

    let gone = notes.delete("r1", 2).await.unwrap();
    assert!(gone.meta.deleted);
    assert!(notes.get("r1").await.unwrap().is_none());
    let delta = notes.sync(SyncToken::ZERO, None, 100).await.unwrap();
    assert_eq!(delta.items.len(), 1);
    assert!(delta.items[0].meta.deleted);
    assert!(!delta.has_more);
    let retried = notes.delete("r1", 2).await.unwrap();
    assert_eq!(
        retried.meta.version, 3,
        "a retried delete returns the tombstone"
    );
    let err = notes.delete("r1", 3).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    let err = notes
        .update(MutateNoteInput {
            id: "r1".into(),
            _version: 3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
}

#[tokio::test]
async fn awkward_field_names_work() {
    use common::gadget::{Awkward, AwkwardFilter, CreateAwkwardInput, MutateAwkwardInput};
    use datasync::async_graphql::MaybeUndefined;
    use datasync::{FieldFilter, StringInput, SyncToken};

    let store = Backend::Sqlite.store().await;
    let repo = Awkward::repository(&store);
    let input = CreateAwkwardInput {
        id: Some("k".into()),
        data: "d".into(),
        doc: None,
        input: 1,
        ctx: true,
        page: vec!["p".into()],
        delta: Some(2),
        patch: 0.5,
        r#type: "t".into(),
        filter: "f".into(),
        limit: 3,
        spec: "s".into(),
        meta: "m".into(),
        is_not: false,
    };
    let created = repo.create(input).await.unwrap();
    assert_eq!(created.data.rec, "k");
    let patch = MutateAwkwardInput {
        id: "k".into(),
        _version: 1,
        r#type: MaybeUndefined::Value("u".into()),
        ..Default::default()
    };
    assert_eq!(repo.update(patch).await.unwrap().data.r#type, "u");
    let f = AwkwardFilter {
        r#type: Some(FieldFilter::new(StringInput {
            eq: Some("u".into()),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(repo.find(Some(&f), None, None).await.unwrap().count, 1);
    assert_eq!(
        repo.sync(SyncToken::ZERO, Some(&f), 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// Two models whose collection names match (same plural, default collection).
mod shared_collection {
    use datasync::prelude::*;

    #[derive(DataSync, Debug)]
    #[datasync(plural = "Items")]
    pub struct Book {
        pub id: String,
        pub title: String,
    }

    #[derive(DataSync, Debug)]
    #[datasync(plural = "Items")]
    pub struct Tool {
        pub id: String,
        pub weight: i32,
    }

    /// Table names in SQLite ignore case.
    #[derive(DataSync, Debug)]
    #[datasync(collection = "ITEMS")]
    pub struct Gear {
        pub id: String,
    }
}

async fn two_models_cannot_share_a_collection(b: Backend) {
    use datasync::SyncToken;
    use shared_collection::{Book, CreateBookInput, CreateToolInput, Tool};

    let store = b.store().await;
    let books = Book::repository(&store);
    let book = CreateBookInput {
        id: Some("x".into()),
        title: "Dune".into(),
    };
    books.create(book).await.unwrap();

    let tools = Tool::repository(&store);
    let tool = CreateToolInput {
        id: Some("y".into()),
        weight: 3,
    };
    let err = tools.create(tool).await.unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    assert!(
        err.to_string()
            .contains("models `Book` and `Tool` are configured to share one collection"),
        "{err}"
    );
    assert!(tools.get("x").await.is_err(), "reads are refused as well");
    let gear = shared_collection::Gear::repository(&store);
    assert_eq!(gear.get("x").await.unwrap_err().code(), "INTERNAL");
    // The first model's records are untouched and nothing of the second was written.
    let page = books.sync(SyncToken::ZERO, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].data.title, "Dune");
}
