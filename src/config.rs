//! Typed, validated settings: TOML file < environment < flags, resolved once at start.
//! Every error names the setting (and where its value came from) and the value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use crate::alert::Template;
use crate::allowlist::{split_list, AllowList};
use crate::cli::GlobalArgs;
use crate::cts::digest::PublicKey;
use crate::cts::layout;
use crate::detect::Rule;
use crate::integrity::Mode as IntegrityMode;
use crate::notify::notifier::HumanSink;
use crate::notify::spec::{self, Built, SinkSpec};
use crate::notify::AlertDest;
use crate::screen::ParseMode;
use crate::store::S3Options;

pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 1 << 30;
pub const DEFAULT_ACTIONS: &[&str] = &["login", "logout"];
/// The allow-list variable of the original FunctionGraph function.
pub const LEGACY_ALLOW_ENV: &str = "IP";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{setting}: {reason}")]
    Invalid { setting: String, reason: String },
    #[error("no source given: set --source, CTSGUARD_SOURCE or `source` in the config file (s3://bucket[/prefix] or a directory)")]
    NoSource,
}

fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        reason: reason.into(),
    }
}

/// A list in the config file: `"a,b"` or `["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StrList {
    One(String),
    Many(Vec<String>),
}

impl StrList {
    fn joined(&self) -> String {
        match self {
            StrList::One(s) => s.clone(),
            StrList::Many(v) => v.join(","),
        }
    }
}

/// An integer number of bytes or a string such as "1GiB".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    source: Option<String>,
    regions: Option<StrList>,
    trackers: Option<StrList>,
    services: Option<StrList>,
    allow: Option<StrList>,
    actions: Option<StrList>,
    alerts: Option<String>,
    message_template: Option<String>,
    integrity: Option<String>,
    parse: Option<String>,
    public_key: Option<PathBuf>,
    concurrency: Option<usize>,
    max_decompressed_size: Option<SizeValue>,
    summary_json: Option<PathBuf>,
    metrics_push: Option<String>,
    metrics_file: Option<PathBuf>,
    s3: Option<S3FileConfig>,
    scan: Option<ScanFileConfig>,
    /// `[[sinks]]` tables.
    sinks: Option<Vec<SinkSpec>>,
}

/// The `[scan]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanFileConfig {
    checkpoint: Option<String>,
    since: Option<String>,
    lateness: Option<String>,
    lease_ttl: Option<String>,
    commit_interval: Option<String>,
    shards: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3FileConfig {
    endpoint: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    retries: Option<u32>,
    timeout: Option<String>,
    profile: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

/// Where the CTS files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

impl Source {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("s3://").or_else(|| s.strip_prefix("obs://")) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("no bucket name after s3://".into());
            }
            let mut prefix = prefix.trim_matches('/').to_owned();
            // Accept a URL that points at CloudTraces/ itself.
            if prefix == layout::ROOT.trim_end_matches('/') {
                prefix.clear();
            } else if let Some(p) =
                prefix.strip_suffix(&format!("/{}", layout::ROOT.trim_end_matches('/')))
            {
                prefix = p.to_owned();
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            return Ok(Source::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(
                "expected s3://bucket[/prefix], obs://..., file://DIR or a directory path".into(),
            );
        }
        let path = Path::new(s.strip_prefix("file://").unwrap_or(s));
        if path.as_os_str().is_empty() {
            return Err("empty path".into());
        }
        // Accept a directory that is the CloudTraces/ folder itself.
        let dir = match path.file_name() {
            Some(n) if n == layout::ROOT.trim_end_matches('/') => {
                path.parent().unwrap_or(Path::new(".")).to_path_buf()
            }
            _ => path.to_path_buf(),
        };
        Ok(Source::Local { dir })
    }

    /// The path prefix before `CloudTraces/` inside the store.
    pub fn prefix(&self) -> &str {
        match self {
            Source::S3 { prefix, .. } => prefix,
            Source::Local { .. } => "",
        }
    }
}

