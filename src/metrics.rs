//! Run metrics for batch jobs, in the Prometheus text format: pushed to a Pushgateway (the
//! convention for CronJobs, which are gone before anything could scrape them) and/or written
//! for a node exporter's textfile collector.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::pipeline::Summary;

/// The run as metrics see it.
pub struct RunMetrics<'a> {
    pub summary: &'a Summary,
    pub command: &'a str,
    /// `I/N` of a sharded scan.
    pub shard: Option<(u32, u32)>,
    pub exit_code: u8,
    pub finished_at: DateTime<Utc>,
}

const LAST_SUCCESS: &str = "ctsguard_last_success_timestamp_seconds";

impl RunMetrics<'_> {
    /// The Prometheus text exposition. `last_success` is the previous success time to carry
    /// over when this run failed (a textfile has no memory of its own).
    pub fn render(&self, last_success: Option<f64>) -> String {
        let s = self.summary;
        let mut labels = format!("command=\"{}\"", self.command);
        if let Some((i, n)) = self.shard {
            let _ = write!(labels, ",shard=\"{i}\",shards=\"{n}\"");
        }
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {value}"
            );
        };
        gauge(
            "ctsguard_files",
            "Trace files processed by the last run.",
            s.files as f64,
        );
        gauge(
            "ctsguard_files_failed",
            "Trace files of the last run that could not be read or processed.",
            s.files_failed as f64,
        );
        gauge(
            "ctsguard_files_skipped",
            "Trace files listed but done before or another shard's.",
            s.files_skipped as f64,
        );
        gauge(
            "ctsguard_bytes",
            "Bytes downloaded by the last run (as stored).",
            s.bytes as f64,
        );
        gauge(
            "ctsguard_decompressed_bytes",
            "Bytes of trace JSON read by the last run.",
            s.decompressed_bytes as f64,
        );
        gauge(
            "ctsguard_traces",
            "Traces parsed by the last run (not those of screened files).",
            s.traces as f64,
        );
        gauge(
            "ctsguard_files_screened",
            "Trace files of the last run not parsed: they hold no watched action (--parse candidates).",
            s.files_screened as f64,
        );
        gauge(
            "ctsguard_alarms",
            "Alarms raised by the last run.",
            s.alarms as f64,
        );
        gauge(
            "ctsguard_integrity_failures",
            "Integrity failures found by the last run.",
            s.integrity_failures as f64,
        );
        gauge(
            "ctsguard_errors",
            "Objects or listings the last run could not handle.",
            s.errors as f64,
        );
        gauge(
            "ctsguard_duration_seconds",
            "Duration of the last run.",
            s.duration_seconds,
        );
        gauge(
            "ctsguard_exit_code",
            "Exit code of the last run.",
            f64::from(self.exit_code),
        );
        let finished = self.finished_at.timestamp_millis() as f64 / 1000.0;
        gauge(
            "ctsguard_last_run_timestamp_seconds",
            "When the last run finished.",
            finished,
        );
        let success = if self.exit_code == 0 {
            Some(finished)
        } else {
            last_success
        };
        if let Some(t) = success {
            gauge(LAST_SUCCESS, "When the last run that exited 0 finished.", t);
        }
        out
    }

    /// The Pushgateway URL of this run's group: `job="ctsguard"`, the command and the shard.
    fn push_url(&self, base: &str) -> String {
        let mut url = format!(
            "{}/metrics/job/ctsguard/command/{}",
            base.trim_end_matches('/'),
            self.command
        );
        if let Some((i, _)) = self.shard {
            let _ = write!(url, "/shard/{i}");
        }
        url
    }

    /// POSTs the metrics: a POST replaces only the metrics it names, so a failed run (which
    /// omits the last-success time) leaves the previous success time in place.
    pub async fn push(&self, base: &str) -> Result<(), String> {
        let url = self.push_url(base);
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .post(&url)
            .header("content-type", "text/plain; version=0.0.4")
            .body(self.render(None))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        Ok(())
    }

    /// Writes the metrics file atomically (the collector must never read half a file),
    /// keeping the last success time of the previous file when this run failed.
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        let previous = std::fs::read_to_string(path).ok().and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(LAST_SUCCESS) && !l.starts_with('#'))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        });
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, self.render(previous).as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn metrics(summary: &Summary, exit_code: u8) -> RunMetrics<'_> {
        RunMetrics {
            summary,
            command: "scan",
            shard: Some((1, 3)),
            exit_code,
            finished_at: Utc.with_ymd_and_hms(2026, 10, 2, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn exposition_and_group() {
        let s = Summary {
            files: 7,
            alarms: 2,
            ..Summary::default()
        };
        let text = metrics(&s, 0).render(None);
        assert!(
            text.contains("ctsguard_files{command=\"scan\",shard=\"1\",shards=\"3\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("ctsguard_alarms{command=\"scan\",shard=\"1\",shards=\"3\"} 2\n"));
        assert!(text.contains("ctsguard_last_success_timestamp_seconds{command=\"scan\",shard=\"1\",shards=\"3\"} 1790899200\n"), "{text}");
        assert_eq!(
            metrics(&s, 0).push_url("http://pgw:9091/"),
            "http://pgw:9091/metrics/job/ctsguard/command/scan/shard/1"
        );
    }

    #[test]
    fn a_failed_run_keeps_the_previous_success_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctsguard.prom");
        let s = Summary::default();
        metrics(&s, 0).write_file(&path).unwrap();
        let mut failed = metrics(&s, 1);
        failed.finished_at = Utc.with_ymd_and_hms(2026, 10, 3, 0, 0, 0).unwrap();
        failed.write_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ctsguard_exit_code{command=\"scan\",shard=\"1\",shards=\"3\"} 1\n"));
        assert!(
            text.contains("} 1790899200\n"),
            "previous success kept: {text}"
        );
    }
}
