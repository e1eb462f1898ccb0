//! ctsguard: a batch worker over Cloud Trace Service (CTS) trace buckets.
// A panic in library code is a bug (hostile input must be reported, not crash the run):
// no unwrap/expect outside tests. Unit tests may use them.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod alert;
pub mod allowlist;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cts;
pub mod detect;
pub mod discover;
pub mod gen;
pub mod integrity;
pub mod lease;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod scan;
pub mod screen;
pub mod store;
pub mod verify;
