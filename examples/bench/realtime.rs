//! Realtime delivery with many concurrent subscribers on one server process: latency from a
//! committed write to delivery (p50, p99), store reads per second (flat however many
//! subscribers there are), and server memory per idle subscriber.
//!
//! The server (this process) serves the notes schema with `datasync::http::router`; a child
//! process of this binary opens WebSocket connections (`graphql-transport-ws`, 100
//! subscriptions each by default) and subscribes `noteChanges` N times. The server then
//! writes notes through the repository, each titled with the time it was sent; the client
//! measures, per delivered item, the time from that moment to its arrival.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datasync::http::HttpConfig;
use datasync::{Config, Store};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::app::{CreateNoteInput, Note};
use crate::env::{self, Mongo, Options};

/// The first argument that makes this binary the load client.
pub const CLIENT: &str = "__realtime-client";
/// The first argument that makes this binary the server of one measurement (each in a fresh
/// process, so that memory figures do not include what earlier runs left allocated).
pub const SERVER: &str = "__realtime-server";

/// Time between two writes.
const WRITE_EVERY: Duration = Duration::from_millis(150);

struct Row {
    store: String,
    subscribers: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    delivered: u64,
    expected: u64,
    reads_per_s: f64,
    kb_per_subscriber: f64,
}

pub async fn run(options: &Options, mongo: Option<&Mongo>) -> Result<(), String> {
    println!(
        "\n== realtime: write -> delivery, {} writes per run, {} subscriptions per connection",
        options.writes, options.per_connection
    );
    let mut rows = Vec::new();
    for kind in &options.stores {
        for &n in &options.subscribers {
            let row = measure_in_process(kind, n, options, mongo)?;
            println!(
                "{:<7} {:>6} subscribers: p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  delivered {}/{}  reads {:>5.1}/s  {:>5.1} KB/subscriber",
                row.store, row.subscribers, row.p50_ms, row.p99_ms, row.max_ms, row.delivered, row.expected, row.reads_per_s, row.kb_per_subscriber
            );
            rows.push(row);
        }
    }
    println!(
        "\n| store | subscribers | p50 | p99 | store reads/s | server memory per idle subscriber |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} | {:.1} KB |",
            r.store, r.subscribers, r.p50_ms, r.p99_ms, r.reads_per_s, r.kb_per_subscriber
        );
    }
    Ok(())
}

