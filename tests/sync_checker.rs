//! Randomized concurrency checker for delta sync (DESIGN §5): a client that keeps syncing never
//! misses a committed change and never sees a record's version go backwards; a client whose
//! `lastSync` predates a purge gets `SYNC_EXPIRED` and, after resyncing from "0", holds no
//! ghost rows.
//!
//! Writers (through the GraphQL schema) race syncing clients, round after round, while a
//! manual clock moves past the tombstone retention. Every check that fails is an anomaly; any
//! anomaly fails the test. The seed and the totals are printed.
//!
//! `DATASYNC_CHECK_ROUNDS` (default 12) and `DATASYNC_CHECK_SEED` make longer or repeatable runs:
//! `DATASYNC_CHECK_ROUNDS=500 DATASYNC_CHECK_SEED=42 scripts/test --test sync_checker -- --nocapture`
//! (`DATASYNC_CHECK_TRACE=1` prints every page).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{code, fresh_database, mongodb_uri, Gql};
use datasync::{Clock, MongoStore, Principal, SqliteStore, Store, StoreOptions};
use serde_json::{json, Value as Json};

const RETENTION: Duration = Duration::from_secs(2);
/// The users the checker writes and syncs as.
const OWNERS: [&str; 2] = ["alice", "bob"];

/// xorshift64*: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Shared base time plus a fixed skew: one server process's clock.
struct SkewedClock {
    base: Arc<AtomicI64>,
    skew: i64,
}

impl Clock for SkewedClock {
    fn now_millis(&self) -> i64 {
        self.base.load(Ordering::SeqCst) + self.skew
    }
}

#[derive(Default)]
struct Totals {
    rounds: AtomicUsize,
    writes: AtomicUsize,
    conflicts: AtomicUsize,
    syncs: AtomicUsize,
    pages: AtomicUsize,
    expired: AtomicUsize,
    resumes: AtomicUsize,
    anomalies: Mutex<Vec<String>>,
}

impl Totals {
    fn anomaly(&self, what: String) {
        eprintln!("ANOMALY: {what}");
        self.anomalies.lock().unwrap().push(what);
    }
}

/// A syncing client with its local replica.
struct Client {
    name: String,
    filter: Json,
    limit: i32,
    token: String,
    /// id -> (version, live)
    replica: BTreeMap<String, (i64, bool)>,
    /// Highest version ever received per id (survives a reset): must never go down.
    seen: BTreeMap<String, i64>,
    /// Called after every page (to move a test clock).
    on_page: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Whose client it is: it syncs as this user and must hold exactly their records.
    owner: String,
}

impl Client {
    fn new(name: &str, filter: Json, limit: i32) -> Self {
        Client {
            name: name.into(),
            filter,
            limit,
            token: "0".into(),
            replica: BTreeMap::new(),
            seen: BTreeMap::new(),
            on_page: None,
            owner: "tester".into(),
        }
    }

    fn owned_by(mut self, owner: &str) -> Self {
        self.owner = owner.into();
        self.name = format!("{}@{owner}", self.name);
        self
    }

