//! GraphQLCRUD filters, ordering and paging, on every store.

mod common;

use common::{code, ids, Backend, Gql};
use serde_json::{json, Value as Json};

store_tests!(
    string_operators,
    user_text_is_always_literal,
    int_operators,
    boolean_and_id_operators,
    list_fields_match_any_element,
    and_or_not,
    bad_filters_are_rejected,
    order_page_and_count,
    bad_pages_and_orders_are_rejected,
);

/// Five notes with awkward text.
async fn fixture(b: Backend) -> Gql {
    let g = b.gql().await;
    for (id, title, description, priority, done, tags) in [
        ("n1", "Alpha", json!("a.*b"), 1, false, json!(["x", "y"])),
        ("n2", "beta", json!(null), 2, true, json!(["y"])),
        ("n3", "Gamma (g)", json!("$gt"), 3, false, json!([])),
        (
            "n4",
            "alpha-2",
            json!("{\"$ne\": null}"),
            4,
            true,
            json!(["x"]),
        ),
        ("n5", "Δelta", json!("100%_done"), 5, false, json!(["z"])),
    ] {
        g.note(json!({"id": id, "title": title, "description": description, "priority": priority, "done": done, "tags": tags}))
            .await;
    }
    g
}

async fn expect(g: &Gql, filter: Json, want: &[&str]) {
    assert_eq!(g.find_ids(filter.clone()).await, want, "filter {filter}");
}

async fn string_operators(b: Backend) {
    let g = fixture(b).await;
    expect(&g, json!({"title": {"eq": "Alpha"}}), &["n1"]).await;
    expect(
        &g,
        json!({"title": {"ne": "Alpha"}}),
        &["n2", "n3", "n4", "n5"],
    )
    .await;
    // Code point order: "Alpha" < "Gamma (g)" < "alpha-2" < "beta" < "Δelta".
    expect(&g, json!({"title": {"lt": "alpha-2"}}), &["n1", "n3"]).await;
    expect(&g, json!({"title": {"le": "alpha-2"}}), &["n1", "n3", "n4"]).await;
    expect(&g, json!({"title": {"gt": "beta"}}), &["n5"]).await;
    expect(&g, json!({"title": {"ge": "beta"}}), &["n2", "n5"]).await;
    expect(&g, json!({"title": {"in": ["beta", "nope"]}}), &["n2"]).await;
    expect(&g, json!({"title": {"in": []}}), &[]).await;
    expect(&g, json!({"title": {"contains": "lph"}}), &["n1", "n4"]).await;
    expect(&g, json!({"title": {"startsWith": "a"}}), &["n4"]).await;
    expect(&g, json!({"title": {"startsWith": "A"}}), &["n1"]).await;
    expect(&g, json!({"title": {"endsWith": "ta"}}), &["n2", "n5"]).await;
    expect(&g, json!({"title": {"contains": "elt"}}), &["n5"]).await;
    expect(&g, json!({"title": {"endsWith": "lta"}}), &["n5"]).await;
    expect(
        &g,
        json!({"title": {"contains": ""}}),
        &["n1", "n2", "n3", "n4", "n5"],
    )
    .await;
    expect(
        &g,
        json!({"description": {"endsWith": ""}}),
        &["n1", "n3", "n4", "n5"],
    )
    .await;
    // Several operators in one input must all hold.
    expect(&g, json!({"title": {"ge": "a", "contains": "2"}}), &["n4"]).await;
    // `ne` also matches a null field.
    expect(
        &g,
        json!({"description": {"ne": "a.*b"}}),
        &["n2", "n3", "n4", "n5"],
    )
    .await;
}

async fn user_text_is_always_literal(b: Backend) {
    let g = fixture(b).await;
    expect(&g, json!({"description": {"contains": ".*"}}), &["n1"]).await;
    expect(&g, json!({"description": {"contains": "a.*b"}}), &["n1"]).await;
    expect(&g, json!({"description": {"contains": "a.b"}}), &[]).await;
    expect(&g, json!({"title": {"endsWith": "(g)"}}), &["n3"]).await;
    expect(&g, json!({"title": {"contains": "("}}), &["n3"]).await;
    expect(&g, json!({"description": {"startsWith": "$"}}), &["n3"]).await;
    expect(&g, json!({"description": {"eq": "$gt"}}), &["n3"]).await;
    expect(
        &g,
        json!({"description": {"eq": "{\"$ne\": null}"}}),
        &["n4"],
    )
    .await;
    expect(&g, json!({"description": {"contains": "%"}}), &["n5"]).await;
    expect(&g, json!({"description": {"contains": "_"}}), &["n5"]).await;
    expect(&g, json!({"description": {"contains": "^"}}), &[]).await;
    expect(&g, json!({"description": {"endsWith": "\\"}}), &[]).await;
    expect(
        &g,
        json!({"title": {"contains": "'); DROP TABLE notes; --"}}),
        &[],
    )
    .await;
    expect(&g, json!({"title": {"startsWith": "[a-z]"}}), &[]).await;
    expect(&g, json!({"title": {"endsWith": "*"}}), &[]).await;
    assert_eq!(g.find_ids(json!(null)).await.len(), 5, "nothing was harmed");
}

