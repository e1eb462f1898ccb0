//! A generator of realistic CTS bucket trees (SPEC §1, §2, §4) for tests, benchmarks and the
//! checked-in `fixtures/`.
//!
//! Everything is derived from [`GenSpec::seed`]: the same spec gives the same keys and the same
//! bytes. Each (region, tracker, service, day) draws from its own random stream, so adding a
//! region or a day does not change the files of the others, and switching `edge_cases` on leaves
//! the ordinary files as they were.
//!
//! The [`Manifest`] says what a correct reader must find: the readable trace files, the number
//! of traces in them, every expected alarm (IAM `login`/`logout` from outside the allow-list,
//! SPEC §3), the objects that cannot be read and why, and the objects that are not CTS files.
//!
//! Digests are written as CTS writes them (SPEC §4): one per hour and service, also for hours
//! without traces, chained per (region, tracker, service), and signed with
//! [`GenSpec::signing_key`] when one is given (else unsigned: `verify` reports them
//! `signature_invalid`). [`GenSpec::defects`] injects the integrity defects `verify` must find;
//! the manifest's `expected_integrity` and `expected_gaps` say what it must report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Timelike, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::stream::{self, StreamExt, TryStreamExt};
use ipnet::IpNet;
use md5::{Digest as _, Md5};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::alert::rfc3339;
use crate::cts::digest::{
    signed_message, PrivateKey, META_SIGNATURE, META_SIGNATURE_ALGORITHM, SIGNATURE_ALGORITHM,
};
use crate::store::{ObjectStore, PutMode};

/// What to generate. Start from [`GenSpec::default`] (small) or [`GenSpec::fixtures`] (the
/// checked-in tree) and change what a test needs.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    pub seed: u64,
    /// First day (UTC) of the window.
    pub start: NaiveDate,
    pub days: u32,
    /// Region folders. Every region gets every service (IAM too, although real CTS puts IAM
    /// traces only under the central region), so tests can check multi-region discovery.
    pub regions: Vec<String>,
    /// `system` is the management tracker and records every service; any other name is a data
    /// tracker and records OBS object operations under `OBS/`.
    pub trackers: Vec<String>,
    /// Service folders of the `system` tracker. `IAM` gets the logins.
    pub services: Vec<String>,
    /// Ordinary trace files per (region, tracker, service, day).
    pub files_per_service_per_day: u32,
    pub traces_per_file: u32,
    /// Share of IAM login/logout traces whose `source_ip` is not in `allowed`.
    pub alarm_share: f64,
    /// The allow-list: IPv4/IPv6 addresses and CIDR ranges. Allowed logins take addresses
    /// inside these. Empty: every login is an alarm.
    pub allowed: Vec<String>,
    /// Share of IPv6 among the unlisted login addresses.
    pub ipv6_share: f64,
    /// Share of traces in the old shape: `user` a plain string, `time` and `record_time` strings
    /// such as `2016/12/08 11:07:28 GMT+08:00`.
    pub old_shape_share: f64,
    /// Zero-padded month/day folders (`2026/09/03`) instead of CTS's documented `2026/9/3`.
    pub padded_folders: bool,
    /// Path prefix before `CloudTraces/`: empty or ending in `/` (`some/prefix/`).
    pub prefix: String,
    /// Adds, on the first day of the first region, one object of each awkward kind (see
    /// `fixtures/README.md` and `Generator::edge_files`).
    pub edge_cases: bool,
    /// Writes hourly digest files (SPEC §4).
    pub digests: bool,
    /// Bucket name written into digests (`digest_bucket`, `log_files[].bucket`). For S3 this
    /// should be the real bucket; a local directory has no name of its own.
    pub bucket: String,
    /// PEM private key (PKCS#8 or PKCS#1) that signs the digests as CTS does; `None` leaves
    /// them unsigned. Only ever a test key: CTS's own key is not public.
    pub signing_key: Option<String>,
    /// Integrity defects to inject (with `digests`), each once, on the first day in the last
    /// service folder of the first region's management tracker (see [`Defect`]).
    pub defects: Vec<Defect>,
}

/// An integrity defect the generator can inject, and what `verify` must say about it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Defect {
    /// A trace file changed after its digest was written (06:xx): `hash_mismatch`.
    TamperedTrace,
    /// A trace file a digest lists, deleted (06:xx): `not_found`.
    DeletedTrace,
    /// A trace file no digest lists (07:xx): `not_in_digest`.
    ExtraUnlistedTrace,
    /// The 09:00 digest deleted: the next digest names it (`not_found`), one hour's gap, and
    /// that hour's trace files are `not_in_digest`.
    DeletedDigest,
    /// The 12:00 and 13:00 digests deleted: only the second is named by the next digest
    /// (`not_found`); the gap is two hours long.
    TwoDeletedDigests,
    /// The 15:00 digest's signature metadata replaced: `signature_invalid`.
    ForgedSignature,
    /// The 18:00 digest stored under another key (`moved_` before its name): `moved`.
    MovedDigest,
    /// The 21:00 digest's gzip cut in half: `invalid_format`, its trace files `not_in_digest`.
    CorruptDigestGzip,
}

impl Defect {
    pub const ALL: [Defect; 8] = [
        Defect::TamperedTrace,
        Defect::DeletedTrace,
        Defect::ExtraUnlistedTrace,
        Defect::DeletedDigest,
        Defect::TwoDeletedDigests,
        Defect::ForgedSignature,
        Defect::MovedDigest,
        Defect::CorruptDigestGzip,
    ];
}

/// What happens to the digest of one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Normal,
    Deleted,
    Forged,
    Moved,
    Corrupt,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default(),
            days: 1,
            regions: vec!["eu-de".into()],
            trackers: vec!["system".into()],
            services: vec!["IAM".into(), "ECS".into()],
            files_per_service_per_day: 3,
            traces_per_file: 20,
            alarm_share: 0.15,
            allowed: vec!["10.0.0.0/8".into()],
            ipv6_share: 0.25,
            old_shape_share: 0.05,
            padded_folders: false,
            prefix: String::new(),
            edge_cases: false,
            digests: false,
            bucket: "cts-traces".into(),
            signing_key: None,
            defects: Vec::new(),
        }
    }
}

impl GenSpec {
    /// The spec of the checked-in `fixtures/bucket/` tree (`ctsgen --preset fixtures`): two
    /// days across a month boundary, two regions, the management tracker and one data tracker,
    /// every edge case and digests.
    pub fn fixtures() -> Self {
        Self {
            seed: 20260930,
            start: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default(),
            days: 2,
            regions: vec!["eu-de".into(), "eu-nl".into()],
            trackers: vec!["system".into(), "obs-data-events".into()],
            services: vec!["IAM".into(), "ECS".into(), "OBS".into()],
            files_per_service_per_day: 3,
            traces_per_file: 16,
            alarm_share: 0.15,
            allowed: vec![
                "10.0.0.0/8".into(),
                "192.168.1.1".into(),
                "2001:db8::/32".into(),
            ],
            ipv6_share: 0.25,
            old_shape_share: 0.1,
            padded_folders: false,
            prefix: String::new(),
            edge_cases: true,
            digests: true,
            bucket: "cts-fixtures".into(),
            // `ctsgen --preset fixtures --signing-key fixtures/TEST-ONLY-digest-signing-key.pem`:
            // the key is a file, not part of the library.
            signing_key: None,
            defects: Vec::new(),
        }
    }

    fn validate(&self) -> Result<Vec<IpNet>> {
        if self.days == 0 {
            bail!("days must be at least 1");
        }
        if self
            .start
            .checked_add_days(chrono::Days::new(u64::from(self.days)))
            .is_none()
        {
            bail!(
                "the window {} + {} days leaves the calendar",
                self.start,
                self.days
            );
        }
        for (what, names) in [
            ("region", &self.regions),
            ("tracker", &self.trackers),
            ("service", &self.services),
        ] {
            if names.is_empty() && what != "service" {
                bail!("at least one {what} is needed");
            }
            let mut seen = BTreeSet::new();
            for n in names {
                // A repeated name would draw the same random stream and write the same keys twice.
                if !seen.insert(n.to_ascii_uppercase()) {
                    bail!("{what} {n:?} is named twice");
                }
                if n.is_empty() || n.contains('/') || n == "." || n == ".." {
                    bail!("invalid {what} name {n:?}: must be a non-empty folder name without '/'");
                }
            }
        }
        if self.files_per_service_per_day > 86_400 {
            // Upload times are distinct seconds of the day.
            bail!("files_per_service_per_day must be at most 86400");
        }
        for (what, v) in [
            ("alarm_share", self.alarm_share),
            ("ipv6_share", self.ipv6_share),
            ("old_shape_share", self.old_shape_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{what} must be between 0 and 1, not {v}");
            }
        }
        if !self.prefix.is_empty()
            && (!self.prefix.ends_with('/')
                || self.prefix.starts_with('/')
                || self.prefix.contains("//"))
        {
            bail!(
                "prefix {:?} must be empty or like \"some/prefix/\" (no leading '/', one trailing '/')",
                self.prefix
            );
        }
        self.allowed
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_allowed(s))
            .collect()
    }
}

/// One entry of the allow-list: an address (a /32 or /128 net) or a CIDR range.
fn parse_allowed(s: &str) -> Result<IpNet> {
    let s = s.trim();
    if s.contains('/') {
        s.parse::<IpNet>()
            .with_context(|| format!("allow-list entry {s:?} is not a CIDR range"))
    } else {
        s.parse::<IpAddr>()
            .map(IpNet::from)
            .with_context(|| format!("allow-list entry {s:?} is not an IP address"))
    }
}

/// What a correct reader of the generated tree must find. Vectors are sorted by key (alarms by
/// key, then by their position in the file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Readable trace files (named like trace files and decodable), bad objects excluded.
    pub trace_files: Vec<String>,
    pub digest_files: Vec<String>,
    /// Traces in `trace_files`.
    pub traces: u64,
    pub expected_alarms: Vec<ExpectedAlarm>,
    /// Objects named like trace files that cannot be read: (key, what is wrong).
    pub bad_objects: Vec<(String, String)>,
    /// Objects under `CloudTraces/` that are not CTS files.
    pub unrelated_objects: Vec<String>,
    /// With digests on: for every trace file, bad object and digest (also the deleted ones the
    /// chain names), what `verify` must say about it: `valid`, `not_found`, `hash_mismatch`,
    /// `signature_invalid`, `moved`, `invalid_format` or `not_in_digest`.
    #[serde(default)]
    pub expected_integrity: Vec<(String, String)>,
    /// With digests on: the hours without a digest `verify` must report.
    #[serde(default)]
    pub expected_gaps: Vec<ExpectedGap>,
    /// Bytes written, all objects together.
    #[serde(default)]
    pub bytes: u64,
}

