//! End-to-end tests of TLS and mutual TLS on the API (`--api-tls-cert`, `--api-tls-key`,
//! `--api-tls-client-ca`) against the real `wasilock` binary, with real clients: curl over
//! HTTPS (HTTP/1.1 and HTTP/2, TLS 1.3 and 1.2), Dapr's Python SDK (gRPC over TLS, its health
//! probe over HTTPS), Dapr's JavaScript SDK over HTTPS, and Rust clients (rustls with hyper
//! and tonic). Plain clients get no answer; start-up errors name the flag and the file;
//! client certificates select tenants and a token beside one must agree; certificates
//! rotate under load without a failed request. Certificates come from `openssl`
//! (`wasilock_testkit::certificates`).

use wasilock_testkit as common;

use bytes::Bytes;
use common::certificates::{self, Authority, Issued, Validity};
use common::{Host, Options, component, resources, tenant};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::future::Future;
use std::io::{Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};
use wasilock::api::grpc::proto::dapr_client::DaprClient;
use wasilock::api::grpc::proto::{TryLockRequest, UnlockRequest};
use wasilock_testkit::sdk_clients;

const LOCK: &str = r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":60}"#;
const UNLOCK: &str = r#"{"resourceId":"r","lockOwner":"o"}"#;

/// An authority and a server certificate for `127.0.0.1` and `localhost`, in a directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Authority,
    server: Issued,
}

impl Pki {
    /// `None` (after saying so) when `openssl` is missing outside CI.
    fn new() -> Option<Pki> {
        if !certificates::openssl_available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory for certificates");
        let ca = Authority::create(dir.path(), "ca");
        let server = ca.issue("server", &["IP:127.0.0.1", "DNS:localhost"], "serverAuth");
        Some(Pki { dir, ca, server })
    }

    /// The flags serving `server`'s certificate.
    fn flags(&self) -> Vec<String> {
        tls_flags(&self.server)
    }
}

