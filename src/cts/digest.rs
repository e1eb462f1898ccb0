//! CTS digest files and their signatures (SPEC §4), pure and I/O-free.
//!
//! - [`parse`] reads a digest (gzip or plain JSON), tolerant of `""`, `null` or absent
//!   `previous_*` fields in the starting digest of a chain.
//! - [`signed_message`] builds the message CTS signs; [`PublicKey::verify`] checks a hex
//!   SHA256withRSA (RSA PKCS#1 v1.5) signature; [`PrivateKey`] signs like CTS (tests and the
//!   generator).
//! - [`DigestIndex`] and [`classify_trace`] decide, for a trace file, what the digests say
//!   about it. They take already-computed hashes so `verify` and the scan/backfill integrity
//!   checks share one set of rules.

use std::collections::{BTreeMap, HashMap};

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::Sha256;

use super::trace::inflate;

/// The public key published in the CTS manual (X.509 SubjectPublicKeyInfo, base64 DER): the
/// default for checking signatures.
pub const CTS_PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsjQDkl8COPRhOCvm7ZI8sYZ20ojl+ay/gwRSk9q0gkY3pP0RrAhSsEzgYdYjaMCqixkmbpt4AH9AROJU4drnoCAZSMqRxgv0bGC9kVd4q95l4zibswAsksjuNQo/XoJjBl+rRAqCa+1uetgVU4k4Yx8RryYxYx/tImvMe/O4mGAIaTf+rsqt3VXR1QIj5lYR/nx41BEgC/Kb1elYAfDaaab8WS5INRprj7qdu6oAo4Ug47WqbecvEtG3JRpj5+oqLyW41Fvse3osC0h5DQdxTt4x00/rVZ+gH7Kua00y7gC8YOxFVpYbfn/oW61PUDeHG/N9hUjOrIgDDJpD2YbCIQIDAQAB";

/// The only algorithm CTS documents for digests.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// User-metadata names of the signature, as the stores report them (lower case, without the
/// `x-amz-meta-`/`x-obs-meta-` prefix). `signature` is accepted too (SPEC §4); full header
/// names are accepted for hand-written sidecars.
pub const META_SIGNATURE: &str = "meta-signature";
pub const META_SIGNATURE_ALGORITHM: &str = "meta-signature-algorithm";
const SIGNATURE_NAMES: &[&str] = &[
    META_SIGNATURE,
    "signature",
    "x-amz-meta-meta-signature",
    "x-obs-meta-meta-signature",
    "x-amz-meta-signature",
    "x-obs-meta-signature",
];
const ALGORITHM_NAMES: &[&str] = &[
    META_SIGNATURE_ALGORITHM,
    "signature-algorithm",
    "x-amz-meta-meta-signature-algorithm",
    "x-obs-meta-meta-signature-algorithm",
];

/// What `verify` (and the integrity checks of scan and backfill) says about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    Valid,
    /// Listed (a trace file by a digest, a digest by the next digest of its chain) but absent.
    NotFound,
    /// The bytes' MD5 differs from what a digest recorded.
    HashMismatch,
    /// A digest whose signature is absent, unreadable or does not verify.
    SignatureInvalid,
    /// A digest read at another place than the one it names (`digest_object`, `digest_bucket`).
    Moved,
    /// A digest that is not a readable digest (gzip, JSON, required fields).
    InvalidFormat,
    /// A trace file present in the bucket but listed by no digest.
    NotInDigest,
}

