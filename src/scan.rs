//! `scan`: every trace file that appeared since the previous run, exactly once.
//!
//! Each run lists the window `[scanned_until - lateness, now)` (the first run: `[since, now)`)
//! and processes the files of that window not yet in the checkpoint. Keys are never compared
//! with "the last key processed" (unpadded day folders make key order differ from time order);
//! a file that appears late, or shares its timestamp with another, is still in the window and
//! not in the checkpoint. The checkpoint keeps only what the next window can list, so it stays
//! as small as the lateness window, and it is written only after the alerts of the files it
//! records have reached the sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::alert::Alert;
use crate::checkpoint::{CheckpointError, Shard, State};
use crate::integrity::Ledger;
use crate::lease::{Lease, LeaseError};
use crate::pipeline::{FileOutcome, Hooks};
use crate::store::ObjectStore;

/// Why a scan stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ScanStop {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("alarm file {path}: cannot force it to disk before the checkpoint: {error}")]
    AlarmSync { path: String, error: std::io::Error },
}

/// The time as the run sees it (`--now` plus the time elapsed).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How a scan commits its progress.
pub struct ScanHooks {
    pub state: State,
    store: Arc<dyn ObjectStore>,
    key: String,
    /// ETag of the checkpoint as this run last read or wrote it (fencing).
    etag: Option<String>,
    /// The earliest time whose files must be listed again (failed downloads and listings).
    hold: Option<DateTime<Utc>>,
    window_from: DateTime<Utc>,
    /// Shared with the renewer, which keeps the lease alive while a file takes long (a slow
    /// download between two commits must not let the next scheduled run in).
    lease: Arc<tokio::sync::Mutex<Option<Lease>>>,
    lease_key: String,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    commit_every: std::time::Duration,
    last_commit: Instant,
    clock: Clock,
    /// Why the run was stopped, when it was.
    pub stopped: Option<ScanStop>,
    pub commits: u64,
}

impl ScanHooks {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: State,
        etag: Option<String>,
        window_from: DateTime<Utc>,
        store: Arc<dyn ObjectStore>,
        key: &str,
        lease: Lease,
        lease_ttl: Duration,
        commit_every: std::time::Duration,
        clock: Clock,
    ) -> Self {
        let lease_key = lease.key().to_owned();
        let lease = Arc::new(tokio::sync::Mutex::new(Some(lease)));
        let lost = Arc::new(AtomicBool::new(false));
        let every = (lease_ttl / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(60))
            .max(std::time::Duration::from_millis(50));
        let renewer = tokio::spawn({
            let (lease, store, clock, lost) =
                (lease.clone(), store.clone(), clock.clone(), lost.clone());
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let mut held = lease.lock().await;
                    let Some(l) = held.as_mut() else { break };
                    if let Err(e) = l.renew(store.as_ref(), clock()).await {
                        tracing::error!("{e}");
                        lost.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
        });
        ScanHooks {
            state,
            store,
            key: key.to_owned(),
            etag,
            hold: None,
            window_from,
            lease,
            lease_key,
            lost,
            renewer: Some(renewer),
            commit_every,
            last_commit: Instant::now(),
            clock,
            stopped: None,
            commits: 0,
        }
    }

    fn lease_lost(&self) -> Option<ScanStop> {
        self.lost.load(Ordering::SeqCst).then(|| {
            ScanStop::Lease(LeaseError::Lost {
                key: self.lease_key.clone(),
            })
        })
    }

    /// Renews the lease, then writes the checkpoint: a run that lost its lease must not
    /// overwrite the state of the run that took over.
    async fn commit(&mut self) -> Result<(), ScanStop> {
        let now = (self.clock)();
        if let Some(lost) = self.lease_lost() {
            return Err(lost);
        }
        if let Some(lease) = self.lease.lock().await.as_mut() {
            lease.renew(self.store.as_ref(), now).await?;
        }
        // The checkpoint counts the alarms written so far (`alert_logs`): they must be on
        // disk before it is.
        for path in self.state.alert_logs.keys() {
            crate::notify::sync_alarm_file(std::path::Path::new(path)).map_err(|error| {
                ScanStop::AlarmSync {
                    path: path.clone(),
                    error,
                }
            })?;
        }
        self.etag = self
            .state
            .save(self.store.as_ref(), &self.key, now, self.etag.as_deref())
            .await?;
        self.last_commit = Instant::now();
        self.commits += 1;
        Ok(())
    }

    /// Records a completed window, forgets what the next window cannot list, commits and
    /// gives the lease back. The end never moves backwards (a clock behind, a replay with an
    /// old `--now`), and it is held back so that the next window lists again whatever failed.
    pub async fn finish(&mut self, now: DateTime<Utc>, lateness: Duration) -> Result<(), ScanStop> {
        let mut until = match self.state.scanned_until {
            Some(old) if old > now => {
                tracing::warn!(
                    "the previous run ended at {old}, after this run's time {now}: keeping {old}"
                );
                old
            }
            _ => now,
        };
        if let Some(hold) = self.hold {
            if hold + lateness < until {
                until = hold + lateness;
                tracing::warn!(
                    "some files are not finished (a failed download or listing, or a file waiting for its digest): the next run lists again from {hold}"
                );
            }
        }
        self.state.scanned_until = Some(until);
        self.state.prune(until - lateness);
        self.commit().await?;
        self.release().await;
        Ok(())
    }

    fn hold_from(&mut self, t: DateTime<Utc>) {
        let t = t.max(self.window_from);
        self.hold = Some(self.hold.map_or(t, |h| h.min(t)));
    }

    /// Gives the lease back (also after a failed run: the state written so far stays valid).
    pub async fn release(&mut self) {
        // Take the lease first: the renewer holds the lock through a whole renewal, so this
        // waits for one in progress. Aborting it mid-renewal could drop a write the store
        // completes anyway, leaving this run with a stale version it then cannot release.
        let lease = self.lease.lock().await.take();
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Some(lease) = lease {
            lease.release(self.store.as_ref()).await;
        }
    }
}

