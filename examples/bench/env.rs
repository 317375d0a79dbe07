//! What the benchmarks share: options, the stores under test, process measurements.

use std::path::PathBuf;
use std::sync::Arc;

use datasync::{MongoStore, SqliteStore, Store};

pub const USAGE: &str = "usage: bench [all|throughput|realtime|rxdb] [--stores sqlite,mongo] [--ops 2000] [--concurrency 8] [--sync-records 100000] [--svg PATH] [--subscribers 1000,10000] [--per-connection 100] [--writes 20] [--docs 10000] [--edits 1000]";

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    pub what: String,
    pub stores: Vec<String>,
    pub subscribers: Vec<usize>,
    pub per_connection: usize,
    pub writes: usize,
    /// RxDB: notes a fresh client pulls.
    pub docs: usize,
    /// RxDB: edits timed from one client to another.
    pub edits: usize,
    /// Throughput: operations per measured cell.
    pub ops: usize,
    /// Throughput: concurrent clients.
    pub concurrency: usize,
    /// Throughput: records a client syncs while the server's memory is watched.
    pub sync_records: usize,
    /// Throughput: where the chart goes (default `docs/bench/throughput.svg`).
    pub svg: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            what: "all".into(),
            stores: vec!["sqlite".into(), "mongo".into()],
            subscribers: vec![1000, 10_000],
            per_connection: 100,
            writes: 20,
            docs: 10_000,
            edits: 1_000,
            ops: 2_000,
            concurrency: 8,
            sync_records: 100_000,
            svg: None,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} needs a value"))
            };
            let list = |v: String| -> Result<Vec<usize>, String> {
                v.split(',')
                    .map(|n| n.trim().parse().map_err(|_| format!("not a number: {n}")))
                    .collect()
            };
            match arg.as_str() {
                "all" | "throughput" | "realtime" | "rxdb" => options.what = arg.clone(),
                "--stores" => {
                    options.stores = value()?.split(',').map(str::to_owned).collect();
                    if let Some(bad) = options
                        .stores
                        .iter()
                        .find(|s| !matches!(s.as_str(), "sqlite" | "mongo"))
                    {
                        return Err(format!("unknown store {bad}"));
                    }
                }
                "--subscribers" => options.subscribers = list(value()?)?,
                "--per-connection" => options.per_connection = list(value()?)?[0].max(1),
                "--writes" => options.writes = list(value()?)?[0].max(1),
                "--docs" => options.docs = list(value()?)?[0].max(1),
                "--edits" => options.edits = list(value()?)?[0].max(1),
                "--ops" => options.ops = list(value()?)?[0].max(1),
                "--concurrency" => options.concurrency = list(value()?)?[0].max(1),
                "--sync-records" => options.sync_records = list(value()?)?[0].max(1),
                "--svg" => options.svg = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }

    pub fn runs(&self, part: &str) -> bool {
        self.what == "all" || self.what == part
    }

    pub fn mongo(&self) -> bool {
        self.stores.iter().any(|s| s == "mongo")
    }
}

/// A MongoDB to measure against: `MONGODB_URI`, or a test server of our own.
pub struct Mongo {
    pub uri: String,
    state: Option<PathBuf>,
}

impl Mongo {
    /// A MongoDB somebody else runs.
    pub fn existing(uri: String) -> Mongo {
        Mongo { uri, state: None }
    }

    pub async fn start(options: &Options) -> Result<Option<Mongo>, String> {
        if !options.mongo() {
            return Ok(None);
        }
        if let Ok(uri) = std::env::var("MONGODB_URI") {
            return Ok(Some(Mongo { uri, state: None }));
        }
        let state = std::env::temp_dir().join(format!("datasync-bench-{}", std::process::id()));
        let out = std::process::Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&state)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("cannot run scripts/mongo-test-server: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the MongoDB test server did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let uri = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("MONGODB_URI=")
            .to_owned();
        println!("MongoDB: test server at {uri} (nx-27017)");
        Ok(Some(Mongo {
            uri,
            state: Some(state),
        }))
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            let _ = std::process::Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(state)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status();
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mongo-test-server")
}

/// A fresh store of the named kind.
pub async fn store(kind: &str, mongo: Option<&Mongo>) -> Result<Arc<dyn Store>, String> {
    match kind {
        "sqlite" => Ok(Arc::new(
            SqliteStore::memory().await.map_err(|e| e.to_string())?,
        )),
        _ => {
            let mongo = mongo.ok_or("no MongoDB")?;
            let db = format!("bench_{}_{}", std::process::id(), uuid_like());
            Ok(Arc::new(
                MongoStore::connect(&mongo.uri, &db)
                    .await
                    .map_err(|e| e.to_string())?,
            ))
        }
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// This process's resident memory, in bytes (Linux).
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Microseconds since the Unix epoch (shared by the server and the client process).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The value at quantile `q` of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