impl Integrity {
    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::Valid => "valid",
            Integrity::NotFound => "not_found",
            Integrity::HashMismatch => "hash_mismatch",
            Integrity::SignatureInvalid => "signature_invalid",
            Integrity::Moved => "moved",
            Integrity::InvalidFormat => "invalid_format",
            Integrity::NotInDigest => "not_in_digest",
        }
    }

    /// The statuses a digest can have, in report order.
    pub const DIGEST: [Integrity; 6] = [
        Integrity::Valid,
        Integrity::NotFound,
        Integrity::HashMismatch,
        Integrity::SignatureInvalid,
        Integrity::Moved,
        Integrity::InvalidFormat,
    ];
    /// The statuses a trace file can have, in report order.
    pub const TRACE: [Integrity; 4] = [
        Integrity::Valid,
        Integrity::NotFound,
        Integrity::HashMismatch,
        Integrity::NotInDigest,
    ];
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A digest file (SPEC §4). Text fields that are `""`, `null` or absent read as `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DigestFile {
    #[serde(default, deserialize_with = "text")]
    pub project_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub digest_start_time: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub digest_end_time: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub digest_bucket: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub digest_object: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub digest_signature_algorithm: Option<String>,
    /// Meaning undocumented: kept and reported, never interpreted.
    #[serde(default, deserialize_with = "flag")]
    pub digest_end: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    pub previous_digest_end: Option<bool>,
    #[serde(default, deserialize_with = "text")]
    pub previous_digest_bucket: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub previous_digest_object: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub previous_digest_hash_algorithm: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub previous_digest_signature: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub log_files: Vec<LogFile>,
}

/// One trace file a digest lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogFile {
    #[serde(default, deserialize_with = "text")]
    pub bucket: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub object: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub log_hash_value: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub log_hash_algorithm: Option<String>,
}

/// A string, or a number written as one; `""` and `null` are `None`.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {}",
            kind_of(&other)
        ))),
    }
}

/// A boolean, or the strings `"true"`/`"false"`; `""` and `null` are `None`.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(serde::de::Error::custom(format!(
            "expected a boolean, found {}",
            kind_of(&other)
        ))),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LogFile>, D::Error> {
    Ok(Option::<Vec<LogFile>>::deserialize(d)?.unwrap_or_default())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a digest is `invalid_format`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Decode(String),
    #[error("not a digest: {0}")]
    Json(String),
    #[error("required field {0} is missing or empty")]
    Missing(&'static str),
    #[error("log_files[{index}]: {what} is missing or empty")]
    LogFile { index: usize, what: &'static str },
    #[error("lists {count} trace files, more than the {MAX_LOG_FILES} one hourly digest can plausibly hold")]
    TooManyFiles { count: usize },
}

/// The most trace files one digest may list. CTS writes one digest per hour and service,
/// listing the files of that hour: a few hundred at most. A digest listing more is not
/// believed (verify would otherwise download whatever a forged digest names).
pub const MAX_LOG_FILES: usize = 100_000;

/// The smallest RSA key accepted for digest signatures; the CTS key has 2048 bits.
pub const MIN_KEY_BITS: usize = 2048;

/// Reads a digest: gzip (every member) or plain JSON, told apart by the magic bytes. `limit`
/// bounds the decompressed size.
pub fn parse(raw: &[u8], limit: u64) -> Result<DigestFile, FormatError> {
    let inflated = inflate(raw, limit);
    if let Some(e) = inflated.error {
        return Err(FormatError::Decode(e.to_string()));
    }
    // serde would also read a struct from a JSON array; a digest is an object.
    if inflated.json.trim_ascii_start().first() != Some(&b'{') {
        return Err(FormatError::Json("not a JSON object".into()));
    }
    let d: DigestFile =
        serde_json::from_slice(&inflated.json).map_err(|e| FormatError::Json(e.to_string()))?;
    if d.digest_end_time.is_none() {
        return Err(FormatError::Missing("digest_end_time"));
    }
    if d.digest_object.is_none() {
        return Err(FormatError::Missing("digest_object"));
    }
    if d.log_files.len() > MAX_LOG_FILES {
        return Err(FormatError::TooManyFiles {
            count: d.log_files.len(),
        });
    }
    for (index, f) in d.log_files.iter().enumerate() {
        if f.object.is_none() {
            return Err(FormatError::LogFile {
                index,
                what: "object",
            });
        }
        if f.log_hash_value.is_none() {
            return Err(FormatError::LogFile {
                index,
                what: "log_hash_value",
            });
        }
    }
    Ok(d)
}

/// The message CTS signs for a digest: `digest_end_time` + `digest_object` + hex MD5 of the
/// compressed digest bytes + `previous_digest_signature` (empty for the starting digest),
/// concatenated without separators.
pub fn signed_message(
    digest_end_time: &str,
    digest_object: &str,
    digest_md5_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{digest_end_time}{digest_object}{digest_md5_hex}{}",
        previous_signature.unwrap_or("")
    )
}

/// Lower-case hex MD5.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest as _, Md5};
    hex::encode(Md5::digest(bytes))
}

/// Whether a hex MD5 as written in a digest names `actual`: case and surrounding white space
/// do not matter (SPEC §4 says lower case; be liberal).
pub fn md5_matches(expected_hex: &str, actual: &[u8; 16]) -> bool {
    hex::decode(expected_hex.trim()).is_ok_and(|e| e.as_slice() == actual.as_slice())
}

/// Two hex strings (hashes, signatures) equal but for case and surrounding white space.
pub fn same_hex(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The signature of a digest object, from its user metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureMeta {
    pub signature: Option<String>,
    pub algorithm: Option<String>,
}

/// Finds the signature and its algorithm in user metadata (names compared case-insensitively).
pub fn signature_meta(metadata: &BTreeMap<String, String>) -> SignatureMeta {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            metadata
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    SignatureMeta {
        signature: find(SIGNATURE_NAMES),
        algorithm: find(ALGORITHM_NAMES),
    }
}

/// Why a signature is `signature_invalid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature metadata (meta-signature)")]
    Missing,
    #[error("signature algorithm {0:?} is not SHA256withRSA")]
    Algorithm(String),
    #[error("signature is not hex: {0}")]
    NotHex(String),
    #[error("signature does not verify with the public key")]
    Mismatch,
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not an RSA public key (PEM \"PUBLIC KEY\" or \"RSA PUBLIC KEY\", or base64 DER): {0}"
    )]
    Public(String),
    #[error("not an RSA private key (PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"): {0}")]
    Private(String),
}