#[async_trait]
impl Hooks for ScanHooks {
    fn dedupe(&mut self, alerts: &mut Vec<Alert>) -> usize {
        let before = alerts.len();
        alerts.retain(|a| !self.state.delivered.contains_key(&a.id()));
        before - alerts.len()
    }

    fn listing_failed(&mut self, prefix: &str) {
        // The folder's files may carry the previous day's time (the listing covers a day
        // on each side for that reason): list again from the day before.
        match crate::cts::layout::day_of_prefix(prefix) {
            Some(day) => {
                let from = day.pred_opt().unwrap_or(day).and_hms_opt(0, 0, 0);
                self.hold_from(from.map_or(self.window_from, |t| t.and_utc()));
            }
            None => self.hold_from(self.window_from),
        }
    }

    fn emitted(&mut self, alerts: &[Alert], time: DateTime<Utc>) {
        for a in alerts {
            self.state.delivered.insert(a.id(), time);
        }
    }

    fn written(&mut self, positions: Vec<(String, u64)>) {
        self.state.alert_logs = positions.into_iter().collect();
    }

    fn digest_done(&mut self, key: &str, time: DateTime<Utc>) {
        self.state.processed.insert(key.to_owned(), time);
    }

    fn ledger(&mut self) -> &mut Ledger {
        &mut self.state.integrity
    }

    fn notified_before(&self, sink: &str, id: &str) -> bool {
        self.state
            .notified
            .get(sink)
            .is_some_and(|ids| ids.contains_key(id))
    }

    fn notified(&mut self, sink: &str, ids: &[String], time: DateTime<Utc>) {
        let known = self.state.notified.entry(sink.to_owned()).or_default();
        for id in ids {
            known.insert(id.clone(), time);
        }
    }

    fn finished(&mut self, key: &str, time: DateTime<Utc>, complete: bool) {
        if complete {
            self.state.processed.insert(key.to_owned(), time);
        } else {
            // A sink missed some of its alarms: the next run reads the file again and sends
            // that sink what it lacks.
            self.hold_from(time);
        }
    }

    async fn done(&mut self, outcome: &FileOutcome, deferred: bool) -> bool {
        if let Some(lost) = self.lease_lost() {
            self.stopped = Some(lost);
            return false;
        }
        // A failed download, or a file waiting for its digest, is tried again by the next
        // run; a file whose content is damaged is done (reported now, not again every run);
        // a file whose alarms wait for the end-of-run notifications is done once they went out.
        if outcome.retry {
            self.hold_from(outcome.time);
        } else if deferred {
        } else {
            self.state
                .processed
                .insert(outcome.key.clone(), outcome.time);
        }
        if self.last_commit.elapsed() < self.commit_every {
            return true;
        }
        match self.commit().await {
            Ok(()) => true,
            Err(e) => {
                self.stopped = Some(e);
                false
            }
        }
    }
}

/// Where a shard keeps its checkpoint: `name.json` becomes `name.shard-I-of-N.json`.
pub fn shard_key(key: &str, shard: Option<Shard>) -> String {
    match shard {
        Some(s) if s.count > 1 => {
            let tag = format!("shard-{}-of-{}", s.index, s.count);
            match key.strip_suffix(".json") {
                Some(stem) => format!("{stem}.{tag}.json"),
                None => format!("{key}.{tag}"),
            }
        }
        _ => key.to_owned(),
    }
}

/// Parses `I/N` (0-based index).
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not I/N (e.g. 0/3)"))?;
    let index: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: index {i:?} is not a number"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: count {n:?} is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!(
            "{s:?}: the index must be below the count (0-based)"
        ));
    }
    Ok(Shard { index, count })
}

impl Drop for ScanHooks {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_keys_and_parsing() {
        let s = Some(Shard { index: 1, count: 3 });
        assert_eq!(shard_key("ck.json", s), "ck.shard-1-of-3.json");
        assert_eq!(shard_key("state", s), "state.shard-1-of-3");
        assert_eq!(shard_key("ck.json", None), "ck.json");
        assert_eq!(parse_shard("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("x/3").is_err());
        assert!(parse_shard("1").is_err());
    }
}
