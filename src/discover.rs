//! Discovery: time window → day folders → the trace and digest files in the window.
//!
//! Only the day folders of the window are listed (both the unpadded `2026/9/3/` and the padded
//! `2026/09/03/` form, plus one day on each side, so a file whose folder date and name date
//! differ around midnight is still found). Listing cost therefore grows with the days, regions
//! and trackers of the window, never with the size of the bucket.
//!
//! Folders are listed in key order a few at a time and their files handed on as a stream, so
//! memory holds a few day listings, not the window. Because every listed prefix ends in `/` and
//! none contains another, files come out in global key order.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::stream::{self, Stream, StreamExt};

use crate::cts::layout::{self, Classified, CtsFile, FileKind};
use crate::store::{ListPage, ListRequest, ObjectStore, StoreError};

/// Day listings fetched ahead of the one being processed.
const LIST_AHEAD: usize = 4;

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

impl Scope {
    /// `<prefix>CloudTraces/`
    pub fn root(&self) -> String {
        format!("{}{}", self.prefix, layout::ROOT)
    }
}

/// A file found in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub size: u64,
    pub file: CtsFile,
}

/// What the listings of the window hold, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Trace(Candidate),
    Digest(Candidate),
    /// Not a CTS file: ignored but counted.
    Unrelated(String),
    /// Named like a CTS file but unreadable as one: reported.
    Bad {
        key: String,
        reason: String,
    },
    /// A folder that could not be listed: its files are unknown, reported.
    ListingFailed {
        prefix: String,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot list the region folders under {root}: {source}")]
    Regions { root: String, source: StoreError },
    #[error("no region folders under {root}: is the source right? (CTS writes CloudTraces/<region>/...)")]
    NoRegions { root: String },
    #[error("region folder {region:?} not found under {root}{}", present_hint(.present))]
    MissingRegion {
        region: String,
        root: String,
        present: Vec<String>,
    },
}

fn present_hint(present: &[String]) -> String {
    if present.is_empty() {
        String::new()
    } else {
        format!(" (present: {})", present.join(", "))
    }
}