/// Everything a command needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Source,
    pub s3: S3Options,
    pub regions: Option<Vec<String>>,
    pub trackers: Option<Vec<String>>,
    pub services: Option<Vec<String>>,
    pub rule: Rule,
    pub allow_entries: usize,
    pub actions: Vec<String>,
    /// Where the JSON-lines alarm stream goes (one or more destinations).
    pub alerts: Vec<AlertDest>,
    /// Notification sinks (SMN, webhooks, email), sent at the end of each run.
    pub notify: Vec<Arc<HumanSink>>,
    pub template: Template,
    /// Integrity checks inside scan and backfill.
    pub integrity: IntegrityMode,
    /// Which trace files are parsed.
    pub parse: ParseMode,
    /// The key digests are signed with.
    pub public_key: PublicKey,
    pub concurrency: usize,
    pub max_decompressed_size: u64,
    pub summary_json: Option<PathBuf>,
    pub metrics_push: Option<String>,
    pub metrics_file: Option<PathBuf>,
    /// Show a progress line (standard error is a terminal and logs are text).
    pub progress: bool,
    /// The `[scan]` table, resolved by [`ScanSettings::resolve`] when scanning.
    pub scan_file: ScanFileConfig,
    /// The config file, for messages (empty when none).
    pub config_path: String,
}

/// A value and a human name of where it came from, for error messages.
struct Val<T> {
    value: T,
    origin: String,
}

/// Picks the flag/environment value (clap already ordered those two) or else the file's.
fn pick<T>(
    m: &ArgMatches,
    id: &str,
    flag: Option<T>,
    file: Option<T>,
    file_key: &str,
    file_path: &str,
) -> Option<Val<T>> {
    if let Some(value) = flag {
        let origin = match m.value_source(id) {
            // The env names follow one pattern (see cli.rs): CTSGUARD_<ID>.
            Some(ValueSource::EnvVariable) => format!("CTSGUARD_{}", id.to_ascii_uppercase()),
            _ => format!("--{}", id.replace('_', "-")),
        };
        return Some(Val { value, origin });
    }
    file.map(|value| Val {
        value,
        origin: format!("`{file_key}` in {file_path}"),
    })
}

/// A list of names (folders, actions), duplicates dropped (a region named twice must not be
/// read twice).
fn name_list(v: Option<Val<String>>) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let mut items: Vec<String> = Vec::new();
    for item in split_list(&v.value) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_owned());
        }
    }
    Ok((!items.is_empty()).then_some(items))
}

/// A list of folder names (regions, trackers, services): [`name_list`], each a single folder.
fn folder_list(v: Option<Val<String>>) -> Result<Option<Vec<String>>, ConfigError> {
    let origin = v.as_ref().map(|v| v.origin.clone()).unwrap_or_default();
    let names = name_list(v)?;
    match names.iter().flatten().find(|n| n.contains('/')) {
        Some(n) => Err(invalid(
            &origin,
            format!("{n:?}: a folder name cannot contain '/'"),
        )),
        None => Ok(names),
    }
}

