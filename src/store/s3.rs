//! S3 (and Huawei OBS through its S3 API) as an object store, over aws-sdk-s3.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::{Bytes, BytesMut};

use super::{
    GetOutput, Hashed, HeadOutput, ListCursor, ListPage, ListRequest, ObjectMeta, ObjectStore,
    PutMode, StoreError, StoreResult,
};

/// How to reach the bucket. Everything left `None` comes from the usual AWS chain
/// (environment, shared config/credentials files, profile, web identity, instance metadata).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub profile: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Retries of one request after its first attempt ([`DEFAULT_RETRIES`] when `None`).
    pub retries: Option<u32>,
    /// Time budget of one operation, every attempt and pause included
    /// ([`DEFAULT_TIMEOUT`] when `None`).
    pub timeout: Option<Duration>,
}

/// Retries after the first attempt: with one request in five failing, all nine attempts of a
/// request fail about once in two million requests.
pub const DEFAULT_RETRIES: u32 = 8;
/// Time budget of one storage operation: every attempt, and the pauses between them.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// First pause before a retry; it doubles with each retry (with full jitter) up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A body that delivers no byte for this long is abandoned (and the download tried again).
const STALL_GRACE: Duration = Duration::from_secs(10);

/// The retry policy of one store, shared by the SDK's retries (of requests) and ours (of
/// bodies cut off mid-download, which the SDK cannot retry once it handed the body over).
#[derive(Debug, Clone, Copy)]
struct Policy {
    attempts: u32,
    budget: Duration,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    policy: Policy,
    health: Arc<Health>,
}

/// Whether the endpoint still answers. Once a request has failed every retry for a reason
/// that is not the request's own (5xx, throttling, broken connections, timeouts) and no request
/// has succeeded since, the endpoint is taken to be gone: later requests of this store fail at
/// once instead of each spending the whole budget, so a run against a vanished server ends
/// within about one budget. Requests in flight go on; one success clears the state.
#[derive(Debug, Default)]
struct Health {
    /// Why the endpoint is taken to be gone, and since when.
    gone: Mutex<Option<(Instant, String)>>,
}

impl Health {
    fn check(&self, what: &str) -> StoreResult<()> {
        match &*self.gone.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some((since, reason)) => Err(StoreError::other(
                what,
                format!(
                    "not tried: the endpoint has been failing for {:.1}s (last: {reason})",
                    since.elapsed().as_secs_f64()
                ),
            )),
        }
    }

    fn failed(&self, reason: &str) {
        let mut g = self.gone.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some((Instant::now(), reason.to_owned()));
        }
    }

    fn succeeded(&self) {
        *self.gone.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The signing region when none is configured: the one an OBS endpoint names
/// (`obs.<region>.myhuaweicloud.com`), else the SDK's default chain, else `us-east-1`.
fn region_from_endpoint(endpoint: &str) -> Option<String> {
    let host = url::Url::parse(endpoint).ok()?.host_str()?.to_owned();
    // obs.<region>.<domain>.<tld> at least: `obs.myhuaweicloud.com` names no region.
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["obs", region, _, _, ..] if !region.is_empty() => Some((*region).to_owned()),
        _ => None,
    }
}

