//! End-to-end: `--integrity report|enforce` inside `backfill` and `scan`, over generated trees
//! with signed digests and injected defects. The integrity alarms must name exactly the
//! defects the generator injected; digests that arrive after their files are checked by a
//! later scan; `enforce` processes a file only once its digest matched.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use ctsguard::gen::{self, Defect, GenSpec, Manifest};
use serde_json::Value;

use common::cli::{ctsguard, rt};
use common::generate_local;
use common::s3::{s3_store, S3Server};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn spec(days: u32, defects: Vec<Defect>) -> GenSpec {
    GenSpec {
        seed: 23,
        days,
        regions: vec!["eu-de".into()],
        trackers: vec!["system".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 8,
        traces_per_file: 6,
        alarm_share: 0.3,
        digests: true,
        signing_key: Some(
            std::fs::read_to_string(fixtures().join("TEST-ONLY-digest-signing-key.pem"))
                .expect("test key"),
        ),
        defects,
        ..GenSpec::default()
    }
}

/// Runs ctsguard with the test key and the generator's allow-list; returns the output and
/// the alarm lines.
fn run(args: &[&str], source: &str) -> (Output, Vec<Value>) {
    let out = ctsguard()
        .args(args)
        .args(["--allow", "10.0.0.0/8", "--source", source])
        .arg("--public-key")
        .arg(fixtures().join("TEST-ONLY-digest-public-key.pem"))
        .output()
        .expect("run");
    let alarms = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, alarms)
}

