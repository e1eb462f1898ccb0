//! Configuration of sinks: the `[[sinks]]` tables of the config file ([`SinkSpec`]) and
//! [`build`], which resolves secrets and turns one table into a ready sink.
//!
//! ```toml
//! [[sinks]]
//! type = "stdout"                      # JSON lines to standard output
//!
//! [[sinks]]
//! type = "file"                        # JSON lines appended to a file
//! path = "/var/log/ctsguard/alerts.jsonl"
//!
//! [[sinks]]
//! type = "smn"
//! name = "oncall"                      # checkpoint key "smn:oncall" (default: the topic name)
//! topic_urn = "urn:smn:eu-de:0123456789abcdef:oncall"   # or topic + region + project_id
//! cloud = "otc"                        # huaweicloud (default) | otc; or endpoint = "https://..."
//! access_key_env = "OTC_AK"            # or token_env / token_file / access_key_file ...
//! secret_key_file = "/var/run/secrets/smn/sk"
//! subject = "default"                  # default | legacy | template
//! template = "default"                 # message: default | legacy | template
//! max_notifications = 20               # per run; the last one summarises the rest
//! timeout = "10s"                      # per attempt
//! retry = { attempts = 5, initial_backoff = "500ms", max_backoff = "30s", budget = "2m" }
//!
//! [[sinks]]
//! type = "webhook"
//! url_env = "SLACK_WEBHOOK_URL"        # or url = "...", url_file = "..."
//! format = "slack"                     # json (default) | slack | teams | discord | dingtalk | wecom | feishu
//! secret_env = "HOOK_SECRET"           # signs the body: X-Ctsguard-Signature: sha256=<hex>
//! headers = { "X-Team" = "secops" }
//! headers_env = { "Authorization" = "HOOK_AUTH" }   # header value from an environment variable
//!
//! [[sinks]]
//! type = "email"
//! host = "smtp.example.com"
//! tls = "starttls"                     # starttls (default, 587) | tls (465) | none (25, local relay)
//! username = "ctsguard"
//! password_file = "/var/run/secrets/smtp/password"
//! ca_file = "/etc/ssl/private-ca.pem"  # optional: trust a private CA besides the system's
//! from = "ctsguard <ctsguard@example.com>"
//! to = ["secops@example.com"]
//! ```
//!
//! Secrets are never written inline: each is read from `<field>_env = "VAR"` or
//! `<field>_file = "/path"` (trailing newline dropped), else from a documented default
//! variable: [`ENV_SMN_TOKEN`], [`ENV_SMN_ACCESS_KEY`], [`ENV_SMN_SECRET_KEY`],
//! [`ENV_SMTP_PASSWORD`], [`ENV_WEBHOOK_SECRET`]. Errors name the setting
//! (`sinks[2].topic_urn: ...`) and never carry a secret's value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::email::{EmailConfig, EmailSink, EmailTls};
use super::message::{MessageStyle, DEFAULT_CAP};
use super::retry::RetryPolicy;
pub use super::sink::Secret;
use super::sink::{Sink, SinkConfigError};
use super::smn::{endpoint_for, Cloud, SmnAuth, SmnConfig, SmnSink, TopicUrn};
use super::webhook::{WebhookConfig, WebhookFormat, WebhookSink, SIGNATURE_HEADER};
use super::AlertDest;

pub const ENV_SMN_TOKEN: &str = "CTSGUARD_SMN_TOKEN";
pub const ENV_SMN_ACCESS_KEY: &str = "CTSGUARD_SMN_ACCESS_KEY";
pub const ENV_SMN_SECRET_KEY: &str = "CTSGUARD_SMN_SECRET_KEY";
pub const ENV_SMTP_PASSWORD: &str = "CTSGUARD_SMTP_PASSWORD";
pub const ENV_WEBHOOK_SECRET: &str = "CTSGUARD_WEBHOOK_SECRET";

/// One `[[sinks]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkSpec {
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to a file.
    File {
        path: PathBuf,
    },
    Smn(SmnSpec),
    Webhook(WebhookSpec),
    Email(EmailSpec),
}

/// The `retry` sub-table; unset fields keep [`RetryPolicy::default`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    pub attempts: Option<u32>,
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub budget: Option<String>,
}

