//! The resolvers behind every generated operation, generic over the model: generated code
//! only converts their results into its own output types.
//!
//! Each one finds the model's repository in the schema's data (with the schema's
//! [`Config`](super::Config)), runs the operation, and turns a failure into a GraphQL error
//! with its `extensions.code`. Records that cannot be read as the model are left out of a
//! page and reported beside it as `INTERNAL` errors carrying `extensions.recordId`.

use async_graphql::{Context, ErrorExtensions};
use futures_util::stream::{BoxStream, StreamExt};

use super::{repository, OrderByInput, PageRequest};
use crate::error::DataSyncError;
use crate::meta::Record;
use crate::model::Model;
use crate::query::{OrderBy, DEFAULT_SYNC_LIMIT};
use crate::repository::{Delta, FindParts, Page, Unreadable};
use crate::subscription::Event;
use crate::token::SyncToken;

type GqlResult<T> = async_graphql::Result<T>;

fn gql(e: DataSyncError) -> async_graphql::Error {
    e.extend()
}

/// `get<Model>(id)`.
pub async fn get<M: Model>(ctx: &Context<'_>, id: &str) -> GqlResult<Option<Record<M>>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    repo.get(id).await.map_err(gql)
}

/// `find<Models>(filter, page, orderBy)`: computes only the parts the query selects.
pub async fn find<M: Model>(
    ctx: &Context<'_>,
    filter: Option<&M::Filter>,
    page: Option<PageRequest>,
    order_by: Option<&OrderByInput>,
) -> GqlResult<Page<M>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    let selected = ctx.look_ahead();
    let parts = FindParts {
        items: selected.field("items").exists(),
        count: selected.field("count").exists(),
    };
    let order = order_by.map(OrderBy::from);
    let page = repo
        .find_parts(filter, page.map(Into::into), order.as_ref(), parts)
        .await
        .map_err(gql)?;
    report(ctx, &page.unreadable);
    Ok(page)
}

/// `sync<Models>(lastSync, filter, limit)`.
pub async fn sync<M: Model>(
    ctx: &Context<'_>,
    last_sync: &str,
    filter: Option<&M::Filter>,
    limit: Option<i32>,
) -> GqlResult<Delta<M>> {
    let run = async {
        let since = SyncToken::parse(last_sync)?;
        let limit = crate::repository::sync_limit(limit)?;
        let repo = repository::<M>(ctx)?;
        repo.sync(since, filter, limit).await
    };
    let delta = run.await.map_err(gql)?;
    report(ctx, &delta.unreadable);
    Ok(delta)
}

/// `create<Model>(input)`.
pub async fn create<M: Model>(ctx: &Context<'_>, input: M::Create) -> GqlResult<Record<M>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    repo.create(input).await.map_err(gql)
}

/// `update<Model>(input)`.
pub async fn update<M: Model>(ctx: &Context<'_>, input: M::Mutate) -> GqlResult<Record<M>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    repo.update(input).await.map_err(gql)
}

/// `delete<Model>(input)`.
pub async fn delete<M: Model>(ctx: &Context<'_>, input: M::Mutate) -> GqlResult<Record<M>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    repo.delete_input(input).await.map_err(gql)
}

/// Adds an error beside the data for each record left out.
fn report(ctx: &Context<'_>, unreadable: &[Unreadable]) {
    for bad in unreadable {
        let error = bad
            .to_error()
            .extend_with(|_, ext| ext.set("recordId", bad.id.as_str()));
        ctx.add_error(ctx.set_error_path(error.into_server_error(ctx.item.pos)));
    }
}

/// `<model>Changes(lastSync, filter)`: see [`Repository::changes`](crate::Repository::changes).
/// A bad `lastSync` or filter fails this subscription only, before it starts.
pub async fn changes<M: Model>(
    ctx: &Context<'_>,
    last_sync: Option<&str>,
    filter: Option<M::Filter>,
) -> GqlResult<BoxStream<'static, GqlResult<Delta<M>>>> {
    let run = async {
        let since = last_sync.map(SyncToken::parse).transpose()?;
        let repo = repository::<M>(ctx)?;
        repo.changes(since, filter, DEFAULT_SYNC_LIMIT).await
    };
    let stream = run.await.map_err(gql)?;
    Ok(stream.map(|item| item.map_err(gql)).boxed())
}

/// `new<Model>` / `updated<Model>` / `deleted<Model>(filter)`.
pub async fn events<M: Model>(
    ctx: &Context<'_>,
    wanted: Event,
    filter: Option<M::Filter>,
) -> GqlResult<BoxStream<'static, GqlResult<Record<M>>>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    let stream = repo.events(wanted, filter).await.map_err(gql)?;
    Ok(stream.map(|item| item.map_err(gql)).boxed())
}

/// `pull<Model>(checkpoint, limit)` of the RxDB dialect.
pub async fn pull<M: Model>(
    ctx: &Context<'_>,
    checkpoint: Option<&str>,
    limit: i32,
) -> GqlResult<crate::rxdb::PullBulk<M>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    let bulk = repo.pull(checkpoint, limit).await.map_err(gql)?;
    Ok(bulk)
}

/// `push<Model>(rows)` of the RxDB dialect: the conflicting master states.
pub async fn push<M: Model>(
    ctx: &Context<'_>,
    rows: Vec<crate::rxdb::PushRow>,
) -> GqlResult<Vec<Record<M>>> {
    let repo = repository::<M>(ctx).map_err(gql)?;
    let limit = ctx
        .data_opt::<super::Config>()
        .map_or(crate::rxdb::DEFAULT_PUSH_LIMIT, |c| c.max_push_rows());
    let masters = repo.push(rows, limit).await.map_err(gql)?;
    let (records, unreadable) = crate::repository::decode_all::<M, _>(masters, |r| r);
    report(ctx, &unreadable);
    Ok(records)
}

/// `stream<Model>` of the RxDB dialect. It never fails (an error would end RxDB's stream for
/// good): a caller that may not read ends it at once.
pub async fn stream<M: Model>(
    ctx: &Context<'_>,
) -> GqlResult<BoxStream<'static, crate::rxdb::PullBulk<M>>> {
    match repository::<M>(ctx) {
        Ok(repo) => Ok(repo.stream().await),
        Err(_) => Ok(futures_util::stream::empty().boxed()),
    }
}
