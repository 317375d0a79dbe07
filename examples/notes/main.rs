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
//! - `NOTES_JWT_SECRET`: when set, every request needs `Authorization: Bearer <JWT>` signed
//!   with this secret (HS256; `sub` is the user, `groups` may list `admin`), and each user sees
//!   only their own notes and comments; unset, the server is open and everyone is the one
//!   development user `dev`
//! - `PORT`: HTTP port (default 4000)
//!
//! `cargo run --example notes -- token <user> [group...]` prints a development token for
//! `<user>`, signed with `NOTES_JWT_SECRET` and valid for a day.

mod app;

use datasync::auth::Jwt;
use datasync::http::Authentication;
use datasync::prelude::*;
use datasync::{conflict, ConflictOverrides, MongoStore, Principal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("token") {
        return mint_token(&args[1..]);
    }
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
    let (authentication, who) = match std::env::var("NOTES_JWT_SECRET") {
        Ok(secret) if !secret.is_empty() => (
            Authentication::from(Jwt::hs256(secret.as_bytes())),
            "auth: bearer JWTs (HS256, NOTES_JWT_SECRET), notes owned per user",
        ),
        _ => (
            Authentication::As(Principal::new("dev")),
            "auth: open development mode, everyone is user \"dev\" (set NOTES_JWT_SECRET to require tokens)",
        ),
    };
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!(
        "datasync notes example: GraphiQL at http://localhost:{port}/ (GraphQL at /graphql: POST, and WebSocket subscriptions), data in {data}, Note conflicts: {strategy}; {who}"
    );
    datasync::axum::serve(listener, app::router(schema, authentication))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Prints a development token: `token <user> [group...]`, signed with `NOTES_JWT_SECRET`.
fn mint_token(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let Some((user, groups)) = args.split_first() else {
        return Err("usage: notes token <user> [group...]".into());
    };
    let secret = std::env::var("NOTES_JWT_SECRET")
        .map_err(|_| "set NOTES_JWT_SECRET to the secret the server uses")?;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 24 * 3600;
    let claims = serde_json::json!({ "sub": user, "groups": groups, "exp": exp });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    println!("{token}");
    Ok(())
}
