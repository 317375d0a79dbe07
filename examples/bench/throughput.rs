//! Write and sync throughput at three levels, on both stores, in one run: the raw driver
//! (the `mongodb` crate, `rusqlite`) doing the equivalent operations, the [`Repository`], and
//! the GraphQL API over HTTP driven by a Rust load client. Per level and operation: the rate,
//! the ratio to raw, CPU per 1,000 operations, and (MongoDB) database commands per operation,
//! counted with the driver's command monitoring. Then the peak memory of a server while a
//! client syncs a large collection in pages. Prints a table and writes an SVG chart.
//!
//! The HTTP server runs in a child process of this binary (`__throughput-server`), so that
//! its CPU and memory are its own; the raw and repository levels run in this process.
//!
//! [`Repository`]: datasync::Repository

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datasync::async_graphql::MaybeUndefined;
use datasync::http::Authentication;
use datasync::mongodb;
use datasync::{Config, MongoStore, Principal, SqliteStore, Store, StoreOptions, SyncToken};
use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use serde_json::{json, Value as Json};

use crate::app::{CreateNoteInput, MutateNoteInput, Note};
use crate::env::{Mongo, Options};

/// The first argument that makes this binary the HTTP server of the measurement.
pub const SERVER: &str = "__throughput-server";

/// Page size of every full sync.
const PAGE: u32 = 500;

/// The measured operations, in the order they run (sync reads what create wrote).
const OPERATIONS: [&str; 4] = ["create", "sync", "update", "delete"];
const LEVELS: [&str; 3] = ["raw", "repository", "http"];

/// One measured cell: a level doing an operation on a store.
#[derive(Debug, Clone)]
struct Figure {
    store: String,
    level: &'static str,
    operation: &'static str,
    /// Operations (sync: records) per second.
    rate: f64,
    /// CPU time of the process doing the work, per 1,000 operations (sync: records).
    cpu_ms_per_1k: f64,
    /// Database commands per operation (sync: per page), MongoDB only.
    commands_per_op: Option<f64>,
}

/// Counts the commands a MongoDB client sends.
#[derive(Clone, Default)]
struct Commands(Arc<AtomicU64>);

impl Commands {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    async fn database(&self, uri: &str, name: &str) -> Result<mongodb::Database, String> {
        let mut options = mongodb::options::ClientOptions::parse(uri)
            .await
            .map_err(|e| e.to_string())?;
        let count = Arc::clone(&self.0);
        options.command_event_handler = Some(EventHandler::callback(move |e: CommandEvent| {
            if matches!(e, CommandEvent::Started(_)) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let client = mongodb::Client::with_options(options).map_err(|e| e.to_string())?;
        Ok(client.database(name))
    }
}

/// CPU time (user + system) of a process, in milliseconds (Linux).
fn cpu_ms(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
    let total = ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0);
    total * 1000.0 / 100.0
}

/// Resident memory of a process, in bytes (Linux).
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

type Op = Arc<dyn Fn(usize) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Runs `op(0..n)` on `concurrency` tasks; returns the elapsed time.
async fn drive(n: usize, concurrency: usize, op: Op) -> Result<Duration, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (Arc::clone(&next), Arc::clone(&op));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), String>(());
                    }
                    op(i).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(started.elapsed())
}

/// What a level must offer: the four operations, and where its work is counted.
trait Level: Send + Sync {
    fn op(&self, operation: &str) -> Op;
    /// Runs one full sync in pages; returns the records and the pages read.
    fn full_sync(&self) -> BoxFuture<'_, Result<(usize, usize), String>>;
    /// The process doing the work (`None`: this one).
    fn pid(&self) -> Option<u32> {
        None
    }
    /// Database commands sent so far, if counted.
    fn commands(&self) -> Option<u64>;
}

/// Who the benchmark acts as (the notes are owner-scoped).
fn bench_user() -> Principal {
    Principal::new("bench")
}

fn id(i: usize) -> String {
    format!("n{i:07}")
}

