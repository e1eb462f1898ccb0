//! Integrity inside `scan` and `backfill` (`--integrity off|report|enforce`).
//!
//! Each processed trace file's MD5 (of the bytes as stored) is compared with what the signed
//! digests of its tracker record. A digest arrives about an hour after the files it lists, so
//! the comparison is often not possible when a file is processed: the [`Ledger`] remembers
//! files processed without a digest (`unverified`) and files a digest listed before they were
//! processed (`expected`), and `scan` keeps it in its checkpoint so later runs finish the check.
//!
//! Findings, as `verify` names them, become integrity alarms through the alarm output:
//! `hash_mismatch` (changed after delivery), `not_found` (listed, deleted), `not_in_digest`
//! (no digest of its tracker lists it once the digest is due), and for digests themselves
//! `signature_invalid`, `invalid_format`, `moved`. A tracker that has never written a digest
//! (Verify Trace File off) cannot be checked: its files are counted as unverifiable and
//! logged, not alarmed, in `report` mode.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::cts::digest::{
    self, check_signature, md5_matches, signature_meta, DigestFile, Integrity, PublicKey,
    SignatureMeta,
};
use crate::cts::layout::{self, CtsFile};
use crate::discover::Candidate;
use crate::store::{ObjectStore, StoreError};

/// How long after the end of an hour its digest may still be missing: CTS writes a digest
/// about an hour after the hour it covers.
pub const DIGEST_DELAY: Duration = Duration::hours(2);

/// What `scan` and `backfill` do with digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Digests are not read.
    Off,
    /// Files are processed at once; each is checked when its digest is available.
    #[default]
    Report,
    /// A file is processed only once its digest has arrived and its MD5 matched.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Report => "report",
            Mode::Enforce => "enforce",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "report" => Ok(Mode::Report),
            "enforce" => Ok(Mode::Enforce),
            other => Err(format!("{other:?} is not off, report or enforce")),
        }
    }
}

/// How a digest is judged on its own: readable, signed by `key`, where it says it is.
#[derive(Debug, Clone)]
pub struct DigestCheck {
    pub key: PublicKey,
    /// The bucket digests must name (`digest_bucket`): the S3 bucket, or `None` for a
    /// directory, whose name is unknown.
    pub bucket: Option<String>,
    /// For a directory copy of a bucket: match the objects digests name from their
    /// `CloudTraces/` part on, since the copy may have left a path prefix behind.
    pub keys_from_root: bool,
    /// Largest digest file, downloaded or decompressed.
    pub max_digest_size: u64,
}

impl DigestCheck {
    /// The store key of an object a digest names.
    pub fn store_key(&self, object: &str) -> String {
        if self.keys_from_root && !object.starts_with(layout::ROOT) {
            if let Some(i) = object.find(&format!("/{}", layout::ROOT)) {
                return object[i + 1..].to_owned();
            }
        }
        object.to_owned()
    }

    /// Parses a digest and checks its signature and location. Returns the parsed digest
    /// (when readable), its status and a human-readable detail.
    pub fn judge(
        &self,
        key: &str,
        body: &[u8],
        md5_hex: &str,
        meta: &SignatureMeta,
    ) -> (Option<DigestFile>, Integrity, String) {
        let d = match digest::parse(body, self.max_digest_size) {
            Ok(d) => d,
            Err(e) => return (None, Integrity::InvalidFormat, e.to_string()),
        };
        if let Err(e) = check_signature(&self.key, &d, md5_hex, meta) {
            return (Some(d), Integrity::SignatureInvalid, e.to_string());
        }
        let object = d.digest_object.as_deref().unwrap_or("");
        if self.store_key(object) != key {
            let detail = format!("digest_object names {object}");
            return (Some(d), Integrity::Moved, detail);
        }
        if let (Some(want), Some(named)) = (&self.bucket, &d.digest_bucket) {
            if want != named {
                let detail = format!("digest_bucket names {named}, read from bucket {want}");
                return (Some(d), Integrity::Moved, detail);
            }
        }
        let detail = format!(
            "signature verified; lists {} trace file{}",
            d.log_files.len(),
            if d.log_files.len() == 1 { "" } else { "s" }
        );
        (Some(d), Integrity::Valid, detail)
    }

