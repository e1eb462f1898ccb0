//! Scan state: which files are done and which alarms were delivered, within the lateness
//! window, persisted atomically through an [`ObjectStore`] (temp file + rename locally, one
//! PUT on S3). The format is versioned; a checkpoint this build cannot read stops the run
//! instead of being replaced by an empty one.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::integrity::Ledger;
use crate::store::{ObjectStore, PutMode, StoreError};

/// The checkpoint format this build writes; it reads this and older ones.
/// Version 2 added `integrity` (files awaiting their digest), `notified` (alarm ids per
/// notification sink) and `alert_logs`; version 1 files are read as having none.
pub const FORMAT_VERSION: u32 = 2;

/// Which part of the files a scan owns when several share the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `key` belongs to this shard: a hash of the key that does not depend on the
    /// build, the platform or the order of listing, so N scans split the files with no
    /// overlap and no gap.
    pub fn owns(&self, key: &str) -> bool {
        use md5::{Digest, Md5};
        if self.count <= 1 {
            return true;
        }
        let d = Md5::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index)
    }
}

/// What a scan remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The source this state belongs to (`s3://bucket/prefix/` or a directory).
    pub source: String,
    pub shard: Option<Shard>,
    /// The end of the window of the last completed run. The next run lists from
    /// `scanned_until - lateness`, so a file may appear up to `lateness` late.
    pub scanned_until: Option<DateTime<Utc>>,
    /// Where the first run's window started, so a first run that crashed resumes there rather
    /// than at a `--since` recomputed from the clock.
    #[serde(default)]
    pub started_from: Option<DateTime<Utc>>,
    /// What the entries below cover: nothing older was kept. A window never starts before it,
    /// so raising the lateness cannot list files whose records were already forgotten.
    #[serde(default)]
    pub horizon: Option<DateTime<Utc>>,
    /// Trace files processed, with the time in their name; only those the next window can
    /// still list are kept, so the state does not grow with the bucket's history.
    pub processed: BTreeMap<String, DateTime<Utc>>,
    /// Alarm ids (`rule:trace_id`) delivered to every sink, with the time of their file.
    pub delivered: BTreeMap<String, DateTime<Utc>>,
    /// Integrity checks in progress: files processed before their digest was read, files a
    /// digest listed before they were processed, chains that write digests.
    #[serde(default)]
    pub integrity: Ledger,
    /// Per notification sink (`smn:oncall`, ...), the alarm ids it received, with the time
    /// they were sent: a sink is never sent an alarm twice, and one that failed gets what it
    /// missed from the next run.
    #[serde(default)]
    pub notified: BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
    /// Per alarm file (`--alerts FILE`), its length when this state was written: alarms found
    /// beyond it were written by a run that died before its next commit, and are recorded as
    /// delivered by the next run instead of being written again.
    #[serde(default)]
    pub alert_logs: BTreeMap<String, u64>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {key}: {source}")]
    Store { key: String, source: StoreError },
    #[error("checkpoint {key} is not readable ({reason}); fix or delete it to start over (see README, \"How state works\")")]
    Unreadable { key: String, reason: String },
    #[error("checkpoint {key} has format version {found}, newer than this ctsguard understands ({FORMAT_VERSION}); upgrade ctsguard or delete the checkpoint")]
    TooNew { key: String, found: u32 },
    #[error("checkpoint {key} belongs to source {found:?}, not {expected:?}; use another --checkpoint or delete it")]
    OtherSource {
        key: String,
        found: String,
        expected: String,
    },
    #[error("checkpoint {key} was changed by another run since this one read it; stopping without overwriting it")]
    Changed { key: String },
    #[error("checkpoint {key} belongs to shard {found:?}, not {expected:?}")]
    OtherShard {
        key: String,
        found: Option<Shard>,
        expected: Option<Shard>,
    },
}

impl State {
    pub fn new(
        source: &str,
        shard: Option<Shard>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        State {
            version: FORMAT_VERSION,
            source: source.to_owned(),
            shard,
            scanned_until: None,
            started_from: Some(since),
            horizon: None,
            processed: BTreeMap::new(),
            delivered: BTreeMap::new(),
            integrity: Ledger::default(),
            notified: BTreeMap::new(),
            alert_logs: BTreeMap::new(),
            updated_at: now,
        }
    }

    /// Forgets what the next window (starting at `horizon`) can no longer list.
    pub fn prune(&mut self, horizon: DateTime<Utc>) {
        // Never move the horizon back: what was forgotten stays forgotten.
        let horizon = self.horizon.map_or(horizon, |h| h.max(horizon));
        self.processed.retain(|_, t| *t >= horizon);
        self.delivered.retain(|_, t| *t >= horizon);
        self.integrity.prune(horizon);
        for ids in self.notified.values_mut() {
            ids.retain(|_, t| *t >= horizon);
        }
        self.notified.retain(|_, ids| !ids.is_empty());
        self.horizon = Some(horizon);
    }

