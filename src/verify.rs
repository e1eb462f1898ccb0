//! `verify --from --to`: checks the trace files of a window against the signed CTS digests and
//! walks each digest chain (SPEC §4). The shape follows `aws cloudtrail validate-logs`:
//!
//! 1. **provide**: the discovery stream lists the window's day folders (with a margin of
//!    [`MARGIN`] on both sides, so the digests just outside the window that link to it or list
//!    its last files are seen too);
//! 2. **fetch and validate**: every digest is downloaded, parsed and its signature checked;
//!    every trace file of the window is hashed while it downloads (bounded concurrency, each
//!    object fetched at most once, bodies never kept);
//! 3. **traverse**: per (region, tracker, service) the `previous_digest_*` links are followed
//!    (a missing previous digest is `not_found`, a previous digest whose bytes or signature
//!    differ from what the next one records is `hash_mismatch`/`signature_invalid`), and the
//!    window's hours are checked for digest coverage: CTS writes one digest per hour and
//!    service even without traces, so every uncovered hour is a gap, however many in a row;
//! 4. **report**: the [`Report`] model, rendered by `report.rs`.
//!
//! The per-file rules are pure functions in `cts::digest` ([`DigestIndex`],
//! [`classify_trace`], [`check_signature`]) so scan and backfill can apply the same ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::alert::rfc3339;
use crate::cts::digest::{
    self, classify_trace, same_hex, signature_meta, DigestFile, DigestIndex, Integrity,
};
use crate::cts::layout::{self, Classified, CtsFile, FileKind};
use crate::discover::{self, Candidate, Listed, Scope, Window};
use crate::integrity::DigestCheck;
use crate::pipeline::Failure;
use crate::store::{Hashed, ObjectStore, StoreError};

/// Listing margin around the window: the digest of the window's last hour is written after
/// it ends, and the digest before the window is the first link of the chain.
pub const MARGIN: Duration = Duration::hours(2);
pub use crate::integrity::DIGEST_DELAY;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub window: Window,
    /// How each digest is judged on its own (key, bucket, key mapping, size limit).
    pub check: DigestCheck,
    pub concurrency: usize,
    /// "Now", for telling a digest not yet written from a missing one.
    pub now: DateTime<Utc>,
}

impl Options {
    /// The store key of an object a digest names.
    pub fn store_key(&self, object: &str) -> String {
        self.check.store_key(object)
    }
}

/// A (region, tracker, service) digest chain; `service` is empty for trackers that do not
/// sort by service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId {
    pub region: String,
    pub tracker: String,
    pub service: String,
}

impl ChainId {
    fn of(f: &CtsFile) -> Self {
        ChainId {
            region: f.region.clone(),
            tracker: f.tracker.clone(),
            service: f.service.clone().unwrap_or_default(),
        }
    }
}

/// A time span in the report, RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: String,
    pub to: String,
}

/// One digest or trace file of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    pub kind: FileKind,
    pub key: String,
    pub status: Integrity,
    pub detail: String,
    pub region: Option<String>,
    pub tracker: Option<String>,
    pub service: Option<String>,
    /// The time in the file name (upload time of a trace file, end time of a digest).
    pub time: Option<String>,
}

/// Consecutive hours of a chain without a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub region: String,
    pub tracker: String,
    pub service: String,
    pub from: String,
    pub to: String,
    pub hours: u64,
}

/// Counts of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    pub window_requested: Span,
    /// Earliest start and latest end of the digests read in the window; `null` without any.
    pub window_found: Option<Span>,
    /// Per status, every status a digest can have (zeros included).
    pub digests: BTreeMap<&'static str, u64>,
    /// Per status, every status a trace file can have (zeros included).
    pub trace_files: BTreeMap<&'static str, u64>,
    pub gaps: u64,
    /// Hours without a digest, all gaps together.
    pub missing_hours: u64,
    /// Objects or folders that could not be read (not an integrity verdict; see `errors`).
    pub errors: u64,
    /// Trace files too recent for their digest to exist yet: not judged.
    pub pending_trace_files: u64,
    /// Every file valid, no gap, no error: the exit code is 0 exactly then.
    pub all_valid: bool,
}

