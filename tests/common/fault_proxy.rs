//! A fault-injecting HTTP proxy on `127.0.0.1`, in front of a real S3 server (the in-process
//! s3s-fs one). Clients talk to the proxy as if it were the server: requests are forwarded
//! unchanged (the `Host` header too, so SigV4 signatures still check), and at a configurable
//! rate, drawn from a seeded random stream, a request meets one of these faults instead:
//!
//! - `503 SlowDown` or `500 InternalError` with an S3 error body, before forwarding;
//! - a slow answer (a pause before forwarding; drawn independently, at `slow_rate`);
//! - for GETs with a body, after forwarding: the connection reset mid-body, or the body cut
//!   short of its announced `Content-Length` and the connection closed.
//!
//! Faults that happen after forwarding are only injected into GETs, so a conditional PUT (a
//! lease, a checkpoint) that the server applied is never reported to the client as failed:
//! what the tests check is the client's recovery, not how it handles ambiguous writes.
//!
//! [`FaultProxy::set_down`] turns the server "gone for good": every connection is dropped
//! without an answer.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which faults the proxy injects, and how often.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Share of requests that fail (503, 500, reset mid-body, truncated), 0.0..=1.0.
    pub rate: f64,
    /// Share of requests answered slowly (drawn independently of failures).
    pub slow_rate: f64,
    /// Seed of the random stream that picks the faulty requests and their faults.
    pub seed: u64,
    /// The longest pause of a slow answer.
    pub max_delay: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            rate: 0.2,
            slow_rate: 0.1,
            seed: 1,
            max_delay: Duration::from_millis(400),
        }
    }
}

/// What happened to the requests so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub forwarded: u64,
    pub slow_down: u64,
    pub internal_error: u64,
    pub slow: u64,
    pub reset_mid_body: u64,
    pub truncated: u64,
    pub dropped_while_down: u64,
}

impl FaultCounts {
    /// Requests that failed (a slow answer does not fail).
    pub fn failed(&self) -> u64 {
        self.slow_down
            + self.internal_error
            + self.reset_mid_body
            + self.truncated
            + self.dropped_while_down
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    SlowDown,
    InternalError,
    ResetMidBody,
    Truncated,
}

struct State {
    upstream: String,
    config: Mutex<FaultConfig>,
    rng: Mutex<ChaCha8Rng>,
    down: AtomicBool,
    counts: Mutex<FaultCounts>,
    client: reqwest::Client,
    /// Requests forwarded before the server goes down by itself (`None`: never).
    down_after: Mutex<Option<u64>>,
}

impl State {
    fn count(&self, f: impl FnOnce(&mut FaultCounts)) {
        f(&mut self.counts.lock().expect("counts"));
    }

