//! The lease that keeps two scans of the same checkpoint from running at once: an object
//! beside the checkpoint, created only if absent (`If-None-Match: *` on S3, an exclusive
//! create locally) and renewed or taken over only if unchanged (`If-Match`). A lease left by
//! a crashed run expires after its time to live; on the same host, one whose process is gone
//! is stale at once.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{ObjectStore, PutMode, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Random per run, so two runs with the same host and pid are still told apart.
    pub run_id: String,
    /// Kernel boot and PID namespace of the holder: a pid says whether a process is alive
    /// only within the same boot and namespace (containers share host names but not PIDs).
    #[serde(default)]
    pub boot_id: Option<String>,
    #[serde(default)]
    pub pid_namespace: Option<String>,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another scan holds the lease {key} (host {}, pid {}, until {}); try again later, or delete the lease object if that run is known to be dead", .holder.host, .holder.pid, .holder.expires_at)]
    Held { key: String, holder: Holder },
    #[error("the lease {key} was taken over by another run; stopping without committing")]
    Lost { key: String },
    #[error("lease {key}: {source}")]
    Store { key: String, source: StoreError },
}

/// A lease this run holds.
#[derive(Debug)]
pub struct Lease {
    key: String,
    etag: Option<String>,
    holder: Holder,
    ttl: Duration,
}

fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.display().to_string())
}

/// Whether the holder is a process that no longer exists: only decidable for a holder of the
/// same host, boot and PID namespace as this process; anything else waits for the TTL.
fn holder_is_dead_here(h: &Holder) -> bool {
    let same_place = h.host == this_host()
        && h.boot_id.is_some()
        && h.boot_id == boot_id()
        && h.pid_namespace.is_some()
        && h.pid_namespace == pid_namespace();
    same_place
        && h.pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists()
}

impl Lease {
    /// Takes the lease at `key`, or says who holds it.
    pub async fn acquire(
        store: &dyn ObjectStore,
        key: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        let holder = Holder {
            host: this_host(),
            pid: std::process::id(),
            run_id: format!("{:016x}", rand::random::<u64>()),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            acquired_at: now,
            expires_at: now + ttl,
        };
        let mut lease = Lease {
            key: key.to_owned(),
            etag: None,
            holder,
            ttl,
        };
        // Two rounds: a lease that vanishes between our create and our read is retried once.
        for _ in 0..2 {
            match lease.write(store, PutMode::Create).await {
                Ok(()) => return Ok(lease),
                Err(LeaseError::Lost { .. }) => {}
                Err(e) => return Err(e),
            }
            let current = match store.get(key, 1 << 20).await {
                Ok(o) => o,
                Err(StoreError::NotFound { .. }) => continue,
                Err(source) => {
                    return Err(LeaseError::Store {
                        key: key.to_owned(),
                        source,
                    })
                }
            };
            // An unreadable lease object is treated as expired: it cannot name a live holder.
            let held: Option<Holder> = serde_json::from_slice(&current.body).ok();
            if let Some(h) = held {
                if h.expires_at > now && !holder_is_dead_here(&h) {
                    return Err(LeaseError::Held {
                        key: key.to_owned(),
                        holder: h,
                    });
                }
                tracing::warn!(
                    "taking over the stale lease {key} of host {} pid {} (expired {})",
                    h.host,
                    h.pid,
                    h.expires_at
                );
            }
            let Some(etag) = current.etag else {
                return Err(LeaseError::Store {
                    key: key.to_owned(),
                    source: StoreError::other(
                        key,
                        "the store gave no ETag to replace the lease safely",
                    ),
                });
            };
            return match lease.write(store, PutMode::Update { etag }).await {
                Ok(()) => Ok(lease),
                // Another run took it over first: name that run, not this one.
                Err(LeaseError::Lost { .. }) => {
                    let winner = store
                        .get(key, 1 << 20)
                        .await
                        .ok()
                        .and_then(|o| serde_json::from_slice::<Holder>(&o.body).ok());
                    Err(LeaseError::Held {
                        key: key.to_owned(),
                        holder: winner.unwrap_or_else(|| lease.holder.clone()),
                    })
                }
                Err(e) => Err(e),
            };
        }
        Err(LeaseError::Lost {
            key: key.to_owned(),
        })
    }

