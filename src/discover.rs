//! Discovery: time window → day folders → the trace and digest files in the window.
//!
//! Only the day folders of the window are listed (both the unpadded `2026/9/3/` and the padded
//! `2026/09/03/` form, plus one day on each side, so a file whose folder date and name date
//! differ around midnight is still found). Listing cost therefore grows with the days, regions
//! and trackers of the window, never with the size of the bucket.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::cts::layout::{self, Classified, CtsFile, FileKind};
use crate::store::{ObjectStore, StoreError};

/// A half-open time window `[from, to)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }

    /// The calendar days the window touches.
    pub fn days(&self) -> Vec<NaiveDate> {
        if self.to <= self.from {
            return Vec::new();
        }
        let first = self.from.date_naive();
        let last = (self.to - Duration::nanoseconds(1)).date_naive();
        first.iter_days().take_while(|d| *d <= last).collect()
    }
}

/// What to look at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Path prefix before `CloudTraces/` (empty, or ending in `/`).
    pub prefix: String,
    /// Region folders; `None` = discover them under `CloudTraces/`.
    pub regions: Option<Vec<String>>,
    /// Tracker folders; `None` = all.
    pub trackers: Option<Vec<String>>,
    /// Service folders (case-insensitive); `None` = all.
    pub services: Option<Vec<String>>,
}

/// A file found in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub size: u64,
    pub file: CtsFile,
}

#[derive(Debug, Default)]
pub struct Discovery {
    pub regions: Vec<String>,
    /// Trace files in the window, sorted by key.
    pub traces: Vec<Candidate>,
    /// Digest files in the window, sorted by key.
    pub digests: Vec<Candidate>,
    /// Keys in the listed folders that are not CTS files.
    pub unrelated: Vec<String>,
    /// Keys named like CTS files whose names cannot be read, with the reason.
    pub bad: Vec<(String, String)>,
    /// Listings that failed (prefix, reason); their files are unknown.
    pub failed_listings: Vec<(String, String)>,
    /// Number of prefixes listed.
    pub listed_prefixes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot list the region folders under {root}: {source}")]
    Regions { root: String, source: StoreError },
}

/// The region folders under `<prefix>CloudTraces/`.
pub async fn list_regions(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<String>, DiscoverError> {
    let root = format!("{prefix}{}", layout::ROOT);
    let page = store
        .list_all(&root, Some("/"))
        .await
        .map_err(|source| DiscoverError::Regions {
            root: root.clone(),
            source,
        })?;
    Ok(page
        .common_prefixes
        .iter()
        .filter_map(|p| p.strip_prefix(&root))
        .map(|p| p.trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect())
}

/// Lists the day folders of `window` and sorts what is there.
pub async fn discover(
    store: Arc<dyn ObjectStore>,
    scope: &Scope,
    window: Window,
    concurrency: usize,
) -> Result<Discovery, DiscoverError> {
    let regions = match &scope.regions {
        Some(r) => r.clone(),
        None => list_regions(store.as_ref(), &scope.prefix).await?,
    };
    let root = format!("{}{}", scope.prefix, layout::ROOT);
    let days: Vec<NaiveDate> = match (window.days().first(), window.days().last()) {
        (Some(first), Some(last)) => {
            let start = first.pred_opt().unwrap_or(*first);
            let end = last.succ_opt().unwrap_or(*last);
            start.iter_days().take_while(|d| *d <= end).collect()
        }
        _ => Vec::new(),
    };
    let trackers: Vec<String> = match &scope.trackers {
        Some(t) => t.iter().map(|t| format!("{t}/")).collect(),
        None => vec![String::new()],
    };
    let mut prefixes = Vec::new();
    for region in &regions {
        for day in &days {
            for folder in layout::day_folders(*day) {
                for tracker in &trackers {
                    prefixes.push(format!("{root}{region}/{folder}{tracker}"));
                }
            }
        }
    }

    let mut found = Discovery {
        regions,
        listed_prefixes: prefixes.len(),
        ..Discovery::default()
    };
    let listings: Vec<_> = stream::iter(prefixes)
        .map(|p| {
            let store = store.clone();
            async move {
                let r = store.list_all(&p, None).await;
                Ok::<_, DiscoverError>((p, r))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;

    let first_day = window.days().first().copied();
    let last_day = window.days().last().copied();
    for (prefix, listing) in listings {
        let page = match listing {
            Ok(p) => p,
            Err(e) => {
                found.failed_listings.push((prefix, e.to_string()));
                continue;
            }
        };
        for obj in page.objects {
            let Some(rel) = obj.key.strip_prefix(&root) else {
                continue;
            };
            match layout::classify(rel) {
                Classified::File(file) => {
                    if !window.contains(file.time) || !service_selected(scope, &file) {
                        continue;
                    }
                    let c = Candidate {
                        key: obj.key,
                        size: obj.size,
                        file,
                    };
                    match c.file.kind {
                        FileKind::Trace => found.traces.push(c),
                        FileKind::Digest => found.digests.push(c),
                    }
                }
                Classified::BadName { day, reason } => {
                    // Only the window's own days: the extra days around it are listed for
                    // files that belong to the window, not for reporting their neighbours.
                    if first_day.is_some_and(|f| f <= day) && last_day.is_some_and(|l| day <= l) {
                        found.bad.push((obj.key, reason));
                    }
                }
                Classified::Unrelated => found.unrelated.push(obj.key),
            }
        }
    }
    found.traces.sort_by(|a, b| a.key.cmp(&b.key));
    found.digests.sort_by(|a, b| a.key.cmp(&b.key));
    found.unrelated.sort();
    found.bad.sort();
    found.failed_listings.sort();
    Ok(found)
}

/// Files of trackers that do not sort by service have no service folder; the filter cannot
/// judge them, so they are kept rather than silently dropped.
fn service_selected(scope: &Scope, file: &CtsFile) -> bool {
    match (&scope.services, &file.service) {
        (Some(wanted), Some(s)) => wanted.iter().any(|w| w.eq_ignore_ascii_case(s)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn window_days_are_half_open() {
        let w = Window {
            from: Utc.with_ymd_and_hms(2026, 9, 30, 12, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 10, 2, 0, 0, 0).unwrap(),
        };
        let days: Vec<String> = w.days().iter().map(|d| d.to_string()).collect();
        assert_eq!(days, vec!["2026-09-30", "2026-10-01"]);
        assert!(w.contains(w.from));
        assert!(!w.contains(w.to));
        let empty = Window {
            from: w.to,
            to: w.to,
        };
        assert!(empty.days().is_empty());
    }
}
