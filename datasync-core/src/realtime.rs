//! Realtime delivery: one reader per collection per store, fanned out in memory.
//!
//! A [`Hub`] belongs to a store (and its clones). The first subscriber of a collection starts
//! a reader that follows the collection's change sequence with ordinary sync pages, from the
//! position it started at. Every page with changes becomes one [`Batch`], sent once to every
//! subscriber through a bounded broadcast buffer; each subscriber applies its own filter in
//! memory. So the store is read once per change however many subscribers there are.
//!
//! The reader wakes at once when this process writes to the collection (the stores call
//! [`Hub::notify`] after every committed write) and polls every
//! [`StoreOptions::poll_interval`](crate::StoreOptions::poll_interval) for writes of other
//! processes sharing the database. When the last subscriber of a collection goes, its reader
//! stops and its buffer is freed.
//!
//! Because batches come from sync pages, a batch's token is an ordinary `lastSync`: a
//! subscriber that stores it and later resumes from it (with `sync<Models>` or a resumable
//! subscription) misses nothing; see `docs/sync.md`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::error::{DataSyncError, Result};
use crate::filter::Filter;
use crate::meta::StoredRecord;
use crate::model::ModelSpec;
use crate::query::SyncRequest;
use crate::store::StoreRef;
use crate::token::SyncToken;

/// How many changes a reader asks for per page.
const READER_PAGE: u32 = 200;

/// What a reader sends its subscribers.
#[derive(Debug)]
pub enum Batch {
    /// Changes, in change order (tombstones included), and the token after them.
    Changes {
        /// The changed records, at their newest state.
        records: Vec<StoredRecord>,
        /// Where the change log stands after this batch: a valid `lastSync`.
        next: SyncToken,
    },
    /// The reader's own position predates a tombstone purge: subscribers may have missed
    /// deletions and must resync (`SYNC_EXPIRED`).
    Expired,
}

/// Figures about a hub, for monitoring, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Collections with a running reader.
    pub readers: usize,
    /// Subscribers over all collections.
    pub subscribers: usize,
    /// Sync pages read by the readers so far.
    pub reads: u64,
}

/// The realtime hub of a store: write signals and per-collection readers.
///
/// ```no_run
/// # async fn demo() -> datasync_core::Result<()> {
/// use datasync_core::{SqliteStore, Store};
/// let store = SqliteStore::memory().await?;
/// let stats = store.hub().expect("the built-in stores have a hub").stats();
/// assert_eq!(stats.readers, 0);
/// # Ok(()) }
/// ```
pub struct Hub {
    poll: Duration,
    buffer: usize,
    signals: Mutex<HashMap<&'static str, watch::Sender<u64>>>,
    feeds: tokio::sync::Mutex<HashMap<&'static str, Weak<Feed>>>,
    /// Live feeds, for [`Hub::stats`] without the async lock.
    live: Mutex<HashMap<&'static str, Weak<Feed>>>,
    reads: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("poll", &self.poll)
            .field("buffer", &self.buffer)
            .field("stats", &self.stats())
            .finish()
    }
}

/// One collection's reader and the buffer its subscribers read from.
struct Feed {
    sender: broadcast::Sender<Arc<Batch>>,
    /// The position after the last batch sent (changed under this lock together with the
    /// send, so a new subscriber's start and its first batch fit together).
    position: Mutex<SyncToken>,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            reader.abort();
        }
    }
}

/// A subscriber's end of a collection's feed.
pub struct Subscription {
    /// The position the subscription starts after: every change after it arrives as a batch.
    pub start: SyncToken,
    receiver: broadcast::Receiver<Arc<Batch>>,
    _feed: Arc<Feed>,
}

/// Why [`Subscription::next`] has nothing more.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// The subscriber fell more than the buffer behind: `SUBSCRIPTION_LAGGING`.
    Lagging,
    /// The reader stopped (the store is gone).
    Closed,
}

impl Subscription {
    /// The next batch, waiting for it.
    pub async fn next(&mut self) -> std::result::Result<Arc<Batch>, Ended> {
        match self.receiver.recv().await {
            Ok(batch) => Ok(batch),
            Err(broadcast::error::RecvError::Lagged(_)) => Err(Ended::Lagging),
            Err(broadcast::error::RecvError::Closed) => Err(Ended::Closed),
        }
    }
}

impl Hub {
    /// A hub polling every `poll` with a buffer of `buffer` batches per collection.
    pub fn new(poll: Duration, buffer: usize) -> Arc<Hub> {
        Arc::new(Hub {
            poll,
            buffer: buffer.max(1),
            signals: Mutex::new(HashMap::new()),
            feeds: tokio::sync::Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            reads: AtomicU64::new(0),
        })
    }

