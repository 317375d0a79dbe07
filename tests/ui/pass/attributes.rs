//! Every attribute, each value of `conflict`.
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

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
struct Query(PersonQuery, AQuery, BQuery, CQuery);

fn main() {
    let schema = Schema::build(Query::default(), EmptyMutation, EmptySubscription).finish();
    let sdl = schema.sdl();
    assert!(sdl.contains("findPeople(") && sdl.contains("fullName: String!"));
}