/// How an hour of a chain looks on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Covered by digests, and every file of the hour is valid.
    Valid,
    /// A digest or trace file of the hour is not valid.
    Invalid,
    /// No digest covers the hour.
    Missing,
    /// Too recent to judge, or before the chain started.
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineRow {
    pub chain: Option<ChainId>,
    pub cells: Vec<Cell>,
}

/// Per chain and hour of the window: what the HTML report draws.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pub hours: Vec<DateTime<Utc>>,
    pub rows: Vec<TimelineRow>,
}

/// The integrity report of one window.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub summary: ReportSummary,
    /// Every digest and trace file judged, by key.
    pub files: Vec<FileEntry>,
    pub gaps: Vec<Gap>,
    /// What could not be listed or read, with the reason.
    pub errors: Vec<Failure>,
    #[serde(skip)]
    pub timeline: Timeline,
}

impl Report {
    pub fn all_valid(&self) -> bool {
        self.summary.all_valid
    }
}

/// A digest as read and judged.
#[derive(Debug, Clone)]
struct SeenDigest {
    key: String,
    chain: ChainId,
    name_time: DateTime<Utc>,
    /// Named for a time inside the window (the others only lend context).
    in_window: bool,
    md5_hex: String,
    signature: Option<String>,
    parsed: Option<DigestFile>,
    status: Integrity,
    detail: String,
}

impl SeenDigest {
    /// The span the digest covers: its start and end times, or the hour before the time in
    /// its name when it cannot be read.
    fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let d = self.parsed.as_ref();
        let end = d
            .and_then(|d| d.digest_end_time.as_deref())
            .and_then(parse_time)
            .unwrap_or(self.name_time);
        let start = d
            .and_then(|d| d.digest_start_time.as_deref())
            .and_then(parse_time)
            .filter(|s| *s <= end)
            .unwrap_or(end - Duration::hours(1));
        (start, end)
    }
}

/// `2017-03-28T02-09-17Z` as CTS writes it, or RFC 3339.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    layout::parse_stamp(s.trim()).or_else(|| {
        DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// One result of the fetch stage.
enum Fetched {
    Trace {
        cand: Candidate,
        hashed: Option<Hashed>,
    },
    Digest(Box<SeenDigest>),
    Error(Failure),
    Pass,
}

fn failure(key: &str, e: &StoreError) -> Failure {
    // Store errors name the key already.
    let text = e.to_string();
    Failure {
        key: key.to_owned(),
        reason: text
            .strip_prefix(&format!("{key}: "))
            .unwrap_or(&text)
            .to_owned(),
    }
}

async fn hash_trace(store: Arc<dyn ObjectStore>, cand: Candidate) -> Fetched {
    // Hashing needs no limit on memory; a size limit would leave a file unverified.
    match store.get_md5(&cand.key, u64::MAX).await {
        Ok(h) => Fetched::Trace {
            cand,
            hashed: Some(h),
        },
        // Listed a moment ago and gone now: as absent as a file never written.
        Err(StoreError::NotFound { .. }) => Fetched::Trace { cand, hashed: None },
        Err(e) => Fetched::Error(failure(&cand.key, &e)),
    }
}

async fn fetch_digest(store: Arc<dyn ObjectStore>, cand: Candidate, opts: Arc<Options>) -> Fetched {
    let got = match store.get(&cand.key, opts.check.max_digest_size).await {
        Ok(g) => g,
        Err(e) => return Fetched::Error(failure(&cand.key, &e)),
    };
    let md5_hex = digest::md5_hex(&got.body);
    let meta = signature_meta(&got.metadata);
    let (parsed, status, detail) = opts.check.judge(&cand.key, &got.body, &md5_hex, &meta);
    Fetched::Digest(Box::new(SeenDigest {
        chain: ChainId::of(&cand.file),
        name_time: cand.file.time,
        in_window: opts.window.contains(cand.file.time),
        key: cand.key,
        md5_hex,
        signature: meta.signature,
        parsed,
        status,
        detail,
    }))
}