/// Consecutive hours of a chain without a digest, as `verify` reports them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedGap {
    pub region: String,
    pub tracker: String,
    pub service: String,
    /// RFC 3339 UTC, on the hour.
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedAlarm {
    pub key: String,
    pub trace_id: String,
    /// `trace_name` as written in the trace (`login`, `LOGOUT`, ...).
    pub action: String,
    /// `source_ip` as written: `Some("")` for an empty string, `None` for null or absent.
    pub source_ip: Option<String>,
    /// `unlisted_ip`, `missing_ip` or `invalid_ip`.
    pub reason: String,
}

/// One object to write.
#[derive(Debug, Clone, PartialEq)]
pub struct GenObject {
    pub key: String,
    pub body: Bytes,
    pub metadata: BTreeMap<String, String>,
}

/// Generates the tree described by `spec` into `store` (overwriting objects with the same keys)
/// and returns what a reader must find in it.
pub async fn generate(spec: &GenSpec, store: &dyn ObjectStore) -> Result<Manifest> {
    let mut generator = Generator::new(spec)?;
    // One group at a time: memory stays bounded for benchmark-sized trees.
    while let Some(batch) = generator.next_batch()? {
        stream::iter(batch.into_iter().map(|o| async move {
            store
                .put(&o.key, o.body, &o.metadata, PutMode::Overwrite)
                .await
                .with_context(|| format!("writing {} to {}", o.key, store.describe()))
        }))
        .buffer_unordered(8)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    }
    Ok(generator.finish())
}

/// The whole tree in memory, without a store: for unit tests and for comparing trees.
pub fn build(spec: &GenSpec) -> Result<(Vec<GenObject>, Manifest)> {
    let mut generator = Generator::new(spec)?;
    let mut all = Vec::new();
    while let Some(batch) = generator.next_batch()? {
        all.extend(batch);
    }
    Ok((all, generator.finish()))
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// (region, tracker, service) whose files one batch holds for one day.
#[derive(Debug, Clone)]
struct Group {
    region_index: usize,
    region: String,
    tracker_index: usize,
    tracker: String,
    service: String,
    day: NaiveDate,
    /// The group that also receives the edge-case objects.
    edge: bool,
    /// The group that receives the integrity defects.
    defects: bool,
}

/// The previous digest of a chain.
#[derive(Debug, Clone)]
struct ChainLink {
    object: String,
    md5_hex: String,
    signature: String,
    end_time: String,
}

/// How the digest lists a file.
#[derive(Debug, Clone)]
enum Listed {
    /// With the MD5 of the bytes written.
    Own,
    /// With another MD5: the object changed after the digest was written.
    Hash(String),
    /// Not at all.
    No,
}

#[derive(Debug)]
enum What {
    Trace {
        traces: u64,
        /// (position in the file, alarm without its key)
        alarms: Vec<(usize, ExpectedAlarm)>,
    },
    Bad(String),
    Unrelated,
}

#[derive(Debug)]
struct FileOut {
    key: String,
    upload: DateTime<Utc>,
    body: Vec<u8>,
    what: What,
    listed: Listed,
    /// `false` for a file its digest lists but that was deleted (never written).
    written: bool,
}

struct User {
    id: String,
    name: String,
    access_key_id: String,
    root: bool,
}

/// The account the traces belong to, shared by all files.
struct World {
    domain_id: String,
    domain_name: String,
    users: Vec<User>,
    buckets: Vec<String>,
    allowed: Vec<IpNet>,
}

struct Generator<'s> {
    spec: &'s GenSpec,
    world: World,
    groups: std::vec::IntoIter<Group>,
    chains: BTreeMap<(String, String, String), ChainLink>,
    /// Counts digest chains, to vary how the starting digest spells "no previous digest".
    chain_count: usize,
    signer: Option<PrivateKey>,
    man: Manifest,
    alarms: Vec<(String, usize, ExpectedAlarm)>,
}

/// A random stream of its own for each part of the tree (see the module comment).
fn sub_rng(seed: u64, label: &str) -> ChaCha8Rng {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    // Only called with non-empty constant tables or vectors checked to be non-empty.
    &items[rng.random_range(0..items.len())]
}

fn hex_id(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill(&mut b[..]);
    hex::encode(b)
}

fn uuid4(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b[..]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_chars(rng: &mut ChaCha8Rng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(*pick(rng, alphabet))).collect()
}

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    // GzEncoder writes mtime 0 and no file name: the bytes depend on the data only.
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// `2026/9/30/` or `2026/09/30/`.
fn day_folder(day: NaiveDate, padded: bool) -> String {
    if padded {
        format!("{}/{:02}/{:02}/", day.year(), day.month(), day.day())
    } else {
        format!("{}/{}/{}/", day.year(), day.month(), day.day())
    }
}

/// `2017-03-28T02-09-17Z`, the timestamp form of CTS file names and digests.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// `2016/12/08 11:07:28 GMT+08:00`, the time form of old traces.
fn old_time(ms: i64) -> String {
    match (
        FixedOffset::east_opt(8 * 3600),
        DateTime::from_timestamp_millis(ms),
    ) {
        (Some(tz), Some(t)) => format!(
            "{} GMT+08:00",
            t.with_timezone(&tz).format("%Y/%m/%d %H:%M:%S")
        ),
        _ => String::new(),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0))
}

/// How a login's `source_ip` is written.
#[derive(Debug, Clone)]
enum SourceIp {
    Addr(String),
    Empty,
    Null,
    Absent,
}

impl SourceIp {
    fn as_manifest(&self) -> Option<String> {
        match self {
            SourceIp::Addr(s) => Some(s.clone()),
            SourceIp::Empty => Some(String::new()),
            SourceIp::Null | SourceIp::Absent => None,
        }
    }
}

/// Where the traces of one file come from.
struct Ctx<'a> {
    region: &'a str,
    tracker: &'a str,
    /// The service folder name, as configured.
    service: &'a str,
    project_id: String,
}

/// What a (tracker, service) records.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Traffic {
    Iam,
    Ecs,
    ObsManagement,
    ObsData,
    Other,
}

const IAM_OPS: &[(&str, &str)] = &[
    ("createUser", "user"),
    ("updateUser", "user"),
    ("deleteUser", "user"),
    ("addUserToGroup", "user"),
    ("removeUserFromGroup", "user"),
    ("updateLoginProtect", "user"),
    ("createCredential", "credential"),
    ("deleteCredential", "credential"),
    ("createAgency", "agency"),
    ("createPolicy", "policy"),
    ("createProject", "project"),
    ("updateGroup", "group"),
];
const ECS_OPS: &[&str] = &[
    "createServer",
    "deleteServer",
    "startServer",
    "stopServer",
    "rebootServer",
    "resizeServer",
    "attachVolume",
    "detachVolume",
    "updateServer",
];
const ECS_SYSTEM_OPS: &[&str] = &[
    "autoRecoverServer",
    "updateServerStatus",
    "deleteServerByAutoScaling",
];
const OBS_OPS: &[&str] = &[
    "createBucket",
    "deleteBucket",
    "setBucketPolicy",
    "deleteBucketPolicy",
    "setBucketAcl",
    "setBucketLifecycle",
    "setBucketEncryption",
    "setBucketVersioning",
];
const OBS_DATA_OPS: &[(&str, bool)] = &[
    ("PutObject", false),
    ("GetObject", true),
    ("GetObject", true),
    ("HeadObject", true),
    ("DeleteObject", false),
    ("ListObjects", true),
    ("CopyObject", false),
];
const USER_NAMES: &[&str] = &[
    "alice",
    "bob.ops",
    "carol",
    "dave-ci",
    "eve.admin",
    "frank",
    "grace.h",
    "heidi-sre",
];
const DOMAIN_NAMES: &[&str] = &["acme-gmbh", "contoso-eu", "example-org", "fabrikam-nl"];
const BUCKET_NAMES: &[&str] = &["invoices-prod", "backups-eu", "web-assets", "ml-datasets"];
const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:142.0) Gecko/20100101 Firefox/142.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
];
const SDK_AGENTS: &[&str] = &[
    "huaweicloud-sdk-python/3.1.150",
    "terraform-provider-opentelekomcloud/1.36.40",
    "huaweicloud-sdk-go-v3/0.1.160",
    "obsutil/5.5.12",
];
const LOCATIONS: &[&str] = &[
    "DE|Hessen|Frankfurt am Main",
    "NL|Noord-Holland|Amsterdam",
    "DE|Berlin|Berlin",
    "US|Virginia|Ashburn",
    "SG|Singapore|Singapore",
];
/// Realistic global unicast /16s for unlisted IPv6 addresses (2001::/16 is left out: it holds
/// the documentation and Teredo ranges).
const V6_FIRST_HEXTETS: &[u16] = &[0x2003, 0x2a01, 0x2a02, 0x2600, 0x2406, 0x2804, 0x2c0f];

fn cloud_domain(region: &str) -> &'static str {
    if region.starts_with("eu-de") || region.starts_with("eu-nl") || region.starts_with("eu-ch2") {
        "otc.t-systems.com"
    } else {
        "myhuaweicloud.com"
    }
}

impl<'s> Generator<'s> {
    fn new(spec: &'s GenSpec) -> Result<Self> {
        let allowed = spec.validate()?;
        let signer = spec
            .signing_key
            .as_deref()
            .map(PrivateKey::from_pem)
            .transpose()
            .context("the digest signing key")?;
        let mut rng = sub_rng(spec.seed, "world");
        let domain_name = pick(&mut rng, DOMAIN_NAMES).to_string();
        let domain_id = hex_id(&mut rng, 16);
        let mut users: Vec<User> = USER_NAMES
            .iter()
            .map(|n| User {
                id: hex_id(&mut rng, 16),
                name: (*n).to_owned(),
                access_key_id: random_chars(&mut rng, UPPER_ALNUM, 20),
                root: false,
            })
            .collect();
        users.push(User {
            id: hex_id(&mut rng, 16),
            name: domain_name.clone(),
            access_key_id: random_chars(&mut rng, UPPER_ALNUM, 20),
            root: true,
        });
        let world = World {
            domain_id,
            domain_name,
            users,
            buckets: BUCKET_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            allowed,
        };

        let edge_tracker = spec
            .trackers
            .iter()
            .position(|t| t == "system")
            .unwrap_or(0);
        let mut groups = Vec::new();
        for (ri, region) in spec.regions.iter().enumerate() {
            for (ti, tracker) in spec.trackers.iter().enumerate() {
                let mut services: Vec<String> = if tracker == "system" {
                    spec.services.clone()
                } else {
                    vec!["OBS".to_owned()]
                };
                let edge_here = spec.edge_cases && ri == 0 && ti == edge_tracker;
                let iam = services.iter().position(|s| s.eq_ignore_ascii_case("IAM"));
                let iam = match (edge_here, iam) {
                    (true, None) => {
                        services.push("IAM".to_owned());
                        Some(services.len() - 1)
                    }
                    (_, iam) => iam,
                };
                for (si, service) in services.iter().enumerate() {
                    for d in 0..spec.days {
                        let day = spec
                            .start
                            .checked_add_days(chrono::Days::new(u64::from(d)))
                            .context("day outside the calendar")?;
                        groups.push(Group {
                            region_index: ri,
                            region: region.clone(),
                            tracker_index: ti,
                            tracker: tracker.clone(),
                            service: service.clone(),
                            day,
                            edge: edge_here && d == 0 && Some(si) == iam,
                            defects: !spec.defects.is_empty()
                                && spec.digests
                                && ri == 0
                                && ti == edge_tracker
                                && d == 0
                                && si + 1 == services.len(),
                        });
                    }
                }
            }
        }
        Ok(Self {
            spec,
            world,
            groups: groups.into_iter(),
            chains: BTreeMap::new(),
            chain_count: 0,
            signer,
            man: Manifest::default(),
            alarms: Vec::new(),
        })
    }

