//! RxDB clients against the notes example: a fresh client's initial pull, and how long an edit
//! on one client takes to reach another (push + stream). The clients are real RxDB (Node), so
//! this part runs `tests/rxdb/bench.mjs` against the release build of the example.

use std::path::PathBuf;
use std::process::Command;

use crate::env::{Mongo, Options};

pub fn run(options: &Options, mongo: Option<&Mongo>) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("tests/rxdb");
    println!("\n== RxDB clients (tests/rxdb/bench.mjs)");
    let status = |what: &str, command: &mut Command| -> Result<(), String> {
        match command.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{what} failed ({s})")),
            Err(e) => Err(format!("cannot run {what}: {e}")),
        }
    };
    status(
        "cargo build --release --example notes",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--example", "notes"])
            .current_dir(&root),
    )?;
    if !suite.join("node_modules").exists() {
        status(
            "npm ci",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&suite),
        )?;
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let mut node = Command::new("node");
    node.arg("bench.mjs")
        .current_dir(&suite)
        .env("NOTES_BIN", target.join("release/examples/notes"))
        .env("RXDB_STORES", options.stores.join(","))
        .env("BENCH_DOCS", options.docs.to_string())
        .env("BENCH_EDITS", options.edits.to_string());
    if let Some(mongo) = mongo {
        node.env("MONGODB_URI", &mongo.uri);
    }
    status("node bench.mjs", &mut node)
}
