//! The command line: settings precedence, configuration errors (exit 2 naming the setting),
//! `check`, and the exit codes.

mod common;

use std::path::Path;
use std::process::Output;

use ctsguard::gen::{self, GenSpec};
use ctsguard::store::LocalStore;

use assert_cmd::Command;
use common::cli::ctsguard;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::open(dir.path()).expect("store");
    let spec = GenSpec {
        seed: 3,
        traces_per_file: 40,
        allowed: vec!["10.0.0.0/8".into()],
        ..GenSpec::default()
    };
    tokio::runtime::Runtime::new()
        .expect("rt")
        .block_on(gen::generate(&spec, &store))
        .expect("generate");
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn alarms(o: &Output) -> usize {
    String::from_utf8_lossy(&o.stdout).lines().count()
}

fn backfill(dir: &Path) -> Command {
    let mut c = ctsguard();
    c.args([
        "backfill",
        "--from",
        "2026-09-30",
        "--to",
        "2026-10-01",
        "--source",
    ])
    .arg(dir);
    c
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tree();
    let cfg = dir.path().join("ctsguard.toml");
    // The file allows nothing: every login/logout alarms.
    std::fs::write(&cfg, "allow = []\nactions = [\"login\", \"logout\"]\n").expect("write");
    let file_only = backfill(dir.path())
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    let env = backfill(dir.path())
        .arg("--config")
        .arg(&cfg)
        .env("CTSGUARD_ALLOW", "10.0.0.0/8")
        .output()
        .expect("run");
    let flag = backfill(dir.path())
        .arg("--config")
        .arg(&cfg)
        .env("CTSGUARD_ALLOW", "10.0.0.0/8")
        .args(["--allow", "0.0.0.0/0,::/0"])
        .output()
        .expect("run");
    let (f, e, g) = (alarms(&file_only), alarms(&env), alarms(&flag));
    assert!(f > e && e > 0, "file {f} env {e}");
    // Everything allowed by the flag, except traces with no readable IP.
    assert!(g < e, "flag {g} env {e}");
}

#[test]
fn the_legacy_ip_variable_is_honoured_below_ctsguard_allow() {
    let dir = tree();
    let none = backfill(dir.path()).output().expect("run");
    let legacy = backfill(dir.path())
        .env("IP", "10.0.0.0/8")
        .output()
        .expect("run");
    let both = backfill(dir.path())
        .env("IP", "10.0.0.0/8")
        .env("CTSGUARD_ALLOW", "192.0.2.1")
        .output()
        .expect("run");
    assert!(alarms(&legacy) < alarms(&none));
    assert_eq!(alarms(&both), alarms(&none));
}

#[test]
fn bad_settings_exit_2_naming_setting_and_value() {
    let dir = tree();
    // (flags, environment, text the error must contain)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--allow", "10.0.0.0/8,10.0.0.300"],
            vec![],
            "--allow: \"10.0.0.300\"",
        ),
        (
            vec![],
            vec![("CTSGUARD_ALLOW", "nope")],
            "CTSGUARD_ALLOW: \"nope\"",
        ),
        (
            vec![],
            vec![("IP", "1.2.3")],
            "IP (legacy variable): \"1.2.3\"",
        ),
        (vec!["--concurrency", "0"], vec![], "--concurrency"),
        (
            vec!["--max-decompressed-size", "lots"],
            vec![],
            "--max-decompressed-size: \"lots\"",
        ),
        (vec!["--message-template", "{nope}"], vec![], "{nope}"),
        (
            vec!["--endpoint", "obs.example"],
            vec![],
            "--endpoint: \"obs.example\"",
        ),
    ];
    for (args, env, needle) in cases {
        let mut c = backfill(dir.path());
        c.args(&args);
        for (k, v) in &env {
            c.env(k, v);
        }
        let out = c.output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: wanted {needle:?} in {}",
            stderr(&out)
        );
    }
}

#[test]
fn unknown_config_keys_and_bad_times_exit_2() {
    let dir = tree();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "alow = [\"10.0.0.0/8\"]\n").expect("write");
    let out = backfill(dir.path())
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("alow"), "{}", stderr(&out));

    let out = ctsguard()
        .args(["backfill", "--from", "2026-02-30", "--source"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--from: \"2026-02-30\""),
        "{}",
        stderr(&out)
    );

    let out = ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-10-02",
            "--to",
            "2026-10-01",
            "--source",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_sources_exit_2() {
    let out = ctsguard()
        .args(["check", "--source", "/nonexistent/ctsguard-test"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/ctsguard-test"),
        "{}",
        stderr(&out)
    );

    // Nothing listens on port 9 of loopback (discard), so the connection is refused.
    let out = ctsguard()
        .args([
            "check",
            "--source",
            "s3://b",
            "--path-style",
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach source s3://b"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_prints_what_the_source_holds() {
    let dir = tree();
    let out = ctsguard()
        .args(["check", "--allow", "10.0.0.0/8", "--source"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("regions: eu-de"), "{text}");
    assert!(text.contains("trackers: system"), "{text}");
    assert!(text.contains("services: ECS, IAM"), "{text}");
    assert!(
        text.contains("newest trace file: CloudTraces/eu-de/2026/9/30/"),
        "{text}"
    );
}

#[test]
fn no_source_is_a_usage_error() {
    let out = ctsguard().args(["check"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--source"), "{}", stderr(&out));
}

#[test]
fn a_source_or_region_with_nothing_to_read_is_an_error_not_a_silent_success() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = backfill(empty.path()).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no region folders"),
        "{}",
        stderr(&out)
    );

    let dir = tree();
    let out = backfill(dir.path())
        .args(["--regions", "eu-dee"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"eu-dee\" not found") && stderr(&out).contains("present: eu-de"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_region_named_twice_is_read_once() {
    let dir = tree();
    let once = backfill(dir.path())
        .args(["--regions", "eu-de"])
        .output()
        .expect("run");
    let twice = backfill(dir.path())
        .args(["--regions", "eu-de,eu-de"])
        .output()
        .expect("run");
    assert!(alarms(&once) > 0);
    assert_eq!(once.stdout, twice.stdout);
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let dir = tree();
    let before = ctsguard()
        .args(["--path-style", "--source"])
        .arg(dir.path())
        .args(["backfill", "--from", "2026-09-30", "--to", "2026-10-01"])
        .output()
        .expect("run");
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let after = backfill(dir.path())
        .arg("--path-style=false")
        .output()
        .expect("run");
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    assert_eq!(before.stdout, after.stdout);
}

#[test]
fn an_invalid_log_filter_is_a_configuration_error() {
    let dir = tree();
    let out = backfill(dir.path())
        .args(["--log", "bogus["])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--log"), "{}", stderr(&out));
}
