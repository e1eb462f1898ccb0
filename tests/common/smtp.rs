//! A real SMTP server on `127.0.0.1:<free port>` (in-process `mailin-embedded`) that records
//! every mail it accepts. Recipients containing `reject` are refused with 550 (permanent),
//! those containing `busy` with 450 (transient), to exercise the sink's error classification.
//!
//! [`SmtpServer::start_starttls`] offers STARTTLS with a certificate from a test CA made here
//! ([`TestCa`]) and accepts `AUTH PLAIN`/`LOGIN` (after STARTTLS only) for [`USER`] /
//! [`PASSWORD`]; other credentials get 535.
//!
//! The server runs on its own threads for the rest of the test process (mailin-embedded has
//! no shutdown); each test starts its own on a fresh port.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, NO_MAILBOX, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// The login the STARTTLS server accepts.
pub const USER: &str = "ctsguard";
pub const PASSWORD: &str = "smtp-password-do-not-leak";

/// A test CA and a server certificate it issued for `127.0.0.1` and `localhost`.
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ctsguard test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        TestCa {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

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
    logins: Arc<Mutex<Vec<String>>>,
    current: Mail,
}

impl Recorder {
    fn login(&mut self, user: &str, password: &str) -> Response {
        if user == USER && password == PASSWORD {
            self.logins.lock().expect("login log").push(user.to_owned());
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

impl Handler for Recorder {
    fn auth_plain(&mut self, _authz: &str, authn: &str, password: &str) -> Response {
        self.login(authn, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.login(user, password)
    }

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
    logins: Arc<Mutex<Vec<String>>>,
    /// Holds the certificate files of a STARTTLS server.
    _certs: Option<tempfile::TempDir>,
}

impl SmtpServer {
    /// Plain SMTP, no TLS, no authentication.
    pub fn start() -> SmtpServer {
        Self::start_with(None)
    }

    /// STARTTLS with a certificate issued by `ca`, and authentication.
    pub fn start_starttls(ca: &TestCa) -> SmtpServer {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&TestCa>) -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(Recorder {
            mails: mails.clone(),
            logins: logins.clone(),
            current: Mail::default(),
        });
        server
            .with_name("smtp.test")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        let certs = ca.map(|ca| {
            let dir = tempfile::tempdir().expect("certificate directory");
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, &ca.cert_pem).expect("write the certificate");
            std::fs::write(&key_path, &ca.key_pem).expect("write the key");
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.display().to_string(),
                    key_path: key_path.display().to_string(),
                })
                .expect("STARTTLS configuration")
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
            dir
        });
        std::thread::Builder::new()
            .name(format!("smtp-{}", addr.port()))
            .spawn(move || {
                let _ = server.serve();
            })
            .expect("spawn the SMTP server thread");
        SmtpServer {
            addr,
            mails,
            logins,
            _certs: certs,
        }
    }

    /// Users that logged in successfully.
    pub fn logins(&self) -> Vec<String> {
        self.logins.lock().expect("login log").clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mail log").clone()
    }
}
