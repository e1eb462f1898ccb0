//! `SDK-HMAC-SHA256` request signing (Huawei Cloud / Open Telekom Cloud API Gateway AK/SK
//! authentication), exactly as SPEC §5 describes it. Pure: no clock, no I/O; the caller passes
//! the `X-Sdk-Date` header among the headers, so the published test vectors reproduce.
//!
//! Canonical request (one field per line):
//!
//! ```text
//! METHOD
//! /canonical/path/            (each segment percent-encoded, always ending in '/')
//! a=1&b=2                     (sorted by key, then value, keys and values percent-encoded)
//! name:trimmed value\n...     (signed headers only, lower-case names, sorted)
//! name;name                   (signed header names)
//! hex(SHA-256(body))
//! ```
//!
//! String to sign: `SDK-HMAC-SHA256\n<X-Sdk-Date>\nhex(SHA-256(canonical request))`;
//! signature: `hex(HMAC-SHA256(secret key, string to sign))`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The header carrying the signing time, `YYYYMMDDTHHMMSSZ` (UTC).
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// `chrono` format of [`DATE_HEADER`] values.
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The parts of an HTTP request that take part in the signature.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path as sent (may be percent-encoded already; it is decoded, then re-encoded per segment).
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// Request headers; names are matched case-insensitively.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Why a request cannot be signed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("header {0} is to be signed but the request does not carry it")]
    MissingHeader(String),
    #[error("the request carries no {DATE_HEADER} header, which the signature covers")]
    MissingDate,
}

/// The result of signing: the `Authorization` value and the pieces, for tests and logs
/// (none of them is secret: the signature is an HMAC, not the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub authorization: String,
    pub signature: String,
    pub signed_headers: String,
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// Percent-encodes everything except RFC 3986 unreserved characters, as the Huawei SDKs'
/// `urlencode` (Python `quote(s, safe='~')`) does.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences (invalid ones are kept literally); `+` stays `+`, as in a path.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: every segment decoded then encoded, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let mut uri = path
        .split('/')
        .map(|seg| encode(&decode(seg)))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query: pairs sorted by key then value, each side decoded then encoded,
/// a bare key written as `key=`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `data` with `key`, hex-encoded.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; fall back to an
    // empty MAC rather than panic if a future version ever changed that.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Signs `req` with the given access key and secret key, covering the headers named in
/// `signed_headers` (case-insensitive; `x-sdk-date` is always added).
pub fn sign(
    req: &SignableRequest<'_>,
    signed_headers: &[&str],
    access_key: &str,
    secret_key: &str,
) -> Result<Signature, SignError> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let date = header(DATE_HEADER).ok_or(SignError::MissingDate)?;

    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.push(DATE_HEADER.to_ascii_lowercase());
    names.sort();
    names.dedup();

    let mut canonical_headers = String::new();
    for name in &names {
        let value = header(name).ok_or_else(|| SignError::MissingHeader(name.clone()))?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed = names.join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers,
        signed,
        hex_sha256(req.body)
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex_sha256(canonical_request.as_bytes())
    );
    let signature = hmac_sha256_hex(secret_key.as_bytes(), string_to_sign.as_bytes());
    Ok(Signature {
        authorization: format!(
            "{ALGORITHM} Access={access_key}, SignedHeaders={signed}, Signature={signature}"
        ),
        signature,
        signed_headers: signed,
        canonical_request,
        string_to_sign,
    })
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 ...` header, for verifiers (the tests'
/// receiver). `None` when the header is not of that form.
pub fn parse_authorization(value: &str) -> Option<(String, Vec<String>, String)> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut access = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Access" => access = Some(v.to_owned()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_owned).collect()),
            "Signature" => sig = Some(v.to_owned()),
            _ => {}
        }
    }
    Some((access?, signed?, sig?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "20060102T150405Z";

    #[test]
    fn published_vector_get() {
        let headers = [("X-Sdk-Date", DATE)];
        let req = SignableRequest {
            method: "GET",
            path: "/path",
            query: "limit=1",
            headers: &headers,
            body: b"",
        };
        let s = sign(&req, &[], "AccessKey", "SecretKey").unwrap();
        assert_eq!(
            s.signature,
            "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
        assert_eq!(
            s.authorization,
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn published_vector_post() {
        let headers = [("X-Sdk-Date", DATE)];
        let req = SignableRequest {
            method: "POST",
            path: "/path",
            query: "key=value",
            headers: &headers,
            body: b"{\"Name\":\"test\",\"Id\":1}\n",
        };
        let s = sign(&req, &[], "AccessKey", "SecretKey").unwrap();
        assert_eq!(
            s.signature,
            "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
        );
    }

    #[test]
    fn canonical_parts() {
        assert_eq!(canonical_uri("/path"), "/path/");
        assert_eq!(canonical_uri("/a/b/"), "/a/b/");
        assert_eq!(
            canonical_uri("/v2/p/notifications/topics/urn:smn:eu-de:p:t/publish"),
            "/v2/p/notifications/topics/urn%3Asmn%3Aeu-de%3Ap%3At/publish/"
        );
        // Already-encoded paths are not encoded twice.
        assert_eq!(canonical_uri("/a%3Ab"), "/a%3Ab/");
        assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("k=a b"), "k=a%20b");
    }

    #[test]
    fn header_names_and_values_are_normalised() {
        let headers = [
            ("Host", " example.com "),
            ("Content-Type", "application/json"),
            ("x-sdk-date", DATE),
        ];
        let req = SignableRequest {
            method: "post",
            path: "/x",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let s = sign(&req, &["Host", "content-type"], "ak", "sk").unwrap();
        assert_eq!(s.signed_headers, "content-type;host;x-sdk-date");
        assert!(s
            .canonical_request
            .starts_with("POST\n/x/\n\ncontent-type:application/json\nhost:example.com\nx-sdk-date:20060102T150405Z\n\ncontent-type;host;x-sdk-date\n"));
        let (ak, names, sig) = parse_authorization(&s.authorization).unwrap();
        assert_eq!(ak, "ak");
        assert_eq!(names, ["content-type", "host", "x-sdk-date"]);
        assert_eq!(sig, s.signature);
    }

    #[test]
    fn missing_headers_are_errors() {
        let req = SignableRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        assert_eq!(
            sign(&req, &[], "ak", "sk").unwrap_err(),
            SignError::MissingDate
        );
        let headers = [("X-Sdk-Date", DATE)];
        let req = SignableRequest {
            headers: &headers,
            ..req
        };
        assert_eq!(
            sign(&req, &["host"], "ak", "sk").unwrap_err(),
            SignError::MissingHeader("host".into())
        );
    }
}
