//! Storage faults: `scan` and `verify` through a fault-injecting proxy (tests/common/
//! fault_proxy.rs) in front of the in-process S3 server. With one request in five failing
//! (503 SlowDown, 500, resets mid-body, truncated bodies, slow answers) both complete with the
//! same result as without faults; with the server gone for good, they stop with exit code 2
//! within the time budget and leave the checkpoint as it was.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use ctsguard::gen::{self, GenSpec, Manifest};
use ctsguard::store::ObjectStore;
use serde_json::Value;

use common::cli::{ctsguard_process, rt};
use common::fault_proxy::{FaultConfig, FaultProxy};
use common::s3::{s3_store, S3Server};

const ALLOW: &str = "10.0.0.0/8,192.168.1.1,2001:db8::/32";
const BUCKET: &str = "faulty";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn spec() -> GenSpec {
    GenSpec {
        seed: 23,
        days: 2,
        regions: vec!["eu-de".into()],
        trackers: vec!["system".into()],
        services: vec!["IAM".into(), "ECS".into()],
        files_per_service_per_day: 16,
        traces_per_file: 10,
        allowed: ALLOW.split(',').map(str::to_owned).collect(),
        digests: true,
        signing_key: Some(
            std::fs::read_to_string(fixtures().join("TEST-ONLY-digest-signing-key.pem"))
                .expect("test key"),
        ),
        bucket: BUCKET.into(),
        ..GenSpec::default()
    }
}

