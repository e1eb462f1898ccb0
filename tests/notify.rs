//! End-to-end: alarms reaching people. `scan` and `backfill` with SMN, webhook and email sinks
//! against real receivers on 127.0.0.1: grouped notifications, exactly once across runs, a
//! failing sink that fails the run and gets what it missed from the next one, the original
//! function's variables and text, `check --send-test`, and secrets that never show.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use ctsguard::gen::GenSpec;
use serde_json::Value;

use common::cli::ctsguard;
use common::generate_local;
use common::http_receiver::{HttpReceiver, Received, Reply};
use common::smtp::SmtpServer;

const AK: &str = "AK-e2e-do-not-leak";
const SK: &str = "SK-e2e-do-not-leak";
const HOOK_SECRET: &str = "hook-e2e-do-not-leak";

fn spec() -> GenSpec {
    GenSpec {
        seed: 31,
        services: vec!["IAM".into()],
        files_per_service_per_day: 6,
        traces_per_file: 12,
        alarm_share: 0.3,
        ..GenSpec::default()
    }
}

/// A config file with an SMN sink and a webhook sink pointing at the receivers.
fn config(dir: &Path, smn: &HttpReceiver, hook: &HttpReceiver, extra: &str) -> PathBuf {
    let text = format!(
        r#"
allow = "10.0.0.0/8"
integrity = "off"

[[sinks]]
type = "smn"
name = "oncall"
topic_urn = "urn:smn:eu-de:0123456789abcdef:oncall"
endpoint = "{smn}"
retry = {{ attempts = 2, initial_backoff = "1ms", max_backoff = "5ms", budget = "5s" }}

[[sinks]]
type = "webhook"
name = "hook"
url = "{hook}"
retry = {{ attempts = 2, initial_backoff = "1ms", max_backoff = "5ms", budget = "5s" }}
{extra}
"#,
        smn = smn.endpoint(),
        hook = hook.url("/hook"),
    );
    let path = dir.join("ctsguard.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn scan(dir: &Path, cfg: &Path, now: &str) -> Output {
    ctsguard()
        .arg("scan")
        .arg("--config")
        .arg(cfg)
        .arg("--source")
        .arg(dir.join("tree"))
        .arg("--checkpoint")
        .arg(dir.join("ck.json"))
        .args(["--since", "2026-09-30", "--now", now])
        .env("CTSGUARD_SMN_ACCESS_KEY", AK)
        .env("CTSGUARD_SMN_SECRET_KEY", SK)
        .env("CTSGUARD_WEBHOOK_SECRET", HOOK_SECRET)
        .output()
        .expect("run")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The alarm ids a webhook `json` payload covers.
fn covered(reqs: &[Received]) -> Vec<String> {
    let alarms: Vec<Value> = reqs
        .iter()
        .flat_map(|r| {
            let v = r.json();
            let alarms = v["alarms"].as_array().cloned().unwrap_or_default();
            assert_eq!(v["count"].as_u64(), Some(alarms.len() as u64), "{v}");
            alarms
        })
        .collect();
    ids(&alarms)
}

/// The alarms' ids (`<rule>:<trace_id>`), sorted.
fn ids(alarms: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = alarms
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["rule"].as_str().unwrap_or_default(),
                a["trace_id"].as_str().unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

/// Distinct (rule, reason, action, source IP, user) of the alarms: the groups.
fn groups(alarms: &[Value]) -> usize {
    let keys: std::collections::BTreeSet<String> = alarms
        .iter()
        .map(|a| {
            format!(
                "{}|{}|{}|{}|{}",
                a["rule"], a["reason"], a["action"], a["source_ip"], a["user"]
            )
        })
        .collect();
    keys.len()
}

#[test]
fn a_scan_notifies_each_group_once_and_the_next_scan_sends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree, _) = generate_local(&spec());
    std::fs::rename(tree.path(), dir.path().join("tree")).expect("move tree");
    let smn = HttpReceiver::start(vec![]);
    let hook = HttpReceiver::start(vec![]);
    let cfg = config(dir.path(), &smn, &hook, "max_notifications = 0");

    let out = scan(dir.path(), &cfg, "2026-10-01T00:00:00Z");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alarms = lines(&out);
    assert!(alarms.len() > 5, "the tree must hold alarms");
    // Every alarm reached the webhook once, in one notification per group.
    let hooks = hook.requests();
    assert_eq!(hooks.len(), groups(&alarms));
    assert_eq!(covered(&hooks), ids(&alarms));
    for r in &hooks {
        assert_eq!(r.path, "/hook");
        let sig = r.header("x-ctsguard-signature").expect("signed");
        assert_eq!(
            sig,
            ctsguard::notify::webhook::signature(HOOK_SECRET, &r.body)
        );
    }
    // SMN: the same groups, capped at its default of 20 per run (the last one sums up).
    let published = smn.requests();
    assert_eq!(published.len(), groups(&alarms).min(20));
    for r in &published {
        assert_eq!(
            r.path,
            "/v2/0123456789abcdef/notifications/topics/urn:smn:eu-de:0123456789abcdef:oncall/publish"
        );
        assert!(r
            .header("authorization")
            .is_some_and(|a| a.starts_with("SDK-HMAC-SHA256 Access=AK-e2e-do-not-leak")));
        let body = r.json();
        assert!(body["subject"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.contains("login") || m.contains("logout")));
    }
    let summary_line = stderr(&out);
    for secret in [SK, HOOK_SECRET] {
        assert!(!summary_line.contains(secret), "secret in the log");
    }

    // Nothing new: no notification at all.
    let out = scan(dir.path(), &cfg, "2026-10-01T01:00:00Z");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(lines(&out).is_empty());
    assert_eq!(hook.requests().len(), hooks.len());
    assert_eq!(smn.requests().len(), published.len());
}

#[test]
fn a_failing_sink_fails_the_run_and_gets_what_it_missed_next_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree, _) = generate_local(&spec());
    std::fs::rename(tree.path(), dir.path().join("tree")).expect("move tree");
    let smn = HttpReceiver::start(vec![]);
    // Two attempts of the first notification fail; the sink is then not tried again in
    // that run. Later requests succeed.
    let hook = HttpReceiver::start(vec![Reply::Status(503), Reply::Status(503)]);
    let cfg = config(dir.path(), &smn, &hook, "max_notifications = 0");

    let first = scan(dir.path(), &cfg, "2026-10-01T00:00:00Z");
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("sink webhook:hook"),
        "{}",
        stderr(&first)
    );
    let alarms = lines(&first);
    let smn_first = smn.requests().len();
    assert_eq!(smn_first, groups(&alarms).min(20), "SMN got everything");
    assert_eq!(
        hook.requests().len(),
        2,
        "no more attempts after the sink failed"
    );
    // The files with alarms are not done.
    let ck: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ck.json")).expect("checkpoint"))
            .expect("json");
    let processed = ck["processed"].as_object().expect("processed");
    for a in &alarms {
        let key = a["object"].as_str().unwrap_or_default();
        assert!(
            !processed.contains_key(key),
            "{key} done before its webhook"
        );
    }
    for secret in [AK, SK, HOOK_SECRET] {
        assert!(!stderr(&first).contains(secret), "secret in the log");
    }

    // The next run reads those files again and sends the webhook what it missed, nothing to
    // SMN, nothing twice to the JSON lines.
    let second = scan(dir.path(), &cfg, "2026-10-01T01:00:00Z");
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(lines(&second).is_empty(), "JSON lines had them already");
    assert_eq!(smn.requests().len(), smn_first);
    let delivered: Vec<Received> = hook
        .requests()
        .into_iter()
        .filter(|r| r.json()["count"].is_u64())
        .skip(2)
        .collect();
    assert_eq!(covered(&delivered), ids(&alarms));

    let third = scan(dir.path(), &cfg, "2026-10-01T02:00:00Z");
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert_eq!(hook.requests().len(), 2 + delivered.len());
}

