//! The webhook sink: one JSON `POST` per notification.
//!
//! Payload formats ([`WebhookFormat`]):
//!
//! | format     | body                                                                 | text limit |
//! |------------|----------------------------------------------------------------------|-----------|
//! | `json`     | `{"subject","message","count","first","last","group","alarms":[...]}` (alarms as in the JSON-lines stream) | none |
//! | `slack`    | `{"text"}` (also Mattermost, Rocket.Chat, Google Chat)               | 40 000 B |
//! | `teams`    | `{"text"}` (Office 365 connector / Workflows "post a message")       | 28 000 B |
//! | `discord`  | `{"content"}`                                                        | 2 000 B |
//! | `dingtalk` | `{"msgtype":"text","text":{"content"}}`                              | 20 000 B |
//! | `wecom`    | `{"msgtype":"text","text":{"content"}}` (WeCom / WeChat Work)        | 2 048 B |
//! | `feishu`   | `{"msg_type":"text","content":{"text"}}` (Feishu / Lark)             | 30 000 B |
//!
//! Chat text is the subject, a blank line and the message, cut on a char boundary to the
//! platform's limit with a note saying how much was cut.
//!
//! Signature: with a shared secret, the header `X-Ctsguard-Signature: sha256=<hex>` (name
//! configurable) carries the lower-case hex HMAC-SHA256 of the exact body bytes, as GitHub's
//! `X-Hub-Signature-256` does; a receiver recomputes it over the raw body before parsing.
//!
//! The URL is treated as a secret (chat webhook URLs embed tokens): it appears in no error,
//! log or [`Sink::describe`] text beyond scheme and host.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::signer::hmac_sha256_hex;
use super::sink::{
    http_client, truncate_utf8, Notification, Secret, SendError, Sink, SinkConfigError,
};

/// Default name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Ctsguard-Signature";

/// The shape of the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    #[serde(alias = "mattermost")]
    Slack,
    Teams,
    Discord,
    Dingtalk,
    Wecom,
    #[serde(alias = "lark")]
    Feishu,
}

impl WebhookFormat {
    /// The platform's text limit in bytes (conservative: bytes ≥ chars).
    pub fn text_limit(self) -> Option<usize> {
        match self {
            WebhookFormat::Json => None,
            WebhookFormat::Slack => Some(40_000),
            WebhookFormat::Teams => Some(28_000),
            WebhookFormat::Discord => Some(2_000),
            WebhookFormat::Dingtalk => Some(20_000),
            WebhookFormat::Wecom => Some(2_048),
            WebhookFormat::Feishu => Some(30_000),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Dingtalk => "dingtalk",
            WebhookFormat::Wecom => "wecom",
            WebhookFormat::Feishu => "feishu",
        }
    }

    /// The request body for `n`.
    pub fn body(self, n: &Notification) -> Vec<u8> {
        let text = || {
            let t = format!("{}\n\n{}", n.subject, n.message);
            match self.text_limit() {
                Some(max) => truncate_utf8(&t, max, "…"),
                None => t,
            }
        };
        let value = match self {
            WebhookFormat::Json => json!({
                "subject": n.subject,
                "message": n.message,
                "count": n.count,
                "first": n.first,
                "last": n.last,
                "group": n.group,
                "alarms": n.alarms,
            }),
            WebhookFormat::Slack | WebhookFormat::Teams => json!({ "text": text() }),
            WebhookFormat::Discord => json!({ "content": text() }),
            WebhookFormat::Dingtalk | WebhookFormat::Wecom => {
                json!({ "msgtype": "text", "text": { "content": text() } })
            }
            WebhookFormat::Feishu => json!({ "msg_type": "text", "content": { "text": text() } }),
        };
        value.to_string().into_bytes()
    }
}

/// Everything a [`WebhookSink`] needs, resolved.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    /// The target URL (a secret: chat URLs embed tokens).
    pub url: Secret,
    pub format: WebhookFormat,
    /// Shared secret for the body signature; `None`: unsigned.
    pub secret: Option<Secret>,
    pub signature_header: String,
    /// Extra headers; values are treated as secrets (they often carry tokens).
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
}