fn title(i: usize) -> String {
    format!("note number {i}")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---- raw MongoDB ----------------------------------------------------------------------

/// The mongodb crate writing documents shaped like the store's, with the same version checks.
struct RawMongo {
    db: mongodb::Database,
    commands: Commands,
}

impl Level for RawMongo {
    fn op(&self, operation: &str) -> Op {
        let coll = self.db.collection::<Document>("notes");
        match operation {
            "create" => Arc::new(move |i| {
                let coll = coll.clone();
                Box::pin(async move {
                    let now = now_ms();
                    coll.insert_one(doc! {
                        "_id": id(i), "title": title(i), "priority": 1i32, "done": false,
                        "tags": [], "_version": 1i64, "_deleted": false,
                        "createdAt": now, "updatedAt": now,
                    })
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                })
            }),
            // A conflict-checked write: only if the version is the one the client had.
            "update" | "delete" => {
                let (from, set) = if operation == "update" {
                    (1i64, doc! { "title": "edited" })
                } else {
                    (2i64, doc! { "_deleted": true })
                };
                Arc::new(move |i| {
                    let (coll, mut set) = (coll.clone(), set.clone());
                    Box::pin(async move {
                        set.insert("updatedAt", now_ms());
                        let done = coll
                            .update_one(
                                doc! { "_id": id(i), "_version": from },
                                doc! { "$set": set, "$inc": { "_version": 1i64 } },
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                        if done.matched_count != 1 {
                            return Err(format!("raw write: {} not at version {from}", id(i)));
                        }
                        Ok(())
                    })
                })
            }
            other => unreachable!("{other}"),
        }
    }

    fn full_sync(&self) -> BoxFuture<'_, Result<(usize, usize), String>> {
        Box::pin(async move {
            let coll = self.db.collection::<Document>("notes");
            let (mut after, mut read, mut pages) = (String::new(), 0, 0);
            loop {
                pages += 1;
                let page: Vec<Document> = coll
                    .find(doc! { "_id": { "$gt": after.as_str() } })
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(PAGE))
                    .batch_size(PAGE)
                    .await
                    .map_err(|e| e.to_string())?
                    .try_collect()
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else {
                    return Ok((read, pages));
                };
                after = last.get_str("_id").map_err(|e| e.to_string())?.to_owned();
                // Decoded, as a client would.
                read += page
                    .into_iter()
                    .map(|d| serde_json::to_value(d).map(drop))
                    .filter(Result::is_ok)
                    .count();
            }
        })
    }

    fn commands(&self) -> Option<u64> {
        Some(self.commands.get())
    }
}

// ---- raw SQLite -----------------------------------------------------------------------

/// rusqlite on a WAL file with the store's settings: one row per record (metadata columns
/// plus the data as JSON), the same version checks.
struct RawSqlite {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl RawSqlite {
    fn open(path: &std::path::Path) -> Result<RawSqlite, String> {
        let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        conn.execute_batch(
            "CREATE TABLE notes (id TEXT PRIMARY KEY, version INTEGER NOT NULL, \
             deleted INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, \
             data TEXT NOT NULL)",
        )
        .map_err(|e| e.to_string())?;
        Ok(RawSqlite {
            conn: Arc::new(Mutex::new(conn)),
        })
    }
}

impl Level for RawSqlite {
    fn op(&self, operation: &str) -> Op {
        let conn = Arc::clone(&self.conn);
        let operation = operation.to_owned();
        Arc::new(move |i| {
            let (conn, operation) = (Arc::clone(&conn), operation.clone());
            Box::pin(async move {
                let conn = conn.lock().map_err(|e| e.to_string())?;
                let now = now_ms();
                let changed = match operation.as_str() {
                    "create" => {
                        let data =
                            json!({"title": title(i), "priority": 1, "done": false, "tags": []});
                        conn.prepare_cached("INSERT INTO notes VALUES (?1, 1, 0, ?2, ?2, ?3)")
                            .and_then(|mut s| {
                                s.execute(rusqlite::params![id(i), now, data.to_string()])
                            })
                    }
                    "update" => conn
                        .prepare_cached(
                            "UPDATE notes SET data = json_set(data, '$.title', 'edited'), \
                             version = version + 1, updated_at = ?2 WHERE id = ?1 AND version = 1",
                        )
                        .and_then(|mut s| s.execute(rusqlite::params![id(i), now])),
                    _ => conn
                        .prepare_cached(
                            "UPDATE notes SET deleted = 1, version = version + 1, updated_at = ?2 \
                             WHERE id = ?1 AND version = 2",
                        )
                        .and_then(|mut s| s.execute(rusqlite::params![id(i), now])),
                }
                .map_err(|e| e.to_string())?;
                if changed != 1 {
                    return Err(format!("raw {operation} of {} changed nothing", id(i)));
                }
                Ok(())
            })
        })
    }

