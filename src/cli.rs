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
outside an allow-list of IPs and CIDR ranges. Alarms are JSON lines on standard output (or a file); \
logs and the run summary go to standard error.",
    after_help = "Exit codes: 0 = every file processed (alarms found are not failures); \
1 = done, but some objects could not be listed, read or processed (each is reported); \
2 = usage or configuration error, or the source could not be reached."
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

    /// Alarm message: `default`, `legacy` (the original function's text) or a template with
    /// {action} {source_ip} {user} {domain} {time} {region} {service} {trace_id} {why} ...
    #[arg(
        long,
        global = true,
        env = "CTSGUARD_MESSAGE_TEMPLATE",
        value_name = "TEMPLATE"
    )]
    pub message_template: Option<String>,

    /// Downloads in flight at once; bounds memory [default: 16].
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process every trace file delivered in a past time window [FROM, TO).
    ///
    /// A file is selected by the upload time in its name
    /// (`..._CloudTrace_<region>_2026-09-30T10-05-00Z_....json.gz`, UTC), not by the time of
    /// the traces inside it. The day folders of the window are listed (padded and unpadded,
    /// plus one day on each side), never the whole bucket.
    Backfill(BackfillArgs),
    /// Validate the configuration and reach the source: print the regions, trackers,
    /// services and newest trace file found, or a precise error.
    Check,
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
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Public key that signed the digests: PEM (PUBLIC KEY or RSA PUBLIC KEY) or base64 DER
    /// [default: the key published in the CTS manual].
    #[arg(long, env = "CTSGUARD_PUBLIC_KEY", value_name = "FILE")]
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Start of the window, inclusive: RFC 3339 (2026-09-30T12:00:00Z) or YYYY-MM-DD (UTC midnight).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the window, exclusive, same forms [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}
