//! The processing pipeline: fetch (async, bounded) → check & decode & detect (rayon) → emit,
//! in key order whatever the parallelism.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::{self, FutureExt};
use futures::stream::{self, StreamExt};
use md5::{Digest, Md5};
use serde::Serialize;

use crate::alert::{rfc3339, Alert, Template};
use crate::cts::digest::{md5_matches, Integrity};
use crate::cts::layout::CtsFile;
use crate::cts::trace::{inflate_into, parse_traces, Parsed};
use crate::detect::{Reason, Rule, RULE_INTEGRITY};
use crate::discover::{self, Candidate, Listed, Scope, Window};
use crate::integrity::{
    digest_due, CheckedDigest, DigestCheck, Expected, Finding, Ledger, Mode, DIGEST_DELAY,
};
use crate::notify::Outputs;
use crate::progress::Progress;
use crate::screen::{framed, ActionScreen};
use crate::store::{ObjectStore, StoreError};

/// Problems reported per file before the rest are only counted: a damaged file of a million
/// lines must not make a million-line report.
const MAX_PROBLEMS_PER_FILE: usize = 5;

/// What decides what an alert is and how files are read.
#[derive(Debug, Clone)]
pub struct Processor {
    pub rule: Rule,
    pub template: Template,
    /// Largest decompressed (and downloaded) size of one file.
    pub max_file_size: u64,
    /// Hash every file (MD5, for `--integrity report`); without integrity checks nothing
    /// reads the hash, and it costs about a third of the time of inflating the file.
    pub hash: bool,
    /// Parse only the files whose text may hold a watched action (`--parse candidates`); `None`
    /// parses every file (`--parse all`, or actions the screen cannot look for).
    pub screen: Option<ActionScreen>,
}

/// The result of one trace file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub key: String,
    /// The upload time in the file's name.
    pub time: DateTime<Utc>,
    /// Where the file sits in the layout (its digest chain).
    pub file: CtsFile,
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
    /// MD5 of the bytes as stored (what CTS digests list), when the file was downloaded.
    pub md5: Option<[u8; 16]>,
    /// Traces parsed: none when the file was screened out.
    pub traces: u64,
    /// Not parsed: inflated whole (so its gzip checksums were checked), framed as JSON, and
    /// its text holds none of the watched actions (see [`crate::screen`]).
    pub screened: bool,
    pub alerts: Vec<Alert>,
    /// What could not be read; the file counts as failed when this is not empty, even if
    /// part of it was read (its alerts are still emitted).
    pub problems: Vec<String>,
    /// The problem may pass (the download failed): try the file again in a later run.
    pub retry: bool,
    /// Not processed yet: `--integrity enforce` waits for the file's digest (a later run
    /// processes it); implies `retry`.
    pub waiting: bool,
}

impl FileOutcome {
    /// A file that was not processed, for `reason` (or waiting when `problem` is `None`).
    fn unprocessed(cand: &Candidate, problem: Option<String>) -> Self {
        FileOutcome {
            key: cand.key.clone(),
            time: cand.file.time,
            file: cand.file.clone(),
            compressed_bytes: 0,
            decompressed_bytes: 0,
            md5: None,
            traces: 0,
            screened: false,
            alerts: Vec::new(),
            waiting: problem.is_none(),
            problems: problem.into_iter().collect(),
            retry: true,
        }
    }

    /// A file judged by its integrity alone and not processed (`enforce`).
    fn rejected(cand: &Candidate, md5: Option<[u8; 16]>, finding: Finding, bytes: u64) -> Self {
        FileOutcome {
            alerts: vec![finding_alert(finding, cand.file.time)],
            md5,
            compressed_bytes: bytes,
            waiting: false,
            retry: false,
            ..FileOutcome::unprocessed(cand, None)
        }
    }
}