/// Verifies the window. Errors that make the run pointless (no source, no regions) are
/// found before this, by the caller.
pub async fn run(
    store: Arc<dyn ObjectStore>,
    scope: &Scope,
    regions: &[String],
    opts: Options,
    source: String,
) -> Report {
    let opts = Arc::new(opts);
    let window = opts.window;
    let listing = Window {
        from: window.from - MARGIN,
        to: window.to + MARGIN,
    };
    let prefixes = discover::day_prefixes(scope, regions, listing);
    let mut errors = Vec::new();
    let mut traces: BTreeMap<String, (Option<CtsFile>, Option<Hashed>)> = BTreeMap::new();
    let mut digests: Vec<SeenDigest> = Vec::new();

    // Fetch: every digest of the listing window, every trace file of the window.
    let concurrency = opts.concurrency.max(1);
    let mut fetched = discover::files(store.clone(), scope, listing, prefixes)
        .map(|item| {
            let store = store.clone();
            let opts = opts.clone();
            async move {
                match item {
                    Listed::Trace(c) if window.contains(c.file.time) => hash_trace(store, c).await,
                    Listed::Digest(c) => fetch_digest(store, c, opts).await,
                    Listed::Bad { key, reason } => Fetched::Error(Failure { key, reason }),
                    Listed::ListingFailed { prefix, reason } => Fetched::Error(Failure {
                        key: prefix,
                        reason: format!("listing failed: {reason}"),
                    }),
                    Listed::Trace(_) | Listed::Unrelated(_) => Fetched::Pass,
                }
            }
        })
        .buffer_unordered(concurrency);
    while let Some(f) = fetched.next().await {
        match f {
            Fetched::Trace { cand, hashed } => {
                traces.insert(cand.key, (Some(cand.file), hashed));
            }
            Fetched::Digest(d) => digests.push(*d),
            Fetched::Error(e) => errors.push(e),
            Fetched::Pass => {}
        }
    }
    digests.sort_by(|a, b| a.key.cmp(&b.key));

    // Traverse: the links between digests can change a digest's verdict, so they go before
    // the index that trace files are judged by.
    let missing = check_links(&opts, &mut digests);
    let mut not_found = Vec::new();
    for (key, named_by) in missing {
        match store.head(&key).await {
            // Outside the listed folders but present: the chain holds.
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => not_found.push((key, named_by)),
            Err(e) => errors.push(failure(&key, &e)),
        }
    }

    let mut index = DigestIndex::default();
    for d in &digests {
        if let Some(p) = &d.parsed {
            index.add(&d.key, p, d.status, |o| opts.store_key(o));
        }
    }

    // Objects the window's digests list that the listing did not show (another folder, or
    // deleted): fetched once each, here.
    let root = scope.root();
    let mut extra: BTreeSet<String> = BTreeSet::new();
    for d in digests.iter().filter(|d| d.in_window) {
        let Some(p) = &d.parsed else { continue };
        for f in &p.log_files {
            let Some(key) = f.object.as_deref().map(|o| opts.store_key(o)) else {
                continue;
            };
            if traces.contains_key(&key) {
                continue;
            }
            // Hostile or broken digests must not make verify read the rest of the bucket (or
            // another bucket): only trace files under the source's CloudTraces/ are fetched.
            let other_bucket = f
                .bucket
                .as_ref()
                .zip(opts.check.bucket.as_ref())
                .filter(|(named, ours)| named != ours);
            let outside = !key.starts_with(&root)
                || key
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..");
            match other_bucket {
                Some((named, _)) => errors.push(Failure {
                    key: key.clone(),
                    reason: format!(
                        "listed by the digest {} in bucket {named}, not the source's: not fetched",
                        d.key
                    ),
                }),
                None if outside => errors.push(Failure {
                    key: key.clone(),
                    reason: format!(
                        "listed by the digest {}, but outside {root}: not fetched",
                        d.key
                    ),
                }),
                None => {
                    extra.insert(key);
                }
            }
        }
    }
    let mut more = stream::iter(extra)
        .map(|key| {
            let store = store.clone();
            async move {
                let r = store.get_md5(&key, u64::MAX).await;
                (key, r)
            }
        })
        .buffer_unordered(concurrency);
    while let Some((key, r)) = more.next().await {
        let file = key
            .strip_prefix(&root)
            .and_then(|rel| match layout::classify(rel) {
                Classified::File(f) => Some(f),
                _ => None,
            });
        match r {
            Ok(h) => {
                traces.insert(key, (file, Some(h)));
            }
            Err(StoreError::NotFound { .. }) => {
                traces.insert(key, (file, None));
            }
            Err(e) => errors.push(failure(&key, &e)),
        }
    }

    build_report(&opts, source, digests, not_found, &traces, &index, errors)
}

