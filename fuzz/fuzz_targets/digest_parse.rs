//! Digest files: decompression, the JSON model, the field checks, the signature metadata and
//! the signed message; and public keys as `--public-key` reads them. Must never panic.
#![no_main]

use std::collections::BTreeMap;

use ctsguard_fuzz::cts::digest::{self, PublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = digest::parse(data, 4 << 20) {
        assert!(d.log_files.len() <= digest::MAX_LOG_FILES);
        let _ = digest::signed_message(
            d.digest_end_time.as_deref().unwrap_or_default(),
            d.digest_object.as_deref().unwrap_or_default(),
            &digest::md5_hex(data),
            d.previous_digest_signature.as_deref(),
        );
        for f in &d.log_files {
            if let Some(h) = &f.log_hash_value {
                let _ = digest::md5_matches(h, &[0; 16]);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut meta = BTreeMap::new();
        meta.insert("meta-signature".to_owned(), text.to_owned());
        let _ = digest::signature_meta(&meta);
        if let Ok(k) = PublicKey::parse(text) {
            let _ = k.bits();
            let _ = k.verify(b"message", text);
        }
    }
});
