//! A stand-in for Application Insights ingestion: HTTPS on loopback with a certificate from a CA
//! made at test time (given to the handler through `SSL_CERT_FILE`, as a user would add a
//! corporate CA), receiving the exporter's real gzip'd envelope batches on `POST /v2/track`.
//! It can also fail the ways ingestion fails: an error status, a partial accept, or hanging.

use std::convert::Infallible;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::{TempDir, wait_for};

pub const INSTRUMENTATION_KEY: &str = "11111111-2222-3333-4444-555555555555";

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200, everything accepted.
    Accept,
    /// This status for every upload, nothing kept.
    Status(u16),
    /// 206 once, keeping all but the first item and asking for it again (retryable 500); then Accept.
    PartialOnce,
    /// Never answers.
    Hang,
    /// 200 without reading the items: for benchmarks, so the stand-in's own parsing does not
    /// compete with the handler for CPU.
    AcceptUnread,
}

pub struct Ingestion {
    port: u16,
    dir: TempDir,
    envelopes: Arc<Mutex<Vec<Value>>>,
    uploads: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Ingestion {
    pub async fn start(behaviour: Behaviour) -> Ingestion {
        let dir = TempDir::new("ingestion");
        let (server_config, ca_pem) = test_pki();
        std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let envelopes: Arc<Mutex<Vec<Value>>> = Default::default();
        let uploads: Arc<AtomicUsize> = Default::default();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let (e, u, b) = (
            Arc::clone(&envelopes),
            Arc::clone(&uploads),
            Arc::clone(&behaviour),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, e, u, b) = (
                    acceptor.clone(),
                    Arc::clone(&e),
                    Arc::clone(&u),
                    Arc::clone(&b),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        track(request, Arc::clone(&e), Arc::clone(&u), Arc::clone(&b))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ingestion {
            port,
            dir,
            envelopes,
            uploads,
            behaviour,
            task,
        }
    }

    /// The connection string a user would copy from the portal, pointing here.
    pub fn connection_string(&self) -> String {
        connection_string_for(self.port)
    }

    /// The test CA's certificate, for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Upload requests received, accepted or not.
    pub fn uploads(&self) -> usize {
        self.uploads.load(Ordering::SeqCst)
    }

    /// Every envelope accepted so far.
    pub fn envelopes(&self) -> Vec<Value> {
        self.envelopes.lock().unwrap().clone()
    }

    /// Accepted request envelopes (`requests` rows) whose `baseData` satisfies `filter`.
    pub fn requests(&self) -> Vec<Value> {
        self.of_type("Microsoft.ApplicationInsights.Request")
    }

    /// Accepted event envelopes (`customEvents` rows).
    pub fn events(&self) -> Vec<Value> {
        self.of_type("Microsoft.ApplicationInsights.Event")
    }

    fn of_type(&self, name: &str) -> Vec<Value> {
        self.envelopes()
            .into_iter()
            .filter(|envelope| envelope["name"] == name)
            .collect()
    }

    /// Waits until `count` request envelopes have arrived.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<Value> {
        wait_for(timeout, async || {
            let requests = self.requests();
            (requests.len() >= count).then_some(requests)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "expected {count} request envelopes, got {:#?}",
                self.requests()
            )
        })
    }
}

impl Drop for Ingestion {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn connection_string_for(port: u16) -> String {
    format!("InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint=https://127.0.0.1:{port}/")
}

async fn track(
    request: Request<Incoming>,
    envelopes: Arc<Mutex<Vec<Value>>>,
    uploads: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if *behaviour.lock().unwrap() == Behaviour::AcceptUnread {
        let _ = request.into_body().collect().await;
        uploads.fetch_add(1, Ordering::SeqCst);
        return Ok(Response::new(Full::new(Bytes::from_static(b"{}"))));
    }
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    uploads.fetch_add(1, Ordering::SeqCst);
    let answer = |status: u16, body: Value| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap())
    };
    if path != "/v2/track" {
        return answer(404, json!({"error": "not /v2/track"}));
    }
    let mut text = Vec::new();
    if gzip {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .unwrap();
    } else {
        text = body.to_vec();
    }
    let items: Vec<Value> = serde_json::from_slice(&text).expect("the exporter sends a JSON array");
    let current = *behaviour.lock().unwrap();
    match current {
        Behaviour::Accept => {
            let n = items.len();
            envelopes.lock().unwrap().extend(items);
            answer(
                200,
                json!({"itemsReceived": n, "itemsAccepted": n, "errors": []}),
            )
        }
        Behaviour::Status(status) => answer(
            status,
            json!({"itemsReceived": items.len(), "itemsAccepted": 0, "errors": []}),
        ),
        Behaviour::PartialOnce => {
            *behaviour.lock().unwrap() = Behaviour::Accept;
            let n = items.len();
            envelopes.lock().unwrap().extend(items.into_iter().skip(1));
            answer(
                206,
                json!({"itemsReceived": n, "itemsAccepted": n - 1,
                "errors": [{"index": 0, "statusCode": 500, "message": "try again"}]}),
            )
        }
        Behaviour::AcceptUnread => unreachable!("answered above"),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            answer(200, json!({}))
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn test_pki() -> (rustls::ServerConfig, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ISP Monitor test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    (config, ca.pem())
}
