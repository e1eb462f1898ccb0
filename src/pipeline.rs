//! The processing pipeline: fetch (async, bounded) → check & decode & detect (rayon) → emit,
//! in key order whatever the parallelism.

use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use md5::{Digest, Md5};
use serde::Serialize;

use crate::alert::{rfc3339, Alert, Template};
use crate::cts::trace::{inflate, parse_traces};
use crate::detect::Rule;
use crate::discover::{Candidate, Discovery, Window};
use crate::notify::JsonLines;
use crate::store::ObjectStore;

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
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
    /// MD5 of the bytes as stored (what CTS digests list), when the file was downloaded.
    pub md5: Option<[u8; 16]>,
    pub traces: u64,
    pub alerts: Vec<Alert>,
    /// What could not be read; the file counts as failed when this is not empty, even if
    /// part of it was read (its alerts are still emitted).
    pub problems: Vec<String>,
}

impl Processor {
    /// Checks, decodes and inspects one downloaded file. CPU-bound: run it on rayon.
    pub fn process(&self, cand: &Candidate, raw: &[u8]) -> FileOutcome {
        let md5: [u8; 16] = Md5::digest(raw).into();
        let inflated = inflate(raw, self.max_file_size);
        let mut problems = Vec::new();
        if let Some(e) = &inflated.error {
            problems.push(e.to_string());
        }
        let parsed = parse_traces(&inflated.json);
        // A JSON error right at the end of a truncated gzip says the same thing twice.
        if inflated.error.is_none() || problems.is_empty() {
            problems.extend(parsed.errors.iter().map(ToString::to_string));
        } else if let Some(first) = parsed.errors.first() {
            problems.push(format!("then {first}"));
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
            compressed_bytes: raw.len() as u64,
            decompressed_bytes: inflated.json.len() as u64,
            md5: Some(md5),
            traces: parsed.traces.len() as u64,
            alerts,
            problems,
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
    pub digest_files: u64,
    pub unrelated_objects: u64,
    /// Objects that could not be listed, read or processed, and listings that failed.
    pub errors: u64,
    pub failures: Vec<Failure>,
    pub duration_seconds: f64,
}

/// Runs every trace file of `found` through `proc`, writing alerts to `sink` in key order.
/// `concurrency` bounds the downloads in flight, and so the memory used.
pub async fn run(
    store: Arc<dyn ObjectStore>,
    found: &Discovery,
    window: Window,
    proc: Arc<Processor>,
    concurrency: usize,
    sink: &mut JsonLines,
    summary: &mut Summary,
) -> std::io::Result<()> {
    let started = Instant::now();
    summary.window_from = rfc3339(window.from);
    summary.window_to = rfc3339(window.to);
    summary.regions = found.regions.clone();
    summary.listed_prefixes = found.listed_prefixes;
    summary.files = found.traces.len() as u64;
    summary.digest_files = found.digests.len() as u64;
    summary.unrelated_objects = found.unrelated.len() as u64;
    for key in &found.unrelated {
        tracing::debug!(key = %key, "ignored: not a CTS trace or digest file");
    }
    for (prefix, reason) in &found.failed_listings {
        fail(summary, prefix, &format!("listing failed: {reason}"));
    }
    for (key, reason) in &found.bad {
        fail(summary, key, reason);
    }

    let mut outcomes = stream::iter(found.traces.iter().cloned())
        .map(|cand| fetch_and_process(store.clone(), proc.clone(), cand))
        .buffered(concurrency.max(1));
    while let Some(outcome) = outcomes.next().await {
        summary.bytes += outcome.compressed_bytes;
        summary.decompressed_bytes += outcome.decompressed_bytes;
        summary.traces += outcome.traces;
        summary.alarms += outcome.alerts.len() as u64;
        sink.emit(&outcome.alerts)?;
        if !outcome.problems.is_empty() {
            summary.files_failed += 1;
            fail(summary, &outcome.key, &outcome.problems.join("; "));
        }
    }
    sink.finish()?;
    summary.duration_seconds += started.elapsed().as_secs_f64();
    Ok(())
}

fn fail(summary: &mut Summary, key: &str, reason: &str) {
    tracing::error!("{key}: {reason}");
    summary.errors += 1;
    summary.failures.push(Failure {
        key: key.to_owned(),
        reason: reason.to_owned(),
    });
}

async fn fetch_and_process(
    store: Arc<dyn ObjectStore>,
    proc: Arc<Processor>,
    cand: Candidate,
) -> FileOutcome {
    let raw = match store.get(&cand.key, proc.max_file_size).await {
        Ok(o) => o.body,
        Err(e) => {
            return FileOutcome {
                key: cand.key.clone(),
                compressed_bytes: 0,
                decompressed_bytes: 0,
                md5: None,
                traces: 0,
                alerts: Vec::new(),
                problems: vec![format!(
                    "download failed: {}",
                    // Store errors name the key already; the report puts it first.
                    e.to_string()
                        .strip_prefix(&format!("{}: ", cand.key))
                        .map_or_else(|| e.to_string(), str::to_owned)
                )],
            };
        }
    };
    let key = cand.key.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(proc.process(&cand, &raw));
    });
    match rx.await {
        Ok(outcome) => outcome,
        // Only if the worker panicked: report it rather than lose the file.
        Err(_) => FileOutcome {
            key,
            compressed_bytes: 0,
            decompressed_bytes: 0,
            md5: None,
            traces: 0,
            alerts: Vec::new(),
            problems: vec!["processing aborted unexpectedly".into()],
        },
    }
}
