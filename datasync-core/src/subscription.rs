//! Subscriptions of a repository: the resumable change stream and Graphback-style events,
//! both fed by the store's realtime [`Hub`](crate::realtime::Hub).
//!
//! **Why a resumed stream misses nothing.** A stream subscribes to its collection's feed
//! first; the feed's position `P` at that moment is a token whose changes were all committed
//! before the subscription, and every later change arrives as a batch. With `lastSync`, the
//! stream then catches up with ordinary sync pages from `lastSync` to the end of the change
//! log, which covers everything up to `P` (those pages start after the subscription). So the
//! pages plus the batches cover every change after `lastSync`; changes in both arrive twice,
//! which is allowed (clients keep the highest `_version` of a record). Every message carries
//! a token that covers everything delivered before it.

use std::collections::VecDeque;

use futures_util::stream::{self, BoxStream, StreamExt};

use crate::auth::Scope;
use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::{Record, StoredRecord};
use crate::model::Model;
use crate::realtime::{Batch, Ended, Subscription};
use crate::repository::{decode_all, removal_or_record, to_filter, Delta, Repository};
use crate::token::SyncToken;

/// What happened to a record, for [`Repository::events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It was created (`new<Model>`).
    Created,
    /// It was changed (`updated<Model>`).
    Updated,
    /// It was deleted (`deleted<Model>`).
    Deleted,
}

impl Event {
    /// The event a stored state is the result of.
    pub fn of(record: &StoredRecord) -> Event {
        if record.meta.deleted {
            Event::Deleted
        } else if record.is_new() {
            Event::Created
        } else {
            Event::Updated
        }
    }
}

/// Where a change stream is.
enum Phase<M> {
    /// A page read before the stream started, to send first.
    First(Delta<M>),
    /// Catching up with sync pages from this token.
    CatchUp(SyncToken),
    /// Following the feed.
    Live,
    /// Ended (after an error, or the feed closed).
    Done,
}

struct Changes<M: Model> {
    repo: Repository<M>,
    filter: Option<M::Filter>,
    tree: Filter,
    scope: Scope,
    limit: u32,
    feed: Subscription,
    phase: Phase<M>,
}

impl<M: Model> Repository<M> {
    /// The resumable stream of changes of this model, as `<model>Changes` delivers them.
    ///
    /// With `since`, it first sends every change after it in pages of at most `limit`
    /// (`has_more` until caught up, like [`sync`](Self::sync)), then one [`Delta`] per batch
    /// of new changes; without, it starts with an empty delta carrying the current position.
    /// Every delta's `last_sync` is a token to resume from. Token rules are those of `sync`
    /// (`SYNC_EXPIRED`, a changed record that leaves the filter arrives as deleted). A bad
    /// token or filter fails here, before the stream starts; later failures (the subscriber
    /// fell behind: `SUBSCRIPTION_LAGGING`; a purge the feed had not seen: `SYNC_EXPIRED`)
    /// end the stream with that error.
    ///
    /// ```no_run
    /// # async fn demo<M: datasync_core::Model>(repo: datasync_core::Repository<M>) -> datasync_core::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut changes = repo.changes(None, None, 100).await?;
    /// while let Some(delta) = changes.next().await {
    ///     let delta = delta?;
    ///     println!("{} changes, resume from {}", delta.items.len(), delta.last_sync);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn changes(
        &self,
        since: Option<SyncToken>,
        filter: Option<M::Filter>,
        limit: u32,
    ) -> Result<BoxStream<'static, Result<Delta<M>>>> {
        let tree = to_filter::<M>(filter.as_ref())?;
        let scope = self.read_scope()?;
        let feed = self
            .store()
            .hub()
            .subscribe(self.store(), M::spec())
            .await?;
        let phase = match since {
            Some(since) => Phase::First(self.sync(since, filter.as_ref(), limit).await?),
            None => Phase::First(Delta {
                items: Vec::new(),
                last_sync: feed.start.clone(),
                has_more: false,
                limit,
                unreadable: Vec::new(),
            }),
        };
        let state = Changes {
            repo: self.clone(),
            filter,
            tree,
            scope,
            limit,
            feed,
            phase,
        };
        Ok(stream::unfold(state, next_change).boxed())
    }

    /// Graphback-style events from now on: each created, updated or deleted record (as
    /// `wanted` says) that matches `filter`, one by one. Ends with `SUBSCRIPTION_LAGGING` when
    /// the subscriber falls behind.
    pub async fn events(
        &self,
        wanted: Event,
        filter: Option<M::Filter>,
    ) -> Result<BoxStream<'static, Result<Record<M>>>> {
        let tree = to_filter::<M>(filter.as_ref())?;
        let scope = self.read_scope()?;
        let feed = self
            .store()
            .hub()
            .subscribe(self.store(), M::spec())
            .await?;
        let state = Events {
            wanted,
            tree,
            scope,
            feed,
            queued: VecDeque::new(),
            done: false,
        };
        Ok(stream::unfold(state, next_event::<M>).boxed())
    }
}

