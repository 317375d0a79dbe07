//! Benchmarks, as a program that prints figures (never a timed test):
//!
//! ```sh
//! cargo run --release --example bench                 # everything, both stores
//! cargo run --release --example bench -- throughput   # raw driver vs repository vs HTTP
//! cargo run --release --example bench -- throughput --ops 5000 --concurrency 16
//! cargo run --release --example bench -- realtime     # realtime delivery only
//! cargo run --release --example bench -- realtime --subscribers 1000,10000 --stores sqlite
//! cargo run --release --example bench -- rxdb         # RxDB clients (needs Node and npm)
//! ```
//!
//! MongoDB figures use `MONGODB_URI` if set, else a wire-protocol test server started the
//! way `scripts/test` starts one. See the README's Performance section for the latest run.

#[path = "../notes/app.rs"]
#[allow(dead_code)]
mod app;
mod env;
mod realtime;
mod rxdb;
mod throughput;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The realtime benchmark runs its load client in a child process of this binary.
    match args.first().map(String::as_str) {
        Some(realtime::CLIENT) => return realtime::client(&args[1..]).await,
        Some(realtime::SERVER) => return realtime::server(&args[1..]).await,
        Some(throughput::SERVER) => return throughput::server(&args[1..]).await,
        _ => {}
    }
    let options = match env::Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n\n{}", env::USAGE);
            return ExitCode::from(2);
        }
    };
    let mongo = match env::Mongo::start(&options).await {
        Ok(mongo) => mongo,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if options.runs("throughput") {
        if let Err(e) = throughput::run(&options, mongo.as_ref()).await {
            eprintln!("throughput benchmark failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if options.runs("realtime") {
        if let Err(e) = realtime::run(&options, mongo.as_ref()).await {
            eprintln!("realtime benchmark failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if options.runs("rxdb") {
        if let Err(e) = rxdb::run(&options, mongo.as_ref()) {
            eprintln!("RxDB benchmark failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
