//! The rule: every trace whose action is watched and whose source IP is not allow-listed
//! raises an alert. A watched action with an empty, missing or unreadable source IP is
//! alerted too, with that reason: it is never taken as allowed.

use std::net::IpAddr;

use crate::allowlist::{parse_source_ip, AllowList};
use crate::cts::trace::Trace;

/// Name of the rule in alerts, stable for downstream filters.
pub const RULE_UNLISTED_IP: &str = "unlisted-source-ip";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The address is outside the allow-list.
    UnlistedIp,
    /// The trace has no source IP (absent, null or empty).
    MissingIp,
    /// The source IP cannot be read as an address.
    InvalidIp,
    // Integrity alarms (`--integrity`), named as `verify` names them.
    /// A digest lists the file with another MD5: the file was changed after delivery.
    HashMismatch,
    /// A digest lists the file, the bucket does not have it: it was deleted.
    NotFound,
    /// No digest of the file's tracker lists it: it was added after delivery.
    NotInDigest,
    /// A digest's signature does not verify (forged or damaged digest).
    SignatureInvalid,
    /// A digest names another location than where it was read.
    Moved,
    /// A digest cannot be read.
    InvalidFormat,
}

/// Name of the integrity rule in alerts (`--integrity report|enforce`).
pub const RULE_INTEGRITY: &str = "trace-integrity";

impl Reason {
    /// The integrity reason for a `verify` status (`None` for `valid`).
    pub fn of_integrity(status: crate::cts::digest::Integrity) -> Option<Self> {
        use crate::cts::digest::Integrity as I;
        Some(match status {
            I::Valid => return None,
            I::HashMismatch => Reason::HashMismatch,
            I::NotFound => Reason::NotFound,
            I::NotInDigest => Reason::NotInDigest,
            I::SignatureInvalid => Reason::SignatureInvalid,
            I::Moved => Reason::Moved,
            I::InvalidFormat => Reason::InvalidFormat,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnlistedIp => "unlisted_ip",
            Reason::MissingIp => "missing_ip",
            Reason::InvalidIp => "invalid_ip",
            Reason::HashMismatch => "hash_mismatch",
            Reason::NotFound => "not_found",
            Reason::NotInDigest => "not_in_digest",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::Moved => "moved",
            Reason::InvalidFormat => "invalid_format",
        }
    }
}

/// A match of the rule on one trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub reason: Reason,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Lower-case action names (`trace_name`), compared case-insensitively.
    actions: Vec<String>,
    allow: AllowList,
}

impl Rule {
    pub fn new(actions: &[String], allow: AllowList) -> Self {
        Rule {
            actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
            allow,
        }
    }

    /// The watched actions, in lower case.
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    pub fn watches(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a.eq_ignore_ascii_case(action))
    }

    /// The finding for `trace`, if the rule matches it.
    pub fn check(&self, trace: &Trace<'_>) -> Option<Finding> {
        let action = trace.trace_name.as_deref()?;
        if !self.watches(action) {
            return None;
        }
        let raw = trace.source_ip.as_deref().map(str::trim).unwrap_or("");
        if raw.is_empty() {
            return Some(Finding {
                reason: Reason::MissingIp,
                ip: None,
            });
        }
        match parse_source_ip(raw) {
            None => Some(Finding {
                reason: Reason::InvalidIp,
                ip: None,
            }),
            Some(ip) if self.allow.contains(ip) => None,
            Some(ip) => Some(Finding {
                reason: Reason::UnlistedIp,
                ip: Some(ip),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn trace<'a>(name: &'a str, ip: Option<&'a str>) -> Trace<'a> {
        Trace {
            trace_name: Some(Cow::Borrowed(name)),
            source_ip: ip.map(Cow::Borrowed),
            ..Trace::default()
        }
    }

    fn rule(allow: &str) -> Rule {
        Rule::new(
            &["login".into(), "logout".into()],
            AllowList::parse(&[allow]).unwrap(),
        )
    }

    #[test]
    fn the_four_defects_of_the_sample_are_absent() {
        let r = rule("192.168.1.1");
        // 1. logout is watched, not rejected.
        assert_eq!(
            r.check(&trace("logout", Some("8.8.8.8"))).map(|f| f.reason),
            Some(Reason::UnlistedIp)
        );
        // 2. listed IPs are allowed, unlisted ones alarm.
        assert_eq!(r.check(&trace("login", Some("192.168.1.1"))), None);
        // 3. no substring matching; an empty IP does not match everything.
        assert!(r.check(&trace("login", Some("192.168.1.10"))).is_some());
        assert_eq!(
            r.check(&trace("login", Some(""))).map(|f| f.reason),
            Some(Reason::MissingIp)
        );
    }

    #[test]
    fn actions_compare_case_insensitively_and_others_are_ignored() {
        let r = rule("10.0.0.0/8");
        assert!(r.check(&trace("LOGIN", Some("8.8.8.8"))).is_some());
        assert!(r.check(&trace("Logout", Some("8.8.8.8"))).is_some());
        assert_eq!(r.check(&trace("loginFailed", Some("8.8.8.8"))), None);
        assert_eq!(r.check(&trace("createUser", Some("8.8.8.8"))), None);
    }

    #[test]
    fn missing_and_invalid_ips_alarm() {
        let r = rule("10.0.0.0/8");
        assert_eq!(
            r.check(&trace("login", None)).map(|f| f.reason),
            Some(Reason::MissingIp)
        );
        assert_eq!(
            r.check(&trace("login", Some("  "))).map(|f| f.reason),
            Some(Reason::MissingIp)
        );
        assert_eq!(
            r.check(&trace("login", Some("not-an-ip")))
                .map(|f| f.reason),
            Some(Reason::InvalidIp)
        );
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let r = rule("10.0.0.0/8,2001:db8::/32");
        assert_eq!(r.check(&trace("login", Some("::ffff:10.1.1.1"))), None);
        assert_eq!(r.check(&trace("login", Some("2001:db8::5"))), None);
        assert!(r.check(&trace("login", Some("::ffff:8.8.8.8"))).is_some());
        assert!(r.check(&trace("login", Some("2a00::1"))).is_some());
    }
}
