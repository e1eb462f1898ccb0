//! Trace files: decompression (gzip members, size limit) and the liberal JSON reader, then
//! the login rule over every trace read. Must never panic; memory is bounded by the limit.
//! Also the soundness of `--parse candidates`: a file the action screen passes over must not
//! hold a trace the reader reads as a login or logout.
#![no_main]

use ctsguard_fuzz::cts::trace::{inflate, parse_traces};
use ctsguard_fuzz::screen::ActionScreen;
use libfuzzer_sys::fuzz_target;

/// Small enough that a gzip bomb is cut off quickly.
const LIMIT: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let inflated = inflate(data, LIMIT);
    assert!(inflated.json.len() as u64 <= LIMIT);
    let parsed = parse_traces(&inflated.json);
    let watched = ["login".to_owned(), "logout".to_owned()];
    let screen = ActionScreen::new(&watched).expect("screenable actions");
    let matched = parsed.traces.iter().any(|t| {
        t.trace_name
            .as_deref()
            .is_some_and(|n| watched.iter().any(|w| w.eq_ignore_ascii_case(n)))
    });
    assert!(
        !matched || screen.may_match(&inflated.json),
        "the screen passed over a watched action"
    );
    for t in &parsed.traces {
        if let Some(time) = &t.time {
            let _ = time.to_utc();
        }
    }
    for e in &parsed.errors {
        let _ = e.to_string();
    }
});
