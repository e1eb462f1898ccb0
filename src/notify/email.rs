//! The email sink: one plain-text mail per notification over SMTP (lettre, async on tokio,
//! rustls with the aws-lc-rs provider and the platform's certificate verifier).
//!
//! `tls`: `starttls` (default, port 587: STARTTLS required, never falls back to plain text),
//! `tls` (implicit TLS, port 465), `none` (plain text, port 25: only for a relay on the same
//! host or pod; logged as a warning because credentials and alarms cross the wire in clear).
//!
//! Errors: SMTP 4xx replies, connection failures and timeouts are retryable; 5xx replies
//! (rejected recipient, failed authentication, ...) and malformed messages are permanent.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::sink::{error_chain, Notification, Secret, SendError, Sink, SinkConfigError};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: a local relay only.
    None,
}

impl EmailTls {
    pub fn default_port(self) -> u16 {
        match self {
            EmailTls::Starttls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EmailTls::Starttls => "starttls",
            EmailTls::Tls => "tls",
            EmailTls::None => "none",
        }
    }
}

/// Everything an [`EmailSink`] needs, resolved.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub name: String,
    pub host: String,
    /// `None`: the default port of `tls`.
    pub port: Option<u16>,
    pub tls: EmailTls,
    /// Login, when the server wants one.
    pub credentials: Option<(String, Secret)>,
    /// Extra trusted root certificates (PEM, one or more), besides the platform's: for a
    /// relay whose certificate comes from a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub from: String,
    pub to: Vec<String>,
    /// Connection and command timeout of the SMTP client.
    pub timeout: Duration,
}

/// Sends notifications as mail.
pub struct EmailSink {
    name: String,
    host: String,
    port: u16,
    tls: EmailTls,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl EmailSink {
    pub fn new(cfg: EmailConfig) -> Result<Self, SinkConfigError> {
        let bad = SinkConfigError::new;
        if cfg.host.is_empty() {
            return Err(bad("host", "empty".into()));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| bad("from", format!("{:?}: {e}", cfg.from)))?;
        if cfg.to.is_empty() {
            return Err(bad("to", "no recipient".into()));
        }
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>()
                    .map_err(|e| bad("to", format!("{t:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let port = cfg.port.unwrap_or(cfg.tls.default_port());
        let transport = |tls: EmailTls| match tls {
            EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host),
            EmailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host),
            EmailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &cfg.host,
            )),
        };
        let builder = match (&cfg.ca_pem, cfg.tls) {
            (Some(_), EmailTls::None) => {
                return Err(bad("ca_file", "needs tls = \"starttls\" or \"tls\"".into()))
            }
            (Some(pem), tls) => {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    bad(
                        "ca_file",
                        format!("not PEM certificates: {}", error_chain(&e)),
                    )
                })?;
                let params = TlsParameters::builder(cfg.host.clone())
                    .add_root_certificate(cert)
                    .build_rustls()
                    .map_err(|e| bad("ca_file", error_chain(&e)))?;
                let mode = if tls == EmailTls::Starttls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                };
                transport(tls).map(|b| b.tls(mode))
            }
            (None, tls) => transport(tls),
        }
        .map_err(|e| bad("host", format!("{:?}: {}", cfg.host, error_chain(&e))))?;
        if cfg.tls == EmailTls::None {
            tracing::warn!(
                sink = %cfg.name,
                host = %cfg.host,
                port,
                "email sink without TLS: alarms{} cross the network in clear text; use only for a relay on the same host",
                if cfg.credentials.is_some() { " and the SMTP password" } else { "" }
            );
        }
        let mut builder = builder.port(port).timeout(Some(cfg.timeout));
        if let Some((user, password)) = &cfg.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(EmailSink {
            name: cfg.name,
            host: cfg.host,
            port,
            tls: cfg.tls,
            from,
            to,
            transport: builder.build(),
        })
    }

    /// The mail for `n`.
    pub fn message(&self, n: &Notification) -> Result<Message, SendError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(n.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        b.body(n.message.clone())
            .map_err(|e| SendError::permanent(format!("cannot build the mail: {e}")))
    }
}

/// SMTP errors: 5xx replies and client-side errors are permanent, the rest (4xx, network,
/// timeouts, TLS handshakes) retryable.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let reason = format!("SMTP: {}", error_chain(e));
    if e.is_permanent() || e.is_client() {
        SendError::permanent(reason)
    } else {
        SendError::retryable(reason)
    }
}

#[async_trait]
impl Sink for EmailSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!(
            "email via {}:{} ({}) from {} to {}",
            self.host,
            self.port,
            self.tls.as_str(),
            self.from,
            self.to
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let mail = self.message(n)?;
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tls: EmailTls, port: Option<u16>) -> EmailConfig {
        EmailConfig {
            name: "email:ops".into(),
            host: "127.0.0.1".into(),
            port,
            tls,
            credentials: Some(("u".into(), Secret::new("pw-do-not-leak"))),
            ca_pem: None,
            from: "ctsguard <c@example.com>".into(),
            to: vec!["ops@example.com".into()],
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn tls_modes_build_with_their_default_ports() {
        for (tls, port) in [
            (EmailTls::Starttls, 587),
            (EmailTls::Tls, 465),
            (EmailTls::None, 25),
        ] {
            let sink = EmailSink::new(config(tls, None)).unwrap();
            let d = sink.describe();
            assert!(
                d.contains(&format!("127.0.0.1:{port} ({})", tls.as_str())),
                "{d}"
            );
            assert!(
                !d.contains("pw-do-not-leak") && !format!("{sink:?}").contains("pw-do-not-leak")
            );
        }
        let e = EmailSink::new(EmailConfig {
            to: vec!["not an address".into()],
            ..config(EmailTls::Starttls, None)
        })
        .unwrap_err();
        assert_eq!(e.setting, "to");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retryable_for_every_tls_mode() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let n = Notification {
            subject: "s".into(),
            message: "m".into(),
            alarms: vec![],
            group: None,
            count: 0,
            first: None,
            last: None,
        };
        for tls in [EmailTls::Starttls, EmailTls::Tls, EmailTls::None] {
            let sink = EmailSink::new(config(tls, Some(port))).unwrap();
            let err = sink.send(&n).await.unwrap_err();
            assert!(err.is_retryable(), "{tls:?}: {err}");
            assert!(!err.to_string().contains("pw-do-not-leak"));
        }
    }
}