    fn full_sync(&self) -> BoxFuture<'_, Result<(usize, usize), String>> {
        Box::pin(async move {
            let conn = self.conn.lock().map_err(|e| e.to_string())?;
            let mut statement = conn
                .prepare_cached(
                    "SELECT id, version, deleted, created_at, updated_at, data FROM notes \
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(|e| e.to_string())?;
            let (mut after, mut read, mut pages) = (String::new(), 0, 0);
            loop {
                pages += 1;
                let rows = statement
                    .query_map(rusqlite::params![after, PAGE], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(5)?))
                    })
                    .map_err(|e| e.to_string())?;
                let mut n = 0;
                for row in rows {
                    let (id, data) = row.map_err(|e| e.to_string())?;
                    // Decoded, as a client would.
                    serde_json::from_str::<Json>(&data).map_err(|e| e.to_string())?;
                    after = id;
                    n += 1;
                }
                if n == 0 {
                    return Ok((read, pages));
                }
                read += n;
            }
        })
    }

    fn commands(&self) -> Option<u64> {
        None
    }
}

// ---- the repository -------------------------------------------------------------------

struct Repo {
    store: Arc<dyn Store>,
    commands: Option<Commands>,
}

fn create_input(i: usize) -> CreateNoteInput {
    CreateNoteInput {
        id: Some(id(i).into()),
        title: title(i),
        description: None,
        priority: 1,
        done: false,
        tags: Vec::new(),
    }
}