/// Follows every digest's `previous_digest_*` link. A previous digest that was read gets its
/// verdict revised when its bytes or signature differ from what the next digest records;
/// previous digests not read are returned as (key, named by) for the caller to look up.
fn check_links(opts: &Options, digests: &mut [SeenDigest]) -> Vec<(String, String)> {
    let by_key: HashMap<String, usize> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| (d.key.clone(), i))
        .collect();
    // A moved digest is found by the object it names.
    let by_object: HashMap<String, usize> = digests
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let o = d.parsed.as_ref()?.digest_object.as_deref()?;
            Some((opts.store_key(o), i))
        })
        .collect();
    let mut revised: Vec<(usize, Integrity, String)> = Vec::new();
    let mut missing = Vec::new();
    for d in digests.iter() {
        let Some(p) = &d.parsed else { continue };
        let Some(prev) = p.previous_digest_object.as_deref() else {
            continue;
        };
        let prev_key = opts.store_key(prev);
        let Some(&i) = by_key.get(&prev_key).or_else(|| by_object.get(&prev_key)) else {
            // Digests before the window lend context only; their own links are not followed.
            if d.name_time >= opts.window.from {
                missing.push((prev_key, d.key.clone()));
            }
            continue;
        };
        let target = &digests[i];
        if target.status != Integrity::Valid {
            continue;
        }
        if let Some(h) = &p.previous_digest_hash_value {
            if !same_hex(h, &target.md5_hex) {
                revised.push((
                    i,
                    Integrity::HashMismatch,
                    format!(
                        "the next digest {} records MD5 {h}, the stored bytes have {}",
                        d.key, target.md5_hex
                    ),
                ));
                continue;
            }
        }
        if let (Some(s), Some(own)) = (&p.previous_digest_signature, &target.signature) {
            if !same_hex(s, own) {
                revised.push((
                    i,
                    Integrity::SignatureInvalid,
                    format!(
                        "its signature differs from the one the next digest {} records",
                        d.key
                    ),
                ));
            }
        }
    }
    for (i, status, detail) in revised {
        digests[i].status = status;
        digests[i].detail = detail;
    }
    missing.sort();
    missing.dedup();
    missing
}

/// The hours `[from, to)` of the window, on the hour.
fn window_hours(w: Window) -> Vec<DateTime<Utc>> {
    let Ok(mut h) = w.from.duration_trunc(Duration::hours(1)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while h < w.to {
        out.push(h);
        h += Duration::hours(1);
    }
    out
}

/// Whether a digest spanning `[start, end]` covers the hour starting at `h`: more than the
/// shared second at the border (a digest starting at the previous digest's end time,
/// `HH:59:59`, does not cover that previous hour).
fn covers((start, end): (DateTime<Utc>, DateTime<Utc>), h: DateTime<Utc>) -> bool {
    let lo = start.max(h);
    let hi = end.min(h + Duration::hours(1));
    hi - lo > Duration::seconds(1)
}

fn counts(statuses: &[Integrity], entries: &[&FileEntry]) -> BTreeMap<&'static str, u64> {
    let mut m: BTreeMap<&'static str, u64> = statuses.iter().map(|s| (s.as_str(), 0)).collect();
    for e in entries {
        *m.entry(e.status.as_str()).or_default() += 1;
    }
    m
}

