//! Change positions on MongoDB.
//!
//! Writers touch no shared document: a write leaves its record without a position and with a
//! mark `_u` (new on every write, see [`fresh_mark`]). A *stamper* gives marked records their
//! positions in batches: it reads up to [`STAMP_BATCH`] marked ids in mark order, takes that many positions from the
//! collection's counter document in one `findOneAndUpdate` that also announces them (a
//! *reservation*: "positions above `lo` up to the counter may still be written"), then writes
//! them with one `update` command, one statement per record, each conditional on the mark it
//! read (a record written again meanwhile keeps its new mark and waits for the next batch).
//! Every sync page stamps before it reads, and a background task stamps shortly after writes.
//!
//! A reservation older than [`RESERVATION_TIMEOUT_MS`] (by the database's clock) belongs to
//! a stamper that died or stalls. A reader that finds one first *fences* it: it gives every
//! marked record a new mark (its old one with a suffix, which keeps the order), so that none of the late stamper's statements can match any
//! more, and only then drops the reservation. No position can therefore be written after a
//! reader stopped waiting for it. See `docs/sync.md` ("MongoDB").

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;

#[cfg(doc)]
use super::codec::fresh_mark;
use super::codec::int;
use super::{db_error, find_batch, MongoStore};
use crate::error::Result;
use crate::model::ModelSpec;
use crate::store::Watermark;
use crate::token::SyncToken;

/// Records given positions per batch (one counter update and one `update` command).
pub(super) const STAMP_BATCH: usize = 1000;
/// Batches one stamping run goes through at most; a later run takes the rest.
const MAX_BATCHES: usize = 50;
/// A reservation older than this is fenced and dropped.
pub(super) const RESERVATION_TIMEOUT_MS: i64 = 10_000;
/// How long the background stamper lets writes gather before it stamps them.
pub(super) const STAMP_DELAY: Duration = Duration::from_millis(5);

