//! Delta sync: from zero, after changes, paging, filters, tombstones, expiry, bad input.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{code, ids, Backend, Gql, ManualClock};
use datasync::StoreOptions;
use serde_json::{json, Value as Json};

store_tests!(
    sync_from_zero,
    sync_after_changes,
    paging_with_small_limits_misses_nothing,
    paging_while_writes_interleave,
    filtered_sync,
    millisecond_last_sync,
    malformed_arguments,
    expired_tokens_get_sync_expired,
);

/// Pages from `token` until `hasMore` is false; returns every item and the final token.
async fn drain(g: &Gql, token: &str, limit: i32, filter: Json) -> (Vec<Json>, String, usize) {
    let (mut items, mut token, mut pages) = (Vec::new(), token.to_owned(), 0);
    loop {
        let page = g.sync(&token, Some(limit), filter.clone()).await;
        pages += 1;
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit as usize);
        items.extend(got.iter().cloned());
        token = page["lastSync"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            return (items, token, pages);
        }
        assert_eq!(got.len(), limit as usize, "a page with hasMore is full");
    }
}

/// What the server has now: id -> (version, deleted), tombstones included.
async fn truth(g: &Gql) -> BTreeMap<String, (i64, bool)> {
    let (items, _, _) = drain(g, "0", 1000, json!(null)).await;
    replica(&items)
}

/// A client replica built from synced items: a higher `_version` wins.
fn replica(items: &[Json]) -> BTreeMap<String, (i64, bool)> {
    let mut map = BTreeMap::new();
    for item in items {
        let id = item["id"].as_str().unwrap().to_owned();
        let version = item["_version"].as_i64().unwrap();
        let deleted = item["_deleted"].as_bool().unwrap();
        let entry = map.entry(id).or_insert((version, deleted));
        if version >= entry.0 {
            *entry = (version, deleted);
        }
    }
    map
}

async fn sync_from_zero(b: Backend) {
    let g = b.gql().await;
    let empty = g.sync("0", None, json!(null)).await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["hasMore"], false);
    assert_eq!(empty["limit"], 100);
    for id in ["c", "a", "b"] {
        g.note(json!({"id": id})).await;
    }
    let page = g.sync("0", None, json!(null)).await;
    assert_eq!(ids(&page["items"]), ["c", "a", "b"], "change order");
    assert_eq!(page["hasMore"], false);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["_deleted"] == false));
    let again = g.sync("", None, json!(null)).await;
    assert_eq!(
        ids(&again["items"]),
        ["c", "a", "b"],
        "\"\" also means from the beginning"
    );
    let token = page["lastSync"].as_str().unwrap();
    let nothing = g.sync(token, None, json!(null)).await;
    assert_eq!(nothing["items"], json!([]));
    assert_eq!(nothing["lastSync"], token, "no change, same token");
}

