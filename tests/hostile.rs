//! Hostile objects: each bad input is reported by key and reason (where it is an error at all),
//! never panics or allocates without bound, and the rest of the run is unaffected: the good
//! file beside it still raises its alarm.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use ctsguard::store::{LocalStore, ObjectStore, PutMode};
use serde_json::Value;

use common::cli::{ctsguard, rt};
use common::s3::{s3_store, S3Server};

const DAY: &str = "CloudTraces/eu-de/2026/10/1/system/IAM/";
const DIGESTS: &str = "CloudTraces/eu-de/2026/10/1/system/Digest/IAM/";

/// The key of a trace file with a readable name.
fn trace_key(n: u32, suffix: &str) -> String {
    format!("{DAY}t_CloudTrace_eu-de_2026-10-01T{n:02}-00-00Z_{suffix}.json.gz")
}

fn login(trace_id: &str, ip: &str) -> String {
    format!(
        r#"{{"trace_id":"{trace_id}","trace_name":"login","source_ip":"{ip}","time":1759312800000,"service_type":"IAM","user":{{"name":"u","domain":{{"name":"d"}}}}}}"#
    )
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

/// A bucket directory holding one good file (alarm `good-1`) and whatever a test adds.
struct Bucket {
    dir: tempfile::TempDir,
}

impl Bucket {
    fn new() -> Bucket {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = Bucket { dir };
        b.put(
            &trace_key(1, "good"),
            &gzip(format!("[{}]", login("good-1", "203.0.113.9")).as_bytes()),
        );
        b
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("bucket")
    }

    fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.root().join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn backfill(&self, extra: &[&str]) -> Run {
        let out = ctsguard()
            .args(["backfill", "--from", "2026-10-01", "--to", "2026-10-02"])
            .args(["--allow", "10.0.0.0/8"])
            .arg("--source")
            .arg(self.root())
            .arg("--alerts")
            .arg(self.out("alerts.jsonl"))
            .arg("--summary-json")
            .arg(self.out("summary.json"))
            .args(extra)
            .output()
            .expect("run backfill");
        Run::read(out, &self.out("summary.json"), &self.out("alerts.jsonl"))
    }
}

/// What a run said: exit code, failures by key, alarms by trace id.
struct Run {
    out: Output,
    summary: Value,
    alarms: Vec<Value>,
}

impl Run {
    fn read(out: Output, summary: &Path, alerts: &Path) -> Run {
        let summary = std::fs::read(summary)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let alarms = std::fs::read_to_string(alerts)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("alarm line is JSON"))
            .collect();
        Run {
            out,
            summary,
            alarms,
        }
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn failures(&self) -> BTreeMap<String, String> {
        self.summary["failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["key"].as_str().unwrap_or_default().to_owned(),
                            f["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn alarm_ids(&self) -> Vec<String> {
        self.alarms
            .iter()
            .map(|a| a["trace_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The good file was processed: its alarm is there, once.
    fn assert_good_file_unaffected(&self) {
        let ids = self.alarm_ids();
        assert_eq!(
            ids.iter().filter(|i| *i == "good-1").count(),
            1,
            "the good file's alarm: {ids:?}\n{}",
            self.stderr()
        );
        assert!(
            !self.failures().contains_key(&trace_key(1, "good")),
            "{:?}",
            self.failures()
        );
    }

    /// Exit code 1 and `key` reported with a reason containing `reason`.
    fn assert_reported(&self, key: &str, reason: &str) {
        assert_eq!(self.code(), Some(1), "{}", self.stderr());
        let failures = self.failures();
        let got = failures
            .get(key)
            .unwrap_or_else(|| panic!("{key} not reported; failures: {failures:?}"));
        assert!(
            got.contains(reason),
            "{key}: reason {got:?} does not say {reason:?}"
        );
        // On standard error too, by key.
        assert!(self.stderr().contains(key), "{}", self.stderr());
        assert!(
            !self.stderr().contains("panicked") && !got.contains("internal error"),
            "{}",
            self.stderr()
        );
        self.assert_good_file_unaffected();
    }
}

#[test]
fn truncated_gzip_is_reported_and_what_came_before_the_cut_is_kept() {
    let b = Bucket::new();
    let body: String = (0..200)
        .map(|i| login(&format!("t-{i}"), "198.51.100.1"))
        .collect::<Vec<_>>()
        .join("\n");
    let whole = gzip(body.as_bytes());
    let key = trace_key(2, "truncated");
    b.put(&key, &whole[..whole.len() / 2]);
    let run = b.backfill(&[]);
    run.assert_reported(&key, "gzip");
    // The lines before the cut were read: their alarms are not lost.
    let from_cut = run
        .alarms
        .iter()
        .filter(|a| a["object"] == key.as_str())
        .count();
    assert!(from_cut > 0 && from_cut < 200, "{from_cut}");
}

#[test]
fn a_gzip_bomb_stops_at_the_size_limit() {
    let b = Bucket::new();
    // 64 members of 1 MiB of zeros each: 64 MiB from about 64 KiB.
    let member = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; 1 << 20]).expect("gzip");
        e.finish().expect("gzip")
    };
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 64)
        .collect();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let key = trace_key(2, "bomb");
    b.put(&key, &bomb);
    let started = Instant::now();
    let run = b.backfill(&["--max-decompressed-size", "8MiB"]);
    run.assert_reported(&key, "exceeds the limit of 8388608 bytes");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn trailing_garbage_after_the_gzip_data_is_reported() {
    let b = Bucket::new();
    let mut bytes = gzip(format!("[{}]", login("before-garbage", "198.51.100.2")).as_bytes());
    bytes.extend_from_slice(b"\x00\x01garbage that is not another gzip member");
    let key = trace_key(2, "trailing");
    b.put(&key, &bytes);
    let run = b.backfill(&[]);
    run.assert_reported(&key, "gzip");
    assert!(run.alarm_ids().contains(&"before-garbage".to_owned()));
}

#[test]
fn invalid_utf8_is_reported_as_bad_json() {
    let b = Bucket::new();
    let mut json =
        b"[{\"trace_id\":\"x\",\"trace_name\":\"login\",\"source_ip\":\"1.2.3.4\xff\xfe\"}]"
            .to_vec();
    json.extend_from_slice(b"\n");
    let key = trace_key(2, "utf8");
    b.put(&key, &gzip(&json));
    let run = b.backfill(&[]);
    run.assert_reported(&key, "JSON at byte");
}

#[test]
fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    let b = Bucket::new();
    let deep = 200_000;
    let cases = [
        // Unclosed and closed arrays, objects, and nesting inside a field ctsguard skips.
        "[".repeat(deep),
        format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        format!("{}1{}", r#"{"a":"#.repeat(deep), "}".repeat(deep)),
        format!(
            r#"[{{"trace_id":"n","trace_name":"login","source_ip":"1.2.3.4","request":{}{}}}]"#,
            "[".repeat(deep),
            "]".repeat(deep)
        ),
        format!(
            r#"[{{"trace_id":"n2","trace_name":"login","source_ip":"1.2.3.4","user":{}1{}}}]"#,
            r#"{"name":"#.repeat(deep),
            "}".repeat(deep)
        ),
    ];
    for (i, json) in cases.iter().enumerate() {
        b.put(&trace_key(2 + i as u32, "nested"), &gzip(json.as_bytes()));
    }
    let run = b.backfill(&[]);
    let failures = run.failures();
    for i in 0..cases.len() as u32 {
        let key = trace_key(2 + i, "nested");
        eprintln!("{key}: {:?}", failures.get(&key));
    }
    // Nesting is skipped without recursion (serde_json skips ignored values iteratively), so
    // no depth exhausts the stack: a deep value where traces must be is reported...
    for i in 0..3u32 {
        run.assert_reported(&trace_key(2 + i, "nested"), "JSON");
    }
    // ...and deep nesting inside a trace's fields costs that trace nothing: it is read and
    // its alarm raised.
    for i in 3..5u32 {
        let key = trace_key(2 + i, "nested");
        assert!(!failures.contains_key(&key), "{key}: {failures:?}");
    }
    let ids = run.alarm_ids();
    assert!(
        ids.contains(&"n".to_owned()) && ids.contains(&"n2".to_owned()),
        "{ids:?}"
    );
}

#[test]
fn huge_strings_are_read_and_the_alarm_is_raised() {
    let b = Bucket::new();
    let huge = "x".repeat(8 << 20);
    let json = format!(
        r#"[{{"trace_id":"huge","trace_name":"login","source_ip":"198.51.100.3","user":{{"name":"u"}},"message":"{huge}","request":"{huge}"}}]"#
    );
    let key = trace_key(2, "huge");
    b.put(&key, &gzip(json.as_bytes()));
    let run = b.backfill(&[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_good_file_unaffected();
    assert!(run.alarm_ids().contains(&"huge".to_owned()));
    // The unused huge fields are not copied into the alarm.
    let line = run
        .alarms
        .iter()
        .find(|a| a["trace_id"] == "huge")
        .expect("alarm");
    assert!(
        line.to_string().len() < 4096,
        "{} bytes",
        line.to_string().len()
    );
}

#[test]
fn wrong_field_types_and_missing_fields_never_pass_as_allowed() {
    let b = Bucket::new();
    let json = r#"[
        {"trace_id":"types-1","trace_name":"login","source_ip":{"ip":"10.0.0.1"},"time":"yesterday","user":[1,2]},
        {"trace_id":"types-2","trace_name":"login","source_ip":12345,"time":{},"user":7},
        {"trace_id":"types-3","trace_name":["login"],"source_ip":"198.51.100.4"},
        {"trace_id":"missing-1","trace_name":"login"},
        {"trace_name":"logout","source_ip":"198.51.100.5"},
        {}
    ]"#;
    let key = trace_key(2, "types");
    b.put(&key, &gzip(json.as_bytes()));
    let run = b.backfill(&[]);
    run.assert_good_file_unaffected();
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    let by_id: BTreeMap<String, String> = run
        .alarms
        .iter()
        .map(|a| {
            (
                a["trace_id"].as_str().unwrap_or("(none)").to_owned(),
                a["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // A watched action whose IP cannot be read is never taken as allowed.
    for id in ["types-1", "types-2", "missing-1"] {
        let reason = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id}: no alarm: {by_id:?}\n{}", run.stderr()));
        assert!(
            reason == "invalid_ip" || reason == "missing_ip",
            "{id}: {reason}"
        );
    }
    // A login without a trace id still alarms.
    assert!(
        run.alarms.iter().any(|a| a["source_ip"] == "198.51.100.5"),
        "{by_id:?}"
    );
    // Whatever the run decided about the odd values, it said so by key or passed cleanly.
    match run.code() {
        Some(0) => {}
        Some(1) => assert!(run.failures().contains_key(&key), "{:?}", run.failures()),
        other => panic!("exit {other:?}: {}", run.stderr()),
    }
}

#[test]
fn an_empty_object_is_reported() {
    let b = Bucket::new();
    let key = trace_key(2, "empty");
    b.put(&key, b"");
    let run = b.backfill(&[]);
    run.assert_reported(&key, "empty");
}

#[test]
fn keys_with_spaces_and_unicode_are_read_locally_and_over_s3() {
    let names = [
        format!("{DAY}with space_CloudTrace_eu-de_2026-10-01T03-00-00Z_a b.json.gz"),
        format!("{DAY}ünïcødé ✓_CloudTrace_eu-de_2026-10-01T04-00-00Z_日本.json.gz"),
        format!("{DAY}plus+and%25_CloudTrace_eu-de_2026-10-01T05-00-00Z_x=y&z.json.gz"),
    ];
    let b = Bucket::new();
    for (i, k) in names.iter().enumerate() {
        b.put(
            k,
            &gzip(format!("[{}]", login(&format!("odd-{i}"), "198.51.100.6")).as_bytes()),
        );
    }
    let run = b.backfill(&[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let mut ids = run.alarm_ids();
    ids.sort();
    assert_eq!(ids, ["good-1", "odd-0", "odd-1", "odd-2"]);
    let objects: Vec<String> = run
        .alarms
        .iter()
        .map(|a| a["object"].as_str().unwrap_or_default().to_owned())
        .collect();
    for k in &names {
        assert!(objects.contains(k), "{k} not named as it is: {objects:?}");
    }

    // Over S3 (SigV4 signs the encoded key: a classic source of bugs), on the in-process
    // server and on the external one when configured (moto_server in CI).
    let server = S3Server::start_blocking(Default::default());
    server.create_bucket("odd");
    let store = rt().block_on(s3_store(&server, "odd", true));
    odd_keys_over_s3(
        &store,
        &server.endpoint(),
        "odd",
        (server.access_key(), server.secret_key()),
        &b,
        &names,
    );
    if let Some(ext) = rt().block_on(common::s3::external_bucket("hostile-keys")) {
        let store = rt().block_on(ext.store());
        odd_keys_over_s3(
            &store,
            &ext.endpoint,
            &ext.bucket,
            (&ext.access_key, &ext.secret_key),
            &b,
            &names,
        );
    }
}

/// Copies the good file and the odd keys to `store`, adds directory markers (zero-byte keys
/// ending in `/`, as consoles create; one named like a trace file), and runs backfill: the
/// odd keys are read, the markers are not files and not errors.
fn odd_keys_over_s3(
    store: &dyn ObjectStore,
    endpoint: &str,
    bucket: &str,
    (ak, sk): (&str, &str),
    b: &Bucket,
    names: &[String],
) {
    let marker_like_trace = format!("{DAY}m_CloudTrace_eu-de_2026-10-01T06-00-00Z_dir.json.gz/");
    let markers_listed = rt().block_on(async {
        let local = LocalStore::open(b.root()).expect("store");
        for k in names.iter().chain([&trace_key(1, "good")]) {
            let body = local.get(k, 1 << 20).await.expect("read").body;
            store
                .put(k, body, &BTreeMap::new(), PutMode::Overwrite)
                .await
                .expect("put");
        }
        for marker in [DAY, marker_like_trace.as_str()] {
            store
                .put(
                    marker,
                    Vec::new().into(),
                    &BTreeMap::new(),
                    PutMode::Overwrite,
                )
                .await
                .expect("put a directory marker");
        }
        let listed = store.list_all(DAY, None).await.expect("list");
        listed
            .objects
            .iter()
            .filter(|o| o.key.ends_with('/'))
            .count()
    });
    eprintln!("{endpoint}: {markers_listed} directory markers listed as objects");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ctsguard()
        .args(["backfill", "--from", "2026-10-01", "--to", "2026-10-02"])
        .args(["--allow", "10.0.0.0/8", "--path-style"])
        .arg(format!("--source=s3://{bucket}"))
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--alerts")
        .arg(dir.path().join("a.jsonl"))
        .arg("--summary-json")
        .arg(dir.path().join("s.json"))
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run");
    let run = Run::read(out, &dir.path().join("s.json"), &dir.path().join("a.jsonl"));
    assert_eq!(run.code(), Some(0), "{endpoint}: {}", run.stderr());
    let mut ids = run.alarm_ids();
    ids.sort();
    assert_eq!(ids, ["good-1", "odd-0", "odd-1", "odd-2"], "{endpoint}");
    assert_eq!(
        run.summary["files"], 4,
        "{endpoint}: markers are not trace files"
    );
    assert!(
        run.summary["unrelated_objects"].as_u64().unwrap_or(0) >= markers_listed as u64,
        "{endpoint}: listed markers are counted as unrelated: {}",
        run.summary
    );
}

#[test]
fn a_local_store_refuses_keys_that_climb_out_of_its_directory() {
    let b = Bucket::new();
    std::fs::write(b.dir.path().join("secret"), b"do not read").expect("write");
    let store = LocalStore::open(b.root()).expect("store");
    rt().block_on(async {
        for key in [
            "../secret",
            "CloudTraces/../../secret",
            "/etc/passwd",
            "a//b",
            "./x",
        ] {
            let got = store.get(key, 1 << 20).await;
            assert!(got.is_err(), "{key} was read");
            assert!(store.get_md5(key, 1 << 20).await.is_err(), "{key}");
            assert!(store.head(key).await.is_err(), "{key}");
        }
    });
}

/// A digest (signed or not: its contents are read either way) that names objects outside the
/// source's `CloudTraces/`, with `..`, or in another bucket: reported by key, never fetched.
#[test]
fn digests_naming_objects_outside_the_source_are_reported_and_not_fetched() {
    let server = S3Server::start_blocking(Default::default());
    server.create_bucket("audit");
    let outside = [
        "secrets/passwords.txt".to_owned(),
        format!("{DAY}../../../../../../secrets/passwords.txt"),
        "org/CloudTraces-not/x.json.gz".to_owned(),
    ];
    let digest_key = format!("{DIGESTS}d_CloudTrace-Digest_eu-de_2026-10-01T10-59-59Z.json.gz");
    let mut files: Vec<Value> = outside
        .iter()
        .map(|o| serde_json::json!({"bucket": "audit", "object": o, "log_hash_value": "00", "log_hash_algorithm": "MD5"}))
        .collect();
    files.push(serde_json::json!({"bucket": "someone-elses", "object": trace_key(9, "other"), "log_hash_value": "00"}));
    let digest = serde_json::json!({
        "digest_start_time": "2026-10-01T09-59-59Z",
        "digest_end_time": "2026-10-01T10-59-59Z",
        "digest_bucket": "audit",
        "digest_object": digest_key,
        "log_files": files,
    });
    rt().block_on(async {
        let s = s3_store(&server, "audit", true).await;
        let good = gzip(format!("[{}]", login("good-1", "203.0.113.9")).as_bytes());
        s.put(
            &trace_key(1, "good"),
            good.into(),
            &BTreeMap::new(),
            PutMode::Overwrite,
        )
        .await
        .expect("put");
        s.put(
            &digest_key,
            gzip(digest.to_string().as_bytes()).into(),
            &BTreeMap::new(),
            PutMode::Overwrite,
        )
        .await
        .expect("put digest");
        s.put(
            "secrets/passwords.txt",
            b"hunter2".to_vec().into(),
            &BTreeMap::new(),
            PutMode::Overwrite,
        )
        .await
        .expect("put secret");
    });
    server.clear_requests();
    let out = ctsguard()
        .args(["verify", "--from", "2026-10-01", "--to", "2026-10-02"])
        .args(["--source=s3://audit", "--path-style", "--endpoint"])
        .arg(server.endpoint())
        .arg("--public-key")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/TEST-ONLY-digest-public-key.pem"))
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
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let errors: BTreeMap<String, String> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for o in &outside {
        let reason = errors
            .get(o)
            .unwrap_or_else(|| panic!("{o} not reported: {errors:?}"));
        assert!(reason.contains("not fetched"), "{o}: {reason}");
    }
    assert!(
        errors
            .get(&trace_key(9, "other"))
            .is_some_and(|r| r.contains("someone-elses")),
        "{errors:?}"
    );
    let fetched: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method != "PUT" && !r.is_list_v2())
        .map(|r| r.path().to_owned())
        .filter(|p| p.contains("secrets") || p.contains("CloudTraces-not") || p.contains("other"))
        .collect();
    assert!(fetched.is_empty(), "fetched: {fetched:?}");
    // The good trace file is judged as usual (no digest lists it).
    let statuses: BTreeMap<String, String> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or_default().to_owned(),
                f["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses.get(&trace_key(1, "good")).map(String::as_str),
        Some("not_in_digest"),
        "{statuses:?}"
    );
}

#[test]
fn a_digest_listing_a_million_files_is_invalid_and_nothing_it_lists_is_fetched() {
    let b = Bucket::new();
    let digest_key = format!("{DIGESTS}d_CloudTrace-Digest_eu-de_2026-10-01T10-59-59Z.json.gz");
    let mut json = String::with_capacity(48 << 20);
    json.push_str(r#"{"digest_end_time":"2026-10-01T10-59-59Z","digest_object":""#);
    json.push_str(&digest_key);
    json.push_str(r#"","log_files":["#);
    for i in 0..1_000_000u32 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            r#"{{"object":"{DAY}f{i}_CloudTrace_eu-de_2026-10-01T10-00-00Z_x.json.gz","log_hash_value":"0"}}"#
        ));
    }
    json.push_str("]}");
    // Plain JSON under a .json.gz name: read by its magic bytes, not its name.
    b.put(&digest_key, json.as_bytes());
    let started = Instant::now();
    let out = ctsguard()
        .args([
            "verify",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--source",
        ])
        .arg(b.root())
        .arg("--public-key")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/TEST-ONLY-digest-public-key.pem"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let entry = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["key"] == digest_key.as_str())
        .expect("the digest is in the report")
        .clone();
    assert_eq!(entry["status"], "invalid_format", "{entry}");
    assert!(
        entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1000000 trace files")),
        "{entry}"
    );
    // None of the million names was looked up (that would take far longer than this).
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_public_key_of_the_wrong_size_is_refused() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Bucket::new();
    for bits in [512usize, 1024] {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).expect("key");
        let pem = rsa::RsaPublicKey::from(&key)
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let path = dir.path().join(format!("k{bits}.pem"));
        std::fs::write(&path, pem).expect("write");
        let out = ctsguard()
            .args([
                "verify",
                "--from",
                "2026-10-01",
                "--to",
                "2026-10-02",
                "--source",
            ])
            .arg(b.root())
            .arg("--public-key")
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{bits} bits");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("an RSA key of {bits} bits")) && err.contains("2048"),
            "{err}"
        );
    }
}