/// The text from the PEM header on: comment lines before it (as `openssl` and people write
/// them) are not part of the key.
fn pem_block(text: &str) -> &str {
    let text = text.trim();
    match text.find("-----BEGIN") {
        Some(i) => &text[i..],
        None => text,
    }
}

/// An RSA public key that checks SHA256withRSA (PKCS#1 v1.5) signatures.
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey<Sha256>);

impl PublicKey {
    /// The key published in the CTS manual.
    pub fn cts_default() -> Self {
        match Self::parse(CTS_PUBLIC_KEY) {
            Ok(k) => k,
            // A compile-time constant: a failure here is a bug caught by the unit tests.
            Err(e) => panic!("the built-in CTS public key does not parse: {e}"),
        }
    }

    /// Reads PEM (`PUBLIC KEY` = X.509 SubjectPublicKeyInfo, or `RSA PUBLIC KEY` = PKCS#1) or
    /// base64 DER of either (the form the CTS manual prints).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = pem_block(text);
        let key = if text.starts_with("-----BEGIN RSA PUBLIC KEY") {
            RsaPublicKey::from_pkcs1_pem(text).map_err(|e| KeyError::Public(e.to_string()))?
        } else if text.starts_with("-----BEGIN") {
            RsaPublicKey::from_public_key_pem(text).map_err(|e| KeyError::Public(e.to_string()))?
        } else {
            let compact: String = text.split_whitespace().collect();
            let der = <base64ct::Base64 as base64ct::Encoding>::decode_vec(&compact)
                .map_err(|e| KeyError::Public(format!("base64: {e}")))?;
            RsaPublicKey::from_public_key_der(&der)
                .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
                .map_err(|e| KeyError::Public(e.to_string()))?
        };
        Ok(Self(VerifyingKey::new(key)))
    }

    /// The size of the key's modulus in bits.
    pub fn bits(&self) -> usize {
        use rsa::traits::PublicKeyParts as _;
        self.0.as_ref().n().bits()
    }

    /// Checks a hex signature of `message`.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
        let bytes =
            hex::decode(signature_hex.trim()).map_err(|e| SignatureError::NotHex(e.to_string()))?;
        let sig = Signature::try_from(bytes.as_slice()).map_err(|_| SignatureError::Mismatch)?;
        self.0
            .verify(message, &sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// An RSA private key that signs like CTS: for tests and the generator, never for checking.
#[derive(Debug, Clone)]
pub struct PrivateKey(SigningKey<Sha256>);

impl PrivateKey {
    /// Reads PEM: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = pem_block(text);
        let key = if text.starts_with("-----BEGIN RSA PRIVATE KEY") {
            RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| KeyError::Private(e.to_string()))?
        } else {
            RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| KeyError::Private(e.to_string()))?
        };
        Ok(Self::from_key(key))
    }

    pub fn from_key(key: RsaPrivateKey) -> Self {
        Self(SigningKey::new(key))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        use rsa::signature::Keypair;
        PublicKey(self.0.verifying_key())
    }

    /// The hex signature of `message` (PKCS#1 v1.5 is deterministic: same key, same bytes).
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_vec())
    }
}

