//! Shared test harness: the example's models and schema, a model using every supported field
//! type and attribute, a GraphQL runner, and the per-store instantiation macro.
#![allow(dead_code)]

#[path = "../../examples/notes/app.rs"]
pub mod app;
pub mod blog;
pub mod gadget;
pub mod ws;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use datasync::async_graphql::{Request, Variables};
use datasync::prelude::*;
use datasync::{Clock, Principal};
use serde_json::{json, Value as Json};

/// The stores the conformance tests run against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    /// MongoDB at `MONGODB_URI` (scripts/test starts a wire-protocol test server); each store
    /// gets a database of its own.
    Mongo,
}

/// `MONGODB_URI`; the MongoDB tests fail (never skip) without it.
pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| {
        panic!("MONGODB_URI is not set: run the tests with scripts/test, which starts a MongoDB test server, or point MONGODB_URI at a MongoDB")
    })
}

/// A database name no other test uses.
pub fn fresh_database() -> String {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "dstest_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

impl Backend {
    /// A fresh, empty store with default options.
    pub async fn store(self) -> Arc<dyn Store> {
        self.store_with(StoreOptions::default()).await
    }

    /// A fresh, empty store.
    pub async fn store_with(self, opts: StoreOptions) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite => {
                Arc::new(SqliteStore::memory_with(opts).await.expect("sqlite store"))
            }
            Backend::Mongo => Arc::new(
                datasync::MongoStore::connect_with(&mongodb_uri(), &fresh_database(), opts)
                    .await
                    .expect("MongoDB at MONGODB_URI"),
            ),
        }
    }

    /// The example schema over a fresh store.
    pub async fn gql(self) -> Gql {
        Gql::new(self.store().await)
    }
}

/// Instantiates store-generic test bodies once per [`Backend`]:
/// `store_tests!(crud_roundtrip, ...)` with `async fn crud_roundtrip(b: Backend)` in scope.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Mongo).await
                }
            )*
        }
    };
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    /// Starts at the real time (so server-side TTL indexes see sensible dates).
    pub fn now() -> Self {
        ManualClock(Arc::new(AtomicI64::new(datasync::SystemClock.now_millis())))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The example schema (Note, Comment) plus the all-types model, over one store, with the
/// principal requests act for (user `tester` unless told otherwise).
pub struct Gql {
    pub schema: app::AppSchema,
    pub gadgets: gadget::GadgetSchema,
    pub store: Arc<dyn Store>,
    pub principal: Option<Principal>,
}

impl Gql {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Gql {
            schema: app::schema_with(store.clone(), datasync::Config::default()),
            gadgets: gadget::schema(store.clone()),
            store,
            principal: Some(Principal::new("tester")),
        }
    }

    /// The same schema and store, acting for `principal` (`None`: anonymous).
    pub fn acting_as(&self, principal: Option<Principal>) -> Gql {
        Gql {
            schema: self.schema.clone(),
            gadgets: self.gadgets.clone(),
            store: self.store.clone(),
            principal,
        }
    }

    fn request(&self, query: &str, vars: Json) -> Request {
        let req = Request::new(query).variables(Variables::from_json(vars));
        match &self.principal {
            Some(p) => req.data(p.clone()),
            None => req,
        }
    }

    /// The whole response as JSON.
    pub async fn run(&self, query: &str, vars: Json) -> Json {
        serde_json::to_value(self.schema.execute(self.request(query, vars)).await).unwrap()
    }

    /// `data`, failing the test on any error.
    pub async fn ok(&self, query: &str, vars: Json) -> Json {
        let resp = self.run(query, vars).await;
        assert!(
            resp.get("errors").is_none(),
            "unexpected errors: {resp:#}\nquery: {query}"
        );
        resp["data"].clone()
    }

    /// The single error, failing the test if there is none.
    pub async fn err(&self, query: &str, vars: Json) -> Json {
        let resp = self.run(query, vars).await;
        let errors = resp["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("expected an error: {resp:#}"));
        assert_eq!(errors.len(), 1, "{resp:#}");
        errors[0].clone()
    }

    /// A subscription on the example schema: each response as JSON.
    pub fn subscribe(
        &self,
        query: &str,
        vars: Json,
    ) -> futures_util::stream::BoxStream<'static, Json> {
        use futures_util::StreamExt;
        self.schema
            .execute_stream(self.request(query, vars))
            .map(|r| serde_json::to_value(r).unwrap())
            .boxed()
    }

    /// The gadget schema's whole response.
    pub async fn gadget_run(&self, query: &str, vars: Json) -> Json {
        serde_json::to_value(self.gadgets.execute(self.request(query, vars)).await).unwrap()
    }

    /// The gadget schema's `data`, failing on errors.
    pub async fn gadget_ok(&self, query: &str, vars: Json) -> Json {
        let resp = self.gadget_run(query, vars).await;
        assert!(
            resp.get("errors").is_none(),
            "unexpected errors: {resp:#}\nquery: {query}"
        );
        resp["data"].clone()
    }

    /// Creates a note from `fields` (merged over defaults) and returns it.
    pub async fn note(&self, fields: Json) -> Json {
        let mut input = json!({"title": "t", "priority": 1, "done": false, "tags": []});
        input
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        self.ok(
            &format!("mutation($i: CreateNoteInput!) {{ createNote(input: $i) {{ {NOTE} }} }}"),
            json!({ "i": input }),
        )
        .await["createNote"]
            .clone()
    }

    /// Ids of `findNotes(filter: ...)` in id order.
    pub async fn find_ids(&self, filter: Json) -> Vec<String> {
        let data = self
            .ok(
                "query($f: NoteFilter) { findNotes(filter: $f) { items { id } } }",
                json!({ "f": filter }),
            )
            .await;
        ids(&data["findNotes"]["items"])
    }

    /// One sync page.
    pub async fn sync(&self, last_sync: &str, limit: Option<i32>, filter: Json) -> Json {
        self.ok(
            &format!(
                "query($s: String!, $l: Int, $f: NoteFilter) {{ syncNotes(lastSync: $s, limit: $l, filter: $f) {{ lastSync hasMore limit items {{ {NOTE} _deleted }} }} }}"
            ),
            json!({ "s": last_sync, "l": limit, "f": filter }),
        )
        .await["syncNotes"]
            .clone()
    }
}

/// The next message of a subscription (failing the test after 20 s; `None`: it ended).
pub async fn next_message(
    stream: &mut futures_util::stream::BoxStream<'static, Json>,
) -> Option<Json> {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .expect("a subscription message within 20 s")
}

/// All fields of `Note`.
pub const NOTE: &str = "id title description priority done tags _version createdAt updatedAt";

/// The `extensions.code` of an error.
pub fn code(err: &Json) -> &str {
    err["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {err:#}"))
}

/// The `id`s of a list of items.
pub fn ids(items: &Json) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}