/// A list written as `"a,b"` or `["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrList {
    One(String),
    Many(Vec<String>),
}

impl StrList {
    pub fn items(&self) -> Vec<String> {
        let v: Vec<&str> = match self {
            StrList::One(s) => s.split(',').collect(),
            StrList::Many(v) => v.iter().map(String::as_str).collect(),
        };
        v.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmnSpec {
    pub name: Option<String>,
    pub topic_urn: Option<String>,
    /// Topic name, with `region` and `project_id`, instead of `topic_urn`.
    pub topic: Option<String>,
    pub region: Option<String>,
    pub project_id: Option<String>,
    pub cloud: Option<Cloud>,
    pub endpoint: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub access_key_env: Option<String>,
    pub access_key_file: Option<PathBuf>,
    pub secret_key_env: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    /// Send `X-Project-Id`.
    #[serde(default)]
    pub project_header: bool,
    pub subject: Option<String>,
    pub template: Option<String>,
    pub max_notifications: Option<usize>,
    pub timeout: Option<String>,
    pub retry: Option<RetrySpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub name: Option<String>,
    /// Inline URL; a [`Secret`] because chat webhook URLs embed tokens.
    pub url: Option<Secret>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    #[serde(default)]
    pub format: WebhookFormat,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub signature_header: Option<String>,
    /// Inline header values (kept as secrets: they may carry tokens).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Header name → environment variable holding its value.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    pub subject: Option<String>,
    pub template: Option<String>,
    pub max_notifications: Option<usize>,
    pub timeout: Option<String>,
    pub retry: Option<RetrySpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: EmailTls,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Extra trusted root certificates (PEM) for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Option<StrList>,
    pub subject: Option<String>,
    pub template: Option<String>,
    pub max_notifications: Option<usize>,
    pub timeout: Option<String>,
    pub retry: Option<RetrySpec>,
}

/// A setting of a sink is wrong. Never carries a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SpecError {
    /// e.g. `sinks[2].topic_urn`
    pub setting: String,
    pub reason: String,
}

/// A sink ready to use.
pub enum Built {
    /// The JSON-lines stream (standard output or a file), written by [`super::JsonLines`].
    JsonLines(AlertDest),
    /// A notification sink with how hard to retry and how its texts look.
    Human(Box<dyn Sink>, RetryPolicy, MessageStyle),
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Built::JsonLines(d) => f.debug_tuple("JsonLines").field(d).finish(),
            Built::Human(s, p, m) => f
                .debug_tuple("Human")
                .field(&s.describe())
                .field(p)
                .field(m)
                .finish(),
        }
    }
}

impl Built {
    /// The checkpoint key of a notification sink (`None` for the JSON-lines stream).
    pub fn name(&self) -> Option<&str> {
        match self {
            Built::JsonLines(_) => None,
            Built::Human(s, _, _) => Some(s.name()),
        }
    }
}

/// Looks up an environment variable (injected, so tests need not touch the process env).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

struct Ctx<'a> {
    index: usize,
    env: EnvLookup<'a>,
}

