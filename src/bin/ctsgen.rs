//! `ctsgen`: writes a realistic CTS bucket tree into a directory or an S3 bucket, for tests,
//! benchmarks, demos and the checked-in `fixtures/`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use ctsguard::gen::{generate, Defect, GenSpec, Manifest};
use ctsguard::store::{ListRequest, LocalStore, ObjectStore, S3Options, S3Store};

const AFTER_HELP: &str = "\
Every spec flag overrides the preset; without a preset the defaults are small (one region, one
day, IAM and ECS). Lists take commas: --regions eu-de,eu-nl.

The manifest (--manifest) lists the readable trace files, the digest files, the number of traces,
every expected alarm (IAM login/logout from outside --allowed, with its key and trace_id), the
objects that cannot be read and why, the unrelated objects, and with digests what `ctsguard
verify` must report (expected_integrity, expected_gaps). The same seed gives the same bytes.

Digests are hourly per service, chained, and signed with --signing-key (unsigned without).
--defects injects, on the first day in the last service of the first region's system tracker:
tampered-trace (06:xx, hash_mismatch), deleted-trace (06:xx, not_found), extra-unlisted-trace
(07:xx, not_in_digest), deleted-digest (09:00), two-deleted-digests (12:00 and 13:00),
forged-signature (15:00), moved-digest (18:00), corrupt-digest-gzip (21:00).

Examples:
  ctsgen --preset fixtures --signing-key fixtures/TEST-ONLY-digest-signing-key.pem \\
    --out fixtures/bucket --manifest fixtures/manifest.json
  ctsgen --out /tmp/audit --digests --defects all \\
    --signing-key fixtures/TEST-ONLY-digest-signing-key.pem
  ctsgen --out /tmp/bench --days 7 --regions eu-de,eu-nl --files-per-service-per-day 100
  AWS_ACCESS_KEY_ID=.. AWS_SECRET_ACCESS_KEY=.. \\
    ctsgen --s3 s3://my-bucket/test --endpoint http://127.0.0.1:9000 --path-style --edge-cases

S3 credentials come from the usual AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile,
...). For OBS use its endpoint, e.g. https://obs.eu-de.otc.t-systems.com (virtual-hosted style).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// Small defaults.
    Default,
    /// The checked-in fixtures/bucket tree: 2026-09-30 and 2026-10-01, eu-de and eu-nl,
    /// trackers system and obs-data-events, IAM/ECS/OBS, edge cases and digests.
    Fixtures,
}

#[derive(Debug, Parser)]
#[command(
    name = "ctsgen",
    version,
    about = "Generate a realistic Cloud Trace Service (CTS) bucket tree with a manifest of what a reader must find",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Write into this directory (created when missing); keys become paths under it.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "s3",
        conflicts_with = "s3"
    )]
    out: Option<PathBuf>,

    /// Write into this bucket, under the optional prefix (`s3://bucket/some/prefix`).
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]")]
    s3: Option<String>,

    /// S3 endpoint URL (OBS, MinIO, a test server). Default: the AWS SDK's.
    #[arg(long, value_name = "URL", requires = "s3", conflicts_with = "out")]
    endpoint: Option<String>,

    /// Path-style addressing (`endpoint/bucket/key`), needed by most test servers.
    #[arg(long, requires = "s3", conflicts_with = "out")]
    path_style: bool,

    /// Signing region of the S3 endpoint (not the CTS regions: see --regions).
    #[arg(long, value_name = "R", requires = "s3", conflicts_with = "out")]
    region: Option<String>,

    /// AWS profile to take credentials from.
    #[arg(long, value_name = "NAME", requires = "s3", conflicts_with = "out")]
    profile: Option<String>,

    /// Write even when the target already holds objects under `<prefix>CloudTraces/`
    /// (objects with the same keys are replaced, others stay and are not in the manifest).
    #[arg(long)]
    force: bool,

    /// Write the manifest as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Starting point for the spec.
    #[arg(long, value_enum, default_value = "default")]
    preset: Preset,

    #[command(flatten)]
    spec: SpecArgs,
}

