//! End-to-end: the `ctsguard` binary over generated trees, in a directory and on a real S3
//! server on 127.0.0.1. Expected alarms come from the generator's manifest, which decides on
//! its own which logins are from unlisted IPs.

mod common;

use common::generate_local;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use ctsguard::gen::{self, GenSpec, Manifest};
use serde_json::Value;

use common::cli::{ctsguard, rt};

use common::s3::{s3_store, S3Server};

fn spec() -> GenSpec {
    GenSpec {
        seed: 7,
        days: 2,
        regions: vec!["eu-de".into(), "eu-nl".into()],
        trackers: vec!["system".into(), "obs-data".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 3,
        traces_per_file: 30,
        allowed: vec![
            "10.0.0.0/8".into(),
            "192.168.1.1".into(),
            "2001:db8::/32".into(),
        ],
        edge_cases: true,
        ..GenSpec::default()
    }
}

const ALLOW: &str = "10.0.0.0/8, 192.168.1.1 2001:db8::/32";

fn alarm_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn alarm_set(lines: &[Value]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .map(|a| {
            (
                a["object"].as_str().unwrap_or_default().to_owned(),
                a["trace_id"].as_str().unwrap_or_default().to_owned(),
                a["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn expected_set(m: &Manifest) -> BTreeSet<(String, String, String)> {
    m.expected_alarms
        .iter()
        .map(|a| (a.key.clone(), a.trace_id.clone(), a.reason.clone()))
        .collect()
}

fn backfill_dir(dir: &Path, extra: &[&str]) -> Output {
    ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-09-30",
            "--to",
            "2026-10-02",
            "--allow",
            ALLOW,
        ])
        .arg("--source")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run")
}

/// [`backfill_dir`] with `--summary-json`: the output and the summary.
fn backfill_dir_summary(dir: &Path, extra: &[&str]) -> (Output, Value) {
    let path = dir.join("summary.json");
    let mut args = extra.to_vec();
    args.extend(["--summary-json", path.to_str().unwrap_or_default()]);
    let out = backfill_dir(dir, &args);
    let summary = serde_json::from_slice(&std::fs::read(&path).expect("summary")).expect("json");
    (out, summary)
}

#[test]
fn directory_backfill_finds_exactly_the_expected_alarms_and_reports_bad_files() {
    let (dir, manifest) = generate_local(&spec());
    assert!(!manifest.expected_alarms.is_empty() && !manifest.bad_objects.is_empty());
    let summary_path = dir.path().join("summary.json");
    let out = backfill_dir(
        dir.path(),
        &["--summary-json", summary_path.to_str().unwrap_or_default()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Bad objects make the exit code 1, and each is reported by key.
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for (key, _) in &manifest.bad_objects {
        assert!(
            stderr.contains(key.as_str()),
            "{key} not reported in: {stderr}"
        );
    }
    let lines = alarm_lines(&out);
    assert_eq!(alarm_set(&lines), expected_set(&manifest));
    assert_eq!(lines.len(), manifest.expected_alarms.len(), "no duplicates");

    let required = [
        "rule",
        "action",
        "source_ip",
        "user",
        "domain",
        "trace_id",
        "time",
        "region",
        "service",
        "object",
        "message",
    ];
    for a in &lines {
        for f in required {
            assert!(a.get(f).is_some(), "field {f} missing in {a}");
        }
    }

    let summary: Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary written"))
            .expect("json");
    assert_eq!(
        summary["alarms"].as_u64(),
        Some(manifest.expected_alarms.len() as u64)
    );
    // The manifest counts the traces of readable files; ctsguard also salvages the traces
    // before the break of a damaged one (none of them logins).
    let traces = summary["traces"].as_u64().unwrap_or(0);
    assert!(traces >= manifest.traces, "{traces} < {}", manifest.traces);
    assert_eq!(
        summary["files"].as_u64(),
        Some((manifest.trace_files.len() + manifest.bad_objects.len()) as u64)
    );
    assert_eq!(
        summary["files_failed"].as_u64(),
        Some(manifest.bad_objects.len() as u64)
    );
    assert_eq!(
        summary["unrelated_objects"].as_u64(),
        Some(manifest.unrelated_objects.len() as u64)
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Whether a trace file's text holds `"login"` or `"logout"` in any ASCII case, or a `\u`
/// escape: what `--parse candidates` must parse, found here the slow and obvious way.
fn holds_candidate(raw: &[u8]) -> bool {
    use std::io::Read;
    let mut text = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut text);
    } else {
        text = raw.to_vec(); // the generator writes some files as plain JSON
    }
    let lower = String::from_utf8_lossy(&text).to_ascii_lowercase();
    ["\"login\"", "\"logout\"", "\\u"]
        .iter()
        .any(|n| lower.contains(n))
}

/// `--parse candidates` raises the same alarms and reports the same damaged files as parsing
/// everything, and parses exactly the files whose text holds a watched action. What it gives
/// up is named: malformed JSON that still opens and closes like a list, in a file without a
/// watched action, goes unreported.
#[test]
fn parse_candidates_raises_the_same_alarms_and_parses_only_files_with_watched_actions() {
    let (dir, manifest) = generate_local(&spec());
    let broken = "CloudTraces/eu-de/2026/9/30/system/ECS/\
                  audit_trail_CloudTrace_eu-de_2026-09-30T09-00-00Z_brokenjson.json.gz";
    let body = gzip(br#"[{"trace_name":"createServer",,"time":1759222800000}]"#);
    std::fs::write(dir.path().join(broken), body).expect("write");

    let run = |mode: &str| {
        let summary = dir.path().join(format!("summary-{mode}.json"));
        let out = backfill_dir(
            dir.path(),
            &[
                "--parse",
                mode,
                "--summary-json",
                summary.to_str().unwrap_or_default(),
            ],
        );
        let summary: Value =
            serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
        (out, summary)
    };
    let (all, all_sum) = run("all");
    let (cand, cand_sum) = run("candidates");
    let (all_err, cand_err) = (
        String::from_utf8_lossy(&all.stderr),
        String::from_utf8_lossy(&cand.stderr),
    );

    assert!(!cand.stdout.is_empty());
    assert_eq!(
        alarm_lines(&cand),
        alarm_lines(&all),
        "the same alarms, in the same order"
    );
    assert_eq!(all_sum["files_screened"].as_u64(), Some(0));
    for (key, _) in &manifest.bad_objects {
        assert!(
            cand_err.contains(key.as_str()),
            "{key} not reported: {cand_err}"
        );
    }
    assert!(
        all_err.contains(broken),
        "--parse all reports {broken}: {all_err}"
    );
    assert!(
        !cand_err.contains(broken),
        "{broken} is screened: {cand_err}"
    );
    assert_eq!(
        cand_sum["files_failed"].as_u64(),
        all_sum["files_failed"].as_u64().map(|n| n - 1)
    );
    assert_eq!(
        cand.status.code(),
        Some(1),
        "the damaged files still fail the run"
    );

    // Exactly the readable trace files without a candidate are screened.
    let mut screened = 1; // the broken file
    for key in &manifest.trace_files {
        let raw = std::fs::read(dir.path().join(key)).expect("trace file");
        screened += u64::from(!holds_candidate(&raw));
    }
    assert!(screened > 1 && screened < manifest.trace_files.len() as u64);
    assert_eq!(cand_sum["files_screened"].as_u64(), Some(screened));
    assert_eq!(cand_sum["files"], all_sum["files"]);
    let (t_all, t_cand) = (all_sum["traces"].as_u64(), cand_sum["traces"].as_u64());
    assert!(
        t_cand < t_all,
        "screened traces are not counted: {t_cand:?} vs {t_all:?}"
    );
}

/// An action is not a folder: `/` in one is taken (the screen cannot look for it, so every
/// file is parsed, and the run says so); in a region it is refused, naming the setting.
#[test]
fn an_action_with_a_slash_is_taken_and_turns_the_screen_off() {
    let (dir, manifest) = generate_local(&GenSpec {
        edge_cases: false,
        ..spec()
    });
    let (out, summary) = backfill_dir_summary(
        dir.path(),
        &[
            "--actions",
            "login,logout,iam/login",
            "--parse",
            "candidates",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("every file is parsed"), "{stderr}");
    assert_eq!(summary["files_screened"], 0);
    assert_eq!(
        alarm_set(&alarm_lines(&out)),
        expected_set(&manifest),
        "the same alarms"
    );

    let region = backfill_dir(dir.path(), &["--regions", "eu-de/x"]);
    assert_eq!(region.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&region.stderr);
    assert!(
        stderr.contains("regions") && stderr.contains("cannot contain '/'"),
        "{stderr}"
    );
}

#[test]
fn a_parse_mode_that_does_not_exist_is_refused_at_start() {
    let (dir, _) = generate_local(&spec());
    let out = backfill_dir(dir.path(), &["--parse", "some"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--parse"), "names the setting: {stderr}");
}

#[test]
fn output_is_ordered_and_identical_whatever_the_concurrency() {
    let (dir, _) = generate_local(&spec());
    let one = backfill_dir(dir.path(), &["--concurrency", "1"]);
    let many = backfill_dir(dir.path(), &["--concurrency", "64"]);
    assert!(!one.stdout.is_empty());
    assert_eq!(one.stdout, many.stdout);
    let lines = alarm_lines(&one);
    let order: Vec<(String, u64)> = lines
        .iter()
        .map(|a| {
            (
                a["object"].as_str().unwrap_or_default().to_owned(),
                a["index"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        order, sorted,
        "alarms ordered by key, then position in file"
    );
}

#[test]
fn s3_backfill_prints_the_same_lines_as_the_directory() {
    let spec = GenSpec {
        prefix: "org/cts/".into(),
        ..spec()
    };
    let (dir, manifest) = generate_local(&spec);
    let server = rt().block_on(S3Server::start());
    server.create_bucket("traces");
    rt().block_on(async {
        let store = s3_store(&server, "traces", true).await;
        gen::generate(&spec, &store).await.expect("generate on S3");
    });

    let local = backfill_dir(&dir.path().join("org/cts"), &[]);
    let s3 = ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-09-30",
            "--to",
            "2026-10-02",
            "--allow",
            ALLOW,
        ])
        .args([
            "--source",
            "s3://traces/org/cts",
            "--path-style",
            "--endpoint",
        ])
        .arg(server.endpoint())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run");
    assert_eq!(
        s3.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&s3.stderr)
    );
    assert_eq!(alarm_set(&alarm_lines(&s3)), expected_set(&manifest));
    // Keys are relative to the bucket, so only the path prefix tells the two apart.
    assert_eq!(
        String::from_utf8_lossy(&s3.stdout).replace("\"object\":\"org/cts/", "\"object\":\""),
        String::from_utf8_lossy(&local.stdout)
    );
}

#[test]
fn listing_cost_follows_the_window_not_the_bucket() {
    let server = rt().block_on(S3Server::start());
    server.create_bucket("bkt");
    let spec = GenSpec {
        days: 12,
        edge_cases: false,
        regions: vec!["eu-de".into()],
        trackers: vec!["system".into()],
        ..spec()
    };
    rt().block_on(async {
        let store = s3_store(&server, "bkt", true).await;
        gen::generate(&spec, &store).await.expect("generate");
    });
    let lists_for = |from: &str, to: &str| {
        server.clear_requests();
        let out = ctsguard()
            .args([
                "backfill",
                "--from",
                from,
                "--to",
                to,
                "--allow",
                ALLOW,
                "--regions",
                "eu-de",
            ])
            .args(["--source", "s3://bkt", "--path-style", "--endpoint"])
            .arg(server.endpoint())
            .env("AWS_ACCESS_KEY_ID", server.access_key())
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.requests().iter().filter(|r| r.is_list_v2()).count()
    };
    // One day listed as both folder forms, one day each side, plus the reachability probe and
    // the check that the named region exists: 12 days in the bucket change nothing.
    let one_day = lists_for("2026-10-03", "2026-10-04");
    let two_days = lists_for("2026-10-03", "2026-10-05");
    assert_eq!(one_day, 2 + 3 * 2);
    assert_eq!(two_days, 2 + 4 * 2);
}

#[test]
fn filters_select_regions_trackers_and_services() {
    let (dir, manifest) = generate_local(&spec());
    let out = backfill_dir(
        dir.path(),
        &[
            "--regions",
            "eu-nl",
            "--trackers",
            "system",
            "--services",
            "iam",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = alarm_set(&alarm_lines(&out));
    let want: BTreeSet<_> = expected_set(&manifest)
        .into_iter()
        .filter(|(k, _, _)| k.contains("CloudTraces/eu-nl/") && k.contains("/system/IAM/"))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn oversized_files_fail_alone_and_the_run_goes_on() {
    let (dir, manifest) = generate_local(&GenSpec {
        edge_cases: false,
        ..spec()
    });
    // Generated files are a few KiB compressed and several times that decompressed, so
    // this limit lets every download through and stops every inflate.
    let out = backfill_dir(dir.path(), &["--max-decompressed-size", "10KiB"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceeds the limit of 10240 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("larger than the limit"), "{stderr}");
    assert!(
        stderr.contains(manifest.trace_files[0].as_str()),
        "{stderr}"
    );
    let ok = backfill_dir(dir.path(), &["--max-decompressed-size", "100MiB"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn alerts_can_go_to_a_file_and_use_the_legacy_message() {
    let (dir, manifest) = generate_local(&GenSpec {
        edge_cases: false,
        ..spec()
    });
    let alerts = dir.path().join("alerts.jsonl");
    let out = backfill_dir(
        dir.path(),
        &[
            "--alerts",
            alerts.to_str().unwrap_or_default(),
            "--message-template",
            "legacy",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "stdout stays empty when alerts go to a file"
    );
    let text = std::fs::read_to_string(&alerts).expect("alerts file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), manifest.expected_alarms.len());
    let a = &lines[0];
    assert_eq!(
        a["message"].as_str().unwrap_or_default(),
        format!(
            "Illegal operation[  IP:{},  Action:{}]",
            a["source_ip"].as_str().unwrap_or_default(),
            a["action"].as_str().unwrap_or_default()
        )
    );
}

/// A device is a file a user may name (to count the alarms without keeping them); it cannot
/// be synced, and must not fail the run for that.
#[cfg(unix)]
#[test]
fn alerts_can_be_thrown_away_into_dev_null() {
    let (dir, manifest) = generate_local(&GenSpec {
        edge_cases: false,
        ..spec()
    });
    let (out, summary) = backfill_dir_summary(dir.path(), &["--alerts", "/dev/null"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary["errors"], 0);
    assert_eq!(
        summary["alarms"].as_u64(),
        Some(manifest.expected_alarms.len() as u64)
    );
}

#[test]
fn the_readme_quickstart_over_the_checked_in_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(root.join("manifest.json")).expect("fixtures/manifest.json"),
    )
    .expect("manifest");
    let out = ctsguard()
        .args(["backfill", "--from", "2026-09-30", "--to", "2026-10-02"])
        .args([
            "--allow",
            "10.0.0.0/8,192.168.1.1,2001:db8::/32",
            "--source",
        ])
        .arg(root.join("bucket"))
        // The fixtures' digests are signed with a test key: every one checks out.
        .arg("--public-key")
        .arg(root.join("TEST-ONLY-digest-public-key.pem"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "the fixtures hold bad objects");
    // The login alarms, and an integrity alarm for each trace file the digests do not vouch
    // for (the truncated one was changed after its digest; one file no digest lists).
    let mut expected = expected_set(&manifest);
    expected.extend(
        manifest
            .expected_integrity
            .iter()
            .filter(|(_, status)| status != "valid")
            .map(|(key, status)| (key.clone(), String::new(), status.clone())),
    );
    assert!(expected.len() > manifest.expected_alarms.len());
    assert_eq!(alarm_set(&alarm_lines(&out)), expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (key, _) in &manifest.bad_objects {
        assert!(
            stderr.contains(key.as_str()),
            "{key} not reported: {stderr}"
        );
    }
}
