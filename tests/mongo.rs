//! MongoDB-only behaviour: outages, index setup, several server processes on one database.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code, fresh_database, mongodb_uri, Gql, ManualClock};
use datasync::mongodb::bson::doc;
use datasync::{MongoStore, Store, StoreOptions};
use serde_json::{json, Value as Json};

fn server(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg("scripts/mongo-test-server")
        .args(args)
        .output()
        .expect("run scripts/mongo-test-server");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_internal_and_the_process_recovers() {
    // A server of our own, so that stopping it disturbs no other test.
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let started = server(&["start", dir]);
    let port = started.trim().rsplit(':').next().unwrap().to_owned();
    let uri =
        format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000");
    let store = MongoStore::connect(&uri, "outage").await.unwrap();
    let g = Gql::new(Arc::new(store));
    let create = |i: usize| {
        format!("mutation {{ createNote(input: {{id: \"n{i}\", title: \"t\", priority: 1, done: false, tags: []}}) {{ id }} }}")
    };

    for i in 0..3 {
        g.ok(&create(i), json!({})).await;
    }
    server(&["stop", dir]);
    for i in 3..6 {
        let err = g.err(&create(i), json!({})).await;
        assert_eq!(code(&err), "INTERNAL", "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            !message.contains("127.0.0.1") && !message.contains(&port),
            "no internals leak: {message}"
        );
        let err = g
            .err("{ syncNotes(lastSync: \"0\") { lastSync } }", json!({}))
            .await;
        assert_eq!(code(&err), "INTERNAL");
    }
    // Back on the same port (empty: the test server keeps data in memory).
    server(&["start", dir, &port]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 100;
    loop {
        let resp = g.run(&create(i), json!({})).await;
        if resp.get("errors").is_none() {
            break;
        }
        assert_eq!(code(&resp["errors"][0]), "INTERNAL", "{resp}");
        assert!(Instant::now() < deadline, "did not recover: {resp}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        i += 1;
    }
    let page = g
        .ok("{ syncNotes(lastSync: \"0\") { items { id } } }", json!({}))
        .await;
    assert_eq!(page["syncNotes"]["items"].as_array().unwrap().len(), 1);
    server(&["stop", dir]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_are_created_once_and_idempotently() {
    let db = fresh_database();
    for _ in 0..2 {
        // A second process (or a restart) runs the same setup again without error.
        // Created at start-up by `prepare`, before any operation.
        let store = MongoStore::connect(&mongodb_uri(), &db).await.unwrap();
        store.prepare::<common::app::Note>().await.unwrap();
        let indexes = indexes(&store).await;
        for wanted in [
            doc! {"_seq": 1},
            doc! {"_deleted": 1},
            doc! {"_expireAt": 1},
        ] {
            let found = indexes.iter().find(|i| i.keys == wanted);
            assert!(found.is_some(), "{wanted} in {indexes:?}");
            let ttl = found.unwrap().options.as_ref().and_then(|o| o.expire_after);
            assert!(ttl.is_none(), "no TTL index: {found:?}");
        }
        // And the collection works (on the second round: after a "restart").
        Gql::new(Arc::new(store.clone())).note(json!({})).await;
    }
}

async fn indexes(store: &MongoStore) -> Vec<datasync::mongodb::IndexModel> {
    use futures_util::TryStreamExt;
    store
        .database()
        .collection::<datasync::mongodb::bson::Document>("notes")
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Earlier versions made a TTL index on `_expireAt`: MongoDB deleted tombstones without
/// raising the purge watermark, so clients holding them were never told to resync. Setting
/// up a collection removes such an index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_ttl_index_is_removed() {
    use datasync::mongodb::options::IndexOptions;
    use datasync::mongodb::IndexModel;
    let store = MongoStore::connect(&mongodb_uri(), &fresh_database())
        .await
        .unwrap();
    store
        .database()
        .collection::<datasync::mongodb::bson::Document>("notes")
        .create_index(
            IndexModel::builder()
                .keys(doc! {"_expireAt": 1})
                .options(
                    IndexOptions::builder()
                        .expire_after(Duration::from_secs(60))
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    assert!(indexes(&store).await.iter().any(|i| i
        .options
        .as_ref()
        .and_then(|o| o.expire_after)
        .is_some()));
    store.prepare::<common::app::Note>().await.unwrap();
    let after = indexes(&store).await;
    assert!(
        after
            .iter()
            .all(|i| i.options.as_ref().and_then(|o| o.expire_after).is_none()),
        "{after:?}"
    );
    assert!(after.iter().any(|i| i.keys == doc! {"_expireAt": 1}));
}

/// Tombstones of a collection nobody syncs are purged by the store's background task, and
/// that purge raises the watermark like any other: a client holding a token from before the
/// delete is told to resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_purges_raise_the_watermark() {
    let clock = ManualClock::now();
    let opts = StoreOptions::default()
        .tombstone_retention(Duration::from_secs(2))
        .purge_interval(Duration::from_millis(100))
        .clock(clock.clone());
    let store = MongoStore::connect_with(&mongodb_uri(), &fresh_database(), opts)
        .await
        .unwrap();
    let g = Gql::new(Arc::new(store.clone()));
    g.note(json!({"id": "a"})).await;
    g.note(json!({"id": "b"})).await;
    let token = g.sync("0", None, json!(null)).await["lastSync"]
        .as_str()
        .unwrap()
        .to_owned();
    g.ok(
        "mutation { deleteNote(input: {id: \"a\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    clock.advance(3_000);
    // No request comes; the background task purges on its own.
    let counters = store
        .database()
        .collection::<datasync::mongodb::bson::Document>("_datasync_collections");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counter = counters
            .find_one(doc! {"_id": "notes"})
            .await
            .unwrap()
            .unwrap();
        let purged = counter
            .get("purgedSeq")
            .and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)));
        if purged.unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no background purge: {counter}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live = store
        .database()
        .collection::<datasync::mongodb::bson::Document>("notes")
        .count_documents(doc! {"_expireAt": {"$exists": true}})
        .await
        .unwrap();
    assert_eq!(live, 0, "the tombstone is gone");
    let err = g
        .err(
            "query($s: String!) { syncNotes(lastSync: $s) { lastSync } }",
            json!({"s": token}),
        )
        .await;
    assert_eq!(code(&err), "SYNC_EXPIRED");
}

/// Input the server would refuse (a NUL in a regular expression, a huge pattern) is refused
/// before it is sent, and an input error never resets the collection's set-up (which would
/// run index creation again on every such request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_text_operands_are_input_errors_and_keep_the_setup() {
    let store = MongoStore::connect(&mongodb_uri(), &fresh_database())
        .await
        .unwrap();
    store.prepare::<common::app::Note>().await.unwrap();
    let g = Gql::new(Arc::new(store.clone()));
    g.note(json!({"id": "a"})).await;
    // Drop an index behind the store's back: set-up run again would bring it back.
    let notes = store
        .database()
        .collection::<datasync::mongodb::bson::Document>("notes");
    notes.drop_index("_deleted_1").await.unwrap();
    let q = "query($f: NoteFilter) { findNotes(filter: $f) { count } }";
    for filter in [
        json!({"title": {"contains": "a\u{0}b"}}),
        json!({"title": {"startsWith": "x".repeat(40_000)}}),
        json!({"tags": {"endsWith": "\u{0}"}}),
    ] {
        let err = g.err(q, json!({"f": filter})).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
    }
    g.note(json!({"id": "b"})).await;
    assert!(
        !indexes(&store)
            .await
            .iter()
            .any(|i| i.keys == doc! {"_deleted": 1}),
        "the set-up did not run again"
    );
}

/// A tombstone carries `_expireAt` (when its purge is due); restoring it removes the expiry,
/// or the purge would later remove a live record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_tombstones_lose_their_expiry() {
    use common::app::{MutateNoteInput, Note};
    use datasync::async_graphql::MaybeUndefined;
    let store = MongoStore::connect(&mongodb_uri(), &fresh_database())
        .await
        .unwrap();
    let g = Gql::new(Arc::new(store.clone()));
    g.note(json!({"id": "r"})).await;
    g.ok(
        "mutation { deleteNote(input: {id: \"r\", _version: 1}) { id } }",
        json!({}),
    )
    .await;
    let raw = || async {
        store
            .database()
            .collection::<datasync::mongodb::bson::Document>("notes")
            .find_one(doc! {"_id": "r"})
            .await
            .unwrap()
            .unwrap()
    };
    assert!(
        raw().await.get("_expireAt").is_some(),
        "a tombstone expires"
    );
    let notes = Note::repository(&store).with_strategy(Arc::new(datasync::conflict::ClientWins));
    let input = MutateNoteInput {
        id: "r".into(),
        _version: 2,
        title: MaybeUndefined::Value("back".into()),
        ..Default::default()
    };
    let restored = notes.update(input).await.unwrap();
    assert!(!restored.meta.deleted);
    let doc = raw().await;
    assert!(
        doc.get("_expireAt").is_none(),
        "restored: no expiry left in {doc}"
    );
    assert_eq!(doc.get_bool("_deleted").ok(), Some(false));
}

/// Several independent stores (think: server processes) with skewed clocks share one
/// database; writers race while a client syncs in small pages. The client's replica must
/// end equal to the server's state, and no record's version may go backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_with_skewed_clocks_never_lose_a_change() {
    let db = fresh_database();
    let mut stores = Vec::new();
    for skew in [0i64, -5_000, 7_000] {
        let clock = ManualClock::now();
        clock.advance(skew);
        let opts = StoreOptions::default().clock(clock);
        let store: Arc<dyn Store> = Arc::new(
            MongoStore::connect_with(&mongodb_uri(), &db, opts)
                .await
                .unwrap(),
        );
        stores.push(Gql::new(store));
    }
    let stores = Arc::new(stores);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let stores = Arc::clone(&stores);
            tokio::spawn(async move {
                let g = &stores[w];
                for i in 0..15 {
                    let id = format!("w{w}-{}", i % 5);
                    let resp = g
                        .run("mutation($i: CreateNoteInput!) { createNote(input: $i) { _version } }", json!({"i": {"id": id, "title": "t", "priority": i, "done": false, "tags": []}}))
                        .await;
                    if resp.get("errors").is_some() {
                        // Exists: update it at whatever version it has now.
                        let got = g.ok(&format!("{{ getNote(id: \"{id}\") {{ _version }} }}"), json!({})).await;
                        if let Some(v) = got["getNote"]["_version"].as_i64() {
                            let op = if i % 4 == 3 { "deleteNote" } else { "updateNote" };
                            g.run(&format!("mutation {{ {op}(input: {{id: \"{id}\", _version: {v}, priority: {i}}}) {{ id }} }}"), json!({})).await;
                        }
                    }
                }
            })
        })
        .collect();

    let reader = &stores[1];
    let (mut replica, mut token, mut pages) =
        (BTreeMap::<String, (i64, bool)>::new(), "0".to_owned(), 0);
    let apply = |items: &Json, replica: &mut BTreeMap<String, (i64, bool)>| {
        for item in items.as_array().unwrap() {
            let id = item["id"].as_str().unwrap().to_owned();
            let version = item["_version"].as_i64().unwrap();
            let deleted = item["_deleted"].as_bool().unwrap();
            let entry = replica.entry(id.clone()).or_insert((version, deleted));
            assert!(
                version >= entry.0,
                "{id}: version went back from {} to {version}",
                entry.0
            );
            *entry = (version, deleted);
        }
    };
    let mut done = false;
    while !done {
        done = writers.iter().all(|w| w.is_finished());
        loop {
            let page = reader.sync(&token, Some(3), json!(null)).await;
            apply(&page["items"], &mut replica);
            token = page["lastSync"].as_str().unwrap().to_owned();
            pages += 1;
            if page["hasMore"] == false {
                break;
            }
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    loop {
        let page = reader.sync(&token, Some(3), json!(null)).await;
        apply(&page["items"], &mut replica);
        token = page["lastSync"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            break;
        }
    }
    // The truth, read fresh from the beginning through another process.
    let mut truth = BTreeMap::new();
    let mut t = "0".to_owned();
    loop {
        let page = stores[2].sync(&t, Some(1000), json!(null)).await;
        apply(&page["items"], &mut truth);
        t = page["lastSync"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(truth.len(), 15);
    assert_eq!(replica, truth, "after {pages} pages");
    // Quiet now: nothing pending, nothing new.
    let page = reader.sync(&token, Some(3), json!(null)).await;
    assert_eq!(page["items"], json!([]));
    assert!(
        !page["lastSync"].as_str().unwrap().contains('.'),
        "no pending positions left: {}",
        page["lastSync"]
    );
}

const SYNC: &str =
    "query($s: String) { syncNotes(lastSync: $s) { lastSync hasMore items { id _version } } }";

/// A number as the server hands it back (Int32 or Int64).
fn number(doc: &datasync::mongodb::bson::Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(datasync::mongodb::bson::Bson::Int32(i)) => i64::from(*i),
        Some(datasync::mongodb::bson::Bson::Int64(i)) => *i,
        other => panic!("{key} is not a number: {other:?}"),
    }
}

async fn sync_from(g: &Gql, token: &Json) -> (Json, Vec<String>) {
    let page = g.ok(SYNC, json!({"s": token})).await;
    let ids = page["syncNotes"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    (page["syncNotes"]["lastSync"].clone(), ids)
}

/// Positions a stamper announced but has not written yet stay pending in the token: written
/// later, they reach a client that synced in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_in_flight_stay_pending_until_written() {
    let store = MongoStore::connect(&mongodb_uri(), &fresh_database())
        .await
        .unwrap();
    let g = Gql::new(Arc::new(store.clone()));
    g.note(json!({"id": "a"})).await;
    let (token, ids) = sync_from(&g, &json!("0")).await;
    assert_eq!(ids, ["a"]);
    // Another process's stamper: it took position n and announced it, and stalls.
    let counters = store
        .database()
        .collection::<datasync::mongodb::bson::Document>("_datasync_collections");
    let before = counters
        .find_one(doc! {"_id": "notes"})
        .await
        .unwrap()
        .unwrap();
    let lo = number(&before, "seq");
    counters
        .update_one(
            doc! {"_id": "notes"},
            doc! {"$inc": {"seq": 1i64}, "$set": {"res.slow.lo": lo}, "$currentDate": {"res.slow.at": true}},
        )
        .await
        .unwrap();
    let (held, ids) = sync_from(&g, &token).await;
    assert!(ids.is_empty());
    assert!(
        held.as_str().unwrap().contains('p'),
        "position {} is pending in {held}",
        lo + 1
    );
    // The stamper goes on: its record is written at that position, the reservation goes.
    let notes = store
        .database()
        .collection::<datasync::mongodb::bson::Document>("notes");
    notes
        .insert_one(doc! {
            "_id": "late", "owner": "tester", "title": "t", "description": null, "priority": 1i64, "done": false,
            "tags": [], "_version": 1i64, "_deleted": false, "createdAt": 1i64,
            "updatedAt": 1i64, "_seq": lo + 1,
        })
        .await
        .unwrap();
    counters
        .update_one(doc! {"_id": "notes"}, doc! {"$unset": {"res.slow": ""}})
        .await
        .unwrap();
    let (done, ids) = sync_from(&g, &held).await;
    assert_eq!(ids, ["late"], "the pending position was delivered");
    assert!(
        !done.as_str().unwrap().contains('p'),
        "nothing pending: {done}"
    );
}

/// A stamper that stalls past the timeout is fenced: its reservation is dropped, and the
/// statements it still sends match nothing (the record it read got a new mark), so nothing
/// is ever written at a position a reader stopped waiting for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stamper_is_fenced() {
    let store = MongoStore::connect(&mongodb_uri(), &fresh_database())
        .await
        .unwrap();
    let g = Gql::new(Arc::new(store.clone()));
    g.note(json!({"id": "a"})).await;
    let (token, _) = sync_from(&g, &json!("0")).await;
    let db = store.database();
    let notes = db.collection::<datasync::mongodb::bson::Document>("notes");
    let counters = db.collection::<datasync::mongodb::bson::Document>("_datasync_collections");
    // A record written by another process, waiting for its position (mark `_u`) ...
    let mark = "0000000000000001deadbeef";
    notes
        .insert_one(doc! {
            "_id": "late", "owner": "tester", "title": "t", "description": null, "priority": 1i64, "done": false,
            "tags": [], "_version": 1i64, "_deleted": false, "createdAt": 1i64,
            "updatedAt": 1i64, "_u": mark,
        })
        .await
        .unwrap();
    // ... read by a stamper that reserved a position for it 11 s ago and stalled.
    let counter = counters
        .find_one_and_update(doc! {"_id": "notes"}, doc! {"$inc": {"seq": 1i64}})
        .return_document(datasync::mongodb::options::ReturnDocument::After)
        .await
        .unwrap()
        .unwrap();
    let reserved = number(&counter, "seq");
    let long_ago = datasync::mongodb::bson::DateTime::from_millis(
        datasync::mongodb::bson::DateTime::now().timestamp_millis() - 11_000,
    );
    counters
        .update_one(
            doc! {"_id": "notes"},
            doc! {"$set": {"res.stalled.lo": reserved - 1, "res.stalled.at": long_ago}},
        )
        .await
        .unwrap();
    // A reader does not wait for it: the record comes at a new position, nothing pending.
    let (next, ids) = sync_from(&g, &token).await;
    assert_eq!(ids, ["late"]);
    assert!(!next.as_str().unwrap().contains('p'), "{next}");
    let counter = counters
        .find_one(doc! {"_id": "notes"})
        .await
        .unwrap()
        .unwrap();
    assert!(
        counter
            .get_document("res")
            .map_or(true, |r| !r.contains_key("stalled")),
        "the stalled reservation is gone: {counter}"
    );
    // The stamper wakes up and writes the position it reserved: it matches nothing.
    let late = notes
        .update_one(
            doc! {"_id": "late", "_u": mark},
            doc! {"$set": {"_seq": reserved}, "$unset": {"_u": ""}},
        )
        .await
        .unwrap();
    assert_eq!(late.matched_count, 0);
    let stored = notes.find_one(doc! {"_id": "late"}).await.unwrap().unwrap();
    assert_ne!(number(&stored, "_seq"), reserved);
    let (_, ids) = sync_from(&g, &next).await;
    assert!(ids.is_empty(), "delivered once: {ids:?}");
}

/// A process decides updates on its recent copy of a record: a copy made stale by another
/// process never lets an edit based on an old version through, and never blocks an edit
/// based on the current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_recent_copies_never_decide_a_write() {
    let db = fresh_database();
    let a = Gql::new(Arc::new(
        MongoStore::connect(&mongodb_uri(), &db).await.unwrap(),
    ));
    let b = Gql::new(Arc::new(
        MongoStore::connect(&mongodb_uri(), &db).await.unwrap(),
    ));
    const UPDATE: &str =
        "mutation($i: MutateNoteInput!) { updateNote(input: $i) { _version title } }";
    const DELETE: &str = "mutation($i: MutateNoteInput!) { deleteNote(input: $i) { _version } }";
    a.note(json!({"id": "n", "title": "one"})).await; // a's copy: version 1
    b.ok(
        UPDATE,
        json!({"i": {"id": "n", "_version": 1, "title": "two"}}),
    )
    .await;
    // An edit based on version 1 is a conflict, though a's copy says version 1.
    let err = a
        .err(
            UPDATE,
            json!({"i": {"id": "n", "_version": 1, "title": "stale"}}),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT", "{err}");
    assert_eq!(
        err["extensions"]["conflictInfo"]["serverState"]["title"],
        "two"
    );
    // An edit based on the current version goes through on a (which now knows it).
    let done = a
        .ok(
            UPDATE,
            json!({"i": {"id": "n", "_version": 2, "title": "three"}}),
        )
        .await;
    assert_eq!(done["updateNote"], json!({"_version": 3, "title": "three"}));
    // b's copy is stale now; b deletes based on version 3, then retries the same delete.
    let deleted = b.ok(DELETE, json!({"i": {"id": "n", "_version": 3}})).await;
    assert_eq!(deleted["deleteNote"], json!({"_version": 4}));
    // a still holds version 3: a retried delete based on 3 is answered with the tombstone.
    let retried = a.ok(DELETE, json!({"i": {"id": "n", "_version": 3}})).await;
    assert_eq!(retried["deleteNote"], json!({"_version": 4}));
    let err = a
        .err(
            UPDATE,
            json!({"i": {"id": "n", "_version": 3, "title": "gone"}}),
        )
        .await;
    assert_eq!(code(&err), "NOT_FOUND", "{err}");
}
