//! Where alerts go. For now JSON lines to standard output or a file; every alert is one line,
//! so the stream can be piped into `jq`, a log shipper or a SIEM.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::alert::Alert;

/// Destination of the JSON-lines alert stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertDest {
    Stdout,
    File(PathBuf),
}

impl AlertDest {
    /// `-` is standard output, anything else a file path.
    pub fn parse(s: &str) -> Self {
        match s {
            "-" | "" => AlertDest::Stdout,
            p => AlertDest::File(PathBuf::from(p)),
        }
    }
}

/// Writes one JSON object per line, flushed after each file's alerts so a crash loses no
/// alert of a file reported as done.
pub struct JsonLines {
    out: Box<dyn Write + Send>,
    written: u64,
}

impl JsonLines {
    pub fn open(dest: &AlertDest) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match dest {
            AlertDest::Stdout => Box::new(BufWriter::new(io::stdout())),
            // Appended to, never truncated: alarms of earlier runs are not for us to delete.
            AlertDest::File(p) => Box::new(BufWriter::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
        };
        Ok(JsonLines { out, written: 0 })
    }

    pub fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for a in alerts {
            serde_json::to_writer(&mut self.out, a)?;
            self.out.write_all(b"\n")?;
            self.written += 1;
        }
        if !alerts.is_empty() {
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}
