//! ctsguard: a batch worker over Cloud Trace Service (CTS) trace buckets.
pub mod alert;
pub mod allowlist;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cts;
pub mod detect;
pub mod discover;
pub mod gen;
pub mod notify;
pub mod pipeline;
pub mod report;
pub mod store;
pub mod verify;
