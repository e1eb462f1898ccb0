//! A directory as an object store: key `a/b/c` is the file `<root>/a/b/c`.
//!
//! User metadata lives in a hidden sidecar `.<name>.meta.json` beside the file, and
//! listings skip every name starting with `.` (sidecars and temporary files), so a
//! directory copied from a bucket (`aws s3 sync`, `obsutil cp -r`) reads as that bucket.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    BlockingRead, GetOutput, Hashed, HeadOutput, ListCursor, ListPage, ListRequest, ObjectMeta,
    ObjectStore, PutMode, StoreError, StoreResult,
};

const DEFAULT_PAGE: u32 = 1000;

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store over an existing directory.
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(Self { root }),
            Ok(_) => Err(StoreError::other(
                root.display().to_string(),
                "not a directory",
            )),
            Err(e) => Err(StoreError::other(root.display().to_string(), e)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        // Keys come from listings and configuration; refuse anything that could leave the root.
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(StoreError::other(key, "invalid key for a local store"));
        }
        Ok(self.root.join(key))
    }

    fn sidecar_of(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.meta.json"))
    }
}

fn io_err(key: &str, e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound {
            key: key.to_owned(),
        },
        io::ErrorKind::PermissionDenied => StoreError::AccessDenied {
            what: key.to_owned(),
            reason: e.to_string(),
        },
        _ => StoreError::other(key, e),
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// A whole file, refused when it is larger than `limit`.
fn read_limited(path: &Path, key: &str, limit: u64) -> StoreResult<Vec<u8>> {
    // One open and one stat per file: this runs for every trace file of a run.
    let file = std::fs::File::open(path).map_err(|e| io_err(key, e))?;
    let size = file.metadata().map_err(|e| io_err(key, e))?.len();
    let too_large = |size| StoreError::TooLarge {
        key: key.to_owned(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut body = Vec::with_capacity(size as usize);
    // A file that grows while it is read is held to the limit all the same.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| io_err(key, e))?;
    if body.len() as u64 > limit {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

impl BlockingRead for LocalStore {
    fn read_body(&self, key: &str, limit: u64) -> StoreResult<Bytes> {
        read_limited(&self.path_of(key)?, key, limit).map(Bytes::from)
    }
}

fn read_metadata(path: &Path, key: &str) -> StoreResult<BTreeMap<String, String>> {
    match std::fs::read(LocalStore::sidecar_of(path)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::other(key, format!("unreadable metadata sidecar: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err(key, e)),
    }
}

/// Walks `dir` recursively, collecting keys (relative to `root`) that start with `prefix`.
fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // Object keys are UTF-8; such a file cannot be a CTS object, but say so.
            tracing::warn!("skipped {}: file name is not UTF-8", entry.path().display());
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = match path.strip_prefix(root) {
            Ok(r) => r.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"),
            Err(_) => continue,
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            // Descend only where keys under this folder can still match the prefix.
            let folder = format!("{rel}/");
            if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                walk(root, &path, prefix, out)?;
            }
        } else if rel.starts_with(prefix) {
            let size = entry.metadata()?.len();
            out.push(ObjectMeta {
                key: rel,
                size,
                etag: None,
            });
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn list_page(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let this = self.clone();
        let req = req.clone();
        tokio::task::spawn_blocking(move || this.list_page_blocking(&req))
            .await
            .map_err(|e| StoreError::other("listing", e))?
    }

    async fn get(&self, key: &str, limit: u64) -> StoreResult<GetOutput> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let body = read_limited(&path, &key, limit)?;
            let metadata = read_metadata(&path, &key)?;
            let etag = Some(md5_hex(&body));
            Ok(GetOutput {
                body: Bytes::from(body),
                etag,
                metadata,
            })
        })
        .await
        .map_err(|e| StoreError::other("read", e))?
    }

    async fn get_body(&self, key: &str, limit: u64) -> StoreResult<Bytes> {
        // The synchronous read, on a blocking thread.
        let (store, key) = (self.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || store.read_body(&key, limit))
            .await
            .map_err(|e| StoreError::other("read", e))?
    }

    fn blocking(&self) -> Option<&dyn BlockingRead> {
        Some(self)
    }

    async fn get_md5(&self, key: &str, limit: u64) -> StoreResult<Hashed> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = std::fs::File::open(&path).map_err(|e| io_err(&key, e))?;
            let mut md5 = Md5::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(&key, e)),
                };
                size += n as u64;
                if size > limit {
                    return Err(StoreError::TooLarge { key, size, limit });
                }
                md5.update(&buf[..n]);
            }
            Ok(Hashed {
                size,
                md5: md5.finalize().into(),
            })
        })
        .await
        .map_err(|e| StoreError::other("read", e))?
    }

    async fn head(&self, key: &str) -> StoreResult<HeadOutput> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let body = std::fs::read(&path).map_err(|e| io_err(&key, e))?;
            Ok(HeadOutput {
                size: body.len() as u64,
                etag: Some(md5_hex(&body)),
                metadata: read_metadata(&path, &key)?,
            })
        })
        .await
        .map_err(|e| StoreError::other("head", e))?
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        metadata: &BTreeMap<String, String>,
        mode: PutMode,
    ) -> StoreResult<Option<String>> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        let metadata = metadata.clone();
        tokio::task::spawn_blocking(move || put_blocking(&path, &key, &body, &metadata, mode))
            .await
            .map_err(|e| StoreError::other("write", e))?
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(key, e)),
        }
        match tokio::fs::remove_file(Self::sidecar_of(&path)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(key, e)),
        }
    }
}