/// Checks a digest's own signature: present, of the right algorithm, verifying over
/// [`signed_message`] built from the digest's fields and the MD5 of its stored bytes.
pub fn check_signature(
    key: &PublicKey,
    digest: &DigestFile,
    digest_md5_hex: &str,
    meta: &SignatureMeta,
) -> Result<(), SignatureError> {
    let Some(sig) = &meta.signature else {
        return Err(SignatureError::Missing);
    };
    // The algorithm may be named in the metadata or in the digest; either must be ours.
    for alg in [&meta.algorithm, &digest.digest_signature_algorithm]
        .into_iter()
        .flatten()
    {
        if !alg.trim().eq_ignore_ascii_case(SIGNATURE_ALGORITHM) {
            return Err(SignatureError::Algorithm(alg.clone()));
        }
    }
    let message = signed_message(
        digest.digest_end_time.as_deref().unwrap_or(""),
        digest.digest_object.as_deref().unwrap_or(""),
        digest_md5_hex,
        digest.previous_digest_signature.as_deref(),
    );
    key.verify(message.as_bytes(), sig)
}

/// One digest's entry for a trace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Where the digest was read.
    pub digest_key: String,
    /// The hex MD5 the digest records.
    pub expected_md5: String,
    /// The digest's own verdict: a file vouched for only by a forged digest is not proven.
    pub digest_status: Integrity,
}

/// Which digests list which trace files. Keys are store keys (see `verify` for how a digest's
/// `object` is mapped onto a store key).
#[derive(Debug, Clone, Default)]
pub struct DigestIndex {
    by_object: HashMap<String, Vec<Listing>>,
}

impl DigestIndex {
    /// Records every file `digest` lists; `key_of` turns a listed `object` into a store key.
    pub fn add(
        &mut self,
        digest_key: &str,
        digest: &DigestFile,
        digest_status: Integrity,
        key_of: impl Fn(&str) -> String,
    ) {
        for f in &digest.log_files {
            let (Some(object), Some(hash)) = (&f.object, &f.log_hash_value) else {
                continue;
            };
            self.by_object
                .entry(key_of(object))
                .or_default()
                .push(Listing {
                    digest_key: digest_key.to_owned(),
                    expected_md5: hash.trim().to_owned(),
                    digest_status,
                });
        }
    }