/// The region folders under `<prefix>CloudTraces/`.
pub async fn list_regions(
    store: &dyn ObjectStore,
    root: &str,
) -> Result<Vec<String>, DiscoverError> {
    let page = store
        .list_all(root, Some("/"))
        .await
        .map_err(|source| DiscoverError::Regions {
            root: root.to_owned(),
            source,
        })?;
    Ok(page
        .common_prefixes
        .iter()
        .filter_map(|p| p.strip_prefix(root))
        .map(|p| p.trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect())
}

/// The regions to read: the configured ones, each checked to exist (a typo must not pass as
/// "nothing to do"), or every region folder present, at least one.
pub async fn regions(store: &dyn ObjectStore, scope: &Scope) -> Result<Vec<String>, DiscoverError> {
    let root = scope.root();
    let Some(wanted) = &scope.regions else {
        let found = list_regions(store, &root).await?;
        if found.is_empty() {
            return Err(DiscoverError::NoRegions { root });
        }
        return Ok(found);
    };
    for region in wanted {
        let probe = ListRequest {
            prefix: format!("{root}{region}/"),
            delimiter: Some("/".into()),
            cursor: None,
            max_keys: Some(1),
        };
        let page = store
            .list_page(&probe)
            .await
            .map_err(|source| DiscoverError::Regions {
                root: root.clone(),
                source,
            })?;
        if page.objects.is_empty() && page.common_prefixes.is_empty() {
            return Err(DiscoverError::MissingRegion {
                region: region.clone(),
                root: root.clone(),
                present: list_regions(store, &root).await.unwrap_or_default(),
            });
        }
    }
    Ok(wanted.clone())
}

/// The folders to list for `window`, in key order.
pub fn day_prefixes(scope: &Scope, regions: &[String], window: Window) -> Vec<String> {
    let root = scope.root();
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
    for region in regions {
        for day in &days {
            for folder in layout::day_folders(*day) {
                for tracker in &trackers {
                    prefixes.push(format!("{root}{region}/{folder}{tracker}"));
                }
            }
        }
    }
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// Lists `prefixes` a few at a time and yields what they hold, in key order.
pub fn files(
    store: Arc<dyn ObjectStore>,
    scope: &Scope,
    window: Window,
    prefixes: Vec<String>,
) -> impl Stream<Item = Listed> + Send + 'static {
    let root = scope.root();
    let services = scope.services.clone();
    let window_days = (
        window.days().first().copied(),
        window.days().last().copied(),
    );
    stream::iter(prefixes)
        .map(move |prefix| {
            let store = store.clone();
            async move {
                let listing = store.list_all(&prefix, None).await;
                (prefix, listing)
            }
        })
        .buffered(LIST_AHEAD)
        .flat_map(move |(prefix, listing)| {
            let sorted = sort_listing(
                &root,
                services.as_deref(),
                window,
                window_days,
                prefix,
                listing,
            );
            stream::iter(sorted)
        })
}

fn sort_listing(
    root: &str,
    services: Option<&[String]>,
    window: Window,
    (first_day, last_day): (Option<NaiveDate>, Option<NaiveDate>),
    prefix: String,
    listing: Result<ListPage, StoreError>,
) -> Vec<Listed> {
    let page = match listing {
        Ok(p) => p,
        Err(e) => {
            return vec![Listed::ListingFailed {
                prefix,
                reason: e.to_string(),
            }]
        }
    };
    let mut out = Vec::with_capacity(page.objects.len());
    for obj in page.objects {
        let Some(rel) = obj.key.strip_prefix(root) else {
            out.push(Listed::Unrelated(obj.key));
            continue;
        };
        match layout::classify(rel) {
            Classified::File(file) => {
                if !window.contains(file.time) || !service_selected(services, &file) {
                    continue;
                }
                let kind = file.kind;
                let c = Candidate {
                    key: obj.key,
                    size: obj.size,
                    file,
                };
                out.push(match kind {
                    FileKind::Trace => Listed::Trace(c),
                    FileKind::Digest => Listed::Digest(c),
                });
            }
            Classified::BadName { day, reason } => {
                // Only the window's own days: the extra days around it are listed for files
                // that belong to the window, not for reporting their neighbours.
                if first_day.is_some_and(|f| f <= day) && last_day.is_some_and(|l| day <= l) {
                    out.push(Listed::Bad {
                        key: obj.key,
                        reason,
                    });
                }
            }
            Classified::Unrelated => out.push(Listed::Unrelated(obj.key)),
        }
    }
    // Listings are in key order already; sorting keeps the promise for any backend.
    out.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    out
}

fn key_of(l: &Listed) -> &str {
    match l {
        Listed::Trace(c) | Listed::Digest(c) => &c.key,
        Listed::Unrelated(k) | Listed::Bad { key: k, .. } => k,
        Listed::ListingFailed { prefix, .. } => prefix,
    }
}

/// Files of trackers that do not sort by service have no service folder; the filter cannot
/// judge them, so they are kept rather than silently dropped.
fn service_selected(services: Option<&[String]>, file: &CtsFile) -> bool {
    match (services, &file.service) {
        (Some(wanted), Some(s)) => wanted.iter().any(|w| w.eq_ignore_ascii_case(s)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window(from: (i32, u32, u32), to: (i32, u32, u32)) -> Window {
        Window {
            from: Utc
                .with_ymd_and_hms(from.0, from.1, from.2, 0, 0, 0)
                .unwrap(),
            to: Utc.with_ymd_and_hms(to.0, to.1, to.2, 0, 0, 0).unwrap(),
        }
    }

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

    #[test]
    fn prefixes_cover_the_window_and_a_day_around_it_in_key_order() {
        let scope = Scope {
            prefix: "p/".into(),
            ..Scope::default()
        };
        let p = day_prefixes(
            &scope,
            &["eu-de".into()],
            window((2026, 10, 1), (2026, 10, 2)),
        );
        assert_eq!(
            p,
            vec![
                "p/CloudTraces/eu-de/2026/09/30/",
                "p/CloudTraces/eu-de/2026/10/01/",
                "p/CloudTraces/eu-de/2026/10/02/",
                "p/CloudTraces/eu-de/2026/10/1/",
                "p/CloudTraces/eu-de/2026/10/2/",
                "p/CloudTraces/eu-de/2026/9/30/",
            ]
        );
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(p, sorted);
    }

    #[test]
    fn trackers_narrow_the_prefixes() {
        let scope = Scope {
            trackers: Some(vec!["system".into(), "data".into()]),
            ..Scope::default()
        };
        let p = day_prefixes(
            &scope,
            &["r".into()],
            window((2026, 10, 11), (2026, 10, 12)),
        );
        assert_eq!(p.len(), 3 * 2);
        assert!(p
            .iter()
            .all(|x| x.ends_with("/system/") || x.ends_with("/data/")));
    }
}
