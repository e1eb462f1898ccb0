//! A real HTTP server on `127.0.0.1:<free port>` (axum) for the webhook and SMN sink tests:
//! it records every request (method, path, query, headers, raw body, arrival time) and answers
//! from a script, one [`Reply`] per request in order, then 200 (or a set fallback) forever.
//!
//! It runs on its own thread and Tokio runtime, so it keeps answering whatever runtime flavour
//! the test uses. Dropping it stops the server without waiting for slow answers in flight.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status with an empty body.
    Status(u16),
    /// A status with extra headers and a body.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then answer with the status: longer than the client's timeout, it is a hang.
    Slow(Duration, u16),
}

impl Reply {
    /// `status` with `Retry-After: <value>`.
    pub fn retry_after(status: u16, value: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("retry-after".into(), value.into())],
            body: String::new(),
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path as sent (percent-encoding kept).
    pub path: String,
    /// The raw query, without `?` (empty when none).
    pub query: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

struct Inner {
    script: Vec<Reply>,
    fallback: Reply,
    requests: Mutex<Vec<Received>>,
}

pub struct HttpReceiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HttpReceiver {
    /// Answers with `script`, then 200.
    pub fn start(script: Vec<Reply>) -> HttpReceiver {
        Self::start_with_fallback(script, Reply::Status(200))
    }

    /// Answers with `script`, then `fallback` forever.
    pub fn start_with_fallback(script: Vec<Reply>, fallback: Reply) -> HttpReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let inner = Arc::new(Inner {
            script,
            fallback,
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("http-receiver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("serve"),
                        _ = rx => {}
                    }
                });
                // Slow answers still sleeping are abandoned, not awaited.
                rt.shutdown_background();
            })
            .expect("spawn the receiver thread");
        HttpReceiver {
            addr,
            inner,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.requests.lock().expect("request log").clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let n = {
        let mut log = inner.requests.lock().expect("request log");
        log.push(Received {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at,
        });
        log.len() - 1
    };
    let reply = inner
        .script
        .get(n)
        .cloned()
        .unwrap_or_else(|| inner.fallback.clone());
    let status = |s: u16| StatusCode::from_u16(s).expect("valid status");
    match reply {
        Reply::Status(s) => status(s).into_response(),
        Reply::Slow(d, s) => {
            tokio::time::sleep(d).await;
            status(s).into_response()
        }
        Reply::Full {
            status: s,
            headers,
            body,
        } => {
            let mut resp = (status(s), body).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    axum::http::HeaderValue::from_str(&v).expect("header value"),
                );
            }
            resp
        }
    }
}
