//! Serves a directory over S3 on 127.0.0.1 with the same in-process `s3s-fs` server the tests
//! use (SigV4 checked), for benchmarks and demos.
//!
//!     cargo run --release --example s3serve -- --root /tmp/s3root --bucket cts \
//!         --import target/bench-corpus/dir
//!
//! `--import SRC` copies a ctsgen directory tree into the bucket once, through the S3 API (so
//! the digests' signature sidecars become real object metadata); a marker file in the root
//! makes later starts skip it. The first line on standard output is `endpoint=http://…`; the
//! server runs until its standard input closes or it gets SIGTERM/SIGINT.
//!
//! Credentials: access key `ctsguard-test-access-key`, secret `ctsguard-test-secret-key-0123456789`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ctsguard::store::{LocalStore, ObjectStore, PutMode, S3Options, S3Store};
use futures::stream::{self, StreamExt, TryStreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

const ACCESS_KEY: &str = "ctsguard-test-access-key";
const SECRET_KEY: &str = "ctsguard-test-secret-key-0123456789";

struct Args {
    root: PathBuf,
    bucket: String,
    import: Option<PathBuf>,
    port: u16,
}

fn args() -> Result<Args> {
    let mut a = Args {
        root: PathBuf::new(),
        bucket: "cts".into(),
        import: None,
        port: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--root" => a.root = PathBuf::from(val()?),
            "--bucket" => a.bucket = val()?,
            "--import" => a.import = Some(PathBuf::from(val()?)),
            "--port" => a.port = val()?.parse().context("--port")?,
            "-h" | "--help" => {
                println!("s3serve --root DIR [--bucket NAME] [--import SRC] [--port N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if a.root.as_os_str().is_empty() {
        bail!("--root DIR is required");
    }
    Ok(a)
}

/// Every file under `dir` (keys relative to it), skipping hidden sidecars.
fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, base, out)?;
        } else if !e.file_name().to_string_lossy().starts_with('.') {
            let rel = p.strip_prefix(base)?.to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
    Ok(())
}

async fn import(src: &Path, endpoint: &str, bucket: &str) -> Result<usize> {
    let from = Arc::new(LocalStore::open(src)?);
    let to = Arc::new(
        S3Store::connect(&S3Options {
            bucket: bucket.to_owned(),
            endpoint: Some(endpoint.to_owned()),
            region: Some("us-east-1".into()),
            path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            ..Default::default()
        })
        .await,
    );
    let mut keys = Vec::new();
    walk(src, src, &mut keys)?;
    let n = keys.len();
    stream::iter(keys)
        .map(|key| {
            let (from, to) = (from.clone(), to.clone());
            async move {
                let got = from.get(&key, u64::MAX).await?;
                let meta: BTreeMap<String, String> = got.metadata;
                to.put(&key, got.body, &meta, PutMode::Overwrite).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    Ok(n)
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    std::fs::create_dir_all(a.root.join(&a.bucket))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", a.port)).await?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{addr}");

    let fs = s3s_fs::FileSystem::new(&a.root).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let server = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });

    if let Some(src) = &a.import {
        let marker = a.root.join(format!(".imported-{}", a.bucket));
        if !marker.exists() {
            let t = std::time::Instant::now();
            let n = import(src, &endpoint, &a.bucket).await?;
            std::fs::write(&marker, src.display().to_string())?;
            eprintln!(
                "s3serve: imported {n} objects from {} in {:.1}s",
                src.display(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    println!("endpoint={endpoint}");
    std::io::stdout().flush()?;

    // Stop when the parent closes our stdin (the benchmark script), or on a signal.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let mut input = std::io::stdin().lock();
        while input.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            line.clear();
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.abort();
    Ok(())
}
