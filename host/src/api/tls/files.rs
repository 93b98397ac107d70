//! The PEM files of `--api-tls-cert`, `--api-tls-key` and `--api-tls-client-ca`, read and
//! checked: every error names the flag and the file, and says what is wrong with it
//! (unreadable, no PEM item of the kind, a key that does not match the certificate, a
//! certificate outside its validity period).

use anyhow::{Context, Result, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The certificates of a PEM file (`flag` names where it came from).
pub(super) fn certificates(flag: &str, file: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(flag, file)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{flag} {}: not valid PEM", file.display()))?;
    if certificates.is_empty() {
        bail!(
            "{flag} {}: no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)",
            file.display()
        );
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(flag: &str, file: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(flag, file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "{flag} {}: no private key in it (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` \
             or `EC PRIVATE KEY` block)",
            file.display()
        ),
        e => anyhow::anyhow!("{flag} {}: not valid PEM: {e}", file.display()),
    })
}

/// The certificate chain with its key, once the key is known to match the certificate.
pub(super) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    (cert_flag, cert_file): (&str, &Path),
    (key_flag, key_file): (&str, &Path),
) -> Result<CertifiedKey> {
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "{key_flag} {} does not match the certificate in {cert_flag} {} (the key of another \
             certificate?)",
            key_file.display(),
            cert_file.display()
        ),
        e => anyhow::anyhow!("{key_flag} {}: unusable key: {e}", key_file.display()),
    })
}

/// Fails when `certificate` (of the file `flag` names) has expired or is not valid yet at
/// `now`. Nothing else about it is checked here: clients verify the chain.
pub(super) fn check_validity(
    flag: &str,
    file: &Path,
    certificate: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<()> {
    let parsed = webpki::EndEntityCert::try_from(certificate)
        .map_err(|e| anyhow::anyhow!("{flag} {}: not a valid certificate: {e}", file.display()))?;
    // The validity period is the first thing path building checks, before any issuer is
    // looked for: a verification against the certificate itself reports it.
    let anchor = webpki::anchor_from_trusted_cert(certificate)
        .map_err(|e| anyhow::anyhow!("{flag} {}: not a valid certificate: {e}", file.display()))?;
    let anchors = [anchor];
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let verified = parsed.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::since_unix_epoch(since_epoch),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let at = |time: UnixTime| {
        humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs(time.as_secs()),
        )
    };
    match verified.map(|_| ()) {
        Err(webpki::Error::CertExpired { not_after, .. }) => bail!(
            "{flag} {}: the certificate expired at {}",
            file.display(),
            at(not_after)
        ),
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => bail!(
            "{flag} {}: the certificate is not valid before {}",
            file.display(),
            at(not_before)
        ),
        _ => Ok(()),
    }
}

fn read(flag: &str, file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("{flag} {}: cannot read it", file.display()))
}
