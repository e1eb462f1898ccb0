//! From alarms to human notifications: grouping, the per-run cap, and the subject and message
//! texts (`default`, `legacy` or a template).
//!
//! Alarms of one run are grouped by [`GroupKey`] (rule, reason, action, source IP, user; plus
//! the trace file when an alarm names neither user nor IP, as integrity alarms do), one
//! notification per group, in order of first occurrence. When there are more groups than the
//! cap, the first `cap - 1` are sent as they are and one overflow notification summarises the
//! rest *and carries all their alarms*, so nothing is silently dropped.
//!
//! Templates are those of [`crate::alert::Template`] plus group placeholders: `{count}`,
//! `{first}`, `{last}` (time range), `{time_range}` (`first .. last`, or the one time) and
//! `{trace_ids}` (first few, then "and N more"). Alert placeholders are rendered from the
//! group's first alarm.

use std::collections::HashMap;

use crate::alert::{parse_pieces, Alert, Piece, Template, TemplateError};
use crate::detect::RULE_INTEGRITY;

use super::sink::{GroupKey, Notification};

/// Subject of the original FunctionGraph sample (SPEC §3).
pub const LEGACY_SUBJECT: &str = "CTSTrigger";
/// Trace ids listed in a message before "and N more".
pub const TRACE_IDS_SHOWN: usize = 5;
/// Group lines listed in an overflow message before "and N more groups".
pub const OVERFLOW_LINES: usize = 50;
/// Default per-run cap of notifications per sink.
pub const DEFAULT_CAP: usize = 20;

const GROUP_FIELDS: &[&str] = &["count", "first", "last", "time_range", "trace_ids"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Group(&'static str),
    Alert(Template),
}

/// A template over a group: alert placeholders plus [`GROUP_FIELDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTemplate {
    parts: Vec<Part>,
}

impl GroupTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let pieces = parse_pieces(text, |name| {
            match GROUP_FIELDS.iter().find(|f| **f == name) {
                Some(f) => Ok(Part::Group(f)),
                // The alert's own parser knows (and lists) its fields.
                None => Template::parse(&format!("{{{name}}}"))
                    .map(Part::Alert)
                    .map_err(|e| {
                        format!(
                            "{}; group placeholders: {}",
                            e.reason,
                            GROUP_FIELDS.join(", ")
                        )
                    }),
            }
        })
        .map_err(|reason| TemplateError {
            template: text.to_owned(),
            reason,
        })?;
        let parts = pieces
            .into_iter()
            .map(|p| match p {
                Piece::Lit(s) => Part::Lit(s),
                Piece::Field(f) => f,
            })
            .collect();
        Ok(GroupTemplate { parts })
    }

    fn render(&self, g: &GroupView<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Alert(t) => out.push_str(&t.render(g.head)),
                Part::Group(f) => out.push_str(&g.field(f)),
            }
        }
        out
    }
}

/// One of the texts of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextStyle {
    /// Informative built-in text: who, from where, what, when, where, which traces, why.
    Default,
    /// The original function's text (`CTSTrigger`, `Illegal operation[  IP:..,  Action:..]`).
    Legacy,
    Custom(GroupTemplate),
}

impl TextStyle {
    /// `default`, `legacy` or a template text.
    pub fn parse(spec: &str) -> Result<Self, TemplateError> {
        Ok(match spec {
            "default" => TextStyle::Default,
            "legacy" => TextStyle::Legacy,
            text => TextStyle::Custom(GroupTemplate::parse(text)?),
        })
    }
}

/// How the notifications of one sink look, and how many one run may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStyle {
    pub subject: TextStyle,
    pub message: TextStyle,
    /// Most notifications per run (0: no cap).
    pub cap: usize,
}

impl Default for MessageStyle {
    fn default() -> Self {
        MessageStyle {
            subject: TextStyle::Default,
            message: TextStyle::Default,
            cap: DEFAULT_CAP,
        }
    }
}

impl MessageStyle {
    pub fn parse(subject: &str, message: &str, cap: usize) -> Result<Self, TemplateError> {
        Ok(MessageStyle {
            subject: TextStyle::parse(subject)?,
            message: TextStyle::parse(message)?,
            cap,
        })
    }

