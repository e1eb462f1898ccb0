//! The drivers behind the subcommands. Each returns an [`Outcome`] that `main` maps to the
//! documented exit code.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::alert::rfc3339;
use crate::checkpoint::{self, CheckpointError, State};
use crate::cli::VerifyArgs;
use crate::config::{parse_time, ConfigError, ScanSettings, Settings, Source};
use crate::cts::layout::{self, Classified, FileKind};
use crate::discover::{self, Scope, Window};
use crate::integrity::{DigestCheck, Mode as IntegrityMode};
use crate::lease::{Lease, LeaseError};
use crate::metrics::RunMetrics;
use crate::notify::{AlertDest, Outputs};
use crate::pipeline::{self, IntegrityJob, Job, NoHooks, Processor, Summary};
use crate::progress::Progress;
use crate::scan::{self, ScanHooks, ScanStop};
use crate::screen::{ActionScreen, ParseMode};
use crate::store::{ListRequest, LocalStore, ObjectStore, PutMode, S3Options, S3Store};
use crate::{report, verify};

/// How a command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was processed.
    Done,
    /// Done, but some objects could not be listed, read or processed.
    Partial,
    /// Bad usage or configuration, or the source could not be reached.
    Unusable(String),
    /// Another scan holds the lease (or took it over during this run).
    Busy(String),
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Partial => 1,
            Outcome::Unusable(_) => 2,
            Outcome::Busy(_) => 3,
        }
    }
}

impl From<ConfigError> for Outcome {
    fn from(e: ConfigError) -> Self {
        Outcome::Unusable(e.to_string())
    }
}

/// Says so when every watched action will alarm: usually a forgotten --allow.
fn warn_if_nothing_allowed(s: &Settings) {
    if s.allow_entries == 0 {
        tracing::warn!("the allow-list is empty: every watched action will raise an alarm");
    }
}

/// Opens the store and proves it answers by listing one key under `CloudTraces/`.
async fn open_source(s: &Settings) -> Result<Arc<dyn ObjectStore>, Outcome> {
    let store: Arc<dyn ObjectStore> = match &s.source {
        Source::Local { dir } => Arc::new(
            LocalStore::open(dir)
                .map_err(|e| Outcome::Unusable(format!("source directory {e}")))?,
        ),
        Source::S3 { .. } => Arc::new(S3Store::connect(&s.s3).await),
    };
    let probe = ListRequest {
        prefix: format!("{}{}", s.source.prefix(), layout::ROOT),
        delimiter: Some("/".into()),
        cursor: None,
        max_keys: Some(1),
    };
    store
        .list_page(&probe)
        .await
        .map_err(|e| Outcome::Unusable(format!("cannot reach source {}: {e}", store.describe())))?;
    Ok(store)
}

fn scope(s: &Settings) -> Scope {
    Scope {
        prefix: s.source.prefix().to_owned(),
        regions: s.regions.clone(),
        trackers: s.trackers.clone(),
        services: s.services.clone(),
    }
}

fn source_label(s: &Settings, store: &dyn ObjectStore) -> String {
    format!(
        "{}/{}",
        store.describe().trim_end_matches('/'),
        s.source.prefix()
    )
}

/// `[--from, --to)`, `--to` defaulting to now.
fn parse_window(from: &str, to: Option<&str>) -> Result<Window, Outcome> {
    let window = match (
        parse_time("--from", from),
        to.map(|t| parse_time("--to", t)),
    ) {
        (Ok(from), None) => Window {
            from,
            to: Utc::now(),
        },
        (Ok(from), Some(Ok(to))) => Window { from, to },
        (Err(e), _) | (_, Some(Err(e))) => return Err(e.into()),
    };
    if window.to <= window.from {
        return Err(Outcome::Unusable(format!(
            "--to ({}) must be later than --from ({})",
            window.to, window.from
        )));
    }
    Ok(window)
}