impl LocalStore {
    fn list_page_blocking(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let prefix = req.prefix.as_str();
        // Start at the deepest folder the prefix names, not at the root.
        let start = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut objects = Vec::new();
        walk(&self.root, &start, prefix, &mut objects)
            .map_err(|e| StoreError::other(format!("listing {prefix}"), e))?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));

        // Apply the delimiter: keys with a delimiter after the prefix collapse into one prefix.
        let mut entries: Vec<(String, Option<ObjectMeta>)> = Vec::with_capacity(objects.len());
        for obj in objects {
            let folded = req.delimiter.as_deref().and_then(|d| {
                obj.key[prefix.len()..]
                    .find(d)
                    .map(|i| obj.key[..prefix.len() + i + d.len()].to_owned())
            });
            match folded {
                Some(cp) => {
                    if entries.last().map(|(k, _)| k) != Some(&cp) {
                        entries.push((cp, None));
                    }
                }
                None => entries.push((obj.key.clone(), Some(obj))),
            }
        }

        let after = match &req.cursor {
            Some(ListCursor::Token(t)) | Some(ListCursor::After(t)) => Some(t.as_str()),
            None => None,
        };
        let max = req.max_keys.unwrap_or(DEFAULT_PAGE).max(1) as usize;
        let mut page = ListPage::default();
        let mut remaining = entries
            .into_iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .peekable();
        let mut last = None;
        for (k, obj) in remaining.by_ref().take(max) {
            match obj {
                Some(o) => page.objects.push(o),
                None => page.common_prefixes.push(k.clone()),
            }
            last = Some(k);
        }
        if remaining.peek().is_some() {
            page.next = last.map(ListCursor::Token);
        }
        Ok(page)
    }
}

fn put_blocking(
    path: &Path,
    key: &str,
    body: &[u8],
    metadata: &BTreeMap<String, String>,
    mode: PutMode,
) -> StoreResult<Option<String>> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::other(key, "key has no parent folder"))?;
    std::fs::create_dir_all(dir).map_err(|e| io_err(key, e))?;
    // A conditional put is a check followed by a rename: other processes doing the same on
    // this key wait on an exclusive lock of a hidden lock file, so the pair is atomic (the
    // lease of `scan` depends on it). The OS drops the lock if the process dies.
    let _guard = match mode {
        PutMode::Overwrite => None,
        _ => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!(".{name}.lock")))
                .map_err(|e| io_err(key, e))?;
            lock.lock().map_err(|e| io_err(key, e))?;
            Some(lock)
        }
    };
    match &mode {
        PutMode::Overwrite => {}
        PutMode::Create => {
            if path.exists() {
                return Err(StoreError::PreconditionFailed {
                    key: key.to_owned(),
                });
            }
        }
        PutMode::Update { etag } => {
            let current = std::fs::read(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StoreError::PreconditionFailed {
                    key: key.to_owned(),
                },
                _ => io_err(key, e),
            })?;
            if !md5_hex(&current).eq_ignore_ascii_case(etag.trim_matches('"')) {
                return Err(StoreError::PreconditionFailed {
                    key: key.to_owned(),
                });
            }
        }
    }
    // Temp file + rename: readers see the old or the new object, never half of one.
    let mut tmp = tempfile::Builder::new()
        .prefix(".ctsguard-tmp-")
        .tempfile_in(dir)
        .map_err(|e| io_err(key, e))?;
    tmp.write_all(body).map_err(|e| io_err(key, e))?;
    tmp.as_file().sync_all().map_err(|e| io_err(key, e))?;
    let sidecar = LocalStore::sidecar_of(path);
    if metadata.is_empty() {
        let _ = std::fs::remove_file(&sidecar);
    } else {
        let json = serde_json::to_vec(metadata).map_err(|e| StoreError::other(key, e))?;
        std::fs::write(&sidecar, json).map_err(|e| io_err(key, e))?;
    }
    if mode == PutMode::Create {
        // persist_noclobber is atomic: two creators cannot both win.
        tmp.persist_noclobber(path)
            .map_err(|e| match e.error.kind() {
                io::ErrorKind::AlreadyExists => StoreError::PreconditionFailed {
                    key: key.to_owned(),
                },
                _ => io_err(key, e.error),
            })?;
    } else {
        tmp.persist(path).map_err(|e| io_err(key, e.error))?;
    }
    Ok(Some(md5_hex(body)))
}