    /// Downloads and judges one digest.
    pub async fn fetch(
        &self,
        store: &dyn ObjectStore,
        cand: Candidate,
    ) -> Result<CheckedDigest, (String, StoreError)> {
        let got = match store.get(&cand.key, self.max_digest_size).await {
            Ok(g) => g,
            Err(e) => return Err((cand.key, e)),
        };
        let md5_hex = digest::md5_hex(&got.body);
        let meta = signature_meta(&got.metadata);
        let (parsed, status, detail) = self.judge(&cand.key, &got.body, &md5_hex, &meta);
        Ok(CheckedDigest {
            key: cand.key,
            file: cand.file,
            parsed,
            status,
            detail,
        })
    }
}

/// A digest read by a scan or backfill.
#[derive(Debug, Clone)]
pub struct CheckedDigest {
    pub key: String,
    /// The digest's own place in the layout (region, tracker, service, time in its name).
    pub file: CtsFile,
    pub parsed: Option<DigestFile>,
    pub status: Integrity,
    pub detail: String,
}

/// The chain a file belongs to: `region/tracker/service` (service empty for trackers that do
/// not sort by service).
pub fn chain_of(f: &CtsFile) -> String {
    format!(
        "{}/{}/{}",
        f.region,
        f.tracker,
        f.service.as_deref().unwrap_or_default()
    )
}

/// When the digest of a file uploaded at `t` is overdue.
pub fn digest_due(t: DateTime<Utc>) -> DateTime<Utc> {
    let hour = t.duration_trunc(Duration::hours(1)).unwrap_or(t);
    hour + Duration::hours(1) + DIGEST_DELAY
}

/// A trace file processed before any digest listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unverified {
    /// The upload time in its name.
    pub time: DateTime<Utc>,
    /// Hex MD5 of the bytes processed.
    pub md5: String,
    pub chain: String,
}

/// A trace file a digest listed before it was processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The time in the listing digest's name (what the entry is pruned by).
    pub time: DateTime<Utc>,
    /// The hex MD5 the digest records.
    pub md5: String,
    pub digest: String,
}

/// A finding about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub key: String,
    pub file: Option<CtsFile>,
    pub status: Integrity,
    pub detail: String,
}

/// What is known between a file being processed and its digest being read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub unverified: BTreeMap<String, Unverified>,
    #[serde(default)]
    pub expected: BTreeMap<String, Expected>,
    /// Chains that have written digests, with the time of the newest: only their files can be
    /// missing from a digest.
    #[serde(default)]
    pub chains: BTreeMap<String, DateTime<Utc>>,
}

/// How long a chain is remembered as writing digests after its newest digest: a tracker that
/// stops writing them (someone turned Verify Trace File off) keeps being alarmed that long.
const CHAIN_MEMORY: Duration = Duration::days(7);

impl Ledger {
    /// Records a processed trace file. Returns a finding when a digest read earlier lists it
    /// with another MD5.
    pub fn record(&mut self, key: &str, file: &CtsFile, md5: &[u8; 16]) -> Option<Finding> {
        if let Some(exp) = self.expected.remove(key) {
            return compare(key, Some(file), &exp.md5, &exp.digest, md5);
        }
        self.unverified.insert(
            key.to_owned(),
            Unverified {
                time: file.time,
                md5: hex::encode(md5),
                chain: chain_of(file),
            },
        );
        None
    }

    /// The MD5 a digest recorded for `key`, when a digest read so far lists it.
    pub fn expected_md5(&self, key: &str) -> Option<&Expected> {
        self.expected.get(key)
    }

    /// Applies a digest: its own verdict, and every listed file this run owns that was
    /// processed (compared now) or not yet (remembered as expected). Returns the findings
    /// and the listed keys that are neither processed nor known to `known`: the caller checks
    /// whether they exist (a deleted file is `not_found`).
    pub fn apply(
        &mut self,
        d: &CheckedDigest,
        check: &DigestCheck,
        owns: &dyn Fn(&str) -> bool,
        known: &dyn Fn(&str) -> bool,
    ) -> (Vec<Finding>, Vec<String>) {
        let mut findings = Vec::new();
        let mut unknown = Vec::new();
        if d.status != Integrity::Valid {
            findings.push(Finding {
                key: d.key.clone(),
                file: Some(d.file.clone()),
                status: d.status,
                detail: d.detail.clone(),
            });
        }
        let Some(parsed) = &d.parsed else {
            return (findings, unknown);
        };
        let chain = chain_of(&d.file);
        let newest = self.chains.entry(chain).or_insert(d.file.time);
        *newest = (*newest).max(d.file.time);
        for f in &parsed.log_files {
            let (Some(object), Some(hash)) = (&f.object, &f.log_hash_value) else {
                continue;
            };
            let key = check.store_key(object);
            if !owns(&key) {
                continue;
            }
            let hash = hash.trim().to_owned();
            if let Some(u) = self.unverified.remove(&key) {
                let mut actual = [0u8; 16];
                match hex::decode_to_slice(&u.md5, &mut actual) {
                    Ok(()) => findings.extend(compare(&key, None, &hash, &d.key, &actual)),
                    Err(_) => unknown.push(key.clone()),
                }
                continue;
            }
            if known(&key) {
                continue;
            }
            unknown.push(key.clone());
            self.expected.insert(
                key,
                Expected {
                    time: d.file.time,
                    md5: hash,
                    digest: d.key.clone(),
                },
            );
        }
        (findings, unknown)
    }

