//! The processing pipeline: fetch (async, bounded) → check & decode & detect (rayon) → emit,
//! in key order whatever the parallelism.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::{self, Either, FutureExt};
use futures::stream::StreamExt;
use md5::{Digest, Md5};
use serde::Serialize;

use crate::alert::{rfc3339, Alert, Template};
use crate::cts::trace::{inflate_into, parse_traces};
use crate::detect::Rule;
use crate::discover::{self, Candidate, Listed, Scope, Window};
use crate::notify::JsonLines;
use crate::progress::Progress;
use crate::store::ObjectStore;

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
}

/// The result of one trace file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub key: String,
    /// The upload time in the file's name.
    pub time: DateTime<Utc>,
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
    /// MD5 of the bytes as stored (what CTS digests list), when the file was downloaded.
    pub md5: Option<[u8; 16]>,
    pub traces: u64,
    pub alerts: Vec<Alert>,
    /// What could not be read; the file counts as failed when this is not empty, even if
    /// part of it was read (its alerts are still emitted).
    pub problems: Vec<String>,
    /// The problem may pass (the download failed): try the file again in a later run.
    pub retry: bool,
}

thread_local! {
    /// Each rayon worker's decompression buffer, kept from file to file.
    static INFLATE_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A worker keeps a buffer up to this size; one huge file must not pin its memory for the run.
const KEEP_BUFFER: usize = 64 << 20;

impl Processor {
    /// Checks, decodes and inspects one downloaded file. CPU-bound: run it on rayon.
    pub fn process(&self, cand: &Candidate, raw: &[u8]) -> FileOutcome {
        let mut buf = INFLATE_BUF.take();
        let outcome = self.process_with(cand, raw, &mut buf);
        if buf.capacity() <= KEEP_BUFFER {
            INFLATE_BUF.set(buf);
        }
        outcome
    }

    fn process_with(&self, cand: &Candidate, raw: &[u8], buf: &mut Vec<u8>) -> FileOutcome {
        let md5: [u8; 16] = Md5::digest(raw).into();
        let inflated = inflate_into(raw, self.max_file_size, buf);
        let parsed = parse_traces(&inflated.json);
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
            compressed_bytes: raw.len() as u64,
            decompressed_bytes: inflated.json.len() as u64,
            md5: Some(md5),
            traces: parsed.traces.len() as u64,
            alerts,
            problems,
            retry: false,
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
    pub traces: u64,
    pub alarms: u64,
    /// Alarms not sent again because an earlier run delivered them (scan).
    pub alarms_suppressed: u64,
    /// Trace files listed but not processed: done by an earlier scan, or another shard's.
    pub files_skipped: u64,
    pub digest_files: u64,
    /// Trace or digest files failing an integrity check.
    pub integrity_failures: u64,
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
    Note(Listed),
}

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
    /// Which listed trace files to process (`scan` skips files done before and other shards').
    pub select: Arc<dyn Fn(&Candidate) -> bool + Send + Sync>,
    pub progress: Progress,
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
    /// Called once a file's alerts reached the sink; `false` stops the run.
    async fn done(&mut self, _outcome: &FileOutcome) -> bool {
        true
    }
}

/// The hooks of `backfill`: none.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Lists the window's day folders and runs every selected trace file through the processor,
/// writing alerts to `sink` in key order. Returns `false` when the hooks stopped the run.
pub async fn run(
    job: Job,
    sink: &mut JsonLines,
    summary: &mut Summary,
    hooks: &mut dyn Hooks,
) -> std::io::Result<bool> {
    let prefixes = discover::day_prefixes(&job.scope, &job.regions, job.window);
    summary.window_from = rfc3339(job.window.from);
    summary.window_to = rfc3339(job.window.to);
    summary.regions = job.regions.clone();
    summary.listed_prefixes = prefixes.len();

    let listed = discover::files(job.store.clone(), &job.scope, job.window, prefixes);
    let (store, proc, select) = (job.store.clone(), job.proc.clone(), job.select.clone());
    let mut steps = listed
        .map(move |item| match item {
            Listed::Trace(cand) if !select(&cand) => Either::Right(future::ready(Step::Skipped)),
            Listed::Trace(cand) => {
                Either::Left(fetch_and_process(store.clone(), proc.clone(), cand).map(Step::File))
            }
            other => Either::Right(future::ready(Step::Note(other))),
        })
        .buffered(job.concurrency.max(1));
    while let Some(step) = steps.next().await {
        job.progress
            .update(summary.files, summary.bytes, summary.alarms, summary.errors);
        match step {
            Step::File(mut outcome) => {
                summary.files += 1;
                summary.bytes += outcome.compressed_bytes;
                summary.decompressed_bytes += outcome.decompressed_bytes;
                summary.traces += outcome.traces;
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
                sink.emit(&outcome.alerts)?;
                if !outcome.problems.is_empty() {
                    summary.files_failed += 1;
                    summary.fail(&outcome.key, &outcome.problems.join("; "));
                }
                if !hooks.done(&outcome).await {
                    job.progress.finish();
                    sink.finish()?;
                    return Ok(false);
                }
            }
            Step::Skipped => summary.files_skipped += 1,
            Step::Note(Listed::Digest(_)) => summary.digest_files += 1,
            Step::Note(Listed::Unrelated(key)) => {
                summary.unrelated_objects += 1;
                tracing::debug!(key = %key, "ignored: not a CTS trace or digest file");
            }
            Step::Note(Listed::Bad { key, reason }) => summary.fail(&key, &reason),
            Step::Note(Listed::ListingFailed { prefix, reason }) => {
                hooks.listing_failed(&prefix);
                summary.fail(&prefix, &format!("listing failed: {reason}"))
            }
            Step::Note(Listed::Trace(_)) => {}
        }
    }
    job.progress.finish();
    sink.finish()?;
    Ok(true)
}

async fn fetch_and_process(
    store: Arc<dyn ObjectStore>,
    proc: Arc<Processor>,
    cand: Candidate,
) -> FileOutcome {
    let time = cand.file.time;
    let failed = |key: &str, problem: String| FileOutcome {
        key: key.to_owned(),
        time,
        compressed_bytes: 0,
        decompressed_bytes: 0,
        md5: None,
        traces: 0,
        alerts: Vec::new(),
        problems: vec![problem],
        retry: true,
    };
    let raw = match store.get(&cand.key, proc.max_file_size).await {
        Ok(o) => o.body,
        Err(e) => {
            // Store errors name the key already; the report puts it first.
            let text = e.to_string();
            let reason = text
                .strip_prefix(&format!("{}: ", cand.key))
                .unwrap_or(&text);
            return failed(&cand.key, format!("download failed: {reason}"));
        }
    };
    let key = cand.key.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // A panic on hostile input must fail this file, not abort the whole run.
        let outcome = catch_unwind(AssertUnwindSafe(|| proc.process(&cand, &raw)));
        let _ = tx.send(outcome);
    });
    match rx.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            failed(&key, format!("internal error while processing: {what}"))
        }
        Err(_) => failed(&key, "processing was cancelled".into()),
    }
}
