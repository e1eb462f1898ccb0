//! The formats module of ctsguard (`src/cts/`: trace files, digests, key layout), compiled
//! here on its own. It is pure and I/O-free, so the fuzz build needs only its few
//! dependencies, not the S3 SDK and the rest of the program: the build takes a minute or two
//! instead of many on a 2-core CI machine. The code is the same file, not a copy.
#![allow(dead_code)]

#[path = "../../src/cts/mod.rs"]
pub mod cts;

/// The action screen of `--parse candidates` (`src/screen.rs`), also pure.
#[path = "../../src/screen.rs"]
pub mod screen;
