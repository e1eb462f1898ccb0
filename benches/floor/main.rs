//! The floors of the end-to-end benchmark (`benches/run.py`): what any tool that reads every
//! byte must spend at least.
//!
//!     ctsguard-floor inflate --threads 2 FILE...      decompress every file as ctsguard does (its
//!                                            inflate call: flate2, zlib-rs), N threads
//!     ctsguard-floor inflate --threads 2 --list LIST  the same, file names one per line in LIST
//!     ctsguard-floor download --endpoint URL --bucket B --prefix P --concurrency 16
//!                                            download every trace file under P through
//!                                            ctsguard's own S3 client, N in flight, and
//!                                            throw the bytes away
//!
//!     ctsguard-floor decode [--general] --threads 2 --list LIST
//!                                            inflate and parse (ctsguard's decoder; with
//!                                            --general the general reader every file took
//!                                            before the fast path): before/after figures
//!                                            of the decode stage, also under callgrind
//!
//! Prints one JSON line: files, compressed and decompressed bytes (and traces).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ctsguard::cts::trace::{inflate_into, parse_traces, parse_traces_general};
use ctsguard::store::{ObjectStore, S3Options, S3Store};
use futures::stream::{self, StreamExt};

#[derive(Clone, Copy, PartialEq)]
enum Parse {
    No,
    Fast,
    General,
}

fn inflate(files: Vec<PathBuf>, threads: usize, parse: Parse) -> Result<()> {
    let next = AtomicUsize::new(0);
    let (raw_total, json_total) = (AtomicU64::new(0), AtomicU64::new(0));
    let traces = AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    // One buffer per thread, reused: the floor must not pay for allocation.
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else {
                            return Ok(());
                        };
                        let raw =
                            std::fs::read(path).with_context(|| path.display().to_string())?;
                        // ctsguard's own call of the library (in place, into a buffer it
                        // does not zero again), and nothing else.
                        let inflated = inflate_into(&raw, u64::MAX, &mut out);
                        if let Some(e) = inflated.error {
                            bail!("{}: {e}", path.display());
                        }
                        let json = &inflated.json[..];
                        raw_total.fetch_add(raw.len() as u64, Ordering::Relaxed);
                        json_total.fetch_add(json.len() as u64, Ordering::Relaxed);
                        let n = match parse {
                            Parse::No => 0,
                            Parse::Fast => parse_traces(json).traces.len(),
                            Parse::General => parse_traces_general(json).traces.len(),
                        };
                        traces.fetch_add(n as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("worker panicked"))?)
    })?;
    println!(
        "{{\"files\":{},\"bytes\":{},\"decompressed_bytes\":{},\"traces\":{}}}",
        files.len(),
        raw_total.into_inner(),
        json_total.into_inner(),
        traces.into_inner()
    );
    Ok(())
}

async fn download(endpoint: String, bucket: String, prefix: String, conc: usize) -> Result<()> {
    let store: Arc<dyn ObjectStore> = Arc::new(
        S3Store::connect(&S3Options {
            bucket,
            endpoint: Some(endpoint),
            region: Some("us-east-1".into()),
            path_style: true,
            access_key_id: Some(
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or("ctsguard-test-access-key".into()),
            ),
            secret_access_key: Some(
                std::env::var("AWS_SECRET_ACCESS_KEY")
                    .unwrap_or("ctsguard-test-secret-key-0123456789".into()),
            ),
            ..Default::default()
        })
        .await,
    );
    let listing = store.list_all(&prefix, None).await?;
    // The trace files ctsguard backfill reads: not digests, not sidecars.
    let keys: Vec<String> = listing
        .objects
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.contains("CloudTrace_") && !k.contains("/Digest/"))
        .collect();
    let n = keys.len();
    let total: u64 = stream::iter(keys)
        .map(|k| {
            let store = store.clone();
            async move { store.get(&k, u64::MAX).await.map(|g| g.body.len() as u64) }
        })
        .buffer_unordered(conc.max(1))
        .fold(Ok(0u64), |acc, r| async move { Ok(acc? + r?) })
        .await
        .map_err(|e: ctsguard::store::StoreError| anyhow::anyhow!(e))?;
    println!("{{\"files\":{n},\"bytes\":{total}}}");
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let (mut threads, mut conc) = (2usize, 16usize);
    let (mut endpoint, mut bucket, mut prefix) = (String::new(), String::new(), String::new());
    let mut files = Vec::new();
    let mut general = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => threads = val()?.parse()?,
            "--general" => general = true,
            "--concurrency" => conc = val()?.parse()?,
            "--endpoint" => endpoint = val()?,
            "--bucket" => bucket = val()?,
            "--prefix" => prefix = val()?,
            "--list" => {
                let list = std::fs::read_to_string(val()?)?;
                files.extend(list.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    match mode.as_str() {
        "inflate" => inflate(files, threads, Parse::No),
        "decode" if general => inflate(files, threads, Parse::General),
        "decode" => inflate(files, threads, Parse::Fast),
        "download" => {
            tokio::runtime::Runtime::new()?.block_on(download(endpoint, bucket, prefix, conc))
        }
        _ => bail!("usage: ctsguard-floor inflate|download ... (see the source)"),
    }
}