impl S3Store {
    /// Starts a download, refusing at once an object whose announced size is over `limit`.
    async fn open_body(
        &self,
        key: &str,
        limit: u64,
    ) -> StoreResult<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.health.check(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed(key, e))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        if size > limit {
            return Err(StoreError::TooLarge {
                key: key.to_owned(),
                size,
                limit,
            });
        }
        Ok(out)
    }

    /// Downloads the object into `sink` (reset at the start of each attempt) and returns its
    /// ETag, metadata and size. A body cut off mid-way (connection reset, fewer bytes than
    /// announced, a stall) is downloaded again, with backoff and jitter, within the attempts
    /// and the time budget: the SDK retries requests, but not a body it has handed over.
    async fn download(
        &self,
        key: &str,
        limit: u64,
        sink: &mut impl BodySink,
    ) -> StoreResult<(Option<String>, BTreeMap<String, String>, u64)> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let out = if attempt == 1 {
                self.open_body(key, limit).await?
            } else {
                // A new download gets what is left of the budget, not a budget of its own.
                let left = self.policy.budget.saturating_sub(started.elapsed());
                tokio::time::timeout(left, self.open_body(key, limit))
                    .await
                    .map_err(|_| {
                        let e = StoreError::other(
                            key,
                            format!("download cut off, and the time budget ran out ({attempt} attempts)"),
                        );
                        self.health.failed(&e.to_string());
                        e
                    })??
            };
            let announced = out.content_length().map(|n| n.max(0) as u64);
            sink.reset(announced.unwrap_or(0).min(limit));
            let etag = unquote(out.e_tag());
            let metadata = metadata_of(out.metadata());
            let cut = match for_each_chunk(key, out.body, limit, |c| sink.feed(c)).await {
                Ok(size) if announced.is_none_or(|n| n == size) => {
                    self.health.succeeded();
                    return Ok((etag, metadata, size));
                }
                Ok(size) => format!(
                    "the body ended after {size} of {} announced bytes",
                    announced.unwrap_or_default()
                ),
                Err(BodyError::Store(e)) => return Err(e),
                Err(BodyError::Cut(reason)) => reason,
            };
            let pause = backoff(attempt);
            if attempt >= self.policy.attempts || started.elapsed() + pause > self.policy.budget {
                let e = StoreError::other(
                    key,
                    format!("download cut off {attempt} times, last: {cut}"),
                );
                self.health.failed(&e.to_string());
                return Err(e);
            }
            tracing::debug!(key = %key, attempt, reason = %cut, "download cut off; trying again");
            tokio::time::sleep(pause).await;
        }
    }

    pub async fn connect(opts: &S3Options) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        let region = opts
            .region
            .clone()
            .or_else(|| opts.endpoint.as_deref().and_then(region_from_endpoint));
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let (Some(ak), Some(sk)) = (&opts.access_key_id, &opts.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                ak.clone(),
                sk.clone(),
                opts.session_token.clone(),
                None,
                "ctsguard-config",
            ));
        }
        let shared = loader.load().await;
        let policy = Policy {
            attempts: opts
                .retries
                .unwrap_or(DEFAULT_RETRIES)
                .saturating_add(1)
                .max(1),
            budget: opts
                .timeout
                .unwrap_or(DEFAULT_TIMEOUT)
                .max(Duration::from_secs(1)),
        };
        let mut conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(opts.path_style)
            // OBS and most S3-compatible stores reject the CRC headers and aws-chunked
            // uploads that the SDKs send by default since 2025 (SPEC §6).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Throttling (503 SlowDown), 500s, connection errors and timeouts are retried with
            // exponential backoff and full jitter, `attempts` times at most and within the
            // operation's budget. Not the SDK's default retry quota: it is shared by every
            // request of the process, so a bucket answering one request in five with an error
            // would drain it within a few hundred requests and then fail requests at their
            // first error. A batch run bounds its retries by attempts and time instead.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(policy.attempts)
                    .with_initial_backoff(INITIAL_BACKOFF)
                    .with_max_backoff(MAX_BACKOFF),
            )
            .retry_partition(
                RetryPartition::custom("ctsguard")
                    .token_bucket(TokenBucket::unlimited())
                    .build(),
            )
            // The budget bounds a request with all its retries; one attempt gets a third of it,
            // so a server that accepts connections but never answers still leaves room for
            // retries. Reading a body is not bounded by time (a large file on a slow link may
            // take long) but by progress: a body that stalls fails and is downloaded again.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10).min(policy.budget))
                    .operation_timeout(policy.budget)
                    .operation_attempt_timeout(policy.budget / 3)
                    .build(),
            )
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(STALL_GRACE)
                    .build(),
            );
        if shared.region().is_none() {
            conf = conf.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &opts.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        S3Store {
            client: Client::from_conf(conf.build()),
            bucket: opts.bucket.clone(),
            policy,
            health: Arc::default(),
        }
    }
}

