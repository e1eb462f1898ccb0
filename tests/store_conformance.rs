//! One conformance suite for every `ObjectStore` backend.
//!
//! Each `check_*` function is written once against `&dyn ObjectStore` and run, on a fresh and
//! empty store, for every backend: a local directory, the in-process s3s-fs server (path
//! style), the same server answering truncated listings without continuation tokens (as some
//! OBS versions do), and an external S3 server when `CTSGUARD_TEST_S3_ENDPOINT` names one
//! (moto_server in CI). The tests after the suite look at what goes over the wire to S3.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use ctsguard::store::{
    ListCursor, ListPage, ListRequest, ObjectStore, PutMode, S3Options, S3Store, StoreError,
};
use md5::{Digest, Md5};

use common::{S3Server, ServerOptions};

const LIMIT: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers

fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn put(store: &dyn ObjectStore, key: &str, body: &[u8]) -> Option<String> {
    store
        .put(
            key,
            Bytes::copy_from_slice(body),
            &BTreeMap::new(),
            PutMode::Overwrite,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: put {key}: {e}", store.describe()))
}

/// Puts every key with a body derived from its name (so sizes differ).
async fn put_keys(store: &dyn ObjectStore, keys: &[&str]) {
    for key in keys {
        put(store, key, format!("body of {key}").as_bytes()).await;
    }
}

fn keys_of(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|o| o.key.as_str()).collect()
}

fn req(prefix: &str, delimiter: Option<&str>, max_keys: Option<u32>) -> ListRequest {
    ListRequest {
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        cursor: None,
        max_keys,
    }
}

/// Follows `list_page` by hand, returning every page (bounded, so a cursor that never ends
/// fails the test instead of hanging it).
async fn all_pages(store: &dyn ObjectStore, mut request: ListRequest) -> Vec<ListPage> {
    let mut pages = Vec::new();
    loop {
        let page = store
            .list_page(&request)
            .await
            .unwrap_or_else(|e| panic!("{}: list_page {request:?}: {e}", store.describe()));
        let next = page.next.clone();
        pages.push(page);
        assert!(
            pages.len() <= 100,
            "{}: listing never ends: {request:?}",
            store.describe()
        );
        match next {
            Some(cursor) => request.cursor = Some(cursor),
            None => return pages,
        }
    }
}

/// Seven keys whose lexicographic order is not their calendar order: CTS writes day folders
/// unpadded, so October sorts before September and the 30th before the 4th.
const DAY_KEYS_SORTED: [&str; 7] = [
    "2026/10/1/trace-a.json.gz",
    "2026/10/1/trace-b.json.gz",
    "2026/10/2/trace-a.json.gz",
    "2026/9/30/trace-a.json.gz",
    "2026/9/30/trace-b.json.gz",
    "2026/9/4/trace-a.json.gz",
    "2026/9/5/trace-a.json.gz",
];

/// The same keys in the order a writer would produce them (calendar order).
const DAY_KEYS_WRITTEN: [&str; 7] = [
    "2026/9/4/trace-a.json.gz",
    "2026/9/5/trace-a.json.gz",
    "2026/9/30/trace-b.json.gz",
    "2026/9/30/trace-a.json.gz",
    "2026/10/1/trace-a.json.gz",
    "2026/10/1/trace-b.json.gz",
    "2026/10/2/trace-a.json.gz",
];

// ---------------------------------------------------------------------------------------------
// The checks. Each gets a fresh, empty store.

