//! Models with rules: attribute rules (`Article`) and a custom `Authorize` whose read scope
//! changes with the data (`Post`: published posts, or your own).

use datasync::auth::{field_equals, Authorize, Caller, Scope, Write};
use datasync::filter::{Filter, Scalar};
use datasync::prelude::*;
use datasync::{Config, DataSyncError, ModelSpec};

/// Everyone reads; editors write.
#[derive(DataSync, Clone, Debug, Default)]
#[datasync(auth(read = "public", write = "group:editors"))]
pub struct Article {
    pub id: String,
    pub title: String,
}

/// Signed-in callers read; nobody but admins writes.
#[derive(DataSync, Clone, Debug, Default)]
#[datasync(auth(read = "private", write = "nobody"))]
pub struct Notice {
    pub id: String,
    pub text: String,
}

/// A blog post: its author's; others see it once published.
#[derive(DataSync, Clone, Debug, Default)]
pub struct Post {
    pub id: String,
    #[datasync(owner)]
    pub author: String,
    pub title: String,
    pub published: bool,
}

/// Published posts are everyone's to read; drafts only their author's. Authors write.
pub struct PublishedOrMine;

impl Authorize for PublishedOrMine {
    fn read_scope(&self, spec: &ModelSpec, caller: &Caller) -> Result<Scope, DataSyncError> {
        let published = field_equals("published", Scalar::Bool(true));
        Ok(match caller {
            Caller::System | Caller::Admin(_) => Scope::All,
            Caller::Anonymous => Scope::Where(published),
            Caller::User(p) => Scope::Where(Filter::any_of(vec![
                published,
                datasync::auth::owned_by(spec.rules.owner.unwrap_or("author"), &p.id),
            ])),
        })
    }

    fn allow_write(&self, spec: &ModelSpec, caller: &Caller, write: &Write<'_>) -> bool {
        // As `write = "owner"`.
        spec.rules.allow_write(spec, caller, write)
    }
}

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Query(ArticleQuery, NoticeQuery, PostQuery);

#[derive(MergedObject, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Mutation(ArticleMutation, NoticeMutation, PostMutation);

#[derive(MergedSubscription, Default)]
#[graphql(crate = "datasync::async_graphql")]
pub struct Subscription(PostSubscription);

pub type BlogSchema = Schema<Query, Mutation, Subscription>;

pub fn schema(store: impl Store) -> BlogSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .datasync_with(store, Config::new().authorize::<Post>(PublishedOrMine))
    .finish()
}
