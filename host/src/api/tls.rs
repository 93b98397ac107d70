//! TLS on the API listeners (`--api-tls-cert`, `--api-tls-key`), and mutual TLS
//! (`--api-tls-client-ca`): the server configurations both listeners hand their handshakes,
//! put back together when the files change.
//!
//! TLS 1.3 and 1.2 (rustls with `ring`). The HTTP listener offers ALPN `h2` and `http/1.1`,
//! the gRPC listener `h2` only. With a client CA, a client must present a certificate of that
//! authority at the handshake, and its names ([`PeerCertificate`]) may select a tenant.
//!
//! [`Tls::watch`] checks the files every second, as the resources path is watched: a change
//! builds new configurations for new handshakes, while open connections keep theirs. A
//! change that does not load (a key that no longer matches, an expired certificate, a file
//! half written) is logged and the running certificate stays.
//! - `files`: reading and checking the PEM files;
//! - `identity`: the names of a client certificate.

mod files;
mod identity;

pub use identity::PeerCertificate;

use super::connections::Protocol;
use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often the certificate files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The files of the API's TLS, as the flags name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--api-tls-cert`: the server's certificate chain, PEM, its own certificate first.
    pub cert: PathBuf,
    /// `--api-tls-key`: the certificate's private key, PEM.
    pub key: PathBuf,
    /// `--api-tls-client-ca`: the authorities whose client certificates are accepted (mutual
    /// TLS); `None` asks clients for no certificate.
    pub client_ca: Option<PathBuf>,
}

/// The API's TLS: the server configurations in force, replaced as a whole on reload.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<Configs>>,
}

/// The configurations of one load of the files.
struct Configs {
    /// For the HTTP listener: ALPN `h2` and `http/1.1`.
    http: Arc<ServerConfig>,
    /// For the gRPC listener: ALPN `h2`.
    grpc: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads and checks the files; errors name the flag and the file.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>> {
        let configs = Configs::load(&files, SystemTime::now())?;
        Ok(Arc::new(Tls {
            files,
            current: RwLock::new(Arc::new(configs)),
        }))
    }

    /// Reads the files again and puts them in force for new handshakes; on error nothing
    /// changes.
    pub fn reload(&self) -> Result<()> {
        let configs = Configs::load(&self.files, SystemTime::now())?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(configs);
        Ok(())
    }

