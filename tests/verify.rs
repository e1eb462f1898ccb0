//! End-to-end: `ctsguard verify` over generated trees with signed digests and injected
//! defects, in a directory, on the in-process S3 server (SigV4 checked) and, when
//! `CTSGUARD_TEST_S3_ENDPOINT` names one, on an external S3 server. What the report must say
//! comes from the generator's manifest (`expected_integrity`, `expected_gaps`).

mod common;

use common::generate_local;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use ctsguard::gen::{self, Defect, ExpectedGap, GenSpec, Manifest};
use ctsguard::store::ObjectStore;
use serde_json::Value;

use common::cli::{ctsguard, rt};
use common::s3::{external_bucket, s3_store, S3Server};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn signing_key() -> String {
    std::fs::read_to_string(fixtures().join("TEST-ONLY-digest-signing-key.pem")).expect("test key")
}

fn public_key() -> PathBuf {
    fixtures().join("TEST-ONLY-digest-public-key.pem")
}

/// Two days, two regions, a data tracker; signed digests.
fn spec(defects: Vec<Defect>) -> GenSpec {
    GenSpec {
        seed: 11,
        days: 2,
        regions: vec!["eu-de".into(), "eu-nl".into()],
        trackers: vec!["system".into(), "obs-data".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 4,
        traces_per_file: 5,
        digests: true,
        signing_key: Some(signing_key()),
        defects,
        ..GenSpec::default()
    }
}

const WINDOW: [&str; 4] = ["--from", "2026-09-30", "--to", "2026-10-02"];

fn verify_dir(dir: &Path, extra: &[&str]) -> Output {
    ctsguard()
        .arg("verify")
        .args(WINDOW)
        .arg("--source")
        .arg(dir)
        .arg("--public-key")
        .arg(public_key())
        .args(extra)
        .output()
        .expect("run")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn statuses(r: &Value) -> BTreeMap<String, String> {
    r["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or_default().to_owned(),
                f["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn gaps(r: &Value) -> BTreeSet<ExpectedGap> {
    r["gaps"]
        .as_array()
        .expect("gaps")
        .iter()
        .map(|g| serde_json::from_value(g.clone()).expect("gap"))
        .collect()
}

/// With the generator's keys carrying a prefix, the manifest's keys are bucket keys.
fn expected(m: &Manifest, strip: &str) -> BTreeMap<String, String> {
    m.expected_integrity
        .iter()
        .map(|(k, s)| (k.strip_prefix(strip).unwrap_or(k).to_owned(), s.clone()))
        .collect()
}

fn assert_matches_manifest(out: &Output, m: &Manifest, strip: &str) {
    let r = report(out);
    let got = statuses(&r);
    let want = expected(m, strip);
    for (k, s) in &want {
        assert_eq!(got.get(k), Some(s), "{k}");
    }
    for (k, s) in &got {
        assert_eq!(want.get(k), Some(s), "unexpected entry {k}: {s}");
    }
    let want_gaps: BTreeSet<ExpectedGap> = m.expected_gaps.iter().cloned().collect();
    assert_eq!(gaps(&r), want_gaps);
    assert_eq!(r["summary"]["gaps"], want_gaps.len());
}

#[test]
fn a_clean_window_is_all_valid_and_exits_0() {
    let (dir, m) = generate_local(&spec(vec![]));
    let out = verify_dir(dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert!(statuses(&r).values().all(|s| s == "valid"));
    assert_matches_manifest(&out, &m, "");
    let s = &r["summary"];
    assert_eq!(s["all_valid"], true);
    assert_eq!(s["gaps"], 0);
    assert_eq!(s["digests"]["valid"], m.digest_files.len());
    assert_eq!(s["trace_files"]["valid"], m.trace_files.len());
    for status in [
        "not_found",
        "hash_mismatch",
        "signature_invalid",
        "moved",
        "invalid_format",
    ] {
        assert_eq!(s["digests"][status], 0, "{status}");
    }
    assert_eq!(s["trace_files"]["not_in_digest"], 0);
    assert_eq!(s["window_requested"]["from"], "2026-09-30T00:00:00.000Z");
    assert_eq!(s["window_found"]["to"], "2026-10-01T23:59:59.000Z");
    for f in r["files"].as_array().unwrap() {
        assert!(matches!(f["kind"].as_str(), Some("digest" | "trace")));
        assert!(f["detail"].is_string());
    }
}

#[test]
fn every_defect_is_reported_with_its_status_in_a_directory() {
    let (dir, m) = generate_local(&spec(Defect::ALL.to_vec()));
    let out = verify_dir(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_matches_manifest(&out, &m, "");
    let r = report(&out);
    let s = &r["summary"];
    for (status, n) in [
        ("not_found", 2),
        ("signature_invalid", 1),
        ("moved", 1),
        ("invalid_format", 1),
    ] {
        assert_eq!(s["digests"][status], n, "digests {status}");
    }
    assert_eq!(s["trace_files"]["hash_mismatch"], 1);
    assert_eq!(s["trace_files"]["not_found"], 1);
    // The extra file, and the files of the deleted and the unreadable digests' hours.
    assert!(s["trace_files"]["not_in_digest"].as_u64().unwrap() >= 1);
    // Two deleted digests in a row: one gap of two hours.
    assert!(r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["hours"] == 2 && g["from"] == "2026-09-30T12:00:00.000Z"));
    let details: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] != "valid")
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert!(details.iter().all(|d| !d.is_empty()), "{details:?}");
}

#[test]
fn the_checked_in_fixtures_verify_as_their_manifest_says() {
    let root = fixtures();
    let m: Manifest = serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap())
        .expect("manifest");
    let out = verify_dir(&root.join("bucket"), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a truncated and an unlisted file"
    );
    assert_matches_manifest(&out, &m, "");
}

#[test]
fn digests_without_signature_metadata_are_signature_invalid() {
    let (dir, m) = generate_local(&GenSpec {
        signing_key: None,
        ..spec(vec![])
    });
    let out = verify_dir(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(
        r["summary"]["digests"]["signature_invalid"],
        m.digest_files.len()
    );
    let d = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "digest")
        .unwrap();
    assert_eq!(d["detail"], "no signature metadata (meta-signature)");
    // Trace files are still judged by their hashes.
    assert_eq!(r["summary"]["trace_files"]["valid"], m.trace_files.len());
}

/// The sidecar convention of directories: `.<file>.meta.json`, with `meta-signature` or
/// `signature`; removing it is reported like a digest stored without metadata.
#[test]
fn sidecars_carry_the_signature_in_directories() {
    let (dir, m) = generate_local(&spec(vec![]));
    let digests: Vec<&String> = m.digest_files.iter().take(2).collect();
    let sidecar = |key: &str| {
        let p = dir.path().join(key);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        p.with_file_name(format!(".{name}.meta.json"))
    };
    // The other spelling of the name.
    let first = sidecar(digests[0]);
    let meta: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let renamed = BTreeMap::from([("signature", meta["meta-signature"].clone())]);
    std::fs::write(&first, serde_json::to_vec(&renamed).unwrap()).unwrap();
    // No sidecar at all.
    std::fs::remove_file(sidecar(digests[1])).unwrap();
    let out = verify_dir(dir.path(), &[]);
    let got = statuses(&report(&out));
    assert_eq!(got[digests[0]], "valid");
    assert_eq!(got[digests[1]], "signature_invalid");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_built_in_cts_key_rejects_test_signatures() {
    let (dir, m) = generate_local(&spec(vec![]));
    let out = ctsguard()
        .arg("verify")
        .args(WINDOW)
        .arg("--source")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(
        r["summary"]["digests"]["signature_invalid"],
        m.digest_files.len()
    );
    assert!(r["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["detail"] == "signature does not verify with the public key"));
}

#[test]
fn markdown_and_html_reports_go_to_the_output_file() {
    let (dir, _) = generate_local(&spec(Defect::ALL.to_vec()));
    let out_dir = tempfile::tempdir().unwrap();
    let html = out_dir.path().join("r.html");
    let out = verify_dir(
        dir.path(),
        &["--format", "html", "--output", html.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "the report goes to the file only");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Self-contained: no scripts, no external stylesheets, images or fonts.
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!page.contains(banned), "{banned}");
    }
    // Summary first, then the problems, then the timeline.
    let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(at("Problems found") < at("<h2>Problems"));
    assert!(at("<h2>Problems") < at("<h2>Timeline"));
    for s in [
        "hash_mismatch",
        "not_in_digest",
        "moved",
        "invalid_format",
        "c-missing",
    ] {
        assert!(page.contains(s), "{s}");
    }

    // Daily reports: `{from}` names the window's first day; folders are created.
    let daily = out_dir.path().join("reports/{from}.json");
    let out = verify_dir(dir.path(), &["--output", daily.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let written = out_dir.path().join("reports/2026-09-30.json");
    let json: Value =
        serde_json::from_slice(&std::fs::read(&written).expect("daily report")).unwrap();
    assert!(json["summary"]["gaps"].as_u64().unwrap_or(0) > 0);

    let out = verify_dir(dir.path(), &["--format", "markdown"]);
    assert_eq!(out.status.code(), Some(1));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("# CTS integrity report"));
    assert!(md.contains("## Problems") && md.contains("## Gaps"));
}

#[test]
fn usage_and_source_errors_exit_2() {
    let (dir, _) = generate_local(&spec(vec![]));
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let blocked = blocker.join("dir/report.json");
    let bad_key = dir.path().join("not-a-key.pem");
    std::fs::write(&bad_key, "hello").unwrap();
    for args in [
        vec!["--public-key", bad_key.to_str().unwrap()],
        vec!["--public-key", "/nonexistent/key.pem"],
        // Below a regular file: no folder can be made there, not even by root.
        vec!["--output", blocked.to_str().unwrap()],
        vec!["--regions", "xx-nowhere-1"],
    ] {
        let out = ctsguard()
            .arg("verify")
            .args(WINDOW)
            .arg("--source")
            .arg(dir.path())
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out = ctsguard()
        .args([
            "verify",
            "--from",
            "2026-10-02",
            "--to",
            "2026-09-30",
            "--source",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// On a real S3 server: every defect found, and no object downloaded twice.
#[test]
fn every_defect_is_reported_over_s3_and_each_object_is_fetched_once() {
    let server = rt().block_on(S3Server::start());
    server.create_bucket("audit");
    let spec = GenSpec {
        bucket: "audit".into(),
        prefix: "org/".into(),
        ..spec(Defect::ALL.to_vec())
    };
    let m = rt().block_on(async {
        let store = s3_store(&server, "audit", true).await;
        gen::generate(&spec, &store).await.expect("generate on S3")
    });
    server.clear_requests();
    let out = ctsguard()
        .arg("verify")
        .args(WINDOW)
        .args(["--source", "s3://audit/org", "--path-style", "--endpoint"])
        .arg(server.endpoint())
        .arg("--public-key")
        .arg(public_key())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_matches_manifest(&out, &m, "");
    let mut gets: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.requests() {
        if r.method == "GET" && !r.is_list_v2() {
            *gets.entry(r.path().to_owned()).or_default() += 1;
        }
    }
    assert!(!gets.is_empty());
    for (path, n) in &gets {
        assert_eq!(*n, 1, "{path} downloaded {n} times");
    }
}

/// The same against the external server when one is configured (moto_server in CI).
#[test]
fn every_defect_is_reported_over_the_external_s3_server() {
    let Some(ext) = rt().block_on(external_bucket("verify-defects")) else {
        return;
    };
    let spec = GenSpec {
        bucket: ext.bucket.clone(),
        ..spec(Defect::ALL.to_vec())
    };
    let m = rt().block_on(async {
        let store = ext.store().await;
        let m = gen::generate(&spec, &store).await.expect("generate");
        // Some servers list a moment late; the listing must show what was written.
        let n = store
            .list_all("CloudTraces/", None)
            .await
            .unwrap()
            .objects
            .len();
        assert!(n > 0);
        m
    });
    let out = ctsguard()
        .arg("verify")
        .args(WINDOW)
        .arg("--source")
        .arg(format!("s3://{}", ext.bucket))
        .args(["--path-style", "--endpoint", &ext.endpoint])
        .arg("--public-key")
        .arg(public_key())
        .env("AWS_ACCESS_KEY_ID", &ext.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &ext.secret_key)
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_matches_manifest(&out, &m, "");
}
