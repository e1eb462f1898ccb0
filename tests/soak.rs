//! Crash soak: `ctsguard scan` killed with SIGKILL at random moments, over many runs, against
//! a bucket that grows between runs (files appear in time order, some of them hours late).
//! At the end:
//! - every expected alarm was delivered at least once;
//! - no alarm was delivered twice (the alarm file is read back after a kill: README "What is
//!   guaranteed"), nor again once a committed checkpoint recorded it as delivered;
//! - the checkpoint is valid: it parses, covers the whole time, lists only files that exist,
//!   and every id it calls delivered was delivered.
//!
//! The kill moments and late files come from a seed, printed at the start: set
//! `CTSGUARD_SOAK_SEED` to replay a run. `CTSGUARD_SOAK_ROUNDS` makes the soak longer.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ctsguard::cts::layout::{self, Classified};
use ctsguard::gen::{self, GenSpec};
use ctsguard::store::LocalStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use common::cli::{ctsguard_process, rt};

const ALLOW: &str = "10.0.0.0/8,192.168.1.1,2001:db8::/32";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// One alarm line: (`<rule>:<trace_id>`, object).
fn alarm_lines(path: &Path) -> (Vec<(String, String)>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut partial = 0;
    let mut out = Vec::new();
    for l in text.lines() {
        match serde_json::from_str::<Value>(l) {
            Ok(v) => out.push((
                format!(
                    "{}:{}",
                    v["rule"].as_str().unwrap_or_default(),
                    v["trace_id"].as_str().unwrap_or_default()
                ),
                v["object"].as_str().unwrap_or_default().to_owned(),
            )),
            // A run killed in the middle of a line: that alarm was not delivered.
            Err(_) => partial += 1,
        }
    }
    (out, partial)
}

fn checkpoint(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).expect("the checkpoint is always valid JSON"))
}