fn integrity(alarms: &[Value]) -> BTreeSet<(String, String)> {
    alarms
        .iter()
        .filter(|a| a["rule"] == "trace-integrity")
        .map(|a| {
            (
                a["object"].as_str().unwrap_or_default().to_owned(),
                a["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Login alarms as (object, trace id).
fn logins(alarms: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<_> = alarms
        .iter()
        .filter(|a| a["rule"] == "unlisted-source-ip")
        .map(|a| {
            (
                a["object"].as_str().unwrap_or_default().to_owned(),
                a["trace_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The defects of the manifest as (key, status), valid entries left out.
fn injected(m: &Manifest) -> BTreeSet<(String, String)> {
    m.expected_integrity
        .iter()
        .filter(|(_, s)| s != "valid")
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

const WINDOW: [&str; 4] = ["--from", "2026-09-30", "--to", "2026-10-01"];

#[test]
fn backfill_reports_every_injected_file_defect_and_still_processes_everything() {
    let defects = vec![
        Defect::TamperedTrace,
        Defect::DeletedTrace,
        Defect::ExtraUnlistedTrace,
        Defect::ForgedSignature,
    ];
    let (dir, m) = generate_local(&spec(1, defects));
    let src = dir.path().to_str().expect("utf-8 path");
    let expected = injected(&m);
    assert_eq!(expected.len(), 4, "{expected:?}");

    let (out, alarms) = run(&[&["backfill"][..], &WINDOW].concat(), src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(integrity(&alarms), expected);
    // `report` processes files at once, the tampered one too: the logins are those of a run
    // without integrity checks.
    let (off, plain) = run(
        &[&["backfill"][..], &WINDOW, &["--integrity", "off"]].concat(),
        src,
    );
    assert_eq!(off.status.code(), Some(0), "{}", stderr(&off));
    assert!(integrity(&plain).is_empty());
    assert_eq!(logins(&alarms), logins(&plain));
    assert!(!logins(&plain).is_empty());
    // Every integrity alarm says what was found.
    for a in alarms.iter().filter(|a| a["rule"] == "trace-integrity") {
        let msg = a["message"].as_str().unwrap_or_default();
        assert!(msg.contains(a["object"].as_str().unwrap_or("?")), "{a}");
        assert!(a["detail"].as_str().is_some_and(|d| !d.is_empty()), "{a}");
    }
}

#[test]
fn enforce_processes_only_files_whose_digest_matched() {
    // IAM only, so that the rejected files hold logins.
    let (dir, m) = generate_local(&GenSpec {
        services: vec!["IAM".into()],
        traces_per_file: 20,
        ..spec(1, vec![Defect::TamperedTrace, Defect::ExtraUnlistedTrace])
    });
    let src = dir.path().to_str().expect("utf-8 path");
    let rejected: BTreeSet<String> = injected(&m).into_iter().map(|(k, _)| k).collect();
    assert_eq!(rejected.len(), 2);

    let (out, alarms) = run(
        &[&["backfill"][..], &WINDOW, &["--integrity", "enforce"]].concat(),
        src,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(integrity(&alarms), injected(&m));
    let (_, plain) = run(
        &[&["backfill"][..], &WINDOW, &["--integrity", "off"]].concat(),
        src,
    );
    let kept: Vec<_> = logins(&plain)
        .into_iter()
        .filter(|(object, _)| !rejected.contains(object))
        .collect();
    assert!(
        logins(&plain).len() > kept.len(),
        "the rejected files must hold alarms for this test to mean something"
    );
    assert_eq!(logins(&alarms), kept, "rejected files are not processed");
}

/// Moves the digest files named at or after `from` (an `HH` hour of 2026-09-30) out of the
/// tree, to put them back later: digests arrive about an hour after their files.
fn hold_back_digests(root: &Path, from_hour: u32) -> Vec<(PathBuf, Vec<u8>)> {
    let mut held = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let late = (from_hour..24).any(|h| name.contains(&format!("2026-09-30T{h:02}-")));
            if name.contains("CloudTrace-Digest_") && late {
                held.push((p.clone(), std::fs::read(&p).expect("read")));
                std::fs::remove_file(&p).expect("remove");
            }
        }
    }
    held
}

fn put_back(held: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in held {
        std::fs::write(p, bytes).expect("write back");
    }
}

/// Recompresses a trace file: same traces, other bytes (what an attacker editing a file
/// without changing what it says would leave behind).
fn tamper(path: &Path) {
    let raw = std::fs::read(path).expect("read");
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut json)
        .expect("gunzip");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    e.write_all(&json).expect("gzip");
    e.write_all(b"\n").expect("gzip");
    let bytes = e.finish().expect("gzip");
    assert_ne!(bytes, raw);
    std::fs::write(path, bytes).expect("write");
}

fn late_trace(m: &Manifest, hour_from: u32) -> String {
    m.trace_files
        .iter()
        .find(|k| (hour_from..24).any(|h| k.contains(&format!("2026-09-30T{h:02}-"))))
        .cloned()
        .expect("a trace file in the late hours")
}

fn scan(ck: &Path, now: &str, extra: &[&str], src: &str) -> (Output, Vec<Value>) {
    let ck = ck.to_str().expect("utf-8 path");
    run(
        &[
            &[
                "scan",
                "--checkpoint",
                ck,
                "--since",
                "2026-09-30",
                "--now",
                now,
            ][..],
            extra,
        ]
        .concat(),
        src,
    )
}

fn checkpoint(ck: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(ck).expect("checkpoint")).expect("checkpoint JSON")
}

#[test]
fn scan_checks_files_whose_digest_arrives_in_a_later_run() {
    let (dir, m) = generate_local(&spec(1, vec![]));
    let src = dir.path().to_str().expect("utf-8 path");
    let held = hold_back_digests(dir.path(), 21);
    assert!(!held.is_empty());
    let victim = late_trace(&m, 21);
    tamper(&dir.path().join(&victim));
    let state = tempfile::tempdir().expect("tempdir");
    let ck = state.path().join("ck.json");

    // Before the late digests: nothing to say yet, the late files are remembered.
    let (out, first) = scan(&ck, "2026-09-30T23:59:59Z", &[], src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(integrity(&first).is_empty(), "{:?}", integrity(&first));
    let c = checkpoint(&ck);
    assert_eq!(c["version"], 2);
    let unverified = c["integrity"]["unverified"]
        .as_object()
        .expect("unverified files");
    assert!(unverified.contains_key(&victim), "{unverified:?}");
    assert!(unverified
        .keys()
        .all(|k| (21..24).any(|h| k.contains(&format!("T{h:02}-")))));

    // The digests arrive: the tampered file is found, nothing else.
    put_back(&held);
    let (out, second) = scan(&ck, "2026-10-01T03:00:00Z", &[], src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        integrity(&second),
        BTreeSet::from([(victim.clone(), "hash_mismatch".to_owned())])
    );
    assert!(logins(&second).is_empty(), "no login alarm is sent twice");
    let c = checkpoint(&ck);
    assert_eq!(c["integrity"]["unverified"], serde_json::json!({}));

    // Nothing new: nothing said again.
    let (out, third) = scan(&ck, "2026-10-01T04:00:00Z", &[], src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(third.is_empty(), "{third:?}");
}

#[test]
fn scan_enforce_waits_for_digests_then_processes() {
    let (dir, _) = generate_local(&spec(1, vec![]));
    let src = dir.path().to_str().expect("utf-8 path");
    let (_, all) = run(
        &[&["backfill"][..], &WINDOW, &["--integrity", "off"]].concat(),
        src,
    );
    let held = hold_back_digests(dir.path(), 21);
    let state = tempfile::tempdir().expect("tempdir");
    let ck = state.path().join("ck.json");
    let summary = state.path().join("summary.json");
    let summary_arg = summary.to_str().expect("utf-8 path");
    let enforce = ["--integrity", "enforce", "--summary-json", summary_arg];

    let (out, first) = scan(&ck, "2026-09-30T23:59:59Z", &enforce, src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(integrity(&first).is_empty(), "{:?}", integrity(&first));
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    let waiting = s["files_awaiting_digest"].as_u64().unwrap_or(0);
    assert!(waiting > 0, "{s}");
    assert!(logins(&first)
        .iter()
        .all(|(k, _)| !(21..24).any(|h| k.contains(&format!("T{h:02}-")))));

    put_back(&held);
    let (out, second) = scan(&ck, "2026-10-01T03:00:00Z", &enforce, src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(integrity(&second).is_empty(), "{:?}", integrity(&second));
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    assert_eq!(s["files"].as_u64(), Some(waiting), "{s}");
    // Each alarm once, all of them in the end.
    let mut both = logins(&first);
    both.extend(logins(&second));
    both.sort();
    assert_eq!(both, logins(&all));
}

#[test]
fn backfill_over_s3_finds_a_tampered_file() {
    let server = rt().block_on(S3Server::start());
    server.create_bucket("cts");
    let m = rt()
        .block_on(async {
            let store = s3_store(&server, "cts", true).await;
            // Digests name the bucket they were written to.
            let spec = GenSpec {
                bucket: "cts".into(),
                ..spec(1, vec![Defect::TamperedTrace])
            };
            gen::generate(&spec, &store).await
        })
        .expect("generate");
    let out = ctsguard()
        .args(["backfill"])
        .args(WINDOW)
        .args([
            "--allow",
            "10.0.0.0/8",
            "--source",
            "s3://cts",
            "--path-style",
        ])
        .arg("--endpoint")
        .arg(server.endpoint())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_REGION", "us-east-1")
        .arg("--public-key")
        .arg(fixtures().join("TEST-ONLY-digest-public-key.pem"))
        .output()
        .expect("run");
    let alarms: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(integrity(&alarms), injected(&m));
}

#[test]
fn a_tracker_without_digests_is_unverifiable_not_alarmed() {
    let (dir, _) = generate_local(&GenSpec {
        digests: false,
        ..spec(1, vec![])
    });
    let src = dir.path().to_str().expect("utf-8 path");
    let (out, alarms) = run(&[&["backfill"][..], &WINDOW].concat(), src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(integrity(&alarms).is_empty());
    assert!(
        stderr(&out).contains("cannot be checked"),
        "{}",
        stderr(&out)
    );
    // `enforce` accepts no unchecked file.
    let (out, alarms) = run(
        &[&["backfill"][..], &WINDOW, &["--integrity", "enforce"]].concat(),
        src,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(logins(&alarms).is_empty());
    assert!(integrity(&alarms)
        .iter()
        .all(|(_, reason)| reason == "not_in_digest"));
    assert!(!integrity(&alarms).is_empty());
}
