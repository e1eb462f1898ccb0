//! A real SMTP server on `127.0.0.1:<free port>` (in-process `mailin-embedded`) that records
//! every mail it accepts. Recipients containing `reject` are refused with 550 (permanent),
//! those containing `busy` with 450 (transient), to exercise the sink's error classification.
//!
//! The server runs on its own threads for the rest of the test process (mailin-embedded has
//! no shutdown); each test starts its own on a fresh port.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};

/// One accepted mail.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Envelope sender and recipients (`MAIL FROM`, `RCPT TO`).
    pub from: String,
    pub to: Vec<String>,
    /// The message as transmitted (headers and body).
    pub data: String,
}

impl Mail {
    /// A header's value, folded lines joined (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The body after the header block.
    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Recorder {
    mails: Arc<Mutex<Vec<Mail>>>,
    current: Mail,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        if to.contains("reject") {
            NO_MAILBOX
        } else if to.contains("busy") {
            Response::custom(450, "Mailbox busy, try again later".to_owned())
        } else {
            OK
        }
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.current = Mail::default();
        OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Mail {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        };
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = std::mem::take(&mut self.current);
        self.mails.lock().expect("mail log").push(mail);
        OK
    }
}

pub struct SmtpServer {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(Recorder {
            mails: mails.clone(),
            current: Mail::default(),
        });
        server
            .with_name("smtp.test")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name(format!("smtp-{}", addr.port()))
            .spawn(move || {
                let _ = server.serve();
            })
            .expect("spawn the SMTP server thread");
        SmtpServer { addr, mails }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mail log").clone()
    }
}