    /// The original function's subject and message.
    pub fn legacy() -> Self {
        MessageStyle {
            subject: TextStyle::Legacy,
            message: TextStyle::Legacy,
            cap: DEFAULT_CAP,
        }
    }
}

/// The grouping key of one alarm.
pub fn key_of(a: &Alert) -> GroupKey {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let source_ip = nonempty(&a.source_ip);
    let user = nonempty(&a.user).or_else(|| nonempty(&a.user_id));
    GroupKey {
        rule: a.rule.to_owned(),
        reason: field(a, "{reason}"),
        action: a.action.clone(),
        object: (source_ip.is_none() && user.is_none()).then(|| a.object.clone()),
        source_ip,
        user,
    }
}

fn field(a: &Alert, placeholder: &str) -> String {
    Template::parse(placeholder)
        .map(|t| t.render(a))
        .unwrap_or_default()
}

/// A group's alarms and derived fields, for rendering.
struct GroupView<'a> {
    head: &'a Alert,
    alarms: &'a [Alert],
    first: Option<String>,
    last: Option<String>,
}

impl<'a> GroupView<'a> {
    /// `None` for no alarms (groups never are empty; this keeps indexing out).
    fn new(alarms: &'a [Alert]) -> Option<Self> {
        let head = alarms.first()?;
        let times = alarms.iter().filter_map(|a| a.time.as_deref());
        // RFC 3339 UTC strings of one format: lexical order is time order.
        Some(GroupView {
            head,
            alarms,
            first: times.clone().min().map(str::to_owned),
            last: times.max().map(str::to_owned),
        })
    }

    fn time_range(&self) -> String {
        match (&self.first, &self.last) {
            (Some(f), Some(l)) if f != l => format!("{f} .. {l}"),
            (Some(f), _) => f.clone(),
            _ => self
                .head
                .time_raw
                .clone()
                .unwrap_or_else(|| "unknown time".into()),
        }
    }