impl Settings {
    /// Resolves the settings from the parsed command line (which already merged the
    /// environment), the legacy environment and the config file.
    pub fn resolve(g: &GlobalArgs, m: &ArgMatches) -> Result<Self, ConfigError> {
        let (file, path) = match &g.config {
            Some(p) => (load_file(p)?, p.display().to_string()),
            None => (FileConfig::default(), String::new()),
        };
        let s3f = file.s3.unwrap_or_default();
        let fp = path.as_str();

        let source = pick(m, "source", g.source.clone(), file.source, "source", fp)
            .ok_or(ConfigError::NoSource)?;
        let source_parsed = Source::parse(&source.value)
            .map_err(|r| invalid(&source.origin, format!("{:?}: {r}", source.value)))?;

        let endpoint = pick(
            m,
            "endpoint",
            g.endpoint.clone(),
            s3f.endpoint,
            "s3.endpoint",
            fp,
        );
        if let Some(e) = &endpoint {
            http_url(e, "https://obs.eu-de.otc.t-systems.com")?;
        }
        let path_style = pick(
            m,
            "path_style",
            g.path_style,
            s3f.path_style,
            "s3.path_style",
            fp,
        )
        .map(|v| v.value)
        .unwrap_or(false);
        let s3_region = pick(
            m,
            "s3_region",
            g.s3_region.clone(),
            s3f.region,
            "s3.region",
            fp,
        );
        let s3_retries =
            pick(m, "s3_retries", g.s3_retries, s3f.retries, "s3.retries", fp).map(|v| v.value);
        let s3_timeout = match pick(
            m,
            "s3_timeout",
            g.s3_timeout.clone(),
            s3f.timeout,
            "s3.timeout",
            fp,
        ) {
            None => None,
            Some(v) => match humantime::parse_duration(v.value.trim()) {
                Ok(d) if d >= std::time::Duration::from_secs(1) => Some(d),
                Ok(_) => {
                    return Err(invalid(
                        &v.origin,
                        format!("{:?} must be at least 1s", v.value),
                    ))
                }
                Err(e) => {
                    return Err(invalid(
                        &v.origin,
                        format!("{:?} is not a duration such as 60s or 5m: {e}", v.value),
                    ))
                }
            },
        };
        let bucket = match &source_parsed {
            Source::S3 { bucket, .. } => bucket.clone(),
            Source::Local { .. } => String::new(),
        };
        let s3 = S3Options {
            bucket,
            endpoint: endpoint.map(|v| v.value),
            region: s3_region.map(|v| v.value),
            path_style,
            profile: s3f.profile,
            access_key_id: s3f.access_key_id,
            secret_access_key: s3f.secret_access_key,
            session_token: s3f.session_token,
            retries: s3_retries,
            timeout: s3_timeout,
        };
        if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
            return Err(invalid(
                format!("[s3] in {fp}"),
                "access_key_id and secret_access_key must be given together",
            ));
        }

        let join = |l: Option<StrList>| l.map(|l| l.joined());
        let regions = folder_list(pick(
            m,
            "regions",
            g.regions.clone(),
            join(file.regions),
            "regions",
            fp,
        ))?;
        let trackers = folder_list(pick(
            m,
            "trackers",
            g.trackers.clone(),
            join(file.trackers),
            "trackers",
            fp,
        ))?;
        let services = folder_list(pick(
            m,
            "services",
            g.services.clone(),
            join(file.services),
            "services",
            fp,
        ))?;

        // The legacy `IP` variable ranks with the environment, below the flag and CTSGUARD_ALLOW.
        let allow = pick(m, "allow", g.allow.clone(), None, "allow", fp)
            .or_else(|| {
                std::env::var(LEGACY_ALLOW_ENV).ok().map(|value| Val {
                    value,
                    origin: format!("{LEGACY_ALLOW_ENV} (legacy variable)"),
                })
            })
            .or_else(|| {
                join(file.allow).map(|value| Val {
                    value,
                    origin: format!("`allow` in {fp}"),
                })
            });
        let allow_list = match &allow {
            Some(v) => AllowList::parse(&[v.value.as_str()])
                .map_err(|e| invalid(&v.origin, e.to_string()))?,
            None => AllowList::default(),
        };

        let actions = name_list(pick(
            m,
            "actions",
            g.actions.clone(),
            join(file.actions),
            "actions",
            fp,
        ))?
        .unwrap_or_else(|| DEFAULT_ACTIONS.iter().map(|s| (*s).to_owned()).collect());

        let explicit_alerts = pick(m, "alerts", g.alerts.clone(), file.alerts, "alerts", fp)
            .map(|v| AlertDest::parse(&v.value));

        let template = match pick(
            m,
            "message_template",
            g.message_template.clone(),
            file.message_template,
            "message_template",
            fp,
        ) {
            Some(v) => Template::parse(&v.value).map_err(|e| invalid(&v.origin, e.to_string()))?,
            None => Template::parse("default")
                .map_err(|e| invalid("message_template", e.to_string()))?,
        };