    /// Files whose digest is overdue at `now` without any digest listing them. In a chain
    /// that writes digests they are `not_in_digest`; the others are returned as unverifiable
    /// (`require` turns those into findings too: `enforce` accepts no unverified file).
    pub fn overdue(&mut self, now: DateTime<Utc>, require: bool) -> (Vec<Finding>, Vec<String>) {
        let due: Vec<String> = self
            .unverified
            .iter()
            .filter(|(_, u)| digest_due(u.time) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut findings = Vec::new();
        let mut unverifiable = Vec::new();
        for key in due {
            let Some(u) = self.unverified.remove(&key) else {
                continue;
            };
            match self.chains.get(&u.chain) {
                Some(newest) => findings.push(Finding {
                    key,
                    file: None,
                    status: Integrity::NotInDigest,
                    detail: format!(
                        "no digest of {} lists it (newest digest of the chain: {})",
                        u.chain,
                        crate::alert::rfc3339(*newest)
                    ),
                }),
                None if require => findings.push(Finding {
                    key,
                    file: None,
                    status: Integrity::NotInDigest,
                    detail: format!(
                        "{} has written no digest (is Verify Trace File on for this tracker?)",
                        u.chain
                    ),
                }),
                None => unverifiable.push(key),
            }
        }
        (findings, unverifiable)
    }

    /// Forgets expectations older than `horizon` (their files are out of every later window)
    /// and chains silent for long. Unverified files are kept until [`Ledger::overdue`] settles
    /// them: forgetting one would skip its check silently.
    pub fn prune(&mut self, horizon: DateTime<Utc>) {
        self.expected.retain(|_, e| e.time >= horizon);
        self.chains.retain(|_, t| *t + CHAIN_MEMORY >= horizon);
    }
}

/// Compares a file's MD5 with what a digest recorded; `None` when they match.
fn compare(
    key: &str,
    file: Option<&CtsFile>,
    expected_hex: &str,
    digest_key: &str,
    actual: &[u8; 16],
) -> Option<Finding> {
    (!md5_matches(expected_hex, actual)).then(|| Finding {
        key: key.to_owned(),
        file: file.cloned(),
        status: Integrity::HashMismatch,
        detail: format!(
            "{digest_key} records MD5 {expected_hex}, the stored bytes have {}",
            hex::encode(actual)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cts::digest::LogFile;
    use crate::cts::layout::FileKind;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 1, h, m, 0).unwrap()
    }

    fn file(kind: FileKind, time: DateTime<Utc>) -> CtsFile {
        CtsFile {
            kind,
            region: "eu-de".into(),
            tracker: "system".into(),
            service: Some("IAM".into()),
            time,
        }
    }

    fn check() -> DigestCheck {
        DigestCheck {
            key: PublicKey::cts_default(),
            bucket: None,
            keys_from_root: true,
            max_digest_size: 1 << 20,
        }
    }

    fn digest(at: DateTime<Utc>, listed: &[(&str, [u8; 16])], status: Integrity) -> CheckedDigest {
        let parsed = DigestFile {
            log_files: listed
                .iter()
                .map(|(k, md5)| LogFile {
                    bucket: None,
                    object: Some((*k).to_owned()),
                    log_hash_value: Some(hex::encode_upper(md5)),
                    log_hash_algorithm: Some("MD5".into()),
                })
                .collect(),
            ..DigestFile::default()
        };
        CheckedDigest {
            key: format!("digest-{at}"),
            file: file(FileKind::Digest, at),
            parsed: Some(parsed),
            status,
            detail: String::new(),
        }
    }

    const ALL: &dyn Fn(&str) -> bool = &|_| true;
    const NONE: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn a_file_processed_first_is_checked_when_its_digest_arrives() {
        let mut l = Ledger::default();
        assert_eq!(
            l.record("a", &file(FileKind::Trace, t(0, 5)), &[1; 16]),
            None
        );
        assert_eq!(
            l.record("b", &file(FileKind::Trace, t(0, 6)), &[2; 16]),
            None
        );
        let d = digest(
            t(0, 59),
            &[("a", [1; 16]), ("b", [9; 16])],
            Integrity::Valid,
        );
        let (findings, unknown) = l.apply(&d, &check(), ALL, NONE);
        assert!(unknown.is_empty());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].key, "b");
        assert_eq!(findings[0].status, Integrity::HashMismatch);
        assert!(l.unverified.is_empty(), "both settled");
        // Compared case-insensitively: the digest wrote upper-case hex.
        assert!(findings[0].detail.contains(&hex::encode([2u8; 16])));
    }

