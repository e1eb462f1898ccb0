//! The SMN (Simple Message Notification) sink: publishes a notification to a topic, whose
//! subscribers (mail, SMS, HTTP, ...) SMN fans out to (SPEC §5).
//!
//! `POST {endpoint}/v2/{project_id}/notifications/topics/{topic_urn}/publish` with JSON
//! `{"subject", "message"}`; subject cut to [`SUBJECT_MAX`] bytes, message to [`MESSAGE_MAX`].
//! Auth: an IAM token in `X-Auth-Token`, or AK/SK signing ([`super::signer`]) over `host`,
//! `content-type`, `x-sdk-date` (and `x-project-id` when sent), as the Huawei SDKs sign.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::signer::{self, SignableRequest};
use super::sink::{
    http_client, truncate_utf8, Notification, Secret, SendError, Sink, SinkConfigError,
};

/// SMN's limit on the subject, in bytes.
pub const SUBJECT_MAX: usize = 512;
/// SMN's limit on the message ("256 KB"); taken as 256 000 bytes to stay clear of either
/// reading of "KB".
pub const MESSAGE_MAX: usize = 256_000;
const TRUNCATION_MARKER: &str = "…";

/// Which cloud's SMN host names to derive from a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// `https://smn.<region>.myhuaweicloud.com`
    #[serde(alias = "huawei")]
    Huaweicloud,
    /// Open Telekom Cloud: `https://smn.<region>.otc.t-systems.com`
    Otc,
}

/// The SMN endpoint of a region.
pub fn endpoint_for(cloud: Cloud, region: &str) -> String {
    match cloud {
        Cloud::Huaweicloud => format!("https://smn.{region}.myhuaweicloud.com"),
        Cloud::Otc => format!("https://smn.{region}.otc.t-systems.com"),
    }
}

/// A topic URN split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicUrn {
    pub region: String,
    pub project_id: String,
    pub name: String,
}

impl TopicUrn {
    /// `urn:smn:<region>:<project_id>:<name>`.
    pub fn parse(urn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = urn.split(':').collect();
        match parts.as_slice() {
            ["urn", "smn", region, project, name]
                if !region.is_empty() && !project.is_empty() && !name.is_empty() =>
            {
                Ok(TopicUrn {
                    region: (*region).to_owned(),
                    project_id: (*project).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(format!(
                "{urn:?} is not a topic URN (urn:smn:<region>:<project_id>:<topic name>)"
            )),
        }
    }

    pub fn urn(&self) -> String {
        format!("urn:smn:{}:{}:{}", self.region, self.project_id, self.name)
    }
}

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum SmnAuth {
    /// IAM token in `X-Auth-Token`.
    Token(Secret),
    /// `SDK-HMAC-SHA256` request signing.
    AkSk {
        access_key: Secret,
        secret_key: Secret,
    },
}

/// Everything an [`SmnSink`] needs, resolved.
#[derive(Debug, Clone)]
pub struct SmnConfig {
    pub name: String,
    /// Scheme and host (and port), no trailing path, e.g. `https://smn.eu-de.otc.t-systems.com`.
    pub endpoint: String,
    pub topic: TopicUrn,
    /// The project in the path; normally the URN's.
    pub project_id: String,
    pub auth: SmnAuth,
    /// Send `X-Project-Id: <project_id>` (needed by some multi-project accounts).
    pub send_project_header: bool,
    /// Connect + whole-request timeout of the HTTP client.
    pub timeout: Duration,
}

/// Publishes notifications to one SMN topic.
pub struct SmnSink {
    name: String,
    url: reqwest::Url,
    host: String,
    path: String,
    topic_urn: String,
    project_id: String,
    auth: SmnAuth,
    send_project_header: bool,
    client: reqwest::Client,
}

impl std::fmt::Debug for SmnSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SmnSink {
    pub fn new(cfg: SmnConfig) -> Result<Self, SinkConfigError> {
        let bad = SinkConfigError::new;
        let base = reqwest::Url::parse(cfg.endpoint.trim_end_matches('/'))
            .map_err(|e| bad("endpoint", format!("{:?}: {e}", cfg.endpoint)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(
                "endpoint",
                format!("{:?}: expected http:// or https://", cfg.endpoint),
            ));
        }
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(bad("endpoint", format!("{:?}: no host", cfg.endpoint))),
        };
        let topic_urn = cfg.topic.urn();
        let prefix = base.path().trim_end_matches('/');
        let path = format!(
            "{prefix}/v2/{}/notifications/topics/{topic_urn}/publish",
            cfg.project_id
        );
        let mut url = base.clone();
        url.set_path(&path);
        if let SmnAuth::AkSk {
            access_key,
            secret_key,
        } = &cfg.auth
        {
            if access_key.is_empty() || secret_key.is_empty() {
                return Err(bad("access_key", "empty access key or secret key".into()));
            }
        }
        Ok(SmnSink {
            name: cfg.name,
            // The path as the URL will send it (percent-encoding applied), which is what the
            // server canonicalises.
            path: url.path().to_owned(),
            url,
            host,
            topic_urn,
            project_id: cfg.project_id,
            auth: cfg.auth,
            send_project_header: cfg.send_project_header,
            client: http_client(cfg.timeout)?,
        })
    }

    /// The JSON body of one publish request, within SMN's limits.
    pub fn body(n: &Notification) -> Vec<u8> {
        let body = serde_json::json!({
            "subject": truncate_utf8(&n.subject, SUBJECT_MAX, TRUNCATION_MARKER),
            "message": truncate_utf8(&n.message, MESSAGE_MAX, TRUNCATION_MARKER),
        });
        body.to_string().into_bytes()
    }
}

/// Reads SMN's error body: `{"error_code","error_msg"}`, `{"error":{"code","message"}}`
/// or anything else (shown cut short).
pub fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let pick = |o: &serde_json::Value, code: &str, msg: &str| {
            let c = o.get(code).and_then(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .or_else(|| c.as_i64().map(|n| n.to_string()))
            });
            let m = o.get(msg).and_then(|m| m.as_str()).map(str::to_owned);
            match (c, m) {
                (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                (Some(c), None) => Some(c),
                (None, Some(m)) => Some(m),
                (None, None) => None,
            }
        };
        let found = pick(&v, "error_code", "error_msg")
            .or_else(|| v.get("error").and_then(|e| pick(e, "code", "message")))
            .or_else(|| pick(&v, "code", "message"));
        if let Some(detail) = found {
            return detail;
        }
    }
    truncate_utf8(text.trim(), 300, "…")
}