fn delivered_ids(ck: &Value) -> BTreeSet<String> {
    ck["delivered"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn scans_killed_at_random_over_a_growing_bucket_lose_nothing_and_repeat_nothing() {
    let seed = env_u64("CTSGUARD_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(7)
    });
    let rounds = env_u64("CTSGUARD_SOAK_ROUNDS").unwrap_or(60) as usize;
    eprintln!(
        "soak seed: {seed}, rounds: {rounds} (CTSGUARD_SOAK_SEED / CTSGUARD_SOAK_ROUNDS to replay)"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // The whole bucket, generated once into a staging folder; files move into the live
    // bucket as time goes by.
    let dir = tempfile::tempdir().expect("tempdir");
    let staging = dir.path().join("staging");
    let live = dir.path().join("bucket");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::create_dir_all(live.join("CloudTraces/eu-de")).expect("mkdir");
    std::fs::create_dir_all(live.join("CloudTraces/eu-nl")).expect("mkdir");
    let spec = GenSpec {
        seed,
        days: 2,
        regions: vec!["eu-de".into(), "eu-nl".into()],
        trackers: vec!["system".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 48,
        traces_per_file: 20,
        allowed: ALLOW.split(',').map(str::to_owned).collect(),
        ..GenSpec::default()
    };
    let manifest = rt()
        .block_on(gen::generate(
            &spec,
            &LocalStore::open(&staging).expect("staging"),
        ))
        .expect("generate");
    let start = Utc
        .with_ymd_and_hms(2026, 9, 30, 0, 0, 0)
        .single()
        .expect("start");
    let end = Utc
        .with_ymd_and_hms(2026, 10, 2, 0, 0, 0)
        .single()
        .expect("end");

    // When each file appears: at the first round after its time, or up to 4 rounds (hours)
    // later for one file in six (late delivery, well within the default lateness of 24h).
    let step = (end - start) / rounds as i32;
    let mut pending: Vec<(usize, String)> = manifest
        .trace_files
        .iter()
        .map(|k| {
            let rel = k.strip_prefix(layout::ROOT).expect("under CloudTraces/");
            let Classified::File(f) = layout::classify(rel) else {
                panic!("{k} is not a trace file")
            };
            let mut round = ((f.time - start).num_seconds() / step.num_seconds()) as usize;
            if rng.random_ratio(1, 6) {
                round += rng.random_range(1..=4);
            }
            (round.min(rounds - 1), k.clone())
        })
        .collect();
    pending.sort();

    let alerts = dir.path().join("alerts.jsonl");
    let ck_path = dir.path().join("state/checkpoint.json");
    let scan = |now: DateTime<Utc>| -> std::process::Command {
        let mut c = ctsguard_process();
        c.args(["scan", "--allow", ALLOW, "--since", "2026-09-29"])
            .args(["--now", &rfc3339(now)])
            .arg("--source")
            .arg(&live)
            .arg("--checkpoint")
            .arg(&ck_path)
            .arg("--alerts")
            .arg(&alerts)
            .args(["--commit-interval", "20ms", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };

    let started = Instant::now();
    let mut killed = 0usize;
    let mut completed = 0usize;
    // Ids a committed checkpoint recorded as delivered, and how many alarm lines existed then.
    let mut recorded: Vec<(BTreeSet<String>, usize)> = Vec::new();
    let mut clean_runs: Vec<(usize, usize)> = Vec::new();
    // The median time of the runs left to finish: kill moments are drawn below it.
    let mut run_times: Vec<Duration> = Vec::new();
    let mut typical_run = Duration::from_millis(250);
    for round in 0..rounds {
        let now = start + step * (round as i32 + 1);
        for (_, key) in pending.iter().filter(|(r, _)| *r == round) {
            let to = live.join(key);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(staging.join(key), &to).expect("copy");
        }
        let before = alarm_lines(&alerts).0.len() + alarm_lines(&alerts).1;
        let spawned = Instant::now();
        let mut child = scan(now).spawn().expect("spawn scan");
        // One run in four is left to finish; the others die at a moment drawn from how long
        // a whole run takes on this machine, so that fast and slow machines both kill runs
        // in every phase (start, listing, processing, commit).
        let kill_after = (!rng.random_ratio(1, 4)).then(|| {
            let span = typical_run.as_micros().max(1) as u64;
            Duration::from_micros(rng.random_range(0..span))
        });
        let status = match kill_after {
            Some(after) => {
                std::thread::sleep(after);
                match child.try_wait().expect("wait") {
                    Some(status) => Some(status),
                    None => {
                        child.kill().expect("SIGKILL");
                        child.wait().expect("reap");
                        killed += 1;
                        None
                    }
                }
            }
            None => {
                let status = child.wait().expect("wait");
                run_times.push(spawned.elapsed());
                run_times.sort();
                typical_run = run_times[run_times.len() / 2];
                Some(status)
            }
        };
        if let Some(status) = status {
            let out = child.wait_with_output().expect("output");
            assert!(
                matches!(status.code(), Some(0) | Some(3)),
                "round {round}: exit {status:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if status.code() == Some(0) {
                completed += 1;
                let (lines, partial) = alarm_lines(&alerts);
                clean_runs.push((before, lines.len() + partial));
            }
        }
        if let Some(ck) = checkpoint(&ck_path) {
            let (lines, partial) = alarm_lines(&alerts);
            recorded.push((delivered_ids(&ck), lines.len() + partial));
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "the soak is over its time budget at round {round}"
        );
    }
    // A lease left by a killed run is stale at once (same host, process gone): the last run
    // finishes the work.
    let last = scan(end + chrono::Duration::hours(1))
        .output()
        .expect("last scan");
    assert_eq!(
        last.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    eprintln!(
        "soak: {rounds} rounds, {killed} killed, {completed} completed, {:?}",
        started.elapsed()
    );
    assert!(
        // Three runs in four get a kill moment below the median run time: most of them die.
        killed >= rounds / 5,
        "only {killed} of {rounds} runs were killed"
    );

    // 1. Every expected alarm at least once.
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    let all_lines: Vec<&str> = text.lines().collect();
    let (lines, partial) = alarm_lines(&alerts);
    let got: BTreeSet<(String, String)> = lines.iter().cloned().collect();
    let want: BTreeSet<(String, String)> = manifest
        .expected_alarms
        .iter()
        .map(|a| (format!("unlisted-source-ip:{}", a.trace_id), a.key.clone()))
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} alarms lost: {missing:?}",
        missing.len()
    );
    let unexpected: Vec<_> = got.difference(&want).collect();
    assert!(
        unexpected.is_empty(),
        "alarms nobody expected: {unexpected:?}"
    );

    // 2. An id a committed checkpoint recorded as delivered is never delivered again.
    let mut at_line: Vec<Option<String>> = Vec::new();
    for l in &all_lines {
        at_line.push(serde_json::from_str::<Value>(l).ok().map(|v| {
            format!(
                "{}:{}",
                v["rule"].as_str().unwrap_or_default(),
                v["trace_id"].as_str().unwrap_or_default()
            )
        }));
    }
    for (ids, upto) in &recorded {
        for (i, id) in at_line.iter().enumerate().skip(*upto) {
            if let Some(id) = id {
                assert!(
                    !ids.contains(id),
                    "{id} was recorded as delivered before line {upto}, and delivered again at line {i}"
                );
            }
        }
    }
    // Runs that finished repeat nothing of their own.
    for (from, to) in &clean_runs {
        let ids: Vec<_> = at_line[*from..*to].iter().flatten().collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(ids.len(), unique.len(), "a completed run repeated an alarm");
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _) in &lines {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    eprintln!(
        "soak: {} alarms expected, {} lines, {} alarms repeated after kills, {partial} partial lines",
        want.len(),
        lines.len(),
        repeated
    );
    // An alarm file is read back after a kill: what the killed run wrote after its last
    // commit is recorded as delivered, not written again.
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{repeated} alarms delivered twice: {twice:?}"
    );

    // 3. The checkpoint is valid.
    let ck = checkpoint(&ck_path).expect("a checkpoint");
    assert_eq!(ck["version"], 2);
    assert_eq!(
        ck["scanned_until"],
        rfc3339(end + chrono::Duration::hours(1))
    );
    let processed: BTreeSet<String> = ck["processed"]
        .as_object()
        .expect("processed")
        .keys()
        .cloned()
        .collect();
    for k in &processed {
        assert!(
            live.join(k).is_file(),
            "the checkpoint lists {k}, which does not exist"
        );
    }
    // The files the next window can still list (newer than scanned_until - 24h), no others.
    let horizon = end + chrono::Duration::hours(1) - chrono::Duration::hours(24);
    for k in &manifest.trace_files {
        let rel = k.strip_prefix(layout::ROOT).unwrap_or(k);
        let Classified::File(f) = layout::classify(rel) else {
            continue;
        };
        if f.time > horizon {
            assert!(processed.contains(k), "{k} is not in the checkpoint");
        } else if f.time < horizon {
            assert!(!processed.contains(k), "{k} should have been pruned");
        }
    }
    let ids_written: BTreeSet<String> = lines.iter().map(|(id, _)| id.clone()).collect();
    for id in delivered_ids(&ck) {
        assert!(ids_written.contains(&id), "{id} recorded but never written");
    }
}