async fn int_operators(b: Backend) {
    let g = fixture(b).await;
    expect(&g, json!({"priority": {"eq": 3}}), &["n3"]).await;
    expect(
        &g,
        json!({"priority": {"ne": 3}}),
        &["n1", "n2", "n4", "n5"],
    )
    .await;
    expect(&g, json!({"priority": {"lt": 3}}), &["n1", "n2"]).await;
    expect(&g, json!({"priority": {"le": 3}}), &["n1", "n2", "n3"]).await;
    expect(&g, json!({"priority": {"gt": 4}}), &["n5"]).await;
    expect(&g, json!({"priority": {"ge": 4}}), &["n4", "n5"]).await;
    expect(&g, json!({"priority": {"in": [1, 5, 9]}}), &["n1", "n5"]).await;
    expect(
        &g,
        json!({"priority": {"between": [2, 4]}}),
        &["n2", "n3", "n4"],
    )
    .await;
    expect(&g, json!({"priority": {"between": [4, 2]}}), &[]).await;
    expect(&g, json!({"priority": {"gt": 1, "lt": 4}}), &["n2", "n3"]).await;
}

async fn boolean_and_id_operators(b: Backend) {
    let g = fixture(b).await;
    expect(&g, json!({"done": {"eq": true}}), &["n2", "n4"]).await;
    expect(&g, json!({"done": {"ne": true}}), &["n1", "n3", "n5"]).await;
    expect(&g, json!({"id": {"eq": "n2"}}), &["n2"]).await;
    expect(&g, json!({"id": {"ne": "n2"}}), &["n1", "n3", "n4", "n5"]).await;
    expect(&g, json!({"id": {"in": ["n1", "n3", "zz"]}}), &["n1", "n3"]).await;
    expect(&g, json!({"id": {"gt": "n3"}}), &["n4", "n5"]).await;
    expect(&g, json!({"id": {"ge": "n3"}}), &["n3", "n4", "n5"]).await;
    expect(&g, json!({"id": {"lt": "n2"}}), &["n1"]).await;
    expect(&g, json!({"id": {"le": "n2"}}), &["n1", "n2"]).await;
}

async fn list_fields_match_any_element(b: Backend) {
    let g = fixture(b).await;
    expect(&g, json!({"tags": {"eq": "x"}}), &["n1", "n4"]).await;
    // `ne` on a list: no element equals the value (empty lists included).
    expect(&g, json!({"tags": {"ne": "x"}}), &["n2", "n3", "n5"]).await;
    expect(&g, json!({"tags": {"in": ["z", "y"]}}), &["n1", "n2", "n5"]).await;
    expect(&g, json!({"tags": {"gt": "x"}}), &["n1", "n2", "n5"]).await;
    expect(&g, json!({"tags": {"startsWith": "z"}}), &["n5"]).await;
    expect(
        &g,
        json!({"not": {"tags": {"eq": "y"}}}),
        &["n3", "n4", "n5"],
    )
    .await;
}

async fn and_or_not(b: Backend) {
    let g = fixture(b).await;
    expect(
        &g,
        json!({"and": [{"priority": {"gt": 1}}, {"done": {"eq": false}}]}),
        &["n3", "n5"],
    )
    .await;
    expect(
        &g,
        json!({"or": [{"title": {"eq": "Alpha"}}, {"priority": {"eq": 5}}]}),
        &["n1", "n5"],
    )
    .await;
    expect(
        &g,
        json!({"not": {"done": {"eq": true}}}),
        &["n1", "n3", "n5"],
    )
    .await;
    expect(
        &g,
        json!({"not": {"or": [{"title": {"eq": "Alpha"}}, {"priority": {"eq": 5}}]}}),
        &["n2", "n3", "n4"],
    )
    .await;
    expect(
        &g,
        json!({"done": {"eq": false}, "or": [{"tags": {"eq": "x"}}, {"priority": {"ge": 5}}]}),
        &["n1", "n5"],
    )
    .await;
    // `not` over a null field: the comparison does not hold, so `not` does.
    expect(
        &g,
        json!({"not": {"description": {"eq": "$gt"}}}),
        &["n1", "n2", "n4", "n5"],
    )
    .await;
    expect(
        &g,
        json!({"not": {"description": {"contains": "a"}}}),
        &["n2", "n3", "n4", "n5"],
    )
    .await;
    expect(&g, json!({"and": [{"or": [{"priority": {"lt": 2}}, {"priority": {"gt": 4}}]}, {"not": {"id": {"eq": "n1"}}}]}), &["n5"]).await;
    expect(&g, json!({"or": []}), &["n1", "n2", "n3", "n4", "n5"]).await;
    expect(&g, json!({"and": []}), &["n1", "n2", "n3", "n4", "n5"]).await;
    expect(&g, json!({"not": {}}), &[]).await;
    expect(&g, json!({}), &["n1", "n2", "n3", "n4", "n5"]).await;
}