    async fn write(&mut self, store: &dyn ObjectStore, mode: PutMode) -> Result<(), LeaseError> {
        let json = serde_json::to_vec(&self.holder).map_err(|e| LeaseError::Store {
            key: self.key.clone(),
            source: StoreError::other(&self.key, e),
        })?;
        match store
            .put(&self.key, Bytes::from(json), &BTreeMap::new(), mode)
            .await
        {
            Ok(etag) => {
                self.etag = etag;
                Ok(())
            }
            Err(StoreError::PreconditionFailed { .. }) => Err(LeaseError::Lost {
                key: self.key.clone(),
            }),
            Err(source) => Err(LeaseError::Store {
                key: self.key.clone(),
                source,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Extends the lease, and proves it is still ours: every commit calls this first, so a
    /// run whose lease was taken over stops before it writes anything.
    pub async fn renew(
        &mut self,
        store: &dyn ObjectStore,
        now: DateTime<Utc>,
    ) -> Result<(), LeaseError> {
        let Some(etag) = self.etag.clone() else {
            return Err(LeaseError::Lost {
                key: self.key.clone(),
            });
        };
        self.holder.expires_at = now + self.ttl;
        self.write(store, PutMode::Update { etag }).await
    }

    /// Gives the lease back, unless someone else holds it by now.
    pub async fn release(self, store: &dyn ObjectStore) {
        let ours = match store.head(&self.key).await {
            Ok(h) => h.etag.is_some() && h.etag == self.etag,
            Err(_) => false,
        };
        if ours {
            if let Err(e) = store.delete(&self.key).await {
                tracing::warn!("could not release the lease {}: {e}", self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[tokio::test]
    async fn second_holder_is_refused_and_expired_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let now = Utc::now();
        let ttl = Duration::minutes(10);
        let first = Lease::acquire(&store, "l", ttl, now).await.unwrap();
        let e = Lease::acquire(&store, "l", ttl, now).await.unwrap_err();
        assert!(matches!(e, LeaseError::Held { .. }), "{e}");
        // Eleven minutes later the first lease has expired.
        let later = now + Duration::minutes(11);
        let second = Lease::acquire(&store, "l", ttl, later).await.unwrap();
        // The first run notices at its next renewal and must stop.
        let mut first = first;
        let lost = first.renew(&store, later).await.unwrap_err();
        assert!(matches!(lost, LeaseError::Lost { .. }), "{lost}");
        // Releasing a lease that is not ours leaves it alone.
        first.release(&store).await;
        assert!(store.head("l").await.is_ok());
        second.release(&store).await;
        assert!(matches!(
            store.head("l").await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_lease_of_a_dead_process_on_this_host_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let now = Utc::now();
        let dead = Holder {
            host: this_host(),
            pid: u32::MAX - 1,
            run_id: "x".into(),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            acquired_at: now,
            expires_at: now + Duration::hours(1),
        };
        std::fs::write(dir.path().join("l"), serde_json::to_vec(&dead).unwrap()).unwrap();
        let taken = Lease::acquire(&store, "l", Duration::minutes(10), now).await;
        assert_eq!(taken.is_ok(), cfg!(target_os = "linux"));
        taken.unwrap().release(&store).await;
        // The same pid in another PID namespace (another container) proves nothing.
        let elsewhere = Holder {
            pid_namespace: Some("pid:[1]".into()),
            ..dead
        };
        std::fs::write(
            dir.path().join("l"),
            serde_json::to_vec(&elsewhere).unwrap(),
        )
        .unwrap();
        let refused = Lease::acquire(&store, "l", Duration::minutes(10), now).await;
        assert!(matches!(refused, Err(LeaseError::Held { .. })));
    }
}