/// `backfill --from --to`: every trace file delivered in the window.
pub async fn backfill(s: Settings, from: &str, to: Option<&str>) -> Outcome {
    let started = Instant::now();
    warn_if_nothing_allowed(&s);
    let window = match parse_window(from, to) {
        Ok(w) => w,
        Err(o) => return o,
    };
    let store = match open_source(&s).await {
        Ok(st) => st,
        Err(o) => return o,
    };
    let mut sink = match Outputs::open(&s.alerts, s.notify.clone()) {
        Ok(k) => k,
        Err(e) => return Outcome::Unusable(e),
    };
    let scope = scope(&s);
    let regions = match discover::regions(store.as_ref(), &scope).await {
        Ok(r) => r,
        Err(e) => return Outcome::Unusable(e.to_string()),
    };
    tracing::info!(
        "backfill {} .. {} over {} (regions {})",
        crate::alert::rfc3339(window.from),
        crate::alert::rfc3339(window.to),
        source_label(&s, store.as_ref()),
        regions.join(", ")
    );
    let proc = processor(&s);
    let mut summary = Summary {
        command: "backfill".into(),
        source: source_label(&s, store.as_ref()),
        ..Summary::default()
    };
    let job = Job {
        store,
        scope,
        regions,
        window,
        proc,
        concurrency: s.concurrency,
        done_before: Arc::new(|_: &str| false),
        owns: Arc::new(|_: &str| true),
        integrity: integrity_job(&s),
        now: Utc::now(),
        progress: Progress::new(s.progress, "backfill"),
    };
    let run = pipeline::run(job, &mut sink, &mut summary, &mut NoHooks::default()).await;
    if summary.files_awaiting_digest > 0 {
        // A one-shot run has no later run to finish them.
        summary.fail(
            "(window)",
            &format!(
                "{} trace files not processed: their digests have not arrived yet (--integrity enforce)",
                summary.files_awaiting_digest
            ),
        );
    }
    summary.duration_seconds = started.elapsed().as_secs_f64();
    if let Err(e) = run {
        summary.errors += 1;
        tracing::error!("writing alerts to {:?} failed: {e}", s.alerts);
    }
    let outcome = finish(&s, &summary);
    publish_metrics(&s, &summary, "backfill", None, outcome).await
}

/// Pushes and/or writes the run's metrics. A failure to do so is reported and makes a
/// successful run exit 1: an unmonitored CronJob must not look healthy.
async fn publish_metrics(
    s: &Settings,
    summary: &Summary,
    command: &str,
    shard: Option<(u32, u32)>,
    outcome: Outcome,
) -> Outcome {
    let metrics = RunMetrics {
        summary,
        command,
        shard,
        exit_code: outcome.exit_code(),
        finished_at: Utc::now(),
    };
    let mut failed = false;
    if let Some(url) = &s.metrics_push {
        if let Err(e) = metrics.push(url).await {
            tracing::error!("--metrics-push: {e}");
            failed = true;
        }
    }
    if let Some(path) = &s.metrics_file {
        if let Err(e) = metrics.write_file(path) {
            tracing::error!("--metrics-file {}: {e}", path.display());
            failed = true;
        }
    }
    match outcome {
        Outcome::Done if failed => Outcome::Partial,
        other => other,
    }
}

/// Logs the summary, writes it as JSON when asked, and decides the outcome.
fn finish(s: &Settings, summary: &Summary) -> Outcome {
    tracing::info!(
        files = summary.files,
        failed = summary.files_failed,
        bytes = summary.bytes,
        decompressed_bytes = summary.decompressed_bytes,
        traces = summary.traces,
        alarms = summary.alarms,
        errors = summary.errors,
        unrelated = summary.unrelated_objects,
        seconds = format!("{:.3}", summary.duration_seconds),
        "summary: {} files, {} traces, {} alarms, {} errors",
        summary.files,
        summary.traces,
        summary.alarms,
        summary.errors
    );
    if let Some(path) = &s.summary_json {
        let written = serde_json::to_vec_pretty(summary)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            tracing::error!("--summary-json {}: {e}", path.display());
            return Outcome::Partial;
        }
    }
    if summary.errors > 0 {
        Outcome::Partial
    } else {
        Outcome::Done
    }
}

