//! Running the `ctsguard` binary from tests.

use assert_cmd::cargo::CommandCargoExt;
use assert_cmd::Command;

/// A `ctsguard` process with no settings leaking in from the caller's environment, for tests
/// that spawn and kill it.
pub fn ctsguard_process() -> std::process::Command {
    let mut c = std::process::Command::cargo_bin("ctsguard").expect("binary built");
    for (k, _) in std::env::vars() {
        if k.starts_with("CTSGUARD_")
            || k == "IP"
            || k == "SMN_Topic"
            || k == "RegionName"
            || k.starts_with("AWS_")
            || k == "JOB_COMPLETION_INDEX"
        {
            c.env_remove(k);
        }
    }
    c.env("CTSGUARD_LOG", "warn");
    c
}

/// The same, with assert_cmd's conveniences.
pub fn ctsguard() -> Command {
    Command::from_std(ctsguard_process())
}

/// A runtime for the async parts of synchronous tests (generating trees, S3 stores).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