/// Whether an error says something about the endpoint rather than about the request: no
/// answer, or a 5xx / 429 answer (after the SDK's retries).
fn is_transient<E>(err: &SdkError<E>) -> bool {
    match err.raw_response().map(|r| r.status().as_u16()) {
        Some(status) => status >= 500 || status == 429,
        None => !matches!(err, SdkError::ConstructionFailure(_)),
    }
}

impl S3Store {
    /// Maps a failed request's error, noting an endpoint that fails.
    fn failed<E>(&self, what: &str, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = is_transient(&err);
        let mapped = map_err(what, err);
        if transient {
            self.health.failed(&mapped.to_string());
        } else {
            // The endpoint answered.
            self.health.succeeded();
        }
        mapped
    }
}

fn map_err<E>(what: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (status, err.code()) {
        (_, Some("NoSuchBucket")) => StoreError::other(what, describe(&err)),
        (Some(404), _) | (_, Some("NoSuchKey")) | (_, Some("NotFound")) => StoreError::NotFound {
            key: what.to_owned(),
        },
        (Some(412), _) | (_, Some("PreconditionFailed")) => StoreError::PreconditionFailed {
            key: what.to_owned(),
        },
        (Some(403), _) | (_, Some("AccessDenied")) => StoreError::AccessDenied {
            what: what.to_owned(),
            reason: describe(&err),
        },
        _ => StoreError::other(what, describe(&err)),
    }
}

/// A one-line reason: the service's code and message when it answered, the cause chain
/// (connection refused, DNS, TLS, timeout) when it did not.
fn describe<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                _ => format!("HTTP {status}"),
            }
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

fn unquote(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_owned())
}