    /// The objects of the next group, or `None` when all are done.
    fn next_batch(&mut self) -> Result<Option<Vec<GenObject>>> {
        let Some(g) = self.groups.next() else {
            return Ok(None);
        };
        self.group(&g).map(Some)
    }

    fn finish(mut self) -> Manifest {
        let m = &mut self.man;
        m.trace_files.sort();
        m.digest_files.sort();
        m.bad_objects.sort();
        m.unrelated_objects.sort();
        m.expected_integrity.sort();
        m.expected_gaps.sort();
        self.alarms.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        m.expected_alarms = self.alarms.into_iter().map(|(_, _, a)| a).collect();
        self.man
    }

    fn traffic(tracker: &str, service: &str) -> Traffic {
        if tracker != "system" {
            return Traffic::ObsData;
        }
        match service.to_ascii_uppercase().as_str() {
            "IAM" => Traffic::Iam,
            "ECS" => Traffic::Ecs,
            "OBS" => Traffic::ObsManagement,
            _ => Traffic::Other,
        }
    }

    /// The configured file prefix of a tracker: with `_` for some, empty for others.
    fn file_prefix(g: &Group) -> &'static str {
        if (g.region_index + g.tracker_index).is_multiple_of(2) {
            "audit_trail"
        } else {
            ""
        }
    }

    /// `<region>` for the management tracker, `<region>_<project>` for data trackers (SPEC §1:
    /// "region or region-project").
    fn region_part(g: &Group) -> String {
        if g.tracker == "system" {
            g.region.clone()
        } else {
            format!("{}_demo", g.region)
        }
    }

    fn folder(&self, g: &Group, padded: bool) -> String {
        format!(
            "{}CloudTraces/{}/{}{}/",
            self.spec.prefix,
            g.region,
            day_folder(g.day, padded),
            g.tracker
        )
    }

    fn trace_key(
        &self,
        g: &Group,
        padded: bool,
        upload: DateTime<Utc>,
        rng: &mut ChaCha8Rng,
    ) -> String {
        let fp = Self::file_prefix(g);
        let sep = if fp.is_empty() { "" } else { "_" };
        format!(
            "{}{}/{fp}{sep}CloudTrace_{}_{}_{}.json.gz",
            self.folder(g, padded),
            g.service,
            Self::region_part(g),
            stamp(upload),
            random_chars(rng, LOWER_ALNUM, 10)
        )
    }

    fn digest_key(&self, g: &Group, end: DateTime<Utc>) -> String {
        let fp = Self::file_prefix(g);
        let sep = if fp.is_empty() { "" } else { "_" };
        format!(
            "{}Digest/{}/{fp}{sep}CloudTrace-Digest_{}_{}.json.gz",
            self.folder(g, self.spec.padded_folders),
            g.service,
            Self::region_part(g),
            stamp(end)
        )
    }

    fn project_id(&self, region: &str) -> String {
        hex_id(
            &mut sub_rng(self.spec.seed, &format!("project/{region}")),
            16,
        )
    }

    fn group(&mut self, g: &Group) -> Result<Vec<GenObject>> {
        let spec = self.spec;
        let mut rng = sub_rng(
            spec.seed,
            &format!("files/{}/{}/{}/{}", g.region, g.tracker, g.service, g.day),
        );
        let ctx = Ctx {
            region: &g.region,
            tracker: &g.tracker,
            service: &g.service,
            project_id: self.project_id(&g.region),
        };
        let traffic = Self::traffic(&g.tracker, &g.service);
        let day_start = g.day.and_hms_opt(0, 0, 0).context("midnight")?.and_utc();

        let mut seconds = BTreeSet::new();
        while seconds.len() < spec.files_per_service_per_day as usize {
            seconds.insert(rng.random_range(0..86_400i64));
        }
        let mut files = Vec::new();
        for s in seconds {
            let upload = day_start + Duration::seconds(s);
            files.push(self.ordinary_file(g, &ctx, traffic, &mut rng, upload)?);
        }
        if g.edge {
            files.extend(self.edge_files(g, &ctx, day_start)?);
        }
        if g.defects {
            files.extend(self.defect_files(g, &ctx, traffic, day_start)?);
        }
        files.sort_by(|a, b| (a.upload, &a.key).cmp(&(b.upload, &b.key)));

        let fates: Vec<Fate> = (0..24).map(|h| self.fate(g, h)).collect();
        let mut out = Vec::new();
        for f in &files {
            if f.written {
                match &f.what {
                    What::Trace { traces, alarms } => {
                        self.man.trace_files.push(f.key.clone());
                        self.man.traces += traces;
                        for (pos, a) in alarms {
                            let mut a = a.clone();
                            a.key = f.key.clone();
                            self.alarms.push((f.key.clone(), *pos, a));
                        }
                    }
                    What::Bad(why) => self.man.bad_objects.push((f.key.clone(), why.clone())),
                    What::Unrelated => self.man.unrelated_objects.push(f.key.clone()),
                }
            }
            if spec.digests && !matches!(f.what, What::Unrelated) {
                // A file whose digest is gone or unreadable is listed by no digest `verify`
                // can read.
                let digest_lost = matches!(
                    fates[f.upload.hour() as usize],
                    Fate::Deleted | Fate::Corrupt
                );
                let outcome = match (&f.listed, f.written) {
                    (Listed::No, _) => "not_in_digest",
                    (_, true) if digest_lost => "not_in_digest",
                    // Listed by no readable digest and absent: nothing can report it.
                    (_, false) if digest_lost => continue,
                    (_, false) => "not_found",
                    (Listed::Own, true) => "valid",
                    (Listed::Hash(_), true) => "hash_mismatch",
                };
                self.man
                    .expected_integrity
                    .push((f.key.clone(), outcome.to_owned()));
            }
        }
        if spec.digests {
            out.extend(self.digests(g, &ctx, &files, &fates)?);
        }
        for f in files.into_iter().filter(|f| f.written) {
            self.man.bytes += f.body.len() as u64;
            out.push(GenObject {
                key: f.key,
                body: Bytes::from(f.body),
                metadata: BTreeMap::new(),
            });
        }
        Ok(out)
    }

    /// An ordinary trace file uploaded at `upload`.
    fn ordinary_file(
        &self,
        g: &Group,
        ctx: &Ctx,
        traffic: Traffic,
        rng: &mut ChaCha8Rng,
        upload: DateTime<Utc>,
    ) -> Result<FileOut> {
        let mut traces = Vec::new();
        let mut alarms = Vec::new();
        for (pos, t) in trace_times(rng, upload, self.spec.traces_per_file)
            .into_iter()
            .enumerate()
        {
            let (trace, alarm) = self.trace(rng, ctx, traffic, t)?;
            if let Some(a) = alarm {
                alarms.push((pos, a));
            }
            traces.push(trace);
        }
        Ok(FileOut {
            key: self.trace_key(g, self.spec.padded_folders, upload, rng),
            upload,
            body: gzip(&serde_json::to_vec(&traces)?)?,
            what: What::Trace {
                traces: traces.len() as u64,
                alarms,
            },
            listed: Listed::Own,
            written: true,
        })
    }

    /// The trace-file defects of [`Defect`], at fixed hours of the day, drawn from their own
    /// random stream so the other files stay as they were.
    fn defect_files(
        &self,
        g: &Group,
        ctx: &Ctx,
        traffic: Traffic,
        day_start: DateTime<Utc>,
    ) -> Result<Vec<FileOut>> {
        let mut rng = sub_rng(
            self.spec.seed,
            &format!("defects/{}/{}/{}", g.region, g.tracker, g.day),
        );
        let rng = &mut rng;
        let at = |rng: &mut ChaCha8Rng, hour: i64, k: i64| {
            day_start + Duration::seconds(hour * 3600 + k * 900 + rng.random_range(0..600))
        };
        let has = |d: Defect| self.spec.defects.contains(&d);
        let mut out = Vec::new();
        if has(Defect::TamperedTrace) {
            let up = at(rng, 6, 0);
            let mut f = self.ordinary_file(g, ctx, traffic, rng, up)?;
            let original = md5_hex(&f.body);
            // Change the gzip header's modification time (bytes 4..8): the stored bytes differ
            // from what the digest recorded while the traces read the same, so the alarms a
            // reader must find do not depend on this defect.
            if f.body.len() >= 8 {
                f.body[4..8].copy_from_slice(&[0x5a, 0x5a, 0x5a, 0x5a]);
            }
            f.listed = Listed::Hash(original);
            out.push(f);
        }
        if has(Defect::DeletedTrace) {
            let up = at(rng, 6, 2);
            let mut f = self.ordinary_file(g, ctx, traffic, rng, up)?;
            f.written = false;
            out.push(f);
        }
        if has(Defect::ExtraUnlistedTrace) {
            let up = at(rng, 7, 0);
            let mut f = self.ordinary_file(g, ctx, traffic, rng, up)?;
            f.listed = Listed::No;
            out.push(f);
        }
        Ok(out)
    }

    /// What happens to the digest of `hour` in group `g`.
    fn fate(&self, g: &Group, hour: u32) -> Fate {
        if !g.defects {
            return Fate::Normal;
        }
        let has = |d: Defect| self.spec.defects.contains(&d);
        match hour {
            9 if has(Defect::DeletedDigest) => Fate::Deleted,
            12 | 13 if has(Defect::TwoDeletedDigests) => Fate::Deleted,
            15 if has(Defect::ForgedSignature) => Fate::Forged,
            18 if has(Defect::MovedDigest) => Fate::Moved,
            21 if has(Defect::CorruptDigestGzip) => Fate::Corrupt,
            _ => Fate::Normal,
        }
    }

    /// The metadata that carries a digest's signature, and the signature the next digest
    /// records as `previous_digest_signature` (empty when unsigned).
    fn sign(&self, message: &str) -> (BTreeMap<String, String>, String) {
        let Some(key) = &self.signer else {
            return (BTreeMap::new(), String::new());
        };
        let sig = key.sign_hex(message.as_bytes());
        let meta = BTreeMap::from([
            (META_SIGNATURE.to_owned(), sig.clone()),
            (
                META_SIGNATURE_ALGORITHM.to_owned(),
                SIGNATURE_ALGORITHM.to_owned(),
            ),
        ]);
        (meta, sig)
    }

    /// One digest per hour of the day, also for hours without trace files (as CTS does),
    /// chained to the previous digest of the same (region, tracker, service). A digest covers
    /// (previous digest's end, HH:59:59]; the first of a chain [HH:00:00, HH:59:59]. Each digest
    /// sits in the day folder of its hour. `fates` injects the digest defects.
    fn digests(
        &mut self,
        g: &Group,
        ctx: &Ctx,
        files: &[FileOut],
        fates: &[Fate],
    ) -> Result<Vec<GenObject>> {
        let mut hours: BTreeMap<u32, Vec<&FileOut>> = (0..24).map(|h| (h, Vec::new())).collect();
        for f in files {
            let listed = !matches!(f.listed, Listed::No) && !matches!(f.what, What::Unrelated);
            if listed {
                hours.entry(f.upload.hour()).or_default().push(f);
            }
        }
        let chain_key = (g.region.clone(), g.tracker.clone(), g.service.clone());
        let signed = self.signer.is_some();
        let mut out = Vec::new();
        let mut gap: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        for (hour, listed) in hours {
            let start = g.day.and_hms_opt(hour, 0, 0).context("hour")?.and_utc();
            let end = start + Duration::seconds(3599);
            let key = self.digest_key(g, end);
            let log_files: Vec<Value> = listed
                .iter()
                .map(|f| {
                    let hash = match &f.listed {
                        Listed::Hash(h) => h.clone(),
                        _ => md5_hex(&f.body),
                    };
                    json!({
                        "bucket": self.spec.bucket,
                        "object": f.key,
                        "log_hash_value": hash,
                        "log_hash_algorithm": "MD5",
                    })
                })
                .collect();
            let mut doc = Map::new();
            doc.insert("project_id".into(), json!(ctx.project_id));
            let prev = self.chains.get(&chain_key).cloned();
            let start_time = prev
                .as_ref()
                .map(|p| p.end_time.clone())
                .unwrap_or_else(|| stamp(start));
            doc.insert("digest_start_time".into(), json!(start_time));
            doc.insert("digest_end_time".into(), json!(stamp(end)));
            doc.insert("digest_bucket".into(), json!(self.spec.bucket));
            doc.insert("digest_object".into(), json!(key));
            doc.insert("digest_signature_algorithm".into(), json!("SHA256withRSA"));
            doc.insert("digest_end".into(), json!(false));
            doc.insert("previous_digest_end".into(), json!(false));
            match &prev {
                Some(p) => {
                    doc.insert("previous_digest_bucket".into(), json!(self.spec.bucket));
                    doc.insert("previous_digest_object".into(), json!(p.object));
                    doc.insert("previous_digest_hash_value".into(), json!(p.md5_hex));
                    doc.insert("previous_digest_hash_algorithm".into(), json!("MD5"));
                    doc.insert("previous_digest_signature".into(), json!(p.signature));
                }
                None => {
                    // SPEC §4: "" or null or absent in the starting digest; chains take turns.
                    let empty = match self.chain_count % 3 {
                        0 => Some(json!("")),
                        1 => Some(Value::Null),
                        _ => None,
                    };
                    self.chain_count += 1;
                    if let Some(empty) = empty {
                        for f in [
                            "previous_digest_bucket",
                            "previous_digest_object",
                            "previous_digest_hash_value",
                            "previous_digest_hash_algorithm",
                            "previous_digest_signature",
                        ] {
                            doc.insert(f.into(), empty.clone());
                        }
                    }
                }
            }
            doc.insert("log_files".into(), Value::Array(log_files));
            let mut body = gzip(&serde_json::to_vec(&doc)?)?;
            let md5 = md5_hex(&body);
            let prev_sig = prev.as_ref().map(|p| p.signature.as_str()).unwrap_or("");
            let message = signed_message(&stamp(end), &key, &md5, Some(prev_sig));
            let (mut metadata, signature) = self.sign(&message);
            // The chain records what CTS wrote, before any defect.
            self.chains.insert(
                chain_key.clone(),
                ChainLink {
                    object: key.clone(),
                    md5_hex: md5,
                    signature,
                    end_time: stamp(end),
                },
            );
            let fate = fates.get(hour as usize).copied().unwrap_or(Fate::Normal);
            let unsigned = if signed { "valid" } else { "signature_invalid" };
            let (key, expected) = match fate {
                Fate::Normal => (key, unsigned),
                Fate::Deleted => {
                    gap = Some((gap.map_or(start, |g| g.0), start + Duration::hours(1)));
                    // Only the digest right before a surviving one is named by the chain.
                    let next_deleted = fates.get(hour as usize + 1) == Some(&Fate::Deleted);
                    if !next_deleted {
                        self.man
                            .expected_integrity
                            .push((key, "not_found".to_owned()));
                    }
                    continue;
                }
                Fate::Forged => {
                    if let Some(k) = &self.signer {
                        let forged = k.sign_hex(format!("forged {message}").as_bytes());
                        metadata.insert(META_SIGNATURE.to_owned(), forged);
                    }
                    (key, "signature_invalid")
                }
                Fate::Moved => {
                    let (dir, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
                    (
                        format!("{dir}/moved_{name}"),
                        if signed { "moved" } else { unsigned },
                    )
                }
                Fate::Corrupt => {
                    body.truncate(body.len() / 2);
                    (key, "invalid_format")
                }
            };
            if let Some((from, to)) = gap.take() {
                self.man.expected_gaps.push(ExpectedGap {
                    region: g.region.clone(),
                    tracker: g.tracker.clone(),
                    service: g.service.clone(),
                    from: rfc3339(from),
                    to: rfc3339(to),
                });
            }
            self.man
                .expected_integrity
                .push((key.clone(), expected.to_owned()));
            self.man.digest_files.push(key.clone());
            self.man.bytes += body.len() as u64;
            out.push(GenObject {
                key,
                body: Bytes::from(body),
                metadata,
            });
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Addresses.

    fn is_allowed(&self, ip: IpAddr) -> bool {
        let hit = |ip: IpAddr| self.world.allowed.iter().any(|n| n.contains(&ip));
        // An IPv4-mapped IPv6 address counts as its IPv4 address, and a careful reader might
        // also try the IPv6 form: refuse both when choosing an unlisted address.
        match ip {
            IpAddr::V6(v6) => hit(ip) || v6.to_ipv4_mapped().is_some_and(|v4| hit(IpAddr::V4(v4))),
            IpAddr::V4(_) => hit(ip),
        }
    }

    fn unlisted_v4(&self, rng: &mut ChaCha8Rng) -> Result<Ipv4Addr> {
        for _ in 0..10_000 {
            let ip = Ipv4Addr::from(rng.random::<u32>());
            if is_public_v4(ip) && !self.is_allowed(IpAddr::V4(ip)) {
                return Ok(ip);
            }
        }
        bail!("the allow-list covers (almost) every public IPv4 address: cannot generate unlisted logins")
    }

    fn unlisted_v6(&self, rng: &mut ChaCha8Rng) -> Result<Ipv6Addr> {
        for _ in 0..10_000 {
            let first = u128::from(*pick(rng, V6_FIRST_HEXTETS)) << 112;
            let ip = Ipv6Addr::from(first | (rng.random::<u128>() >> 16));
            if !self.is_allowed(IpAddr::V6(ip)) {
                return Ok(ip);
            }
        }
        bail!("the allow-list covers the public IPv6 ranges: cannot generate unlisted logins")
    }

    /// An address inside `net`, avoiding the network and broadcast addresses where there are
    /// others.
    fn inside(rng: &mut ChaCha8Rng, net: &IpNet) -> IpAddr {
        match net {
            IpNet::V4(n) => {
                let host_bits = 32 - u32::from(n.prefix_len());
                let base = u32::from(n.network());
                if host_bits < 2 {
                    let span = 1u32 << host_bits;
                    return IpAddr::V4(Ipv4Addr::from(base + rng.random_range(0..span)));
                }
                let size = 1u64 << host_bits;
                let offset = rng.random_range(1..size - 1) as u32;
                IpAddr::V4(Ipv4Addr::from(base + offset))
            }
            IpNet::V6(n) => {
                let host_bits = 128 - u32::from(n.prefix_len());
                let base = u128::from(n.network());
                if host_bits == 0 {
                    return IpAddr::V6(n.network());
                }
                let mask = if host_bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                let offset = (rng.random::<u128>() & mask).max(1);
                IpAddr::V6(Ipv6Addr::from(base | offset))
            }
        }
    }

    fn allowed_ip(&self, rng: &mut ChaCha8Rng) -> Option<IpAddr> {
        if self.world.allowed.is_empty() {
            return None;
        }
        let net = pick(rng, &self.world.allowed);
        Some(Self::inside(rng, net))
    }

    fn allowed_v4(&self, rng: &mut ChaCha8Rng) -> Option<Ipv4Addr> {
        let v4: Vec<&IpNet> = self
            .world
            .allowed
            .iter()
            .filter(|n| matches!(n, IpNet::V4(_)))
            .collect();
        if v4.is_empty() {
            return None;
        }
        let net = *pick(rng, &v4);
        match Self::inside(rng, net) {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        }
    }

    fn unlisted_ip(&self, rng: &mut ChaCha8Rng) -> Result<String> {
        Ok(if rng.random_bool(0.05) {
            format!("::ffff:{}", self.unlisted_v4(rng)?)
        } else if rng.random_bool(self.spec.ipv6_share) {
            self.unlisted_v6(rng)?.to_string()
        } else {
            self.unlisted_v4(rng)?.to_string()
        })
    }

    /// The address of an ordinary login: from the allow-list, or with `alarm_share` from outside.
    fn login_ip(&self, rng: &mut ChaCha8Rng) -> Result<String> {
        let unlisted = rng.random_bool(self.spec.alarm_share);
        match self.allowed_ip(rng) {
            Some(ip) if !unlisted => Ok(match ip {
                // A few logins arrive as IPv4-mapped IPv6 of an allowed address: no alarm.
                IpAddr::V4(v4) if rng.random_bool(0.05) => format!("::ffff:{v4}"),
                ip => ip.to_string(),
            }),
            _ => self.unlisted_ip(rng),
        }
    }

    /// The caller address of a non-login call: office or anywhere, never an alarm.
    fn caller_ip(&self, rng: &mut ChaCha8Rng) -> Result<String> {
        match self.allowed_ip(rng) {
            Some(ip) if rng.random_bool(0.6) => Ok(ip.to_string()),
            _ => Ok(self.unlisted_v4(rng)?.to_string()),
        }
    }

    /// Why a login/logout with this address is an alarm, or `None`. Decided from what is
    /// written, so the manifest holds even when a chosen address happens to be allowed.
    fn alarm_reason(&self, ip: &SourceIp) -> Option<&'static str> {
        match ip {
            SourceIp::Empty | SourceIp::Null | SourceIp::Absent => Some("missing_ip"),
            SourceIp::Addr(s) => match s.trim().parse::<IpAddr>() {
                Err(_) => Some("invalid_ip"),
                Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                    let v4 = v6.to_ipv4_mapped().map(IpAddr::V4);
                    match v4 {
                        Some(v4) if self.world.allowed.iter().any(|n| n.contains(&v4)) => None,
                        _ if self
                            .world
                            .allowed
                            .iter()
                            .any(|n| n.contains(&IpAddr::V6(v6))) =>
                        {
                            None
                        }
                        _ => Some("unlisted_ip"),
                    }
                }
                Ok(ip) => {
                    if self.world.allowed.iter().any(|n| n.contains(&ip)) {
                        None
                    } else {
                        Some("unlisted_ip")
                    }
                }
            },
        }
    }

    // -----------------------------------------------------------------------------------------
    // Traces.

    /// The fields every trace has.
    #[allow(clippy::too_many_arguments)]
    fn base(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        time_ms: i64,
        trace_name: &str,
        trace_type: &str,
        rating: &str,
        service_type: &str,
        resource_type: &str,
        source_ip: &SourceIp,
        user: &User,
    ) -> Map<String, Value> {
        let mut t = Map::new();
        t.insert("trace_id".into(), json!(uuid4(rng)));
        t.insert("trace_name".into(), json!(trace_name));
        t.insert("trace_rating".into(), json!(rating));
        t.insert("trace_type".into(), json!(trace_type));
        match source_ip {
            SourceIp::Addr(s) => {
                t.insert("source_ip".into(), json!(s));
            }
            SourceIp::Empty => {
                t.insert("source_ip".into(), json!(""));
            }
            SourceIp::Null => {
                t.insert("source_ip".into(), Value::Null);
            }
            SourceIp::Absent => {}
        }
        t.insert("time".into(), json!(time_ms));
        t.insert(
            "record_time".into(),
            json!(time_ms + rng.random_range(80..3_000)),
        );
        t.insert("service_type".into(), json!(service_type));
        t.insert("resource_type".into(), json!(resource_type));
        t.insert(
            "user".into(),
            json!({
                "id": user.id,
                "name": user.name,
                "domain": {"id": self.world.domain_id, "name": self.world.domain_name},
                "type": if user.root { "Domain" } else { "User" },
                "principal_urn": format!("iam::{}:user:{}", self.world.domain_id, user.name),
                "account_id": self.world.domain_id,
                "access_key_id": user.access_key_id,
                "principal_is_root_user": if user.root { "true" } else { "false" },
            }),
        );
        t.insert("domain_id".into(), json!(self.world.domain_id));
        if !service_type.eq_ignore_ascii_case("IAM") {
            t.insert("project_id".into(), json!(ctx.project_id));
        }
        t.insert("tracker_name".into(), json!(ctx.tracker));
        t.insert("request_id".into(), json!(hex_id(rng, 16)));
        t.insert("enterprise_project_id".into(), json!("0"));
        t
    }

    /// `request`/`response` bodies: an object, the same object as a JSON string (CTS does
    /// both), or nothing.
    fn body_field(rng: &mut ChaCha8Rng, t: &mut Map<String, Value>, name: &str, v: Value) {
        match rng.random_range(0..10) {
            0..=3 => {
                t.insert(name.into(), v);
            }
            4..=7 => {
                t.insert(name.into(), json!(v.to_string()));
            }
            _ => {}
        }
    }

    /// HTTP status, as a string mostly and as a number sometimes.
    fn code(rng: &mut ChaCha8Rng, status: u16) -> Value {
        if rng.random_bool(0.8) {
            json!(status.to_string())
        } else {
            json!(status)
        }
    }

    /// The old trace shape: `user` a plain name, times as `GMT+08:00` strings.
    fn old_shape(t: &mut Map<String, Value>) {
        let name = t
            .get("user")
            .and_then(|u| u.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        t.insert("user".into(), json!(name));
        for f in ["time", "record_time"] {
            if let Some(ms) = t.get(f).and_then(Value::as_i64) {
                t.insert(f.into(), json!(old_time(ms)));
            }
        }
        t.remove("enterprise_project_id");
    }

    fn maybe_old(&self, rng: &mut ChaCha8Rng, mut t: Map<String, Value>) -> Value {
        if rng.random_bool(self.spec.old_shape_share) {
            Self::old_shape(&mut t);
        }
        Value::Object(t)
    }

    fn user<'w>(&'w self, rng: &mut ChaCha8Rng) -> &'w User {
        pick(rng, &self.world.users)
    }

    /// A login, logout or failed login from `ip`, with the alarm it must raise.
    fn login(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        time_ms: i64,
        action: &str,
        ip: SourceIp,
    ) -> (Map<String, Value>, Option<ExpectedAlarm>) {
        let user = self.user(rng);
        let failed = action.eq_ignore_ascii_case("loginFailed");
        let rating = if failed { "warning" } else { "normal" };
        let mut t = self.base(
            rng,
            ctx,
            time_ms,
            action,
            "ConsoleAction",
            rating,
            "IAM",
            "user",
            &ip,
            user,
        );
        t.insert("resource_name".into(), json!(user.name));
        t.insert("resource_id".into(), json!(user.id));
        t.insert(
            "code".into(),
            Self::code(rng, if failed { 401 } else { 200 }),
        );
        t.insert("api_version".into(), json!("3.0"));
        t.insert("event_type".into(), json!("global"));
        t.insert("location_info".into(), json!(pick(rng, LOCATIONS)));
        t.insert("user_agent".into(), json!(pick(rng, BROWSERS)));
        if action.eq_ignore_ascii_case("login") || failed {
            let req = json!({"login_type": pick(rng, &["password", "sso", "mfa"]), "user_name": user.name});
            Self::body_field(rng, &mut t, "request", req);
        }
        let resp = if failed {
            json!({"error_code": "IAM.0105", "error_msg": "The username or password is incorrect."})
        } else {
            json!({"result": "success"})
        };
        Self::body_field(rng, &mut t, "response", resp);
        if failed {
            t.insert("message".into(), json!("{\"reason\":\"password error\"}"));
        }

        let is_rule_action =
            action.eq_ignore_ascii_case("login") || action.eq_ignore_ascii_case("logout");
        let alarm = match (is_rule_action, self.alarm_reason(&ip)) {
            (true, Some(reason)) => Some(ExpectedAlarm {
                key: String::new(),
                trace_id: t
                    .get("trace_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                action: action.to_owned(),
                source_ip: ip.as_manifest(),
                reason: reason.to_owned(),
            }),
            _ => None,
        };
        (t, alarm)
    }

    /// An IAM management call (never an alarm, whatever its address).
    fn iam_op(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        time_ms: i64,
        ip: SourceIp,
    ) -> Map<String, Value> {
        let user = self.user(rng);
        let (op, rtype) = *pick(rng, IAM_OPS);
        let console = rng.random_bool(0.5);
        let ttype = if console { "ConsoleAction" } else { "ApiCall" };
        let mut t = self.base(
            rng, ctx, time_ms, op, ttype, "normal", "IAM", rtype, &ip, user,
        );
        let target = pick(rng, USER_NAMES);
        t.insert("resource_name".into(), json!(target));
        t.insert("resource_id".into(), json!(hex_id(rng, 16)));
        let status = if rng.random_bool(0.9) { 200 } else { 403 };
        if status != 200 {
            t.insert("trace_rating".into(), json!("warning"));
        }
        t.insert("code".into(), Self::code(rng, status));
        t.insert("api_version".into(), json!("3.0"));
        t.insert("event_type".into(), json!("global"));
        t.insert(
            "user_agent".into(),
            json!(if console {
                pick(rng, BROWSERS)
            } else {
                pick(rng, SDK_AGENTS)
            }),
        );
        t.insert(
            "endpoint".into(),
            json!(format!(
                "https://iam.{}.{}",
                ctx.region,
                cloud_domain(ctx.region)
            )),
        );
        Self::body_field(rng, &mut t, "request", json!({ rtype: {"name": target} }));
        let resp = json!({ rtype: {"id": hex_id(rng, 16)} });
        Self::body_field(rng, &mut t, "response", resp);
        t
    }

    /// One trace of an ordinary file, with the alarm it must raise.
    fn trace(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        traffic: Traffic,
        time_ms: i64,
    ) -> Result<(Value, Option<ExpectedAlarm>)> {
        let (t, alarm) = match traffic {
            Traffic::Iam if rng.random_bool(0.55) => {
                let r = rng.random_range(0..100);
                let base = match r {
                    0..=44 => "login",
                    45..=79 => "logout",
                    _ => "loginFailed",
                };
                // CTS and its clones do not agree on case: compare case-insensitively.
                let action = match (base, rng.random_range(0..20)) {
                    ("login", 0) => "Login",
                    ("login", 1) => "LOGIN",
                    ("logout", 0) => "Logout",
                    ("logout", 1) => "LOGOUT",
                    ("loginFailed", 0) => "loginfailed",
                    (b, _) => b,
                };
                let ip = SourceIp::Addr(self.login_ip(rng)?);
                self.login(rng, ctx, time_ms, action, ip)
            }
            Traffic::Iam => {
                let ip = SourceIp::Addr(self.caller_ip(rng)?);
                (self.iam_op(rng, ctx, time_ms, ip), None)
            }
            Traffic::Ecs | Traffic::ObsManagement | Traffic::Other => {
                (self.management_call(rng, ctx, traffic, time_ms)?, None)
            }
            Traffic::ObsData => (self.data_event(rng, ctx, time_ms)?, None),
        };
        Ok((self.maybe_old(rng, t), alarm))
    }

    /// A regional management call or a system action (empty or null `source_ip`).
    fn management_call(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        traffic: Traffic,
        time_ms: i64,
    ) -> Result<Map<String, Value>> {
        let user = self.user(rng);
        let system = rng.random_bool(if traffic == Traffic::Ecs { 0.2 } else { 0.1 });
        let (service, rtype, op, api) = match traffic {
            Traffic::Ecs => {
                let ops = if system { ECS_SYSTEM_OPS } else { ECS_OPS };
                (
                    "ECS".to_owned(),
                    "ecs".to_owned(),
                    pick(rng, ops).to_string(),
                    "v2.1",
                )
            }
            Traffic::ObsManagement => {
                let op = if system {
                    "lifecycleExpiration"
                } else {
                    pick(rng, OBS_OPS)
                };
                ("OBS".to_owned(), "bucket".to_owned(), op.to_owned(), "v1")
            }
            _ => {
                // A service without a table of its own gets generic create/update/... calls.
                let svc = ctx.service.to_ascii_uppercase();
                let verb = pick(rng, &["create", "update", "delete", "list"]);
                let op = format!("{verb}{}", capitalize(&svc));
                (svc.clone(), svc.to_ascii_lowercase(), op, "v1")
            }
        };
        let (service, rtype, op) = (service.as_str(), rtype.as_str(), op.as_str());
        let ip = if system {
            if rng.random_bool(0.5) {
                SourceIp::Empty
            } else {
                SourceIp::Null
            }
        } else {
            SourceIp::Addr(self.caller_ip(rng)?)
        };
        let ttype = if system {
            "SystemAction"
        } else if rng.random_bool(0.4) {
            "ConsoleAction"
        } else {
            "ApiCall"
        };
        let mut t = self.base(
            rng, ctx, time_ms, op, ttype, "normal", service, rtype, &ip, user,
        );
        let rid = uuid4(rng);
        let rname = if rtype == "bucket" {
            pick(rng, &self.world.buckets).clone()
        } else {
            format!("{}-{}", rtype, random_chars(rng, LOWER_ALNUM, 6))
        };
        t.insert("resource_name".into(), json!(rname));
        t.insert("resource_id".into(), json!(rid));
        let roll = rng.random_range(0..100);
        let status = match roll {
            0..=89 => 200,
            90..=96 => 400,
            _ => 500,
        };
        if status >= 500 {
            t.insert("trace_rating".into(), json!("incident"));
        } else if status >= 400 {
            t.insert("trace_rating".into(), json!("warning"));
        }
        t.insert("code".into(), Self::code(rng, status));
        t.insert("api_version".into(), json!(api));
        t.insert("event_type".into(), json!("system"));
        let host = format!(
            "{}.{}.{}",
            service.to_ascii_lowercase(),
            ctx.region,
            cloud_domain(ctx.region)
        );
        t.insert("endpoint".into(), json!(format!("https://{host}")));
        let url = match rtype {
            "bucket" => format!("https://{host}/{rname}"),
            "ecs" => format!("https://{host}/{api}/{}/cloudservers/{rid}", ctx.project_id),
            _ => format!("https://{host}/{api}/{}/{rtype}s/{rid}", ctx.project_id),
        };
        t.insert("resource_url".into(), json!(url));
        if !system {
            t.insert(
                "user_agent".into(),
                json!(if ttype == "ConsoleAction" {
                    pick(rng, BROWSERS)
                } else {
                    pick(rng, SDK_AGENTS)
                }),
            );
            Self::body_field(rng, &mut t, "request", json!({ rtype: {"name": rname} }));
        } else {
            t.insert(
                "message".into(),
                json!(format!("{op} triggered by the platform")),
            );
        }
        let resp = json!({ "request_id": hex_id(rng, 8) });
        Self::body_field(rng, &mut t, "response", resp);
        if op.starts_with("list") {
            t.insert("read_only".into(), json!(true));
        }
        Ok(t)
    }

    /// An OBS object operation recorded by a data tracker.
    fn data_event(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Ctx,
        time_ms: i64,
    ) -> Result<Map<String, Value>> {
        let user = self.user(rng);
        let (op, read_only) = *pick(rng, OBS_DATA_OPS);
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        let ttype = if rng.random_bool(0.6) {
            "ObsSDK"
        } else {
            "ObsAPI"
        };
        let mut t = self.base(
            rng, ctx, time_ms, op, ttype, "normal", "OBS", "object", &ip, user,
        );
        let bucket = pick(rng, &self.world.buckets).clone();
        let object = format!(
            "{}/{}.{}",
            pick(rng, &["data", "reports/2026", "img", "tmp"]),
            random_chars(rng, LOWER_ALNUM, 8),
            pick(rng, &["json", "csv", "png", "parquet"])
        );
        t.insert("resource_name".into(), json!(format!("{bucket}/{object}")));
        let status = if rng.random_bool(0.92) { 200 } else { 404 };
        if status != 200 {
            t.insert("trace_rating".into(), json!("warning"));
        }
        t.insert("code".into(), Self::code(rng, status));
        t.insert("event_type".into(), json!("data"));
        t.insert("read_only".into(), json!(read_only));
        t.insert(
            "content_length".into(),
            json!(rng.random_range(0..5_000_000u64)),
        );
        t.insert("total_time".into(), json!(rng.random_range(2..900u64)));
        t.insert("user_agent".into(), json!(pick(rng, SDK_AGENTS)));
        t.insert(
            "resource_url".into(),
            json!(format!(
                "https://{bucket}.obs.{}.{}/{object}",
                ctx.region,
                cloud_domain(ctx.region)
            )),
        );
        Ok(t)
    }
}

