//! S3 (and Huawei OBS through its S3 API) as an object store, over aws-sdk-s3.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
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
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
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
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
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
        let mut conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(opts.path_style)
            // OBS and most S3-compatible stores reject the CRC headers and aws-chunked
            // uploads that the SDKs send by default since 2025 (SPEC §6).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(300))
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
        }
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

/// Feeds the body to `f` chunk by chunk, failing with `TooLarge` past `limit` bytes (a
/// server may send more than its Content-Length announced). Returns the size read.
async fn for_each_chunk(
    key: &str,
    mut body: ByteStream,
    limit: u64,
    mut f: impl FnMut(&[u8]),
) -> StoreResult<u64> {
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StoreError::other(key, DisplayErrorContext(&e)))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(StoreError::TooLarge {
                key: key.to_owned(),
                size,
                limit,
            });
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
        let out = call.send().await.map_err(|e| map_err(&what, e))?;
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
        let out = self.open_body(key, limit).await?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        let etag = unquote(out.e_tag());
        let metadata = metadata_of(out.metadata());
        let mut buf = BytesMut::with_capacity(size.min(limit) as usize);
        for_each_chunk(key, out.body, limit, |c| buf.extend_from_slice(c)).await?;
        Ok(GetOutput {
            body: buf.freeze(),
            etag,
            metadata,
        })
    }

    async fn get_md5(&self, key: &str, limit: u64) -> StoreResult<Hashed> {
        use md5::{Digest as _, Md5};
        let out = self.open_body(key, limit).await?;
        let mut md5 = Md5::new();
        // Chunk by chunk: an integrity check of a large file costs no more memory than a small one.
        let size = for_each_chunk(key, out.body, limit, |c| md5.update(c)).await?;
        Ok(Hashed {
            size,
            md5: md5.finalize().into(),
        })
    }

    async fn head(&self, key: &str) -> StoreResult<HeadOutput> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
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
        let out = call.send().await.map_err(|e| match map_err(key, e) {
            // AWS answers a conditional update of a missing key with 404, s3s and OBS with
            // 412; to the caller both mean "not the object you read".
            StoreError::NotFound { key } if updating => StoreError::PreconditionFailed { key },
            other => other,
        })?;
        Ok(unquote(out.e_tag()))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
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