#[async_trait]
impl Sink for SmnSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        let auth = match self.auth {
            SmnAuth::Token(_) => "token",
            SmnAuth::AkSk { .. } => "AK/SK",
        };
        format!(
            "SMN topic {} via {}://{} ({auth} auth)",
            self.topic_urn,
            self.url.scheme(),
            self.host
        )
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = Self::body(n);
        let date = Utc::now().format(signer::DATE_FORMAT).to_string();
        let content_type = "application/json";
        let mut headers: Vec<(&str, String)> = vec![
            ("host", self.host.clone()),
            ("content-type", content_type.to_owned()),
            ("x-sdk-date", date),
        ];
        if self.send_project_header {
            headers.push(("x-project-id", self.project_id.clone()));
        }
        let mut req = self.client.post(self.url.clone());
        match &self.auth {
            SmnAuth::Token(token) => {
                let mut value =
                    reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
                        SendError::permanent("the SMN token is not a valid header value")
                    })?;
                value.set_sensitive(true);
                req = req.header("x-auth-token", value);
            }
            SmnAuth::AkSk {
                access_key,
                secret_key,
            } => {
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
                let sig = signer::sign(
                    &SignableRequest {
                        method: "POST",
                        path: &self.path,
                        query: "",
                        headers: &pairs,
                        body: &body,
                    },
                    &names,
                    access_key.expose(),
                    secret_key.expose(),
                )
                .map_err(|e| SendError::permanent(format!("cannot sign the request: {e}")))?;
                req = req.header("authorization", sig.authorization);
            }
        }
        // Host is set explicitly so the signed value is exactly the one sent.
        for (k, v) in headers {
            req = req.header(k, v);
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
        let body = resp.bytes().await.unwrap_or_default();
        Err(SendError::from_http(
            status.as_u16(),
            retry_after.as_deref(),
            &format!("SMN publish to {}: {}", self.topic_urn, error_detail(&body)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_and_endpoints() {
        let t = TopicUrn::parse("urn:smn:eu-de:0123abc:oncall").unwrap();
        assert_eq!(t.region, "eu-de");
        assert_eq!(t.project_id, "0123abc");
        assert_eq!(t.name, "oncall");
        assert_eq!(t.urn(), "urn:smn:eu-de:0123abc:oncall");
        assert!(TopicUrn::parse("oncall").is_err());
        assert!(TopicUrn::parse("urn:smn:eu-de::x").is_err());
        assert_eq!(
            endpoint_for(Cloud::Otc, "eu-de"),
            "https://smn.eu-de.otc.t-systems.com"
        );
        assert_eq!(
            endpoint_for(Cloud::Huaweicloud, "cn-north-4"),
            "https://smn.cn-north-4.myhuaweicloud.com"
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_detail(
                br#"{"request_id":"r","error_code":"SMN.0011","error_msg":"topic not found"}"#
            ),
            "SMN.0011: topic not found"
        );
        assert_eq!(
            error_detail(br#"{"error":{"code":"APIGW.0301","message":"Incorrect IAM authentication information"}}"#),
            "APIGW.0301: Incorrect IAM authentication information"
        );
        assert_eq!(error_detail(b"Bad Gateway"), "Bad Gateway");
    }
}