impl Ctx<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> SpecError {
        SpecError {
            setting: format!("sinks[{}].{field}", self.index),
            reason: reason.into(),
        }
    }

    fn config_err(&self, e: SinkConfigError) -> SpecError {
        self.err(&e.setting, e.reason)
    }

    fn duration(&self, field: &str, v: &Option<String>) -> Result<Option<Duration>, SpecError> {
        v.as_deref()
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| {
                    self.err(
                        field,
                        format!("{s:?}: {e} (e.g. \"500ms\", \"10s\", \"2m\")"),
                    )
                })
            })
            .transpose()
    }

    fn required<'s>(&self, field: &str, v: &'s Option<String>) -> Result<&'s str, SpecError> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.err(field, "required")),
        }
    }

    /// A secret from `<field>_env`, `<field>_file`, or the default variable.
    /// `Ok(None)` when none is given. `explicit` tells whether it came from the sink's own
    /// settings rather than the default variable.
    fn secret(
        &self,
        field: &str,
        env_var: &Option<String>,
        file: &Option<PathBuf>,
        default_env: Option<&str>,
    ) -> Result<Option<(Secret, bool)>, SpecError> {
        match (env_var, file) {
            (Some(_), Some(_)) => {
                Err(self.err(field, format!("give {field}_env or {field}_file, not both")))
            }
            (Some(var), None) => match (self.env)(var) {
                Some(v) if !v.is_empty() => Ok(Some((Secret::new(v), true))),
                _ => Err(self.err(
                    &format!("{field}_env"),
                    format!("environment variable {var} is not set or empty"),
                )),
            },
            (None, Some(path)) => Ok(Some((self.read_secret_file(field, path)?, true))),
            (None, None) => Ok(default_env
                .and_then(|var| (self.env)(var))
                .filter(|v| !v.is_empty())
                .map(|v| (Secret::new(v), false))),
        }
    }

    fn read_secret_file(&self, field: &str, path: &Path) -> Result<Secret, SpecError> {
        let setting = format!("{field}_file");
        // The error names the file and the OS reason only, never content.
        let text = std::fs::read_to_string(path)
            .map_err(|e| self.err(&setting, format!("cannot read {}: {e}", path.display())))?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(self.err(&setting, format!("{} is empty", path.display())));
        }
        crate::config::warn_if_readable_by_others(path, &format!("{setting} holds a secret"));
        Ok(Secret::new(value))
    }

    fn style(
        &self,
        subject: &Option<String>,
        template: &Option<String>,
        cap: Option<usize>,
    ) -> Result<MessageStyle, SpecError> {
        let subject_text = subject.as_deref().unwrap_or("default");
        let message_text = template.as_deref().unwrap_or("default");
        let mut style = MessageStyle::parse(subject_text, "default", cap.unwrap_or(DEFAULT_CAP))
            .map_err(|e| self.err("subject", e.to_string()))?;
        style.message = super::message::TextStyle::parse(message_text)
            .map_err(|e| self.err("template", e.to_string()))?;
        Ok(style)
    }

    fn policy(
        &self,
        timeout: &Option<String>,
        retry: &Option<RetrySpec>,
    ) -> Result<RetryPolicy, SpecError> {
        let mut p = RetryPolicy::default();
        if let Some(t) = self.duration("timeout", timeout)? {
            p.timeout = t;
        }
        if let Some(r) = retry {
            if let Some(a) = r.attempts {
                if a == 0 {
                    return Err(self.err("retry.attempts", "must be at least 1"));
                }
                p.attempts = a;
            }
            if let Some(d) = self.duration("retry.initial_backoff", &r.initial_backoff)? {
                p.initial_backoff = d;
            }
            if let Some(d) = self.duration("retry.max_backoff", &r.max_backoff)? {
                p.max_backoff = d;
            }
            if let Some(d) = self.duration("retry.budget", &r.budget)? {
                p.budget = d;
            }
        }
        if p.timeout.is_zero() {
            return Err(self.err("timeout", "must be more than zero"));
        }
        if p.budget.is_zero() {
            return Err(self.err("retry.budget", "must be more than zero"));
        }
        Ok(p)
    }
}

/// `<kind>:<name>`: a stable checkpoint key. Set `name` explicitly to keep it stable when the
/// topic, URL or recipients change.
fn sink_name(kind: &str, explicit: &Option<String>, derived: &str) -> String {
    match explicit.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.starts_with(&format!("{kind}:")) => n.to_owned(),
        Some(n) => format!("{kind}:{n}"),
        None => format!("{kind}:{derived}"),
    }
}

/// Builds the sink of the `index`-th `[[sinks]]` table.
pub fn build(spec: &SinkSpec, index: usize, env: EnvLookup<'_>) -> Result<Built, SpecError> {
    let cx = Ctx { index, env };
    match spec {
        SinkSpec::Stdout => Ok(Built::JsonLines(AlertDest::Stdout)),
        SinkSpec::File { path } => {
            if path.as_os_str().is_empty() {
                return Err(cx.err("path", "empty"));
            }
            Ok(Built::JsonLines(AlertDest::File(path.clone())))
        }
        SinkSpec::Smn(s) => build_smn(&cx, s),
        SinkSpec::Webhook(s) => build_webhook(&cx, s),
        SinkSpec::Email(s) => build_email(&cx, s),
    }
}