/// `check`: the configuration is valid and the source answers; print what is there.
pub async fn check(s: Settings, send_test: bool) -> Outcome {
    let store = match open_source(&s).await {
        Ok(st) => st,
        Err(o) => return o,
    };
    println!("source: {} (reachable)", source_label(&s, store.as_ref()));
    println!(
        "rule: alarm on {} from outside {} allow-list entr{}",
        s.actions.join(", "),
        s.allow_entries,
        if s.allow_entries == 1 { "y" } else { "ies" }
    );
    let regions = match discover::regions(store.as_ref(), &scope(&s)).await {
        Ok(r) => r,
        Err(e) => return Outcome::Unusable(e.to_string()),
    };
    println!("regions: {}", regions.join(", "));
    let root = format!("{}{}", s.source.prefix(), layout::ROOT);
    let mut newest: Option<(DateTime<Utc>, String)> = None;
    for region in &regions {
        let days = match newest_day(store.as_ref(), &format!("{root}{region}/")).await {
            Ok(d) if d.is_empty() => {
                println!("{region}: no day folders");
                continue;
            }
            Ok(d) => d,
            Err(e) => return Outcome::Unusable(format!("listing {root}{region}/: {e}")),
        };
        let mut objects = Vec::new();
        for day in &days {
            match store.list_all(day, None).await {
                Ok(p) => objects.extend(p.objects),
                Err(e) => return Outcome::Unusable(format!("listing {day}: {e}")),
            }
        }
        let mut trackers = BTreeSet::new();
        let mut services = BTreeSet::new();
        for obj in &objects {
            let Some(rel) = obj.key.strip_prefix(&root) else {
                continue;
            };
            if let Classified::File(f) = layout::classify(rel) {
                trackers.insert(f.tracker.clone());
                if let Some(sv) = &f.service {
                    services.insert(sv.clone());
                }
                if f.kind == FileKind::Trace && newest.as_ref().is_none_or(|(t, _)| f.time > *t) {
                    newest = Some((f.time, obj.key.clone()));
                }
            }
        }
        println!(
            "{region}: newest day {}; trackers: {}; services: {}",
            days.iter()
                .map(|d| d
                    .strip_prefix(&format!("{root}{region}/"))
                    .unwrap_or(d)
                    .trim_end_matches('/'))
                .collect::<Vec<_>>()
                .join(" and "),
            trackers.into_iter().collect::<Vec<_>>().join(", "),
            services.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    match newest {
        Some((t, key)) => println!("newest trace file: {key} ({})", crate::alert::rfc3339(t)),
        None => println!("newest trace file: none found"),
    }
    println!("integrity: {}", s.integrity.as_str());
    for d in &s.alerts {
        match d {
            crate::notify::AlertDest::Stdout => println!("alarms: JSON lines to standard output"),
            crate::notify::AlertDest::File(p) => {
                println!("alarms: JSON lines appended to {}", p.display())
            }
        }
    }
    for h in &s.notify {
        println!("notifications: {}", h.sink.describe());
    }
    if send_test {
        return send_tests(&s).await;
    }
    Outcome::Done
}

/// `check --send-test`: one notification through each sink, with its retries.
async fn send_tests(s: &Settings) -> Outcome {
    if s.notify.is_empty() {
        println!("send-test: no notification sink is configured");
        return Outcome::Done;
    }
    let mut failed = 0;
    for h in &s.notify {
        let n = crate::notify::message::test_notification(&h.style);
        match crate::notify::retry::deliver(h.sink.as_ref(), &n, &h.policy).await {
            Ok(attempts) => println!("send-test {}: sent ({attempts} attempt(s))", h.sink.name()),
            Err(e) => {
                failed += 1;
                println!("send-test {}: FAILED: {e}", h.sink.name());
                tracing::error!("{e}");
            }
        }
    }
    if failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Done
    }
}

/// The prefixes of the newest `<Y>/<M>/<D>/` folder under a region, comparing numbers (so
/// `10` is newer than `9`) and keeping every spelling of it (`9/` and `09/`).
async fn newest_day(
    store: &dyn ObjectStore,
    region_prefix: &str,
) -> Result<Vec<String>, crate::store::StoreError> {
    let mut level = vec![region_prefix.to_owned()];
    for _ in 0..3 {
        let mut best: Option<u32> = None;
        let mut next = Vec::new();
        for prefix in &level {
            let page = store.list_all(prefix, Some("/")).await?;
            for p in page.common_prefixes {
                let Some(n) = p
                    .strip_prefix(prefix.as_str())
                    .and_then(|name| name.trim_end_matches('/').parse::<u32>().ok())
                else {
                    continue;
                };
                if best.is_none_or(|b| n > b) {
                    best = Some(n);
                    next.clear();
                }
                if best == Some(n) {
                    next.push(p);
                }
            }
        }
        if next.is_empty() {
            return Ok(Vec::new());
        }
        level = next;
    }
    Ok(level)
}

/// Opens where `setting` (a checkpoint, a report) is kept: `s3://bucket/key` (with the
/// source's endpoint and credentials) or a local file, whose folder is created if needed.
async fn open_location(
    s: &Settings,
    url: &str,
    setting: &str,
) -> Result<(Arc<dyn ObjectStore>, String), Outcome> {
    if let Some(rest) = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("obs://"))
    {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || key.is_empty() {
            return Err(Outcome::Unusable(format!(
                "{setting}: {url:?} must be s3://bucket/key"
            )));
        }
        let opts = S3Options {
            bucket: bucket.to_owned(),
            ..s.s3.clone()
        };
        return Ok((Arc::new(S3Store::connect(&opts).await), key.to_owned()));
    }
    let path = std::path::Path::new(url.strip_prefix("file://").unwrap_or(url));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(Outcome::Unusable(format!(
            "{setting}: {url:?} names no file"
        )));
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        Outcome::Unusable(format!("{setting}: cannot create {}: {e}", dir.display()))
    })?;
    let store = LocalStore::open(&dir).map_err(|e| Outcome::Unusable(format!("{setting}: {e}")))?;
    Ok((Arc::new(store), name.to_owned()))
}