async fn next_change<M: Model>(mut s: Changes<M>) -> Option<(Result<Delta<M>>, Changes<M>)> {
    // Every arm either answers or ends the stream; an error leaves the phase `Done`.
    let item = match std::mem::replace(&mut s.phase, Phase::Done) {
        Phase::Done => return None,
        Phase::First(delta) => {
            s.phase = after(&delta);
            Ok(delta)
        }
        Phase::CatchUp(token) => {
            let page = s.repo.sync(token, s.filter.as_ref(), s.limit).await;
            if let Ok(delta) = &page {
                s.phase = after(delta);
            }
            page
        }
        Phase::Live => match s.feed.next().await {
            Ok(batch) => match &*batch {
                Batch::Changes { records, next } => {
                    // As a sync page would deliver them: records outside a fixed scope never,
                    // changed records that no longer match as removals.
                    let rows = records
                        .iter()
                        .filter(|r| match &s.scope {
                            Scope::Fixed(f) => f.matches(r),
                            Scope::Nothing => false,
                            Scope::All | Scope::Where(_) => true,
                        })
                        .filter_map(|r| {
                            let matches = s.tree.matches(r) && s.scope.allows(r);
                            removal_or_record::<M>(&s.scope, r.clone(), matches)
                        })
                        .collect();
                    let rows: Vec<StoredRecord> = rows;
                    if rows.is_empty() {
                        // Nothing of this batch is for this subscriber (other owners'
                        // records): say nothing, not even that something happened.
                        s.phase = Phase::Live;
                        return Box::pin(next_change(s)).await;
                    }
                    let (items, unreadable) = decode_all::<M, _>(rows, |record| record);
                    s.phase = Phase::Live;
                    Ok(Delta {
                        items,
                        last_sync: next.clone(),
                        has_more: false,
                        limit: s.limit,
                        unreadable,
                    })
                }
                Batch::Expired => Err(expired()),
            },
            Err(Ended::Lagging) => Err(DataSyncError::SubscriptionLagging),
            Err(Ended::Closed) => return None,
        },
    };
    Some((item, s))
}

/// What follows a page: more catching up, or the feed.
fn after<M>(delta: &Delta<M>) -> Phase<M> {
    if delta.has_more {
        Phase::CatchUp(delta.last_sync.clone())
    } else {
        Phase::Live
    }
}

struct Events {
    wanted: Event,
    tree: Filter,
    scope: Scope,
    feed: Subscription,
    queued: VecDeque<StoredRecord>,
    done: bool,
}

async fn next_event<M: Model>(mut s: Events) -> Option<(Result<Record<M>>, Events)> {
    loop {
        if s.done {
            return None;
        }
        if let Some(record) = s.queued.pop_front() {
            let (mut items, _) = decode_all::<M, _>(vec![record], |r| r);
            match items.pop() {
                Some(item) => return Some((Ok(item), s)),
                None => continue,
            }
        }
        match s.feed.next().await {
            Ok(batch) => match &*batch {
                Batch::Changes { records, .. } => {
                    let wanted = records
                        .iter()
                        .filter(|r| {
                            Event::of(r) == s.wanted && s.scope.allows(r) && s.tree.matches(r)
                        })
                        .cloned();
                    s.queued.extend(wanted);
                }
                Batch::Expired => {
                    // Events carry no token: nothing to resume, nothing missed to report.
                    continue;
                }
            },
            Err(Ended::Lagging) => {
                s.done = true;
                return Some((Err(DataSyncError::SubscriptionLagging), s));
            }
            Err(Ended::Closed) => return None,
        }
    }
}

fn expired() -> DataSyncError {
    DataSyncError::SyncExpired {
        message: "deleted records this subscription had not delivered were purged: drop the \
                  local copy and sync again from \"0\""
            .to_owned(),
    }
}