fn metadata_of(
    map: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// Where a download's bytes go; reset when the download starts again.
trait BodySink: Send {
    fn reset(&mut self, announced: u64);
    fn feed(&mut self, chunk: &[u8]);
}

struct Buffer(BytesMut);

impl BodySink for Buffer {
    fn reset(&mut self, announced: u64) {
        self.0 = BytesMut::with_capacity(announced as usize);
    }
    fn feed(&mut self, chunk: &[u8]) {
        self.0.extend_from_slice(chunk);
    }
}

struct Hasher(md5::Md5);

impl BodySink for Hasher {
    fn reset(&mut self, _: u64) {
        use md5::Digest as _;
        self.0 = md5::Md5::new();
    }
    fn feed(&mut self, chunk: &[u8]) {
        use md5::Digest as _;
        self.0.update(chunk);
    }
}

/// Why reading a body stopped.
enum BodyError {
    /// For good (`TooLarge`).
    Store(StoreError),
    /// The connection broke or stalled mid-body: worth another download.
    Cut(String),
}

/// The pause before retry number `attempt` (1-based): exponential, with full jitter.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng as _;
    let cap = INITIAL_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    cap.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// Feeds the body to `f` chunk by chunk, failing with `TooLarge` past `limit` bytes (a
/// server may send more than its Content-Length announced). Returns the size read.
async fn for_each_chunk(
    key: &str,
    mut body: ByteStream,
    limit: u64,
    mut f: impl FnMut(&[u8]),
) -> Result<u64, BodyError> {
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BodyError::Cut(DisplayErrorContext(&e).to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(BodyError::Store(StoreError::TooLarge {
                key: key.to_owned(),
                size,
                limit,
            }));
        }
        f(&chunk);
    }
    Ok(size)
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn list_page(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let mut call = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&req.prefix)
            .set_delimiter(req.delimiter.clone())
            .set_max_keys(req.max_keys.map(|m| m.min(i32::MAX as u32) as i32));
        match &req.cursor {
            Some(ListCursor::Token(t)) => call = call.continuation_token(t),
            Some(ListCursor::After(k)) => call = call.start_after(k),
            None => {}
        }
        let what = format!("{}/{}", self.describe(), req.prefix);
        self.health.check(&what)?;
        let out = call.send().await.map_err(|e| self.failed(&what, e))?;
        self.health.succeeded();
        let objects: Vec<ObjectMeta> = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: unquote(o.e_tag()),
                })
            })
            .collect();
        let common_prefixes: Vec<String> = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_owned))
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            match out.next_continuation_token() {
                Some(t) if !t.is_empty() => Some(ListCursor::Token(t.to_owned())),
                // Some OBS versions report a truncated page without a token: resume after the
                // greatest entry of this page instead of stopping silently at 1000 keys.
                _ => {
                    let last_obj = objects.last().map(|o| o.key.clone());
                    // Resuming right after a common prefix would fold the keys under it into
                    // the same prefix again: skip past everything under it instead (U+10FFFF
                    // sorts after any character a key can hold).
                    let last_cp = common_prefixes.last().map(|p| format!("{p}\u{10FFFF}"));
                    last_obj.max(last_cp).map(ListCursor::After)
                }
            }
        } else {
            None
        };
        Ok(ListPage {
            objects,
            common_prefixes,
            next,
        })
    }

    async fn get(&self, key: &str, limit: u64) -> StoreResult<GetOutput> {
        let mut buf = Buffer(BytesMut::new());
        let (etag, metadata, _) = self.download(key, limit, &mut buf).await?;
        Ok(GetOutput {
            body: buf.0.freeze(),
            etag,
            metadata,
        })
    }

    async fn get_md5(&self, key: &str, limit: u64) -> StoreResult<Hashed> {
        use md5::{Digest as _, Md5};
        // Chunk by chunk: an integrity check of a large file costs no more memory than a small one.
        let mut md5 = Hasher(Md5::new());
        let (_, _, size) = self.download(key, limit, &mut md5).await?;
        Ok(Hashed {
            size,
            md5: md5.0.finalize().into(),
        })
    }

    async fn head(&self, key: &str) -> StoreResult<HeadOutput> {
        self.health.check(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed(key, e))?;
        self.health.succeeded();
        Ok(HeadOutput {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: unquote(out.e_tag()),
            metadata: metadata_of(out.metadata()),
        })
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        metadata: &BTreeMap<String, String>,
        mode: PutMode,
    ) -> StoreResult<Option<String>> {
        let mut call = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        for (k, v) in metadata {
            call = call.metadata(k, v);
        }
        match &mode {
            PutMode::Overwrite => {}
            PutMode::Create => call = call.if_none_match("*"),
            PutMode::Update { etag } => call = call.if_match(format!("\"{etag}\"")),
        }
        let updating = matches!(mode, PutMode::Update { .. });
        self.health.check(key)?;
        let out = call.send().await.map_err(|e| match self.failed(key, e) {
            // AWS answers a conditional update of a missing key with 404, s3s and OBS with
            // 412; to the caller both mean "not the object you read".
            StoreError::NotFound { key } if updating => StoreError::PreconditionFailed { key },
            other => other,
        })?;
        self.health.succeeded();
        Ok(unquote(out.e_tag()))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.health.check(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed(key, e))?;
        self.health.succeeded();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::region_from_endpoint;

    #[test]
    fn obs_endpoints_name_their_region() {
        assert_eq!(
            region_from_endpoint("https://obs.eu-de.otc.t-systems.com").as_deref(),
            Some("eu-de")
        );
        assert_eq!(
            region_from_endpoint("https://obs.ap-southeast-1.myhuaweicloud.com").as_deref(),
            Some("ap-southeast-1")
        );
        assert_eq!(region_from_endpoint("http://127.0.0.1:9000"), None);
        assert_eq!(region_from_endpoint("https://obs.myhuaweicloud.com"), None);
    }
}