/// The identity of the source a checkpoint belongs to (a directory by its absolute path, so
/// the working directory does not matter).
fn source_id(s: &Settings) -> String {
    match &s.source {
        Source::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        Source::Local { dir } => std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.clone())
            .display()
            .to_string(),
    }
}

/// `scan`: the files that appeared since the previous run, exactly once.
pub async fn scan(s: Settings, sc: ScanSettings) -> Outcome {
    let started = Instant::now();
    warn_if_nothing_allowed(&s);
    let store = match open_source(&s).await {
        Ok(st) => st,
        Err(o) => return o,
    };
    let (ck_store, base_key) = match open_location(&s, &sc.checkpoint, "--checkpoint").await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let key = scan::shard_key(&base_key, sc.shard);
    let lease = match Lease::acquire(
        ck_store.as_ref(),
        &format!("{key}.lease"),
        sc.lease_ttl,
        sc.now,
    )
    .await
    {
        Ok(l) => l,
        Err(e @ LeaseError::Held { .. }) => return Outcome::Busy(e.to_string()),
        Err(e) => return Outcome::Unusable(e.to_string()),
    };
    let source = source_id(&s);
    let (state, etag) = match State::load(ck_store.as_ref(), &key, &source, sc.shard).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::info!(
                "no checkpoint at {key} yet: first run, from {}",
                rfc3339(sc.since)
            );
            (State::new(&source, sc.shard, sc.since, sc.now), None)
        }
        Err(e) => {
            lease.release(ck_store.as_ref()).await;
            return Outcome::Unusable(e.to_string());
        }
    };
    let mut state = state;
    recover_written_alarms(&mut state, &s.alerts, sc.now);
    let window = Window {
        from: checkpoint::window_start(&state, sc.lateness, sc.since),
        to: sc.now,
    };
    // The clock for lease renewals and commit times follows --now when it is given.
    let (base, t0) = (sc.now, Instant::now());
    let clock: scan::Clock =
        Arc::new(move || base + chrono::Duration::from_std(t0.elapsed()).unwrap_or_default());
    let processed: std::collections::HashSet<String> = state.processed.keys().cloned().collect();
    let mut hooks = ScanHooks::new(
        state,
        etag,
        window.from,
        ck_store.clone(),
        &key,
        lease,
        sc.lease_ttl,
        sc.commit_interval,
        clock,
    );

    let scope = scope(&s);
    let prepared = async {
        let regions = discover::regions(store.as_ref(), &scope)
            .await
            .map_err(|e| Outcome::Unusable(e.to_string()))?;
        let sink = Outputs::open(&s.alerts, s.notify.clone()).map_err(Outcome::Unusable)?;
        Ok::<_, Outcome>((regions, sink))
    };
    let (regions, mut sink) = match prepared.await {
        Ok(p) => p,
        Err(o) => {
            hooks.release().await;
            return o;
        }
    };
    tracing::info!(
        "scan {} .. {} over {} (regions {}){}",
        rfc3339(window.from),
        rfc3339(window.to),
        source_label(&s, store.as_ref()),
        regions.join(", "),
        sc.shard
            .map(|sh| format!(", shard {}/{}", sh.index, sh.count))
            .unwrap_or_default()
    );
    let shard = sc.shard;
    let job = Job {
        store: store.clone(),
        scope,
        regions,
        window,
        proc: processor(&s),
        concurrency: s.concurrency,
        done_before: Arc::new(move |k: &str| processed.contains(k)),
        owns: Arc::new(move |k: &str| shard.is_none_or(|sh| sh.owns(k))),
        integrity: integrity_job(&s),
        now: sc.now,
        progress: Progress::new(s.progress, "scan"),
    };
    let mut summary = Summary {
        command: "scan".into(),
        source: source_label(&s, store.as_ref()),
        ..Summary::default()
    };
    let ran = pipeline::run(job, &mut sink, &mut summary, &mut hooks).await;
    let outcome = match ran {
        Ok(true) => match hooks.finish(window.to, sc.lateness).await {
            Ok(()) => None,
            Err(e) => Some(stop_outcome(e)),
        },
        Ok(false) => Some(match hooks.stopped.take() {
            Some(e) => stop_outcome(e),
            None => Outcome::Partial,
        }),
        Err(e) => {
            summary.errors += 1;
            tracing::error!("writing alerts to {:?} failed: {e}", s.alerts);
            None
        }
    };
    hooks.release().await;
    if summary.files == 0 && summary.errors == 0 {
        tracing::info!(
            "nothing new: listed {} day folders, {} files already done or another shard's, nothing downloaded",
            summary.listed_prefixes,
            summary.files_skipped
        );
    }
    summary.duration_seconds = started.elapsed().as_secs_f64();
    let finished = finish(&s, &summary);
    let shard = sc.shard.map(|sh| (sh.index, sh.count));
    publish_metrics(&s, &summary, "scan", shard, outcome.unwrap_or(finished)).await
}