/// The alarm of an integrity finding. Where the finding did not come with the file's place
/// in the layout, it is read from the key (region, tracker, service, the time in its name);
/// `time` stands in when the key does not follow the layout.
pub fn finding_alert(f: Finding, time: DateTime<Utc>) -> Alert {
    let reason = Reason::of_integrity(f.status).unwrap_or(Reason::HashMismatch);
    let file = f.file.or_else(|| {
        let at = f.key.find(crate::cts::layout::ROOT)?;
        match crate::cts::layout::classify(&f.key[at + crate::cts::layout::ROOT.len()..]) {
            crate::cts::layout::Classified::File(c) => Some(c),
            _ => None,
        }
    });
    let time = file.as_ref().map_or(time, |c| c.time);
    Alert::integrity(&f.key, file.as_ref(), reason, f.detail, Some(time))
}

thread_local! {
    /// Each rayon worker's decompression buffer, kept from file to file.
    static INFLATE_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A worker keeps a buffer up to this size; one huge file must not pin its memory for the run.
const KEEP_BUFFER: usize = 64 << 20;

impl Processor {
    /// Checks, decodes and inspects one downloaded file. CPU-bound: run it on rayon.
    /// `md5` is the file's hash when the caller has it already.
    pub fn process(&self, cand: &Candidate, raw: &[u8], md5: Option<[u8; 16]>) -> FileOutcome {
        let mut buf = INFLATE_BUF.take();
        let md5 = md5.or_else(|| self.hash.then(|| Md5::digest(raw).into()));
        let outcome = self.process_with(cand, raw, md5, &mut buf);
        if buf.capacity() <= KEEP_BUFFER {
            INFLATE_BUF.set(buf);
        }
        outcome
    }

    fn process_with(
        &self,
        cand: &Candidate,
        raw: &[u8],
        md5: Option<[u8; 16]>,
        buf: &mut Vec<u8>,
    ) -> FileOutcome {
        let inflated = inflate_into(raw, self.max_file_size, buf);
        // A file with a problem is always parsed: the parser says what is wrong, and keeps
        // the traces before a break.
        let screened = inflated.error.is_none()
            && self
                .screen
                .as_ref()
                .is_some_and(|s| framed(&inflated.json) && !s.may_match(&inflated.json));
        let parsed = if screened {
            Parsed::default()
        } else {
            parse_traces(&inflated.json)
        };
        let mut all = inflated.error.iter().chain(&parsed.errors);
        let mut problems: Vec<String> = all
            .by_ref()
            .take(MAX_PROBLEMS_PER_FILE)
            .map(ToString::to_string)
            .collect();
        let more = all.count();
        if more > 0 {
            problems.push(format!("and {more} more problems"));
        }
        let alerts = parsed
            .traces
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let f = self.rule.check(t)?;
                Some(Alert::new(&f, t, &cand.file, &cand.key, i, &self.template))
            })
            .collect();
        FileOutcome {
            key: cand.key.clone(),
            time: cand.file.time,
            file: cand.file.clone(),
            compressed_bytes: raw.len() as u64,
            decompressed_bytes: inflated.json.len() as u64,
            md5,
            traces: parsed.traces.len() as u64,
            screened,
            alerts,
            problems,
            retry: false,
            waiting: false,
        }
    }
}

/// A failed object: which and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub key: String,
    pub reason: String,
}

/// What a run did. Logged at the end; written as JSON with `--summary-json`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub command: String,
    pub source: String,
    pub window_from: String,
    pub window_to: String,
    pub regions: Vec<String>,
    pub listed_prefixes: usize,
    /// Trace files selected by the window and filters.
    pub files: u64,
    pub files_failed: u64,
    /// Bytes downloaded (as stored, usually gzip).
    pub bytes: u64,
    pub decompressed_bytes: u64,
    /// Traces parsed (the traces of screened files are not counted).
    pub traces: u64,
    /// Trace files not parsed because their text holds none of the watched actions.
    pub files_screened: u64,
    pub alarms: u64,
    /// Alarms not sent again because an earlier run delivered them (scan).
    pub alarms_suppressed: u64,
    /// Trace files listed but not processed: done by an earlier scan, or another shard's.
    pub files_skipped: u64,
    pub digest_files: u64,
    /// Trace or digest files failing an integrity check.
    pub integrity_failures: u64,
    /// Trace files processed whose digest has not arrived yet (checked by a later scan).
    pub files_unverified: u64,
    /// Trace files of trackers that write no digests: they cannot be checked.
    pub files_unverifiable: u64,
    /// Trace files not processed because their digest has not arrived yet (`enforce`).
    pub files_awaiting_digest: u64,
    /// Notifications sent to the notification sinks, and those that could not be.
    pub notifications: u64,
    pub notifications_failed: u64,
    pub unrelated_objects: u64,
    /// Objects that could not be listed, read or processed, and listings that failed.
    pub errors: u64,
    pub failures: Vec<Failure>,
    pub duration_seconds: f64,
}