/// One flag per `GenSpec` field; unset flags keep the preset's value.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "What to generate")]
struct SpecArgs {
    /// Seed of the random streams: the same seed gives the same bytes.
    #[arg(long)]
    seed: Option<u64>,

    /// First day of the window (UTC), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    start: Option<NaiveDate>,

    /// Number of days.
    #[arg(long, value_name = "N")]
    days: Option<u32>,

    /// CTS region folders.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    regions: Option<Vec<String>>,

    /// Trackers: `system` records every service, any other name is a data tracker (OBS objects).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    trackers: Option<Vec<String>>,

    /// Service folders of the system tracker; IAM gets the logins.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    services: Option<Vec<String>>,

    /// Ordinary trace files per region, tracker, service and day.
    #[arg(long, value_name = "N")]
    files_per_service_per_day: Option<u32>,

    /// Traces per ordinary file.
    #[arg(long, value_name = "N")]
    traces_per_file: Option<u32>,

    /// Share (0..1) of IAM logins/logouts from outside the allow-list.
    #[arg(long, value_name = "SHARE")]
    alarm_share: Option<f64>,

    /// The allow-list: IP addresses and CIDR ranges, IPv4 and IPv6 (`--allowed ""` for none).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    allowed: Option<Vec<String>>,

    /// Share (0..1) of IPv6 among the unlisted login addresses.
    #[arg(long, value_name = "SHARE")]
    ipv6_share: Option<f64>,

    /// Share (0..1) of traces in the old shape (user as a string, time as
    /// "2016/12/08 11:07:28 GMT+08:00").
    #[arg(long, value_name = "SHARE")]
    old_shape_share: Option<f64>,

    /// Zero-padded month/day folders (2026/09/03) instead of CTS's 2026/9/3.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    padded_folders: Option<bool>,

    /// Path prefix before CloudTraces/ (with --s3, give it in the URL instead).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,

    /// Add one object of each awkward kind on the first day (see fixtures/README.md).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    edge_cases: Option<bool>,

    /// Write hourly digest files.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    digests: Option<bool>,

    /// Bucket name written into digests. Default with --s3: the bucket; else the preset's.
    #[arg(long, value_name = "NAME")]
    bucket_name: Option<String>,

    /// Sign the digests with this PEM private key (PKCS#8 or PKCS#1), as CTS does; without it
    /// digests are unsigned. fixtures/TEST-ONLY-digest-signing-key.pem is a test key for this.
    #[arg(long, value_name = "PEM")]
    signing_key: Option<PathBuf>,

    /// Integrity defects to inject (needs digests), comma-separated, or `all`: tampered-trace,
    /// deleted-trace, extra-unlisted-trace, deleted-digest, two-deleted-digests,
    /// forged-signature, moved-digest, corrupt-digest-gzip (see the manifest's
    /// expected_integrity and expected_gaps).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_defects)]
    defects: Option<Vec<Vec<Defect>>>,
}

/// One item of `--defects`: a defect's name (the generator's own `ValueEnum` names), or `all`.
fn parse_defects(item: &str) -> Result<Vec<Defect>, String> {
    if item.trim() == "all" {
        return Ok(Defect::ALL.to_vec());
    }
    Defect::from_str(item.trim(), true).map(|d| vec![d])
}

/// `some/prefix` → `some/prefix/`; empty stays empty.
fn folder_prefix(p: &str) -> String {
    let p = p.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

impl SpecArgs {
    fn apply(&self, spec: &mut GenSpec) -> Result<()> {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = &self.$f { spec.$f = v.clone(); })* };
        }
        set!(
            seed,
            start,
            days,
            regions,
            trackers,
            services,
            files_per_service_per_day,
            traces_per_file,
            alarm_share,
            ipv6_share,
            old_shape_share,
            padded_folders,
            edge_cases,
            digests
        );
        if let Some(allowed) = &self.allowed {
            spec.allowed = allowed
                .iter()
                .filter(|s| !s.trim().is_empty())
                .cloned()
                .collect();
        }
        if let Some(p) = &self.prefix {
            spec.prefix = folder_prefix(p);
        }
        if let Some(b) = &self.bucket_name {
            spec.bucket = b.clone();
        }
        if let Some(path) = &self.signing_key {
            spec.signing_key = Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--signing-key {}", path.display()))?,
            );
        }
        if let Some(list) = &self.defects {
            let mut defects: Vec<Defect> = list.iter().flatten().copied().collect();
            defects.sort();
            defects.dedup();
            if !defects.is_empty() && !spec.digests {
                bail!("--defects needs digests (--digests)");
            }
            spec.defects = defects;
        }
        Ok(())
    }
}