    pub fn listings(&self, key: &str) -> &[Listing] {
        self.by_object.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every listed store key.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_object.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_object.is_empty()
    }
}

/// What the digests say about one trace file, given the MD5 of its stored bytes (`None` when
/// the object does not exist). Returns the status and a human-readable detail.
pub fn classify_trace(listings: &[Listing], actual: Option<&[u8; 16]>) -> (Integrity, String) {
    let Some(first) = listings.first() else {
        return match actual {
            Some(_) => (Integrity::NotInDigest, "listed by no digest".into()),
            None => (Integrity::NotFound, "object not found".into()),
        };
    };
    let Some(actual) = actual else {
        return (
            Integrity::NotFound,
            format!("listed by {} but absent from the store", first.digest_key),
        );
    };
    if let Some(bad) = listings
        .iter()
        .find(|l| !md5_matches(&l.expected_md5, actual))
    {
        return (
            Integrity::HashMismatch,
            format!(
                "{} records MD5 {}, the stored bytes have {}",
                bad.digest_key,
                bad.expected_md5,
                hex::encode(actual)
            ),
        );
    }
    let mut detail = format!("MD5 matches {}", first.digest_key);
    if listings.len() > 1 {
        detail.push_str(&format!(" and {} more digests", listings.len() - 1));
    }
    if listings.iter().all(|l| l.digest_status != Integrity::Valid) {
        detail.push_str(&format!(
            "; but no listing digest is valid ({})",
            first.digest_status
        ));
    }
    (Integrity::Valid, detail)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::OnceLock;

    /// One key pair per test binary: key generation is the slow part.
    pub(crate) fn test_key() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            let key =
                RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).expect("generate an RSA key");
            PrivateKey::from_key(key)
        })
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    const DIGEST: &str = r#"{
        "project_id": "p1",
        "digest_start_time": "2017-03-28T01-09-17Z",
        "digest_end_time": "2017-03-28T02-09-17Z",
        "digest_bucket": "b",
        "digest_object": "CloudTraces/eu-de/2017/3/28/system/Digest/ECS/x_CloudTrace-Digest_eu-de_2017-03-28T02-09-17Z.json.gz",
        "digest_signature_algorithm": "SHA256withRSA",
        "digest_end": false,
        "previous_digest_end": "false",
        "previous_digest_bucket": "",
        "previous_digest_object": null,
        "previous_digest_hash_value": "",
        "log_files": [{"bucket": "b", "object": "CloudTraces/a.json.gz", "log_hash_value": "D41D8CD98F00B204E9800998ECF8427E", "log_hash_algorithm": "MD5"}]
    }"#;

    #[test]
    fn parses_gzip_and_plain_with_empty_previous_fields() {
        for raw in [gzip(DIGEST.as_bytes()), DIGEST.as_bytes().to_vec()] {
            let d = parse(&raw, 1 << 20).unwrap();
            assert_eq!(d.previous_digest_object, None);
            assert_eq!(d.previous_digest_bucket, None);
            assert_eq!(d.previous_digest_signature, None);
            assert_eq!(d.previous_digest_end, Some(false));
            assert_eq!(d.log_files.len(), 1);
        }
        let d = parse(
            br#"{"digest_end_time":"t","digest_object":"o","log_files":null}"#,
            99,
        )
        .unwrap();
        assert!(d.log_files.is_empty());
    }

    #[test]
    fn bad_digests_say_why() {
        assert!(matches!(
            parse(&[0x1f, 0x8b, 1, 2, 3], 1 << 20),
            Err(FormatError::Decode(_))
        ));
        assert!(matches!(parse(b"[1]", 99), Err(FormatError::Json(_))));
        assert_eq!(
            parse(br#"{"digest_object":"o"}"#, 99),
            Err(FormatError::Missing("digest_end_time"))
        );
        assert_eq!(
            parse(
                br#"{"digest_end_time":"t","digest_object":"o","log_files":[{"object":"k"}]}"#,
                99
            ),
            Err(FormatError::LogFile {
                index: 0,
                what: "log_hash_value"
            })
        );
    }

    #[test]
    fn md5_compares_case_insensitively() {
        let empty: [u8; 16] = hex::decode("d41d8cd98f00b204e9800998ecf8427e")
            .unwrap()
            .try_into()
            .unwrap();
        assert!(md5_matches("D41D8CD98F00B204E9800998ECF8427E", &empty));
        assert!(md5_matches(" d41d8cd98f00b204e9800998ecf8427e\n", &empty));
        assert!(!md5_matches("d41d8cd98f00b204e9800998ecf8427f", &empty));
        assert!(!md5_matches("not hex", &empty));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn signed_message_is_a_plain_concatenation() {
        assert_eq!(signed_message("T", "O", "H", None), "TOH");
        assert_eq!(signed_message("T", "O", "H", Some("S")), "TOHS");
    }

    #[test]
    fn the_built_in_key_parses_in_every_accepted_form() {
        let _ = PublicKey::cts_default();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            CTS_PUBLIC_KEY
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        PublicKey::parse(&pem).unwrap();
        PublicKey::parse(&format!("# a comment\n{pem}")).unwrap();
        // Line breaks inside bare base64 are fine too.
        PublicKey::parse(&format!(
            "{}\n{}",
            &CTS_PUBLIC_KEY[..50],
            &CTS_PUBLIC_KEY[50..]
        ))
        .unwrap();
        assert!(PublicKey::parse("not a key").is_err());
        assert!(
            PublicKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
    }

    #[test]
    fn pkcs1_public_keys_are_accepted() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let key = test_key();
        let rsa_pub = RsaPublicKey::from(key.0.as_ref());
        let pem = rsa_pub.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let pk = PublicKey::parse(&pem).unwrap();
        let sig = key.sign_hex(b"m");
        pk.verify(b"m", &sig).unwrap();
        let der = rsa_pub.to_pkcs1_der().unwrap();
        let b64 = <base64ct::Base64 as base64ct::Encoding>::encode_string(der.as_bytes());
        PublicKey::parse(&b64).unwrap().verify(b"m", &sig).unwrap();
    }

    fn signed(prev_sig: Option<&str>) -> (DigestFile, String, SignatureMeta) {
        let mut d = parse(DIGEST.as_bytes(), 1 << 20).unwrap();
        d.previous_digest_signature = prev_sig.map(str::to_owned);
        let md5 = "0123456789abcdef0123456789abcdef".to_owned();
        let msg = signed_message(
            d.digest_end_time.as_deref().unwrap(),
            d.digest_object.as_deref().unwrap(),
            &md5,
            prev_sig,
        );
        let meta = SignatureMeta {
            signature: Some(test_key().sign_hex(msg.as_bytes())),
            algorithm: Some(SIGNATURE_ALGORITHM.into()),
        };
        (d, md5, meta)
    }

    #[test]
    fn signatures_verify_and_fail_for_the_right_reasons() {
        let pk = test_key().public_key();
        for prev in [None, Some("ab12")] {
            let (d, md5, meta) = signed(prev);
            check_signature(&pk, &d, &md5, &meta).unwrap();
            // Upper-case hex is the same signature.
            let upper = SignatureMeta {
                signature: meta.signature.as_ref().map(|s| s.to_ascii_uppercase()),
                ..meta.clone()
            };
            check_signature(&pk, &d, &md5, &upper).unwrap();
            // Another MD5 (the digest bytes changed), another object, another chain.
            assert_eq!(
                check_signature(&pk, &d, "ffffffffffffffffffffffffffffffff", &meta),
                Err(SignatureError::Mismatch)
            );
            let mut moved = d.clone();
            moved.digest_object = Some("elsewhere".into());
            assert_eq!(
                check_signature(&pk, &moved, &md5, &meta),
                Err(SignatureError::Mismatch)
            );
            let mut rechained = d.clone();
            rechained.previous_digest_signature = Some("cd34".into());
            assert_eq!(
                check_signature(&pk, &rechained, &md5, &meta),
                Err(SignatureError::Mismatch)
            );
            // The CTS key did not sign it.
            assert_eq!(
                check_signature(&PublicKey::cts_default(), &d, &md5, &meta),
                Err(SignatureError::Mismatch)
            );
        }
        let (d, md5, meta) = signed(None);
        assert_eq!(
            check_signature(&pk, &d, &md5, &SignatureMeta::default()),
            Err(SignatureError::Missing)
        );
        let other_alg = SignatureMeta {
            algorithm: Some("SHA1withRSA".into()),
            ..meta.clone()
        };
        assert!(matches!(
            check_signature(&pk, &d, &md5, &other_alg),
            Err(SignatureError::Algorithm(_))
        ));
        let not_hex = SignatureMeta {
            signature: Some("zz".into()),
            ..meta
        };
        assert!(matches!(
            check_signature(&pk, &d, &md5, &not_hex),
            Err(SignatureError::NotHex(_))
        ));
    }

    #[test]
    fn signature_metadata_under_every_accepted_name() {
        let meta = |pairs: &[(&str, &str)]| {
            signature_meta(
                &pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(
            meta(&[
                ("meta-signature", "ab"),
                ("meta-signature-algorithm", "SHA256withRSA")
            ]),
            SignatureMeta {
                signature: Some("ab".into()),
                algorithm: Some("SHA256withRSA".into())
            }
        );
        assert_eq!(
            meta(&[("signature", "cd")]).signature.as_deref(),
            Some("cd")
        );
        assert_eq!(
            meta(&[("X-Obs-Meta-Meta-Signature", "ef")])
                .signature
                .as_deref(),
            Some("ef")
        );
        assert_eq!(meta(&[("meta-signature", " ")]).signature, None);
        assert_eq!(meta(&[]), SignatureMeta::default());
    }

    #[test]
    fn trace_classification() {
        let md5 = [0u8; 16];
        let zeros = hex::encode(md5);
        let l = |key: &str, h: &str, s: Integrity| Listing {
            digest_key: key.into(),
            expected_md5: h.into(),
            digest_status: s,
        };
        assert_eq!(classify_trace(&[], Some(&md5)).0, Integrity::NotInDigest);
        let ok = [l("d1", &zeros.to_uppercase(), Integrity::Valid)];
        assert_eq!(classify_trace(&ok, Some(&md5)).0, Integrity::Valid);
        assert_eq!(classify_trace(&ok, None).0, Integrity::NotFound);
        let bad = [
            l("d1", &zeros, Integrity::Valid),
            l("d2", "ffffffffffffffffffffffffffffffff", Integrity::Valid),
        ];
        let (s, detail) = classify_trace(&bad, Some(&md5));
        assert_eq!(s, Integrity::HashMismatch);
        assert!(detail.contains("d2"), "{detail}");
        let forged = [l("d1", &zeros, Integrity::SignatureInvalid)];
        let (s, detail) = classify_trace(&forged, Some(&md5));
        assert_eq!(s, Integrity::Valid);
        assert!(detail.contains("no listing digest is valid"), "{detail}");
    }

    #[test]
    fn the_index_maps_objects_to_store_keys() {
        let d = parse(DIGEST.as_bytes(), 1 << 20).unwrap();
        let mut idx = DigestIndex::default();
        idx.add("dk", &d, Integrity::Valid, |o| format!("p/{o}"));
        assert_eq!(idx.listings("p/CloudTraces/a.json.gz").len(), 1);
        assert!(idx.listings("CloudTraces/a.json.gz").is_empty());
        assert_eq!(idx.keys().count(), 1);
    }
}
