//! The notification sinks against real servers on loopback: an HTTP receiver (axum) for SMN
//! and webhooks, an SMTP server (mailin-embedded) for email. Nothing of reqwest or lettre is
//! mocked. Timing assertions are only "at least the server's Retry-After".

mod common;

use std::time::Duration;

use common::http_receiver::{HttpReceiver, Received, Reply};
use common::smtp::SmtpServer;
use ctsguard::alert::Alert;
use ctsguard::detect::{Reason, RULE_UNLISTED_IP};
use ctsguard::notify::email::{EmailConfig, EmailSink, EmailTls};
use ctsguard::notify::message::{group, MessageStyle};
use ctsguard::notify::retry::{deliver, DeliveryError, RetryPolicy};
use ctsguard::notify::signer::{self, SignableRequest};
use ctsguard::notify::sink::{Notification, Secret, Sink};
use ctsguard::notify::smn::{SmnAuth, SmnConfig, SmnSink, TopicUrn};
use ctsguard::notify::spec::{build, Built, SinkSpec};
use ctsguard::notify::webhook::{signature, WebhookConfig, WebhookFormat, WebhookSink};

const AK: &str = "test-access-key";
const SK: &str = "test-secret-key-do-not-leak";
const TOKEN: &str = "test-iam-token-do-not-leak";

fn alert(i: usize) -> Alert {
    Alert {
        rule: RULE_UNLISTED_IP,
        reason: Reason::UnlistedIp,
        action: "login".into(),
        source_ip: Some("203.0.113.9".into()),
        user: Some("alice".into()),
        user_id: Some("u-1".into()),
        domain: Some("acme".into()),
        domain_id: Some("d-1".into()),
        trace_id: Some(format!("trace-{i}")),
        time: Some(format!("2026-09-30T10:{i:02}:00.000Z")),
        time_raw: None,
        trace_rating: Some("normal".into()),
        region: "eu-de".into(),
        tracker: "system".into(),
        service: Some("IAM".into()),
        object: "CloudTraces/eu-de/2026/9/30/system/IAM/f.json.gz".into(),
        index: i,
        detail: None,
        message: String::new(),
    }
}

/// One notification for three alarms of one group.
fn notification() -> Notification {
    let alerts: Vec<Alert> = (0..3).map(alert).collect();
    let mut out = group(&alerts, 10, &MessageStyle::default());
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// Tiny backoffs so the suite is fast; generous attempt timeout unless a test wants a hang.
fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_secs(3),
        timeout: Duration::from_secs(5),
        budget: Duration::from_secs(20),
    }
}

fn topic() -> TopicUrn {
    TopicUrn::parse("urn:smn:eu-de:proj0123:oncall").unwrap()
}