/// `s3://bucket/some/prefix` → (`bucket`, `some/prefix/`).
fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("{url:?} is not an s3://bucket[/prefix] URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{url:?} names no bucket");
    }
    Ok((bucket.to_owned(), folder_prefix(prefix)))
}

async fn open_store(cli: &Cli, spec: &mut GenSpec) -> Result<Box<dyn ObjectStore>> {
    if let Some(url) = &cli.s3 {
        let (bucket, prefix) = parse_s3_url(url)?;
        if !prefix.is_empty() {
            if cli.spec.prefix.is_some() {
                bail!("give the prefix either in the --s3 URL or with --prefix, not both");
            }
            spec.prefix = prefix;
        }
        if cli.spec.bucket_name.is_none() {
            spec.bucket = bucket.clone();
        }
        let opts = S3Options {
            bucket,
            endpoint: cli.endpoint.clone(),
            region: cli.region.clone(),
            path_style: cli.path_style,
            profile: cli.profile.clone(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            ..S3Options::default()
        };
        return Ok(Box::new(S3Store::connect(&opts).await));
    }
    let dir = cli
        .out
        .as_ref()
        .context("either --out DIR or --s3 URL is required")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Box::new(LocalStore::open(dir)?))
}

/// Refuses to mix a new tree into an old one: the manifest would not describe the result.
async fn check_empty(store: &dyn ObjectStore, prefix: &str) -> Result<()> {
    let root = format!("{prefix}CloudTraces/");
    let page = store
        .list_page(&ListRequest {
            prefix: root.clone(),
            max_keys: Some(1),
            ..ListRequest::default()
        })
        .await
        .with_context(|| format!("listing {root} in {}", store.describe()))?;
    if let Some(o) = page.objects.first() {
        bail!(
            "{} already holds objects under {root} (e.g. {}); remove them or pass --force",
            store.describe(),
            o.key
        );
    }
    Ok(())
}

fn write_manifest(path: &PathBuf, manifest: &Manifest) -> Result<()> {
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    if path.as_os_str() == "-" {
        print!("{json}");
        return Ok(());
    }
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line; no backtrace for a user's mistake.
            eprintln!("ctsgen: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut spec = match cli.preset {
        Preset::Default => GenSpec::default(),
        Preset::Fixtures => GenSpec::fixtures(),
    };
    cli.spec.apply(&mut spec)?;
    // After the flags: the --s3 URL supplies the prefix and the digests' bucket name.
    let store = open_store(&cli, &mut spec).await?;
    if !cli.force {
        check_empty(store.as_ref(), &spec.prefix).await?;
    }
    let m = generate(&spec, store.as_ref()).await?;
    if let Some(path) = &cli.manifest {
        write_manifest(path, &m)?;
    }
    eprintln!(
        "ctsgen: wrote {} objects ({} bytes) to {}: {} trace files with {} traces, {} digests, \
         {} expected alarms, {} bad objects, {} unrelated objects",
        m.trace_files.len()
            + m.digest_files.len()
            + m.bad_objects.len()
            + m.unrelated_objects.len(),
        m.bytes,
        store.describe(),
        m.trace_files.len(),
        m.traces,
        m.digest_files.len(),
        m.expected_alarms.len(),
        m.bad_objects.len(),
        m.unrelated_objects.len(),
    );
    Ok(())
}