/// Runs [`measure`] in a fresh process of this binary.
fn measure_in_process(
    kind: &str,
    subscribers: usize,
    options: &Options,
    mongo: Option<&Mongo>,
) -> Result<Row, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(exe);
    command.args([
        SERVER,
        kind,
        &subscribers.to_string(),
        &options.per_connection.to_string(),
        &options.writes.to_string(),
    ]);
    if let Some(mongo) = mongo {
        command.env("MONGODB_URI", &mongo.uri);
    }
    let out = command.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("row ")) else {
        return Err(format!(
            "the measurement failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    let row: Json = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let f = |k: &str| row[k].as_f64().unwrap_or(0.0);
    Ok(Row {
        store: kind.to_owned(),
        subscribers,
        p50_ms: f("p50_ms"),
        p99_ms: f("p99_ms"),
        max_ms: f("max_ms"),
        delivered: row["delivered"].as_u64().unwrap_or(0),
        expected: row["expected"].as_u64().unwrap_or(0),
        reads_per_s: f("reads_per_s"),
        kb_per_subscriber: f("kb_per_subscriber"),
    })
}

/// One measurement, as a process: `__realtime-server STORE SUBSCRIBERS PER_CONNECTION WRITES`;
/// prints `row {json}`.
pub async fn server(args: &[String]) -> ExitCode {
    let [kind, subscribers, per_connection, writes] = args else {
        return ExitCode::from(2);
    };
    let (Ok(subscribers), Ok(per_connection), Ok(writes)) = (
        subscribers.parse::<usize>(),
        per_connection.parse::<usize>(),
        writes.parse::<usize>(),
    ) else {
        return ExitCode::from(2);
    };
    let mongo = std::env::var("MONGODB_URI").ok().map(Mongo::existing);
    let options = Options {
        per_connection,
        writes,
        ..Options::default()
    };
    match measure(kind, subscribers, &options, mongo.as_ref()).await {
        Ok(row) => {
            let row = json!({
                "p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "max_ms": row.max_ms,
                "delivered": row.delivered, "expected": row.expected,
                "reads_per_s": row.reads_per_s, "kb_per_subscriber": row.kb_per_subscriber,
            });
            println!("row {row}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(
    kind: &str,
    subscribers: usize,
    options: &Options,
    mongo: Option<&Mongo>,
) -> Result<Row, String> {
    let store = env::store(kind, mongo).await?;
    let hub = store.hub().ok_or("the store has no hub")?;
    let notes = Note::repository(&store).for_principal(datasync::Principal::new("bench"));
    let create = |title: String| CreateNoteInput {
        id: None,
        title,
        description: None,
        priority: 1,
        done: false,
        tags: Vec::new(),
    };
    notes
        .create(create("warm-up".into()))
        .await
        .map_err(|e| e.to_string())?;
    let schema = crate::app::schema_with(store.clone(), Config::default());
    let router = datasync::http::router_with(
        schema,
        HttpConfig::default()
            .subscriptions_per_connection(options.per_connection)
            .authentication(datasync::http::Authentication::As(
                datasync::Principal::new("bench"),
            )),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        let _ = datasync::axum::serve(listener, router).await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = env::rss();

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args([
            CLIENT,
            &addr.to_string(),
            &subscribers.to_string(),
            &options.per_connection.to_string(),
            &options.writes.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no client output")?;
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = tokio::time::timeout(Duration::from_secs(300), lines.recv())
        .await
        .map_err(|_| "the client did not get ready")?
        .ok_or("the client ended")?;
    if line != "ready" {
        return Err(format!("client: {line}"));
    }
    while hub.stats().subscribers < subscribers {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = env::rss();

    let reads_before = hub.stats().reads;
    let started = Instant::now();
    for _ in 0..options.writes {
        notes
            .create(create(env::now_micros().to_string()))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(WRITE_EVERY).await;
    }
    let result = tokio::time::timeout(Duration::from_secs(300), lines.recv())
        .await
        .map_err(|_| "the client did not finish")?
        .ok_or("the client ended without a result")?;
    let elapsed = started.elapsed().as_secs_f64();
    let reads = hub.stats().reads - reads_before;
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let result: Json = serde_json::from_str(result.trim_start_matches("done "))
        .map_err(|e| format!("client result {result:?}: {e}"))?;
    let ms = |key: &str| result[key].as_f64().unwrap_or(0.0) / 1000.0;
    Ok(Row {
        store: kind.to_owned(),
        subscribers,
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        max_ms: ms("max"),
        delivered: result["delivered"].as_u64().unwrap_or(0),
        expected: (subscribers * options.writes) as u64,
        reads_per_s: reads as f64 / elapsed,
        kb_per_subscriber: idle.saturating_sub(before) as f64 / 1024.0 / subscribers as f64,
    })
}

/// The load client: `__realtime-client ADDR SUBSCRIBERS PER_CONNECTION WRITES`.
pub async fn client(args: &[String]) -> ExitCode {
    let [addr, subscribers, per_connection, writes] = args else {
        eprintln!("usage: {CLIENT} ADDR SUBSCRIBERS PER_CONNECTION WRITES");
        return ExitCode::from(2);
    };
    let (Ok(subscribers), Ok(per_connection), Ok(writes)) = (
        subscribers.parse::<usize>(),
        per_connection.parse::<usize>(),
        writes.parse::<usize>(),
    ) else {
        return ExitCode::from(2);
    };
    let ready = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(subscribers * writes)));
    let mut tasks = Vec::new();
    let mut left = subscribers;
    while left > 0 {
        let count = left.min(per_connection);
        left -= count;
        let (addr, ready, samples) = (addr.clone(), Arc::clone(&ready), Arc::clone(&samples));
        tasks.push(tokio::spawn(async move {
            connection(&addr, count, writes, &ready, &samples).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready.load(Ordering::SeqCst) < subscribers {
        if Instant::now() > deadline {
            println!("not all subscriptions started");
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ready");
    for task in tasks {
        if let Ok(Err(e)) = tokio::time::timeout_at(deadline.into(), task)
            .await
            .unwrap_or(Ok(Ok(())))
        {
            eprintln!("connection: {e}");
        }
    }
    let mut samples = samples.lock().unwrap().clone();
    samples.sort_unstable();
    let result = json!({
        "delivered": samples.len(),
        "p50": env::quantile(&samples, 0.5),
        "p99": env::quantile(&samples, 0.99),
        "max": samples.last().copied().unwrap_or(0),
    });
    println!("done {result}");
    ExitCode::SUCCESS
}

/// One WebSocket connection with `count` subscriptions; records a latency per item until each
/// subscription has seen `writes` items.
async fn connection(
    addr: &str,
    count: usize,
    writes: usize,
    ready: &AtomicUsize,
    samples: &Mutex<Vec<u64>>,
) -> Result<(), String> {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    let send = |v: Json| Message::Text(v.to_string().into());
    socket
        .send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .map_err(|e| e.to_string())?;
    for i in 0..count {
        socket
            .send(send(json!({"id": i.to_string(), "type": "subscribe", "payload": {"query": "subscription { noteChanges { items { title } } }"}})))
            .await
            .map_err(|e| e.to_string())?;
    }
    let wanted = count * writes;
    let mut received = 0usize;
    let mut local = Vec::with_capacity(wanted);
    while received < wanted {
        let Some(message) = socket.next().await else {
            break;
        };
        let Message::Text(text) = message.map_err(|e| e.to_string())? else {
            continue;
        };
        let now = env::now_micros();
        let message: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if message["type"] != "next" {
            continue;
        }
        let items = &message["payload"]["data"]["noteChanges"]["items"];
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        if items.is_empty() {
            ready.fetch_add(1, Ordering::SeqCst);
        }
        for item in items {
            if let Some(sent) = item["title"].as_str().and_then(|t| t.parse::<u64>().ok()) {
                local.push(now.saturating_sub(sent));
                received += 1;
            }
        }
    }
    samples.lock().unwrap().extend(local);
    let _ = socket.close(None).await;
    Ok(())
}
