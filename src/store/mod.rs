//! Object storage: one small trait, one backend per file (S3 and a local directory).
//!
//! Keys are always `/`-separated and relative to the bucket (S3) or the root directory (local).
//! Both backends pass the same conformance suite (`tests/store_conformance.rs`).

mod local;
mod s3;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use local::LocalStore;
pub use s3::{S3Options, S3Store};

/// One object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Entity tag without quotes, when the backend has one.
    pub etag: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    /// Folder-like prefixes (ending in the delimiter) when a delimiter was given.
    pub common_prefixes: Vec<String>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<ListCursor>,
}

/// Position to resume a listing from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCursor {
    /// An opaque continuation token from the server.
    Token(String),
    /// Continue with the keys strictly after this one (the `start-after` fallback).
    After(String),
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub cursor: Option<ListCursor>,
    /// Page size; the backend's default (1000 on S3) when `None`.
    pub max_keys: Option<u32>,
}

/// A downloaded object.
#[derive(Debug, Clone)]
pub struct GetOutput {
    pub body: Bytes,
    pub etag: Option<String>,
    /// User metadata, names lower-cased and without the `x-amz-meta-` prefix.
    pub metadata: BTreeMap<String, String>,
}

/// Result of a `head`.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    pub size: u64,
    pub etag: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Size and MD5 of an object, computed while it downloaded (the body is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    pub size: u64,
    pub md5: [u8; 16],
}

/// How a `put` treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Fail with [`StoreError::PreconditionFailed`] if the key exists (`If-None-Match: *`).
    Create,
    /// Fail with [`StoreError::PreconditionFailed`] unless the current ETag is this (`If-Match`).
    Update { etag: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: object not found")]
    NotFound { key: String },
    #[error("{key}: precondition failed (the object was created or changed by someone else)")]
    PreconditionFailed { key: String },
    #[error("{key}: object is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge { key: String, size: u64, limit: u64 },
    #[error("{what}: access denied: {reason}")]
    AccessDenied { what: String, reason: String },
    #[error("{what}: {reason}")]
    Other { what: String, reason: String },
}

impl StoreError {
    pub(crate) fn other(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        StoreError::Other {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Reads of a backend that may block the calling thread (see [`ObjectStore::blocking`]).
pub trait BlockingRead {
    /// What [`ObjectStore::get_body`] returns, read on the calling thread.
    fn read_body(&self, key: &str, limit: u64) -> StoreResult<Bytes>;
}

/// The storage operations ctsguard needs, nothing more.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// A human-readable name of the location (`s3://bucket`, `/path/to/dir`).
    fn describe(&self) -> String;

    /// One page of keys under `req.prefix`, in lexicographic key order.
    async fn list_page(&self, req: &ListRequest) -> StoreResult<ListPage>;

    /// The whole object. Fails with [`StoreError::TooLarge`] rather than reading more than
    /// `limit` bytes.
    async fn get(&self, key: &str, limit: u64) -> StoreResult<GetOutput>;

    /// The object's bytes alone (a trace file: no ETag, no metadata). Backends where those
    /// cost extra work, such as hashing the whole file for a local ETag, override it.
    async fn get_body(&self, key: &str, limit: u64) -> StoreResult<Bytes> {
        Ok(self.get(key, limit).await?.body)
    }

    /// The backend's synchronous reads, when it has them (a local directory): the pipeline
    /// then reads a trace file on the worker thread that decodes it, instead of handing it
    /// from a blocking-read thread to the worker, which on a busy machine costs more CPU
    /// in wake-ups and idle spinning than reading a file from the page cache does.
    fn blocking(&self) -> Option<&dyn BlockingRead> {
        None
    }

    async fn head(&self, key: &str) -> StoreResult<HeadOutput>;

    /// Write an object in one request; returns the new ETag when known.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        metadata: &BTreeMap<String, String>,
        mode: PutMode,
    ) -> StoreResult<Option<String>>;

    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// Downloads the object and returns its size and the MD5 of its bytes, hashing as the
    /// bytes arrive so that memory does not grow with the object. The default reads the whole
    /// body; backends that can stream override it.
    async fn get_md5(&self, key: &str, limit: u64) -> StoreResult<Hashed> {
        use md5::{Digest as _, Md5};
        let got = self.get(key, limit).await?;
        Ok(Hashed {
            size: got.body.len() as u64,
            md5: Md5::digest(&got.body).into(),
        })
    }

    /// Every object and common prefix under `prefix`, following all pages.
    async fn list_all(&self, prefix: &str, delimiter: Option<&str>) -> StoreResult<ListPage> {
        let mut req = ListRequest {
            prefix: prefix.to_owned(),
            delimiter: delimiter.map(str::to_owned),
            cursor: None,
            max_keys: None,
        };
        let mut all = ListPage::default();
        loop {
            let page = self.list_page(&req).await?;
            all.objects.extend(page.objects);
            for p in page.common_prefixes {
                // A server resuming by `start-after` may repeat the prefix a page ended on.
                if all.common_prefixes.last() != Some(&p) {
                    all.common_prefixes.push(p);
                }
            }
            match page.next {
                // A cursor that does not move would loop forever on a broken server.
                Some(next) if Some(&next) != req.cursor.as_ref() => req.cursor = Some(next),
                Some(next) => {
                    return Err(StoreError::other(
                        format!("listing {prefix}"),
                        format!("the server returned the same continuation twice ({next:?})"),
                    ))
                }
                None => return Ok(all),
            }
        }
    }
}