        let integrity = match pick(
            m,
            "integrity",
            g.integrity.clone(),
            file.integrity,
            "integrity",
            fp,
        ) {
            Some(v) => v.value.parse().map_err(|r: String| invalid(&v.origin, r))?,
            None => IntegrityMode::default(),
        };
        let parse = match pick(m, "parse", g.parse.clone(), file.parse, "parse", fp) {
            Some(v) => v.value.parse().map_err(|r: String| invalid(&v.origin, r))?,
            None => ParseMode::default(),
        };
        let public_key = match pick(
            m,
            "public_key",
            g.public_key.clone(),
            file.public_key,
            "public_key",
            fp,
        ) {
            Some(v) => std::fs::read_to_string(&v.value)
                .map_err(|e| e.to_string())
                .and_then(|text| PublicKey::parse(&text).map_err(|e| e.to_string()))
                .and_then(|k| match k.bits() {
                    // A short key is forgeable: a signature it verifies proves nothing.
                    b if b < crate::cts::digest::MIN_KEY_BITS => Err(format!(
                        "an RSA key of {b} bits; at least {} are required",
                        crate::cts::digest::MIN_KEY_BITS
                    )),
                    _ => Ok(k),
                })
                .map_err(|r| invalid(&v.origin, format!("{}: {r}", v.value.display())))?,
            None => PublicKey::cts_default(),
        };

        let env = |name: &str| std::env::var(name).ok();
        let mut built = spec::build_all(&file.sinks.unwrap_or_default(), &env)
            .map_err(|e| invalid(format!("`{}` in {fp}", e.setting), e.reason))?;
        // Sinks of flags use the alarm template (`legacy` stays legacy).
        for (spec, from) in flag_sinks(g, m, g.message_template.clone())? {
            let b = spec::build(&spec, 0, &env).map_err(|e| invalid(&from, e.reason))?;
            if let Some(name) = b.name() {
                if built.iter().any(|o| o.name() == Some(name)) {
                    return Err(invalid(
                        &from,
                        format!("a sink named {name:?} is also in the config file"),
                    ));
                }
            }
            built.push(b);
        }
        let mut alerts: Vec<AlertDest> = explicit_alerts.into_iter().collect();
        let mut notify = Vec::new();
        for b in built {
            match b {
                Built::JsonLines(d) if alerts.contains(&d) => {}
                Built::JsonLines(d) => alerts.push(d),
                Built::Human(sink, policy, style) => notify.push(Arc::new(HumanSink {
                    sink,
                    policy,
                    style,
                })),
            }
        }
        if alerts.is_empty() {
            alerts.push(AlertDest::Stdout);
        }

        let concurrency = match pick(
            m,
            "concurrency",
            g.concurrency,
            file.concurrency,
            "concurrency",
            fp,
        ) {
            Some(v) if v.value == 0 || v.value > 1024 => {
                return Err(invalid(
                    &v.origin,
                    format!("{} is out of range (1 to 1024)", v.value),
                ))
            }
            Some(v) => v.value,
            None => DEFAULT_CONCURRENCY,
        };

        let size_flag = g.max_decompressed_size.clone().map(SizeValue::Text);
        let max_decompressed_size = match pick(
            m,
            "max_decompressed_size",
            size_flag,
            file.max_decompressed_size,
            "max_decompressed_size",
            fp,
        ) {
            Some(v) => parse_size(&v.value).map_err(|r| invalid(&v.origin, r))?,
            None => DEFAULT_MAX_DECOMPRESSED,
        };

        let summary_json = pick(
            m,
            "summary_json",
            g.summary_json.clone(),
            file.summary_json,
            "summary_json",
            fp,
        )
        .map(|v| v.value);

        let metrics_push = pick(
            m,
            "metrics_push",
            g.metrics_push.clone(),
            file.metrics_push,
            "metrics_push",
            fp,
        );
        if let Some(v) = &metrics_push {
            http_url(v, "http://pushgateway:9091")?;
        }
        let metrics_file = pick(
            m,
            "metrics_file",
            g.metrics_file.clone(),
            file.metrics_file,
            "metrics_file",
            fp,
        )
        .map(|v| v.value);
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let progress = terminal && g.log_format != Some(crate::cli::LogFormat::Json);

