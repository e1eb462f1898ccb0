//! Real S3 servers for tests: an in-process `s3s-fs` server over a temporary directory, and an
//! optional external server (moto_server in CI) named by `CTSGUARD_TEST_S3_ENDPOINT`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ctsguard::store::{S3Options, S3Store};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::host::SingleDomain;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Response, S3Result, S3};

/// Credentials the in-process server accepts; anything else fails its SigV4 check.
pub const ACCESS_KEY: &str = "ctsguard-test-access-key";
pub const SECRET_KEY: &str = "ctsguard-test-secret-key-0123456789";

/// Names the external S3 server (e.g. `http://127.0.0.1:5000` for moto_server).
pub const EXTERNAL_ENDPOINT_VAR: &str = "CTSGUARD_TEST_S3_ENDPOINT";

const REGION: &str = "us-east-1";

/// How the in-process server misbehaves, to reproduce quirks of real S3-compatible stores.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Answer truncated ListObjectsV2 pages without `NextContinuationToken`, as some OBS
    /// versions do (SPEC §6): a client must then go on with `start-after`.
    pub drop_continuation_token: bool,
}

/// One HTTP request as the server received it, before s3s parsed or authenticated it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and raw (still percent-encoded) query, e.g. `/bucket?list-type=2&prefix=a%2F`.
    pub path_and_query: String,
    /// Every header, names lower-cased, in arrival order (repeated names appear repeatedly).
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    fn of(req: &hyper::Request<Incoming>) -> Self {
        Recorded {
            method: req.method().as_str().to_owned(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| req.uri().path().to_owned()),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or_default()
    }

    pub fn query(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw value of a query parameter, `Some("")` for a bare `?name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query().split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// Whether this is a ListObjectsV2 request.
    pub fn is_list_v2(&self) -> bool {
        self.method == "GET" && self.query_param("list-type") == Some("2")
    }
}

/// An in-process S3 server (`s3s-fs` over a temporary directory) on `127.0.0.1:<free port>`.
///
/// It runs on its own thread and Tokio runtime, so it keeps answering while a test blocks its
/// own thread (e.g. waiting for the `ctsguard` binary) and whatever runtime flavour the test uses.
/// Dropping it stops the server and deletes the directory.
pub struct S3Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    // Declared last so it is deleted after the server thread has stopped.
    root: tempfile::TempDir,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("addr", &self.addr)
            .field("root", &self.root.path())
            .finish_non_exhaustive()
    }
}

impl S3Server {
    pub async fn start() -> S3Server {
        Self::start_blocking(ServerOptions::default())
    }

    pub async fn start_with(opts: ServerOptions) -> S3Server {
        Self::start_blocking(opts)
    }

    /// Same as [`S3Server::start_with`], for tests without a runtime of their own. It does not
    /// actually block for long: binding happens here, serving on the server's own thread.
    pub fn start_blocking(opts: ServerOptions) -> S3Server {
        let root = tempfile::tempdir().expect("create the s3s-fs root directory");
        // Bind here, synchronously, so the address is known and connectable on return.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");

        let fs = s3s_fs::FileSystem::new(root.path()).expect("open the s3s-fs root");
        let mut builder = if opts.drop_continuation_token {
            S3ServiceBuilder::new(NoContinuationToken(fs))
        } else {
            S3ServiceBuilder::new(fs)
        };
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        // Lets virtual-hosted requests (`bucket.localhost:<port>`) work for a client that can
        // resolve such names; requests to `127.0.0.1:<port>` are always path style.
        builder.set_host(
            SingleDomain::new(&format!("localhost:{}", addr.port())).expect("valid domain"),
        );
        let service = builder.build();

        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let log = requests.clone();
        let thread = std::thread::Builder::new()
            .name(format!("s3s-fs-{}", addr.port()))
            .spawn(move || serve(listener, service, log, rx))
            .expect("spawn the S3 server thread");
        S3Server {
            addr,
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
            root,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// The directory the server serves: bucket `b` is the folder `root_dir()/b`, key `x/y` in
    /// it the file `root_dir()/b/x/y`. Tests may write files there directly to seed a bucket fast.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// Creates a bucket. For s3s-fs a bucket is just a folder under the root.
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir(self.root.path().join(name))
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Panicking in drop would abort a test that is already unwinding; the server
            // thread's own panic message is printed anyway.
            let _ = thread.join();
        }
    }
}

/// The server thread: accept until told to stop, then drop every connection.
fn serve(
    listener: std::net::TcpListener,
    service: s3s::service::S3Service,
    log: Arc<Mutex<Vec<Recorded>>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => {
                        // e.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let service = service.clone();
            let log = log.clone();
            // Record the raw request, then hand it to s3s unchanged.
            let recording = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                log.lock().unwrap().push(Recorded::of(&req));
                // The trait's `call`, not S3Service's inherent one (which wants s3s's body).
                hyper::service::Service::call(&service, req)
            });
            let conn = http
                .serve_connection(TokioIo::new(socket), recording)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    // Clients keep idle keep-alive connections open, so waiting for a graceful close would
    // only wait for the timeout: cancel the connection tasks instead.
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// `s3s_fs::FileSystem` answering ListObjectsV2 without continuation tokens (see
/// [`ServerOptions::drop_continuation_token`]). Delegates the operations ctsguard uses.
struct NoContinuationToken(s3s_fs::FileSystem);

#[async_trait::async_trait]
impl S3 for NoContinuationToken {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let mut resp = self.0.list_objects_v2(req).await?;
        resp.output.next_continuation_token = None;
        Ok(resp)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.0.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.0.head_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.0.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.0.delete_object(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.0.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.0.head_bucket(req).await
    }
}

/// An `S3Store` for `bucket` on the in-process server, signing with the server's keys.
///
/// `path_style = false` addresses `http://<bucket>.localhost:<port>`: the server understands
/// it, but the client must be able to resolve `<bucket>.localhost` (this machine's resolver
/// does not), so tests use path style.
pub async fn s3_store(server: &S3Server, bucket: &str, path_style: bool) -> S3Store {
    let endpoint = if path_style {
        server.endpoint()
    } else {
        format!("http://localhost:{}", server.addr().port())
    };
    S3Store::connect(&S3Options {
        bucket: bucket.to_owned(),
        endpoint: Some(endpoint),
        region: Some(REGION.to_owned()),
        path_style,
        access_key_id: Some(server.access_key().to_owned()),
        secret_access_key: Some(server.secret_key().to_owned()),
        ..Default::default()
    })
    .await
}

/// A fresh bucket on the external S3 server.
#[derive(Debug, Clone)]
pub struct ExternalBucket {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl ExternalBucket {
    pub fn options(&self) -> S3Options {
        S3Options {
            bucket: self.bucket.clone(),
            endpoint: Some(self.endpoint.clone()),
            region: Some(REGION.to_owned()),
            path_style: true,
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            ..Default::default()
        }
    }

    pub async fn store(&self) -> S3Store {
        S3Store::connect(&self.options()).await
    }
}

/// Whether we run in CI, where skipping the external server would hide a broken setup.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A bucket name unique across tests, test binaries and runs against the same server
/// (moto keeps its buckets for its whole life), derived from `base` for readable logs.
fn unique_bucket_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut clean: String = base
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    clean.truncate(30);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // 30 + 1 + ≤10 + 1 + 8 + 1 + ≤4 stays within S3's 63 characters.
    let name = format!(
        "{}-{}-{:08x}-{}",
        clean.trim_matches('-'),
        std::process::id(),
        nanos as u32,
        n % 10_000
    );
    name.trim_start_matches('-').to_owned()
}

/// Creates a fresh bucket on the server named by `CTSGUARD_TEST_S3_ENDPOINT`.
///
/// Returns `None` (after printing a note) when the variable is unset, so the caller skips its
/// test; panics instead when `CI` is set, because CI must not silently skip the second server.
pub async fn external_bucket(base: &str) -> Option<ExternalBucket> {
    let endpoint = match std::env::var(EXTERNAL_ENDPOINT_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ if in_ci() => panic!(
            "{EXTERNAL_ENDPOINT_VAR} is not set but CI is: CI must run the suite against the \
             second S3 server too (run `bash .ci/run`, which starts moto_server)"
        ),
        _ => {
            eprintln!(
                "note: skipping the external-S3 run of {base}: {EXTERNAL_ENDPOINT_VAR} is not set \
                 (`bash .ci/run` sets it to a moto_server it starts)"
            );
            return None;
        }
    };
    let access_key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret_key = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    let bucket = unique_bucket_name(base);

    // Create the bucket with the SDK directly: ctsguard's store has no bucket operations.
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &access_key,
            &secret_key,
            None,
            None,
            "ctsguard-tests",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create bucket {bucket} on {endpoint}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    Some(ExternalBucket {
        endpoint,
        bucket,
        access_key,
        secret_key,
    })
}

/// An `S3Store` over a fresh bucket on the external server; see [`external_bucket`].
pub async fn external_s3_store(base: &str) -> Option<S3Store> {
    Some(external_bucket(base).await?.store().await)
}