    /// Pages until `hasMore` is false (at most `max_pages`, which must suffice when
    /// `must_finish`); handles `SYNC_EXPIRED`.
    async fn sync(&mut self, g: &Gql, totals: &Totals, max_pages: usize) {
        let g = &g.acting_as(Some(Principal::new(self.owner.clone())));
        totals.syncs.fetch_add(1, Ordering::Relaxed);
        let must_finish = max_pages >= 100_000;
        for _ in 0..max_pages {
            let resp = g
                .run(
                    "query($s: String!, $l: Int, $f: NoteFilter) { syncNotes(lastSync: $s, limit: $l, filter: $f) { lastSync hasMore items { id _version _deleted } } }",
                    json!({"s": self.token, "l": self.limit, "f": self.filter}),
                )
                .await;
            totals.pages.fetch_add(1, Ordering::Relaxed);
            if let Some(tick) = &self.on_page {
                tick();
            }
            if std::env::var("DATASYNC_CHECK_TRACE").is_ok() {
                let p = &resp["data"]["syncNotes"];
                eprintln!(
                    "TRACE {} {} -> {} items {} more {}",
                    self.name,
                    self.token,
                    p["lastSync"],
                    p["items"].as_array().map_or(0, Vec::len),
                    p["hasMore"]
                );
            }
            if let Some(errors) = resp.get("errors") {
                if code(&errors[0]) == "SYNC_EXPIRED" {
                    totals.expired.fetch_add(1, Ordering::Relaxed);
                    self.replica.clear();
                    self.token = "0".into();
                    continue;
                }
                totals.anomaly(format!("{}: sync failed: {resp}", self.name));
                return;
            }
            let page = &resp["data"]["syncNotes"];
            let items = page["items"].as_array().unwrap();
            let has_more = page["hasMore"] == true;
            if items.len() > self.limit as usize || (has_more && items.len() < self.limit as usize)
            {
                totals.anomaly(format!(
                    "{}: page of {} with limit {} and hasMore {has_more}",
                    self.name,
                    items.len(),
                    self.limit
                ));
            }
            for item in items {
                let id = item["id"].as_str().unwrap().to_owned();
                let version = item["_version"].as_i64().unwrap();
                let live = item["_deleted"] == false;
                let seen = self.seen.entry(id.clone()).or_insert(version);
                if version < *seen {
                    totals.anomaly(format!(
                        "{}: {id} went back from version {seen} to {version}",
                        self.name
                    ));
                }
                *seen = (*seen).max(version);
                let entry = self.replica.entry(id).or_insert((version, live));
                if version >= entry.0 {
                    *entry = (version, live);
                }
            }
            self.token = page["lastSync"].as_str().unwrap().to_owned();
            if !has_more {
                return;
            }
        }
        if must_finish {
            totals.anomaly(format!(
                "{}: still hasMore after {max_pages} pages (paging does not end)",
                self.name
            ));
        }
    }

    /// Compares the replica's live records with the server's records of its owner (as an
    /// admin sees them: nobody else's may be in the replica).
    async fn verify(&self, g: &Gql, totals: &Totals) {
        let admin = g.acting_as(Some(Principal::new("checker").with_groups(["admin"])));
        let mine = json!({"owner": {"eq": self.owner}});
        let filter = match &self.filter {
            Json::Null => mine,
            other => json!({"and": [other, mine]}),
        };
        let truth = live_records(&admin, &filter).await;
        let live: BTreeMap<String, i64> = self
            .replica
            .iter()
            .filter(|(_, (_, live))| *live)
            .map(|(id, (v, _))| (id.clone(), *v))
            .collect();
        for (id, v) in &truth {
            match live.get(id) {
                Some(mine) if mine == v => {}
                Some(mine) => totals.anomaly(format!(
                    "{}: {id} at version {mine}, server has {v}",
                    self.name
                )),
                None => totals.anomaly(format!("{}: missing {id} (version {v})", self.name)),
            }
        }
        for (id, v) in &live {
            if !truth.contains_key(id) {
                totals.anomaly(format!(
                    "{}: ghost {id} (version {v}) is not live on the server",
                    self.name
                ));
            }
        }
    }
}

/// The server's live records matching `filter`: id -> version (paged: finds are bounded).
async fn live_records(g: &Gql, filter: &Json) -> BTreeMap<String, i64> {
    let mut truth = BTreeMap::new();
    loop {
        let data = g
            .ok(
                "query($f: NoteFilter, $p: PageRequest) { findNotes(filter: $f, page: $p) { items { id _version } } }",
                json!({"f": filter, "p": {"limit": 1000, "offset": truth.len()}}),
            )
            .await;
        let items = data["findNotes"]["items"].as_array().unwrap();
        for i in items {
            truth.insert(
                i["id"].as_str().unwrap().to_owned(),
                i["_version"].as_i64().unwrap(),
            );
        }
        if items.len() < 1000 {
            return truth;
        }
    }
}

