//! `ctsguard scan`: exactly once across runs, late files, month boundaries, crashes (kill -9),
//! concurrent runs, shards and the checkpoint's own failure modes, over a directory and over
//! real S3 servers on loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use ctsguard::gen::{self, GenSpec, Manifest};
use ctsguard::store::{LocalStore, ObjectStore, PutMode};
use serde_json::Value;

use common::cli::{ctsguard, ctsguard_process, rt};
use common::s3::{external_bucket, s3_store, S3Server};

const ALLOW: &str = "10.0.0.0/8,192.168.1.1,2001:db8::/32";

fn spec() -> GenSpec {
    GenSpec {
        seed: 11,
        days: 2,
        regions: vec!["eu-de".into(), "eu-nl".into()],
        trackers: vec!["system".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 6,
        traces_per_file: 25,
        allowed: ALLOW.split(',').map(str::to_owned).collect(),
        ..GenSpec::default()
    }
}

/// A generated bucket in `<tmp>/bucket`, with room for state beside it.
struct Tree {
    dir: tempfile::TempDir,
    manifest: Manifest,
}

impl Tree {
    fn new(spec: &GenSpec) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("bucket")).expect("mkdir");
        let store = LocalStore::open(dir.path().join("bucket")).expect("store");
        let manifest = rt()
            .block_on(gen::generate(spec, &store))
            .expect("generate");
        Tree { dir, manifest }
    }
    fn bucket(&self) -> PathBuf {
        self.dir.path().join("bucket")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `scan` with the checkpoint, alerts (appended) and summary inside the tree's folder.
fn scan_cmd(t: &Tree, now: &str, extra: &[&str]) -> std::process::Command {
    scan_cmd_to(t, now, "alerts.jsonl", extra)
}

fn scan_cmd_to(t: &Tree, now: &str, alerts: &str, extra: &[&str]) -> std::process::Command {
    let mut c = ctsguard_process();
    c.args([
        "scan",
        "--allow",
        ALLOW,
        "--since",
        "2026-09-29",
        "--now",
        now,
    ])
    .arg("--source")
    .arg(t.bucket())
    .arg("--checkpoint")
    .arg(t.path("state/checkpoint.json"))
    .arg("--alerts")
    .arg(t.path(alerts))
    .arg("--summary-json")
    .arg(t.path("summary.json"))
    .args(extra);
    c
}

fn scan(t: &Tree, now: &str, extra: &[&str]) -> Output {
    scan_cmd(t, now, extra).output().expect("run scan")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn summary(t: &Tree) -> Value {
    serde_json::from_slice(&std::fs::read(t.path("summary.json")).expect("summary")).expect("json")
}

/// Every alarm line written so far, as (trace_id, object).
fn alarm_lines(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            (
                v["trace_id"].as_str().unwrap_or_default().to_owned(),
                v["object"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn expected(m: &Manifest) -> BTreeSet<(String, String)> {
    m.expected_alarms
        .iter()
        .map(|a| (a.trace_id.clone(), a.key.clone()))
        .collect()
}

fn checkpoint(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("checkpoint")).expect("json")
}

/// A gzip trace file holding one login from an unlisted address.
fn login_file(trace_id: &str, ms: i64) -> Vec<u8> {
    let json = format!(
        r#"[{{"trace_id":"{trace_id}","trace_name":"login","source_ip":"198.51.100.77","time":{ms},"service_type":"IAM","user":{{"name":"late","domain":{{"name":"d"}}}}}}]"#
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(json.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

#[test]
fn successive_scans_process_every_file_once() {
    let t = Tree::new(&spec());
    let first = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let lines = alarm_lines(&t.path("alerts.jsonl"));
    assert_eq!(
        lines.iter().cloned().collect::<BTreeSet<_>>(),
        expected(&t.manifest)
    );
    assert_eq!(lines.len(), t.manifest.expected_alarms.len());
    assert_eq!(
        summary(&t)["files"].as_u64(),
        Some(t.manifest.trace_files.len() as u64)
    );

    let second = scan(&t, "2026-10-02T01:00:00Z", &[]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        alarm_lines(&t.path("alerts.jsonl")).len(),
        lines.len(),
        "nothing new, nothing sent"
    );
    let s = summary(&t);
    assert_eq!(s["files"].as_u64(), Some(0));
    assert!(s["files_skipped"].as_u64().unwrap_or(0) > 0);
}

/// Before each commit the scan forces the alarm files its checkpoint names to disk; a file an
/// earlier run wrote and that is gone since (rotated away, another `--alerts`) is no reason to
/// stop.
#[test]
fn an_alarm_file_gone_since_the_last_run_does_not_stop_the_next() {
    let t = Tree::new(&spec());
    let first = scan(&t, "2026-10-01T00:00:00Z", &[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let old = t.path("alerts.jsonl");
    let recorded = checkpoint(&t.path("state/checkpoint.json"));
    assert!(
        recorded["alert_logs"]
            .get(old.display().to_string())
            .is_some(),
        "the checkpoint names the alarm file: {recorded}"
    );
    let before = alarm_lines(&old);
    std::fs::remove_file(&old).expect("rotate the alarm file away");

    // Commits while files are processed, the first before any alarm is written.
    let second = scan_cmd_to(
        &t,
        "2026-10-02T00:00:00Z",
        "other.jsonl",
        &["--commit-interval", "1ms"],
    )
    .output()
    .expect("run scan");
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let after = alarm_lines(&t.path("other.jsonl"));
    let all: BTreeSet<_> = before.into_iter().chain(after).collect();
    assert_eq!(all, expected(&t.manifest));
}

#[test]
fn late_files_month_boundaries_and_shared_timestamps_are_not_missed() {
    let t = Tree::new(&spec());
    // The first run ends at 12:00 on October 1st.
    let first = scan(&t, "2026-10-01T12:00:00Z", &[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let done_first: BTreeSet<String> = checkpoint(&t.path("state/checkpoint.json"))["processed"]
        .as_object()
        .expect("processed")
        .keys()
        .cloned()
        .collect();

    // Uploaded after the first run: a file of September 30th (its key sorts after every
    // October key: `2026/9/30/` > `2026/10/1/`), and one with exactly the timestamp of a file
    // the first run processed.
    let late = "CloudTraces/eu-de/2026/9/30/system/IAM/CloudTrace_eu-de_2026-09-30T23-10-00Z_late0001.json.gz";
    let processed_earlier = done_first
        .iter()
        .find(|k| k.contains("/2026/10/1/"))
        .expect("an October file done in the first run")
        .clone();
    let stamp_at = processed_earlier.find("_2026-10-01T").expect("stamp") + 1;
    let stamp = &processed_earlier[stamp_at..stamp_at + 20];
    let twin =
        format!("CloudTraces/eu-de/2026/10/1/system/IAM/CloudTrace_eu-de_{stamp}_twin0001.json.gz");
    let store = LocalStore::open(t.bucket()).expect("store");
    rt().block_on(async {
        for (key, id) in [(late, "late-login"), (twin.as_str(), "twin-login")] {
            store
                .put(
                    key,
                    login_file(id, 1_790_000_000_000).into(),
                    &BTreeMap::new(),
                    PutMode::Create,
                )
                .await
                .expect("put");
        }
    });

    let second = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let lines = alarm_lines(&t.path("alerts.jsonl"));
    let ids: Vec<&str> = lines.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ids.contains(&"late-login") && ids.contains(&"twin-login"),
        "{ids:?}"
    );
    let mut all = expected(&t.manifest);
    all.insert(("late-login".into(), late.into()));
    all.insert(("twin-login".into(), twin.clone()));
    assert_eq!(lines.iter().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(lines.len(), all.len(), "no alarm twice across the two runs");
}

#[test]
fn state_stays_within_the_lateness_window() {
    let t = Tree::new(&GenSpec { days: 4, ..spec() });
    let out = scan(&t, "2026-10-04T00:00:00Z", &["--lateness", "6h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ck = checkpoint(&t.path("state/checkpoint.json"));
    assert_eq!(ck["version"].as_u64(), Some(2));
    // No digests in this tree: only the files whose digest is not due yet wait for one.
    let unverified = ck["integrity"]["unverified"]
        .as_object()
        .expect("unverified");
    for (key, u) in unverified {
        assert!(
            u["time"].as_str().unwrap_or_default() >= "2026-10-03T21:00:00Z",
            "{key} still waits for a digest"
        );
    }
    let processed = ck["processed"].as_object().expect("processed");
    assert!(!processed.is_empty());
    assert!(
        processed.len() < t.manifest.trace_files.len() / 4,
        "{} kept",
        processed.len()
    );
    for (key, time) in processed {
        assert!(
            time.as_str().unwrap_or_default() >= "2026-10-03T18:00:00Z",
            "{key} kept"
        );
    }

    // A version 1 checkpoint (no integrity state) is read and written back as version 2.
    let mut v1 = ck.clone();
    v1["version"] = 1.into();
    v1.as_object_mut().expect("object").remove("integrity");
    std::fs::write(
        t.path("state/checkpoint.json"),
        serde_json::to_vec(&v1).expect("json"),
    )
    .expect("write");
    let out = scan(&t, "2026-10-04T01:00:00Z", &["--lateness", "6h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ck = checkpoint(&t.path("state/checkpoint.json"));
    assert_eq!(ck["version"].as_u64(), Some(2));
}

#[test]
fn unreadable_and_newer_checkpoints_stop_the_run() {
    let t = Tree::new(&spec());
    std::fs::create_dir_all(t.path("state")).expect("mkdir");
    std::fs::write(t.path("state/checkpoint.json"), b"{\"version\": 1, \"trunc").expect("write");
    let out = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not readable"), "{}", stderr(&out));
    assert!(!t.path("alerts.jsonl").exists(), "nothing processed");

    std::fs::write(t.path("state/checkpoint.json"), br#"{"version": 7}"#).expect("write");
    let out = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("format version 7"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_second_scan_is_refused_and_a_stale_lease_is_taken_over() {
    let t = Tree::new(&spec());
    std::fs::create_dir_all(t.path("state")).expect("mkdir");
    let lease = t.path("state/checkpoint.json.lease");
    // Held by a live process (this test) until far in the future.
    let holder = serde_json::json!({
        "host": "elsewhere", "pid": std::process::id(), "run_id": "t",
        "acquired_at": "2026-10-01T23:59:00Z", "expires_at": "2026-10-02T00:09:00Z"
    });
    std::fs::write(&lease, holder.to_string()).expect("write");
    let out = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another scan holds the lease"),
        "{}",
        stderr(&out)
    );
    assert!(!t.path("alerts.jsonl").exists());

    // Ten minutes later that lease has expired: the next run takes it over and releases it.
    let out = scan(&t, "2026-10-02T00:10:00Z", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!lease.exists(), "released at the end");
    assert_eq!(
        alarm_lines(&t.path("alerts.jsonl")).len(),
        t.manifest.expected_alarms.len()
    );
}

#[test]
fn kill_dash_9_at_random_points_loses_no_alarm() {
    let spec = GenSpec {
        files_per_service_per_day: 30,
        traces_per_file: 40,
        ..spec()
    };
    let t = Tree::new(&spec);
    // How long a whole run takes on this machine, measured on an identical tree: kill
    // moments are drawn from its first half, so fast machines kill runs too (and the first
    // run is killed even when it is quicker than the probe). Each killed run leaves work
    // done, so later kills land further into the work.
    let probe = Tree::new(&spec);
    let timed = Instant::now();
    let full = scan(&probe, "2026-10-02T00:00:00Z", &["--concurrency", "2"]);
    assert_eq!(full.status.code(), Some(0), "{}", stderr(&full));
    let half_run = (timed.elapsed().as_micros() as u64 / 2).max(1);
    let mut killed = 0;
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..12 {
        let mut child = scan_cmd(
            &t,
            "2026-10-02T00:00:00Z",
            &["--commit-interval", "5ms", "--concurrency", "2"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
        // xorshift: a different kill point each round, the same ones each test run.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        std::thread::sleep(Duration::from_micros(rng_state % half_run));
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None => {
                child.kill().expect("kill -9"); // SIGKILL on Unix
                child.wait().expect("reap");
                killed += 1;
            }
        }
        let _ = round;
    }
    // Finish whatever is left.
    let last = scan(&t, "2026-10-02T00:00:00Z", &[]);
    assert_eq!(last.status.code(), Some(0), "{}", stderr(&last));
    eprintln!("{killed} runs killed (kill moments below {half_run} µs)");
    assert!(killed > 0, "no run was killed: make the tree larger");

    let lines = alarm_lines(&t.path("alerts.jsonl"));
    let got: BTreeSet<_> = lines.iter().cloned().collect();
    assert_eq!(got, expected(&t.manifest), "after {killed} kills");
    // Repeats may only come from files in flight at a kill: far fewer than the alarms.
    let repeats = lines.len() - got.len();
    assert!(
        repeats <= killed * 16,
        "{repeats} repeats after {killed} kills"
    );
    // The checkpoint holds exactly the files the next window can still list (October 1st,
    // with the default lateness of 24 hours).
    let ck = checkpoint(&t.path("state/checkpoint.json"));
    let kept: BTreeSet<String> = ck["processed"]
        .as_object()
        .expect("processed")
        .keys()
        .cloned()
        .collect();
    let october: BTreeSet<String> = t
        .manifest
        .trace_files
        .iter()
        .filter(|k| k.contains("/2026/10/1/"))
        .cloned()
        .collect();
    assert_eq!(kept, october);
    // And one more run sends nothing.
    let again = scan(&t, "2026-10-02T00:30:00Z", &[]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(alarm_lines(&t.path("alerts.jsonl")).len(), lines.len());
}

#[test]
fn shards_running_at_once_split_the_files_with_no_overlap_and_no_gap() {
    let t = Tree::new(&spec());
    let n = 3;
    let children: Vec<_> = (0..n)
        .map(|i| {
            let shard = format!("{i}/{n}");
            let mut c = scan_cmd_to(
                &t,
                "2026-10-02T00:00:00Z",
                &format!("alerts-{i}.jsonl"),
                // Long enough that the checkpoints keep every file of the tree.
                &["--shard", &shard, "--lateness", "48h"],
            );
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let ck = checkpoint(&t.path(&format!("state/checkpoint.shard-{i}-of-{n}.json")));
        for key in ck["processed"].as_object().expect("processed").keys() {
            assert!(
                seen.insert(key.clone(), i).is_none(),
                "{key} done by two shards"
            );
        }
    }
    let all: BTreeSet<String> = t.manifest.trace_files.iter().cloned().collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), all);
    let all_lines: Vec<_> = (0..n)
        .flat_map(|i| alarm_lines(&t.path(&format!("alerts-{i}.jsonl"))))
        .collect();
    assert_eq!(
        all_lines.len(),
        t.manifest.expected_alarms.len(),
        "no alarm from two shards"
    );
    let union: BTreeSet<_> = all_lines.into_iter().collect();
    assert_eq!(union, expected(&t.manifest));

    // Kubernetes Indexed Jobs: the index comes from JOB_COMPLETION_INDEX.
    let out = scan_cmd(
        &t,
        "2026-10-02T01:00:00Z",
        &["--shards", "3", "--lateness", "48h"],
    )
    .env("JOB_COMPLETION_INDEX", "2")
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        summary(&t)["files"].as_u64(),
        Some(0),
        "shard 2 had done its part"
    );
}

/// Over S3: the source and the checkpoint in buckets, the lease by conditional requests, and
/// a run with nothing new downloads nothing.
fn scan_over_s3(
    endpoint: &str,
    bucket: &str,
    ak: &str,
    sk: &str,
    store_for_tree: &dyn ObjectStore,
) {
    let spec = GenSpec {
        bucket: bucket.to_owned(),
        ..spec()
    };
    let manifest = rt()
        .block_on(gen::generate(&spec, store_for_tree))
        .expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let run = |now: &str| {
        ctsguard()
            .args([
                "scan",
                "--allow",
                ALLOW,
                "--since",
                "2026-09-29",
                "--now",
                now,
            ])
            .arg(format!("--source=s3://{bucket}"))
            .arg(format!("--checkpoint=s3://{bucket}/ctsguard/state.json"))
            .args(["--path-style", "--endpoint", endpoint, "--alerts"])
            .arg(&alerts)
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run")
    };
    let first = run("2026-10-02T00:00:00Z");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(
        alarm_lines(&alerts).into_iter().collect::<BTreeSet<_>>(),
        expected(&manifest)
    );
    // A lease held by a live run elsewhere refuses the next scan.
    let held = serde_json::json!({
        "host": "elsewhere", "pid": 1, "run_id": "x",
        "acquired_at": "2026-10-02T00:00:00Z", "expires_at": "2026-10-02T00:20:00Z"
    });
    rt().block_on(store_for_tree.put(
        "ctsguard/state.json.lease",
        held.to_string().into(),
        &BTreeMap::new(),
        PutMode::Create,
    ))
    .expect("put lease");
    let refused = run("2026-10-02T00:10:00Z");
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    rt().block_on(store_for_tree.delete("ctsguard/state.json.lease"))
        .expect("delete");
    let again = run("2026-10-02T00:30:00Z");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(alarm_lines(&alerts).len(), manifest.expected_alarms.len());
}

#[test]
fn scan_over_in_process_s3() {
    let server = rt().block_on(S3Server::start());
    server.create_bucket("scan-bkt");
    let store = rt().block_on(s3_store(&server, "scan-bkt", true));
    scan_over_s3(
        &server.endpoint(),
        "scan-bkt",
        server.access_key(),
        server.secret_key(),
        &store,
    );
    // The last run had nothing new: it listed, it did not download a trace file.
    server.clear_requests();
    let out = ctsguard()
        .args([
            "scan",
            "--allow",
            ALLOW,
            "--now",
            "2026-10-02T00:40:00Z",
            "--source=s3://scan-bkt",
        ])
        .args([
            "--checkpoint=s3://scan-bkt/ctsguard/state.json",
            "--path-style",
            "--endpoint",
        ])
        .arg(server.endpoint())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gets: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_list_v2() && r.path().contains("CloudTraces"))
        .map(|r| r.path().to_owned())
        .collect();
    assert!(
        gets.is_empty(),
        "downloads on a run with nothing new: {gets:?}"
    );
}

#[test]
fn scan_over_external_s3() {
    let Some(bucket) = rt().block_on(external_bucket("ctsguard-scan")) else {
        return;
    };
    let store = rt().block_on(bucket.store());
    scan_over_s3(
        &bucket.endpoint,
        &bucket.bucket,
        &bucket.access_key,
        &bucket.secret_key,
        &store,
    );
}

#[test]
fn scans_started_together_do_not_both_run() {
    let t = Tree::new(&spec());
    let children: Vec<_> = (0..4)
        .map(|_| {
            scan_cmd(&t, "2026-10-02T00:00:00Z", &[])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut codes = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        codes.push(out.status.code());
        assert!(
            matches!(out.status.code(), Some(0) | Some(3)),
            "{}",
            stderr(&out)
        );
    }
    assert!(codes.contains(&Some(0)), "{codes:?}");
    let lines = alarm_lines(&t.path("alerts.jsonl"));
    assert_eq!(
        lines.len(),
        t.manifest.expected_alarms.len(),
        "exits {codes:?}"
    );
    assert_eq!(
        lines.into_iter().collect::<BTreeSet<_>>(),
        expected(&t.manifest)
    );
}

#[test]
fn files_that_failed_to_download_are_retried_even_after_the_window_moved_on() {
    let t = Tree::new(&spec());
    // Every download fails the size check: nothing is done, everything must come back.
    let failed = scan(
        &t,
        "2026-10-02T00:00:00Z",
        &["--max-decompressed-size", "1KiB"],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(alarm_lines(&t.path("alerts.jsonl")).is_empty());
    // Three days later, far past the lateness window.
    let later = scan(&t, "2026-10-05T00:00:00Z", &[]);
    assert_eq!(later.status.code(), Some(0), "{}", stderr(&later));
    let lines = alarm_lines(&t.path("alerts.jsonl"));
    assert_eq!(lines.len(), t.manifest.expected_alarms.len());
    assert_eq!(
        lines.into_iter().collect::<BTreeSet<_>>(),
        expected(&t.manifest)
    );
}

#[test]
fn raising_the_lateness_or_replaying_an_old_time_sends_nothing_twice() {
    let t = Tree::new(&spec());
    let first = scan(&t, "2026-10-02T00:00:00Z", &["--lateness", "6h"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let sent = alarm_lines(&t.path("alerts.jsonl")).len();
    assert_eq!(sent, t.manifest.expected_alarms.len());
    let wider = scan(&t, "2026-10-02T01:00:00Z", &["--lateness", "48h"]);
    assert_eq!(wider.status.code(), Some(0), "{}", stderr(&wider));
    let replay = scan(&t, "2026-10-01T06:00:00Z", &[]);
    assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));
    let again = scan(&t, "2026-10-02T02:00:00Z", &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(alarm_lines(&t.path("alerts.jsonl")).len(), sent);
}

#[test]
fn a_short_lease_is_kept_alive_through_a_long_run() {
    let t = Tree::new(&GenSpec {
        files_per_service_per_day: 30,
        traces_per_file: 40,
        ..spec()
    });
    // The lease is renewed in the background every 100 ms and at every commit; a run that
    // lets it lapse, or whose renewals and commits disagree on its version, stops with 3.
    let out = scan(
        &t,
        "2026-10-02T00:00:00Z",
        &[
            "--lease-ttl",
            "300ms",
            "--commit-interval",
            "100ms",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        alarm_lines(&t.path("alerts.jsonl")).len(),
        t.manifest.expected_alarms.len()
    );
    assert!(!t.path("state/checkpoint.json.lease").exists(), "released");
}
