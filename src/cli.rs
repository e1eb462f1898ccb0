//! Command-line interface (clap derive). Every global option can also come from the
//! environment (shown in `--help`) or the config file; flags win over the environment, which
//! wins over the file, which wins over the defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ctsguard",
    version,
    about = "Alarm on CTS logins/logouts from unlisted IPs, over an OBS/S3 bucket or a directory",
    long_about = "ctsguard reads the trace files that Cloud Trace Service (Huawei Cloud, Open Telekom Cloud) \
writes to an OBS bucket, and raises an alarm for every IAM login or logout whose source IP is \
outside an allow-list of IPs and CIDR ranges, and checks trace files against CTS's signed digests. \
Alarms are JSON lines on standard output (or a file), and grouped notifications through SMN, \
webhooks or email at the end of each run; logs and the run summary go to standard error.",
    after_help = "Exit codes: 0 = every file processed (alarms found are not failures; for verify: \
everything valid); 1 = done, but some objects could not be listed, read or processed (each is \
reported), alarms or metrics could not be written, a notification sink failed, or (verify) \
something is not valid; \
2 = usage or configuration error, the source could not be reached, or (scan) the checkpoint \
cannot be read or written; 3 = (scan) another scan holds the lease."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML config file (see README "Configuration"); unknown keys are an error.
    #[arg(long, global = true, env = "CTSGUARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the CTS files are: s3://bucket[/path-prefix] (also obs://), or a directory
    /// (plain path or file://) holding CloudTraces/.
    #[arg(long, global = true, env = "CTSGUARD_SOURCE", value_name = "URL")]
    pub source: Option<String>,

    /// S3 endpoint, e.g. https://obs.eu-de.otc.t-systems.com [default: AWS S3].
    #[arg(long, global = true, env = "CTSGUARD_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Path-style S3 addressing (bucket in the path); OBS wants virtual-hosted, the default.
    #[arg(long, global = true, env = "CTSGUARD_PATH_STYLE", value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub path_style: Option<bool>,

    /// S3 signing region [default: from an obs.<region>.… endpoint, else the AWS chain, else us-east-1].
    #[arg(long, global = true, env = "CTSGUARD_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,

    /// Retries of a failed S3 request (503 SlowDown, 5xx, broken connections, timeouts), with
    /// exponential backoff and jitter [default: 8].
    #[arg(long, global = true, env = "CTSGUARD_S3_RETRIES", value_name = "N")]
    pub s3_retries: Option<u32>,

    /// Time budget of one S3 operation, every retry included, e.g. 60s, 5m [default: 60s].
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_S3_TIMEOUT",
        value_name = "DURATION"
    )]
    pub s3_timeout: Option<String>,

    /// CTS region folders to read, comma-separated [default: every folder under CloudTraces/].
    #[arg(long, global = true, env = "CTSGUARD_REGIONS", value_name = "LIST")]
    pub regions: Option<String>,

    /// Tracker folders to read (`system` is the management tracker) [default: all].
    #[arg(long, global = true, env = "CTSGUARD_TRACKERS", value_name = "LIST")]
    pub trackers: Option<String>,

    /// Service folders to read, e.g. IAM (case-insensitive) [default: all].
    #[arg(long, global = true, env = "CTSGUARD_SERVICES", value_name = "LIST")]
    pub services: Option<String>,

    /// Allowed source IPs and CIDR ranges, comma or white-space separated (IPv4 and IPv6).
    /// The legacy variable IP of the original function is read when this is not set.
    #[arg(long, global = true, env = "CTSGUARD_ALLOW", value_name = "LIST")]
    pub allow: Option<String>,

    /// Trace names (actions) to watch, case-insensitive [default: login,logout].
    #[arg(long, global = true, env = "CTSGUARD_ACTIONS", value_name = "LIST")]
    pub actions: Option<String>,

    /// Where alarm lines go: `-` for standard output, or a file path [default: -].
    #[arg(long, global = true, env = "CTSGUARD_ALERTS", value_name = "DEST")]
    pub alerts: Option<String>,

    /// Publish alarms to this SMN topic: its URN (urn:smn:REGION:PROJECT:NAME), or its name
    /// with --smn-region and --smn-project-id (legacy variable SMN_Topic). Authenticates with
    /// CTSGUARD_SMN_TOKEN, or CTSGUARD_SMN_ACCESS_KEY and CTSGUARD_SMN_SECRET_KEY. More sinks
    /// and options: `[[sinks]]` in the config file.
    #[arg(long, global = true, env = "CTSGUARD_SMN_TOPIC", value_name = "URN")]
    pub smn_topic: Option<String>,

    /// Region of the SMN endpoint (legacy variable RegionName) [default: the topic URN's].
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_SMN_REGION",
        value_name = "REGION"
    )]
    pub smn_region: Option<String>,

    /// Project id, for a topic given by name.
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_SMN_PROJECT_ID",
        value_name = "ID"
    )]
    pub smn_project_id: Option<String>,

    /// SMN endpoint [default: https://smn.REGION.myhuaweicloud.com].
    #[arg(long, global = true, env = "CTSGUARD_SMN_ENDPOINT", value_name = "URL")]
    pub smn_endpoint: Option<String>,

    /// POST each notification as JSON to this URL (signed with CTSGUARD_WEBHOOK_SECRET
    /// when set).
    #[arg(long, global = true, env = "CTSGUARD_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Payload of --webhook-url: json, slack, teams, discord, dingtalk, wecom, feishu
    /// [default: json].
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_WEBHOOK_FORMAT",
        value_name = "FORMAT"
    )]
    pub webhook_format: Option<String>,

    /// Alarm message: `default`, `legacy` (the original function's text) or a template with
    /// {action} {source_ip} {user} {domain} {time} {region} {service} {trace_id} {why} ...
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_MESSAGE_TEMPLATE",
        value_name = "TEMPLATE"
    )]
    pub message_template: Option<String>,

    /// Integrity checks in scan and backfill: `off`, `report` (process at once, check each
    /// file's MD5 when its signed digest is available, alarm on mismatching, deleted or
    /// unlisted files) or `enforce` (process a file only once its digest matched) [default: report].
    #[arg(long, global = true, env = "CTSGUARD_INTEGRITY", value_name = "MODE")]
    pub integrity: Option<String>,

    /// Which trace files scan and backfill parse: `all` (malformed JSON anywhere is reported,
    /// every trace counted) or `candidates` (only files whose text holds a watched action
    /// between quotes or a \u escape; the others are inflated, which checks their gzip
    /// checksums, and must open and close like JSON lists or objects, but are not parsed:
    /// malformed JSON inside them goes unreported and their traces uncounted; about a quarter
    /// less CPU over a directory) [default: all].
    #[arg(long, global = true, env = "CTSGUARD_PARSE", value_name = "MODE")]
    pub parse: Option<String>,

    /// Public key that signed the digests: PEM (PUBLIC KEY or RSA PUBLIC KEY) or base64 DER
    /// [default: the key published in the CTS manual].
    #[arg(long, global = true, env = "CTSGUARD_PUBLIC_KEY", value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// Downloads in flight at once; bounds memory. A directory source reads each file on the
    /// worker that decodes it, 8 files per job, N/8 jobs (at least 2 per worker + 1) in flight [default: 16].
    #[arg(long, global = true, env = "CTSGUARD_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    /// Largest size of one file once decompressed (gzip-bomb guard), e.g. 1GiB, 200MB [default: 1GiB].
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_MAX_DECOMPRESSED_SIZE",
        value_name = "SIZE"
    )]
    pub max_decompressed_size: Option<String>,

    /// Also write the run summary as JSON to this file.
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_SUMMARY_JSON",
        value_name = "FILE"
    )]
    pub summary_json: Option<PathBuf>,

    /// Push the run's metrics to this Prometheus Pushgateway (e.g. http://pushgateway:9091).
    #[arg(long, global = true, env = "CTSGUARD_METRICS_PUSH", value_name = "URL")]
    pub metrics_push: Option<String>,

    /// Write the run's metrics in the Prometheus text format to this file (node exporter
    /// textfile collector).
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_METRICS_FILE",
        value_name = "PATH"
    )]
    pub metrics_file: Option<PathBuf>,

    /// Log format on standard error [default: text on a terminal, json otherwise].
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,

    /// Log filter for standard error (error, warn, info, debug, trace, or a tracing directive).
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line: timestamp, level, message and the event's fields.
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process every trace file delivered in a past time window [FROM, TO).
    ///
    /// A file is selected by the upload time in its name
    /// (`..._CloudTrace_<region>_2026-09-30T10-05-00Z_....json.gz`, UTC), not by the time of
    /// the traces inside it. The day folders of the window are listed (padded and unpadded,
    /// plus one day on each side), never the whole bucket.
    Backfill(BackfillArgs),
    /// Process the trace files that appeared since the previous scan, exactly once (the
    /// CronJob's command).
    ///
    /// Each run lists [end of the last run - lateness, now) and processes the files in it that
    /// the checkpoint does not list yet; the checkpoint is written (atomically, after the alerts
    /// of the files it records were written) during and at the end of the run. A lease beside
    /// the checkpoint keeps a second scan of the same checkpoint from running at the same time
    /// (exit code 3).
    Scan(ScanArgs),
    /// Validate the configuration (every sink included) and reach the source: print the
    /// regions, trackers, services and newest trace file found, and the alarm outputs, or a
    /// precise error.
    Check(CheckArgs),
    /// Check the trace files and digests of a window [FROM, TO) against the signed CTS
    /// digests, and report every file's status and every hour without a digest.
    ///
    /// Each digest's SHA256withRSA signature is checked (CTS public key built in), the chain
    /// of digests is walked per region, tracker and service, and each trace file's MD5 is
    /// computed from its bytes. Exit code 0 when everything is valid, 1 when anything is not,
    /// 2 on usage or source errors.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Start of the window, inclusive: RFC 3339 (2026-09-30T12:00:00Z) or YYYY-MM-DD (UTC midnight).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the window, exclusive, same forms [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: crate::report::Format,
    /// Write the report to this file, or to an object (s3://bucket/key, with the source's
    /// endpoint and credentials), instead of standard output; `{from}` in it stands for the
    /// window's first day (YYYY-MM-DD), so daily reports do not overwrite each other.
    #[arg(long, value_name = "FILE|URL")]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also send a test notification through every notification sink (SMN, webhook, email)
    /// and report each one's result; exit code 1 when one fails.
    #[arg(long)]
    pub send_test: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Start of the window, inclusive: RFC 3339 (2026-09-30T12:00:00Z), YYYY-MM-DD (UTC
    /// midnight), today or yesterday.
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the window, exclusive, same forms [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Where the scan state is kept: a local path or s3://bucket/key (same endpoint and
    /// credentials as the source) [default: ctsguard-checkpoint.json in the working directory].
    #[arg(long, env = "CTSGUARD_CHECKPOINT", value_name = "URL")]
    pub checkpoint: Option<String>,
    /// First run only (no checkpoint yet): start from this time [default: 24 hours ago].
    #[arg(long, env = "CTSGUARD_SINCE", value_name = "TIME")]
    pub since: Option<String>,
    /// How late a file may appear after files with later timestamps were processed, e.g. 24h,
    /// 90m; also how long processed files and delivered alarm ids are remembered [default: 24h].
    #[arg(long, env = "CTSGUARD_LATENESS", value_name = "DURATION")]
    pub lateness: Option<String>,
    /// How long a lease of a crashed run blocks new runs [default: 10m].
    #[arg(long, env = "CTSGUARD_LEASE_TTL", value_name = "DURATION")]
    pub lease_ttl: Option<String>,
    /// Commit progress at least this often during a run [default: 30s].
    #[arg(long, env = "CTSGUARD_COMMIT_INTERVAL", value_name = "DURATION")]
    pub commit_interval: Option<String>,
    /// This run's share of the files, I/N with a 0-based I (e.g. 0/3); each shard keeps its
    /// own checkpoint (NAME.shard-I-of-N.json).
    #[arg(long, env = "CTSGUARD_SHARD", value_name = "I/N")]
    pub shard: Option<String>,
    /// Number of shards when the index comes from JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long, env = "CTSGUARD_SHARDS", value_name = "N")]
    pub shards: Option<u32>,
    /// Take this as the current time (replays and tests) [default: the clock]. A flag only:
    /// an environment variable left behind would freeze every later run.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
}