fn smn_sink(rx: &HttpReceiver, auth: SmnAuth, project_header: bool) -> SmnSink {
    SmnSink::new(SmnConfig {
        name: "smn:oncall".into(),
        endpoint: rx.endpoint(),
        topic: topic(),
        project_id: "proj0123".into(),
        auth,
        send_project_header: project_header,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn aksk() -> SmnAuth {
    SmnAuth::AkSk {
        access_key: Secret::new(AK),
        secret_key: Secret::new(SK),
    }
}

/// Recomputes the `SDK-HMAC-SHA256` signature from what the server received, with the
/// server's copy of the secret key, as API Gateway does.
fn verify_signature(r: &Received, secret_key: &str) -> Result<(), String> {
    let auth = r.header("authorization").ok_or("no Authorization header")?;
    let (access, names, sig) =
        signer::parse_authorization(auth).ok_or_else(|| format!("not SDK-HMAC-SHA256: {auth}"))?;
    if access != AK {
        return Err(format!("access key {access}"));
    }
    for required in ["host", "content-type", "x-sdk-date"] {
        if !names.iter().any(|n| n == required) {
            return Err(format!("{required} is not signed: {names:?}"));
        }
    }
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let expected = signer::sign(
        &SignableRequest {
            method: &r.method,
            path: &r.path,
            query: &r.query,
            headers: &headers,
            body: &r.body,
        },
        &names,
        AK,
        secret_key,
    )
    .map_err(|e| e.to_string())?;
    if expected.signature == sig {
        Ok(())
    } else {
        Err("signature mismatch".into())
    }
}

#[tokio::test]
async fn smn_publish_with_aksk_is_signed_verifiably() {
    let rx = HttpReceiver::start(vec![Reply::json(
        200,
        r#"{"request_id":"r1","message_id":"m1"}"#,
    )]);
    let sink = smn_sink(&rx, aksk(), true);
    let n = notification();
    assert_eq!(deliver(&sink, &n, &quick_policy()).await.unwrap(), 1);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        "/v2/proj0123/notifications/topics/urn:smn:eu-de:proj0123:oncall/publish"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-project-id"), Some("proj0123"));
    assert!(r.header("x-auth-token").is_none());
    let date = r.header("x-sdk-date").unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, signer::DATE_FORMAT).is_ok(),
        "{date}"
    );
    let body = r.json();
    assert_eq!(body["subject"], n.subject.as_str());
    assert_eq!(body["message"], n.message.as_str());
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    verify_signature(r, SK).unwrap();
    // The check is real: another key, or a changed body, does not verify.
    assert!(verify_signature(r, "another-secret").is_err());
    let mut tampered = r.clone();
    tampered.body.push(b' ');
    assert!(verify_signature(&tampered, SK).is_err());
}

#[tokio::test]
async fn smn_token_auth_sends_the_token_and_no_signature() {
    let rx = HttpReceiver::start(vec![]);
    let sink = smn_sink(&rx, SmnAuth::Token(Secret::new(TOKEN)), false);
    deliver(&sink, &notification(), &quick_policy())
        .await
        .unwrap();
    let r = &rx.requests()[0];
    assert_eq!(r.header("x-auth-token"), Some(TOKEN));
    assert!(r.header("authorization").is_none());
    assert!(r.header("x-project-id").is_none());
    assert!(!sink.describe().contains(TOKEN));
}

#[tokio::test]
async fn smn_texts_are_cut_to_the_limits() {
    let rx = HttpReceiver::start(vec![]);
    let sink = smn_sink(&rx, aksk(), false);
    let mut n = notification();
    n.subject = "s".repeat(2_000);
    n.message = "é".repeat(200_000); // 400 000 bytes
    deliver(&sink, &n, &quick_policy()).await.unwrap();
    let r = &rx.requests()[0];
    let body = r.json();
    let subject = body["subject"].as_str().unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(subject.len() <= 512 && subject.contains("truncated"));
    assert!(message.len() <= 256_000 && message.contains("truncated"));
    verify_signature(r, SK).unwrap();
}

#[tokio::test]
async fn retries_on_500_429_and_hang_then_succeeds_honouring_retry_after() {
    let rx = HttpReceiver::start(vec![
        Reply::Status(500),
        Reply::retry_after(429, "1"),
        Reply::Slow(Duration::from_secs(3), 200),
        Reply::json(200, "{}"),
    ]);
    let sink = smn_sink(&rx, aksk(), false);
    let policy = RetryPolicy {
        timeout: Duration::from_millis(300),
        ..quick_policy()
    };
    let attempts = deliver(&sink, &notification(), &policy).await.unwrap();
    assert_eq!(attempts, 4);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    // The server asked for one second after the 429; the client waited at least that.
    assert!(
        reqs[2].at.duration_since(reqs[1].at) >= Duration::from_secs(1),
        "{:?}",
        reqs[2].at.duration_since(reqs[1].at)
    );
    // Every attempt is freshly signed and carries the same body.
    for r in &reqs {
        verify_signature(r, SK).unwrap();
        assert_eq!(r.body, reqs[0].body);
    }
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let rx = HttpReceiver::start(vec![Reply::retry_after(503, &httpdate::fmt_http_date(at))]);
    let sink = smn_sink(&rx, aksk(), false);
    assert_eq!(
        deliver(&sink, &notification(), &quick_policy())
            .await
            .unwrap(),
        2
    );
    let reqs = rx.requests();
    // HTTP dates have whole seconds: at least one second after the first answer.
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_secs(1));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, body, want) in [
        (
            400,
            r#"{"request_id":"r","error_code":"SMN.00010001","error_msg":"Invalid subject"}"#,
            "SMN.00010001: Invalid subject",
        ),
        (
            403,
            r#"{"error":{"code":"APIGW.0301","message":"Incorrect IAM authentication information"}}"#,
            "APIGW.0301",
        ),
    ] {
        let rx = HttpReceiver::start_with_fallback(vec![], Reply::json(status, body));
        let sink = smn_sink(&rx, aksk(), false);
        let err = deliver(&sink, &notification(), &quick_policy())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Permanent { attempts: 1, .. }),
            "{err:?}"
        );
        assert_eq!(rx.requests().len(), 1);
        let text = err.to_string();
        assert!(text.contains("smn:oncall"), "{text}");
        assert!(
            text.contains(&format!("HTTP {status}")) && text.contains(want),
            "{text}"
        );
    }
}