/// Posts notifications to one URL.
pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    format: WebhookFormat,
    secret: Option<Secret>,
    signature_header: HeaderName,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl WebhookSink {
    pub fn new(cfg: WebhookConfig) -> Result<Self, SinkConfigError> {
        let bad = SinkConfigError::new;
        // The parse error text does not quote the input, so the URL cannot leak through it.
        let url = reqwest::Url::parse(cfg.url.expose())
            .map_err(|e| bad("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(
                "url",
                "expected an http:// or https:// URL with a host".into(),
            ));
        }
        let signature_header =
            HeaderName::from_bytes(cfg.signature_header.as_bytes()).map_err(|_| {
                bad(
                    "signature_header",
                    format!("{:?} is not a header name", cfg.signature_header),
                )
            })?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad("headers", format!("{k:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(v.expose()).map_err(|_| {
                bad(
                    "headers",
                    format!("the value of {k} is not a valid header value"),
                )
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(WebhookSink {
            name: cfg.name,
            url,
            format: cfg.format,
            secret: cfg.secret.filter(|s| !s.is_empty()),
            signature_header,
            headers,
            client: http_client(cfg.timeout)?,
        })
    }

    fn target(&self) -> String {
        match self.url.port() {
            Some(p) => format!(
                "{}://{}:{p}",
                self.url.scheme(),
                self.url.host_str().unwrap_or("?")
            ),
            None => format!(
                "{}://{}",
                self.url.scheme(),
                self.url.host_str().unwrap_or("?")
            ),
        }
    }
}

/// The signature header value for `body`: `sha256=<hex HMAC-SHA256>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body))
}

#[async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!(
            "webhook ({}) to {}{}",
            self.format.as_str(),
            self.target(),
            if self.secret.is_some() {
                format!(", body signed in {}", self.signature_header)
            } else {
                String::new()
            }
        )
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = self.format.body(n);
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            req = req.header(
                self.signature_header.clone(),
                signature(secret.expose(), &body),
            );
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(SendError::from_reqwest)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.bytes().await.unwrap_or_default();
        let detail = truncate_utf8(String::from_utf8_lossy(&text).trim(), 300, "…");
        Err(SendError::from_http(
            status.as_u16(),
            retry_after.as_deref(),
            &format!("webhook {}: {detail}", self.target()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(message: &str) -> Notification {
        Notification {
            subject: "S".into(),
            message: message.into(),
            alarms: vec![],
            group: None,
            count: 0,
            first: None,
            last: None,
        }
    }

    #[test]
    fn chat_shapes() {
        let n = note("M");
        let v =
            |f: WebhookFormat| serde_json::from_slice::<serde_json::Value>(&f.body(&n)).unwrap();
        assert_eq!(v(WebhookFormat::Slack)["text"], "S\n\nM");
        assert_eq!(v(WebhookFormat::Teams)["text"], "S\n\nM");
        assert_eq!(v(WebhookFormat::Discord)["content"], "S\n\nM");
        assert_eq!(v(WebhookFormat::Dingtalk)["text"]["content"], "S\n\nM");
        assert_eq!(v(WebhookFormat::Wecom)["msgtype"], "text");
        assert_eq!(v(WebhookFormat::Feishu)["content"]["text"], "S\n\nM");
        assert_eq!(v(WebhookFormat::Feishu)["msg_type"], "text");
        assert_eq!(v(WebhookFormat::Json)["subject"], "S");
    }

    #[test]
    fn chat_text_is_cut_to_the_platform_limit() {
        let n = note(&"x".repeat(10_000));
        let v: serde_json::Value =
            serde_json::from_slice(&WebhookFormat::Discord.body(&n)).unwrap();
        let text = v["content"].as_str().unwrap();
        assert!(
            text.len() <= 2000 && text.contains("truncated"),
            "{}",
            text.len()
        );
    }

    #[test]
    fn bad_urls_are_named_without_echoing_them() {
        let cfg = WebhookConfig {
            name: "w".into(),
            url: Secret::new("ftp://hooks.example/T0KEN"),
            format: WebhookFormat::Json,
            secret: None,
            signature_header: SIGNATURE_HEADER.into(),
            headers: vec![],
            timeout: Duration::from_secs(1),
        };
        let e = WebhookSink::new(cfg).unwrap_err();
        assert_eq!(e.setting, "url");
        assert!(!e.to_string().contains("T0KEN"), "{e}");
    }
}