    /// The files in force.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// What the start-up banner says of a listener: TLS or mutual TLS, with which files.
    pub fn describe(&self) -> String {
        let files = &self.files;
        match &files.client_ca {
            None => format!("TLS, certificate {}", files.cert.display()),
            Some(ca) => format!(
                "mutual TLS, certificate {}, client certificates of {}",
                files.cert.display(),
                ca.display()
            ),
        }
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The configuration for a new handshake on a listener speaking `protocol`.
    pub(crate) fn server_config(&self, protocol: Protocol) -> Arc<ServerConfig> {
        let configs = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match protocol {
            Protocol::Http1 => configs.http.clone(),
            Protocol::Http2 => configs.grpc.clone(),
        }
    }

    /// Reloads whenever a file is added, removed or changed (checked every
    /// `WATCH_INTERVAL`), until `stopped` turns true. A failed reload is logged and keeps the
    /// running certificate.
    pub async fn watch(&self, mut stopped: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(WATCH_INTERVAL);
        let mut seen = self.fingerprint();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            let now = self.fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => tracing::info!(
                    "reloaded the API's TLS certificate ({}) for new connections",
                    self.files.cert.display()
                ),
                Err(e) => tracing::error!(
                    "reloading the API's TLS files failed; the running certificate stays: {e:#}"
                ),
            }
        }
    }

    /// The files with their modification times and sizes.
    fn fingerprint(&self) -> Vec<Option<(SystemTime, u64)>> {
        let files = &self.files;
        [
            Some(&files.cert),
            Some(&files.key),
            files.client_ca.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|file| {
            std::fs::metadata(file)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
    }
}

impl Configs {
    /// Both configurations from the files as they are at `now`.
    fn load(files: &TlsFiles, now: SystemTime) -> Result<Configs> {
        const CERT: &str = "--api-tls-cert";
        const KEY: &str = "--api-tls-key";
        const CLIENT_CA: &str = "--api-tls-client-ca";
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = files::certificates(CERT, &files.cert)?;
        files::check_validity(CERT, &files.cert, &chain[0], now)?;
        let key = files::private_key(KEY, &files.key)?;
        let certified = Arc::new(files::certified_key(
            chain,
            key,
            &provider,
            (CERT, &files.cert),
            (KEY, &files.key),
        )?);
        let verifier = match &files.client_ca {
            None => None,
            Some(file) => {
                let mut roots = rustls::RootCertStore::empty();
                for authority in files::certificates(CLIENT_CA, file)? {
                    files::check_validity(CLIENT_CA, file, &authority, now)?;
                    roots.add(authority).with_context(|| {
                        format!("{CLIENT_CA} {}: not a usable authority", file.display())
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .with_context(|| format!("{CLIENT_CA} {}", file.display()))?;
                Some(verifier)
            }
        };
        let config = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>> {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .context("TLS 1.3 and 1.2 with the ring provider")?;
            let builder = match &verifier {
                None => builder.with_no_client_auth(),
                Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            };
            let mut config =
                builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Configs {
            http: config(&[b"h2", b"http/1.1"])?,
            grpc: config(&[b"h2"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tenants::ClientIdentity;
    use rustls::pki_types::pem::PemObject;
    use wasilock_testkit::certificates::{self, Authority, Issued, Validity};

    fn files(server: &Issued, client_ca: Option<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert: server.cert.clone(),
            key: server.key.clone(),
            client_ca,
        }
    }

    /// A certificate authority "ca" in a new temporary directory, kept while it is held;
    /// none without openssl.
    fn authority() -> Option<(tempfile::TempDir, Authority)> {
        if !certificates::openssl_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::create(dir.path(), "ca");
        Some((dir, ca))
    }

    #[test]
    fn loads_checks_and_reloads_the_files() {
        let Some((_dir, ca)) = authority() else {
            return;
        };
        let server = ca.issue("server", &["IP:127.0.0.1"], "serverAuth");
        let other = ca.issue("other", &["IP:127.0.0.1"], "serverAuth");
        let expired = ca.issue_with(
            "expired",
            &["IP:127.0.0.1"],
            "serverAuth",
            Validity::Expired,
        );

        let tls = Tls::load(files(&server, Some(ca.cert()))).unwrap();
        assert!(tls.is_mutual());
        let http = tls.server_config(Protocol::Http1);
        assert_eq!(http.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(
            tls.server_config(Protocol::Http2).alpn_protocols,
            [b"h2".to_vec()]
        );

        let error = |files: TlsFiles| format!("{:#}", Tls::load(files).unwrap_err());
        let mismatched = error(TlsFiles {
            key: other.key.clone(),
            ..files(&server, None)
        });
        assert!(
            mismatched.contains("does not match the certificate"),
            "{mismatched}"
        );
        let too_old = error(files(&expired, None));
        assert!(
            too_old.contains("expired at 2020-01-02T00:00:00Z"),
            "{too_old}"
        );

        // A reload that fails keeps what is in force; one that works replaces it.
        std::fs::copy(&other.cert, &server.cert).unwrap();
        assert!(tls.reload().is_err(), "the key no longer matches");
        assert!(Arc::ptr_eq(&tls.server_config(Protocol::Http1), &http));
        std::fs::copy(&other.key, &server.key).unwrap();
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&tls.server_config(Protocol::Http1), &http));
    }

    #[test]
    fn a_client_certificate_presents_its_uri_and_dns_names() {
        let Some((_dir, ca)) = authority() else {
            return;
        };
        let client = ca.issue(
            "client",
            &[
                "URI:spiffe://example.org/orders",
                "DNS:Orders.Example.org",
                "IP:10.0.0.1",
            ],
            "clientAuth",
        );
        let der = rustls::pki_types::CertificateDer::from_pem_file(&client.cert).unwrap();
        assert_eq!(
            PeerCertificate::from_der(&der).names,
            [
                ClientIdentity::Uri("spiffe://example.org/orders".into()),
                ClientIdentity::Dns("orders.example.org".into()),
            ]
        );
    }
}
