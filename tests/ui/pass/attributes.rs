//! Every attribute, each value of `conflict` and each kind of `auth` rule.
use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(collection = "people_v2", plural = "People", conflict = "throw")]
pub struct Person {
    #[datasync(id)]
    pub key: String,
    #[datasync(rename = "fullName")]
    pub name: String,
    #[datasync(skip_filter)]
    pub tags: Vec<String>,
}

#[derive(DataSync)]
#[datasync(conflict = "client_wins")]
pub struct A {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(conflict = "server_wins")]
pub struct B {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(conflict = "merge")]
pub struct C {
    pub id: String,
}

/// Owned through the field attribute; the default rules (read and write: owner).
#[derive(DataSync)]
pub struct Diary {
    pub id: String,
    #[datasync(owner)]
    pub writer: String,
    pub text: String,
}

/// Owned through the container attribute, with explicit rules.
#[derive(DataSync)]
#[datasync(owner = "author", auth(read = "public", write = "owner"))]
pub struct Page {
    pub id: String,
    pub author: String,
}

/// Rules without an owner: every rule kind.
#[derive(DataSync)]
#[datasync(auth(read = "private", write = "group:editors,admins"))]
pub struct Memo {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(auth(read = "group:staff", write = "nobody"))]
pub struct Ledger {
    pub id: String,
}

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
struct Query(
    PersonQuery,
    AQuery,
    BQuery,
    CQuery,
    DiaryQuery,
    PageQuery,
    MemoQuery,
    LedgerQuery,
);

fn main() {
    let schema = Schema::build(Query::default(), EmptyMutation, EmptySubscription).finish();
    let sdl = schema.sdl();
    assert!(sdl.contains("findPeople(") && sdl.contains("fullName: String!"));
    use datasync::{auth::Rule, Model};
    assert_eq!(<Diary as Model>::spec().rules.owner, Some("writer"));
    assert_eq!(<Page as Model>::spec().rules.read, Rule::Public);
    assert_eq!(
        <Memo as Model>::spec().rules.write,
        Rule::Groups(&["editors", "admins"])
    );
    assert_eq!(<Ledger as Model>::spec().rules.write, Rule::Nobody);
}