/// One random write through `g`.
async fn write(
    g: &Gql,
    rng: &mut Rng,
    writer: usize,
    ids: &Mutex<Vec<String>>,
    fresh: &AtomicUsize,
    totals: &Totals,
) {
    let known = {
        let ids = ids.lock().unwrap();
        (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize].clone())
    };
    let fields = json!({"title": format!("t{}", rng.below(1000)), "priority": rng.below(100), "done": rng.chance(50), "tags": if rng.chance(50) { json!(["a"]) } else { json!([]) }});
    let roll = rng.below(100);
    let outcome = match known {
        Some(id) if roll < 70 => {
            let got = g
                .ok(
                    "query($id: ID!) { getNote(id: $id) { _version } }",
                    json!({"id": id}),
                )
                .await;
            let Some(version) = got["getNote"]["_version"].as_i64() else {
                return;
            };
            let delete = roll < 15;
            let stale = !delete && version > 1 && rng.chance(20);
            let (op, base) = if delete {
                ("deleteNote", version)
            } else {
                ("updateNote", if stale { version - 1 } else { version })
            };
            let mut input = fields.as_object().unwrap().clone();
            input.insert("id".into(), json!(id));
            input.insert("_version".into(), json!(base));
            let resp = g
                .run(
                    &format!("mutation($i: MutateNoteInput!) {{ {op}(input: $i) {{ _version }} }}"),
                    json!({"i": input}),
                )
                .await;
            match (resp.get("errors"), stale) {
                (None, true) => Err(format!(
                    "writer {writer}: stale update of {id} at {base} succeeded: {resp}"
                )),
                (None, false) => Ok(false),
                (Some(e), _) if code(&e[0]) == "CONFLICT" || code(&e[0]) == "NOT_FOUND" => Ok(true),
                (Some(_), _) => Err(format!("writer {writer}: {op} failed: {resp}")),
            }
        }
        _ => {
            let id = format!("w{writer}-{}", fresh.fetch_add(1, Ordering::SeqCst));
            let mut input = fields.as_object().unwrap().clone();
            input.insert("id".into(), json!(id));
            let resp = g
                .run(
                    "mutation($i: CreateNoteInput!) { createNote(input: $i) { id } }",
                    json!({"i": input}),
                )
                .await;
            ids.lock().unwrap().push(id);
            match resp.get("errors") {
                None => Ok(false),
                Some(_) => Err(format!("writer {writer}: create failed: {resp}")),
            }
        }
    };
    match outcome {
        Ok(conflict) => {
            totals.writes.fetch_add(1, Ordering::Relaxed);
            if conflict {
                totals.conflicts.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(anomaly) => totals.anomaly(anomaly),
    }
}

/// Runs the checker over `instances` (schemas over stores sharing one database).
async fn check(label: &str, instances: Vec<Gql>, base: Arc<AtomicI64>) {
    let seed: u64 = std::env::var("DATASYNC_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let rounds: usize = std::env::var("DATASYNC_CHECK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    println!("sync checker [{label}]: seed {seed}, {rounds} rounds");
    let instances = Arc::new(instances);
    let totals = Arc::new(Totals::default());
    let ids = Arc::new(Mutex::new(Vec::new()));
    let fresh = Arc::new(AtomicUsize::new(0));
    let mut rng = Rng(seed);
    let filters = [
        json!(null),
        json!({"done": {"eq": false}}),
        json!({"priority": {"ge": 50}, "tags": {"eq": "a"}}),
    ];
    // Two owners: each client syncs as one and must end with exactly that owner's records.
    let mut clients: Vec<Client> = [1, 3, 7, 50, 3, 7]
        .iter()
        .enumerate()
        .map(|(i, limit)| {
            Client::new(
                &format!("client{i}(limit {limit})"),
                filters[i % filters.len()].clone(),
                *limit,
            )
            .owned_by(OWNERS[i % OWNERS.len()])
        })
        .collect();
    // The sleeper syncs once, then not again until the writers are done: by then tombstones
    // newer than its token have been purged, so it must be told SYNC_EXPIRED.
    let mut sleeper = Client::new("sleeper", json!(null), 7);

    for round in 0..rounds {
        totals.rounds.fetch_add(1, Ordering::Relaxed);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (instances, ids, fresh, totals) = (
                    Arc::clone(&instances),
                    Arc::clone(&ids),
                    Arc::clone(&fresh),
                    Arc::clone(&totals),
                );
                let mut rng = Rng(seed ^ ((round as u64 + 1) << 8) ^ (w as u64 + 1));
                tokio::spawn(async move {
                    let g = &instances[w % instances.len()]
                        .acting_as(Some(Principal::new(OWNERS[w % OWNERS.len()])));
                    for _ in 0..6 {
                        write(g, &mut rng, w, &ids, &fresh, &totals).await;
                    }
                })
            })
            .collect();
        let readers: Vec<_> = clients
            .drain(..)
            .enumerate()
            .map(|(i, mut client)| {
                let (instances, totals) = (Arc::clone(&instances), Arc::clone(&totals));
                tokio::spawn(async move {
                    let g = &instances[(i + 1) % instances.len()];
                    client.sync(g, &totals, 30).await;
                    client
                })
            })
            .collect();
        // Time also passes while the round runs, so purges race with paging.
        let ticker = {
            let (base, mut rng) = (Arc::clone(&base), Rng(seed ^ round as u64 ^ 0xC10C));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    base.fetch_add(rng.below(60) as i64, Ordering::SeqCst);
                }
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        for r in readers {
            clients.push(r.await.unwrap());
        }
        ticker.abort();
        if round == 0 {
            sleeper.sync(&instances[0], &totals, 1000).await;
        }
        // Time passes: sometimes past the retention of recent tombstones.
        base.fetch_add(rng.below(900) as i64, Ordering::SeqCst);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let g = &instances[i % instances.len()];
        client.sync(g, &totals, 100_000).await;
        client.verify(g, &totals).await;
    }
    let expired_before = totals.expired.load(Ordering::Relaxed);
    sleeper.sync(&instances[0], &totals, 100_000).await;
    sleeper.verify(&instances[0], &totals).await;
    let sleeper_expired = totals.expired.load(Ordering::Relaxed) > expired_before;

    let anomalies = totals.anomalies.lock().unwrap().clone();
    println!(
        "sync checker [{label}]: seed {seed}: rounds {}, writes {}, conflicts {}, syncs {}, pages {}, expired {}, anomalies {}",
        totals.rounds.load(Ordering::Relaxed),
        totals.writes.load(Ordering::Relaxed),
        totals.conflicts.load(Ordering::Relaxed),
        totals.syncs.load(Ordering::Relaxed),
        totals.pages.load(Ordering::Relaxed),
        totals.expired.load(Ordering::Relaxed),
        anomalies.len()
    );
    assert!(
        anomalies.is_empty(),
        "seed {seed}: {} anomalies, first: {}",
        anomalies.len(),
        anomalies[0]
    );
    assert!(
        totals.conflicts.load(Ordering::Relaxed) > 0,
        "seed {seed}: stale writes were tried and rejected"
    );
    if rounds >= 8 {
        assert!(
            sleeper_expired,
            "seed {seed}: the sleeper's token predates a purge, it must get SYNC_EXPIRED"
        );
    }
}