/// Builds every sink, refusing two notification sinks with one name (they would share a
/// checkpoint key).
pub fn build_all(specs: &[SinkSpec], env: EnvLookup<'_>) -> Result<Vec<Built>, SpecError> {
    let mut out: Vec<Built> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let built = build(spec, i, env)?;
        if let Some(name) = built.name() {
            if out.iter().any(|b| b.name() == Some(name)) {
                return Err(SpecError {
                    setting: format!("sinks[{i}].name"),
                    reason: format!(
                        "{name:?} is already the name of another sink; give each a distinct `name`"
                    ),
                });
            }
        }
        out.push(built);
    }
    Ok(out)
}

fn build_smn(cx: &Ctx<'_>, s: &SmnSpec) -> Result<Built, SpecError> {
    let topic = match (&s.topic_urn, &s.topic) {
        (Some(_), Some(_)) => return Err(cx.err("topic", "give topic_urn or topic, not both")),
        (Some(urn), None) => {
            let t = TopicUrn::parse(urn.trim()).map_err(|e| cx.err("topic_urn", e))?;
            for (field, given, in_urn) in [
                ("region", &s.region, &t.region),
                ("project_id", &s.project_id, &t.project_id),
            ] {
                if let Some(v) = given {
                    if v != in_urn {
                        return Err(cx.err(
                            field,
                            format!("{v:?} differs from the topic URN's {in_urn:?}"),
                        ));
                    }
                }
            }
            t
        }
        (None, Some(name)) => TopicUrn {
            name: name.trim().to_owned(),
            region: cx.required("region", &s.region)?.to_owned(),
            project_id: cx.required("project_id", &s.project_id)?.to_owned(),
        },
        (None, None) => {
            return Err(cx.err(
                "topic_urn",
                "required (or topic with region and project_id)",
            ))
        }
    };
    let endpoint = match &s.endpoint {
        Some(e) => e.trim().to_owned(),
        None => endpoint_for(s.cloud.unwrap_or(Cloud::Huaweicloud), &topic.region),
    };
    let token = cx.secret("token", &s.token_env, &s.token_file, Some(ENV_SMN_TOKEN))?;
    let ak = cx.secret(
        "access_key",
        &s.access_key_env,
        &s.access_key_file,
        Some(ENV_SMN_ACCESS_KEY),
    )?;
    let sk = cx.secret(
        "secret_key",
        &s.secret_key_env,
        &s.secret_key_file,
        Some(ENV_SMN_SECRET_KEY),
    )?;
    let explicit_token = matches!(token, Some((_, true)));
    let explicit_aksk = matches!(ak, Some((_, true))) || matches!(sk, Some((_, true)));
    if explicit_token && explicit_aksk {
        return Err(cx.err(
            "token_env",
            "give either a token or an access key and secret key, not both",
        ));
    }
    let aksk = |ak: Option<(Secret, bool)>, sk: Option<(Secret, bool)>| {
        match (ak, sk) {
        (Some((a, _)), Some((s, _))) => Ok(SmnAuth::AkSk {
            access_key: a,
            secret_key: s,
        }),
        (Some(_), None) => Err(cx.err(
            "secret_key_env",
            format!("an access key needs its secret key (secret_key_env, secret_key_file or {ENV_SMN_SECRET_KEY})"),
        )),
        (None, Some(_)) => Err(cx.err(
            "access_key_env",
            format!("a secret key needs its access key (access_key_env, access_key_file or {ENV_SMN_ACCESS_KEY})"),
        )),
        (None, None) => Err(cx.err(
            "token_env",
            format!("no SMN credentials: set token_env/token_file or {ENV_SMN_TOKEN}, or access_key_*/secret_key_* or {ENV_SMN_ACCESS_KEY}/{ENV_SMN_SECRET_KEY}"),
        )),
    }
    };
    // Explicit settings win over default variables; among defaults a token wins.
    let auth = if explicit_aksk {
        aksk(ak, sk)?
    } else if let Some((t, _)) = token {
        SmnAuth::Token(t)
    } else {
        aksk(ak, sk)?
    };
    let policy = cx.policy(&s.timeout, &s.retry)?;
    let style = cx.style(&s.subject, &s.template, s.max_notifications)?;
    let sink = SmnSink::new(SmnConfig {
        name: sink_name("smn", &s.name, &topic.name),
        endpoint,
        project_id: topic.project_id.clone(),
        topic,
        auth,
        send_project_header: s.project_header,
        timeout: policy.timeout,
    })
    .map_err(|e| cx.config_err(e))?;
    Ok(Built::Human(Box::new(sink), policy, style))
}