fn entry(
    kind: FileKind,
    key: String,
    file: Option<&CtsFile>,
    status: Integrity,
    detail: String,
) -> FileEntry {
    FileEntry {
        kind,
        key,
        status,
        detail,
        region: file.map(|f| f.region.clone()),
        tracker: file.map(|f| f.tracker.clone()),
        service: file.and_then(|f| f.service.clone()),
        time: file.map(|f| rfc3339(f.time)),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    opts: &Options,
    source: String,
    digests: Vec<SeenDigest>,
    not_found: Vec<(String, String)>,
    traces: &BTreeMap<String, (Option<CtsFile>, Option<Hashed>)>,
    index: &DigestIndex,
    mut errors: Vec<Failure>,
) -> Report {
    let window = opts.window;
    let root_of = |key: &str| -> Option<CtsFile> {
        // Keys carry the source prefix; classification starts at `CloudTraces/`.
        let i = key.find(layout::ROOT)?;
        match layout::classify(&key[i + layout::ROOT.len()..]) {
            Classified::File(f) => Some(f),
            _ => None,
        }
    };
    let mut files = Vec::new();
    let mut pending = 0u64;
    // (chain, hour) → something in that hour is not valid.
    let mut bad_hours: BTreeSet<(ChainId, DateTime<Utc>)> = BTreeSet::new();
    let hour_of = |t: DateTime<Utc>| t.duration_trunc(Duration::hours(1)).unwrap_or(t);

    for d in digests.iter().filter(|d| d.in_window) {
        let file = root_of(&d.key);
        if d.status != Integrity::Valid {
            let (start, end) = d.span();
            for h in window_hours(Window {
                from: start,
                to: end,
            }) {
                if covers((start, end), h) {
                    bad_hours.insert((d.chain.clone(), h));
                }
            }
        }
        files.push(entry(
            FileKind::Digest,
            d.key.clone(),
            file.as_ref(),
            d.status,
            d.detail.clone(),
        ));
    }
    for (key, named_by) in &not_found {
        let file = root_of(key);
        if let Some(f) = &file {
            bad_hours.insert((ChainId::of(f), hour_of(f.time)));
        }
        files.push(entry(
            FileKind::Digest,
            key.clone(),
            file.as_ref(),
            Integrity::NotFound,
            format!("named as the previous digest by {named_by}, absent from the store"),
        ));
    }
    for (key, (file, hashed)) in traces {
        let listings = index.listings(key);
        let (status, detail) = classify_trace(listings, hashed.as_ref().map(|h| &h.md5));
        let file = file.clone().or_else(|| root_of(key));
        if status == Integrity::NotInDigest
            && file
                .as_ref()
                .is_some_and(|f| f.time + DIGEST_DELAY > opts.now)
        {
            pending += 1;
            continue;
        }
        if status != Integrity::Valid {
            if let Some(f) = &file {
                bad_hours.insert((ChainId::of(f), hour_of(f.time)));
            }
        }
        files.push(entry(
            FileKind::Trace,
            key.clone(),
            file.as_ref(),
            status,
            detail,
        ));
    }
    files.sort_by(|a, b| (a.key.as_str(), a.kind).cmp(&(b.key.as_str(), b.kind)));

    // Coverage: every hour of every chain seen (by its digests or trace files).
    let hours = window_hours(window);
    let mut chains: BTreeMap<ChainId, Vec<&SeenDigest>> = BTreeMap::new();
    for d in &digests {
        chains.entry(d.chain.clone()).or_default().push(d);
    }
    for f in files.iter().filter(|f| f.kind == FileKind::Trace) {
        if let (Some(region), Some(tracker)) = (&f.region, &f.tracker) {
            chains
                .entry(ChainId {
                    region: region.clone(),
                    tracker: tracker.clone(),
                    service: f.service.clone().unwrap_or_default(),
                })
                .or_default();
        }
    }
    let mut gaps = Vec::new();
    let mut timeline = Timeline {
        hours: hours.clone(),
        rows: Vec::new(),
    };
    for (chain, ds) in &chains {
        let spans: Vec<_> = ds.iter().map(|d| d.span()).collect();
        // A chain that starts inside the listing (a digest without a previous one) owes no
        // digests for the hours before its start.
        let start = ds
            .iter()
            .min_by_key(|d| d.span().1)
            .filter(|d| {
                d.parsed
                    .as_ref()
                    .is_some_and(|p| p.previous_digest_object.is_none())
            })
            .map(|d| hour_of(d.span().0));
        let mut cells = Vec::with_capacity(hours.len());
        let mut run: Option<(DateTime<Utc>, u64)> = None;
        let close = |run: &mut Option<(DateTime<Utc>, u64)>, gaps: &mut Vec<Gap>| {
            if let Some((from, n)) = run.take() {
                gaps.push(Gap {
                    region: chain.region.clone(),
                    tracker: chain.tracker.clone(),
                    service: chain.service.clone(),
                    from: rfc3339(from),
                    to: rfc3339(from + Duration::hours(n as i64)),
                    hours: n,
                });
            }
        };
        for &h in &hours {
            let expected =
                start.is_none_or(|s| h >= s) && h + Duration::hours(1) + DIGEST_DELAY <= opts.now;
            let covered = spans.iter().any(|s| covers(*s, h));
            let cell = if bad_hours.contains(&(chain.clone(), h)) {
                Cell::Invalid
            } else if covered {
                Cell::Valid
            } else if expected {
                Cell::Missing
            } else {
                Cell::None
            };
            if expected && !covered {
                match &mut run {
                    Some((_, n)) => *n += 1,
                    None => run = Some((h, 1)),
                }
            } else {
                close(&mut run, &mut gaps);
            }
            cells.push(cell);
        }
        close(&mut run, &mut gaps);
        timeline.rows.push(TimelineRow {
            chain: Some(chain.clone()),
            cells,
        });
    }

    let found: Vec<(DateTime<Utc>, DateTime<Utc>)> = digests
        .iter()
        .filter(|d| d.in_window && d.parsed.is_some())
        .map(SeenDigest::span)
        .collect();
    let window_found = match (
        found.iter().map(|s| s.0).min(),
        found.iter().map(|s| s.1).max(),
    ) {
        (Some(from), Some(to)) => Some(Span {
            from: rfc3339(from),
            to: rfc3339(to),
        }),
        _ => None,
    };
    errors.sort_by(|a, b| a.key.cmp(&b.key));
    let digest_entries: Vec<&FileEntry> = files
        .iter()
        .filter(|f| f.kind == FileKind::Digest)
        .collect();
    let trace_entries: Vec<&FileEntry> =
        files.iter().filter(|f| f.kind == FileKind::Trace).collect();
    let all_valid =
        files.iter().all(|f| f.status == Integrity::Valid) && gaps.is_empty() && errors.is_empty();
    let summary = ReportSummary {
        window_requested: Span {
            from: rfc3339(window.from),
            to: rfc3339(window.to),
        },
        window_found,
        digests: counts(&Integrity::DIGEST, &digest_entries),
        trace_files: counts(&Integrity::TRACE, &trace_entries),
        gaps: gaps.len() as u64,
        missing_hours: gaps.iter().map(|g| g.hours).sum(),
        errors: errors.len() as u64,
        pending_trace_files: pending,
        all_valid,
    };
    Report {
        source,
        summary,
        files,
        gaps,
        errors,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cts::digest::PublicKey;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 9, 30, h, m, s).unwrap()
    }

    #[test]
    fn hourly_digests_cover_their_hour_only() {
        let span = (t(4, 59, 59), t(5, 59, 59));
        assert!(!covers(span, t(4, 0, 0)));
        assert!(covers(span, t(5, 0, 0)));
        assert!(!covers(span, t(6, 0, 0)));
        // A digest spanning three hours (digests were missing before it) covers all three.
        let long = (t(1, 59, 59), t(4, 59, 59));
        assert!(covers(long, t(2, 0, 0)) && covers(long, t(3, 0, 0)) && covers(long, t(4, 0, 0)));
    }

    #[test]
    fn window_hours_start_on_the_hour() {
        let w = Window {
            from: t(1, 30, 0),
            to: t(3, 0, 0),
        };
        assert_eq!(window_hours(w), vec![t(1, 0, 0), t(2, 0, 0)]);
    }

    #[test]
    fn directory_copies_match_objects_from_cloudtraces_on() {
        let opts = Options {
            window: Window {
                from: t(0, 0, 0),
                to: t(1, 0, 0),
            },
            check: DigestCheck {
                key: PublicKey::cts_default(),
                bucket: None,
                keys_from_root: true,
                max_digest_size: 1 << 20,
            },
            concurrency: 1,
            now: t(1, 0, 0),
        };
        assert_eq!(opts.store_key("org/CloudTraces/a/b"), "CloudTraces/a/b");
        assert_eq!(opts.store_key("CloudTraces/a/b"), "CloudTraces/a/b");
        assert_eq!(opts.store_key("elsewhere/x"), "elsewhere/x");
        let mut exact = opts;
        exact.check.keys_from_root = false;
        assert_eq!(
            exact.store_key("org/CloudTraces/a/b"),
            "org/CloudTraces/a/b"
        );
    }
}