/// The seed of the proxy's fault stream: `CTSGUARD_FAULT_SEED` to replay a failure, else
/// fixed. Printed, so a failing run names it.
fn seed() -> u64 {
    let s = std::env::var("CTSGUARD_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_26);
    eprintln!("fault proxy seed: {s} (set CTSGUARD_FAULT_SEED to replay)");
    s
}

struct Setup {
    server: S3Server,
    manifest: Manifest,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let server = S3Server::start_blocking(Default::default());
    server.create_bucket(BUCKET);
    let manifest = rt().block_on(async {
        let store = s3_store(&server, BUCKET, true).await;
        gen::generate(&spec(), &store).await.expect("generate")
    });
    Setup {
        server,
        manifest,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, endpoint: &str, args: &[&str]) -> std::process::Command {
        let mut c = ctsguard_process();
        c.args(args)
            .arg(format!("--source=s3://{BUCKET}"))
            .args(["--path-style", "--endpoint", endpoint])
            .env("AWS_ACCESS_KEY_ID", self.server.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.server.secret_key())
            .env("AWS_REGION", "us-east-1");
        c
    }

    fn scan(&self, endpoint: &str, now: &str, extra: &[&str]) -> Output {
        self.cmd(
            endpoint,
            &[
                "scan",
                "--allow",
                ALLOW,
                "--since",
                "2026-09-29",
                "--now",
                now,
            ],
        )
        .arg("--checkpoint")
        .arg(self.path("state/checkpoint.json"))
        .arg("--alerts")
        .arg(self.path("alerts.jsonl"))
        // The digests are read (and checked) through the faults too.
        .arg("--public-key")
        .arg(fixtures().join("TEST-ONLY-digest-public-key.pem"))
        .args(extra)
        .output()
        .expect("run scan")
    }

    fn verify(&self, endpoint: &str, extra: &[&str]) -> Output {
        self.cmd(
            endpoint,
            &["verify", "--from", "2026-09-30", "--to", "2026-10-02"],
        )
        .arg("--public-key")
        .arg(fixtures().join("TEST-ONLY-digest-public-key.pem"))
        .args(extra)
        .output()
        .expect("run verify")
    }

    fn alarms(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.path("alerts.jsonl"))
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

    fn expected_alarms(&self) -> BTreeSet<(String, String)> {
        self.manifest
            .expected_alarms
            .iter()
            .map(|a| (a.trace_id.clone(), a.key.clone()))
            .collect()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn statuses(out: &Output) -> BTreeMap<String, String> {
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(r["summary"]["errors"], 0, "{r}");
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

#[test]
fn scan_and_verify_complete_with_a_fifth_of_the_requests_failing() {
    let s = setup();
    let proxy = FaultProxy::start(
        &s.server.endpoint(),
        FaultConfig {
            rate: 0.2,
            seed: seed(),
            ..FaultConfig::default()
        },
    );
    let started = Instant::now();
    let out = s.scan(&proxy.endpoint(), "2026-10-02T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("ERROR"),
        "no error reached the output: {}",
        stderr(&out)
    );
    let lines = s.alarms();
    let got: BTreeSet<_> = lines.iter().cloned().collect();
    assert_eq!(got, s.expected_alarms(), "every alarm, despite the faults");
    assert_eq!(lines.len(), got.len(), "no alarm twice");
    let after_scan = proxy.counts();
    eprintln!("scan: {after_scan:?} in {:?}", started.elapsed());
    assert!(
        after_scan.failed() * 10 >= after_scan.requests
            && after_scan.reset_mid_body + after_scan.truncated >= 1
            && after_scan.slow >= 1,
        "too few faults were injected to prove anything: {after_scan:?}"
    );

    // The same integrity report with and without faults.
    let clean = s.verify(&s.server.endpoint(), &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let faulty = s.verify(&proxy.endpoint(), &[]);
    assert_eq!(faulty.status.code(), Some(0), "{}", stderr(&faulty));
    let want = statuses(&clean);
    assert!(want.len() > 20, "{want:?}");
    assert_eq!(statuses(&faulty), want);
    let counts = proxy.counts();
    eprintln!("scan + verify: {counts:?}");
    assert!(counts.failed() > after_scan.failed(), "{counts:?}");
}

#[test]
fn a_server_gone_for_good_stops_the_run_with_exit_2_within_the_budget() {
    let s = setup();
    let proxy = FaultProxy::start(&s.server.endpoint(), FaultConfig::default());
    proxy.set_rate(0.0);
    let first = s.scan(&proxy.endpoint(), "2026-10-01T12:00:00Z", &[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let checkpoint = std::fs::read(s.path("state/checkpoint.json")).expect("checkpoint");
    let alarms = s.alarms().len();

    proxy.set_down(true);
    for (what, out) in [
        (
            "scan",
            // The budget bounds every request with its retries.
            timed(|| {
                s.scan(
                    &proxy.endpoint(),
                    "2026-10-02T00:00:00Z",
                    &["--s3-timeout", "5s"],
                )
            }),
        ),
        (
            "verify",
            timed(|| s.verify(&proxy.endpoint(), &["--s3-timeout", "5s"])),
        ),
    ] {
        let (out, took) = out;
        eprintln!(
            "server gone: {what} exit {:?} after {took:?}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot reach source"),
            "{what}: {}",
            stderr(&out)
        );
        // Generous: the budget is 5 s; the bound only catches a run that retries forever.
        assert!(took < Duration::from_secs(40), "{what} took {took:?}");
    }
    assert_eq!(
        std::fs::read(s.path("state/checkpoint.json")).expect("checkpoint"),
        checkpoint,
        "the checkpoint is unchanged"
    );
    assert_eq!(s.alarms().len(), alarms);
    assert!(proxy.counts().dropped_while_down > 0);
}

/// The server vanishes in the middle of a scan: the run ends soon (later requests are not
/// tried once one failed every retry), says which files could not be read (exit 1), and the
/// next run, with the server back, delivers every alarm that was missing.
#[test]
fn a_server_gone_mid_run_ends_the_run_soon_and_nothing_is_lost() {
    let s = setup();
    let proxy = FaultProxy::start(&s.server.endpoint(), FaultConfig::default());
    proxy.set_rate(0.0);
    proxy.down_after(8);
    let (out, took) = timed(|| {
        s.scan(
            &proxy.endpoint(),
            "2026-10-02T00:00:00Z",
            &["--s3-timeout", "5s", "--concurrency", "2"],
        )
    });
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "{}",
        stderr(&out)
    );
    eprintln!(
        "server gone mid-run: exit {:?} after {took:?}",
        out.status.code()
    );
    assert!(took < Duration::from_secs(40), "took {took:?}");
    assert!(
        stderr(&out).contains("the endpoint has been failing"),
        "later requests fail at once: {}",
        stderr(&out)
    );

    proxy.set_down(false);
    let again = s.scan(&proxy.endpoint(), "2026-10-02T00:10:00Z", &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let got: BTreeSet<_> = s.alarms().into_iter().collect();
    assert_eq!(got, s.expected_alarms());
    // The run with the server gone committed nothing wrong: a third run has nothing to do.
    let before = s.alarms().len();
    let third = s.scan(&proxy.endpoint(), "2026-10-02T00:20:00Z", &[]);
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert_eq!(s.alarms().len(), before);
}

/// The store itself: a download cut off mid-body is downloaded again, and the bytes handed
/// over are exactly the object's.
#[test]
fn downloads_cut_off_mid_body_are_retried_and_the_bytes_are_exact() {
    let server = S3Server::start_blocking(Default::default());
    server.create_bucket(BUCKET);
    let proxy = FaultProxy::start(
        &server.endpoint(),
        FaultConfig {
            rate: 0.5,
            seed: seed(),
            ..FaultConfig::default()
        },
    );
    rt().block_on(async {
        let direct = s3_store(&server, BUCKET, true).await;
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        direct
            .put(
                "obj",
                body.clone().into(),
                &Default::default(),
                ctsguard::store::PutMode::Overwrite,
            )
            .await
            .expect("put");
        let via = ctsguard::store::S3Store::connect(&ctsguard::store::S3Options {
            bucket: BUCKET.into(),
            endpoint: Some(proxy.endpoint()),
            region: Some("us-east-1".into()),
            path_style: true,
            access_key_id: Some(server.access_key().into()),
            secret_access_key: Some(server.secret_key().into()),
            retries: Some(20),
            ..Default::default()
        })
        .await;
        use md5::Digest as _;
        let want: [u8; 16] = md5::Md5::digest(&body).into();
        for _ in 0..10 {
            let got = via.get("obj", 1 << 20).await.expect("get despite faults");
            assert_eq!(got.body.as_ref(), body.as_slice());
            let h = via
                .get_md5("obj", 1 << 20)
                .await
                .expect("get_md5 despite faults");
            assert_eq!((h.size, h.md5), (body.len() as u64, want));
        }
    });
    let c = proxy.counts();
    eprintln!("{c:?}");
    assert!(c.reset_mid_body > 0 && c.truncated > 0, "{c:?}");
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}