        Ok(Settings {
            metrics_push: metrics_push.map(|v| v.value),
            metrics_file,
            progress,
            source: source_parsed,
            s3,
            regions,
            trackers,
            services,
            rule: Rule::new(&actions, allow_list.clone()),
            allow_entries: allow_list.len(),
            actions,
            alerts,
            notify,
            template,
            integrity,
            parse,
            public_key,
            concurrency,
            max_decompressed_size,
            summary_json,
            scan_file: file.scan.unwrap_or_default(),
            config_path: path.clone(),
        })
    }
}

/// The simple sinks of flags and environment variables (`--smn-topic`, `--webhook-url`, and
/// the original function's `SMN_Topic` and `RegionName`), as `[[sinks]]` tables.
fn flag_sinks(
    g: &GlobalArgs,
    m: &ArgMatches,
    template: Option<String>,
) -> Result<Vec<(SinkSpec, String)>, ConfigError> {
    let legacy = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let topic = g
        .smn_topic
        .clone()
        .map(|t| (t, origin(m, "smn_topic")))
        .or_else(|| {
            legacy(LEGACY_TOPIC_ENV).map(|t| (t, format!("{LEGACY_TOPIC_ENV} (legacy variable)")))
        });
    let region = g.smn_region.clone().or_else(|| legacy(LEGACY_REGION_ENV));
    let mut out = Vec::new();
    let texts = |table: &mut toml::Table| {
        if let Some(t) = &template {
            table.insert("template".into(), t.clone().into());
            if t == "legacy" {
                table.insert("subject".into(), "legacy".into());
            }
        }
    };
    if let Some((topic, from)) = topic {
        let mut t = toml::Table::new();
        t.insert("type".into(), "smn".into());
        let key = if topic.starts_with("urn:") {
            "topic_urn"
        } else {
            "topic"
        };
        t.insert(key.into(), topic.into());
        for (k, v) in [
            ("region", region),
            ("project_id", g.smn_project_id.clone()),
            ("endpoint", g.smn_endpoint.clone()),
        ] {
            if let Some(v) = v {
                t.insert(k.into(), v.into());
            }
        }
        texts(&mut t);
        out.push((sink_from_table(t, &from)?, from));
    }
    if let Some(url) = &g.webhook_url {
        let from = origin(m, "webhook_url");
        let mut t = toml::Table::new();
        t.insert("type".into(), "webhook".into());
        t.insert("url".into(), url.clone().into());
        if let Some(f) = &g.webhook_format {
            t.insert("format".into(), f.clone().into());
        }
        texts(&mut t);
        out.push((sink_from_table(t, &from)?, from));
    }
    Ok(out)
}

fn sink_from_table(t: toml::Table, from: &str) -> Result<SinkSpec, ConfigError> {
    SinkSpec::deserialize(toml::Value::Table(t)).map_err(|e| invalid(from, e.to_string()))
}

/// The flag or variable a value came from.
fn origin(m: &ArgMatches, id: &str) -> String {
    match m.value_source(id) {
        Some(ValueSource::EnvVariable) => format!("CTSGUARD_{}", id.to_ascii_uppercase()),
        _ => format!("--{}", id.replace('_', "-")),
    }
}

/// The SMN variables of the original FunctionGraph function.
pub const LEGACY_TOPIC_ENV: &str = "SMN_Topic";
pub const LEGACY_REGION_ENV: &str = "RegionName";

pub const DEFAULT_CHECKPOINT: &str = "ctsguard-checkpoint.json";
pub const DEFAULT_LATENESS: &str = "24h";
pub const DEFAULT_LOOKBACK: &str = "24h";
pub const DEFAULT_LEASE_TTL: &str = "10m";
pub const DEFAULT_COMMIT_INTERVAL: &str = "30s";
/// Set by Kubernetes in the pods of an Indexed Job.
pub const JOB_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The settings of `scan`, validated.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub checkpoint: String,
    /// Start of the first run's window.
    pub since: DateTime<Utc>,
    pub lateness: chrono::Duration,
    pub lease_ttl: chrono::Duration,
    pub commit_interval: std::time::Duration,
    pub shard: Option<crate::checkpoint::Shard>,
    pub now: DateTime<Utc>,
}