fn options(base: &Arc<AtomicI64>, skew: i64) -> StoreOptions {
    StoreOptions::default()
        .tombstone_retention(RETENTION)
        .purge_interval(Duration::ZERO)
        .clock(SkewedClock {
            base: Arc::clone(base),
            skew,
        })
}

fn start() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(datasync::SystemClock.now_millis()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    let base = start();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::memory_with(options(&base, 0)).await.unwrap());
    check("sqlite", vec![Gql::new(store)], base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo() {
    let base = start();
    let store: Arc<dyn Store> = Arc::new(
        MongoStore::connect_with(&mongodb_uri(), &fresh_database(), options(&base, 0))
            .await
            .unwrap(),
    );
    check("mongo", vec![Gql::new(store)], base).await;
}

/// Three server processes on one MongoDB database, clocks skewed by seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_several_processes_with_skewed_clocks() {
    let base = start();
    let db = fresh_database();
    let mut instances = Vec::new();
    for skew in [0, -1_500, 2_500] {
        let store: Arc<dyn Store> = Arc::new(
            MongoStore::connect_with(&mongodb_uri(), &db, options(&base, skew))
                .await
                .unwrap(),
        );
        instances.push(Gql::new(store));
    }
    check("mongo x3, skewed clocks", instances, base).await;
}