#[tokio::test]
async fn budget_and_attempts_exhausted_name_the_sink() {
    // The server asks for more than the budget leaves: give up now rather than sleep past it.
    let rx = HttpReceiver::start_with_fallback(vec![], Reply::retry_after(503, "30"));
    let sink = smn_sink(&rx, aksk(), false);
    let policy = RetryPolicy {
        max_backoff: Duration::from_secs(60),
        budget: Duration::from_secs(2),
        ..quick_policy()
    };
    let err = deliver(&sink, &notification(), &policy).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::BudgetExhausted { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.sink(), "smn:oncall");
    assert!(err.to_string().contains("smn:oncall") && err.to_string().contains("HTTP 503"));

    let rx = HttpReceiver::start_with_fallback(vec![], Reply::Status(500));
    let sink = smn_sink(&rx, aksk(), false);
    let policy = RetryPolicy {
        attempts: 3,
        ..quick_policy()
    };
    let err = deliver(&sink, &notification(), &policy).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::AttemptsExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(rx.requests().len(), 3);
    assert!(err.to_string().contains("smn:oncall"));
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn connection_errors_are_retried_and_never_show_the_url() {
    let url = format!(
        "http://127.0.0.1:{}/robot/send?access_token=url-token-do-not-leak",
        closed_port()
    );
    let sink = WebhookSink::new(WebhookConfig {
        name: "webhook:ding".into(),
        url: Secret::new(url),
        format: WebhookFormat::Dingtalk,
        secret: Some(Secret::new("hook-secret-do-not-leak")),
        signature_header: "X-Ctsguard-Signature".into(),
        headers: vec![(
            "Authorization".into(),
            Secret::new("Bearer hdr-do-not-leak"),
        )],
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let policy = RetryPolicy {
        attempts: 2,
        ..quick_policy()
    };
    let err = deliver(&sink, &notification(), &policy).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::AttemptsExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    let texts = [
        err.to_string(),
        format!("{err:?}"),
        sink.describe(),
        format!("{sink:?}"),
    ];
    for t in &texts {
        for secret in [
            "url-token-do-not-leak",
            "hook-secret-do-not-leak",
            "hdr-do-not-leak",
            "/robot/send",
        ] {
            assert!(!t.contains(secret), "{secret} leaked in {t}");
        }
    }
    assert!(texts[0].to_lowercase().contains("connect"), "{}", texts[0]);
}

#[tokio::test]
async fn webhook_json_body_is_signed_over_its_exact_bytes() {
    let rx = HttpReceiver::start(vec![]);
    let sink = WebhookSink::new(WebhookConfig {
        name: "webhook:siem".into(),
        url: Secret::new(rx.url("/hooks/ctsguard?tenant=a")),
        format: WebhookFormat::Json,
        secret: Some(Secret::new("shared-secret")),
        signature_header: "X-Ctsguard-Signature".into(),
        headers: vec![("X-Team".into(), Secret::new("secops"))],
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let n = notification();
    deliver(&sink, &n, &quick_policy()).await.unwrap();
    let r = &rx.requests()[0];
    assert_eq!(r.path, "/hooks/ctsguard");
    assert_eq!(r.query, "tenant=a");
    assert_eq!(r.header("x-team"), Some("secops"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // The receiver recomputes the HMAC over the raw body bytes.
    let sig = r.header("x-ctsguard-signature").unwrap();
    assert_eq!(sig, signature("shared-secret", &r.body));
    assert_ne!(sig, signature("another-secret", &r.body));
    let body = r.json();
    assert_eq!(body["subject"], n.subject.as_str());
    assert_eq!(body["message"], n.message.as_str());
    assert_eq!(body["count"], 3);
    assert_eq!(body["first"], "2026-09-30T10:00:00.000Z");
    assert_eq!(body["last"], "2026-09-30T10:02:00.000Z");
    assert_eq!(body["group"]["user"], "alice");
    assert_eq!(body["alarms"].as_array().unwrap().len(), 3);
    assert_eq!(body["alarms"][1]["trace_id"], "trace-1");
}

#[tokio::test]
async fn chat_payload_shapes() {
    let rx = HttpReceiver::start(vec![]);
    let n = notification();
    let formats = [
        (WebhookFormat::Slack, "/text"),
        (WebhookFormat::Teams, "/text"),
        (WebhookFormat::Discord, "/content"),
        (WebhookFormat::Dingtalk, "/text/content"),
        (WebhookFormat::Wecom, "/text/content"),
        (WebhookFormat::Feishu, "/content/text"),
    ];
    for (format, _) in formats {
        let sink = WebhookSink::new(WebhookConfig {
            name: format!("webhook:{}", format.as_str()),
            url: Secret::new(rx.url(&format!("/{}", format.as_str()))),
            format,
            secret: None,
            signature_header: "X-Ctsguard-Signature".into(),
            headers: vec![],
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        deliver(&sink, &n, &quick_policy()).await.unwrap();
    }
    let reqs = rx.requests();
    assert_eq!(reqs.len(), formats.len());
    for (r, (format, pointer)) in reqs.iter().zip(formats) {
        assert_eq!(r.path, format!("/{}", format.as_str()));
        assert!(r.header("x-ctsguard-signature").is_none());
        let body = r.json();
        let text = body
            .pointer(pointer)
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("{format:?}: {body}"));
        assert!(
            text.starts_with(&n.subject) && text.contains("alice"),
            "{text}"
        );
    }
    assert_eq!(reqs[3].json()["msgtype"], "text");
    assert_eq!(reqs[5].json()["msg_type"], "text");
}

fn email_sink(server: &SmtpServer, to: &[&str]) -> EmailSink {
    EmailSink::new(EmailConfig {
        name: "email:secops".into(),
        host: "127.0.0.1".into(),
        port: Some(server.port()),
        tls: EmailTls::None,
        credentials: None,
        ca_pem: None,
        from: "ctsguard <ctsguard@example.com>".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn email_reaches_the_smtp_server() {
    let server = SmtpServer::start();
    let sink = email_sink(&server, &["secops@example.com", "Bob <bob@example.com>"]);
    let n = notification();
    deliver(&sink, &n, &quick_policy()).await.unwrap();
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.from, "ctsguard@example.com");
    assert_eq!(m.to, ["secops@example.com", "bob@example.com"]);
    assert_eq!(m.header("subject").as_deref(), Some(n.subject.as_str()));
    assert_eq!(
        m.header("from").as_deref(),
        Some("ctsguard <ctsguard@example.com>")
    );
    let to = m.header("to").unwrap();
    assert!(
        to.contains("secops@example.com") && to.contains("bob@example.com"),
        "{to}"
    );
    assert!(
        m.body().contains("trace-0") && m.body().contains("alice"),
        "{}",
        m.body()
    );
}

#[tokio::test]
async fn smtp_5xx_is_permanent_and_4xx_retryable() {
    let server = SmtpServer::start();
    let sink = email_sink(&server, &["reject@example.com"]);
    let err = deliver(&sink, &notification(), &quick_policy())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Permanent { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("email:secops"));

    let sink = email_sink(&server, &["busy@example.com"]);
    let policy = RetryPolicy {
        attempts: 2,
        ..quick_policy()
    };
    let err = deliver(&sink, &notification(), &policy).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::AttemptsExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn email_over_starttls_trusts_a_private_ca_and_logs_in() {
    use common::smtp::{TestCa, PASSWORD, USER};
    let ca = TestCa::new();
    let server = SmtpServer::start_starttls(&ca);
    let config = |ca_pem: Option<Vec<u8>>, password: &str| EmailConfig {
        name: "email:tls".into(),
        host: "127.0.0.1".into(),
        port: Some(server.port()),
        tls: EmailTls::Starttls,
        credentials: Some((USER.into(), Secret::new(password))),
        ca_pem,
        from: "ctsguard@example.com".into(),
        to: vec!["secops@example.com".into()],
        timeout: Duration::from_secs(5),
    };
    let trusted = Some(ca.ca_pem.clone().into_bytes());
    let n = notification();

    let sink = EmailSink::new(config(trusted.clone(), PASSWORD)).unwrap();
    deliver(&sink, &n, &quick_policy()).await.unwrap();
    assert_eq!(server.logins(), [USER]);
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("subject").as_deref(),
        Some(n.subject.as_str())
    );

    // The certificate is really checked: without the private CA nothing is sent.
    let untrusting = EmailSink::new(config(None, PASSWORD)).unwrap();
    assert!(untrusting.send(&n).await.is_err());

    // A refused login (535) is permanent, and the password shows nowhere.
    let wrong = EmailSink::new(config(trusted, "wrong-password-do-not-leak")).unwrap();
    let err = deliver(&wrong, &n, &quick_policy()).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Permanent { attempts: 1, .. }),
        "{err:?}"
    );
    for text in [
        err.to_string(),
        format!("{err:?}"),
        wrong.describe(),
        format!("{wrong:?}"),
    ] {
        assert!(
            !text.contains("wrong-password-do-not-leak") && !text.contains(PASSWORD),
            "{text}"
        );
    }
    assert_eq!(server.mails().len(), 1);
}

#[derive(serde::Deserialize)]
struct SinksFile {
    sinks: Vec<SinkSpec>,
}

#[tokio::test]
async fn sinks_built_from_toml_deliver_and_never_show_secrets() {
    let rx = HttpReceiver::start_with_fallback(vec![], Reply::Status(401));
    let text = format!(
        r#"
        [[sinks]]
        type = "smn"
        name = "oncall"
        topic_urn = "urn:smn:eu-de:proj0123:oncall"
        endpoint = "{endpoint}"
        retry = {{ attempts = 2, initial_backoff = "1ms", max_backoff = "5ms", budget = "10s" }}

        [[sinks]]
        type = "webhook"
        url_env = "HOOK_URL"
        secret_env = "HOOK_SECRET"
        headers_env = {{ Authorization = "HOOK_AUTH" }}
        "#,
        endpoint = rx.endpoint()
    );
    let specs: SinksFile = toml::from_str(&text).unwrap();
    let env = |k: &str| -> Option<String> {
        match k {
            "CTSGUARD_SMN_ACCESS_KEY" => Some(AK.into()),
            "CTSGUARD_SMN_SECRET_KEY" => Some(SK.into()),
            "HOOK_URL" => Some(format!("{}?token=url-token-do-not-leak", rx.url("/hook"))),
            "HOOK_SECRET" => Some("hook-secret-do-not-leak".into()),
            "HOOK_AUTH" => Some("Bearer hdr-do-not-leak".into()),
            _ => None,
        }
    };
    let mut texts = Vec::new();
    for (i, spec) in specs.sinks.iter().enumerate() {
        let built = build(spec, i, &env).unwrap();
        texts.push(format!("{built:?}"));
        let Built::Human(sink, policy, style) = built else {
            panic!("a human sink")
        };
        texts.push(sink.describe());
        let notes = group(&[alert(0)], style.cap, &style);
        let err = deliver(sink.as_ref(), &notes[0], &policy)
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    assert!(texts[2].contains("smn:oncall"), "{}", texts[2]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    verify_signature(&reqs[0], SK).unwrap();
    assert_eq!(
        reqs[1].header("authorization"),
        Some("Bearer hdr-do-not-leak")
    );
    for t in &texts {
        for secret in [
            SK,
            "url-token-do-not-leak",
            "hook-secret-do-not-leak",
            "hdr-do-not-leak",
        ] {
            assert!(!t.contains(secret), "{secret} leaked in {t}");
        }
    }
}
