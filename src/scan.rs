//! `scan`: every trace file that appeared since the previous run, exactly once.
//!
//! Each run lists the window `[scanned_until - lateness, now)` (the first run: `[since, now)`)
//! and processes the files of that window not yet in the checkpoint. Keys are never compared
//! with "the last key processed" (unpadded day folders make key order differ from time order);
//! a file that appears late, or shares its timestamp with another, is still in the window and
//! not in the checkpoint. The checkpoint keeps only what the next window can list, so it stays
//! as small as the lateness window, and it is written only after the alerts of the files it
//! records have reached the sink.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::alert::Alert;
use crate::checkpoint::{CheckpointError, Shard, State};
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
}

/// How a scan commits its progress.
pub struct ScanHooks {
    pub state: State,
    store: Arc<dyn ObjectStore>,
    key: String,
    lease: Option<Lease>,
    commit_every: std::time::Duration,
    last_commit: Instant,
    clock: Box<dyn Fn() -> DateTime<Utc> + Send>,
    /// Why the run was stopped, when it was.
    pub stopped: Option<ScanStop>,
    pub commits: u64,
}

impl ScanHooks {
    pub fn new(
        state: State,
        store: Arc<dyn ObjectStore>,
        key: &str,
        lease: Lease,
        commit_every: std::time::Duration,
        clock: Box<dyn Fn() -> DateTime<Utc> + Send>,
    ) -> Self {
        ScanHooks {
            state,
            store,
            key: key.to_owned(),
            lease: Some(lease),
            commit_every,
            last_commit: Instant::now(),
            clock,
            stopped: None,
            commits: 0,
        }
    }

    /// Renews the lease, then writes the checkpoint: a run that lost its lease must not
    /// overwrite the state of the run that took over.
    async fn commit(&mut self) -> Result<(), ScanStop> {
        let now = (self.clock)();
        if let Some(lease) = self.lease.as_mut() {
            lease.renew(self.store.as_ref(), now).await?;
        }
        self.state.save(self.store.as_ref(), &self.key, now).await?;
        self.last_commit = Instant::now();
        self.commits += 1;
        Ok(())
    }

    /// Records a completed window, forgets what the next window cannot list, commits and
    /// gives the lease back.
    pub async fn finish(
        &mut self,
        until: DateTime<Utc>,
        lateness: Duration,
    ) -> Result<(), ScanStop> {
        self.state.scanned_until = Some(until);
        self.state.prune(until - lateness);
        self.commit().await?;
        self.release().await;
        Ok(())
    }

    /// Gives the lease back (also after a failed run: the state written so far stays valid).
    pub async fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
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

    async fn done(&mut self, outcome: &FileOutcome) -> bool {
        // A failed download is tried again by the next run; a file whose content is damaged
        // is done (reported now, not again every run).
        if !outcome.retry {
            self.state
                .processed
                .insert(outcome.key.clone(), outcome.time);
        }
        for a in &outcome.alerts {
            self.state.delivered.insert(a.id(), outcome.time);
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