async fn check_put_get_round_trip(store: &dyn ObjectStore) {
    // Binary, not UTF-8, like the gzip files it will hold.
    let body: &[u8] = b"\x1f\x8b\x08\x00\xff\x00 some trace bytes \xfe\r\n";
    let metadata = meta(&[("ctsguard-state", "v1"), ("owner", "scan")]);
    store
        .put(
            "state/checkpoint.json",
            Bytes::from_static(body),
            &metadata,
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    let got = store
        .get("state/checkpoint.json", LIMIT)
        .await
        .expect("get");
    assert_eq!(&got.body[..], body, "body round trip");
    // Names come back lower-case and without the `x-amz-meta-` prefix, values unchanged.
    assert_eq!(got.metadata, metadata, "metadata round trip");

    // Overwrite replaces the body and the metadata, it does not merge them.
    let body2: &[u8] = b"second version";
    store
        .put(
            "state/checkpoint.json",
            Bytes::from_static(body2),
            &meta(&[("owner", "backfill")]),
            PutMode::Overwrite,
        )
        .await
        .expect("overwrite");
    let got = store
        .get("state/checkpoint.json", LIMIT)
        .await
        .expect("get");
    assert_eq!(&got.body[..], body2);
    assert_eq!(got.metadata, meta(&[("owner", "backfill")]));

    // No metadata at all reads back as an empty map.
    put(store, "plain.bin", b"x").await;
    let got = store.get("plain.bin", LIMIT).await.expect("get plain");
    assert!(
        got.metadata.is_empty(),
        "unexpected metadata {:?}",
        got.metadata
    );
}

async fn check_head(store: &dyn ObjectStore) {
    let body = vec![7u8; 123];
    let metadata = meta(&[("digest-sha", "abc123")]);
    store
        .put(
            "a/b/object.bin",
            Bytes::from(body.clone()),
            &metadata,
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    let head = store.head("a/b/object.bin").await.expect("head");
    assert_eq!(head.size, 123);
    assert_eq!(head.etag.as_deref(), Some(md5_hex(&body).as_str()));
    assert_eq!(head.metadata, metadata);

    match store.head("a/b/missing.bin").await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("head of a missing key: expected NotFound, got {other:?}"),
    }
}

async fn check_get_missing_is_not_found(store: &dyn ObjectStore) {
    put(store, "exists.json", b"{}").await;
    match store.get("no/such/key.json", LIMIT).await {
        // The error names the key, so a run's report can say which object was missing.
        Err(StoreError::NotFound { key }) => assert_eq!(key, "no/such/key.json"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn check_get_limit(store: &dyn ObjectStore) {
    let body = vec![b'x'; 100];
    put(store, "big.json", &body).await;
    match store.get("big.json", 99).await {
        Err(StoreError::TooLarge { key, size, limit }) => {
            assert_eq!(key, "big.json");
            assert_eq!(limit, 99);
            assert!(size > limit, "reported size {size} is not over the limit");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A limit equal to the size is enough.
    let got = store.get("big.json", 100).await.expect("get at the limit");
    assert_eq!(&got.body[..], &body[..]);
}

async fn check_put_create(store: &dyn ObjectStore) {
    let empty = BTreeMap::new();
    store
        .put(
            "lease.json",
            Bytes::from_static(b"first"),
            &empty,
            PutMode::Create,
        )
        .await
        .expect("create on a new key succeeds");
    match store
        .put(
            "lease.json",
            Bytes::from_static(b"second"),
            &empty,
            PutMode::Create,
        )
        .await
    {
        Err(StoreError::PreconditionFailed { key }) => assert_eq!(key, "lease.json"),
        other => panic!("create on an existing key: expected PreconditionFailed, got {other:?}"),
    }
    let got = store.get("lease.json", LIMIT).await.expect("get");
    assert_eq!(&got.body[..], b"first", "a failed create must not write");
}

async fn check_put_update(store: &dyn ObjectStore) {
    let empty = BTreeMap::new();
    let e1 = put(store, "checkpoint.json", b"v1")
        .await
        .expect("put returns an ETag");
    let e2 = store
        .put(
            "checkpoint.json",
            Bytes::from_static(b"v2"),
            &empty,
            PutMode::Update { etag: e1.clone() },
        )
        .await
        .expect("update with the current ETag succeeds")
        .expect("update returns the new ETag");
    assert_eq!(e2, md5_hex(b"v2"));

    // A writer still holding the old ETag lost the race.
    match store
        .put(
            "checkpoint.json",
            Bytes::from_static(b"v3"),
            &empty,
            PutMode::Update { etag: e1 },
        )
        .await
    {
        Err(StoreError::PreconditionFailed { key }) => assert_eq!(key, "checkpoint.json"),
        other => panic!("update with a stale ETag: expected PreconditionFailed, got {other:?}"),
    }
    match store
        .put(
            "checkpoint.json",
            Bytes::from_static(b"v3"),
            &empty,
            PutMode::Update {
                etag: "0123456789abcdef0123456789abcdef".into(),
            },
        )
        .await
    {
        Err(StoreError::PreconditionFailed { .. }) => {}
        other => panic!("update with a wrong ETag: expected PreconditionFailed, got {other:?}"),
    }
    let got = store.get("checkpoint.json", LIMIT).await.expect("get");
    assert_eq!(&got.body[..], b"v2", "a failed update must not write");

    // Updating an object that does not exist must not create it. AWS answers 404 here and
    // s3s-fs 412, so both errors are accepted.
    match store
        .put(
            "never-written.json",
            Bytes::from_static(b"x"),
            &empty,
            PutMode::Update { etag: e2 },
        )
        .await
    {
        Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }) => {}
        other => panic!("update of a missing key: expected an error, got {other:?}"),
    }
    assert!(matches!(
        store.head("never-written.json").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn check_etag_is_md5(store: &dyn ObjectStore) {
    let body: &[u8] = b"{\"Records\":[]}\n";
    let expected = md5_hex(body);
    assert_eq!(expected, expected.to_ascii_lowercase());
    let put_etag = put(store, "d/etag.json", body).await;
    assert_eq!(
        put_etag.as_deref(),
        Some(expected.as_str()),
        "ETag from put"
    );
    let head = store.head("d/etag.json").await.expect("head");
    assert_eq!(
        head.etag.as_deref(),
        Some(expected.as_str()),
        "ETag from head"
    );
    let got = store.get("d/etag.json", LIMIT).await.expect("get");
    assert_eq!(
        got.etag.as_deref(),
        Some(expected.as_str()),
        "ETag from get"
    );
    // Listings report an ETag only when the backend has one at hand; if they do, it agrees.
    let page = store.list_page(&req("d/", None, None)).await.expect("list");
    assert_eq!(keys_of(&page), ["d/etag.json"]);
    if let Some(etag) = &page.objects[0].etag {
        assert_eq!(etag, &expected, "ETag from the listing");
    }
}

/// `get_md5` hashes what `get` returns, without keeping it, and fails like `get`.
async fn check_get_md5(store: &dyn ObjectStore) {
    // Larger than one read buffer, so the streaming path hashes several chunks.
    let body: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    put(store, "h/big.bin", &body).await;
    let hashed = store.get_md5("h/big.bin", LIMIT).await.expect("get_md5");
    assert_eq!(hashed.size, body.len() as u64);
    assert_eq!(hex::encode(hashed.md5), md5_hex(&body));
    assert!(matches!(
        store.get_md5("h/missing.bin", LIMIT).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_md5("h/big.bin", 1000).await,
        Err(StoreError::TooLarge { .. })
    ));
}

/// `get_body` returns what `get` returns, and fails like `get`.
async fn check_get_body(store: &dyn ObjectStore) {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    put(store, "b/file.bin", &body).await;
    let got = store.get_body("b/file.bin", LIMIT).await.expect("get_body");
    assert_eq!(&got[..], &body[..]);
    // A store that reads synchronously (a directory) answers the same there.
    if let Some(reader) = store.blocking() {
        let got = reader.read_body("b/file.bin", LIMIT).expect("read_body");
        assert_eq!(&got[..], &body[..]);
        assert!(matches!(
            reader.read_body("b/missing.bin", LIMIT),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            reader.read_body("b/file.bin", 1000),
            Err(StoreError::TooLarge { limit: 1000, .. })
        ));
    }
    match store.get_body("b/missing.bin", LIMIT).await {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "b/missing.bin"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match store.get_body("b/file.bin", 1000).await {
        Err(StoreError::TooLarge { key, size, limit }) => {
            assert_eq!((key.as_str(), limit), ("b/file.bin", 1000));
            assert!(size > limit, "reported size {size} is not over the limit");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

async fn check_list_prefix(store: &dyn ObjectStore) {
    put_keys(store, &DAY_KEYS_WRITTEN).await;
    put_keys(
        store,
        &["2027/1/1/trace.json.gz", "other/x.json", "2026-notes.txt"],
    )
    .await;

    let page = store
        .list_page(&req("2026/9/", None, None))
        .await
        .expect("list");
    assert_eq!(
        keys_of(&page),
        [
            "2026/9/30/trace-a.json.gz",
            "2026/9/30/trace-b.json.gz",
            "2026/9/4/trace-a.json.gz",
            "2026/9/5/trace-a.json.gz",
        ]
    );
    assert!(page.common_prefixes.is_empty(), "no delimiter, no prefixes");
    assert!(page.next.is_none());
    for obj in &page.objects {
        assert_eq!(
            obj.size,
            format!("body of {}", obj.key).len() as u64,
            "size of {}",
            obj.key
        );
    }

    // A prefix is a string prefix, not a folder: `2026/9/3` matches the 30th, not the 4th.
    let page = store
        .list_page(&req("2026/9/3", None, None))
        .await
        .expect("list");
    assert_eq!(
        keys_of(&page),
        ["2026/9/30/trace-a.json.gz", "2026/9/30/trace-b.json.gz"]
    );

    // `2026` also matches the file `2026-notes.txt` beside the folder.
    let page = store
        .list_page(&req("2026", None, None))
        .await
        .expect("list");
    assert_eq!(page.objects.len(), 8, "{:?}", keys_of(&page));
    assert_eq!(page.objects[0].key, "2026-notes.txt");
}

async fn check_list_delimiter(store: &dyn ObjectStore) {
    put_keys(
        store,
        &[
            "a/1.json",
            "a/b/2.json",
            "a/c/3.json",
            "a/c/d/4.json",
            "top.json",
        ],
    )
    .await;

    let page = store
        .list_page(&req("", Some("/"), None))
        .await
        .expect("list root");
    assert_eq!(keys_of(&page), ["top.json"]);
    assert_eq!(page.common_prefixes, ["a/"]);
    assert!(page.next.is_none());

    let page = store
        .list_page(&req("a/", Some("/"), None))
        .await
        .expect("list a/");
    assert_eq!(keys_of(&page), ["a/1.json"]);
    assert_eq!(page.common_prefixes, ["a/b/", "a/c/"]);

    // One entry per page, objects and prefixes interleaved: every entry exactly once. This
    // also resumes after a common prefix, which a start-after fallback must get right.
    let pages = all_pages(store, req("a/", Some("/"), Some(1))).await;
    let mut entries = Vec::new();
    for page in &pages {
        assert!(
            page.objects.len() + page.common_prefixes.len() <= 1,
            "page over max_keys: {page:?}"
        );
        entries.extend(page.objects.iter().map(|o| o.key.clone()));
        entries.extend(page.common_prefixes.iter().cloned());
    }
    assert_eq!(entries, ["a/1.json", "a/b/", "a/c/"]);
}

async fn check_list_pagination(store: &dyn ObjectStore) {
    put_keys(store, &DAY_KEYS_WRITTEN).await;
    put(store, "2027/1/1/outside.json.gz", b"x").await;

    let pages = all_pages(store, req("2026/", None, Some(2))).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.objects.len()).collect();
    assert_eq!(sizes, [2, 2, 2, 1], "page sizes");
    for (i, page) in pages.iter().enumerate() {
        let last = i == pages.len() - 1;
        assert_eq!(page.next.is_none(), last, "cursor on page {i}: {page:?}");
    }
    let keys: Vec<&str> = pages.iter().flat_map(keys_of).collect();
    assert_eq!(
        keys, DAY_KEYS_SORTED,
        "every key exactly once, in key order"
    );

    // Spelled out, because discovery relies on it: lexicographic, not calendar order.
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(pos("2026/10/1/trace-a.json.gz") < pos("2026/9/30/trace-a.json.gz"));
    assert!(pos("2026/9/30/trace-b.json.gz") < pos("2026/9/4/trace-a.json.gz"));
}

async fn check_list_cursor_resumes(store: &dyn ObjectStore) {
    put_keys(store, &DAY_KEYS_WRITTEN).await;

    let first = store
        .list_page(&req("2026/", None, Some(2)))
        .await
        .expect("first page");
    assert_eq!(keys_of(&first), &DAY_KEYS_SORTED[..2]);
    let cursor = first.next.expect("a cursor after a full page");

    // The cursor works in a new request with another page size (a later run resuming).
    let mut request = req("2026/", None, Some(3));
    request.cursor = Some(cursor);
    let page = store.list_page(&request).await.expect("resumed page");
    assert_eq!(keys_of(&page), &DAY_KEYS_SORTED[2..5]);

    // The start-after form, as used when a server gives no token, works on every backend:
    // after an existing key, and after a key that does not exist.
    let mut request = req("2026/", None, None);
    request.cursor = Some(ListCursor::After(DAY_KEYS_SORTED[3].to_owned()));
    let page = store.list_page(&request).await.expect("start-after page");
    assert_eq!(keys_of(&page), &DAY_KEYS_SORTED[4..]);
    assert!(page.next.is_none());

    request.cursor = Some(ListCursor::After("2026/10/1/trace-zzz".to_owned()));
    let page = store.list_page(&request).await.expect("start-after page");
    assert_eq!(keys_of(&page), &DAY_KEYS_SORTED[2..]);
}

async fn check_list_all(store: &dyn ObjectStore) {
    put_keys(store, &DAY_KEYS_WRITTEN).await;
    put(store, "2027/1/1/outside.json.gz", b"x").await;

    let all = store.list_all("2026/", None).await.expect("list_all");
    let keys: Vec<&str> = keys_of(&all);
    assert_eq!(keys, DAY_KEYS_SORTED);
    assert!(all.common_prefixes.is_empty());
    assert!(all.next.is_none());

    // Month folders through the delimiter, as discovery walks them.
    let months = store.list_all("2026/", Some("/")).await.expect("list_all");
    assert!(months.objects.is_empty());
    assert_eq!(months.common_prefixes, ["2026/10/", "2026/9/"]);
    let days = store
        .list_all("2026/9/", Some("/"))
        .await
        .expect("list_all");
    assert_eq!(
        days.common_prefixes,
        ["2026/9/30/", "2026/9/4/", "2026/9/5/"]
    );
}

async fn check_delete(store: &dyn ObjectStore) {
    put(store, "x/gone.json", b"bye").await;
    put(store, "x/stays.json", b"hi").await;
    store.delete("x/gone.json").await.expect("delete");
    assert!(matches!(
        store.get("x/gone.json", LIMIT).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head("x/gone.json").await,
        Err(StoreError::NotFound { .. })
    ));
    let page = store.list_page(&req("x/", None, None)).await.expect("list");
    assert_eq!(keys_of(&page), ["x/stays.json"]);
    // Deleting what is not there is not an error (S3 semantics), so retries are safe.
    store
        .delete("x/gone.json")
        .await
        .expect("delete a missing key");
}

async fn check_list_empty_prefix(store: &dyn ObjectStore) {
    // A completely empty store, then one with objects elsewhere.
    for round in 0..2 {
        for (prefix, delimiter) in [
            ("2026/8/", None),
            ("2026/8/", Some("/")),
            ("", None),
            ("nothing/at/all/", Some("/")),
        ] {
            if round == 1 && prefix.is_empty() {
                continue;
            }
            let page = store
                .list_page(&req(prefix, delimiter, None))
                .await
                .unwrap_or_else(|e| panic!("listing {prefix:?} is not an error: {e}"));
            assert!(page.objects.is_empty(), "{prefix:?}: {page:?}");
            assert!(page.common_prefixes.is_empty(), "{prefix:?}: {page:?}");
            assert!(page.next.is_none(), "{prefix:?}: {page:?}");
            let all = store.list_all(prefix, delimiter).await.expect("list_all");
            assert!(all.objects.is_empty() && all.common_prefixes.is_empty());
        }
        put(store, "2026/9/30/trace.json.gz", b"x").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Running every check on every backend.

#[derive(Debug, Clone, Copy)]
enum Backend {
    Local,
    S3sFs,
    S3sFsNoToken,
    External,
}

/// A fresh store and whatever must live as long as it.
struct Fixture {
    store: Box<dyn ObjectStore>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<S3Server>,
}

impl Fixture {
    /// `None` when the backend is not available here (external server not configured).
    async fn new(backend: Backend, test: &str) -> Option<Fixture> {
        let fixture = match backend {
            Backend::Local => {
                let (dir, store) = common::local_store();
                Fixture {
                    store: Box::new(store),
                    _dir: Some(dir),
                    _server: None,
                }
            }
            Backend::S3sFs | Backend::S3sFsNoToken => {
                let server = S3Server::start_with(ServerOptions {
                    drop_continuation_token: matches!(backend, Backend::S3sFsNoToken),
                })
                .await;
                server.create_bucket("conformance");
                let store = common::s3_store(&server, "conformance", true).await;
                Fixture {
                    store: Box::new(store),
                    _dir: None,
                    _server: Some(server),
                }
            }
            Backend::External => Fixture {
                store: Box::new(common::external_s3_store(test).await?),
                _dir: None,
                _server: None,
            },
        };
        Some(fixture)
    }

    fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }
}

macro_rules! backend_tests {
    ($module:ident, $backend:expr, [$($check:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $check() {
                    let Some(fixture) =
                        super::Fixture::new($backend, stringify!($check)).await
                    else {
                        return;
                    };
                    super::$check(fixture.store()).await;
                }
            )*
        }
    };
}

macro_rules! conformance_suite {
    ($($check:ident),* $(,)?) => {
        backend_tests!(local, super::Backend::Local, [$($check),*]);
        backend_tests!(s3s_fs, super::Backend::S3sFs, [$($check),*]);
        backend_tests!(s3s_fs_no_token, super::Backend::S3sFsNoToken, [$($check),*]);
        backend_tests!(external_s3, super::Backend::External, [$($check),*]);
    };
}

conformance_suite!(
    check_put_get_round_trip,
    check_head,
    check_get_missing_is_not_found,
    check_get_limit,
    check_put_create,
    check_put_update,
    check_etag_is_md5,
    check_get_md5,
    check_get_body,
    check_list_prefix,
    check_list_delimiter,
    check_list_pagination,
    check_list_cursor_resumes,
    check_list_all,
    check_delete,
    check_list_empty_prefix,
);

// ---------------------------------------------------------------------------------------------
// S3 only: what goes over the wire.

/// OBS and other S3-compatible stores reject aws-chunked uploads and the CRC checksum headers
/// the AWS SDKs send by default since 2025 (SPEC §6): none of them may leave the S3 store.
#[tokio::test(flavor = "multi_thread")]
async fn s3_requests_carry_no_checksums_or_chunked_encoding() {
    let server = S3Server::start().await;
    server.create_bucket("wire");
    let store = common::s3_store(&server, "wire", true).await;
    let empty = BTreeMap::new();

    let body = Bytes::from(vec![b'z'; 200_000]);
    let e1 = store
        .put(
            "a/big.bin",
            body.clone(),
            &meta(&[("k", "v")]),
            PutMode::Overwrite,
        )
        .await
        .expect("put")
        .expect("etag");
    store
        .put(
            "a/new.bin",
            Bytes::from_static(b"n"),
            &empty,
            PutMode::Create,
        )
        .await
        .expect("create");
    store
        .put("a/big.bin", body, &empty, PutMode::Update { etag: e1 })
        .await
        .expect("update");
    store.get("a/big.bin", LIMIT).await.expect("get");
    store.head("a/new.bin").await.expect("head");
    store
        .list_page(&req("a/", Some("/"), Some(1)))
        .await
        .expect("list");
    store.list_all("", None).await.expect("list_all");
    store.delete("a/new.bin").await.expect("delete");

    let requests = server.requests();
    let methods: BTreeSet<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert!(
        ["PUT", "GET", "HEAD", "DELETE"]
            .iter()
            .all(|m| methods.contains(m)),
        "the server did not see every kind of request: {methods:?}"
    );
    assert!(
        requests.len() >= 8,
        "only {} requests recorded",
        requests.len()
    );

    let mut problems = Vec::new();
    for r in &requests {
        let what = format!("{} {}", r.method, r.path_and_query);
        if r.header("content-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("aws-chunked"))
        {
            problems.push(format!("{what}: content-encoding aws-chunked"));
        }
        if r.header("x-amz-content-sha256")
            .is_some_and(|v| v.starts_with("STREAMING-"))
        {
            problems.push(format!("{what}: streaming x-amz-content-sha256"));
        }
        for (name, value) in &r.headers {
            // x-amz-checksum-<algorithm> and x-amz-checksum-mode; the trailer and algorithm
            // headers only ever come with them.
            if name.starts_with("x-amz-checksum-")
                || name == "x-amz-trailer"
                || name == "x-amz-sdk-checksum-algorithm"
                || name == "x-amz-decoded-content-length"
            {
                problems.push(format!("{what}: {name}: {value}"));
            }
        }
        // The server checks signatures; make sure it had one to check.
        assert!(
            r.header("authorization")
                .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 ")),
            "{what}: not signed with SigV4"
        );
    }
    assert!(
        problems.is_empty(),
        "forbidden headers sent:\n{}",
        problems.join("\n")
    );
}

/// Seeds `count` objects straight into the s3s-fs directory (much faster than PUTs) and
/// returns their keys in lexicographic order.
fn seed_bucket(server: &S3Server, bucket: &str, count: usize) -> Vec<String> {
    server.create_bucket(bucket);
    let mut keys = Vec::with_capacity(count);
    for i in 0..count {
        // Unpadded numbers in folders of 100, so key order differs from numeric order.
        let key = format!("2026/{}/{}.json", i / 100, i);
        let path = server.root_dir().join(bucket).join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, key.as_bytes()).unwrap();
        keys.push(key);
    }
    keys.sort();
    keys
}

/// Some OBS versions answer a truncated ListObjectsV2 page without a continuation token; the
/// SDK's paginator then stops at 1000 keys. The store must go on with `start-after`.
#[tokio::test(flavor = "multi_thread")]
async fn list_all_without_continuation_tokens_returns_every_key() {
    let server = S3Server::start_with(ServerOptions {
        drop_continuation_token: true,
    })
    .await;
    let expected = seed_bucket(&server, "obs", 2500);
    let store = common::s3_store(&server, "obs", true).await;

    let all = store.list_all("2026/", None).await.expect("list_all");
    let keys: Vec<String> = all.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(keys.len(), 2500, "keys listed");
    assert_eq!(keys, expected, "every key once, in key order");

    // The server really left the token out, and the store really went on after it.
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_list_v2())
        .collect();
    assert_eq!(lists.len(), 3, "1000 + 1000 + 500: {lists:#?}");
    assert!(lists
        .iter()
        .all(|r| r.query_param("continuation-token").is_none()));
    assert_eq!(
        lists
            .iter()
            .filter(|r| r.query_param("start-after").is_some())
            .count(),
        2,
        "{lists:#?}"
    );
}

/// Control for the test above: the same listing against a well-behaved server uses tokens,
/// so that test's `start-after` requests are the fallback at work, not the store's habit.
#[tokio::test(flavor = "multi_thread")]
async fn list_all_uses_continuation_tokens_when_given() {
    let server = S3Server::start().await;
    let expected = seed_bucket(&server, "tokens", 2500);
    let store = common::s3_store(&server, "tokens", true).await;

    let all = store.list_all("", None).await.expect("list_all");
    let keys: Vec<String> = all.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(keys, expected);
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_list_v2())
        .collect();
    assert_eq!(lists.len(), 3);
    assert_eq!(
        lists
            .iter()
            .filter(|r| r.query_param("continuation-token").is_some())
            .count(),
        2,
        "{lists:#?}"
    );
    assert!(lists.iter().all(|r| r.query_param("start-after").is_none()));
}

/// The in-process server really checks SigV4 (so the other tests prove the store signs
/// correctly), and a rejected signature maps to `AccessDenied`.
#[tokio::test(flavor = "multi_thread")]
async fn s3_wrong_secret_is_access_denied() {
    let server = S3Server::start().await;
    server.create_bucket("locked");
    let store = S3Store::connect(&S3Options {
        bucket: "locked".into(),
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        path_style: true,
        access_key_id: Some(server.access_key().into()),
        secret_access_key: Some("not-the-secret".into()),
        ..Default::default()
    })
    .await;
    match store.list_page(&req("", None, None)).await {
        Err(StoreError::AccessDenied { .. }) => {}
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    match store.get("x", LIMIT).await {
        Err(StoreError::AccessDenied { .. }) => {}
        other => panic!("expected AccessDenied, got {other:?}"),
    }
}

/// Proves the header test above can fail: an SDK client left at its defaults does send
/// checksum headers, and the recorder sees them.
#[tokio::test(flavor = "multi_thread")]
async fn recorder_sees_checksum_headers_of_a_default_sdk_client() {
    let server = S3Server::start().await;
    server.create_bucket("defaults");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            server.access_key(),
            server.secret_key(),
            None,
            None,
            "test",
        ))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    client
        .put_object()
        .bucket("defaults")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"body"))
        .send()
        .await
        .expect("put with SDK defaults");
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r
            .headers
            .iter()
            .any(|(n, _)| n.starts_with("x-amz-checksum-"))),
        "{requests:#?}"
    );
}
