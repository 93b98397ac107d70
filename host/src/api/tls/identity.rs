//! What a client certificate says about its client: the URI and DNS names of its subject
//! alternative names, which select a tenant by its `spec.clientIdentity`.

use crate::config::tenants::ClientIdentity;
use rustls::pki_types::CertificateDer;

/// The names a verified client certificate presents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Its URI names (SPIFFE IDs and the like), then its DNS names (lower case).
    pub names: Vec<ClientIdentity>,
}

impl PeerCertificate {
    /// The names of `certificate` (the client's end-entity certificate); none when it cannot
    /// be parsed (the handshake's verification has accepted it already).
    pub fn from_der(certificate: &CertificateDer<'_>) -> PeerCertificate {
        let Ok(parsed) = webpki::EndEntityCert::try_from(certificate) else {
            return PeerCertificate::default();
        };
        let uris = parsed
            .valid_uri_names()
            .map(|uri| ClientIdentity::Uri(uri.to_string()));
        let dns = parsed
            .valid_dns_names()
            .map(|name| ClientIdentity::Dns(name.to_ascii_lowercase()));
        PeerCertificate {
            names: uris.chain(dns).collect(),
        }
    }
}
