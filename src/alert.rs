//! The alert record (one JSON line each) and the message template.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cts::layout::CtsFile;
use crate::cts::trace::Trace;
use crate::detect::{Finding, Reason, RULE_INTEGRITY, RULE_UNLISTED_IP};

/// One alarm. Field names are a stable interface: downstream tools filter on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub rule: &'static str,
    pub reason: Reason,
    pub action: String,
    /// The source IP as the trace gives it (`null` when absent).
    pub source_ip: Option<String>,
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub domain: Option<String>,
    pub domain_id: Option<String>,
    pub trace_id: Option<String>,
    /// When the operation happened, RFC 3339 UTC; `null` when the trace's time is unreadable.
    pub time: Option<String>,
    /// The trace's time as written, when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_raw: Option<String>,
    pub trace_rating: Option<String>,
    pub region: String,
    pub tracker: String,
    pub service: Option<String>,
    /// Key of the trace file (relative to the bucket or directory).
    pub object: String,
    /// Position of the trace in its file (0-based), for ordering and reference.
    pub index: usize,
    /// What an integrity check found (integrity alarms only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub message: String,
}

impl Alert {
    pub fn new(
        finding: &Finding,
        trace: &Trace<'_>,
        file: &CtsFile,
        key: &str,
        index: usize,
        template: &Template,
    ) -> Self {
        let owned = |c: &Option<std::borrow::Cow<'_, str>>| c.as_deref().map(str::to_owned);
        let user = trace.user.as_ref();
        let time = trace.time.as_ref().and_then(|t| t.to_utc());
        let mut alert = Alert {
            rule: RULE_UNLISTED_IP,
            reason: finding.reason,
            action: trace.trace_name.as_deref().unwrap_or_default().to_owned(),
            source_ip: owned(&trace.source_ip),
            user: user.and_then(|u| owned(&u.name)),
            user_id: user.and_then(|u| owned(&u.id)),
            domain: user.and_then(|u| owned(&u.domain_name)),
            domain_id: user
                .and_then(|u| owned(&u.domain_id))
                .or_else(|| owned(&trace.domain_id)),
            trace_id: owned(&trace.trace_id),
            time: time.map(rfc3339),
            time_raw: match (&trace.time, time) {
                (Some(crate::cts::trace::TraceTime::Text(t)), None) => Some(t.to_string()),
                _ => None,
            },
            trace_rating: owned(&trace.trace_rating),
            region: file.region.clone(),
            tracker: file.tracker.clone(),
            service: owned(&trace.service_type).or_else(|| file.service.clone()),
            object: key.to_owned(),
            index,
            detail: None,
            message: String::new(),
        };
        alert.message = template.render(&alert);
        alert
    }

    /// An integrity alarm about the object `key` (a trace or digest file). `action` is the
    /// reason, so that alarms group by what went wrong; `time` is the time in the file's
    /// name. The message is fixed: the login templates do not fit it.
    pub fn integrity(
        key: &str,
        file: Option<&CtsFile>,
        reason: Reason,
        detail: String,
        time: Option<DateTime<Utc>>,
    ) -> Self {
        let message = format!(
            "integrity: {key}: {} ({detail})",
            reason.as_str().replace('_', " ")
        );
        Alert {
            rule: RULE_INTEGRITY,
            reason,
            action: reason.as_str().to_owned(),
            source_ip: None,
            user: None,
            user_id: None,
            domain: None,
            domain_id: None,
            trace_id: None,
            time: time.map(rfc3339),
            time_raw: None,
            trace_rating: None,
            region: file.map(|f| f.region.clone()).unwrap_or_default(),
            tracker: file.map(|f| f.tracker.clone()).unwrap_or_default(),
            service: file.and_then(|f| f.service.clone()),
            object: key.to_owned(),
            index: 0,
            detail: Some(detail),
            message,
        }
    }
}

impl Alert {
    /// The identity of an alarm for de-duplication: the trace id per rule (the file and
    /// position when a trace has no id).
    pub fn id(&self) -> String {
        alarm_id(
            self.rule,
            self.reason.as_str(),
            self.trace_id.as_deref(),
            &self.object,
            self.index,
        )
    }

    /// The id of an alarm as written in a JSON line (`None` when the line is not an alarm).
    pub fn id_of_line(line: &serde_json::Value) -> Option<String> {
        let rule = line.get("rule")?.as_str()?;
        let reason = line.get("reason")?.as_str()?;
        let object = line.get("object")?.as_str()?;
        let index = line.get("index")?.as_u64()?;
        let trace_id = line.get("trace_id").and_then(|t| t.as_str());
        Some(alarm_id(
            rule,
            reason,
            trace_id,
            object,
            usize::try_from(index).ok()?,
        ))
    }
}

