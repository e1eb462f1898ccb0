//! What a CronJob's operators see: metrics pushed to a real HTTP receiver on loopback (a
//! stand-in Pushgateway), the textfile, and JSON logs with stable fields.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use serde_json::Value;

use common::cli::ctsguard;

const ALLOW: &str = "10.0.0.0/8,192.168.1.1,2001:db8::/32";

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bucket")
}

/// Accepts one HTTP request, answers `status`, and returns the request line and body.
fn receive_one(listener: TcpListener, status: u16) -> std::thread::JoinHandle<(String, String)> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request_line = String::new();
        reader.read_line(&mut request_line).expect("request line");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .expect("answer");
        (
            request_line.trim().to_owned(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
}

#[test]
fn metrics_are_pushed_to_the_gateway_and_written_for_the_textfile_collector() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let receiver = receive_one(listener, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = dir.path().join("ctsguard.prom");
    let out = ctsguard()
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
        .arg(fixtures())
        .arg("--public-key")
        .arg(fixtures().join("../TEST-ONLY-digest-public-key.pem"))
        .arg(format!("--metrics-push=http://127.0.0.1:{port}"))
        .arg("--metrics-file")
        .arg(&prom)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "the fixtures hold bad objects");
    let (line, body) = receiver.join().expect("receiver");
    assert_eq!(line, "POST /metrics/job/ctsguard/command/backfill HTTP/1.1");
    // 31 login alarms and 2 integrity alarms (fixtures/README.md).
    assert!(
        body.contains("ctsguard_alarms{command=\"backfill\"} 33\n"),
        "{body}"
    );
    assert!(
        body.contains("ctsguard_integrity_failures{command=\"backfill\"} 2\n"),
        "{body}"
    );
    assert!(
        body.contains("ctsguard_exit_code{command=\"backfill\"} 1\n"),
        "{body}"
    );
    assert!(
        !body.contains("ctsguard_last_success_timestamp_seconds"),
        "a failed run is no success"
    );
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(
        text.contains("ctsguard_files{command=\"backfill\"} 60\n"),
        "{text}"
    );
}

#[test]
fn a_gateway_that_refuses_the_push_makes_a_clean_run_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let receiver = receive_one(listener, 500);
    let out = ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--allow",
            ALLOW,
        ])
        .args(["--regions", "eu-nl"])
        .arg("--source")
        .arg(fixtures())
        .arg("--public-key")
        .arg(fixtures().join("../TEST-ONLY-digest-public-key.pem"))
        .arg(format!("--metrics-push=http://127.0.0.1:{port}"))
        .output()
        .expect("run");
    let _ = receiver.join();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 500"));
}

#[test]
fn logs_off_a_terminal_are_json_lines_with_key_and_reason() {
    let out = ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-09-30",
            "--to",
            "2026-10-02",
            "--allow",
            ALLOW,
        ])
        .env("CTSGUARD_LOG", "info")
        .arg("--source")
        .arg(fixtures())
        .output()
        .expect("run");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let errors: Vec<&Value> = events.iter().filter(|e| e["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 3, "the three bad fixture objects");
    for e in errors {
        assert!(
            e["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("CloudTraces/")),
            "{e}"
        );
        assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
        assert!(
            e["timestamp"].is_string() && e["message"].is_string(),
            "{e}"
        );
    }
    let text = ctsguard()
        .args([
            "backfill",
            "--from",
            "2026-09-30",
            "--to",
            "2026-10-02",
            "--log-format",
            "text",
        ])
        .arg("--source")
        .arg(fixtures())
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&text.stderr)
        .trim_start()
        .starts_with('{'));
}
