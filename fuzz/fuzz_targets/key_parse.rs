//! Object keys and names as listings return them: the CTS layout (region, day folders,
//! tracker, service, the timestamp in the name), and day prefixes. Must never
//! panic, whatever the bytes.
#![no_main]

use ctsguard_fuzz::cts::layout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let _ = layout::classify(key);
    let _ = layout::parse_stamp(key);
    let _ = layout::day_of_prefix(key);
    // Keys as they sit under a prefix and a region.
    let _ = layout::classify(&format!("eu-de/2026/10/1/system/IAM/{key}"));
    let _ = layout::classify(&format!("eu-de/{key}"));
});
