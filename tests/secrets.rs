//! Secrets never show: a run with every kind of secret configured (S3 keys, an SMN token read
//! from a file, a webhook secret, an SMTP password over STARTTLS) at debug log level, and
//! `check` and `--help`, are searched for the secret values in everything they write:
//! standard output and error, the summary, the metrics file, the checkpoint and the alarm
//! file. Files holding secrets that other users can read are warned about.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ctsguard::gen::{self, GenSpec};

use common::cli::{ctsguard, rt};
use common::http_receiver::HttpReceiver;
use common::s3::{s3_store, S3Server};
use common::smtp::{SmtpServer, TestCa, PASSWORD, USER};

const SMN_TOKEN: &str = "smn-token-secret-7f3a";
const HOOK_SECRET: &str = "hook-secret-9b1c";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn no_secret_appears_in_anything_a_run_writes() {
    let server = rt().block_on(S3Server::start());
    server.create_bucket("cts");
    rt().block_on(async {
        let store = s3_store(&server, "cts", true).await;
        let spec = GenSpec {
            services: vec!["IAM".into()],
            alarm_share: 0.3,
            ..GenSpec::default()
        };
        gen::generate(&spec, &store).await
    })
    .expect("generate");
    let smn = HttpReceiver::start(vec![]);
    let hook = HttpReceiver::start(vec![]);
    let ca = TestCa::new();
    let mail = SmtpServer::start_starttls(&ca);

    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("smn-token");
    std::fs::write(&token_file, format!("{SMN_TOKEN}\n")).expect("write");
    chmod(&token_file, 0o644);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).expect("write");
    let cfg = dir.path().join("ctsguard.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
allow = "10.0.0.0/8"
integrity = "off"

[[sinks]]
type = "smn"
topic_urn = "urn:smn:eu-de:0123456789abcdef:oncall"
endpoint = "{smn}"
token_file = "{token}"

[[sinks]]
type = "webhook"
url = "{hook}"

[[sinks]]
type = "email"
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = "{ca}"
username = "{USER}"
from = "ctsguard@example.com"
to = "secops@example.com"
"#,
            smn = smn.endpoint(),
            token = token_file.display(),
            hook = hook.url("/h"),
            port = mail.port(),
            ca = ca_file.display(),
        ),
    )
    .expect("write config");
    chmod(&cfg, 0o600);

    let with_secrets = |mut c: assert_cmd::Command| {
        c.arg("--config")
            .arg(&cfg)
            .args(["--source", "s3://cts", "--path-style", "--endpoint"])
            .arg(server.endpoint())
            .args(["--log", "debug"])
            .env("AWS_ACCESS_KEY_ID", server.access_key())
            .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
            .env("AWS_REGION", "us-east-1")
            .env("CTSGUARD_WEBHOOK_SECRET", HOOK_SECRET)
            .env("CTSGUARD_SMTP_PASSWORD", PASSWORD);
        c
    };
    let summary = dir.path().join("summary.json");
    let metrics = dir.path().join("metrics.prom");
    let alerts = dir.path().join("alerts.jsonl");
    let ck = dir.path().join("ck.json");
    let mut scan = ctsguard();
    scan.args([
        "scan",
        "--since",
        "2026-09-30",
        "--now",
        "2026-10-01T00:00:00Z",
    ])
    .arg("--checkpoint")
    .arg(&ck)
    .arg("--alerts")
    .arg(&alerts)
    .arg("--summary-json")
    .arg(&summary)
    .arg("--metrics-file")
    .arg(&metrics);
    let run = with_secrets(scan).output().expect("scan");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    // Every sink was used, so every secret was in play.
    assert!(!smn.requests().is_empty());
    assert!(!hook.requests().is_empty());
    assert!(!mail.mails().is_empty());
    assert!(
        mail.logins().iter().all(|u| u == USER),
        "logged in with the password"
    );
    // The token file is readable by others: said, without its content.
    assert!(
        stderr.contains("smn-token") && stderr.contains("644"),
        "{stderr}"
    );

    let mut check = ctsguard();
    check.args(["check", "--send-test"]);
    let checked = with_secrets(check).output().expect("check");
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let help = ctsguard()
        .arg("--help")
        .env("CTSGUARD_WEBHOOK_SECRET", HOOK_SECRET)
        .env("CTSGUARD_SMN_TOKEN", SMN_TOKEN)
        .output()
        .expect("help");

    let mut everything = Vec::new();
    for out in [&run, &checked, &help] {
        everything.extend_from_slice(&out.stdout);
        everything.extend_from_slice(&out.stderr);
    }
    for f in [&summary, &metrics, &alerts, &ck] {
        everything.extend(std::fs::read(f).expect("written"));
    }
    let text = String::from_utf8_lossy(&everything);
    assert!(text.len() > 1000, "the run wrote something to search");
    for secret in [SMN_TOKEN, HOOK_SECRET, PASSWORD, server.secret_key()] {
        assert!(!text.contains(secret), "a secret shows in the output");
    }
}

#[test]
fn a_config_file_with_credentials_readable_by_others_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("ctsguard.toml");
    std::fs::write(
        &cfg,
        "[s3]\naccess_key_id = \"AKID\"\nsecret_access_key = \"inline-secret-5d2e\"\n",
    )
    .expect("write");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bucket");
    let check = |mode: u32| {
        chmod(&cfg, mode);
        let out = ctsguard()
            .arg("check")
            .arg("--config")
            .arg(&cfg)
            .arg("--source")
            .arg(&fixtures)
            .output()
            .expect("check");
        assert_eq!(out.status.code(), Some(0));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("inline-secret-5d2e"));
        all
    };
    let open = check(0o644);
    assert!(open.contains("lets group or other users read it"), "{open}");
    let closed = check(0o600);
    assert!(
        !closed.contains("lets group or other users read it"),
        "{closed}"
    );
}