/// Per collection: one stamper at a time in this process, and the newest counter value seen.
#[derive(Default)]
pub(super) struct Sequencing(std::sync::Mutex<HashMap<&'static str, Arc<CollectionSequencing>>>);

#[derive(Default)]
pub(super) struct CollectionSequencing {
    stamping: tokio::sync::Mutex<()>,
    /// The counter never goes below this: a safe `lo` for a reservation.
    seen: AtomicI64,
}

impl Sequencing {
    fn of(&self, collection: &'static str) -> Arc<CollectionSequencing> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(collection).or_default())
    }
}

/// A collection's counter document, as read.
pub(super) struct Counter {
    /// The highest position handed out.
    pub top: i64,
    pub purged: Watermark,
    reservations: Vec<Reservation>,
    /// The database's clock at the read (ms), when the read asked for it.
    clock: Option<i64>,
}

struct Reservation {
    key: String,
    lo: i64,
    at: i64,
}

impl Counter {
    fn parse(doc: &Document, with_clock: bool) -> Counter {
        let reservations = doc
            .get_document("res")
            .map(|res| {
                res.iter()
                    .filter_map(|(key, r)| {
                        let r = r.as_document()?;
                        Some(Reservation {
                            key: key.clone(),
                            lo: int(r.get("lo")).unwrap_or(0),
                            at: r.get_datetime("at").map_or(0, |d| d.timestamp_millis()),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Counter {
            top: int(doc.get("seq")).unwrap_or(0),
            purged: Watermark {
                seq: int(doc.get("purgedSeq")).unwrap_or(0),
                ms: int(doc.get("purgedMs")).unwrap_or(0),
            },
            reservations,
            clock: with_clock
                .then(|| {
                    doc.get_datetime("readAt")
                        .ok()
                        .map(|d| d.timestamp_millis())
                })
                .flatten(),
        }
    }
}

/// Positions a reader must treat as possibly still to be written.
pub(super) struct InFlight {
    /// For each live reservation, every position above its `lo` up to the counter.
    pub positions: BTreeSet<i64>,
    /// The lowest `lo` of a live reservation.
    pub oldest_lo: Option<i64>,
    /// A reservation's range was too large to list: stop below `oldest_lo` instead.
    pub overflow: bool,
}

impl MongoStore {
    /// Gives a position to every record of the collection written without one (at most
    /// `MAX_BATCHES` batches). Returns the reservation of the last batch, still announced:
    /// the caller withdraws it with its next counter update ([`Self::read_counter`]) or
    /// [`Self::withdraw`].
    pub(super) async fn stamp(&self, spec: &'static ModelSpec) -> Result<Option<String>> {
        let sequencing = self.inner.sequencing.of(spec.collection);
        let _one_at_a_time = sequencing.stamping.lock().await;
        if sequencing.seen.load(Ordering::Acquire) == 0 {
            // A first run in this process: `lo` should not reach back to the beginning.
            let counter = self
                .counters()
                .find_one(doc! { "_id": spec.collection })
                .await
                .map_err(db_error)?;
            let top = counter.and_then(|c| int(c.get("seq"))).unwrap_or(0);
            sequencing.seen.fetch_max(top, Ordering::AcqRel);
        }
        let mut held: Option<String> = None;
        for _ in 0..MAX_BATCHES {
            let marked = self.marked(spec, "").await?;
            if marked.is_empty() {
                break;
            }
            let key = uuid::Uuid::new_v4().simple().to_string();
            let mut update = doc! {
                "$inc": { "seq": marked.len() as i64 },
                "$set": { format!("res.{key}.lo"): sequencing.seen.load(Ordering::Acquire) },
                "$currentDate": { format!("res.{key}.at"): true },
            };
            if let Some(previous) = held.take() {
                update.insert("$unset", doc! { format!("res.{previous}"): "" });
            }
            let counter = self.update_counter(spec, update).await?;
            held = Some(key);
            let top = int(counter.get("seq")).unwrap_or(0);
            sequencing.seen.fetch_max(top, Ordering::AcqRel);
            let first = top - marked.len() as i64 + 1;
            let statements: Vec<Document> = marked
                .iter()
                .zip(first..)
                .map(|(record, position)| {
                    doc! {
                        "q": { "_id": record.get("_id").cloned().unwrap_or(Bson::Null),
                               "_u": record.get("_u").cloned().unwrap_or(Bson::Null) },
                        "u": { "$set": { "_seq": position }, "$unset": { "_u": "" } },
                    }
                })
                .collect();
            let reply = self
                .inner
                .db
                .run_command(doc! {
                    "update": spec.collection,
                    "updates": statements,
                    "ordered": false,
                })
                .await;
            match reply {
                Ok(reply) if reply.contains_key("writeErrors") => {
                    tracing::warn!(target: "datasync", "stamping {} positions of {} partly failed: {reply}", marked.len(), spec.collection);
                }
                Ok(_) => {}
                Err(e) => {
                    // The records keep their marks; the reservation is withdrawn (or times out).
                    if let Some(key) = held.take() {
                        self.withdraw(spec, &key).await;
                    }
                    return Err(db_error(e));
                }
            }
            if marked.len() < STAMP_BATCH {
                break;
            }
        }
        Ok(held)
    }

    /// Up to [`STAMP_BATCH`] records waiting for a position with a mark above `after`
    /// (`_id` and `_u`), in mark order.
    async fn marked(&self, spec: &ModelSpec, after: &str) -> Result<Vec<Document>> {
        find_batch(
            &self.data(spec),
            doc! { "_u": { "$gt": after } },
            doc! { "_id": 1, "_u": 1 },
            doc! { "_u": 1 },
            STAMP_BATCH,
        )
        .await
    }

    /// Withdraws a reservation once its positions are written. If this fails, the
    /// reservation times out and is fenced, which costs readers duplicates, never changes.
    pub(super) async fn withdraw(&self, spec: &ModelSpec, key: &str) {
        if let Err(e) = self
            .counters()
            .update_one(
                doc! { "_id": spec.collection },
                doc! { "$unset": { format!("res.{key}"): "" } },
            )
            .await
        {
            tracing::warn!(target: "datasync", "cannot withdraw a stamping reservation: {e}");
        }
    }

    /// Reads the counter document, withdrawing the caller's reservation `release` in the same
    /// step. With reservations present it reads the database's clock too (to tell live ones
    /// from dead ones); with none, it is a plain read.
    pub(super) async fn read_counter(
        &self,
        spec: &'static ModelSpec,
        release: Option<String>,
    ) -> Result<Counter> {
        let sequencing = self.inner.sequencing.of(spec.collection);
        let mut counter = match release {
            Some(key) => {
                let doc = self
                    .clocked_counter(spec, Some(doc! { "$unset": { format!("res.{key}"): "" } }))
                    .await?;
                Counter::parse(&doc, true)
            }
            None => {
                let doc = self
                    .counters()
                    .find_one(doc! { "_id": spec.collection })
                    .await
                    .map_err(db_error)?
                    .unwrap_or_default();
                Counter::parse(&doc, false)
            }
        };
        if !counter.reservations.is_empty() && counter.clock.is_none() {
            counter = Counter::parse(&self.clocked_counter(spec, None).await?, true);
        }
        sequencing.seen.fetch_max(counter.top, Ordering::AcqRel);
        Ok(counter)
    }

    /// The counter document with the database's time (`readAt`), plus `extra` updates.
    async fn clocked_counter(
        &self,
        spec: &'static ModelSpec,
        extra: Option<Document>,
    ) -> Result<Document> {
        let mut update = extra.unwrap_or_default();
        update.insert("$currentDate", doc! { "readAt": true });
        self.update_counter(spec, update).await
    }

    /// Applies `update` to the collection's counter document (made if missing) and returns
    /// the document after it.
    async fn update_counter(&self, spec: &ModelSpec, update: Document) -> Result<Document> {
        Ok(self
            .counters()
            .find_one_and_update(doc! { "_id": spec.collection }, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_error)?
            .unwrap_or_default())
    }

    /// The positions of `counter`'s live reservations. Dead ones (older than the timeout by
    /// the database's clock) are fenced, then removed: after that, none of their positions
    /// can be written any more, and the caller's query that follows sees every one that was.
    pub(super) async fn in_flight(
        &self,
        spec: &'static ModelSpec,
        counter: &Counter,
    ) -> Result<InFlight> {
        let now = counter.clock.unwrap_or(0);
        let mut flight = InFlight {
            positions: BTreeSet::new(),
            oldest_lo: None,
            overflow: false,
        };
        let mut dead = Vec::new();
        for r in &counter.reservations {
            if counter.clock.is_some() && now - r.at > RESERVATION_TIMEOUT_MS {
                dead.push(r.key.as_str());
                continue;
            }
            flight.oldest_lo = Some(flight.oldest_lo.map_or(r.lo, |o: i64| o.min(r.lo)));
            if counter.top - r.lo > SyncToken::MAX_PENDING as i64 {
                flight.overflow = true;
            } else {
                flight.positions.extend((r.lo + 1)..=counter.top);
            }
        }
        if !dead.is_empty() {
            self.fence(spec, &dead).await?;
        }
        Ok(flight)
    }

    /// Makes the statements of the stamping runs behind `dead` void (every marked record gets
    /// a new mark: its old one with a suffix, so the order of marks stays), then removes those
    /// reservations.
    async fn fence(&self, spec: &'static ModelSpec, dead: &[&str]) -> Result<()> {
        tracing::warn!(target: "datasync", "{}: fencing {} stalled stamping run(s)", spec.collection, dead.len());
        let mut after = String::new();
        loop {
            let marked = self.marked(spec, &after).await?;
            let Some(last) = marked.last().and_then(|d| d.get_str("_u").ok()) else {
                break;
            };
            // Past every new mark of this page: `x + "f"` sorts right after `x`.
            after = format!("{last}f");
            let statements: Vec<Document> = marked
                .iter()
                .filter_map(|record| {
                    let mark = record.get_str("_u").ok()?;
                    Some(doc! {
                        "q": { "_id": record.get("_id").cloned().unwrap_or(Bson::Null), "_u": mark },
                        "u": { "$set": { "_u": format!("{mark}f") } },
                    })
                })
                .collect();
            self.inner
                .db
                .run_command(doc! {
                    "update": spec.collection,
                    "updates": statements,
                    "ordered": false,
                })
                .await
                .map_err(db_error)?;
            if marked.len() < STAMP_BATCH {
                break;
            }
        }
        let mut unset = Document::new();
        for key in dead {
            unset.insert(format!("res.{key}"), "");
        }
        self.counters()
            .update_one(doc! { "_id": spec.collection }, doc! { "$unset": unset })
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