fn build_webhook(cx: &Ctx<'_>, s: &WebhookSpec) -> Result<Built, SpecError> {
    let url = match (&s.url, &s.url_env, &s.url_file) {
        (Some(u), None, None) => Secret::new(u.expose().trim()),
        (None, Some(_), None) | (None, None, Some(_)) => cx
            .secret("url", &s.url_env, &s.url_file, None)?
            .map(|(u, _)| u)
            .ok_or_else(|| cx.err("url", "required"))?,
        (None, None, None) => return Err(cx.err("url", "required (url, url_env or url_file)")),
        _ => return Err(cx.err("url", "give one of url, url_env, url_file")),
    };
    let secret = cx
        .secret(
            "secret",
            &s.secret_env,
            &s.secret_file,
            Some(ENV_WEBHOOK_SECRET),
        )?
        .map(|(s, _)| s);
    let mut headers: Vec<(String, Secret)> = s
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (header, var) in &s.headers_env {
        match (cx.env)(var) {
            Some(v) if !v.is_empty() => headers.push((header.clone(), Secret::new(v))),
            _ => {
                return Err(cx.err(
                    &format!("headers_env.{header}"),
                    format!("environment variable {var} is not set or empty"),
                ))
            }
        }
    }
    let policy = cx.policy(&s.timeout, &s.retry)?;
    let style = cx.style(&s.subject, &s.template, s.max_notifications)?;
    let host = reqwest::Url::parse(url.expose())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let sink = WebhookSink::new(WebhookConfig {
        name: sink_name("webhook", &s.name, &host),
        url,
        format: s.format,
        secret,
        signature_header: s
            .signature_header
            .clone()
            .unwrap_or_else(|| SIGNATURE_HEADER.to_owned()),
        headers,
        timeout: policy.timeout,
    })
    .map_err(|e| cx.config_err(e))?;
    Ok(Built::Human(Box::new(sink), policy, style))
}