/// Times (ms) of `n` traces delivered in a file uploaded at `upload`: shortly before it, in order.
fn trace_times(rng: &mut ChaCha8Rng, upload: DateTime<Utc>, n: u32) -> Vec<i64> {
    let end = upload.timestamp_millis();
    let mut v: Vec<i64> = (0..n)
        .map(|_| end - rng.random_range(2_000..600_000))
        .collect();
    v.sort_unstable();
    v
}

fn capitalize(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Traces of one edge-case file and the alarms among them.
#[derive(Default)]
struct Batch {
    traces: Vec<Value>,
    alarms: Vec<(usize, ExpectedAlarm)>,
}

impl Batch {
    fn push(&mut self, (t, alarm): (Map<String, Value>, Option<ExpectedAlarm>)) {
        if let Some(a) = alarm {
            self.alarms.push((self.traces.len(), a));
        }
        self.traces.push(Value::Object(t));
    }

    fn plain(&mut self, t: Map<String, Value>) {
        self.traces.push(Value::Object(t));
    }

    fn what(&self) -> What {
        What::Trace {
            traces: self.traces.len() as u64,
            alarms: self.alarms.clone(),
        }
    }
}

fn json_lines(traces: &[Value], sep: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for t in traces {
        serde_json::to_writer(&mut out, t)?;
        out.extend_from_slice(sep.as_bytes());
    }
    Ok(out)
}

impl Generator<'_> {
    fn allowed_or_unlisted(&self, rng: &mut ChaCha8Rng) -> Result<String> {
        match self.allowed_ip(rng) {
            Some(ip) => Ok(ip.to_string()),
            None => self.unlisted_ip(rng),
        }
    }

    /// The address that has an allowed single IPv4 address as a string prefix but is not
    /// allowed (`192.168.1.10` for `192.168.1.1`): the substring defect of the old sample.
    fn substring_trap(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        self.world.allowed.iter().find_map(|n| match n {
            IpNet::V4(n) if n.prefix_len() == 32 => (0..10).find_map(|d| {
                let ip: Ipv4Addr = format!("{}{d}", n.addr()).parse().ok()?;
                (!self.is_allowed(IpAddr::V4(ip))).then_some((n.addr(), ip))
            }),
            _ => None,
        })
    }

    fn edge_file(
        &self,
        g: &Group,
        rng: &mut ChaCha8Rng,
        upload: DateTime<Utc>,
        body: Vec<u8>,
        what: What,
        listed: Listed,
    ) -> FileOut {
        FileOut {
            key: self.trace_key(g, self.spec.padded_folders, upload, rng),
            upload,
            body,
            what,
            listed,
            written: true,
        }
    }

    /// The awkward objects of `edge_cases`, on the first day, in the IAM folder of the first
    /// region's management tracker. Every readable one holds at least one alarm, so a reader that
    /// skips it misses an alarm the manifest expects.
    fn edge_files(&self, g: &Group, ctx: &Ctx, day_start: DateTime<Utc>) -> Result<Vec<FileOut>> {
        let mut rng = sub_rng(
            self.spec.seed,
            &format!("edge/{}/{}/{}", g.region, g.tracker, g.day),
        );
        let rng = &mut rng;
        // The k-th edge file of an hour: a few minutes apart, so upload times differ.
        let at = |rng: &mut ChaCha8Rng, hour: i64, k: i64| {
            day_start + Duration::seconds(hour * 3600 + k * 300 + rng.random_range(0..240))
        };
        let mut out = Vec::new();

        // 02:xx — one file per JSON shape of SPEC §2 (the top-level array is every other file).
        // A single trace object.
        let up = at(rng, 2, 0);
        let ts = trace_times(rng, up, 1);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.unlisted_v6(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[0], "login", ip));
        let body = gzip(&serde_json::to_vec(&b.traces[0])?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // An object holding the array.
        let up = at(rng, 2, 1);
        let ts = trace_times(rng, up, 3);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[0], "login", ip));
        let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[1], "logout", ip));
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        b.plain(self.iam_op(rng, ctx, ts[2], ip));
        let body = gzip(&serde_json::to_vec(&json!({ "traces": b.traces }))?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // Newline-delimited objects; the failed login from outside is not an alarm.
        let up = at(rng, 2, 2);
        let ts = trace_times(rng, up, 3);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[0], "logout", ip));
        let ip = SourceIp::Addr(self.unlisted_ip(rng)?);
        b.push(self.login(rng, ctx, ts[1], "login", ip));
        let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[2], "loginFailed", ip));
        let body = gzip(&json_lines(&b.traces, "\n")?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // Concatenated objects without any separator.
        let up = at(rng, 2, 3);
        let ts = trace_times(rng, up, 3);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        b.plain(self.iam_op(rng, ctx, ts[0], ip));
        let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[1], "Login", ip));
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[2], "login", ip));
        let body = gzip(&json_lines(&b.traces, "")?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // The FunctionGraph trigger's wrapper, naming the rating `trace_status`.
        let up = at(rng, 2, 4);
        let ts = trace_times(rng, up, 1);
        let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
        let (mut t, alarm) = self.login(rng, ctx, ts[0], "login", ip);
        if let Some(r) = t.remove("trace_rating") {
            t.insert("trace_status".into(), r);
        }
        let mut b = Batch::default();
        b.push((t, alarm));
        let body = gzip(&serde_json::to_vec(&json!({ "cts": b.traces[0] }))?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // 03:xx — encodings and addresses.
        // One JSON array split over two gzip members: a reader that stops after the first
        // member gets invalid JSON and loses the alarm of the second.
        let up = at(rng, 3, 0);
        let ts = trace_times(rng, up, 6);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[0], "login", ip));
        let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[1], "LOGIN", ip));
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        b.plain(self.iam_op(rng, ctx, ts[2], ip));
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        b.plain(self.iam_op(rng, ctx, ts[3], ip));
        let ip = SourceIp::Addr(self.unlisted_v6(rng)?.to_string());
        b.push(self.login(rng, ctx, ts[4], "Logout", ip));
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[5], "logout", ip));
        let first = format!("[{},", json_join(&b.traces[..3])?);
        let second = format!("{}]", json_join(&b.traces[3..])?);
        let mut body = gzip(first.as_bytes())?;
        body.extend(gzip(second.as_bytes())?);
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // Plain JSON under a `.json.gz` name (a tracker with compress_type=json).
        let up = at(rng, 3, 1);
        let ts = trace_times(rng, up, 4);
        let mut b = Batch::default();
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[0], "login", ip));
        let ip = SourceIp::Addr(self.unlisted_ip(rng)?);
        b.push(self.login(rng, ctx, ts[1], "login", ip));
        let ip = SourceIp::Addr(self.caller_ip(rng)?);
        b.plain(self.iam_op(rng, ctx, ts[2], ip));
        let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
        b.push(self.login(rng, ctx, ts[3], "logout", ip));
        let body = serde_json::to_vec(&b.traces)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // Missing, garbage, look-alike and IPv4-mapped addresses.
        let up = at(rng, 3, 2);
        let ts = trace_times(rng, up, 10);
        let mut ts = ts.into_iter();
        let mut next_t = || ts.next().unwrap_or_default();
        let mut b = Batch::default();
        b.push(self.login(rng, ctx, next_t(), "login", SourceIp::Empty));
        b.push(self.login(rng, ctx, next_t(), "login", SourceIp::Null));
        b.push(self.login(rng, ctx, next_t(), "logout", SourceIp::Absent));
        b.push(self.login(
            rng,
            ctx,
            next_t(),
            "login",
            SourceIp::Addr("not-an-ip".into()),
        ));
        let t = next_t();
        if let Some((allowed, trap)) = self.substring_trap() {
            b.push(self.login(rng, ctx, t, "login", SourceIp::Addr(trap.to_string())));
            b.push(self.login(
                rng,
                ctx,
                t + 40,
                "login",
                SourceIp::Addr(allowed.to_string()),
            ));
        }
        let t = next_t();
        if let Some(v4) = self.allowed_v4(rng) {
            b.push(self.login(rng, ctx, t, "login", SourceIp::Addr(format!("::ffff:{v4}"))));
        }
        let ip = SourceIp::Addr(format!("::ffff:{}", self.unlisted_v4(rng)?));
        b.push(self.login(rng, ctx, next_t(), "logout", ip));
        let mut sys = self.iam_op(rng, ctx, next_t(), SourceIp::Empty);
        sys.insert("trace_type".into(), json!("SystemAction"));
        b.plain(sys);
        b.push(self.login(rng, ctx, next_t(), "loginFailed", SourceIp::Empty));
        let body = gzip(&serde_json::to_vec(&b.traces)?)?;
        out.push(self.edge_file(g, rng, up, body, b.what(), Listed::Own));

        // 04:xx — objects that cannot be read. They hold no logins, so the expected alarms do not
        // depend on how much of them a reader salvages.
        let up = at(rng, 4, 0);
        let mut body = vec![0x1f, 0x8b];
        let mut noise = vec![0u8; 300];
        rng.fill(&mut noise[..]);
        body.extend(noise);
        let what =
            What::Bad("corrupt gzip: random bytes after the gzip magic; in no digest".into());
        out.push(self.edge_file(g, rng, up, body, what, Listed::No));

        let up = at(rng, 4, 1);
        let ts = trace_times(rng, up, 8);
        let mut traces = Vec::new();
        for t in ts {
            let ip = SourceIp::Addr(self.caller_ip(rng)?);
            traces.push(Value::Object(self.iam_op(rng, ctx, t, ip)));
        }
        let full = gzip(&serde_json::to_vec(&traces)?)?;
        let body = full[..full.len() / 2].to_vec();
        let what = What::Bad(
            "truncated gzip: a valid trace file cut in half; its digest lists the whole file (hash mismatch)".into(),
        );
        out.push(self.edge_file(g, rng, up, body, what, Listed::Hash(md5_hex(&full))));

        let up = at(rng, 4, 2);
        let text = format!(
            "[{{\"trace_id\":\"{}\",\"trace_name\":\"createUser\",\"trace_rating\":\"normal\",,\"time\":{}}}",
            uuid4(rng),
            up.timestamp_millis() - 5_000
        );
        let what = What::Bad("invalid JSON inside a valid gzip file".into());
        out.push(self.edge_file(g, rng, up, gzip(text.as_bytes())?, what, Listed::Own));

        // 05:xx — the same day in the other folder spelling (`2026/09/30/` beside `2026/9/30/`).
        let padded = !self.spec.padded_folders;
        if day_folder(g.day, padded) != day_folder(g.day, self.spec.padded_folders) {
            let up = at(rng, 5, 0);
            let ts = trace_times(rng, up, 3);
            let mut b = Batch::default();
            let ip = SourceIp::Addr(self.allowed_or_unlisted(rng)?);
            b.push(self.login(rng, ctx, ts[0], "login", ip));
            let ip = SourceIp::Addr(self.unlisted_v4(rng)?.to_string());
            b.push(self.login(rng, ctx, ts[1], "login", ip));
            let ip = SourceIp::Addr(self.caller_ip(rng)?);
            b.plain(self.iam_op(rng, ctx, ts[2], ip));
            out.push(FileOut {
                key: self.trace_key(g, padded, up, rng),
                upload: up,
                body: gzip(&serde_json::to_vec(&b.traces)?)?,
                what: b.what(),
                listed: Listed::Own,
                written: true,
            });
        }

        // Objects that are not CTS files: a note someone left, and a folder marker as some
        // S3 tools write them (`<name>_$folder$`; a key ending in `/` cannot live in a directory).
        let folder = self.folder(g, self.spec.padded_folders);
        out.push(FileOut {
            key: format!("{folder}{}/readme.txt", g.service),
            upload: day_start,
            body: b"Traces of the management tracker. Do not delete: audit retention 400 days.\n"
                .to_vec(),
            what: What::Unrelated,
            listed: Listed::No,
            written: true,
        });
        out.push(FileOut {
            key: format!("{}_$folder$", folder.trim_end_matches('/')),
            upload: day_start,
            body: Vec::new(),
            what: What::Unrelated,
            listed: Listed::No,
            written: true,
        });
        Ok(out)
    }
}

