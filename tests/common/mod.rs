//! Shared harness for the integration tests: real S3 servers on loopback and local stores.
//!
//! Every test binary that says `mod common;` compiles this whole module but uses only part of
//! it, so unused items (and re-exports) are expected here and must not fail
//! `clippy -D warnings`.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod fault_proxy;
pub mod http_receiver;
pub mod s3;
pub mod smtp;

pub use s3::{
    external_bucket, external_s3_store, s3_store, ExternalBucket, Recorded, S3Server,
    ServerOptions, ACCESS_KEY, EXTERNAL_ENDPOINT_VAR, SECRET_KEY,
};

use ctsguard::store::LocalStore;

/// A `LocalStore` over a fresh temporary directory. Keep the `TempDir`: dropping it deletes
/// the directory under the store.
pub fn local_store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = LocalStore::open(dir.path()).expect("open the temporary directory as a store");
    (dir, store)
}

/// Generates `spec` into a fresh temporary directory. Keep the `TempDir`.
pub fn generate_local(
    spec: &ctsguard::gen::GenSpec,
) -> (tempfile::TempDir, ctsguard::gen::Manifest) {
    let (dir, store) = local_store();
    let manifest = cli::rt()
        .block_on(ctsguard::gen::generate(spec, &store))
        .expect("generate");
    (dir, manifest)
}