async fn bad_filters_are_rejected(b: Backend) {
    let g = fixture(b).await;
    let q = "query($f: NoteFilter) { findNotes(filter: $f) { count } }";
    for between in [json!([1]), json!([1, 2, 3]), json!([])] {
        let err = g
            .err(q, json!({"f": {"priority": {"between": between}}}))
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT");
        assert_eq!(err["extensions"]["field"], "filter.priority");
    }
    // Wrong types and unknown fields are caught by GraphQL validation, with the same code.
    for f in [
        json!({"priority": {"eq": "high"}}),
        json!({"nope": {"eq": 1}}),
        json!({"title": {"regex": ".*"}}),
    ] {
        let err = g.err(q, json!({"f": f})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
    }
    let err = g
        .err(
            "{ findNotes(filter: {priority: {eq: \"high\"}}) { count } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    // Date-time filters need date-times.
    let gadget = g
        .gadgets
        .execute("{ findGadgetList(filter: {seenAt: {gt: \"last tuesday\"}}) { count } }")
        .await;
    let err = serde_json::to_value(&gadget.errors[0]).unwrap();
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "filter.seenAt");
}

async fn order_page_and_count(b: Backend) {
    let g = fixture(b).await;
    let q = "query($f: NoteFilter, $p: PageRequest, $o: OrderByInput) { findNotes(filter: $f, page: $p, orderBy: $o) { count offset limit items { id } } }";
    let find = |f: Json, p: Json, o: Json| {
        let g = &g;
        async move { g.ok(q, json!({"f": f, "p": p, "o": o})).await["findNotes"].clone() }
    };

    let r = find(
        json!(null),
        json!({"limit": 2, "offset": 1}),
        json!({"field": "priority", "order": "DESC"}),
    )
    .await;
    assert_eq!(ids(&r["items"]), ["n4", "n3"]);
    assert_eq!(
        (r["count"].clone(), r["offset"].clone(), r["limit"].clone()),
        (json!(5), json!(1), json!(2))
    );

    let r = find(
        json!({"done": {"eq": false}}),
        json!({"limit": 2, "offset": 1}),
        json!({"field": "priority", "order": "DESC"}),
    )
    .await;
    assert_eq!(ids(&r["items"]), ["n3", "n1"]);
    assert_eq!(r["count"], 3, "count ignores the page");

    let r = find(json!(null), json!(null), json!({"field": "title"})).await;
    assert_eq!(
        ids(&r["items"]),
        ["n1", "n3", "n4", "n2", "n5"],
        "ASC by default"
    );

    // Ties are broken by id, so pages are stable.
    let r = find(
        json!(null),
        json!(null),
        json!({"field": "done", "order": "DESC"}),
    )
    .await;
    assert_eq!(ids(&r["items"]), ["n2", "n4", "n1", "n3", "n5"]);
    let r = find(json!(null), json!(null), json!({"field": "description"})).await;
    assert_eq!(
        ids(&r["items"]),
        ["n2", "n3", "n5", "n1", "n4"],
        "null first, then text"
    );

    let r = find(
        json!(null),
        json!(null),
        json!({"field": "id", "order": "DESC"}),
    )
    .await;
    assert_eq!(ids(&r["items"]), ["n5", "n4", "n3", "n2", "n1"]);
    let r = find(json!(null), json!(null), json!({"field": "createdAt"})).await;
    assert_eq!(ids(&r["items"]).len(), 5);

    let r = find(json!(null), json!({"limit": 0}), json!(null)).await;
    assert_eq!((ids(&r["items"]).len(), r["count"].clone()), (0, json!(5)));
    let r = find(json!(null), json!({"offset": 4}), json!(null)).await;
    assert_eq!(ids(&r["items"]), ["n5"]);
    let r = find(json!(null), json!({"offset": 50}), json!(null)).await;
    assert_eq!((ids(&r["items"]).len(), r["count"].clone()), (0, json!(5)));

    // Walking pages of 2 visits every record once.
    let mut seen = Vec::new();
    for offset in (0..6).step_by(2) {
        let r = find(
            json!(null),
            json!({"limit": 2, "offset": offset}),
            json!({"field": "done"}),
        )
        .await;
        seen.extend(ids(&r["items"]));
    }
    assert_eq!(seen, ["n1", "n3", "n5", "n2", "n4"]);
}

async fn bad_pages_and_orders_are_rejected(b: Backend) {
    let g = fixture(b).await;
    let q =
        "query($p: PageRequest, $o: OrderByInput) { findNotes(page: $p, orderBy: $o) { count } }";
    for (p, o, field) in [
        (json!({"limit": -1}), json!(null), "page.limit"),
        (json!({"limit": 1001}), json!(null), "page.limit"),
        (json!({"offset": -1}), json!(null), "page.offset"),
        (json!(null), json!({"field": "tags"}), "orderBy.field"),
        (json!(null), json!({"field": "nope"}), "orderBy.field"),
        (json!(null), json!({"field": ""}), "orderBy.field"),
    ] {
        let err = g.err(q, json!({"p": p, "o": o})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
        assert_eq!(err["extensions"]["field"], field);
    }
    let err = g
        .err(q, json!({"o": {"field": "title", "order": "SIDEWAYS"}}))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}