    /// Called by a store after a write to `collection` committed: wakes its reader.
    pub fn notify(&self, collection: &'static str) {
        let signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signal) = signals.get(collection) {
            signal.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn signal(&self, collection: &'static str) -> watch::Receiver<u64> {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        signals
            .entry(collection)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Readers, subscribers and reads so far.
    pub fn stats(&self) -> HubStats {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let feeds: Vec<Arc<Feed>> = live.values().filter_map(Weak::upgrade).collect();
        HubStats {
            readers: feeds.len(),
            subscribers: feeds.iter().map(|f| f.sender.receiver_count()).sum(),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }

    /// Subscribes to the changes of `spec`'s collection, starting a reader (on `store`) if
    /// there is none.
    pub async fn subscribe(
        self: &Arc<Self>,
        store: &StoreRef,
        spec: &'static ModelSpec,
    ) -> Result<Subscription> {
        let feed = {
            let mut feeds = self.feeds.lock().await;
            match feeds.get(spec.collection).and_then(Weak::upgrade) {
                Some(feed) => feed,
                None => {
                    let start = store.head(spec).await?;
                    let feed = self.start_reader(store.clone(), spec, start);
                    feeds.insert(spec.collection, Arc::downgrade(&feed));
                    let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.retain(|_, f| f.strong_count() > 0);
                    live.insert(spec.collection, Arc::downgrade(&feed));
                    feed
                }
            }
        };
        let position = feed.position.lock().unwrap_or_else(|p| p.into_inner());
        let receiver = feed.sender.subscribe();
        let start = position.clone();
        drop(position);
        Ok(Subscription {
            start,
            receiver,
            _feed: feed,
        })
    }

    fn start_reader(
        self: &Arc<Self>,
        store: StoreRef,
        spec: &'static ModelSpec,
        start: SyncToken,
    ) -> Arc<Feed> {
        let (sender, _) = broadcast::channel(self.buffer);
        let feed = Arc::new(Feed {
            sender,
            position: Mutex::new(start),
            reader: Mutex::new(None),
        });
        let task = tokio::spawn(read_changes(
            Arc::downgrade(self),
            Arc::downgrade(&feed),
            store,
            spec,
            self.signal(spec.collection),
            self.poll,
        ));
        *feed.reader.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        feed
    }
}

/// A collection's reader: pages from the feed's position, publishes every page with changes,
/// then waits for a write signal or the poll interval. Ends when the feed is dropped (its
/// last subscriber went).
async fn read_changes(
    hub: Weak<Hub>,
    feed: Weak<Feed>,
    store: StoreRef,
    spec: &'static ModelSpec,
    mut signal: watch::Receiver<u64>,
    poll: Duration,
) {
    loop {
        let Some(since) = feed.upgrade().map(|f| position(&f)) else {
            return;
        };
        let request = SyncRequest::new(since, Filter::All, READER_PAGE);
        let page = store.sync(spec, &request).await;
        if let Some(hub) = hub.upgrade() {
            hub.reads.fetch_add(1, Ordering::Relaxed);
        }
        let Some(current) = feed.upgrade() else {
            return;
        };
        let more = match page {
            Ok(page) => {
                let mut position = current.position.lock().unwrap_or_else(|p| p.into_inner());
                if !page.items.is_empty() {
                    let records = page.items.into_iter().map(|i| i.record).collect();
                    let batch = Batch::Changes {
                        records,
                        next: page.next.clone(),
                    };
                    // No receiver at the moment is fine: nobody to tell.
                    let _ = current.sender.send(Arc::new(batch));
                }
                *position = page.next;
                page.has_more
            }
            Err(DataSyncError::SyncExpired { .. }) => {
                // Everyone listening may have missed a deletion: tell them, start over at the
                // current end.
                match store.head(spec).await {
                    Ok(head) => {
                        let mut position =
                            current.position.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = current.sender.send(Arc::new(Batch::Expired));
                        *position = head;
                    }
                    Err(e) => {
                        tracing::warn!(target: "datasync", "realtime reader of {}: {e}", spec.collection)
                    }
                }
                false
            }
            Err(e) => {
                // A store outage: keep the position and try again after the interval.
                tracing::warn!(target: "datasync", "realtime reader of {}: {e}", spec.collection);
                false
            }
        };
        drop(current);
        if more {
            continue;
        }
        tokio::select! {
            changed = signal.changed() => {
                if changed.is_err() {
                    // The hub is gone: poll only.
                    tokio::time::sleep(poll).await;
                }
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

fn position(feed: &Feed) -> SyncToken {
    feed.position
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}