fn tls_flags(server: &Issued) -> Vec<String> {
    vec![
        "--api-tls-cert".into(),
        server.cert.display().to_string(),
        "--api-tls-key".into(),
        server.key.display().to_string(),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A client configuration trusting `ca`, presenting `identity` (if any), offering `alpn`.
fn client_config(
    ca: &Path,
    identity: Option<&Issued>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_file_iter(&identity.cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection to `address` (`127.0.0.1:PORT`).
async fn connect(address: &str, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The certificate the server presented on `stream`.
fn server_certificate(stream: &TlsStream) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The first certificate of a PEM file.
fn certificate_of(file: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(file).unwrap()
}

/// An HTTP/1.1 connection over TLS, kept alive.
struct Https {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Https {
    async fn connect(address: &str, config: Arc<rustls::ClientConfig>) -> Result<Https, String> {
        let stream = connect(address, config).await.map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Https { sender })
    }

    /// POSTs `body` to `path` with a token (if any): status and body.
    async fn post(
        &mut self,
        path: &str,
        body: &str,
        token: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut request = hyper::Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("dapr-api-token", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.send(request).await
    }

    async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        let request = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(request).await
    }

    async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, String), String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// tonic's connector: a TLS connection to one address.
#[derive(Clone)]
struct TlsConnector {
    address: String,
    config: Arc<rustls::ClientConfig>,
}

impl tower::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TlsStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (address, config) = (self.address.clone(), self.config.clone());
        Box::pin(async move { Ok(TokioIo::new(connect(&address, config).await?)) })
    }
}

/// A gRPC client over TLS (ALPN `h2`).
async fn grpc(
    address: &str,
    ca: &Path,
    identity: Option<&Issued>,
) -> Result<DaprClient<Channel>, tonic::transport::Error> {
    let connector = TlsConnector {
        address: address.to_string(),
        config: client_config(ca, identity, &[b"h2"]),
    };
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_with_connector(connector)
        .await?;
    Ok(DaprClient::new(channel))
}

fn try_lock(resource: &str, owner: &str) -> tonic::Request<TryLockRequest> {
    tonic::Request::new(TryLockRequest {
        store_name: "lockstore".into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
        expiry_in_seconds: 60,
    })
}

fn unlock(resource: &str, owner: &str) -> tonic::Request<UnlockRequest> {
    tonic::Request::new(UnlockRequest {
        store_name: "lockstore".into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
    })
}

/// Runs curl with `args`: its exit status, stdout and stderr.
fn curl(args: &[&str]) -> (i32, String, String) {
    let output = Command::new("curl")
        .args(["-s", "-S", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn curl_available() -> bool {
    common::require_tool(&["curl", "--version"], "curl", "the TLS tests")
}

#[test]
fn https_and_grpc_over_tls_serve_the_api_and_plain_clients_get_no_answer() {
    let Some(pki) = Pki::new() else { return };
    if !curl_available() {
        return;
    }
    let host = Host::start_with(Options::new().tls().args(pki.flags()));
    let banner = host.banner();
    assert!(
        banner.contains(&format!(
            "listening on {} (TLS, certificate {})",
            host.base,
            pki.server.cert.display()
        )),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("gRPC API on {} (TLS", host.grpc)),
        "{banner}"
    );
    assert!(banner.contains("try: curl -s -X POST https://"), "{banner}");
    let ca = pki.ca.cert().display().to_string();
    let write_out = "\n%{http_code} %{http_version} %{content_type}";

    for (version, tls) in [
        ("--http1.1", "--tlsv1.3"),
        ("--http2", "--tlsv1.3"),
        ("--http1.1", "--tls-max"),
    ] {
        let tls_args: &[&str] = match tls {
            "--tls-max" => &["--tlsv1.2", "--tls-max", "1.2"],
            _ => &["--tlsv1.3"],
        };
        let expected_version = if version == "--http2" { "2" } else { "1.1" };
        let https = |method: &str, path: &str, body: Option<&str>| {
            let url = format!("{}{path}", host.base);
            let mut args = vec![version, "--cacert", &ca, "-w", write_out, "-X", method];
            args.extend_from_slice(tls_args);
            if let Some(body) = body {
                args.extend(["-H", "content-type: application/json", "-d", body]);
            }
            args.push(&url);
            let (code, stdout, stderr) = curl(&args);
            assert_eq!(code, 0, "curl {args:?}: {stderr}");
            stdout
        };
        for health in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
            assert_eq!(
                https("GET", health, None),
                format!("\n204 {expected_version} "),
                "{version} {tls_args:?}"
            );
        }
        assert_eq!(
            https("POST", "/v1.0-alpha1/lock/lockstore", Some(LOCK)),
            format!("{{\"success\":true}}\n200 {expected_version} application/json")
        );
        assert_eq!(
            https("POST", "/v1.0-alpha1/lock/lockstore", Some(LOCK)),
            format!("{{\"success\":false}}\n200 {expected_version} application/json")
        );
        assert_eq!(
            https("POST", "/v1.0-alpha1/unlock/lockstore", Some(UNLOCK)),
            format!("{{\"status\":0}}\n200 {expected_version} application/json")
        );
        let metadata = https("GET", "/v1.0/metadata", None);
        assert!(
            metadata.contains(r#""runtimeVersion":"1.18.3""#),
            "{metadata}"
        );
    }

    // A plain HTTP request: the connection closes, and not a byte comes back.
    let http_url = host.base.replace("https://", "http://");
    let (code, stdout, stderr) = curl(&[&format!("{http_url}/v1.0/healthz")]);
    // 52: an empty reply; 56: the connection was reset.
    assert!(
        code == 52 || code == 56,
        "curl over plain HTTP: {code} {stdout} {stderr}"
    );
    let mut plain = std::net::TcpStream::connect(http_url.trim_start_matches("http://")).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    plain
        .write_all(b"GET /v1.0/healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    match plain.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert_eq!(answer, b"", "a plain request got an answer");
    // Plain gRPC (h2c) likewise.
    let rt = runtime();
    rt.block_on(async {
        let channel = Endpoint::from_shared(format!("http://{}", host.grpc))
            .unwrap()
            .connect()
            .await;
        if let Ok(channel) = channel {
            let answer = DaprClient::new(channel)
                .try_lock_alpha1(try_lock("r", "o"))
                .await;
            assert!(answer.is_err(), "plain gRPC got an answer: {answer:?}");
        }

        // gRPC over TLS.
        let mut client = grpc(&host.grpc, &pki.ca.cert(), None).await.unwrap();
        let locked = client.try_lock_alpha1(try_lock("g", "o")).await.unwrap();
        assert!(locked.into_inner().success);
        let unlocked = client.unlock_alpha1(unlock("g", "o")).await.unwrap();
        assert_eq!(unlocked.into_inner().status, 0);

        // A client that does not trust the server's authority gives up at the handshake.
        let other = tempfile::tempdir().unwrap();
        let stranger = Authority::create(other.path(), "stranger");
        let refused = connect(&host.grpc, client_config(&stranger.cert(), None, &[b"h2"])).await;
        assert!(
            refused.is_err(),
            "a server certificate of another authority"
        );
    });
    // Still serving.
    let (code, _, stderr) = curl(&["--cacert", &ca, &format!("{}/v1.0/healthz", host.base)]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_handshake_that_stalls_is_closed_at_the_request_head_timeout() {
    let Some(pki) = Pki::new() else { return };
    if !curl_available() {
        return;
    }
    let mut args = pki.flags();
    args.extend(["--read-header-timeout".into(), "1s".into()]);
    let host = Host::start_with(Options::new().tls().args(args));
    for address in [host.base.trim_start_matches("https://"), &host.grpc] {
        // The first bytes of a TLS record, and then nothing.
        let mut stalled = std::net::TcpStream::connect(address).unwrap();
        stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
        stalled
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut answer = Vec::new();
        let closed = stalled.read_to_end(&mut answer);
        assert!(
            closed.is_ok() || closed.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
            "the host did not close a stalled handshake"
        );
        assert_eq!(answer, b"", "{address}");
    }
    let (code, _, stderr) = curl(&[
        "--cacert",
        &pki.ca.cert().display().to_string(),
        &format!("{}/v1.0/healthz", host.base),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn start_up_errors_name_the_flag_the_file_and_what_is_wrong() {
    let Some(pki) = Pki::new() else { return };
    let other = pki.ca.issue("other", &["IP:127.0.0.1"], "serverAuth");
    let expired = pki.ca.issue_with(
        "expired",
        &["IP:127.0.0.1"],
        "serverAuth",
        Validity::Expired,
    );
    let missing = pki.dir.path().join("missing.pem");
    let not_pem = pki.dir.path().join("ca.cnf");
    let fails = |cert: &Path, key: &Path, client_ca: Option<&Path>, expected: &[String]| {
        let mut args = tls_flags(&Issued {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
        if let Some(ca) = client_ca {
            args.extend(["--api-tls-client-ca".into(), ca.display().to_string()]);
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let why = format!("started with {cert:?} {key:?} {client_ca:?}");
        Host::refused(Options::new().tls().args(args), &why, &expected);
    };
    let shown = |p: &Path| p.display().to_string();
    let server = &pki.server;
    fails(
        &missing,
        &server.key,
        None,
        &[format!(
            "--api-tls-cert {}: cannot read it",
            shown(&missing)
        )],
    );
    fails(
        &server.cert,
        &missing,
        None,
        &[format!("--api-tls-key {}: cannot read it", shown(&missing))],
    );
    fails(
        &not_pem,
        &server.key,
        None,
        &[format!(
            "--api-tls-cert {}: no certificate in it",
            shown(&not_pem)
        )],
    );
    fails(
        &server.cert,
        &other.key,
        None,
        &[format!(
            "--api-tls-key {} does not match the certificate in --api-tls-cert {}",
            shown(&other.key),
            shown(&server.cert)
        )],
    );
    fails(
        &expired.cert,
        &expired.key,
        None,
        &[format!(
            "--api-tls-cert {}: the certificate expired at 2020-01-02T00:00:00Z",
            shown(&expired.cert)
        )],
    );
    fails(
        &server.cert,
        &server.key,
        Some(&missing),
        &[format!(
            "--api-tls-client-ca {}: cannot read it",
            shown(&missing)
        )],
    );
    fails(
        &server.cert,
        &server.key,
        Some(&expired.cert),
        &[format!(
            "--api-tls-client-ca {}: the certificate expired",
            shown(&expired.cert)
        )],
    );
}

/// Runs `program` with `args` (an SDK's client script and its arguments), Dapr's SDK
/// environment pointed at a new TLS host of `pki`; checks that it printed `last_line` last
/// and exited 0.
fn sdk_passes_over_tls(pki: &Pki, program: &Path, args: &[&str], last_line: &str) {
    let host = Host::start_with(Options::new().tls().args(pki.flags()));
    let ca = pki.ca.cert();
    let mut command = Command::new(program);
    command.args(args);
    for name in [
        "DAPR_API_TOKEN",
        "DAPR_HTTP_PORT",
        "DAPR_GRPC_PORT",
        "DAPR_RUNTIME_HOST",
    ] {
        command.env_remove(name);
    }
    command
        .env("DAPR_HTTP_ENDPOINT", &host.base)
        .env("DAPR_GRPC_ENDPOINT", format!("https://{}", host.grpc))
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("DAPR_HEALTH_TIMEOUT", "20")
        .env("WASILOCK_STORE", "lockstore");
    sdk_clients::passes(&mut command, last_line);
}

#[test]
fn the_python_sdk_takes_and_releases_locks_over_tls() {
    let Some(pki) = Pki::new() else { return };
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let script = sdk_clients::clients_dir().join("dapr_python.py");
    let args = [script.to_str().unwrap()];
    sdk_passes_over_tls(&pki, &python, &args, "python sdk: all checks passed");
}

#[test]
fn the_javascript_sdk_takes_and_releases_locks_over_https() {
    let Some(pki) = Pki::new() else { return };
    let Some(dir) = sdk_clients::node() else {
        return;
    };
    let script = Path::new(&dir).join("dapr_js.mjs");
    let last_line = "js sdk (http): all checks passed";
    sdk_passes_over_tls(
        &pki,
        Path::new("node"),
        &[script.to_str().unwrap(), "http"],
        last_line,
    );
}

/// A Tenant document for `name` with token `token` that the certificate name `identity`
/// also selects.
fn tenant_with_identity(name: &str, token: &str, identity: &str) -> String {
    format!(
        "{}  clientIdentity: \"{identity}\"\n",
        tenant(name, token, None, "{}")
    )
}

#[test]
fn client_certificates_select_tenants_and_a_token_beside_one_must_agree() {
    let Some(pki) = Pki::new() else { return };
    let orders_id = "spiffe://wasilock.test/ns/shop/sa/orders";
    let orders = pki
        .ca
        .issue("orders", &[&format!("URI:{orders_id}")], "clientAuth");
    let billing = pki
        .ca
        .issue("billing", &["DNS:billing.wasilock.test"], "clientAuth");
    let anonymous = pki
        .ca
        .issue("anonymous", &["DNS:nobody.wasilock.test"], "clientAuth");
    let other_dir = tempfile::tempdir().unwrap();
    let stranger_ca = Authority::create(other_dir.path(), "stranger");
    let stranger = stranger_ca.issue("intruder", &[&format!("URI:{orders_id}")], "clientAuth");
    let dir = resources(&[
        (
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        ),
        (
            "orders.yaml",
            &tenant_with_identity("orders", "t-orders", orders_id),
        ),
        (
            "billing.yaml",
            &tenant_with_identity("billing", "t-billing", "billing.wasilock.test"),
        ),
    ]);
    let mut args = pki.flags();
    args.extend([
        "--api-tls-client-ca".into(),
        pki.ca.cert().display().to_string(),
        "--resources-path".into(),
        dir.path().display().to_string(),
    ]);
    let host = Host::start_with(Options::new().tls().args(args));
    let banner = host.banner();
    assert!(
        banner.contains(&format!(
            "(mutual TLS, certificate {}, client certificates of {})",
            pki.server.cert.display(),
            pki.ca.cert().display()
        )),
        "{banner}"
    );
    let address = host.base.trim_start_matches("https://").to_string();
    let ca = pki.ca.cert();
    let http = |identity: Option<&Issued>| client_config(&ca, identity, &[b"http/1.1"]);
    runtime().block_on(async {
        let mut as_orders = Https::connect(&address, http(Some(&orders))).await.unwrap();
        let mut as_billing = Https::connect(&address, http(Some(&billing)))
            .await
            .unwrap();
        let lock = "/v1.0-alpha1/lock/lockstore";
        let locked = Ok((200, r#"{"success":true}"#.to_string()));
        // The same resource for each: two tenants, two keys.
        assert_eq!(as_orders.post(lock, LOCK, None).await, locked);
        assert_eq!(as_billing.post(lock, LOCK, None).await, locked);
        for (client, app_id) in [(&mut as_orders, "orders"), (&mut as_billing, "billing")] {
            let (status, metadata) = client.get("/v1.0/metadata").await.unwrap();
            assert_eq!(status, 200);
            assert!(
                metadata.starts_with(&format!(r#"{{"id":"{app_id}","#)),
                "{metadata}"
            );
            assert_eq!(client.get("/v1.0/healthz").await, Ok((204, String::new())));
        }
        // A token of its own tenant is fine; one of the other tenant is daprd's 401.
        let refused = Ok((401, "invalid api token\n".to_string()));
        let unlocked = Ok((200, r#"{"status":0}"#.to_string()));
        assert_eq!(as_orders.post(lock, LOCK, Some("t-billing")).await, refused);
        assert_eq!(as_orders.post(lock, LOCK, Some("wrong")).await, refused);
        let unlock_path = "/v1.0-alpha1/unlock/lockstore";
        assert_eq!(
            as_orders.post(unlock_path, UNLOCK, Some("t-orders")).await,
            unlocked
        );
        assert_eq!(as_billing.post(unlock_path, UNLOCK, None).await, unlocked);

        // A certificate of the authority that names no tenant: the token decides.
        let mut as_nobody = Https::connect(&address, http(Some(&anonymous)))
            .await
            .unwrap();
        assert_eq!(as_nobody.post(lock, LOCK, None).await, refused);
        assert_eq!(
            as_nobody.post(unlock_path, UNLOCK, Some("t-billing")).await,
            Ok((200, r#"{"status":1}"#.to_string()))
        );

        // Without a certificate, or with one of another authority: refused at the handshake
        // (TLS 1.3 clients learn it at their first read).
        for identity in [None, Some(&stranger)] {
            let refused = match Https::connect(&address, http(identity)).await {
                Err(e) => e,
                Ok(mut client) => client.get("/v1.0/healthz").await.unwrap_err(),
            };
            assert!(!refused.is_empty());
        }

        // gRPC: the same selection, and daprd's UNAUTHENTICATED with its ErrorInfo.
        let mut orders_grpc = grpc(&host.grpc, &ca, Some(&orders)).await.unwrap();
        let mut billing_grpc = grpc(&host.grpc, &ca, Some(&billing)).await.unwrap();
        let ok = orders_grpc
            .try_lock_alpha1(try_lock("g", "o"))
            .await
            .unwrap();
        assert!(ok.into_inner().success);
        let ok = billing_grpc
            .try_lock_alpha1(try_lock("g", "o"))
            .await
            .unwrap();
        assert!(ok.into_inner().success, "the tenants' keys stay apart");
        let mut with_token = try_lock("g2", "o");
        with_token
            .metadata_mut()
            .insert("dapr-api-token", "t-billing".parse().unwrap());
        let status = orders_grpc.try_lock_alpha1(with_token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "Unauthorized");
        let details = tonic_types::StatusExt::get_error_details(&status);
        let info = details.error_info().expect("daprd's ErrorInfo");
        assert_eq!(info.reason, "Unauthorized");
        assert_eq!(info.domain, "dapr.io");
        assert_eq!(
            info.metadata.get("http.error_message").map(String::as_str),
            Some("authentication error: api token mismatch")
        );
        let metadata = orders_grpc
            .get_metadata(wasilock::api::grpc::proto::GetMetadataRequest {})
            .await
            .unwrap();
        assert_eq!(metadata.into_inner().id, "orders");
        let unlocked = billing_grpc.unlock_alpha1(unlock("g", "o")).await.unwrap();
        assert_eq!(unlocked.into_inner().status, 0);

        let stranger_grpc = grpc(&host.grpc, &ca, Some(&stranger)).await;
        if let Ok(mut client) = stranger_grpc {
            let answer = client.try_lock_alpha1(try_lock("g", "o")).await;
            assert!(
                answer.is_err(),
                "a certificate of another authority: {answer:?}"
            );
        }
    });
}

/// One round of the rotation load: a lock on the kept-alive connection, and its unlock on a
/// new one; the certificate a new connection was presented.
async fn rotation_round(
    kept_alive: &mut Https,
    address: &str,
    config: &Arc<rustls::ClientConfig>,
    i: usize,
) -> CertificateDer<'static> {
    let resource = format!("rotate-{i}");
    let lock = format!(r#"{{"resourceId":"{resource}","lockOwner":"o","expiryInSeconds":60}}"#);
    let unlock = format!(r#"{{"resourceId":"{resource}","lockOwner":"o"}}"#);
    assert_eq!(
        kept_alive
            .post("/v1.0-alpha1/lock/lockstore", &lock, None)
            .await,
        Ok((200, r#"{"success":true}"#.to_string())),
        "a lock on the kept-alive connection"
    );
    let stream = connect(address, config.clone())
        .await
        .expect("a new connection");
    let presented = server_certificate(&stream);
    drop(stream);
    let mut fresh = Https::connect(address, config.clone())
        .await
        .expect("a new connection");
    assert_eq!(
        fresh
            .post("/v1.0-alpha1/unlock/lockstore", &unlock, None)
            .await,
        Ok((200, r#"{"status":0}"#.to_string())),
        "an unlock on a new connection"
    );
    presented
}

/// Replaces `target` with `source`'s content at once (a rename), as deployment tools do.
fn replace(source: &Path, target: &Path) {
    let staged = target.with_extension("staged");
    std::fs::copy(source, &staged).unwrap();
    std::fs::rename(&staged, target).unwrap();
}

#[test]
fn certificates_rotate_under_load_without_a_failed_request() {
    let Some(pki) = Pki::new() else { return };
    let next = pki.ca.issue("next", &["IP:127.0.0.1"], "serverAuth");
    let live = Issued {
        cert: pki.dir.path().join("live.crt"),
        key: pki.dir.path().join("live.key"),
    };
    replace(&pki.server.cert, &live.cert);
    replace(&pki.server.key, &live.key);
    let host = Host::start_with(Options::new().tls().args(tls_flags(&live)));
    let address = host.base.trim_start_matches("https://").to_string();
    let config = client_config(&pki.ca.cert(), None, &[b"http/1.1"]);
    let (old, new) = (certificate_of(&pki.server.cert), certificate_of(&next.cert));
    runtime().block_on(async {
        let mut kept_alive = Https::connect(&address, config.clone()).await.unwrap();
        for i in 0..20 {
            assert_eq!(
                rotation_round(&mut kept_alive, &address, &config, i).await,
                old
            );
        }
        replace(&next.cert, &live.cert);
        replace(&next.key, &live.key);
        // Bounded: the files are checked every second.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut i = 20;
        loop {
            let presented = rotation_round(&mut kept_alive, &address, &config, i).await;
            i += 1;
            if presented == new {
                break;
            }
            assert_eq!(presented, old, "an unknown certificate");
            assert!(
                Instant::now() < deadline,
                "new connections never saw the new certificate"
            );
        }
        for _ in 0..20 {
            assert_eq!(
                rotation_round(&mut kept_alive, &address, &config, i).await,
                new
            );
            i += 1;
        }
    });
    host.assert_logged(&["reloaded the API's TLS certificate"]);
}