    fn trace_ids(&self) -> String {
        let ids: Vec<&str> = self
            .alarms
            .iter()
            .filter_map(|a| a.trace_id.as_deref())
            .filter(|t| !t.is_empty())
            .collect();
        let mut out = ids
            .iter()
            .take(TRACE_IDS_SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if ids.len() > TRACE_IDS_SHOWN {
            out.push_str(&format!(" and {} more", ids.len() - TRACE_IDS_SHOWN));
        }
        out
    }

    fn field(&self, name: &str) -> String {
        match name {
            "count" => self.alarms.len().to_string(),
            "first" => self.first.clone().unwrap_or_default(),
            "last" => self.last.clone().unwrap_or_default(),
            "time_range" => self.time_range(),
            "trace_ids" => self.trace_ids(),
            _ => String::new(),
        }
    }

    fn default_subject(&self) -> String {
        let a = self.head;
        if a.rule == RULE_INTEGRITY {
            // An integrity alarm is about a file, not a user: name the finding and the file.
            let mut s = format!("ctsguard [{}]: {} {}", a.rule, a.reason.as_str(), a.object);
            if self.alarms.len() > 1 {
                s.push_str(&format!(" and {} more", self.alarms.len() - 1));
            }
            return s;
        }
        let mut s = format!("ctsguard [{}]: {}", a.rule, a.action);
        if let Some(u) = a.user.as_deref().filter(|u| !u.is_empty()) {
            s.push_str(&format!(" by {u}"));
        }
        let why = field(a, "{why}");
        if !why.is_empty() {
            s.push(' ');
            s.push_str(&why);
        }
        if self.alarms.len() > 1 {
            s.push_str(&format!(" ({} alarms)", self.alarms.len()));
        }
        s
    }

    fn default_message(&self) -> String {
        let a = self.head;
        let n = self.alarms.len();
        let mut lines = Vec::new();
        lines.push(if a.rule == RULE_INTEGRITY {
            // The alarm's own message says what was found; the login text does not fit.
            match n {
                1 => format!("ctsguard raised an alarm: {}", a.message),
                _ => format!(
                    "ctsguard raised {n} integrity alarms ({}), the first: {}",
                    a.reason.as_str(),
                    a.message
                ),
            }
        } else if n == 1 {
            format!(
                "ctsguard raised an alarm: {}",
                field(a, crate::alert::DEFAULT_TEMPLATE)
            )
        } else {
            format!(
                "ctsguard raised {n} alarms: {} by user {} (domain {}) {}",
                a.action,
                field(a, "{user}"),
                field(a, "{domain}"),
                field(a, "{why}")
            )
        });
        lines.push(String::new());
        lines.push(format!("Rule:   {} ({})", a.rule, field(a, "{reason}")));
        lines.push(format!("Why:    {}", field(a, "{why}")));
        if a.user.is_some() || a.user_id.is_some() || a.domain.is_some() {
            let id = |v: &Option<String>| match v {
                Some(i) if !i.is_empty() => format!(" (id {i})"),
                _ => String::new(),
            };
            lines.push(format!(
                "Who:    user {}{}, domain {}{}",
                field(a, "{user}"),
                id(&a.user_id),
                a.domain.as_deref().unwrap_or("?"),
                id(&a.domain_id)
            ));
        }
        if let Some(ip) = a.source_ip.as_deref().filter(|i| !i.is_empty()) {
            lines.push(format!("From:   {ip}"));
        }
        let mut what = a.action.clone();
        if let Some(r) = a.trace_rating.as_deref().filter(|r| !r.is_empty()) {
            what.push_str(&format!(" (rating {r})"));
        }
        lines.push(format!("What:   {what}"));
        lines.push(format!(
            "When:   {}{}",
            self.time_range(),
            if n > 1 {
                format!(" ({n} times)")
            } else {
                String::new()
            }
        ));
        lines.push(format!(
            "Where:  region {}, service {}, tracker {}",
            a.region,
            a.service.as_deref().unwrap_or("?"),
            a.tracker
        ));
        let traces = self.trace_ids();
        if !traces.is_empty() {
            lines.push(format!("Traces: {traces}"));
        }
        let mut objects: Vec<&str> = Vec::new();
        for o in self.alarms.iter().map(|a| a.object.as_str()) {
            if !objects.contains(&o) {
                objects.push(o);
            }
        }
        let mut files = objects
            .iter()
            .take(3)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if objects.len() > 3 {
            files.push_str(&format!(" and {} more", objects.len() - 3));
        }
        lines.push(format!("Files:  {files}"));
        lines.join("\n")
    }

    fn legacy_message(&self) -> String {
        let mut s = field(self.head, crate::alert::LEGACY_TEMPLATE);
        if self.alarms.len() > 1 {
            s.push_str(&format!(
                "\n{} times, {}",
                self.alarms.len(),
                self.time_range()
            ));
        }
        s
    }

    fn subject(&self, style: &TextStyle) -> String {
        let s = match style {
            TextStyle::Default => self.default_subject(),
            TextStyle::Legacy => LEGACY_SUBJECT.to_owned(),
            TextStyle::Custom(t) => t.render(self),
        };
        one_line(&s)
    }

    fn message(&self, style: &TextStyle) -> String {
        match style {
            TextStyle::Default => self.default_message(),
            TextStyle::Legacy => self.legacy_message(),
            TextStyle::Custom(t) => t.render(self),
        }
    }

    /// One line of an overflow summary.
    fn summary_line(&self, style: &TextStyle) -> String {
        match style {
            TextStyle::Legacy => format!(
                "{} ({}x, {})",
                field(self.head, crate::alert::LEGACY_TEMPLATE),
                self.alarms.len(),
                self.time_range()
            ),
            _ if self.head.rule == RULE_INTEGRITY => format!(
                "{}x {} {} [{}], {}",
                self.alarms.len(),
                self.head.reason.as_str(),
                self.head.object,
                self.head.rule,
                self.time_range()
            ),
            _ => format!(
                "{}x {} by {} {} [{}], {}",
                self.alarms.len(),
                self.head.action,
                field(self.head, "{user}"),
                field(self.head, "{why}"),
                self.head.rule,
                self.time_range()
            ),
        }
    }
}

/// Subjects are one line: mail headers and chat titles break on newlines.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The notification of `check --send-test`: a made-up alarm (documentation address
/// 192.0.2.1, user `ctsguard-test`) in the sink's own style, marked as a test in the subject
/// and the text.
pub fn test_notification(style: &MessageStyle) -> Notification {
    let now = crate::alert::rfc3339(chrono::Utc::now());
    let alert = Alert {
        rule: crate::detect::RULE_UNLISTED_IP,
        reason: crate::detect::Reason::UnlistedIp,
        action: "login".into(),
        source_ip: Some("192.0.2.1".into()),
        user: Some("ctsguard-test".into()),
        user_id: None,
        domain: None,
        domain_id: None,
        trace_id: Some("ctsguard-send-test".into()),
        time: Some(now),
        time_raw: None,
        trace_rating: None,
        region: "test".into(),
        tracker: "test".into(),
        service: Some("IAM".into()),
        object: "(ctsguard check --send-test)".into(),
        index: 0,
        detail: None,
        message: "a test notification from `ctsguard check --send-test`".into(),
    };
    let mut n = group(std::slice::from_ref(&alert), 0, style)
        .into_iter()
        .next()
        .unwrap_or_else(|| Notification {
            subject: String::new(),
            message: String::new(),
            alarms: vec![alert.clone()],
            group: None,
            count: 1,
            first: None,
            last: None,
        });
    n.subject = format!("[ctsguard test] {}", n.subject);
    n.message = format!(
        "This is a test notification from `ctsguard check --send-test`; real alarms look like this:\n\n{}",
        n.message
    );
    n
}

/// Groups the alarms of one run into notifications (see the module docs).
pub fn group(alerts: &[Alert], cap: usize, style: &MessageStyle) -> Vec<Notification> {
    let mut order: Vec<(GroupKey, Vec<Alert>)> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    for a in alerts {
        let key = key_of(a);
        match index.get(&key) {
            Some(&i) => order[i].1.push(a.clone()),
            None => {
                index.insert(key.clone(), order.len());
                order.push((key, vec![a.clone()]));
            }
        }
    }
    let keep = if cap == 0 || order.len() <= cap {
        order.len()
    } else {
        cap - 1
    };
    let rest = order.split_off(keep);
    let mut out: Vec<Notification> = order
        .into_iter()
        .filter_map(|(key, alarms)| {
            let view = GroupView::new(&alarms)?;
            let n = Notification {
                subject: view.subject(&style.subject),
                message: view.message(&style.message),
                group: Some(key),
                count: alarms.len(),
                first: view.first.clone(),
                last: view.last.clone(),
                alarms: Vec::new(),
            };
            Some(Notification { alarms, ..n })
        })
        .collect();
    out.extend(overflow(&rest, cap, style));
    out
}

/// The notification summarising the groups beyond the cap (`None` when there are none).
fn overflow(
    rest: &[(GroupKey, Vec<Alert>)],
    cap: usize,
    style: &MessageStyle,
) -> Option<Notification> {
    let alarms: Vec<Alert> = rest.iter().flat_map(|(_, a)| a.iter().cloned()).collect();
    let total = alarms.len();
    let all = GroupView::new(&alarms)?;
    let subject = match &style.subject {
        TextStyle::Default => format!(
            "ctsguard: {total} more alarms in {} groups (per-run cap of {cap} notifications reached)",
            rest.len()
        ),
        other => all.subject(other),
    };
    let mut lines = Vec::new();
    if style.message != TextStyle::Legacy {
        lines.push(format!(
            "The per-run cap of {cap} notifications was reached; {total} more alarms in {} groups, {}:",
            rest.len(),
            all.time_range()
        ));
        lines.push(String::new());
    }
    for (_, group) in rest.iter().take(OVERFLOW_LINES) {
        if let Some(view) = GroupView::new(group) {
            lines.push(view.summary_line(&style.message));
        }
    }
    if rest.len() > OVERFLOW_LINES {
        let more: usize = rest[OVERFLOW_LINES..].iter().map(|(_, g)| g.len()).sum();
        lines.push(format!(
            "... and {} more groups ({more} alarms)",
            rest.len() - OVERFLOW_LINES
        ));
    }
    let (first, last) = (all.first.clone(), all.last.clone());
    Some(Notification {
        subject,
        message: lines.join("\n"),
        group: None,
        count: total,
        first,
        last,
        alarms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Reason, RULE_UNLISTED_IP};

    fn alert(ip: &str, user: &str, action: &str, time: &str, trace: &str) -> Alert {
        Alert {
            rule: RULE_UNLISTED_IP,
            reason: Reason::UnlistedIp,
            action: action.into(),
            source_ip: Some(ip.into()),
            user: Some(user.into()),
            user_id: Some("u-1".into()),
            domain: Some("acme".into()),
            domain_id: None,
            trace_id: Some(trace.into()),
            time: Some(time.into()),
            time_raw: None,
            trace_rating: Some("normal".into()),
            region: "eu-de".into(),
            tracker: "system".into(),
            service: Some("IAM".into()),
            object: "CloudTraces/eu-de/2026/9/30/system/IAM/f.json.gz".into(),
            index: 0,
            detail: None,
            message: String::new(),
        }
    }

    fn t(i: u32) -> String {
        format!("2026-09-30T10:{i:02}:00.000Z")
    }

    #[test]
    fn groups_by_key_in_first_occurrence_order_with_time_range() {
        let alerts = vec![
            alert("203.0.113.9", "alice", "login", &t(5), "t1"),
            alert("198.51.100.1", "bob", "login", &t(1), "t2"),
            alert("203.0.113.9", "alice", "login", &t(2), "t3"),
            alert("203.0.113.9", "alice", "logout", &t(3), "t4"),
            alert("203.0.113.9", "alice", "login", &t(9), "t5"),
        ];
        let out = group(&alerts, 10, &MessageStyle::default());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].count, 3);
        assert_eq!(out[0].alarms.len(), 3);
        assert_eq!(out[0].first.as_deref(), Some(t(2).as_str()));
        assert_eq!(out[0].last.as_deref(), Some(t(9).as_str()));
        assert_eq!(out[1].group.as_ref().unwrap().user.as_deref(), Some("bob"));
        assert_eq!(out[2].group.as_ref().unwrap().action, "logout");
        let m = &out[0].message;
        for needle in [
            "3 alarms",
            "alice",
            "acme",
            "203.0.113.9",
            "login",
            "eu-de",
            "IAM",
            "t1, t3, t5",
            &t(2),
            &t(9),
            "unlisted IP",
        ] {
            assert!(m.contains(needle), "{needle:?} missing from\n{m}");
        }
        assert!(out[0].subject.contains("(3 alarms)"), "{}", out[0].subject);
        assert!(!out[0].subject.contains('\n'));
    }