impl ScanSettings {
    pub fn resolve(
        a: &crate::cli::ScanArgs,
        m: &ArgMatches,
        s: &Settings,
    ) -> Result<Self, ConfigError> {
        let f = s.scan_file.clone();
        let fp = s.config_path.as_str();
        let now = match pick(m, "now", a.now.clone(), None, "", fp) {
            Some(v) => parse_time(&v.origin, &v.value)?,
            None => Utc::now(),
        };
        let duration = |id: &str, flag: Option<String>, file: Option<String>, default: &str| {
            let (text, origin) = match pick(m, id, flag, file, &format!("scan.{id}"), fp) {
                Some(v) => (v.value, v.origin),
                None => (default.to_owned(), id.to_owned()),
            };
            let d = humantime::parse_duration(text.trim()).map_err(|e| {
                invalid(
                    &origin,
                    format!("{text:?} is not a duration such as 24h, 90m or 30s: {e}"),
                )
            })?;
            if d.is_zero() {
                return Err(invalid(
                    &origin,
                    format!("{text:?} must be longer than zero"),
                ));
            }
            Ok(d)
        };
        let to_chrono = |d: std::time::Duration, id: &str| {
            chrono::Duration::from_std(d).map_err(|_| invalid(id, "duration too long"))
        };
        let lateness = to_chrono(
            duration("lateness", a.lateness.clone(), f.lateness, DEFAULT_LATENESS)?,
            "lateness",
        )?;
        let lease_ttl = to_chrono(
            duration(
                "lease_ttl",
                a.lease_ttl.clone(),
                f.lease_ttl,
                DEFAULT_LEASE_TTL,
            )?,
            "lease_ttl",
        )?;
        let commit_interval = duration(
            "commit_interval",
            a.commit_interval.clone(),
            f.commit_interval,
            DEFAULT_COMMIT_INTERVAL,
        )?;
        // The lease is renewed at each commit: commits must come well within its lifetime.
        if commit_interval * 2 > lease_ttl.to_std().unwrap_or_default() {
            return Err(invalid(
                "--commit-interval/CTSGUARD_COMMIT_INTERVAL",
                format!(
                    "{} must be at most half the lease TTL ({})",
                    humantime::format_duration(commit_interval),
                    humantime::format_duration(lease_ttl.to_std().unwrap_or_default())
                ),
            ));
        }
        let since = match pick(m, "since", a.since.clone(), f.since, "scan.since", fp) {
            Some(v) => parse_time(&v.origin, &v.value)?,
            None => {
                now - to_chrono(
                    duration("lookback", None, None, DEFAULT_LOOKBACK)?,
                    "lookback",
                )?
            }
        };
        let shard = match (
            pick(m, "shard", a.shard.clone(), None, "", fp),
            a.shards.or(f.shards),
        ) {
            (Some(v), _) => {
                Some(crate::scan::parse_shard(&v.value).map_err(|r| invalid(&v.origin, r))?)
            }
            (None, Some(n)) if n > 1 => {
                let index = std::env::var(JOB_INDEX_ENV).map_err(|_| {
                    invalid("--shards/CTSGUARD_SHARDS", format!("{n} shards, but neither --shard nor {JOB_INDEX_ENV} says which one this is"))
                })?;
                Some(
                    crate::scan::parse_shard(&format!("{index}/{n}"))
                        .map_err(|r| invalid(JOB_INDEX_ENV, r))?,
                )
            }
            _ => None,
        };
        let checkpoint = pick(
            m,
            "checkpoint",
            a.checkpoint.clone(),
            f.checkpoint,
            "scan.checkpoint",
            fp,
        )
        .map(|v| v.value)
        .unwrap_or_else(|| DEFAULT_CHECKPOINT.to_owned());
        if checkpoint.trim().is_empty() || checkpoint.ends_with('/') {
            return Err(invalid(
                "--checkpoint",
                format!("{checkpoint:?} must name a file or an object key"),
            ));
        }
        Ok(ScanSettings {
            checkpoint,
            since,
            lateness,
            lease_ttl,
            commit_interval,
            shard,
            now,
        })
    }
}