fn alarm_id(
    rule: &str,
    reason: &str,
    trace_id: Option<&str>,
    object: &str,
    index: usize,
) -> String {
    match trace_id {
        Some(t) if !t.is_empty() => format!("{rule}:{t}"),
        // One alarm per object and finding: a file mismatching now and missing later is two
        // alarms.
        _ if rule == RULE_INTEGRITY => format!("{rule}:{reason}:{object}"),
        _ => format!("{rule}:{object}#{index}"),
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The message of the original FunctionGraph sample, for mail filters that expect it.
pub const LEGACY_TEMPLATE: &str = "Illegal operation[  IP:{source_ip},  Action:{action}]";
/// Who, from where, what, when, where, which trace.
pub const DEFAULT_TEMPLATE: &str =
    "{action} by user {user} (domain {domain}) {why} at {time} in {region}/{service}, trace {trace_id}";

const FIELDS: &[&str] = &[
    "action",
    "source_ip",
    "user",
    "user_id",
    "domain",
    "domain_id",
    "trace_id",
    "time",
    "region",
    "tracker",
    "service",
    "object",
    "reason",
    "rule",
    "why",
    "trace_rating",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message template {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(&'static str),
}

/// A message template with `{field}` placeholders (`{{` and `}}` for literal braces),
/// checked once at start so a typo fails the configuration, not the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// `default`, `legacy`, or a template text.
    pub fn parse(spec: &str) -> Result<Self, TemplateError> {
        let text = match spec {
            "default" => DEFAULT_TEMPLATE,
            "legacy" => LEGACY_TEMPLATE,
            other => other,
        };
        let pieces = parse_pieces(text, |name| {
            FIELDS.iter().copied().find(|f| *f == name).ok_or_else(|| {
                format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    FIELDS.join(", ")
                )
            })
        })
        .map_err(|reason| TemplateError {
            template: spec.to_owned(),
            reason,
        })?;
        let parts = pieces
            .into_iter()
            .map(|p| match p {
                Piece::Lit(s) => Part::Lit(s),
                Piece::Field(f) => Part::Field(f),
            })
            .collect();
        Ok(Template { parts })
    }

    pub fn render(&self, a: &Alert) -> String {
        let mut out = String::with_capacity(128);
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => out.push_str(&field(a, f)),
            }
        }
        out
    }
}

/// A piece of a template: literal text, or a placeholder as `resolve` read its name.
pub enum Piece<P> {
    Lit(String),
    Field(P),
}

/// Splits a template into literal text and `{name}` placeholders (`{{` and `}}` are literal
/// braces); `resolve` checks each name, so a typo fails at start, not in a message.
pub fn parse_pieces<P>(
    text: &str,
    mut resolve: impl FnMut(&str) -> Result<P, String>,
) -> Result<Vec<Piece<P>>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(format!("placeholder {{{name} is not closed with '}}'"));
                }
                let field = resolve(&name)?;
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Field(field));
            }
            '}' => return Err("unmatched '}' (write '}}' for a literal brace)".into()),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn field(a: &Alert, name: &str) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match name {
        "action" => a.action.clone(),
        "source_ip" => opt(&a.source_ip),
        "user" => a.user.clone().unwrap_or_else(|| "?".into()),
        "user_id" => opt(&a.user_id),
        "domain" => a
            .domain
            .clone()
            .or_else(|| a.domain_id.clone())
            .unwrap_or_else(|| "?".into()),
        "domain_id" => opt(&a.domain_id),
        "trace_id" => opt(&a.trace_id),
        "time" => a
            .time
            .clone()
            .or_else(|| a.time_raw.clone())
            .unwrap_or_else(|| "?".into()),
        "region" => a.region.clone(),
        "tracker" => a.tracker.clone(),
        "service" => opt(&a.service),
        "object" => a.object.clone(),
        "reason" => a.reason.as_str().to_owned(),
        "rule" => a.rule.to_owned(),
        "trace_rating" => opt(&a.trace_rating),
        "why" => match a.reason {
            Reason::UnlistedIp => format!("from unlisted IP {}", opt(&a.source_ip)),
            Reason::MissingIp => "with no source IP".to_owned(),
            Reason::InvalidIp => format!("from unreadable source IP {:?}", opt(&a.source_ip)),
            other => format!(
                "failed the integrity check ({}): {}",
                other.as_str(),
                opt(&a.detail)
            ),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            rule: RULE_UNLISTED_IP,
            reason: Reason::UnlistedIp,
            action: "login".into(),
            source_ip: Some("203.0.113.9".into()),
            user: Some("alice".into()),
            user_id: None,
            domain: Some("acme".into()),
            domain_id: None,
            trace_id: Some("t-1".into()),
            time: Some("2026-09-30T10:00:00.000Z".into()),
            time_raw: None,
            trace_rating: None,
            region: "eu-de".into(),
            tracker: "system".into(),
            service: Some("IAM".into()),
            object: "k".into(),
            index: 0,
            detail: None,
            message: String::new(),
        }
    }

    #[test]
    fn ids_are_the_same_from_the_alarm_and_from_its_json_line() {
        let mut a = alert();
        for trace_id in [Some("t-1".to_owned()), None] {
            a.trace_id = trace_id;
            let line = serde_json::to_value(&a).unwrap();
            assert_eq!(Alert::id_of_line(&line), Some(a.id()));
        }
        assert_eq!(Alert::id_of_line(&serde_json::json!({"x": 1})), None);
    }

    #[test]
    fn legacy_text_matches_the_sample_exactly() {
        let t = Template::parse("legacy").unwrap();
        assert_eq!(
            t.render(&alert()),
            "Illegal operation[  IP:203.0.113.9,  Action:login]"
        );
    }

    #[test]
    fn default_text_says_who_what_where_when() {
        let t = Template::parse("default").unwrap();
        assert_eq!(
            t.render(&alert()),
            "login by user alice (domain acme) from unlisted IP 203.0.113.9 at 2026-09-30T10:00:00.000Z in eu-de/IAM, trace t-1"
        );
    }

    #[test]
    fn braces_and_unknown_placeholders() {
        assert_eq!(
            Template::parse("{{x}} {user}").unwrap().render(&alert()),
            "{x} alice"
        );
        let e = Template::parse("{usr}").unwrap_err();
        assert!(e.reason.contains("{usr}"), "{e}");
        assert!(Template::parse("a } b").is_err());
        let open = Template::parse("IP:{source_ip").unwrap_err();
        assert!(open.reason.contains("not closed"), "{open}");
    }
}