    #[test]
    fn default_text_of_one_alarm() {
        let n = group(
            &[alert("203.0.113.9", "alice", "login", &t(0), "t1")],
            5,
            &MessageStyle::default(),
        );
        assert_eq!(
            n[0].subject,
            "ctsguard [unlisted-source-ip]: login by alice from unlisted IP 203.0.113.9"
        );
        assert_eq!(
            n[0].message,
            "ctsguard raised an alarm: login by user alice (domain acme) from unlisted IP 203.0.113.9 at 2026-09-30T10:00:00.000Z in eu-de/IAM, trace t1\n\
             \n\
             Rule:   unlisted-source-ip (unlisted_ip)\n\
             Why:    from unlisted IP 203.0.113.9\n\
             Who:    user alice (id u-1), domain acme\n\
             From:   203.0.113.9\n\
             What:   login (rating normal)\n\
             When:   2026-09-30T10:00:00.000Z\n\
             Where:  region eu-de, service IAM, tracker system\n\
             Traces: t1\n\
             Files:  CloudTraces/eu-de/2026/9/30/system/IAM/f.json.gz"
        );
    }

    #[test]
    fn integrity_alarms_are_told_by_finding_and_file() {
        let a = Alert::integrity(
            "CloudTraces/eu-de/2026/9/30/system/IAM/f.json.gz",
            None,
            crate::detect::Reason::HashMismatch,
            "digest d records MD5 aa, the stored bytes have bb".into(),
            None,
        );
        let n = group(std::slice::from_ref(&a), 5, &MessageStyle::default());
        assert_eq!(
            n[0].subject,
            "ctsguard [trace-integrity]: hash_mismatch CloudTraces/eu-de/2026/9/30/system/IAM/f.json.gz"
        );
        let first = n[0].message.lines().next().unwrap_or_default();
        assert!(first.contains("hash mismatch"), "{first}");
        assert!(first.contains("records MD5 aa"), "{first}");
        assert!(!n[0].message.contains("by user ?"), "{}", n[0].message);
    }

