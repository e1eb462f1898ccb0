//! The human-facing sink interface: a [`Notification`] (one message covering one or more
//! alarms), the [`Sink`] trait (one delivery attempt), the [`SendError`] classification that
//! drives retries, the [`Secret`] wrapper that keeps credentials out of logs and errors, and
//! helpers shared by the HTTP sinks (status classification, `Retry-After`, text limits).

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::alert::Alert;

/// What the alarms of one notification have in common (see [`crate::notify::message::group`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct GroupKey {
    pub rule: String,
    pub reason: String,
    pub action: String,
    pub source_ip: Option<String>,
    pub user: Option<String>,
    /// The trace file, only when the alarms name neither a user nor an IP (e.g. integrity
    /// alarms about one file), so unrelated files do not merge into one message.
    pub object: Option<String>,
}

/// One human notification covering one or more alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub message: String,
    /// Every alarm this notification covers: once it is delivered, all of them are.
    pub alarms: Vec<Alert>,
    /// The group's common fields; `None` for the overflow notification that summarises
    /// several groups beyond the per-run cap.
    pub group: Option<GroupKey>,
    /// Number of alarms covered (`alarms.len()`).
    pub count: usize,
    /// Earliest and latest `alert.time` among the alarms (RFC 3339), when any is known.
    pub first: Option<String>,
    pub last: Option<String>,
}

/// The outcome of one failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt: connection errors, timeouts, 5xx, 429, SMTP 4xx.
    #[error("{reason}")]
    Retryable {
        reason: String,
        /// What the server asked for (`Retry-After`), if anything.
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way: other 4xx, SMTP 5xx, a malformed request.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl SendError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        SendError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            SendError::Retryable { reason, .. } | SendError::Permanent { reason } => reason,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    /// Classifies a non-success HTTP answer: 5xx, 408 and 429 retryable (429 and 503 with the
    /// server's `Retry-After`), other statuses permanent. `detail` is what the body said.
    pub fn from_http(status: u16, retry_after: Option<&str>, detail: &str) -> Self {
        let reason = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        match status {
            429 | 503 => SendError::Retryable {
                reason,
                retry_after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
            },
            // 408: the server gave up waiting for the request, a transient condition.
            408 | 500..=599 => SendError::retryable(reason),
            _ => SendError::permanent(reason),
        }
    }

    /// Classifies a transport error of reqwest. The URL is left out on purpose: webhook URLs
    /// often embed tokens (Slack, DingTalk, ...).
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        let permanent = err.is_builder() || err.is_redirect();
        let reason = error_chain(&err.without_url());
        if permanent {
            SendError::permanent(reason)
        } else {
            SendError::retryable(reason)
        }
    }
}

/// An error and its sources, `: `-joined, for a reason that says what really happened
/// (e.g. "error sending request: client error (Connect): tcp connect error: Connection refused").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `Retry-After` as delay-seconds or an HTTP-date (relative to `now`; a date in the past is
/// zero). `None` when unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Why a sink cannot be set up. Names the setting, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SinkConfigError {
    pub setting: String,
    pub reason: String,
}

impl SinkConfigError {
    pub fn new(setting: &str, reason: String) -> Self {
        Self {
            setting: setting.into(),
            reason,
        }
    }
}

/// The HTTP client of one sink: one per sink, reused for every attempt.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, SinkConfigError> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("ctsguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            SinkConfigError::new(
                "timeout",
                format!("cannot build the HTTP client: {}", error_chain(&e)),
            )
        })
}

/// A notification destination. `send` makes exactly one attempt; retries, timeouts and
/// budgets are [`crate::notify::retry::deliver`]'s business.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Stable identifier, e.g. `smn:oncall`; used as a checkpoint key.
    fn name(&self) -> &str;
    /// Human description for `check` (kind, endpoint, topic...). Never secrets.
    fn describe(&self) -> String;
    /// One delivery attempt.
    async fn send(&self, n: &Notification) -> Result<(), SendError>;
}

/// A credential. Debug and Display print `***`, so a stray `{:?}` of a config cannot leak it;
/// [`Secret::expose`] is the one deliberate way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Read as a plain string, so config structs can hold it and still print `***`.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Cuts `s` to at most `max_bytes` bytes on a char boundary and says so: the kept text is
/// followed by `marker` and ` [truncated: N more bytes]`, all within `max_bytes`. A text that
/// fits is returned unchanged.
pub fn truncate_utf8(s: &str, max_bytes: usize, marker: &str) -> String {
    if s.len() <= max_bytes {
        return s.to_owned();
    }
    // The note's length depends on the number it carries, which depends on where we cut:
    // size it for the largest possible number (the whole text dropped).
    let note_len =
        |dropped: usize| marker.len() + format!(" [truncated: {dropped} more bytes]").len();
    let budget = max_bytes.saturating_sub(note_len(s.len()));
    let mut cut = budget.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let note = format!("{marker} [truncated: {} more bytes]", s.len() - cut);
    if note.len() > max_bytes {
        // Not even the note fits: keep what we can of it, still on a char boundary.
        let mut end = max_bytes;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        return note[..end].to_owned();
    }
    format!("{}{note}", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_says_so() {
        let s = "é".repeat(100); // 200 bytes
        let t = truncate_utf8(&s, 50, "…");
        assert!(t.len() <= 50, "{}", t.len());
        assert!(t.ends_with("more bytes]"), "{t}");
        assert!(t.starts_with('é'));
        let kept = t.split('…').next().unwrap().len();
        assert!(
            t.contains(&format!("[truncated: {} more bytes]", 200 - kept)),
            "{t}"
        );
        assert_eq!(truncate_utf8("short", 50, "…"), "short");
        assert!(truncate_utf8(&s, 5, "…").len() <= 5);
        assert_eq!(truncate_utf8(&s, 0, "…"), "");
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn http_classification() {
        assert!(SendError::from_http(500, None, "").is_retryable());
        assert!(SendError::from_http(502, None, "").is_retryable());
        assert!(SendError::from_http(429, Some("2"), "").is_retryable());
        assert!(matches!(
            SendError::from_http(503, Some("2"), "busy"),
            SendError::Retryable { retry_after: Some(d), ref reason } if d == Duration::from_secs(2) && reason == "HTTP 503: busy"
        ));
        assert!(SendError::from_http(408, None, "").is_retryable());
        assert!(!SendError::from_http(400, None, "").is_retryable());
        assert!(!SendError::from_http(403, None, "").is_retryable());
        assert!(!SendError::from_http(404, None, "").is_retryable());
    }
}