    /// Whether this request fails and how, and whether it is slow (independently).
    fn draw(&self) -> (Option<Fault>, Option<Duration>) {
        let cfg = self.config.lock().expect("config").clone();
        let mut rng = self.rng.lock().expect("rng");
        let fault =
            rng.random_bool(cfg.rate.clamp(0.0, 1.0))
                .then(|| match rng.random_range(0..4) {
                    0 => Fault::SlowDown,
                    1 => Fault::InternalError,
                    2 => Fault::ResetMidBody,
                    _ => Fault::Truncated,
                });
        let slow = rng
            .random_bool(cfg.slow_rate.clamp(0.0, 1.0))
            .then(|| cfg.max_delay.mul_f64(rng.random_range(0.25..=1.0)));
        (fault, slow)
    }
}

/// The proxy, on its own thread and runtime (like `S3Server`), so it keeps answering while a
/// test blocks on a child process. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding to `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
            config: Mutex::new(config),
            down: AtomicBool::new(false),
            counts: Mutex::new(FaultCounts::default()),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("forwarding client"),
            down_after: Mutex::new(None),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || serve(listener, st, rx))
            .expect("spawn the proxy thread");
        FaultProxy {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`: give this to the client instead of the server's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the share of requests that fail from now on.
    pub fn set_rate(&self, rate: f64) {
        self.state.config.lock().expect("config").rate = rate;
    }

    /// Goes down by itself once `n` requests were forwarded.
    pub fn down_after(&self, n: u64) {
        *self.state.down_after.lock().expect("down_after") = Some(n);
    }

    /// `true`: the server is gone, every connection is dropped without an answer.
    /// `false` also forgets [`FaultProxy::down_after`].
    pub fn set_down(&self, down: bool) {
        if !down {
            *self.state.down_after.lock().expect("down_after") = None;
        }
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn counts(&self) -> FaultCounts {
        *self.state.counts.lock().expect("counts")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("proxy runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            if state.down.load(Ordering::SeqCst) {
                state.count(|c| {
                    c.requests += 1;
                    c.dropped_while_down += 1
                });
                drop(socket);
                continue;
            }
            let st = state.clone();
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let st = st.clone();
                async move { handle(st, req).await }
            });
            let conn = http
                .serve_connection(TokioIo::new(socket), svc)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// The S3 error document for a status.
fn s3_error(status: u16, code: &str) -> hyper::Response<FaultBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>"
    );
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(FaultBody::whole(Bytes::from(body)))
        .expect("error response")
}

async fn handle(
    st: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<FaultBody>, std::io::Error> {
    use http_body_util_lite::collect;
    st.count(|c| c.requests += 1);
    if st.down.load(Ordering::SeqCst) {
        st.count(|c| c.dropped_while_down += 1);
        // An error from the service makes hyper close the connection without an answer.
        return Err(std::io::Error::other("the server is down"));
    }
    let (mut fault, slow) = st.draw();
    // Faults after forwarding only for GETs: a write the server applied is never reported
    // to the client as failed.
    if req.method() != hyper::Method::GET
        && matches!(fault, Some(Fault::ResetMidBody | Fault::Truncated))
    {
        fault = Some(Fault::SlowDown);
    }
    if let Some(delay) = slow {
        st.count(|c| c.slow += 1);
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(Fault::SlowDown) => {
            st.count(|c| c.slow_down += 1);
            return Ok(s3_error(503, "SlowDown"));
        }
        Some(Fault::InternalError) => {
            st.count(|c| c.internal_error += 1);
            return Ok(s3_error(500, "InternalError"));
        }
        _ => {}
    }

    let (parts, body) = req.into_parts();
    let body = collect(body).await?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(std::io::Error::other)?;
    let is_get = method == reqwest::Method::GET;
    let mut fwd = st
        .client
        .request(method, format!("{}{path}", st.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive"
        ) {
            continue;
        }
        fwd = fwd.header(name.as_str(), value.as_bytes());
    }
    let resp = fwd.send().await.map_err(std::io::Error::other)?;
    let forwarded = {
        let mut c = st.counts.lock().expect("counts");
        c.forwarded += 1;
        c.forwarded
    };
    if st
        .down_after
        .lock()
        .expect("down_after")
        .is_some_and(|n| forwarded >= n)
    {
        st.down.store(true, Ordering::SeqCst);
    }
    let status = resp.status().as_u16();
    let headers: Vec<(String, Vec<u8>)> = resp
        .headers()
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            )
        })
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let bytes = resp.bytes().await.map_err(std::io::Error::other)?;

    let mut out = hyper::Response::builder().status(status);
    for (n, v) in headers {
        out = out.header(n, v);
    }
    out = out.header("content-length", bytes.len());
    let body = match fault {
        Some(f @ (Fault::ResetMidBody | Fault::Truncated)) if is_get && bytes.len() >= 2 => {
            let cut = bytes.len() / 2;
            if f == Fault::ResetMidBody {
                st.count(|c| c.reset_mid_body += 1);
            } else {
                st.count(|c| c.truncated += 1);
            }
            FaultBody {
                data: Some(bytes.slice(..cut)),
                announced: bytes.len() as u64,
                then_error: f == Fault::ResetMidBody,
            }
        }
        Some(Fault::ResetMidBody | Fault::Truncated) => {
            // A GET with nothing to cut (an error answer, an empty object): a 503 instead.
            st.count(|c| c.slow_down += 1);
            return Ok(s3_error(503, "SlowDown"));
        }
        _ => FaultBody::whole(bytes),
    };
    Ok(out.body(body).expect("response"))
}

/// A response body that may end early (the connection is then closed, since fewer bytes
/// than announced were sent) or fail (the connection is reset).
pub struct FaultBody {
    data: Option<Bytes>,
    announced: u64,
    then_error: bool,
}

impl FaultBody {
    fn whole(b: Bytes) -> Self {
        FaultBody {
            announced: b.len() as u64,
            data: Some(b),
            then_error: false,
        }
    }
}

impl Body for FaultBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        if self.then_error {
            self.then_error = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ))));
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.announced)
    }
}

/// Reading a whole request body without another dependency.
mod http_body_util_lite {
    use super::*;

    pub async fn collect(mut body: Incoming) -> Result<Bytes, std::io::Error> {
        let mut buf = Vec::new();
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => return Ok(Bytes::from(buf)),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
    }
}
