//! Quick start: `cargo run --example notes`, then open http://localhost:4000/ (GraphiQL, with
//! subscriptions: try `subscription { noteChanges { lastSync items { id title _deleted } } }`).
//!
//! - `NOTES_DB`: SQLite file (default `./notes.db`)
//! - `MONGODB_URI`: use MongoDB instead (e.g. `mongodb://localhost:27017`), database
//!   `MONGODB_DB` (default `notes`)
//! - `NOTES_CONFLICT`: Note's conflict strategy: `throw` (default), `client_wins`,
//!   `server_wins` or `merge`
//! - `NOTES_TOMBSTONE_RETENTION_SECS`: how long deleted records are kept for syncing clients
//!   (default 30 days); clients whose `lastSync` predates a purge get `SYNC_EXPIRED`
//! - `PORT`: HTTP port (default 4000)

mod app;

use datasync::prelude::*;
use datasync::{conflict, ConflictOverrides, MongoStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 4000,
    };
    let strategy = std::env::var("NOTES_CONFLICT").unwrap_or_else(|_| "throw".into());
    let overrides = match conflict::by_name(&strategy) {
        Some(s) => ConflictOverrides::new().set_shared::<app::Note>(s),
        None => {
            return Err(format!(
                "NOTES_CONFLICT must be throw, client_wins, server_wins or merge, got {strategy:?}"
            )
            .into())
        }
    };
    let mut opts = StoreOptions::default();
    if let Ok(secs) = std::env::var("NOTES_TOMBSTONE_RETENTION_SECS") {
        let secs: u64 = secs.parse().map_err(|_| {
            format!("NOTES_TOMBSTONE_RETENTION_SECS must be a number of seconds, got {secs:?}")
        })?;
        opts = opts.tombstone_retention(std::time::Duration::from_secs(secs));
    }
    let (schema, data) = match std::env::var("MONGODB_URI") {
        Ok(uri) => {
            let db = std::env::var("MONGODB_DB").unwrap_or_else(|_| "notes".into());
            let store = MongoStore::connect_with(&uri, &db, opts).await?;
            store.prepare::<app::Note>().await?;
            store.prepare::<app::Comment>().await?;
            (
                app::schema_with(store, overrides),
                format!("MongoDB database {db:?}"),
            )
        }
        Err(_) => {
            let file = std::env::var("NOTES_DB").unwrap_or_else(|_| "notes.db".into());
            let store = SqliteStore::open_with(&file, opts).await?;
            (
                app::schema_with(store, overrides),
                format!("SQLite file {file}"),
            )
        }
    };
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!(
        "datasync notes example: GraphiQL at http://localhost:{port}/ (GraphQL at /graphql: POST, and WebSocket subscriptions), data in {data}, Note conflicts: {strategy}"
    );
    datasync::axum::serve(listener, app::router(schema))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