    #[test]
    fn cap_sends_an_overflow_carrying_every_remaining_alarm() {
        let alerts: Vec<Alert> = (0..10)
            .map(|i| {
                alert(
                    &format!("203.0.113.{i}"),
                    "alice",
                    "login",
                    &t(i),
                    &format!("t{i}"),
                )
            })
            .chain(std::iter::once(alert(
                "203.0.113.9",
                "alice",
                "login",
                &t(30),
                "tx",
            )))
            .collect();
        let out = group(&alerts, 4, &MessageStyle::default());
        assert_eq!(out.len(), 4);
        let overflow = &out[3];
        assert!(overflow.group.is_none());
        assert_eq!(overflow.count, 8);
        assert_eq!(overflow.alarms.len(), 8);
        let total: usize = out.iter().map(|n| n.alarms.len()).sum();
        assert_eq!(total, alerts.len(), "no alarm is dropped");
        assert!(
            overflow.subject.contains("8 more alarms in 7 groups"),
            "{}",
            overflow.subject
        );
        assert!(
            overflow
                .message
                .contains("2x login by alice from unlisted IP 203.0.113.9"),
            "{}",
            overflow.message
        );
        // No cap, or a cap not reached: one notification per group.
        assert_eq!(group(&alerts, 0, &MessageStyle::default()).len(), 10);
        assert_eq!(group(&alerts, 10, &MessageStyle::default()).len(), 10);
        assert!(group(&[], 3, &MessageStyle::default()).is_empty());
        // A cap of 1: everything in the single overflow.
        let one = group(&alerts, 1, &MessageStyle::default());
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].alarms.len(), alerts.len());
    }

    #[test]
    fn legacy_text_is_the_original_first_line() {
        let style = MessageStyle::legacy();
        let single = group(
            &[alert("203.0.113.9", "alice", "login", &t(1), "t1")],
            5,
            &style,
        );
        assert_eq!(single[0].subject, "CTSTrigger");
        assert_eq!(
            single[0].message,
            "Illegal operation[  IP:203.0.113.9,  Action:login]"
        );
        let two = group(
            &[
                alert("203.0.113.9", "alice", "login", &t(1), "t1"),
                alert("203.0.113.9", "alice", "login", &t(2), "t2"),
            ],
            5,
            &style,
        );
        let mut lines = two[0].message.lines();
        assert_eq!(
            lines.next(),
            Some("Illegal operation[  IP:203.0.113.9,  Action:login]")
        );
        let second = lines.next().unwrap();
        assert!(
            second.contains('2') && second.contains(&t(1)) && second.contains(&t(2)),
            "{second}"
        );
    }

    #[test]
    fn custom_templates_mix_alert_and_group_fields() {
        let style = MessageStyle::parse(
            "{count}x {action} from {source_ip}\nsecond line",
            "{user}: {time_range} [{trace_ids}] {{literal}}",
            0,
        )
        .unwrap();
        let alerts: Vec<Alert> = (0..7)
            .map(|i| alert("203.0.113.9", "alice", "login", &t(i), &format!("t{i}")))
            .collect();
        let out = group(&alerts, 0, &style);
        assert_eq!(out[0].subject, "7x login from 203.0.113.9 second line");
        assert_eq!(
            out[0].message,
            format!(
                "alice: {} .. {} [t0, t1, t2, t3, t4 and 2 more] {{literal}}",
                t(0),
                t(6)
            )
        );
        let e = GroupTemplate::parse("{cnt}").unwrap_err();
        assert!(
            e.reason.contains("{cnt}") && e.reason.contains("count"),
            "{e}"
        );
        assert!(GroupTemplate::parse("{count").is_err());
        assert!(GroupTemplate::parse("a } b").is_err());
    }

    #[test]
    fn alarms_without_user_or_ip_group_per_rule_reason_and_file() {
        let mut a = alert("", "", "digest-missing", &t(1), "");
        a.source_ip = None;
        a.user = None;
        a.user_id = None;
        a.domain = None;
        a.trace_id = None;
        let mut b = a.clone();
        b.object = "other".into();
        let out = group(&[a.clone(), b, a], 0, &MessageStyle::default());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].count, 2);
        assert_eq!(
            out[0].group.as_ref().unwrap().object.as_deref(),
            Some(out[0].alarms[0].object.as_str())
        );
        let m = &out[0].message;
        assert!(!m.contains("Who:") && !m.contains("From:"), "{m}");
        assert!(m.contains("Files:") && m.contains("digest-missing"), "{m}");
    }
}