    #[test]
    fn a_file_listed_first_is_checked_when_processed() {
        let mut l = Ledger::default();
        let d = digest(
            t(0, 59),
            &[("a", [1; 16]), ("b", [2; 16])],
            Integrity::Valid,
        );
        let (findings, unknown) = l.apply(&d, &check(), ALL, NONE);
        assert!(findings.is_empty());
        assert_eq!(unknown, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            l.record("a", &file(FileKind::Trace, t(0, 5)), &[1; 16]),
            None
        );
        let bad = l.record("b", &file(FileKind::Trace, t(0, 6)), &[3; 16]);
        assert_eq!(bad.map(|f| f.status), Some(Integrity::HashMismatch));
        assert!(l.expected.is_empty() && l.unverified.is_empty());
    }

    #[test]
    fn other_shards_and_known_files_are_left_alone() {
        let mut l = Ledger::default();
        let d = digest(
            t(0, 59),
            &[("mine", [1; 16]), ("theirs", [2; 16])],
            Integrity::Valid,
        );
        let owns = |k: &str| k == "mine";
        let known = |k: &str| k == "mine";
        let (findings, unknown) = l.apply(&d, &check(), &owns, &known);
        assert!(findings.is_empty() && unknown.is_empty() && l.expected.is_empty());
    }

    #[test]
    fn a_bad_digest_is_a_finding_itself() {
        let mut l = Ledger::default();
        let d = digest(t(0, 59), &[], Integrity::SignatureInvalid);
        let (findings, _) = l.apply(&d, &check(), ALL, NONE);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].status, Integrity::SignatureInvalid);
        assert_eq!(findings[0].key, d.key);
    }

    #[test]
    fn unlisted_files_are_alarmed_only_once_due_and_only_where_digests_are_written() {
        let mut l = Ledger::default();
        l.record("late", &file(FileKind::Trace, t(0, 5)), &[1; 16]);
        let other = CtsFile {
            tracker: "no-digests".into(),
            ..file(FileKind::Trace, t(0, 5))
        };
        l.record("plain", &other, &[1; 16]);
        l.apply(
            &digest(t(0, 59), &[], Integrity::Valid),
            &check(),
            ALL,
            NONE,
        );
        // Due at 03:00 (end of the hour + the delay).
        let (f, u) = l.overdue(t(2, 59), false);
        assert!(f.is_empty() && u.is_empty());
        let (f, u) = l.overdue(t(3, 0), false);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].key.as_str(), f[0].status),
            ("late", Integrity::NotInDigest)
        );
        assert_eq!(u, vec!["plain".to_owned()]);
        assert!(l.unverified.is_empty());
        // `enforce` requires a digest everywhere.
        l.record("plain", &other, &[1; 16]);
        let (f, _) = l.overdue(t(3, 0), true);
        assert_eq!(f.len(), 1);
        assert!(f[0].detail.contains("no digest"), "{}", f[0].detail);
    }

    #[test]
    fn pruning_keeps_unverified_files() {
        let mut l = Ledger::default();
        l.record("u", &file(FileKind::Trace, t(0, 5)), &[1; 16]);
        l.apply(
            &digest(t(0, 59), &[("x", [1; 16])], Integrity::Valid),
            &check(),
            ALL,
            NONE,
        );
        l.prune(t(12, 0));
        assert!(l.unverified.contains_key("u"));
        assert!(l.expected.is_empty());
        assert_eq!(l.chains.len(), 1, "a chain is remembered for days");
        l.prune(t(12, 0) + Duration::days(8));
        assert!(l.chains.is_empty());
    }

    #[test]
    fn modes_parse() {
        assert_eq!("REPORT".parse::<Mode>(), Ok(Mode::Report));
        assert_eq!("off".parse::<Mode>(), Ok(Mode::Off));
        assert_eq!("enforce".parse::<Mode>(), Ok(Mode::Enforce));
        assert!("strict".parse::<Mode>().is_err());
    }
}