async fn sync_after_changes(b: Backend) {
    let g = b.gql().await;
    for id in ["a", "b", "c"] {
        g.note(json!({"id": id})).await;
    }
    let t1 = g.sync("0", None, json!(null)).await["lastSync"]
        .as_str()
        .unwrap()
        .to_owned();
    g.ok(
        "mutation { updateNote(input: {id: \"b\", _version: 1, title: \"B\"}) { id } }",
        json!({}),
    )
    .await;
    g.ok(
        "mutation { deleteNote(input: {id: \"a\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    g.note(json!({"id": "d"})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"b\", _version: 2, done: true}) { id } }",
        json!({}),
    )
    .await;

    let page = g.sync(&t1, None, json!(null)).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(
        ids(&page["items"]),
        ["a", "d", "b"],
        "each changed record once, latest state, change order"
    );
    assert_eq!(
        (items[0]["_deleted"].clone(), items[0]["_version"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(
        (
            items[2]["title"].clone(),
            items[2]["done"].clone(),
            items[2]["_version"].clone()
        ),
        (json!("B"), json!(true), json!(3))
    );
    let t2 = page["lastSync"].as_str().unwrap();
    assert_ne!(t2, t1);
    assert_eq!(g.sync(t2, None, json!(null)).await["items"], json!([]));
}

async fn paging_with_small_limits_misses_nothing(b: Backend) {
    let g = b.gql().await;
    for i in 0..20 {
        g.note(json!({"id": format!("n{i:02}"), "priority": i}))
            .await;
    }
    for i in (0..20).step_by(3) {
        g.ok(&format!("mutation {{ updateNote(input: {{id: \"n{i:02}\", _version: 1, done: true}}) {{ id }} }}"), json!({})).await;
    }
    for i in (1..20).step_by(5) {
        let v = if i % 3 == 0 { 2 } else { 1 };
        g.ok(
            &format!(
                "mutation {{ deleteNote(input: {{id: \"n{i:02}\", _version: {v}}}) {{ id }} }}"
            ),
            json!({}),
        )
        .await;
    }
    let expected = truth(&g).await;
    assert_eq!(expected.len(), 20);
    for limit in [1, 3, 7, 50] {
        let (items, _, pages) = drain(&g, "0", limit, json!(null)).await;
        assert_eq!(replica(&items), expected, "limit {limit}");
        assert_eq!(
            items.len(),
            20,
            "limit {limit}: no duplicates in a quiet store"
        );
        assert!(pages >= 20usize.div_ceil(limit as usize), "limit {limit}");
    }
}

async fn paging_while_writes_interleave(b: Backend) {
    let g = b.gql().await;
    for i in 0..10 {
        g.note(json!({"id": format!("p{i}")})).await;
    }
    // A client pages with limit 2 while the data keeps changing between its pages.
    let (mut items, mut token) = (Vec::new(), "0".to_owned());
    let mut versions: BTreeMap<String, i64> = (0..10).map(|i| (format!("p{i}"), 1)).collect();
    for round in 0.. {
        let page = g.sync(&token, Some(2), json!(null)).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        token = page["lastSync"].as_str().unwrap().to_owned();
        if round < 12 {
            let id = format!("p{}", (round * 7) % 10);
            let v = versions[&id];
            g.ok(&format!("mutation {{ updateNote(input: {{id: \"{id}\", _version: {v}, priority: {round}}}) {{ id }} }}"), json!({})).await;
            versions.insert(id, v + 1);
            g.note(json!({"id": format!("new{round}")})).await;
        } else if page["hasMore"] == false {
            break;
        }
    }
    let expected = truth(&g).await;
    assert_eq!(expected.len(), 22);
    assert_eq!(replica(&items), expected, "the replica converged");
}

async fn filtered_sync(b: Backend) {
    let g = b.gql().await;
    for (id, done) in [("a", false), ("b", true), ("c", false), ("d", true)] {
        g.note(json!({"id": id, "done": done})).await;
    }
    let filter = json!({"done": {"eq": false}});
    let first = g.sync("0", Some(10), filter.clone()).await;
    assert_eq!(
        ids(&first["items"]),
        ["a", "c"],
        "from the beginning: only matching records"
    );
    let (items, token, _) = drain(&g, "0", 1, filter.clone()).await;
    let live = |items: &[Json]| {
        let mut r = replica(items);
        r.retain(|_, (_, deleted)| !*deleted);
        r.into_keys().collect::<Vec<_>>()
    };
    assert_eq!(
        live(&items),
        ["a", "c"],
        "later pages may add removals, never other records"
    );
    g.note(json!({"id": "e", "done": false})).await;
    g.note(json!({"id": "f", "done": true})).await;
    // "c" leaves the filter: the client must hear of it, as a removal.
    g.ok(
        "mutation { updateNote(input: {id: \"c\", _version: 1, done: true}) { id } }",
        json!({}),
    )
    .await;
    let (items, token, _) = drain(&g, &token, 2, filter.clone()).await;
    assert_eq!(live(&items), ["e"], "{items:?}");
    let c = items
        .iter()
        .find(|i| i["id"] == "c")
        .expect("c is reported");
    assert_eq!(c["_deleted"], true);
    // ... and when it matches again, it comes back.
    g.ok(
        "mutation { updateNote(input: {id: \"c\", _version: 2, done: false}) { id } }",
        json!({}),
    )
    .await;
    let page = g.sync(&token, Some(10), filter).await;
    assert_eq!(
        page["items"],
        json!([{"id": "c", "title": "t", "description": null, "priority": 1, "done": false, "tags": [], "_version": 3, "createdAt": page["items"][0]["createdAt"], "updatedAt": page["items"][0]["updatedAt"], "_deleted": false}])
    );
}

async fn millisecond_last_sync(b: Backend) {
    let g = b.gql().await;
    let a = g.note(json!({"id": "a"})).await;
    let created: i64 = a["createdAt"].as_str().unwrap().parse().unwrap();
    let page = g.sync(&(created - 1).to_string(), None, json!(null)).await;
    assert_eq!(ids(&page["items"]), ["a"]);
    let page = g.sync("1592634899084", None, json!(null)).await;
    assert_eq!(ids(&page["items"]), ["a"]);
    // The answer is a server token; continuing from it works as usual.
    let token = page["lastSync"].as_str().unwrap();
    g.note(json!({"id": "b"})).await;
    assert_eq!(ids(&g.sync(token, None, json!(null)).await["items"]), ["b"]);
}

async fn malformed_arguments(b: Backend) {
    let g = b.gql().await;
    g.note(json!({"id": "a"})).await;
    let q = "query($s: String!, $l: Int) { syncNotes(lastSync: $s, limit: $l) { lastSync } }";
    for bad in [
        "abc",
        "-5",
        "s-1",
        "1.5",
        "s",
        "S1",
        " 0",
        "s12x",
        "999999999999999999999",
    ] {
        let err = g.err(q, json!({"s": bad})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{bad:?}");
        assert_eq!(err["extensions"]["field"], "lastSync");
    }
    for bad in [0, -1, 1001, 100000] {
        let err = g.err(q, json!({"s": "0", "l": bad})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "limit {bad}");
        assert_eq!(err["extensions"]["field"], "limit");
    }
    let max = g.ok(q, json!({"s": "0", "l": 1000})).await;
    assert!(max["syncNotes"]["lastSync"].is_string());
    let err = g
        .err("{ syncNotes(lastSync: 5) { lastSync } }", json!({}))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    let err = g.err("{ syncNotes { lastSync } }", json!({})).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

async fn expired_tokens_get_sync_expired(b: Backend) {
    let clock = ManualClock::now();
    let opts = StoreOptions::default()
        .tombstone_retention(Duration::from_secs(2))
        .purge_interval(Duration::ZERO)
        .clock(clock.clone());
    let g = Gql::new(b.store_with(opts).await);
    for id in ["a", "b", "c"] {
        g.note(json!({"id": id})).await;
    }
    let before = g.sync("0", None, json!(null)).await["lastSync"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_ms = (clock.0.load(std::sync::atomic::Ordering::SeqCst) - 1).to_string();
    g.ok(
        "mutation { deleteNote(input: {id: \"a\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let after = g.sync(&before, None, json!(null)).await;
    assert_eq!(ids(&after["items"]), ["a"]);
    let after = after["lastSync"].as_str().unwrap().to_owned();

    // Younger than the retention: kept, nobody expires.
    clock.advance(1_000);
    assert_eq!(
        ids(&g.sync(&before, None, json!(null)).await["items"]),
        ["a"]
    );

    // Older than the retention: purged on the next sync; whoever has not seen it must resync.
    clock.advance(1_500);
    g.ok(
        "mutation { deleteNote(input: {id: \"b\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let q = "query($s: String!) { syncNotes(lastSync: $s) { lastSync items { id _deleted } } }";
    for stale in [before.as_str(), before_ms.as_str()] {
        let err = g.err(q, json!({"s": stale})).await;
        assert_eq!(code(&err), "SYNC_EXPIRED", "{stale}");
    }
    // A client that saw the purged tombstone carries on and gets the newer one.
    let page = g.ok(q, json!({"s": after})).await;
    assert_eq!(
        page["syncNotes"]["items"],
        json!([{"id": "b", "_deleted": true}])
    );
    // The expired client starts over and ends with no ghost of "a".
    let fresh = g.sync("0", None, json!(null)).await;
    assert_eq!(
        replica(fresh["items"].as_array().unwrap()),
        BTreeMap::from([("b".into(), (2, true)), ("c".into(), (1, false))])
    );
    // A client starting over from "0" after the purge pages through without being expired by
    // it (it never held what the purge removed), even in pages of one.
    let (items, token, _) = drain(&g, "0", 1, json!(null)).await;
    assert_eq!(replica(&items).len(), 2);
    // ... and a later purge it has not seen expires it again only if it removed something
    // after its cursor: here a tombstone it already received.
    g.ok(
        "mutation { deleteNote(input: {id: \"c\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let (_, token, _) = drain(&g, &token, 1, json!(null)).await;
    clock.advance(2_500);
    let page = g.ok(q, json!({"s": token})).await;
    assert_eq!(
        page["syncNotes"]["items"],
        json!([]),
        "tombstones it had seen were purged: no need to resync"
    );
    // A token from another database (a replaced one, say) means: start over.
    let elsewhere = Gql::new(b.store().await);
    elsewhere.note(json!({"id": "x"})).await;
    let foreign = elsewhere.sync("0", None, json!(null)).await["lastSync"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = g.err(q, json!({"s": foreign})).await;
    assert_eq!(code(&err), "SYNC_EXPIRED");
    // Tokens are sealed: one made up or edited (to skip SYNC_EXPIRED, say) is refused.
    let (body, seal) = before.split_once('-').unwrap();
    let skipping = format!("{}w999999-{seal}", body.split('w').next().unwrap());
    for forged in ["s999", "s3w999999", skipping.as_str()] {
        let err = g.err(q, json!({"s": forged})).await;
        assert_eq!(
            (code(&err), err["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some("lastSync")),
            "{forged}"
        );
    }
}