#[test]
fn the_original_functions_variables_and_text_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree, _) = generate_local(&GenSpec {
        files_per_service_per_day: 2,
        ..spec()
    });
    let smn = HttpReceiver::start(vec![]);
    let out = ctsguard()
        .args(["backfill", "--from", "2026-09-30", "--to", "2026-10-01"])
        .arg("--source")
        .arg(tree.path())
        .args(["--integrity", "off", "--message-template", "legacy"])
        .arg("--smn-endpoint")
        .arg(smn.endpoint())
        .env("IP", "10.0.0.0/8")
        .env("SMN_Topic", "urn:smn:eu-de:0123456789abcdef:legacy")
        .env("RegionName", "eu-de")
        .env("CTSGUARD_SMN_TOKEN", "token-e2e-do-not-leak")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alarms = lines(&out);
    assert!(!alarms.is_empty());
    let published = smn.requests();
    assert_eq!(published.len(), groups(&alarms).min(20));
    for r in &published {
        assert_eq!(r.header("x-auth-token"), Some("token-e2e-do-not-leak"));
        let body = r.json();
        assert_eq!(body["subject"], "CTSTrigger");
        let message = body["message"].as_str().unwrap_or_default();
        let first = message.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("Illegal operation[  IP:") && first.contains(",  Action:"),
            "{message}"
        );
    }
    assert!(!stderr(&out).contains("token-e2e-do-not-leak"));
}