impl Level for Repo {
    fn op(&self, operation: &str) -> Op {
        let notes = Arc::new(Note::repository(&self.store).for_principal(bench_user()));
        match operation {
            "create" => Arc::new(move |i| {
                let notes = Arc::clone(&notes);
                Box::pin(async move {
                    notes
                        .create(create_input(i))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            }),
            "update" => Arc::new(move |i| {
                let notes = Arc::clone(&notes);
                Box::pin(async move {
                    let input = MutateNoteInput {
                        id: id(i).into(),
                        _version: 1,
                        title: MaybeUndefined::Value("edited".into()),
                        ..Default::default()
                    };
                    notes
                        .update(input)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            }),
            _ => Arc::new(move |i| {
                let notes = Arc::clone(&notes);
                Box::pin(async move {
                    notes
                        .delete(&id(i), 2)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            }),
        }
    }

    fn full_sync(&self) -> BoxFuture<'_, Result<(usize, usize), String>> {
        Box::pin(async move {
            let notes = Note::repository(&self.store).for_principal(bench_user());
            let (mut token, mut read, mut pages) = (SyncToken::ZERO, 0, 0);
            loop {
                pages += 1;
                let delta = notes
                    .sync(token, None, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                read += delta.items.len();
                token = delta.last_sync;
                if !delta.has_more {
                    return Ok((read, pages));
                }
            }
        })
    }

    fn commands(&self) -> Option<u64> {
        self.commands.as_ref().map(Commands::get)
    }
}

// ---- GraphQL over HTTP ----------------------------------------------------------------

/// The notes schema served by a child process, driven with reqwest.
struct Http {
    url: String,
    client: reqwest::Client,
    server: Mutex<Server>,
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(kind: &str, mongo: Option<&Mongo>) -> Result<(Server, String), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = std::process::Command::new(exe);
        command
            .args([SERVER, kind])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(mongo) = mongo {
            command.env("MONGODB_URI", &mongo.uri);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let stdin = child.stdin.take().ok_or("no server stdin")?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            child,
            stdin,
            lines,
        };
        let addr = server.answer("listening ")?;
        Ok((server, format!("http://{addr}/graphql")))
    }

    /// The next line of the server that starts with `prefix`, without it.
    fn answer(&mut self, prefix: &str) -> Result<String, String> {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(900))
                .map_err(|_| format!("the server did not answer {prefix:?}"))?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_owned());
            }
        }
    }

    fn ask(&mut self, command: &str, prefix: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}").map_err(|e| e.to_string())?;
        self.answer(prefix)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Http {
    async fn post(client: &reqwest::Client, url: &str, body: Json) -> Result<Json, String> {
        let response: Json = client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(errors) = response.get("errors") {
            return Err(format!("GraphQL errors: {errors}"));
        }
        Ok(response)
    }
}

impl Level for Http {
    fn op(&self, operation: &str) -> Op {
        let (client, url) = (self.client.clone(), self.url.clone());
        let query = match operation {
            "create" => "mutation($i: CreateNoteInput!) { createNote(input: $i) { id _version } }",
            "update" => "mutation($i: MutateNoteInput!) { updateNote(input: $i) { id _version } }",
            _ => "mutation($i: MutateNoteInput!) { deleteNote(input: $i) { id _version } }",
        };
        let operation = operation.to_owned();
        Arc::new(move |i| {
            let (client, url) = (client.clone(), url.clone());
            let input = match operation.as_str() {
                "create" => {
                    json!({"id": id(i), "title": title(i), "priority": 1, "done": false, "tags": []})
                }
                "update" => json!({"id": id(i), "_version": 1, "title": "edited"}),
                _ => json!({"id": id(i), "_version": 2}),
            };
            Box::pin(async move {
                Http::post(
                    &client,
                    &url,
                    json!({"query": query, "variables": {"i": input}}),
                )
                .await
                .map(drop)
            })
        })
    }

    fn full_sync(&self) -> BoxFuture<'_, Result<(usize, usize), String>> {
        Box::pin(async move {
            let query = "query($s: String, $l: Int) { syncNotes(lastSync: $s, limit: $l) { \
                         items { id title description priority done tags _version _deleted \
                         updatedAt } lastSync hasMore } }";
            let (mut token, mut read, mut pages) = (Json::from("0"), 0, 0);
            loop {
                pages += 1;
                let body = json!({"query": query, "variables": {"s": token, "l": PAGE}});
                let response = Http::post(&self.client, &self.url, body).await?;
                let page = &response["data"]["syncNotes"];
                read += page["items"].as_array().map_or(0, Vec::len);
                token = page["lastSync"].clone();
                if page["hasMore"] != true {
                    return Ok((read, pages));
                }
            }
        })
    }

    fn pid(&self) -> Option<u32> {
        Some(self.server.lock().ok()?.child.id())
    }

    fn commands(&self) -> Option<u64> {
        let mut server = self.server.lock().ok()?;
        server.ask("commands", "commands ").ok()?.parse().ok()
    }
}

/// The HTTP server process: `__throughput-server STORE`. Prints `listening ADDR`, then
/// answers `commands` (MongoDB commands sent so far) and `seed N` (creates N notes through
/// the repository, answers `seeded`) on standard input.
pub async fn server(args: &[String]) -> ExitCode {
    let [kind] = args else {
        return ExitCode::from(2);
    };
    match serve(kind).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(kind: &str) -> Result<(), String> {
    let commands = Commands::default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = open_store(kind, &commands, &dir.path().join("notes.db")).await?;
    let schema = crate::app::schema_with(store.clone(), Config::default());
    let router = crate::app::router(schema, Authentication::As(bench_user()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = datasync::axum::serve(listener, router).await;
    });
    println!("listening {addr}");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        match line.split_once(' ') {
            Some(("seed", n)) => {
                let n: usize = n.parse().map_err(|_| "seed N")?;
                let repo = Repo {
                    store: store.clone(),
                    commands: None,
                };
                drive(n, 16, repo.op("create")).await?;
                println!("seeded");
            }
            _ if line == "commands" && kind == "sqlite" => println!("commands -"),
            _ if line == "commands" => println!("commands {}", commands.get()),
            _ => return Err(format!("unknown command {line:?}")),
        }
    }
    Ok(())
}

/// A fresh store: SQLite in a file at `path`, or a fresh MongoDB database whose commands
/// `commands` counts.
async fn open_store(
    kind: &str,
    commands: &Commands,
    path: &std::path::Path,
) -> Result<Arc<dyn Store>, String> {
    if kind == "sqlite" {
        return Ok(Arc::new(
            SqliteStore::open(path).await.map_err(|e| e.to_string())?,
        ));
    }
    let uri = std::env::var("MONGODB_URI").map_err(|_| "no MONGODB_URI")?;
    let db = commands.database(&uri, &fresh_name()).await?;
    Ok(Arc::new(MongoStore::from_database(
        db,
        StoreOptions::default(),
    )))
}

fn fresh_name() -> String {
    format!(
        "bench_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

// ---- the run --------------------------------------------------------------------------

pub async fn run(options: &Options, mongo: Option<&Mongo>) -> Result<(), String> {
    let (n, concurrency) = (options.ops, options.concurrency);
    println!(
        "\n== throughput: {n} operations per cell, {concurrency} concurrent clients, sync pages of {PAGE}"
    );
    let mut figures = Vec::new();
    let mut memory = Vec::new();
    for kind in &options.stores {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        if let Some(mongo) = mongo {
            // The child processes and `open_store` read it.
            std::env::set_var("MONGODB_URI", &mongo.uri);
        }
        for level in LEVELS {
            let subject: Box<dyn Level> = match (kind.as_str(), level) {
                ("sqlite", "raw") => Box::new(RawSqlite::open(&dir.path().join("raw.db"))?),
                ("mongo", "raw") => {
                    let commands = Commands::default();
                    let uri = &mongo.ok_or("no MongoDB")?.uri;
                    let db = commands.database(uri, &fresh_name()).await?;
                    Box::new(RawMongo { db, commands })
                }
                (_, "repository") => {
                    let commands = Commands::default();
                    let path = dir.path().join("repository.db");
                    let store = open_store(kind, &commands, &path).await?;
                    Box::new(Repo {
                        store,
                        commands: (kind == "mongo").then_some(commands),
                    })
                }
                _ => {
                    let (server, url) = Server::start(kind, mongo)?;
                    Box::new(Http {
                        url,
                        client: reqwest::Client::new(),
                        server: Mutex::new(server),
                    })
                }
            };
            for operation in OPERATIONS {
                let figure = measure(kind, level, operation, subject.as_ref(), n, concurrency)
                    .await
                    .map_err(|e| format!("{kind} {level} {operation}: {e}"))?;
                println!(
                    "{:<7} {:<10} {:<7} {:>9.0}/s  cpu {:>6.1} ms/1k  {}",
                    figure.store,
                    figure.level,
                    figure.operation,
                    figure.rate,
                    figure.cpu_ms_per_1k,
                    figure
                        .commands_per_op
                        .map(|c| format!(
                            "{c:.2} commands/{}",
                            if operation == "sync" { "page" } else { "op" }
                        ))
                        .unwrap_or_default()
                );
                figures.push(figure);
            }
        }
        memory.push((
            kind.clone(),
            sync_memory(kind, mongo, options.sync_records).await?,
        ));
    }
    print_table(&figures, &memory);
    let svg = chart(&figures);
    let path = options.svg.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/bench/throughput.svg")
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&path, svg).map_err(|e| e.to_string())?;
    println!("chart: {}", path.display());
    Ok(())
}

async fn measure(
    kind: &str,
    level: &'static str,
    operation: &'static str,
    subject: &dyn Level,
    n: usize,
    concurrency: usize,
) -> Result<Figure, String> {
    let pid = subject.pid();
    let (cpu_before, commands_before) = (cpu_ms(pid), subject.commands());
    let (elapsed, units, commands_per) = if operation == "sync" {
        let started = Instant::now();
        let (read, pages) = subject.full_sync().await?;
        if read != n {
            return Err(format!("a full sync read {read} records, not {n}"));
        }
        (started.elapsed(), read, pages)
    } else {
        (drive(n, concurrency, subject.op(operation)).await?, n, n)
    };
    let commands = match (commands_before, subject.commands()) {
        (Some(before), Some(after)) => Some((after - before) as f64 / commands_per as f64),
        _ => None,
    };
    Ok(Figure {
        store: kind.to_owned(),
        level,
        operation,
        rate: units as f64 / elapsed.as_secs_f64(),
        cpu_ms_per_1k: (cpu_ms(pid) - cpu_before) * 1000.0 / units as f64,
        commands_per_op: commands,
    })
}

/// A server process while a client syncs a large collection from "0" in pages over HTTP.
struct LargeSync {
    records: usize,
    /// Resident memory before the sync and at its peak, in bytes.
    baseline: u64,
    peak: u64,
    /// MongoDB commands per page.
    commands_per_page: Option<f64>,
}

/// Memory and commands of a server process while a client syncs `records` records.
async fn sync_memory(
    kind: &str,
    mongo: Option<&Mongo>,
    records: usize,
) -> Result<LargeSync, String> {
    let (mut server, url) = Server::start(kind, mongo)?;
    println!("{kind}: seeding {records} records for the memory measurement");
    server.ask(&format!("seed {records}"), "seeded")?;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_of(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (peak, watching) = (Arc::clone(&peak), Arc::clone(&watching));
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let http = Http {
        url,
        client: reqwest::Client::new(),
        server: Mutex::new(server),
    };
    let commands_before = http.commands();
    let read = http.full_sync().await;
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    let (read, pages) = read?;
    let commands_per_page = match (commands_before, http.commands()) {
        (Some(before), Some(after)) => Some((after - before) as f64 / pages as f64),
        _ => None,
    };
    if read != records {
        return Err(format!(
            "the memory sync read {read} records, not {records}"
        ));
    }
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "{kind}: syncing {records} records in {pages} pages: server RSS {:.1} MB -> peak {:.1} MB (+{:.1} MB){}",
        mb(baseline),
        mb(peak),
        mb(peak.saturating_sub(baseline)),
        commands_per_page
            .map(|c| format!(", {c:.2} commands per page"))
            .unwrap_or_default()
    );
    Ok(LargeSync {
        records,
        baseline,
        peak,
        commands_per_page,
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn print_table(figures: &[Figure], memory: &[(String, LargeSync)]) {
    println!("\n| store | operation | raw driver | repository | GraphQL over HTTP | server CPU per 1k (repository / HTTP) | MongoDB commands per op (raw / repository) |");
    println!("|---|---|---|---|---|---|---|");
    let stores: Vec<&str> = {
        let mut s: Vec<&str> = figures.iter().map(|f| f.store.as_str()).collect();
        s.dedup();
        s
    };
    for store in stores {
        for operation in OPERATIONS {
            let cell = |level: &str| {
                figures
                    .iter()
                    .find(|f| f.store == store && f.level == level && f.operation == operation)
            };
            let (Some(raw), Some(repo), Some(http)) =
                (cell("raw"), cell("repository"), cell("http"))
            else {
                continue;
            };
            let unit = if operation == "sync" { " records" } else { "" };
            let rate = |f: &Figure| {
                if f.level == "raw" {
                    format!("{:.0}{unit}/s", f.rate)
                } else {
                    format!("{:.0}{unit}/s ({:.2}x)", f.rate, f.rate / raw.rate)
                }
            };
            let commands = |f: &Figure| {
                f.commands_per_op
                    .map_or("-".to_owned(), |c| format!("{c:.2}"))
            };
            println!(
                "| {store} | {operation}{} | {} | {} | {} | {:.0} ms / {:.0} ms | {} / {} |",
                if operation == "sync" {
                    " (full, per page)"
                } else {
                    ""
                },
                rate(raw),
                rate(repo),
                rate(http),
                repo.cpu_ms_per_1k,
                http.cpu_ms_per_1k,
                commands(raw),
                commands(repo),
            );
        }
    }
    println!("\n| store | records synced from \"0\" over HTTP | server memory before | peak | growth | commands per page |");
    println!("|---|---|---|---|---|---|");
    for (store, sync) in memory {
        println!(
            "| {store} | {} | {:.1} MB | {:.1} MB | {:.1} MB | {} |",
            sync.records,
            mb(sync.baseline),
            mb(sync.peak),
            mb(sync.peak.saturating_sub(sync.baseline)),
            sync.commands_per_page
                .map_or("-".to_owned(), |c| format!("{c:.2}"))
        );
    }
}

/// A bar chart: one panel per store (row) and operation (column), each on its own scale,
/// with one bar per level.
fn chart(figures: &[Figure]) -> String {
    const PANEL_W: f64 = 300.0;
    const BAR_H: f64 = 18.0;
    const LEFT: f64 = 70.0;
    let colors = [
        ("raw", "#9e9e9e"),
        ("repository", "#1f77b4"),
        ("http", "#ff7f0e"),
    ];
    let mut stores: Vec<&str> = figures.iter().map(|f| f.store.as_str()).collect();
    stores.dedup();
    let panel_h = 30.0 + LEVELS.len() as f64 * BAR_H;
    let width = LEFT + OPERATIONS.len() as f64 * (PANEL_W + 20.0);
    let height = 20.0 + stores.len() as f64 * panel_h + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (row, store) in stores.iter().enumerate() {
        let y0 = 20.0 + row as f64 * panel_h;
        svg += &format!(
            "<text x=\"8\" y=\"{:.1}\" font-weight=\"bold\">{store}</text>\n",
            y0 + panel_h / 2.0 + 4.0
        );
        for (column, operation) in OPERATIONS.iter().enumerate() {
            let x0 = LEFT + column as f64 * (PANEL_W + 20.0);
            let cells: Vec<&Figure> = figures
                .iter()
                .filter(|f| f.store == *store && f.operation == *operation)
                .collect();
            let max = cells.iter().map(|f| f.rate).fold(1.0, f64::max);
            let unit = if *operation == "sync" {
                "records/s"
            } else {
                "ops/s"
            };
            svg += &format!(
                "<text x=\"{x0}\" y=\"{:.1}\">{operation} ({unit})</text>\n",
                y0 + 12.0
            );
            for (i, (level, color)) in colors.iter().enumerate() {
                let Some(f) = cells.iter().find(|f| f.level == *level) else {
                    continue;
                };
                let y = y0 + 18.0 + i as f64 * BAR_H;
                let w = (f.rate / max * (PANEL_W - 80.0)).max(1.0);
                svg += &format!(
                    "<rect x=\"{x0}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\">{:.0}</text>\n",
                    BAR_H - 4.0,
                    x0 + w + 4.0,
                    y + BAR_H - 7.0,
                    f.rate
                );
            }
        }
    }
    let mut x = LEFT;
    for (level, color) in colors {
        let label = match level {
            "raw" => "raw driver",
            "repository" => "Repository",
            _ => "GraphQL over HTTP",
        };
        svg += &format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{label}</text>\n",
            height - 28.0,
            x + 16.0,
            height - 18.0
        );
        x += 160.0;
    }
    svg += "</svg>\n";
    svg
}