fn json_join(traces: &[Value]) -> Result<String> {
    let parts: Vec<String> = traces
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;
    use crate::cts::layout::{classify, Classified, FileKind};

    /// Decodes a trace file the liberal way SPEC §2 asks for, independently of the generator.
    fn decode(body: &[u8]) -> Result<Vec<Value>, String> {
        let text = if body.starts_with(&[0x1f, 0x8b]) {
            let mut s = Vec::new();
            MultiGzDecoder::new(body)
                .read_to_end(&mut s)
                .map_err(|e| e.to_string())?;
            s
        } else {
            body.to_vec()
        };
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_slice(&text).into_iter::<Value>() {
            match v.map_err(|e| e.to_string())? {
                Value::Array(a) => out.extend(a),
                Value::Object(mut m) if m.contains_key("cts") => {
                    out.extend(m.remove("cts"));
                }
                Value::Object(mut m) if m.get("traces").is_some_and(Value::is_array) => {
                    if let Some(Value::Array(a)) = m.remove("traces") {
                        out.extend(a);
                    }
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// The rule of SPEC §3, written from scratch: IAM login/logout outside the allow-list.
    fn alarm_of(t: &Value, nets: &[IpNet]) -> Option<&'static str> {
        let name = t.get("trace_name")?.as_str()?.to_ascii_lowercase();
        let iam = t
            .get("service_type")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("IAM"));
        if !iam || (name != "login" && name != "logout") {
            return None;
        }
        let ip = match t.get("source_ip") {
            None | Some(Value::Null) => return Some("missing_ip"),
            Some(Value::String(s)) if s.trim().is_empty() => return Some("missing_ip"),
            Some(Value::String(s)) => s.trim(),
            Some(_) => return Some("invalid_ip"),
        };
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return Some("invalid_ip");
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        (!nets.iter().any(|n| n.contains(&ip))).then_some("unlisted_ip")
    }

    fn nets(spec: &GenSpec) -> Vec<IpNet> {
        spec.allowed
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .unwrap_or_else(|_| IpNet::from(s.parse::<IpAddr>().unwrap()))
            })
            .collect()
    }

    fn objects_by_key(objs: &[GenObject]) -> BTreeMap<&str, &GenObject> {
        objs.iter().map(|o| (o.key.as_str(), o)).collect()
    }

    #[test]
    fn same_seed_same_bytes() {
        let spec = GenSpec::fixtures();
        let (a, ma) = build(&spec).unwrap();
        let (b, mb) = build(&spec).unwrap();
        assert_eq!(a, b);
        assert_eq!(ma, mb);
        let (c, _) = build(&GenSpec {
            seed: spec.seed + 1,
            ..spec.clone()
        })
        .unwrap();
        assert_ne!(a, c);
        // Edge cases are drawn from a stream of their own: ordinary files do not move.
        let (d, _) = build(&GenSpec {
            edge_cases: false,
            digests: false,
            ..spec
        })
        .unwrap();
        let a = objects_by_key(&a);
        for o in &d {
            assert_eq!(
                a.get(o.key.as_str()).map(|x| &x.body),
                Some(&o.body),
                "{}",
                o.key
            );
        }
    }

    #[test]
    fn ordinary_files_hold_the_expected_traces() {
        let spec = GenSpec {
            regions: vec!["eu-de".into(), "eu-nl".into()],
            trackers: vec!["system".into(), "data1".into()],
            services: vec!["IAM".into(), "ECS".into(), "VPC".into()],
            days: 2,
            ..GenSpec::default()
        };
        let (objs, man) = build(&spec).unwrap();
        // system: 3 services, data1: OBS only.
        let files = 2 * (3 + 1) * 2 * spec.files_per_service_per_day as usize;
        assert_eq!(objs.len(), files);
        assert_eq!(man.trace_files.len(), files);
        assert_eq!(man.traces, files as u64 * u64::from(spec.traces_per_file));
        assert!(man.digest_files.is_empty() && man.bad_objects.is_empty());
        for o in &objs {
            assert!(o.body.starts_with(&[0x1f, 0x8b]), "{}", o.key);
            let v: Value = serde_json::from_reader(MultiGzDecoder::new(&o.body[..])).unwrap();
            assert_eq!(v.as_array().unwrap().len(), spec.traces_per_file as usize);
        }
    }

    #[test]
    fn keys_follow_the_cts_layout() {
        let spec = GenSpec {
            prefix: "some/prefix/".into(),
            ..GenSpec::fixtures()
        };
        let (_, man) = build(&spec).unwrap();
        let rel = |k: &str| {
            k.strip_prefix("some/prefix/CloudTraces/")
                .unwrap()
                .to_owned()
        };
        for k in man
            .trace_files
            .iter()
            .chain(man.bad_objects.iter().map(|(k, _)| k))
        {
            let Classified::File(f) = classify(&rel(k)) else {
                panic!("{k}")
            };
            assert_eq!(f.kind, FileKind::Trace, "{k}");
            // The upload time in the name lies in the day of the folder.
            let parts: Vec<u32> = rel(k)
                .split('/')
                .skip(1)
                .take(3)
                .map(|p| p.parse().unwrap())
                .collect();
            let date = f.time.date_naive();
            assert_eq!(
                vec![date.year() as u32, date.month(), date.day()],
                parts,
                "{k}"
            );
        }
        for k in &man.digest_files {
            assert!(
                matches!(classify(&rel(k)), Classified::File(f) if f.kind == FileKind::Digest),
                "{k}"
            );
        }
        for k in &man.unrelated_objects {
            assert_eq!(classify(&rel(k)), Classified::Unrelated, "{k}");
        }
        // Both folder spellings and both kinds of file prefix appear.
        assert!(man.trace_files.iter().any(|k| k.contains("/2026/9/30/")));
        assert!(man.trace_files.iter().any(|k| k.contains("/2026/09/30/")));
        assert!(man.trace_files.iter().any(|k| k.contains("/CloudTrace_")));
        assert!(man
            .trace_files
            .iter()
            .any(|k| k.contains("audit_trail_CloudTrace_")));
    }

    #[test]
    fn expected_alarms_are_exactly_the_unlisted_logins() {
        let spec = GenSpec::fixtures();
        let nets = nets(&spec);
        let (objs, man) = build(&spec).unwrap();
        let by_key = objects_by_key(&objs);

        let mut found = Vec::new();
        let mut traces = 0u64;
        let (mut mapped_allowed, mut v6, mut old, mut mixed_case) = (0, 0, 0, 0);
        for k in &man.trace_files {
            let decoded = decode(&by_key[k.as_str()].body).unwrap_or_else(|e| panic!("{k}: {e}"));
            traces += decoded.len() as u64;
            for t in &decoded {
                let ip = t
                    .get("source_ip")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = t["trace_name"].as_str().unwrap();
                if let Some(reason) = alarm_of(t, &nets) {
                    found.push((
                        k.clone(),
                        t["trace_id"].as_str().unwrap().to_owned(),
                        reason,
                    ));
                } else if ip.starts_with("::ffff:") && name.eq_ignore_ascii_case("login") {
                    mapped_allowed += 1;
                }
                v6 += usize::from(ip.contains(':') && !ip.starts_with("::ffff:"));
                old += usize::from(t["user"].is_string() && t["time"].is_string());
                mixed_case += usize::from(["Login", "LOGIN", "Logout", "LOGOUT"].contains(&name));
            }
        }
        let expected: Vec<_> = man
            .expected_alarms
            .iter()
            .map(|a| (a.key.clone(), a.trace_id.clone(), a.reason.as_str()))
            .collect();
        assert_eq!(found, expected);
        assert_eq!(traces, man.traces);
        for reason in ["unlisted_ip", "missing_ip", "invalid_ip"] {
            assert!(expected.iter().any(|a| a.2 == reason), "no {reason} alarm");
        }
        assert!(man
            .expected_alarms
            .iter()
            .any(|a| a.source_ip.as_deref() == Some("192.168.1.10")));
        assert!(man.expected_alarms.iter().any(|a| a
            .source_ip
            .as_deref()
            .is_some_and(|s| s.starts_with("::ffff:"))));
        assert!(mapped_allowed > 0 && v6 > 0 && old > 0 && mixed_case > 0);

        for (k, _) in &man.bad_objects {
            assert!(decode(&by_key[k.as_str()].body).is_err(), "{k} decodes");
        }
        // The two-member file really has two members, and both hold alarms.
        let two = objs
            .iter()
            .filter(|o| o.body.starts_with(&[0x1f, 0x8b]) && decode(&o.body).is_ok())
            .find(|o| {
                // The first member alone is shorter than all members together.
                let (mut one, mut all) = (Vec::new(), Vec::new());
                let _ = flate2::read::GzDecoder::new(&o.body[..]).read_to_end(&mut one);
                let _ = MultiGzDecoder::new(&o.body[..]).read_to_end(&mut all);
                one.len() < all.len()
            })
            .expect("a two-member gzip file");
        assert!(
            man.expected_alarms
                .iter()
                .filter(|a| a.key == two.key)
                .count()
                >= 2
        );
    }

    #[test]
    fn digests_list_the_files_of_their_hour_and_chain() {
        let spec = GenSpec::fixtures();
        let (objs, man) = build(&spec).unwrap();
        let by_key = objects_by_key(&objs);
        let mut listed = BTreeMap::new();
        let mut starting = 0;
        for k in &man.digest_files {
            let d: Value =
                serde_json::from_reader(MultiGzDecoder::new(&by_key[k.as_str()].body[..])).unwrap();
            assert_eq!(d["digest_object"], json!(k));
            assert_eq!(d["digest_bucket"], json!(spec.bucket));
            for f in d["log_files"].as_array().unwrap() {
                let obj = f["object"].as_str().unwrap();
                let ok = md5_hex(&by_key[obj].body) == f["log_hash_value"].as_str().unwrap();
                listed.insert(obj.to_owned(), ok);
            }
            match d.get("previous_digest_object").and_then(Value::as_str) {
                Some(p) if !p.is_empty() => {
                    assert_eq!(
                        d["previous_digest_hash_value"],
                        json!(md5_hex(&by_key[p].body))
                    );
                }
                _ => starting += 1,
            }
        }
        // One chain per (region, tracker, service), one digest per hour of each.
        assert_eq!(starting, 2 * (3 + 1));
        assert_eq!(man.digest_files.len(), 2 * (3 + 1) * 2 * 24);
        let digests: BTreeSet<&str> = man.digest_files.iter().map(String::as_str).collect();
        for (k, outcome) in &man.expected_integrity {
            let actual = match listed.get(k) {
                // The preset without a key leaves digests unsigned.
                _ if digests.contains(k.as_str()) => "signature_invalid",
                Some(true) => "valid",
                Some(false) => "hash_mismatch",
                None => "not_in_digest",
            };
            assert_eq!(actual, outcome, "{k}");
        }
        assert_eq!(
            man.expected_integrity.len(),
            man.trace_files.len() + man.bad_objects.len() + man.digest_files.len()
        );
        assert!(man.expected_gaps.is_empty());
    }

    #[tokio::test]
    async fn writes_through_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::LocalStore::open(dir.path()).unwrap();
        let spec = GenSpec {
            edge_cases: true,
            digests: true,
            prefix: "p/".into(),
            ..GenSpec::default()
        };
        let man = generate(&spec, &store).await.unwrap();
        let listed: BTreeSet<String> = store
            .list_all("p/", None)
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        let mut expected: BTreeSet<String> = man.trace_files.iter().cloned().collect();
        expected.extend(man.digest_files.iter().cloned());
        expected.extend(man.bad_objects.iter().map(|(k, _)| k.clone()));
        expected.extend(man.unrelated_objects.iter().cloned());
        assert_eq!(listed, expected);
        let (objs, _) = build(&spec).unwrap();
        assert_eq!(
            man.bytes,
            objs.iter().map(|o| o.body.len() as u64).sum::<u64>()
        );
    }

    /// Every defect lands where its documentation says, signed digests verify, and the
    /// manifest names the status of each.
    #[test]
    fn defects_and_signatures() {
        use crate::cts::digest::{self as dg, SignatureMeta};
        let pem = include_str!("../fixtures/TEST-ONLY-digest-signing-key.pem").to_owned();
        let signer = PrivateKey::from_pem(&pem).unwrap();
        let spec = GenSpec {
            digests: true,
            days: 2,
            signing_key: Some(pem),
            defects: Defect::ALL.to_vec(),
            ..GenSpec::default()
        };
        let (objs, man) = build(&spec).unwrap();
        let by_key = objects_by_key(&objs);
        let statuses: BTreeMap<&str, Vec<&str>> =
            man.expected_integrity
                .iter()
                .fold(BTreeMap::new(), |mut m, (k, s)| {
                    m.entry(s.as_str())
                        .or_insert_with(Vec::new)
                        .push(k.as_str());
                    m
                });
        for s in [
            "valid",
            "not_found",
            "hash_mismatch",
            "signature_invalid",
            "moved",
            "invalid_format",
            "not_in_digest",
        ] {
            assert!(statuses.contains_key(s), "no {s} in {statuses:?}");
        }
        // Deleted digest (09), the second of the two deleted (13); the deleted trace file.
        assert_eq!(
            statuses["not_found"].len(),
            3,
            "{:?}",
            statuses["not_found"]
        );
        assert_eq!(statuses["moved"].len(), 1);
        assert!(statuses["moved"][0].contains("/moved_"));
        // The defects sit in the last service (ECS) of the first day.
        let gaps: Vec<(&str, &str, &str)> = man
            .expected_gaps
            .iter()
            .map(|g| (g.service.as_str(), g.from.as_str(), g.to.as_str()))
            .collect();
        assert_eq!(
            gaps,
            vec![
                (
                    "ECS",
                    "2026-09-30T09:00:00.000Z",
                    "2026-09-30T10:00:00.000Z"
                ),
                (
                    "ECS",
                    "2026-09-30T12:00:00.000Z",
                    "2026-09-30T14:00:00.000Z"
                ),
            ]
        );
        // Every written, intact digest verifies with the public key.
        let pk = signer.public_key();
        let mut verified = 0;
        for (k, s) in &man.expected_integrity {
            if s != "valid" || !man.digest_files.contains(k) {
                continue;
            }
            let o = by_key[k.as_str()];
            let d = dg::parse(&o.body, 1 << 20).unwrap();
            let meta: SignatureMeta = dg::signature_meta(&o.metadata);
            dg::check_signature(&pk, &d, &md5_hex(&o.body), &meta).unwrap();
            verified += 1;
        }
        assert!(verified > 40, "{verified}");
        // Deleted objects are not written; all others are.
        for k in &statuses["not_found"] {
            assert!(!by_key.contains_key(k), "{k}");
        }
        assert_eq!(
            man.digest_files.len(),
            2 * 2 * 24 - 3,
            "two chains over two days, three digests deleted"
        );
    }

    /// The checked-in fixtures are what the preset generates: regenerate them (command in
    /// fixtures/README.md) after changing the generator. Byte counts are left out because they
    /// depend on the compression library's version, not on the generator.
    #[test]
    fn checked_in_fixtures_match_the_preset() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/manifest.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let mut checked_in: Manifest = serde_json::from_str(&text).unwrap();
        let key = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/TEST-ONLY-digest-signing-key.pem"),
        )
        .unwrap();
        let spec = GenSpec {
            signing_key: Some(key),
            ..GenSpec::fixtures()
        };
        let (_, mut fresh) = build(&spec).unwrap();
        checked_in.bytes = 0;
        fresh.bytes = 0;
        assert!(
            checked_in == fresh,
            "fixtures/ is stale: regenerate it (see fixtures/README.md)"
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            GenSpec {
                days: 0,
                ..GenSpec::default()
            },
            GenSpec {
                alarm_share: 1.5,
                ..GenSpec::default()
            },
            GenSpec {
                prefix: "no-slash".into(),
                ..GenSpec::default()
            },
            GenSpec {
                allowed: vec!["10.0.0.300".into()],
                ..GenSpec::default()
            },
            GenSpec {
                regions: vec![],
                ..GenSpec::default()
            },
            GenSpec {
                allowed: vec!["0.0.0.0/0".into()],
                ..GenSpec::default()
            },
            GenSpec {
                services: vec!["IAM".into(), "iam".into()],
                ..GenSpec::default()
            },
        ] {
            assert!(build(&spec).is_err(), "{spec:?}");
        }
    }
}