/// Alarms a killed run wrote to an alarm file after its last commit are in the file but not
/// in the checkpoint: recorded as delivered now, so they are not written twice.
fn recover_written_alarms(state: &mut State, dests: &[AlertDest], now: DateTime<Utc>) {
    for d in dests {
        let AlertDest::File(path) = d else { continue };
        let Some(offset) = state.alert_logs.get(&path.display().to_string()).copied() else {
            continue;
        };
        match crate::notify::ids_written_after(path, offset) {
            Ok(Some(ids)) if !ids.is_empty() => {
                tracing::info!(
                    "{}: {} alarms were written after the last commit of an interrupted run; not writing them again",
                    path.display(),
                    ids.len()
                );
                for id in ids {
                    state.delivered.entry(id).or_insert(now);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{}: reading back alarms: {e}", path.display()),
        }
    }
}

fn stop_outcome(e: ScanStop) -> Outcome {
    match e {
        ScanStop::Lease(l @ LeaseError::Lost { .. }) => Outcome::Busy(l.to_string()),
        ScanStop::Checkpoint(c @ CheckpointError::Changed { .. }) => Outcome::Busy(c.to_string()),
        other => Outcome::Unusable(other.to_string()),
    }
}

/// What scan and backfill do with each file.
fn processor(s: &Settings) -> Arc<Processor> {
    Arc::new(Processor {
        rule: s.rule.clone(),
        template: s.template.clone(),
        max_file_size: s.max_decompressed_size,
        // `enforce` hashes before processing; only `report` needs the hash of every file.
        hash: s.integrity == IntegrityMode::Report,
        screen: match s.parse {
            ParseMode::Candidates => {
                let screen = ActionScreen::new(s.rule.actions());
                if screen.is_none() {
                    tracing::warn!(
                        "--parse candidates: an action holds a character JSON may escape \
                         (\", \\, / or a control character): every file is parsed"
                    );
                }
                screen
            }
            ParseMode::All => None,
        },
    })
}

/// The integrity checks of scan and backfill; `None` when off.
fn integrity_job(s: &Settings) -> Option<Arc<IntegrityJob>> {
    (s.integrity != IntegrityMode::Off).then(|| {
        Arc::new(IntegrityJob {
            mode: s.integrity,
            check: digest_check(s),
        })
    })
}

/// How digests are judged: the configured key, the bucket they must name, and for a
/// directory copy, keys matched from `CloudTraces/` on.
fn digest_check(s: &Settings) -> DigestCheck {
    let (bucket, keys_from_root) = match &s.source {
        Source::S3 { bucket, .. } => (Some(bucket.clone()), false),
        Source::Local { .. } => (None, true),
    };
    DigestCheck {
        key: s.public_key.clone(),
        bucket,
        keys_from_root,
        max_digest_size: s.max_decompressed_size,
    }
}

/// `verify --from --to`: the integrity report of a window.
pub async fn verify(s: Settings, a: &VerifyArgs) -> Outcome {
    let window = match parse_window(&a.from, a.to.as_deref()) {
        Ok(w) => w,
        Err(o) => return o,
    };
    // Open the output before the work: a wrong path must not cost a whole run.
    let dest = match &a.output {
        None => None,
        Some(url) => {
            let url = url.replace("{from}", &window.from.format("%Y-%m-%d").to_string());
            match open_location(&s, &url, "--output").await {
                Ok(loc) => Some((url, loc)),
                Err(o) => return o,
            }
        }
    };
    let started = Instant::now();
    let store = match open_source(&s).await {
        Ok(st) => st,
        Err(o) => return o,
    };
    let scope = scope(&s);
    let regions = match discover::regions(store.as_ref(), &scope).await {
        Ok(r) => r,
        Err(e) => return Outcome::Unusable(e.to_string()),
    };
    let source = source_label(&s, store.as_ref());
    tracing::info!(
        "verify {} .. {} over {source} (regions {})",
        crate::alert::rfc3339(window.from),
        crate::alert::rfc3339(window.to),
        regions.join(", ")
    );
    let opts = verify::Options {
        window,
        check: digest_check(&s),
        concurrency: s.concurrency,
        now: Utc::now(),
    };
    let progress = Progress::new(s.progress, "verify");
    progress.update_text("reading digests and trace files");
    let report = verify::run(store, &scope, &regions, opts, source).await;
    progress.finish();
    let sum = &report.summary;
    tracing::info!(
        "verify: digests {:?}, trace files {:?}, {} gaps ({} hours), {} errors",
        sum.digests,
        sum.trace_files,
        sum.gaps,
        sum.missing_hours,
        sum.errors
    );
    let written = match report::render(&report, a.format) {
        Err(e) => Err(e.to_string()),
        Ok(text) => match &dest {
            None => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| e.to_string())
            }
            Some((_, (store, key))) => store
                .put(
                    key,
                    text.into_bytes().into(),
                    &Default::default(),
                    PutMode::Overwrite,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        },
    };
    if let Err(e) = written {
        let to = dest.map_or_else(|| "standard output".to_owned(), |(url, _)| url);
        return Outcome::Unusable(format!("writing the report to {to}: {e}"));
    }
    let as_summary = Summary {
        command: "verify".into(),
        integrity_failures: sum
            .digests
            .iter()
            .chain(&sum.trace_files)
            .filter(|(status, _)| **status != "valid")
            .map(|(_, n)| n)
            .sum::<u64>()
            + sum.gaps,
        errors: sum.errors,
        duration_seconds: started.elapsed().as_secs_f64(),
        ..Summary::default()
    };
    let outcome = if report.all_valid() {
        Outcome::Done
    } else {
        Outcome::Partial
    };
    publish_metrics(&s, &as_summary, "verify", None, outcome).await
}
