//! Trace files: decompression (gzip members, size limit) and the liberal JSON reader, then
//! the login rule over every trace read. Must never panic; memory is bounded by the limit.
#![no_main]

use ctsguard_fuzz::cts::trace::{inflate, parse_traces};
use libfuzzer_sys::fuzz_target;

/// Small enough that a gzip bomb is cut off quickly.
const LIMIT: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let inflated = inflate(data, LIMIT);
    assert!(inflated.json.len() as u64 <= LIMIT);
    let parsed = parse_traces(&inflated.json);
    for t in &parsed.traces {
        if let Some(time) = &t.time {
            let _ = time.to_utc();
        }
    }
    for e in &parsed.errors {
        let _ = e.to_string();
    }
});