/// Checks that a URL setting is http(s) with a host.
fn http_url(v: &Val<String>, example: &str) -> Result<(), ConfigError> {
    let ok = url::Url::parse(&v.value)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            &v.origin,
            format!("{:?} is not an http(s) URL such as {example}", v.value),
        ))
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let inline_secret = file
        .s3
        .as_ref()
        .is_some_and(|s3| s3.secret_access_key.is_some() || s3.session_token.is_some());
    if inline_secret {
        warn_if_readable_by_others(path, "the config file holds [s3] credentials");
    }
    Ok(file)
}

/// Warns when a file holding a secret can be read by other users (a leaked credential is
/// the one thing ctsguard cannot take back).
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o044 != 0 {
                tracing::warn!(
                    "{}: {what}, and its mode {:o} lets group or other users read it (chmod 600, or defaultMode 0400 for a Kubernetes Secret volume)",
                    path.display(),
                    mode & 0o777
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

fn parse_size(v: &SizeValue) -> Result<u64, String> {
    let n = match v {
        SizeValue::Bytes(n) => *n,
        SizeValue::Text(s) => s
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|e| format!("{s:?} is not a size such as 1GiB or 500MB: {e}"))?
            .as_u64(),
    };
    if n == 0 {
        return Err("must be larger than 0".into());
    }
    Ok(n)
}

/// Parses a window bound: RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or `YYYY-MM-DD` (UTC midnight).
pub fn parse_time(setting: &str, s: &str) -> Result<DateTime<Utc>, ConfigError> {
    let t = s.trim();
    // Relative days, for schedules that cannot compute dates (a distroless image has no
    // shell): UTC midnight of today or yesterday.
    let midnight = |days_back: i64| {
        (Utc::now().date_naive() - chrono::Duration::days(days_back))
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc())
    };
    match t {
        "now" => return Ok(Utc::now()),
        "today" => return midnight(0).ok_or_else(|| invalid(setting, "today")),
        "yesterday" => return midnight(1).ok_or_else(|| invalid(setting, "yesterday")),
        _ => {}
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        return Ok(n.and_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(n) = d.and_hms_opt(0, 0, 0) {
            return Ok(n.and_utc());
        }
    }
    Err(invalid(
        setting,
        format!("{s:?} is not a time: use RFC 3339 (2026-09-30T12:00:00Z), YYYY-MM-DD (UTC), today, yesterday or now"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("s3://b/some/prefix/").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                prefix: "some/prefix/".into()
            }
        );
        assert_eq!(
            Source::parse("obs://b").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Source::parse("s3://b/p/CloudTraces").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                prefix: "p/".into()
            }
        );
        assert_eq!(
            Source::parse("file:///data/bucket").unwrap(),
            Source::Local {
                dir: "/data/bucket".into()
            }
        );
        assert_eq!(
            Source::parse("fixtures/bucket/CloudTraces").unwrap(),
            Source::Local {
                dir: "fixtures/bucket".into()
            }
        );
        assert!(Source::parse("s3://").is_err());
        assert!(Source::parse("http://x/y").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("--from", "2026-09-30").unwrap().to_rfc3339(),
            "2026-09-30T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("--from", "2026-09-30T12:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-09-30T10:00:00+00:00"
        );
        let today = parse_time("--to", "today").unwrap();
        let yesterday = parse_time("--from", "yesterday").unwrap();
        assert_eq!(today - yesterday, chrono::Duration::days(1));
        assert_eq!(today.time(), chrono::NaiveTime::MIN);
        let e = parse_time("--to", "2026-13-01").unwrap_err().to_string();
        assert!(e.starts_with("--to: \"2026-13-01\""), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(
            parse_size(&SizeValue::Text("1GiB".into())).unwrap(),
            1 << 30
        );
        assert_eq!(
            parse_size(&SizeValue::Text("512 KiB".into())).unwrap(),
            512 << 10
        );
        assert_eq!(parse_size(&SizeValue::Bytes(1000)).unwrap(), 1000);
        assert!(parse_size(&SizeValue::Text("lots".into())).is_err());
        assert!(parse_size(&SizeValue::Bytes(0)).is_err());
    }
}