impl Summary {
    pub(crate) fn fail(&mut self, key: &str, reason: &str) {
        tracing::error!(key = %key, reason = %reason, "{key}: {reason}");
        self.errors += 1;
        self.failures.push(Failure {
            key: key.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// One step of the run, in key order: a processed file, a file not selected, or something the
/// listing said.
enum Step {
    File(FileOutcome),
    Skipped,
    Digest(Result<Box<CheckedDigest>, (String, StoreError)>),
    /// A trace file listed only for the digests around the window.
    Outside,
    Note(Listed),
}

/// What becomes of one listed item: known at once, a trace file to read and process, or a
/// digest to fetch.
enum Plan {
    Ready(Step),
    File(Candidate, Option<Expected>),
    Fetch(future::BoxFuture<'static, Step>),
}

/// Local trace files read and processed by one worker job (about 8 MB of JSON).
const LOCAL_BATCH: usize = 8;

/// What to process.
#[derive(Clone)]
pub struct Job {
    pub store: Arc<dyn ObjectStore>,
    pub scope: Scope,
    pub regions: Vec<String>,
    pub window: Window,
    pub proc: Arc<Processor>,
    /// Downloads in flight; with the few day listings read ahead, this bounds memory.
    pub concurrency: usize,
    /// Files (trace or digest) an earlier run finished: not read again.
    pub done_before: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Whether a trace file is this run's (`scan --shard`); digests are read by every shard.
    pub owns: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Integrity checks against the digests; `None` for `--integrity off`.
    pub integrity: Option<Arc<IntegrityJob>>,
    /// The run's time, for telling a digest not yet written from a missing one.
    pub now: DateTime<Utc>,
    pub progress: Progress,
}

/// How a run checks integrity.
#[derive(Debug, Clone)]
pub struct IntegrityJob {
    pub mode: Mode,
    pub check: DigestCheck,
}

/// What a driver does around each file.
#[async_trait]
pub trait Hooks: Send {
    /// Drops alerts an earlier run delivered already; called before they are emitted.
    fn dedupe(&mut self, _alerts: &mut Vec<Alert>) -> usize {
        0
    }
    /// A day folder could not be listed: its files are unknown.
    fn listing_failed(&mut self, _prefix: &str) {}
    /// Alerts reached the sink; `time` is their file's (what their record is pruned by).
    fn emitted(&mut self, _alerts: &[Alert], _time: DateTime<Utc>) {}
    /// How far each alarm file is written, after alarms were emitted.
    fn written(&mut self, _positions: Vec<(String, u64)>) {}
    /// Called once a file's alerts reached the JSON-lines output; `deferred` when they still
    /// wait for the notification sinks (see [`Hooks::finished`]). `false` stops the run.
    async fn done(&mut self, _outcome: &FileOutcome, _deferred: bool) -> bool {
        true
    }
    /// Whether notification sink `sink` got alarm `id` from an earlier run.
    fn notified_before(&self, _sink: &str, _id: &str) -> bool {
        false
    }
    /// Notification sink `sink` got these alarms.
    fn notified(&mut self, _sink: &str, _ids: &[String], _time: DateTime<Utc>) {}
    /// The end-of-run notifications of a deferred file went out: to every sink (`complete`)
    /// or not.
    fn finished(&mut self, _key: &str, _time: DateTime<Utc>, _complete: bool) {}
    /// A digest was read and applied: not to be read again.
    fn digest_done(&mut self, _key: &str, _time: DateTime<Utc>) {}
    /// What the run knows about files processed before their digests were read.
    fn ledger(&mut self) -> &mut Ledger;
}

/// The hooks of `backfill`: nothing is kept after the run.
#[derive(Default)]
pub struct NoHooks {
    ledger: Ledger,
}

impl Hooks for NoHooks {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
}

/// Lists the window's day folders and runs every selected trace file through the processor,
/// writing alerts to `sink` in key order. With integrity checks, the digests of the window
/// are read too and the findings become alerts at the end (`report`), or the digests are read
/// first and gate which files are processed (`enforce`). Returns `false` when the hooks
/// stopped the run.
pub async fn run(
    job: Job,
    out: &mut Outputs,
    summary: &mut Summary,
    hooks: &mut dyn Hooks,
) -> std::io::Result<bool> {
    // Digests are written after the files they list: the digests of the window's last hours
    // are named after its end.
    let listing = match &job.integrity {
        Some(_) => Window {
            from: job.window.from,
            to: job.window.to + DIGEST_DELAY,
        },
        None => job.window,
    };
    // The day folders of the window itself: they are listed with a day's margin on each
    // side already, which holds those digests.
    let prefixes = discover::day_prefixes(&job.scope, &job.regions, job.window);
    summary.window_from = rfc3339(job.window.from);
    summary.window_to = rfc3339(job.window.to);
    summary.regions = job.regions.clone();
    summary.listed_prefixes = prefixes.len();

    let listed = discover::files(job.store.clone(), &job.scope, listing, prefixes).boxed();
    let enforce = job
        .integrity
        .as_ref()
        .filter(|i| i.mode == Mode::Enforce)
        .cloned();
    let mut run = Run {
        digests: Vec::new(),
        listed_traces: HashSet::new(),
        pending: Vec::new(),
        incomplete: false,
    };
    let listed = match &enforce {
        Some(ij) => {
            // Every digest first: a file is processed only once its digest matched.
            let items: Vec<Listed> = listed.collect().await;
            let (digests, rest): (Vec<Listed>, Vec<Listed>) = items
                .into_iter()
                .partition(|l| matches!(l, Listed::Digest(_)));
            let fetched: Vec<Step> = stream::iter(digests)
                .map(|l| fetch_digest_step(&job, ij, l))
                .buffered(job.concurrency.max(1))
                .collect()
                .await;
            for step in fetched {
                run.step_digest(step, summary);
            }
            run.note_traces(&job, &rest);
            run.apply_digests(&job, &ij.check, summary, hooks).await;
            stream::iter(rest).boxed()
        }
        None => listed,
    };
    let store = job.store.clone();
    let (done_before, owns, window) = (job.done_before.clone(), job.owns.clone(), job.window);
    let integrity = job.integrity.clone();
    // Under `enforce`, what the digests read above expect of each file.
    let expected: Arc<HashMap<String, Expected>> = Arc::new(match &enforce {
        Some(_) => hooks.ledger().expected.clone().into_iter().collect(),
        None => HashMap::new(),
    });
    let now = job.now;
    // A digest that could not be read may be the one listing a file: nothing is declared
    // unlisted then, the files wait for the next run.
    let strict = !run.incomplete;
    let plans = listed.map(move |item| match item {
        Listed::Trace(cand) if !window.contains(cand.file.time) => Plan::Ready(Step::Outside),
        Listed::Trace(cand) if done_before(&cand.key) || !owns(&cand.key) => {
            Plan::Ready(Step::Skipped)
        }
        Listed::Trace(cand) => match integrity.as_deref() {
            Some(ij) if ij.mode == Mode::Enforce => match expected.get(&cand.key) {
                Some(exp) => Plan::File(cand, Some(exp.clone())),
                None if strict && digest_due(cand.file.time) <= now => {
                    let f = Finding {
                        key: cand.key.clone(),
                        file: Some(cand.file.clone()),
                        status: Integrity::NotInDigest,
                        detail: "no digest lists it, and its digest is due: not processed".into(),
                    };
                    Plan::Ready(Step::File(FileOutcome::rejected(&cand, None, f, 0)))
                }
                None => Plan::Ready(Step::File(FileOutcome::unprocessed(&cand, None))),
            },
            _ => Plan::File(cand, None),
        },
        Listed::Digest(cand) => match integrity.as_deref() {
            Some(ij) if !done_before(&cand.key) => {
                let (store, check) = (store.clone(), ij.check.clone());
                Plan::Fetch(
                    async move {
                        Step::Digest(check.fetch(store.as_ref(), cand).await.map(Box::new))
                    }
                    .boxed(),
                )
            }
            _ => Plan::Ready(Step::Note(Listed::Digest(cand))),
        },
        other => Plan::Ready(Step::Note(other)),
    });
    let (store, proc) = (job.store.clone(), job.proc.clone());
    let mut steps = match job.store.blocking() {
        // Local files: consecutive files go to a worker together, so that this task wakes
        // once per batch rather than once per file (each wake-up interrupts a worker on a
        // machine with as many workers as cores). Enough batches are in flight to keep every
        // worker busy while this task writes the results of the first.
        Some(_) => {
            let in_flight =
                (job.concurrency / LOCAL_BATCH).max(2 * rayon::current_num_threads() + 1);
            plans
                .ready_chunks(LOCAL_BATCH)
                .map(move |batch| process_batch(store.clone(), proc.clone(), batch))
                .buffered(in_flight)
                .flat_map(stream::iter)
                .boxed()
        }
        None => plans
            .map(move |plan| match plan {
                Plan::Ready(step) => future::ready(step).boxed(),
                Plan::File(cand, expect) => {
                    fetch_and_process(store.clone(), proc.clone(), cand, expect)
                        .map(Step::File)
                        .boxed()
                }
                Plan::Fetch(fetch) => fetch,
            })
            .buffered(job.concurrency.max(1))
            .boxed(),
    };
    while let Some(step) = steps.next().await {
        job.progress
            .update(summary.files, summary.bytes, summary.alarms, summary.errors);
        match step {
            Step::File(mut outcome) => {
                // Only the digest checks ask which files were listed: without them, memory
                // must not grow with the number of files.
                if job.integrity.is_some() {
                    run.listed_traces.insert(outcome.key.clone());
                }
                if outcome.waiting {
                    summary.files_awaiting_digest += 1;
                    if !hooks.done(&outcome, false).await {
                        return stop(&job, out);
                    }
                    continue;
                }
                summary.files += 1;
                summary.bytes += outcome.compressed_bytes;
                summary.decompressed_bytes += outcome.decompressed_bytes;
                summary.traces += outcome.traces;
                summary.files_screened += u64::from(outcome.screened);
                if let (Some(ij), Some(md5)) = (&job.integrity, &outcome.md5) {
                    if ij.mode == Mode::Report {
                        let ledger = hooks.ledger();
                        if let Some(f) = ledger.record(&outcome.key, &outcome.file, md5) {
                            outcome.alerts.push(finding_alert(f, outcome.time));
                        }
                    }
                }
                summary.integrity_failures += outcome
                    .alerts
                    .iter()
                    .filter(|a| a.rule == RULE_INTEGRITY)
                    .count() as u64;
                // The notification sinks keep their own record of what they received.
                let all = (!out.notifier.is_empty()).then(|| outcome.alerts.clone());
                summary.alarms_suppressed += hooks.dedupe(&mut outcome.alerts) as u64;
                summary.alarms += outcome.alerts.len() as u64;
                tracing::debug!(
                    key = %outcome.key,
                    bytes = outcome.compressed_bytes,
                    md5 = %outcome.md5.map(hex::encode).unwrap_or_default(),
                    traces = outcome.traces,
                    alarms = outcome.alerts.len(),
                    "processed"
                );
                out.emit(&outcome.alerts)?;
                hooks.emitted(&outcome.alerts, outcome.time);
                if !outcome.alerts.is_empty() {
                    hooks.written(out.positions());
                }
                let deferred = match &all {
                    Some(all) => {
                        out.notifier
                            .add(Some((&outcome.key, outcome.time)), all, &|sink, id| {
                                hooks.notified_before(sink, id)
                            })
                    }
                    None => false,
                };
                if !outcome.problems.is_empty() {
                    summary.files_failed += 1;
                    summary.fail(&outcome.key, &outcome.problems.join("; "));
                    run.incomplete |= outcome.retry;
                }
                if !hooks.done(&outcome, deferred).await {
                    return stop(&job, out);
                }
            }
            Step::Skipped => summary.files_skipped += 1,
            digest @ Step::Digest(_) => run.step_digest(digest, summary),
            Step::Note(Listed::Digest(_)) => summary.digest_files += 1,
            Step::Outside => {}
            Step::Note(Listed::Unrelated(key)) => {
                summary.unrelated_objects += 1;
                tracing::debug!(key = %key, "ignored: not a CTS trace or digest file");
            }
            Step::Note(Listed::Bad { key, reason }) => summary.fail(&key, &reason),
            Step::Note(Listed::ListingFailed { prefix, reason }) => {
                run.incomplete = true;
                hooks.listing_failed(&prefix);
                summary.fail(&prefix, &format!("listing failed: {reason}"))
            }
            Step::Note(Listed::Trace(_)) => {}
        }
    }
    if let Some(ij) = &job.integrity {
        if ij.mode == Mode::Report {
            run.apply_digests(&job, &ij.check, summary, hooks).await;
        }
        run.settle(&job, ij.mode, out, summary, hooks)?;
    }
    out.finish()?;
    if !out.notifier.is_empty() {
        job.progress.update_text(&format!(
            "sending notifications ({} alarms)",
            out.notifier.pending_alarms()
        ));
        let flush = out.notifier.flush().await;
        for (sink, ids) in &flush.delivered {
            hooks.notified(sink, ids, job.now);
        }
        for (key, time, complete) in &flush.files {
            hooks.finished(key, *time, *complete);
        }
        summary.notifications += flush.sent;
        summary.notifications_failed += flush.unsent;
        for e in &flush.failures {
            summary.fail(&format!("sink {}", e.sink()), &e.to_string());
        }
    }
    job.progress.finish();
    Ok(true)
}

fn stop(job: &Job, out: &mut Outputs) -> std::io::Result<bool> {
    job.progress.finish();
    out.finish()?;
    Ok(false)
}

fn fetch_digest_step(job: &Job, ij: &IntegrityJob, l: Listed) -> future::BoxFuture<'static, Step> {
    let (store, check, done_before) =
        (job.store.clone(), ij.check.clone(), job.done_before.clone());
    async move {
        match l {
            Listed::Digest(c) if !done_before(&c.key) => {
                Step::Digest(check.fetch(store.as_ref(), c).await.map(Box::new))
            }
            other => Step::Note(other),
        }
    }
    .boxed()
}

/// What one run gathered for the integrity checks.
struct Run {
    /// Digests read (not read by an earlier run).
    digests: Vec<CheckedDigest>,
    /// Trace files of the window seen in the listing (processed, failed or waiting).
    listed_traces: HashSet<String>,
    /// Findings not yet alerted.
    pending: Vec<Finding>,
    /// Something could not be read or listed: a file may lack its digest only because the
    /// digest could not be read, so no file is declared unlisted in this run.
    incomplete: bool,
}

impl Run {
    fn step_digest(&mut self, step: Step, summary: &mut Summary) {
        match step {
            Step::Digest(Ok(d)) => {
                summary.digest_files += 1;
                self.digests.push(*d);
            }
            Step::Digest(Err((key, e))) => {
                summary.digest_files += 1;
                self.incomplete = true;
                let text = e.to_string();
                let reason = text.strip_prefix(&format!("{key}: ")).unwrap_or(&text);
                summary.fail(&key, &format!("digest download failed: {reason}"));
            }
            Step::Note(Listed::Digest(_)) => summary.digest_files += 1,
            _ => {}
        }
    }

    fn note_traces(&mut self, job: &Job, items: &[Listed]) {
        for l in items {
            if let Listed::Trace(c) = l {
                if job.window.contains(c.file.time) {
                    self.listed_traces.insert(c.key.clone());
                }
            }
        }
    }

    /// Applies the digests read to the ledger; a listed file that this run did not list and
    /// no earlier run processed is looked up: absent, it was deleted (`not_found`).
    async fn apply_digests(
        &mut self,
        job: &Job,
        check: &DigestCheck,
        summary: &mut Summary,
        hooks: &mut dyn Hooks,
    ) {
        let mut findings = Vec::new();
        let mut unseen = Vec::new();
        for d in &self.digests {
            let (f, u) =
                hooks
                    .ledger()
                    .apply(d, check, job.owns.as_ref(), job.done_before.as_ref());
            findings.extend(f);
            unseen.extend(u.into_iter().filter(|k| !self.listed_traces.contains(k)));
        }
        let store = job.store.clone();
        let mut heads = stream::iter(unseen)
            .map(|key| {
                let store = store.clone();
                async move {
                    let r = store.head(&key).await;
                    (key, r)
                }
            })
            .buffer_unordered(job.concurrency.max(1));
        while let Some((key, r)) = heads.next().await {
            match r {
                // Present but outside this run's listing: checked when it is processed.
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    let digest = hooks
                        .ledger()
                        .expected
                        .remove(&key)
                        .map(|e| e.digest)
                        .unwrap_or_default();
                    findings.push(Finding {
                        key,
                        file: None,
                        status: Integrity::NotFound,
                        detail: format!("listed by {digest}, absent from the store"),
                    });
                }
                Err(e) => {
                    self.incomplete = true;
                    summary.fail(&key, &format!("integrity check failed: {e}"));
                }
            }
        }
        self.pending.extend(findings);
    }

    /// Turns the findings into alerts, then marks the digests done.
    fn settle(
        &mut self,
        job: &Job,
        mode: Mode,
        out: &mut Outputs,
        summary: &mut Summary,
        hooks: &mut dyn Hooks,
    ) -> std::io::Result<()> {
        if self.incomplete {
            tracing::warn!(
                "integrity: some files or digests could not be read; no file is declared unlisted by this run"
            );
        } else {
            let (due, unverifiable) = hooks.ledger().overdue(job.now, mode == Mode::Enforce);
            self.pending.extend(due);
            if !unverifiable.is_empty() {
                summary.files_unverifiable += unverifiable.len() as u64;
                tracing::warn!(
                    "integrity: {} trace files cannot be checked: their trackers write no digests (turn on Verify Trace File, or set --integrity off); first: {}",
                    unverifiable.len(),
                    unverifiable[0]
                );
            }
        }
        summary.files_unverified = hooks.ledger().unverified.len() as u64;
        let mut alerts: Vec<Alert> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|f| {
                let time = f.file.as_ref().map(|c| c.time).unwrap_or(job.now);
                finding_alert(f, time)
            })
            .collect();
        summary.integrity_failures += alerts.len() as u64;
        if !out.notifier.is_empty() {
            out.notifier
                .add(None, &alerts, &|sink, id| hooks.notified_before(sink, id));
        }
        summary.alarms_suppressed += hooks.dedupe(&mut alerts) as u64;
        summary.alarms += alerts.len() as u64;
        for a in &alerts {
            tracing::warn!(key = %a.object, reason = %a.reason.as_str(), "{}", a.message);
        }
        out.emit(&alerts)?;
        hooks.emitted(&alerts, job.now);
        hooks.written(out.positions());
        for d in &self.digests {
            hooks.digest_done(&d.key, d.file.time);
        }
        Ok(())
    }
}

/// A file that could not be downloaded (or read): to be tried again by a later run.
fn download_failed(cand: &Candidate, e: &StoreError) -> FileOutcome {
    // Store errors name the key already; the report puts it first.
    let text = e.to_string();
    let reason = text
        .strip_prefix(&format!("{}: ", cand.key))
        .unwrap_or(&text);
    FileOutcome::unprocessed(cand, Some(format!("download failed: {reason}")))
}

/// Downloads and processes one trace file (on a worker). With `expect`
/// (`--integrity enforce`), the file is processed only when its MD5 is the one its digest
/// records.
async fn fetch_and_process(
    store: Arc<dyn ObjectStore>,
    proc: Arc<Processor>,
    cand: Candidate,
    expect: Option<Expected>,
) -> FileOutcome {
    let fetched = store.get_body(&cand.key, proc.max_file_size).await;
    let failed = FileOutcome::unprocessed(&cand, Some(String::new()));
    let outcome = on_worker(move || process_fetched(&proc, &cand, fetched, expect)).await;
    outcome.unwrap_or_else(|problem| FileOutcome {
        problems: vec![problem],
        ..failed
    })
}

/// Reads and processes a batch of local trace files, in order, on one worker (see
/// [`ObjectStore::blocking`]); the other steps of the batch (a digest to read, a file not
/// selected) keep their places.
async fn process_batch(
    store: Arc<dyn ObjectStore>,
    proc: Arc<Processor>,
    batch: Vec<Plan>,
) -> Vec<Step> {
    let mut steps: Vec<Option<Step>> = Vec::with_capacity(batch.len());
    let (mut files, mut fetches) = (Vec::new(), Vec::new());
    for (at, plan) in batch.into_iter().enumerate() {
        match plan {
            Plan::Ready(step) => steps.push(Some(step)),
            Plan::File(cand, expect) => {
                files.push((at, cand, expect));
                steps.push(None);
            }
            Plan::Fetch(fetch) => {
                fetches.push(fetch.map(move |step| (at, step)));
                steps.push(None);
            }
        }
    }
    // Where each file's outcome goes, and its candidate for an outcome the worker did not give;
    // the worker takes the files themselves. Sharing them with it instead (d8d13ac) saved these
    // few strings but made peak memory erratic (BENCHMARKS.md, the run of 2318d31).
    let places: Vec<(usize, Candidate)> = files.iter().map(|(at, c, _)| (*at, c.clone())).collect();
    let processed = on_worker(move || {
        let Some(reader) = store.blocking() else {
            return Vec::new();
        };
        files
            .into_iter()
            .map(|(_, cand, expect)| {
                let read = reader.read_body(&cand.key, proc.max_file_size);
                process_fetched(&proc, &cand, read, expect)
            })
            .collect::<Vec<_>>()
    });
    let (processed, fetched) = future::join(processed, future::join_all(fetches)).await;
    let mut outcomes = processed.unwrap_or_default().into_iter();
    for (at, cand) in places {
        // Only a worker that stopped before the end leaves a file without its outcome.
        let outcome = outcomes.next().unwrap_or_else(|| {
            FileOutcome::unprocessed(&cand, Some("processing was cancelled".into()))
        });
        steps[at] = Some(Step::File(outcome));
    }
    for (at, step) in fetched {
        steps[at] = Some(step);
    }
    steps.into_iter().flatten().collect()
}

/// Runs `work` on the rayon pool and waits for it without blocking the runtime; `Err` says
/// why it gave no result.
async fn on_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await.map_err(|_| "processing was cancelled".to_owned())
}

/// Processes one trace file as read (`fetched`). A panic on hostile input fails this file,
/// not the run.
fn process_fetched(
    proc: &Processor,
    cand: &Candidate,
    fetched: Result<bytes::Bytes, StoreError>,
    expect: Option<Expected>,
) -> FileOutcome {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let raw = match fetched {
            Ok(body) => body,
            Err(e) => return download_failed(cand, &e),
        };
        let mut known = None;
        if let Some(exp) = expect {
            let md5: [u8; 16] = Md5::digest(&raw).into();
            known = Some(md5);
            if !md5_matches(&exp.md5, &md5) {
                let finding = Finding {
                    key: cand.key.clone(),
                    file: Some(cand.file.clone()),
                    status: Integrity::HashMismatch,
                    detail: format!(
                        "{} records MD5 {}, the stored bytes have {}: not processed",
                        exp.digest,
                        exp.md5,
                        hex::encode(md5)
                    ),
                };
                return FileOutcome::rejected(cand, Some(md5), finding, raw.len() as u64);
            }
        }
        proc.process(cand, &raw, known)
    }));
    outcome.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        FileOutcome::unprocessed(
            cand,
            Some(format!("internal error while processing: {what}")),
        )
    })
}