#[test]
fn check_send_test_reaches_every_sink_and_fails_when_one_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let smn = HttpReceiver::start(vec![]);
    let hook = HttpReceiver::start_with_fallback(vec![], Reply::Status(403));
    let mail = SmtpServer::start();
    let cfg = config(
        dir.path(),
        &smn,
        &hook,
        &format!(
            r#"
[[sinks]]
type = "email"
host = "127.0.0.1"
port = {port}
tls = "none"
from = "ctsguard <ctsguard@example.com>"
to = ["secops@example.com"]
"#,
            port = mail.port()
        ),
    );
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bucket");
    let out = ctsguard()
        .args(["check", "--send-test", "--config"])
        .arg(&cfg)
        .arg("--source")
        .arg(&fixtures)
        .env("CTSGUARD_SMN_TOKEN", "token-check-do-not-leak")
        .env("CTSGUARD_WEBHOOK_SECRET", HOOK_SECRET)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The webhook answers 403: the run says so and exits 1; the others got their test.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("send-test smn:oncall: sent"), "{stdout}");
    assert!(
        stdout.contains("send-test webhook:hook: FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("send-test email:"), "{stdout}");
    assert!(stdout.contains("notifications: "), "{stdout}");
    assert_eq!(smn.requests().len(), 1);
    let subject = smn.requests()[0].json()["subject"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(subject.starts_with("[ctsguard test]"), "{subject}");
    assert_eq!(hook.requests().len(), 1, "403 is not retried");
    let mails = mail.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0]
        .header("subject")
        .is_some_and(|s| s.contains("[ctsguard test]")));
    for secret in ["token-check-do-not-leak", HOOK_SECRET] {
        assert!(!stdout.contains(secret) && !stderr(&out).contains(secret));
    }
}

#[test]
fn a_wrong_sink_setting_fails_at_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[sinks]]\ntype = \"smn\"\ntopic_urn = \"not-a-urn\"\n",
    )
    .expect("write");
    let out = ctsguard()
        .args(["check", "--config"])
        .arg(&cfg)
        .args(["--source", "fixtures/bucket"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CTSGUARD_SMN_TOKEN", "t")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sinks[0].topic_urn"),
        "{}",
        stderr(&out)
    );
    let out = ctsguard()
        .args([
            "check",
            "--webhook-url",
            "not a url",
            "--source",
            "fixtures/bucket",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--webhook-url"), "{}", stderr(&out));
}