fn build_email(cx: &Ctx<'_>, s: &EmailSpec) -> Result<Built, SpecError> {
    let host = cx.required("host", &s.host)?.to_owned();
    let from = cx.required("from", &s.from)?.to_owned();
    let to = s.to.as_ref().map(StrList::items).unwrap_or_default();
    let Some(first_to) = to.first().cloned() else {
        return Err(cx.err("to", "required: at least one recipient"));
    };
    let username = s
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    // The default variable only applies when a login is configured.
    let password = cx.secret(
        "password",
        &s.password_env,
        &s.password_file,
        username.map(|_| ENV_SMTP_PASSWORD),
    )?;
    let credentials = match (username, password) {
        (Some(u), Some((p, _))) => Some((u.to_owned(), p)),
        (Some(_), None) => {
            return Err(cx.err(
                "password_env",
                format!("username is set but no password (password_env, password_file or {ENV_SMTP_PASSWORD})"),
            ))
        }
        (None, Some(_)) => return Err(cx.err("username", "a password is given but no username")),
        (None, None) => None,
    };
    let ca_pem = s
        .ca_file
        .as_ref()
        .map(|p| {
            std::fs::read(p)
                .map_err(|e| cx.err("ca_file", format!("cannot read {}: {e}", p.display())))
        })
        .transpose()?;
    let policy = cx.policy(&s.timeout, &s.retry)?;
    let style = cx.style(&s.subject, &s.template, s.max_notifications)?;
    let sink = EmailSink::new(EmailConfig {
        name: sink_name("email", &s.name, &first_to),
        host,
        port: s.port,
        tls: s.tls,
        credentials,
        ca_pem,
        from,
        to,
        timeout: policy.timeout,
    })
    .map_err(|e| cx.config_err(e))?;
    Ok(Built::Human(Box::new(sink), policy, style))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        sinks: Vec<SinkSpec>,
    }

    fn specs(toml_text: &str) -> Vec<SinkSpec> {
        toml::from_str::<File>(toml_text).unwrap().sinks
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn every_type_parses_and_builds() {
        let s = specs(
            r#"
            [[sinks]]
            type = "stdout"
            [[sinks]]
            type = "file"
            path = "/tmp/a.jsonl"
            [[sinks]]
            type = "smn"
            topic_urn = "urn:smn:eu-de:p1:oncall"
            cloud = "otc"
            access_key_env = "AK"
            secret_key_env = "SK"
            max_notifications = 3
            timeout = "2s"
            retry = { attempts = 2, initial_backoff = "1ms", max_backoff = "5ms", budget = "1s" }
            [[sinks]]
            type = "webhook"
            name = "chat"
            url = "https://hooks.example.com/T/B/X"
            format = "slack"
            headers = { "X-Team" = "secops" }
            [[sinks]]
            type = "email"
            host = "smtp.example.com"
            username = "u"
            from = "ctsguard <c@example.com>"
            to = "a@example.com, b@example.com"
            subject = "legacy"
            template = "legacy"
            "#,
        );
        let e = env(&[
            ("AK", "ak-value"),
            ("SK", "sk-value"),
            (ENV_SMTP_PASSWORD, "pw-value"),
        ]);
        let built = build_all(&s, &e).unwrap();
        assert!(matches!(built[0], Built::JsonLines(AlertDest::Stdout)));
        assert!(
            matches!(&built[1], Built::JsonLines(AlertDest::File(p)) if p == Path::new("/tmp/a.jsonl"))
        );
        let Built::Human(smn, policy, style) = &built[2] else {
            panic!()
        };
        assert_eq!(smn.name(), "smn:oncall");
        assert!(
            smn.describe()
                .contains("https://smn.eu-de.otc.t-systems.com"),
            "{}",
            smn.describe()
        );
        assert_eq!(policy.attempts, 2);
        assert_eq!(policy.timeout, Duration::from_secs(2));
        assert_eq!(policy.initial_backoff, Duration::from_millis(1));
        assert_eq!(style.cap, 3);
        assert_eq!(built[3].name(), Some("webhook:chat"));
        assert!(!built[3].name().unwrap().contains("T/B/X"));
        let Built::Human(mail, _, style) = &built[4] else {
            panic!()
        };
        assert_eq!(mail.name(), "email:a@example.com");
        assert_eq!(style.subject, super::super::message::TextStyle::Legacy);
        let all = format!("{built:?} {s:?}");
        for secret in ["ak-value", "sk-value", "pw-value", "T/B/X"] {
            assert!(!all.contains(secret), "{secret} leaked in {all}");
        }
    }

    #[test]
    fn errors_name_the_setting_and_hide_secrets() {
        let e = env(&[("TOKEN", "tok-secret")]);
        let cases: &[(&str, &str)] = &[
            (r#"type = "smn""#, "sinks[0].topic_urn: required"),
            (
                r#"type = "smn"
                topic_urn = "oncall""#,
                "sinks[0].topic_urn: \"oncall\" is not a topic URN",
            ),
            (
                r#"type = "smn"
                topic = "oncall"
                region = "eu-de""#,
                "sinks[0].project_id: required",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t""#,
                "sinks[0].token_env: no SMN credentials",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_env = "NOPE""#,
                "sinks[0].token_env: environment variable NOPE is not set",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_env = "TOKEN"
                access_key_env = "TOKEN"
                secret_key_env = "TOKEN""#,
                "not both",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_env = "TOKEN"
                token_file = "/x""#,
                "sinks[0].token: give token_env or token_file, not both",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_file = "/nonexistent/tok""#,
                "sinks[0].token_file: cannot read /nonexistent/tok",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_env = "TOKEN"
                timeout = "soon""#,
                "sinks[0].timeout: \"soon\"",
            ),
            (
                r#"type = "smn"
                topic_urn = "urn:smn:eu-de:p:t"
                token_env = "TOKEN"
                template = "{usr}""#,
                "sinks[0].template: ",
            ),
            (r#"type = "webhook""#, "sinks[0].url: required"),
            (
                r#"type = "webhook"
                url = "not a url""#,
                "sinks[0].url: not a URL",
            ),
            (
                r#"type = "email"
                host = "h"
                from = "a@b.c"
                to = []"#,
                "sinks[0].to: required",
            ),
            (
                r#"type = "email"
                host = "h"
                from = "not an address"
                to = "a@b.c""#,
                "sinks[0].from: ",
            ),
            (
                r#"type = "email"
                host = "h"
                from = "a@b.c"
                to = "a@b.c"
                username = "u""#,
                "sinks[0].password_env: username is set but no password",
            ),
        ];
        for (table, want) in cases {
            let s = specs(&format!("[[sinks]]\n{table}"));
            let err = build(&s[0], 0, &e).unwrap_err().to_string();
            assert!(err.contains(want), "{table}\n => {err}\n wanted {want}");
            assert!(!err.contains("tok-secret"), "{err}");
        }
    }

    #[test]
    fn the_documented_example_parses_and_builds() {
        let src = include_str!("spec.rs");
        let example: String = src
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .skip_while(|l| l.trim() != "```toml")
            .skip(1)
            .take_while(|l| l.trim() != "```")
            .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
            .collect();
        let s = specs(&example);
        assert_eq!(s.len(), 5);
        let e = env(&[
            ("OTC_AK", "ak"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/X",
            ),
            ("HOOK_SECRET", "s"),
            ("HOOK_AUTH", "Bearer x"),
        ]);
        // The example's files do not exist here: expect exactly those errors.
        let err = build(&s[2], 2, &e).unwrap_err();
        assert_eq!(err.setting, "sinks[2].secret_key_file", "{err}");
        assert!(build(&s[3], 3, &e).is_ok());
        let err = build(&s[4], 4, &e).unwrap_err();
        assert_eq!(err.setting, "sinks[4].password_file", "{err}");
    }

    #[test]
    fn inline_secrets_and_unknown_fields_are_rejected_by_the_parser() {
        for table in [
            "type = \"smn\"\ntoken = \"x\"",
            "type = \"email\"\npassword = \"x\"",
            "type = \"webhook\"\nsecret = \"x\"",
            "type = \"carrier-pigeon\"",
        ] {
            assert!(
                toml::from_str::<File>(&format!("[[sinks]]\n{table}")).is_err(),
                "{table}"
            );
        }
    }

    #[test]
    fn secret_files_and_default_variables() {
        let dir = tempfile::tempdir().unwrap();
        let sk = dir.path().join("sk");
        std::fs::write(&sk, "sk-from-file\n").unwrap();
        let s = specs(&format!(
            "[[sinks]]\ntype = \"smn\"\ntopic = \"t\"\nregion = \"eu-de\"\nproject_id = \"p\"\nsecret_key_file = {:?}\n",
            sk.display().to_string()
        ));
        let e = env(&[(ENV_SMN_ACCESS_KEY, "ak"), (ENV_SMN_TOKEN, "tok")]);
        // An explicit secret key selects AK/SK over the default token variable.
        let Built::Human(sink, _, _) = build(&s[0], 0, &e).unwrap() else {
            panic!()
        };
        assert!(sink.describe().contains("AK/SK"), "{}", sink.describe());
        assert!(sink.describe().contains("urn:smn:eu-de:p:t"));
        let s = specs("[[sinks]]\ntype = \"smn\"\ntopic_urn = \"urn:smn:eu-de:p:t\"\n");
        let Built::Human(sink, _, _) = build(&s[0], 0, &e).unwrap() else {
            panic!()
        };
        assert!(sink.describe().contains("token"), "{}", sink.describe());
        // Two sinks with one name would share a checkpoint key.
        let two = specs(
            "[[sinks]]\ntype = \"smn\"\ntopic_urn = \"urn:smn:eu-de:p:t\"\n[[sinks]]\ntype = \"smn\"\ntopic_urn = \"urn:smn:eu-de:p2:t\"\n",
        );
        let err = build_all(&two, &e).unwrap_err();
        assert_eq!(err.setting, "sinks[1].name");
    }
}
