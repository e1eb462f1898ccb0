//! Where alarms go. Machines get the JSON-lines stream ([`JsonLines`]: standard output or
//! files, one alarm per line as each file is processed, for `jq`, log shippers, SIEMs);
//! people get grouped notifications at the end of a run through the notification sinks
//! (SMN, webhooks, email: [`notifier`], configured by [`spec`]).

pub mod email;
pub mod message;
pub mod notifier;
pub mod retry;
pub mod signer;
pub mod sink;
pub mod smn;
pub mod spec;
pub mod webhook;

use std::fs::OpenOptions;
use std::io::{self, Write};
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

/// Writes one JSON object per line, each file's alerts at once and flushed; a file is synced
/// before the checkpoint can record them as delivered, and at the end of the run.
pub struct JsonLines {
    out: Box<dyn Write + Send>,
    /// The file, to force alerts to disk at the end of the run.
    file: Option<std::fs::File>,
    /// The file's path and length: the checkpoint records how far the file was written, so
    /// a run after a crash can tell which alarms reached it after the last commit.
    path: Option<PathBuf>,
    len: u64,
    written: u64,
}

impl JsonLines {
    pub fn open(dest: &AlertDest) -> io::Result<Self> {
        match dest {
            AlertDest::Stdout => Ok(JsonLines {
                out: Box::new(io::stdout()),
                file: None,
                path: None,
                len: 0,
                written: 0,
            }),
            // Appended to, never truncated: alarms of earlier runs are not for us to delete.
            AlertDest::File(p) => {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(p)?;
                // A run killed in the middle of a line left half a line: end it, so the
                // next alert starts on a line of its own.
                let mut len = f.metadata()?.len();
                if len > 0 {
                    use std::io::{Read, Seek, SeekFrom};
                    let mut last = [0u8; 1];
                    f.seek(SeekFrom::Start(len - 1))?;
                    f.read_exact(&mut last)?;
                    if last[0] != b'\n' {
                        f.write_all(b"\n")?;
                        len += 1;
                    }
                }
                Ok(JsonLines {
                    out: Box::new(f.try_clone()?),
                    file: Some(f),
                    path: Some(p.clone()),
                    len,
                    written: 0,
                })
            }
        }
    }

    /// Writes one file's alerts in a single write. They reach the disk at the end of the run,
    /// or before `scan` commits a checkpoint that counts them ([`sync_alarm_file`]): a killed
    /// process loses nothing written, and syncing once per file made every file with an alarm
    /// wait for the disk.
    pub fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(alerts.len() * 768);
        for a in alerts {
            serde_json::to_writer(&mut buf, a)?;
            buf.push(b'\n');
        }
        self.out.write_all(&buf)?;
        self.out.flush()?;
        self.len += buf.len() as u64;
        self.written += alerts.len() as u64;
        Ok(())
    }

    /// Flushes the stream and forces a file's alarms to disk.
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        match &self.file {
            Some(f) => sync_file(f),
            None => Ok(()),
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// For a file: its path and how far it is written (and synced).
    pub fn position(&self) -> Option<(String, u64)> {
        self.path
            .as_ref()
            .map(|p| (p.display().to_string(), self.len))
    }
}

/// Forces what was written to the alarm file at `path` to disk (before a checkpoint counts it).
/// A file that is gone (rotated away since an earlier run recorded it) has nothing to sync.
pub fn sync_alarm_file(path: &std::path::Path) -> io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => sync_file(&f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A device or a pipe (`--alerts /dev/null`, a FIFO) has nothing to sync, and refuses to.
fn sync_file(f: &std::fs::File) -> io::Result<()> {
    if f.metadata()?.is_file() {
        f.sync_data()
    } else {
        Ok(())
    }
}

/// Every alarm output of a run: the JSON-lines streams, written as each file is processed,
/// and the human sinks, sent at the end of the run.
pub struct Outputs {
    pub lines: Vec<JsonLines>,
    pub notifier: notifier::Notifier,
}

impl Outputs {
    /// Opens every JSON-lines destination; an error names the one that failed.
    pub fn open(
        dests: &[AlertDest],
        sinks: Vec<std::sync::Arc<notifier::HumanSink>>,
    ) -> Result<Self, String> {
        let lines = dests
            .iter()
            .map(|d| JsonLines::open(d).map_err(|e| format!("alerts {d:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Outputs {
            lines,
            notifier: notifier::Notifier::new(sinks),
        })
    }

    /// Every alarm file and how far it is written.
    pub fn positions(&self) -> Vec<(String, u64)> {
        self.lines.iter().filter_map(JsonLines::position).collect()
    }

    /// Writes one file's alarms to every JSON-lines stream.
    pub fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        self.lines.iter_mut().try_for_each(|l| l.emit(alerts))
    }

    pub fn finish(&mut self) -> io::Result<()> {
        self.lines.iter_mut().try_for_each(JsonLines::finish)
    }
}

/// The alarm ids a file holds beyond `offset`: what an interrupted run wrote after its last
/// commit (a half-written last line is not an alarm). `Ok(None)` when the file is shorter
/// than `offset` (rotated or truncated since).
pub fn ids_written_after(path: &std::path::Path, offset: u64) -> io::Result<Option<Vec<String>>> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() < offset {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut ids = Vec::new();
    for line in io::BufReader::new(f).split(b'\n') {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line?) {
            ids.extend(Alert::id_of_line(&v));
        }
    }
    Ok(Some(ids))
}
