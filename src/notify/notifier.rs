//! Delivering a run's alarms to the human sinks (SMN, webhooks, email).
//!
//! The JSON-lines stream gets every alarm as its file is processed; people get one
//! notification per group of alarms at the end of the run (see [`super::message::group`]).
//! A file whose alarms wait for that delivery is not done until every sink has them: when a
//! sink still fails after its retries, the run reports it (exit 1) and the file stays out of
//! the checkpoint, so the next scan reads it again and sends only what that sink missed
//! (delivered ids are remembered per sink).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::message::{group, MessageStyle};
use super::retry::{deliver, DeliveryError, RetryPolicy};
use super::sink::Sink;
use crate::alert::Alert;

/// A configured notification sink with its retry policy and message style.
pub struct HumanSink {
    pub sink: Box<dyn Sink>,
    pub policy: RetryPolicy,
    pub style: MessageStyle,
}

impl std::fmt::Debug for HumanSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HumanSink")
            .field("name", &self.sink.name())
            .field("policy", &self.policy)
            .field("style", &self.style)
            .finish()
    }
}

/// Whether `sink` delivered the alarm `id` in an earlier run.
pub type DeliveredBefore<'a> = &'a dyn Fn(&str, &str) -> bool;

/// A file whose alarms wait for delivery.
struct Waiting {
    key: String,
    time: DateTime<Utc>,
    ids: Vec<String>,
}

/// What the end-of-run delivery did.
#[derive(Debug, Default)]
pub struct Flush {
    /// Per sink, the alarm ids it now has.
    pub delivered: Vec<(String, Vec<String>)>,
    pub failures: Vec<DeliveryError>,
    /// Notifications sent and not sent.
    pub sent: u64,
    pub unsent: u64,
    /// Files that waited: (key, time, every sink has all their alarms).
    pub files: Vec<(String, DateTime<Utc>, bool)>,
}

/// Collects a run's alarms for the human sinks and delivers them at its end.
pub struct Notifier {
    sinks: Vec<Arc<HumanSink>>,
    /// Alarms to send, per sink (same order as `sinks`).
    pending: Vec<Vec<Alert>>,
    waiting: Vec<Waiting>,
}

impl Notifier {
    pub fn new(sinks: Vec<Arc<HumanSink>>) -> Self {
        let pending = sinks.iter().map(|_| Vec::new()).collect();
        Notifier {
            sinks,
            pending,
            waiting: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Queues alarms for every sink that does not have them yet. With `file`, that file must
    /// wait for the delivery: returns `true` when it has to.
    pub fn add(
        &mut self,
        file: Option<(&str, DateTime<Utc>)>,
        alerts: &[Alert],
        before: DeliveredBefore<'_>,
    ) -> bool {
        let mut queued = false;
        for (sink, pending) in self.sinks.iter().zip(&mut self.pending) {
            let name = sink.sink.name();
            for a in alerts {
                if !before(name, &a.id()) {
                    pending.push(a.clone());
                    queued = true;
                }
            }
        }
        if let (true, Some((key, time))) = (queued, file) {
            self.waiting.push(Waiting {
                key: key.to_owned(),
                time,
                ids: alerts.iter().map(Alert::id).collect(),
            });
        }
        queued
    }

    /// Notifications waiting, over all sinks (for the progress line).
    pub fn pending_alarms(&self) -> usize {
        self.pending.iter().map(Vec::len).sum()
    }

    /// Groups and sends every sink's alarms, sinks in parallel. A sink that exhausts its
    /// retries on one notification is not tried again in this run: its remaining
    /// notifications would wait for the same dead endpoint, one budget each.
    pub async fn flush(&mut self) -> Flush {
        let jobs = self
            .sinks
            .iter()
            .zip(std::mem::take(&mut self.pending))
            .map(|(sink, alerts)| {
                let sink = sink.clone();
                async move { send_all(&sink, &alerts).await }
            });
        let results = join_all(jobs).await;
        self.pending = self.sinks.iter().map(|_| Vec::new()).collect();
        let mut flush = Flush::default();
        let mut missed: HashSet<String> = HashSet::new();
        for r in results {
            flush.sent += r.sent;
            flush.unsent += r.unsent;
            missed.extend(r.missed);
            flush.failures.extend(r.failures);
            flush.delivered.push((r.sink, r.delivered));
        }
        for w in std::mem::take(&mut self.waiting) {
            let complete = w.ids.iter().all(|id| !missed.contains(id));
            flush.files.push((w.key, w.time, complete));
        }
        flush
    }
}

struct SinkResult {
    sink: String,
    delivered: Vec<String>,
    missed: Vec<String>,
    failures: Vec<DeliveryError>,
    sent: u64,
    unsent: u64,
}

async fn send_all(h: &HumanSink, alerts: &[Alert]) -> SinkResult {
    let mut r = SinkResult {
        sink: h.sink.name().to_owned(),
        delivered: Vec::new(),
        missed: Vec::new(),
        failures: Vec::new(),
        sent: 0,
        unsent: 0,
    };
    if alerts.is_empty() {
        return r;
    }
    let mut dead = false;
    for n in group(alerts, h.style.cap, &h.style) {
        let ids = n.alarms.iter().map(Alert::id);
        if dead {
            r.unsent += 1;
            r.missed.extend(ids);
            continue;
        }
        match deliver(h.sink.as_ref(), &n, &h.policy).await {
            Ok(attempts) => {
                tracing::info!(
                    sink = %r.sink,
                    alarms = n.count,
                    attempts,
                    "notification sent: {}",
                    n.subject
                );
                r.sent += 1;
                r.delivered.extend(ids);
            }
            Err(e) => {
                tracing::error!(sink = %r.sink, reason = %e.reason(), "{e}");
                // A request the sink refuses (4xx) may be about this message only; an
                // endpoint that stays down is down for the next message too.
                dead = !matches!(e, DeliveryError::Permanent { .. });
                r.unsent += 1;
                r.missed.extend(ids);
                r.failures.push(e);
            }
        }
    }
    r
}
