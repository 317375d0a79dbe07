//! The generated API merges into a user's own schema, matches the GraphQL contract, and
//! reports misuse with stable codes.

mod common;

use common::app::{CommentMutation, CommentQuery, NoteMutation, NoteQuery};
use common::{code, Backend};
use datasync::async_graphql::Context;
use datasync::prelude::*;
use serde_json::json;

/// A user's own query, with state of its own in the context.
#[derive(Default)]
struct UserQuery;

#[Object(crate = "datasync::async_graphql")]
impl UserQuery {
    async fn greeting(&self, ctx: &Context<'_>) -> String {
        format!("hello, {}", ctx.data_unchecked::<String>())
    }
}

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
struct Query(UserQuery, NoteQuery, CommentQuery);

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
struct Mutation(NoteMutation, CommentMutation);

async fn user_schema() -> Schema<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data("world".to_string())
        // One caller for every request (notes and comments belong to their creator).
        .data(datasync::Principal::new("tester"))
        .datasync(SqliteStore::memory().await.unwrap())
        .finish()
}

#[tokio::test]
async fn user_schema_merges_generated_objects_and_answers() {
    let schema = user_schema().await;
    let resp = schema
        .execute(r#"mutation { createNote(input: {id: "n1", title: "T", priority: 1, done: false, tags: []}) { id }
                              createComment(input: {noteId: "n1", text: "nice"}) { noteId text _version } }"#)
        .await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let resp = schema
        .execute(r#"{ greeting getNote(id: "n1") { title } findComments(filter: {noteId: {eq: "n1"}}) { count items { text } } }"#)
        .await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    assert_eq!(
        resp.data.into_json().unwrap(),
        json!({"greeting": "hello, world", "getNote": {"title": "T"}, "findComments": {"count": 1, "items": [{"text": "nice"}]}})
    );
}

#[tokio::test]
async fn sdl_follows_the_contract() {
    let sdl = user_schema().await.sdl();
    let sdl_flat = sdl.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "type Note {",
        "id: ID!",
        "title: String!",
        "description: String",
        "priority: Int!",
        "tags: [String!]!",
        "_version: Int!",
        "createdAt: String!",
        "updatedAt: String!",
        "type NoteDelta {",
        "_deleted: Boolean!",
        "type NoteDeltaList { \"\"\" Changed records",
        "lastSync: String!",
        "hasMore: Boolean!",
        "type NoteResultList {",
        "count: Int",
        "input CreateNoteInput {",
        "input MutateNoteInput {",
        "input NoteFilter {",
        "and: [NoteFilter!]",
        "or: [NoteFilter!]",
        "not: NoteFilter",
        "input StringInput {",
        "in: [String!]",
        "startsWith: String",
        "input IntInput {",
        "between: [Int!]",
        "input BooleanInput {",
        "input IDInput {",
        "input PageRequest {",
        "input OrderByInput {",
        "order: SortDirectionEnum = ASC",
        "enum SortDirectionEnum {",
        "\"\"\" Ascending. \"\"\" ASC \"\"\" Descending. \"\"\" DESC }",
        "getNote(id: ID!): Note",
        "findNotes(filter: NoteFilter, page: PageRequest, orderBy: OrderByInput): NoteResultList!",
        "syncNotes(lastSync: String!, filter: NoteFilter, limit: Int): NoteDeltaList!",
        "createNote(input: CreateNoteInput!): Note!",
        "updateNote(input: MutateNoteInput!): Note!",
        "deleteNote(input: MutateNoteInput!): Note!",
        "findComments(",
        "noteId: String!",
        "\"\"\" Short title shown in lists. \"\"\" title: String!",
        "\"\"\" A note on someone's list. Each note belongs to the user who created it: only they see and change it (and members of the admin group). \"\"\" type Note {",
    ] {
        assert!(
            sdl_flat.contains(expected),
            "SDL lacks {expected:?}:\n{sdl}"
        );
    }
    // Create input: non-Option fields required, the id optional; patch: all optional.
    let create = section(&sdl_flat, "input CreateNoteInput {");
    assert!(
        create.contains("id: ID ")
            && create.contains("title: String!")
            && create.contains("description: String ")
    );
    let mutate = section(&sdl_flat, "input MutateNoteInput {");
    assert!(
        mutate.contains("id: ID!")
            && mutate.contains("title: String ")
            && mutate.contains("tags: [String!] ")
            && mutate.contains("_version: Int!")
    );
    // The owner is output only: the server sets it, no input can.
    assert!(section(&sdl_flat, "type Note {").contains("owner: String!"));
    assert!(!create.contains("owner") && !mutate.contains("owner"));
    // Shared inputs are defined once for all models.
    assert_eq!(sdl_flat.matches("input StringInput {").count(), 1);
}

fn section<'a>(sdl: &'a str, start: &str) -> &'a str {
    let from = sdl.find(start).unwrap();
    let len = sdl[from..].find('}').unwrap();
    &sdl[from..from + len]
}