/// One process's clock is far ahead (beyond any timeout): it purges tombstones as soon as it
/// sees them, so clients are often told to resync; none may keep a ghost or miss a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_one_clock_far_ahead() {
    let base = start();
    let db = fresh_database();
    let mut instances = Vec::new();
    for skew in [0, 90_000] {
        let store: Arc<dyn Store> = Arc::new(
            MongoStore::connect_with(&mongodb_uri(), &db, options(&base, skew))
                .await
                .unwrap(),
        );
        instances.push(Gql::new(store));
    }
    check("mongo x2, one clock 90 s ahead", instances, base).await;
}

/// First syncs of a large collection while tombstones fall due all the time: tombstones
/// written before a device started its first sync are purged while it pages, and new ones
/// keep coming. Every device must finish without being told to start over (it never held
/// what those purges removed) and end with exactly the server's records.
async fn first_syncs_under_purges(label: &str, g: Gql, base: Arc<AtomicI64>) {
    const RECORDS: usize = 500;
    const OLD_TOMBSTONES: usize = 150;
    let retention = LONG_RETENTION.as_millis() as i64;
    let seed: u64 = std::env::var("DATASYNC_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED);
    println!("first syncs under purges [{label}]: seed {seed}");
    let mut rng = Rng(seed | 1);
    let totals = Arc::new(Totals::default());
    for i in 0..RECORDS {
        let resp = g
            .run(
                "mutation($i: CreateNoteInput!) { createNote(input: $i) { id } }",
                json!({"i": {"id": format!("r{i:04}"), "title": "t", "priority": rng.below(100), "done": false, "tags": []}}),
            )
            .await;
        assert!(resp.get("errors").is_none(), "{resp}");
    }
    // Deletes spread over one retention before the devices start: they fall due while the
    // devices page.
    for i in 0..OLD_TOMBSTONES {
        let id = format!("r{:04}", i * (RECORDS / OLD_TOMBSTONES));
        g.ok(
            "mutation($i: MutateNoteInput!) { deleteNote(input: $i) { id } }",
            json!({"i": {"id": id, "_version": 1}}),
        )
        .await;
        base.fetch_add(retention / OLD_TOMBSTONES as i64, Ordering::SeqCst);
    }
    // From here the clock moves on, but never a whole retention past the devices' start:
    // only tombstones written before a device started can fall due while it pages.
    let started = base.load(Ordering::SeqCst);
    let cap = started + retention * 9 / 10;
    let advance = move |base: &AtomicI64, ms: i64| {
        let _ = base.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
            Some((t + ms).min(cap).max(t))
        });
    };
    let g = Arc::new(g);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Churn while the devices sync: creates and deletes; the clock moves on.
    let churn = {
        let (g, done, base, totals) = (
            Arc::clone(&g),
            Arc::clone(&done),
            Arc::clone(&base),
            Arc::clone(&totals),
        );
        let mut rng = Rng(seed ^ 0xC4A2);
        tokio::spawn(async move {
            let ids = Mutex::new(Vec::new());
            let fresh = AtomicUsize::new(0);
            while !done.load(Ordering::SeqCst) {
                write(&g, &mut rng, 9, &ids, &fresh, &totals).await;
                advance(&base, 5);
            }
        })
    };
    let devices: Vec<_> = [5, 11, 17]
        .into_iter()
        .map(|limit| {
            let (g, base, totals) = (Arc::clone(&g), Arc::clone(&base), Arc::clone(&totals));
            tokio::spawn(async move {
                let mut client = Client::new(&format!("device(limit {limit})"), json!(null), limit);
                // Each page takes a while on the test clock.
                client.on_page = Some(Arc::new(move || advance(&base, 60)));
                client.sync(&g, &totals, 100_000).await;
                client.on_page = None;
                client
            })
        })
        .collect();
    let mut clients = Vec::new();
    for d in devices {
        clients.push(d.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    churn.await.unwrap();
    let expired = totals.expired.load(Ordering::Relaxed);
    let moved = base.load(Ordering::SeqCst) - started;
    for client in &mut clients {
        client.sync(&g, &totals, 100_000).await;
        client.verify(&g, &totals).await;
    }
    let purged = g
        .store
        .purge_tombstones(<common::app::Note as datasync::Model>::spec())
        .await
        .unwrap();
    let anomalies = totals.anomalies.lock().unwrap().clone();
    println!(
        "first syncs under purges [{label}]: clock moved {moved} ms, pages {}, writes {}, expired {expired}, purged at the end {purged}, anomalies {}",
        totals.pages.load(Ordering::Relaxed),
        totals.writes.load(Ordering::Relaxed),
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "{}", anomalies[0]);
    assert!(
        moved >= retention / 3,
        "the clock moved only {moved} ms: too few old tombstones fell due while the devices paged"
    );
    assert_eq!(
        expired, 0,
        "devices were told to start over by purges of records they never held"
    );
}

/// The retention of [`first_syncs_under_purges`]: far longer than one first sync takes on
/// the test clock, so only tombstones older than the sync fall due during it.
const LONG_RETENTION: Duration = Duration::from_secs(20);

fn long_retention(base: &Arc<AtomicI64>) -> StoreOptions {
    StoreOptions::default()
        .tombstone_retention(LONG_RETENTION)
        .purge_interval(Duration::ZERO)
        .clock(SkewedClock {
            base: Arc::clone(base),
            skew: 0,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_syncs_finish_under_purges_sqlite() {
    let base = start();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::memory_with(long_retention(&base))
            .await
            .unwrap(),
    );
    first_syncs_under_purges("sqlite", Gql::new(store), base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_syncs_finish_under_purges_mongo() {
    let base = start();
    let store: Arc<dyn Store> = Arc::new(
        MongoStore::connect_with(&mongodb_uri(), &fresh_database(), long_retention(&base))
            .await
            .unwrap(),
    );
    first_syncs_under_purges("mongo", Gql::new(store), base).await;
}

const CHANGES: &str = "subscription($s: String, $f: NoteFilter) { noteChanges(lastSync: $s, filter: $f) { lastSync hasMore items { id _version _deleted } } }";

impl Client {
    /// Applies one subscription message; `false` if the subscription ended with an error.
    fn apply(&mut self, message: &Json, totals: &Totals) -> bool {
        if let Some(errors) = message.get("errors") {
            match code(&errors[0]) {
                "SYNC_EXPIRED" => {
                    totals.expired.fetch_add(1, Ordering::Relaxed);
                    self.replica.clear();
                    self.token = "0".into();
                }
                _ => totals.anomaly(format!("{}: subscription failed: {message}", self.name)),
            }
            return false;
        }
        let list = &message["data"]["noteChanges"];
        for item in list["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap().to_owned();
            let version = item["_version"].as_i64().unwrap();
            let live = item["_deleted"] == false;
            let entry = self.replica.entry(id).or_insert((version, live));
            if version >= entry.0 {
                *entry = (version, live);
            }
        }
        self.token = list["lastSync"].as_str().unwrap().to_owned();
        true
    }

    fn live(&self) -> BTreeMap<String, i64> {
        self.replica
            .iter()
            .filter(|(_, (_, live))| *live)
            .map(|(id, (v, _))| (id.clone(), *v))
            .collect()
    }
}

/// A subscriber that keeps disconnecting: reads a few messages, drops the subscription, and
/// subscribes again with the last `lastSync` it received, until told to stop.
async fn flaky_subscriber(
    g: Arc<Gql>,
    mut client: Client,
    totals: Arc<Totals>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
) -> Client {
    use futures_util::StreamExt;
    let mut rng = Rng(seed | 1);
    while !stop.load(Ordering::SeqCst) {
        let mut sub = g.subscribe(CHANGES, json!({"s": client.token, "f": client.filter}));
        for _ in 0..1 + rng.below(6) {
            match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                Ok(Some(message)) => {
                    if !client.apply(&message, &totals) {
                        break;
                    }
                }
                _ => break,
            }
        }
        totals.resumes.fetch_add(1, Ordering::Relaxed);
    }
    client
}

/// Subscribes once more and reads until the replica equals the server's records.
async fn settle(g: &Gql, client: &mut Client, totals: &Totals) {
    use futures_util::StreamExt;
    let truth = live_records(g, &client.filter).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    'resubscribe: loop {
        let mut sub = g.subscribe(CHANGES, json!({"s": client.token, "f": client.filter}));
        loop {
            if client.live() == truth {
                return;
            }
            match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(message)) => {
                    if !client.apply(&message, totals) {
                        continue 'resubscribe;
                    }
                }
                Ok(None) => continue 'resubscribe,
                Err(_) => {
                    let live = client.live();
                    let missing: Vec<_> = truth
                        .iter()
                        .filter(|(id, v)| live.get(*id) != Some(v))
                        .take(5)
                        .collect();
                    let ghosts: Vec<_> = live
                        .keys()
                        .filter(|id| !truth.contains_key(*id))
                        .take(5)
                        .collect();
                    totals.anomaly(format!(
                        "{}: replica differs from the server after resuming: missing or stale {missing:?}, ghosts {ghosts:?}",
                        client.name
                    ));
                    return;
                }
            }
        }
    }
}

/// Writers run while subscribers disconnect and resume from their last token, on every
/// instance (process) in turn; purges race them. Every subscriber must end with exactly the
/// server's records.
async fn subscribers_resume(label: &str, instances: Vec<Gql>, base: Arc<AtomicI64>) {
    let seed: u64 = std::env::var("DATASYNC_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let rounds: usize = std::env::var("DATASYNC_CHECK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    println!("resuming subscribers [{label}]: seed {seed}, {rounds} rounds");
    let instances: Vec<Arc<Gql>> = instances.into_iter().map(Arc::new).collect();
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let filters = [
        json!(null),
        json!({"done": {"eq": false}}),
        json!({"priority": {"ge": 50}, "tags": {"eq": "a"}}),
    ];
    let subscribers: Vec<_> = (0..4)
        .map(|i| {
            let client = Client::new(
                &format!("subscriber{i}"),
                filters[i % filters.len()].clone(),
                0,
            );
            tokio::spawn(flaky_subscriber(
                Arc::clone(&instances[i % instances.len()]),
                client,
                Arc::clone(&totals),
                Arc::clone(&stop),
                seed ^ ((i as u64 + 1) * 0x9E37),
            ))
        })
        .collect();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let fresh = Arc::new(AtomicUsize::new(0));
    let mut rng = Rng(seed);
    for round in 0..rounds {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (g, ids, fresh, totals) = (
                    Arc::clone(&instances[(w + round) % instances.len()]),
                    Arc::clone(&ids),
                    Arc::clone(&fresh),
                    Arc::clone(&totals),
                );
                let mut rng = Rng(seed ^ ((round as u64 + 1) << 8) ^ (w as u64 + 1));
                tokio::spawn(async move {
                    for _ in 0..6 {
                        write(&g, &mut rng, w, &ids, &fresh, &totals).await;
                        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        base.fetch_add(rng.below(900) as i64, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let mut clients = Vec::new();
    for s in subscribers {
        clients.push(s.await.unwrap());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        settle(&instances[(i + 1) % instances.len()], client, &totals).await;
    }
    let anomalies = totals.anomalies.lock().unwrap().clone();
    println!(
        "resuming subscribers [{label}]: seed {seed}: writes {}, resumes {}, expired {}, anomalies {}",
        totals.writes.load(Ordering::Relaxed),
        totals.resumes.load(Ordering::Relaxed),
        totals.expired.load(Ordering::Relaxed),
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "seed {seed}: {}", anomalies[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_resume_sqlite() {
    let base = start();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::memory_with(options(&base, 0)).await.unwrap());
    subscribers_resume("sqlite", vec![Gql::new(store)], base).await;
}

/// Two server processes on one MongoDB database (each with its own hub), clocks skewed:
/// subscribers resume on one while writes go through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_resume_mongo_two_processes() {
    let base = start();
    let db = fresh_database();
    let mut instances = Vec::new();
    for skew in [0, 1_500] {
        let store: Arc<dyn Store> = Arc::new(
            MongoStore::connect_with(&mongodb_uri(), &db, options(&base, skew))
                .await
                .unwrap(),
        );
        instances.push(Gql::new(store));
    }
    subscribers_resume("mongo x2", instances, base).await;
}