    /// Reads the state at `key` and its ETag; `Ok(None)` when there is none yet.
    pub async fn load(
        store: &dyn ObjectStore,
        key: &str,
        source: &str,
        shard: Option<Shard>,
    ) -> Result<Option<(State, Option<String>)>, CheckpointError> {
        let (body, etag) = match store.get(key, 1 << 30).await {
            Ok(o) => (o.body, o.etag),
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Store {
                    key: key.to_owned(),
                    source,
                })
            }
        };
        let unreadable = |reason: String| CheckpointError::Unreadable {
            key: key.to_owned(),
            reason,
        };
        // Read the version first, so a newer format says "too new", not "garbage".
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
        if v.version > FORMAT_VERSION {
            return Err(CheckpointError::TooNew {
                key: key.to_owned(),
                found: v.version,
            });
        }
        let state: State = serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
        if state.source != source {
            return Err(CheckpointError::OtherSource {
                key: key.to_owned(),
                found: state.source,
                expected: source.to_owned(),
            });
        }
        if state.shard != shard {
            return Err(CheckpointError::OtherShard {
                key: key.to_owned(),
                found: state.shard,
                expected: shard,
            });
        }
        Ok(Some((state, etag)))
    }

    /// Writes the state in one request (atomic on both backends), only over the version this
    /// run read or wrote last (`etag`; none: only if there is no checkpoint yet). Returns the
    /// new ETag. A checkpoint changed by someone else fails with `Changed`, never overwritten.
    pub async fn save(
        &mut self,
        store: &dyn ObjectStore,
        key: &str,
        now: DateTime<Utc>,
        etag: Option<&str>,
    ) -> Result<Option<String>, CheckpointError> {
        self.updated_at = now;
        // A state read from an older format is written in this one.
        self.version = FORMAT_VERSION;
        let json = serde_json::to_vec(self).map_err(|e| CheckpointError::Unreadable {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        let mode = match etag {
            Some(e) => PutMode::Update { etag: e.to_owned() },
            None => PutMode::Create,
        };
        match store
            .put(key, Bytes::from(json), &BTreeMap::new(), mode)
            .await
        {
            Ok(new) => Ok(new),
            Err(StoreError::PreconditionFailed { .. }) => Err(CheckpointError::Changed {
                key: key.to_owned(),
            }),
            Err(source) => Err(CheckpointError::Store {
                key: key.to_owned(),
                source,
            }),
        }
    }
}

/// Where the next window starts: `lateness` before the end of the last one, never before the
/// horizon of what the state remembers; on a first run where the first window began.
pub fn window_start(state: &State, lateness: Duration, since: DateTime<Utc>) -> DateTime<Utc> {
    match state.scanned_until {
        Some(until) => {
            let start = until - lateness;
            state.horizon.map_or(start, |h| start.max(h))
        }
        None => state.started_from.unwrap_or(since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn shards_split_keys_with_no_overlap_and_no_gap() {
        let keys: Vec<String> = (0..3000)
            .map(|i| format!("CloudTraces/r/2026/10/1/s/IAM/f{i}"))
            .collect();
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for k in &keys {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(k)).collect();
            assert_eq!(owners.len(), 1, "{k}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 800), "{sizes:?}");
        assert!(Shard { index: 0, count: 1 }.owns("anything"));
    }

    #[test]
    fn prune_keeps_only_what_the_next_window_can_list() {
        let mut s = State::new("src", None, t(0), t(0));
        s.processed.insert("old".into(), t(1));
        s.processed.insert("new".into(), t(5));
        s.delivered.insert("login:x".into(), t(2));
        s.prune(t(3));
        assert_eq!(s.processed.keys().collect::<Vec<_>>(), vec!["new"]);
        assert!(s.delivered.is_empty());
        // A larger lateness later cannot reach behind what was forgotten.
        s.scanned_until = Some(t(9));
        s.prune(t(2));
        assert_eq!(s.horizon, Some(t(3)));
        assert_eq!(window_start(&s, Duration::hours(24), t(0)), t(3));
        assert_eq!(window_start(&s, Duration::hours(1), t(0)), t(8));
    }

    #[test]
    fn a_crashed_first_run_resumes_where_it_started() {
        let s = State::new("src", None, t(1), t(5));
        assert_eq!(window_start(&s, Duration::hours(24), t(4)), t(1));
    }

    #[tokio::test]
    async fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(
            State::load(&store, "c.json", "src", None).await.unwrap(),
            None
        );
        let mut s = State::new("src", None, t(0), t(0));
        s.scanned_until = Some(t(4));
        s.processed.insert("k".into(), t(3));
        let etag = s.save(&store, "c.json", t(4), None).await.unwrap();
        let (back, read_etag) = State::load(&store, "c.json", "src", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, s);
        assert_eq!(read_etag, etag);
        // Writing over a version this run did not read (or creating over an existing one)
        // fails: a run that lost its lease cannot overwrite its successor's state.
        assert!(matches!(
            s.save(&store, "c.json", t(5), None).await,
            Err(CheckpointError::Changed { .. })
        ));
        assert!(matches!(
            s.save(&store, "c.json", t(5), Some("0123")).await,
            Err(CheckpointError::Changed { .. })
        ));
        assert!(s
            .save(&store, "c.json", t(5), etag.as_deref())
            .await
            .is_ok());

        assert!(matches!(
            State::load(&store, "c.json", "other", None).await,
            Err(CheckpointError::OtherSource { .. })
        ));
        let shard = Some(Shard { index: 1, count: 2 });
        assert!(matches!(
            State::load(&store, "c.json", "src", shard).await,
            Err(CheckpointError::OtherShard { .. })
        ));
        std::fs::write(dir.path().join("c.json"), br#"{"version": 99}"#).unwrap();
        assert!(matches!(
            State::load(&store, "c.json", "src", None).await,
            Err(CheckpointError::TooNew { found: 99, .. })
        ));
        std::fs::write(dir.path().join("c.json"), b"{not json").unwrap();
        let e = State::load(&store, "c.json", "src", None)
            .await
            .unwrap_err();
        assert!(matches!(e, CheckpointError::Unreadable { .. }), "{e}");
    }
}