#[tokio::test]
async fn two_models_share_the_runtime_inputs() {
    // Note and Gadget both use StringInput/IntInput: one schema holds both without clashes.
    #[derive(MergedObject, Default)]
    #[graphql(crate = "datasync::async_graphql")]
    struct Both(NoteQuery, common::gadget::GadgetQuery);
    let schema = Schema::build(Both::default(), EmptyMutation, EmptySubscription)
        .data(datasync::Principal::new("tester"))
        .datasync(SqliteStore::memory().await.unwrap())
        .finish();
    let resp = schema
        .execute("{ findNotes { count } findGadgetList { count } }")
        .await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

#[tokio::test]
async fn schema_without_a_store_reports_internal() {
    let schema = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data("x".to_string())
        .extension(datasync::ErrorCodes)
        .finish();
    let resp = schema.execute("{ findNotes { count } }").await;
    let err = serde_json::to_value(&resp.errors[0]).unwrap();
    assert_eq!(code(&err), "INTERNAL");
    assert!(!err["message"].as_str().unwrap().contains("panicked"));
}

#[tokio::test]
async fn a_store_added_as_plain_data_is_found() {
    let schema = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data("x".to_string())
        .data(datasync::Principal::new("tester"))
        .data(SqliteStore::memory().await.unwrap())
        .finish();
    let resp = schema
        .execute(r#"mutation { createNote(input: {title: "T", priority: 1, done: false, tags: []}) { _version } }"#)
        .await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

#[tokio::test]
async fn request_errors_get_bad_user_input() {
    let g = Backend::Sqlite.gql().await;
    for query in [
        "{ findNotes { nope } }",
        "{ findNotes(",
        "{ getNote { id } }",
        "mutation { createNote(input: {title: \"no priority\"}) { id } }",
        "mutation { createNote(input: {title: 5, priority: 1, done: false, tags: []}) { id } }",
        "mutation { createNote(input: {title: \"t\", priority: 99999999999, done: false, tags: []}) { id } }",
        "mutation { updateNote(input: {id: \"a\"}) { id } }",
    ] {
        let resp = g.run(query, json!({})).await;
        let errors = resp["errors"].as_array().unwrap_or_else(|| panic!("{query}: {resp}"));
        assert!(errors.iter().all(|e| code(e) == "BAD_USER_INPUT"), "{query}: {resp}");
    }
    let resp = g
        .run(
            "query($p: Int!) { findNotes(page: {limit: $p}) { count } }",
            json!({"p": "ten"}),
        )
        .await;
    assert_eq!(code(&resp["errors"][0]), "BAD_USER_INPUT", "{resp}");
}

/// Two models that the user gave the same plural.
mod same_plural {
    use datasync::prelude::*;

    #[derive(DataSync)]
    #[datasync(plural = "Items")]
    pub struct Book {
        pub id: String,
    }

    #[derive(DataSync)]
    #[datasync(plural = "Items")]
    pub struct Tool {
        pub id: String,
    }

    #[derive(MergedObject, Default)]
    #[graphql(crate = "datasync::async_graphql")]
    pub struct Query(BookQuery, ToolQuery);
}

#[tokio::test]
async fn two_models_with_one_plural_are_refused_when_the_schema_is_wired() {
    // Merged as is, one model's `findItems` and `syncItems` would silently vanish.
    let problem = datasync::graphql::colliding_operations::<same_plural::Query>()
        .expect("the collision is found");
    assert!(
        problem.contains("`Book` and `Tool` both define `findItems`")
            && problem.contains("#[datasync(plural"),
        "{problem}"
    );
    let store = SqliteStore::memory().await.unwrap();
    let wired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Schema::build(
            same_plural::Query::default(),
            EmptyMutation,
            EmptySubscription,
        )
        .datasync(store)
        .finish()
    }));
    assert!(
        wired.is_err(),
        "wiring the schema must refuse the collision"
    );
}

#[test]
fn nested_merges_of_one_model_are_not_collisions() {
    #[derive(MergedObject, Default)]
    #[graphql(crate = "datasync::async_graphql")]
    struct Inner(NoteQuery, CommentQuery);
    #[derive(MergedObject, Default)]
    #[graphql(crate = "datasync::async_graphql")]
    struct Outer(UserQuery, Inner);
    assert_eq!(datasync::graphql::colliding_operations::<Outer>(), None);
    assert_eq!(datasync::graphql::colliding_operations::<Query>(), None);
}

/// The user's own types may have fields shaped like generated operations.
mod look_alikes {
    use super::common::app::{CommentResultList, NoteResultList};
    use datasync::prelude::*;

    pub struct Shelf;
    #[Object(crate = "datasync::async_graphql")]
    impl Shelf {
        #[graphql(name = "findItems")]
        async fn find_items(&self) -> Option<NoteResultList> {
            None
        }
    }

    pub struct Garage;
    #[Object(crate = "datasync::async_graphql")]
    impl Garage {
        #[graphql(name = "findItems")]
        async fn find_items(&self) -> Option<CommentResultList> {
            None
        }
    }

    #[derive(Default)]
    pub struct Rooms;
    #[Object(crate = "datasync::async_graphql")]
    impl Rooms {
        async fn shelf(&self) -> Shelf {
            Shelf
        }
        async fn garage(&self) -> Garage {
            Garage
        }
    }
}

#[test]
fn look_alike_fields_of_user_types_are_not_collisions() {
    #[derive(MergedObject, Default)]
    #[graphql(crate = "datasync::async_graphql")]
    struct WithRooms(look_alikes::Rooms, NoteQuery, CommentQuery);
    assert_eq!(datasync::graphql::colliding_operations::<WithRooms>(), None);
}

/// The introspection query GraphiQL and code generators send passes the default request
/// limits.
#[tokio::test]
async fn introspection_passes_the_default_limits() {
    let query = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name } mutationType { name } subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
    }"#;
    let resp = user_schema().await.execute(query).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}
