//! SQLite-only behaviour: readers and writers do not wait for each other.

mod common;

use std::sync::Arc;

use common::{ids, Gql};
use datasync::SqliteStore;
use serde_json::json;

/// The store runs in WAL mode with read connections of its own: a long read (here another
/// connection's open read transaction) does not hold up writes, and a write in progress
/// (another connection holding the write lock) does not hold up reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_writers_do_not_block_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let g = Gql::new(Arc::new(store));
    g.note(json!({"id": "a"})).await;
    // (The first sync also purges old tombstones, a write; the next is a minute away.)
    g.sync("0", None, json!(null)).await;

    let other = rusqlite::Connection::open(&path).unwrap();
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // A reader in the middle of a read transaction...
    other.execute_batch("BEGIN").unwrap();
    let n: i64 = other
        .query_row("SELECT COUNT(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    // ... and writes go ahead (in rollback-journal mode they would wait for it).
    g.note(json!({"id": "b"})).await;
    g.ok(
        "mutation { updateNote(input: {id: \"a\", _version: 1, title: \"A\"}) { _version } }",
        json!({}),
    )
    .await;
    other.execute_batch("COMMIT").unwrap();

    // A writer holding the write lock...
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // ... and reads go ahead: get, find, sync.
    assert_eq!(
        g.ok("{ getNote(id: \"a\") { title } }", json!({})).await["getNote"]["title"],
        "A"
    );
    assert_eq!(g.find_ids(json!(null)).await, ["a", "b"]);
    assert_eq!(
        ids(&g.sync("0", None, json!(null)).await["items"]),
        ["b", "a"]
    );
    other.execute_batch("ROLLBACK").unwrap();
}

/// `SqliteStore::memory()` is a private database in a temporary file, removed on drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_stores_leave_no_files_behind() {
    let before = temp_files();
    let store = SqliteStore::memory().await.unwrap();
    let g = Gql::new(Arc::new(store));
    g.note(json!({"id": "a"})).await;
    assert!(temp_files().len() > before.len());
    drop(g);
    // Background tasks hold only a weak reference: the files go with the last clone.
    let left: Vec<_> = temp_files()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn temp_files() -> Vec<String> {
    let prefix = format!("datasync-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}
