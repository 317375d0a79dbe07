//! Quick start: `cargo run --example notes`, then open http://localhost:4000/.
//!
//! - `NOTES_DB`: SQLite file (default `./notes.db`)
//! - `PORT`: HTTP port (default 4000)

mod app;

use datasync::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::var("NOTES_DB").unwrap_or_else(|_| "notes.db".into());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 4000,
    };
    let store = SqliteStore::open(&db).await?;
    let router = app::router(app::schema(store));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!("datasync notes example: GraphiQL at http://localhost:{port}/ (GraphQL at POST /graphql), data in {db}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
