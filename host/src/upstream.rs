//! Where a tenant's other Dapr calls go: the daprd beside wasilock, by its HTTP and gRPC
//! addresses (`--dapr-upstream-http`, `--dapr-upstream-grpc`, or a Tenant's
//! `spec.upstream`). Plain data, checked once when read; [`crate::api`] forwards to it.

use anyhow::{Result, bail};
use hyper::Uri;

/// The daprd a tenant's calls go to when wasilock does not serve them itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    /// Daprd's HTTP API (`http://host:port`): every HTTP request but the lock routes and
    /// wasilock's own; `None` answers them as today (`404 ERR_DIRECT_INVOKE`).
    pub http: Option<Uri>,
    /// Daprd's gRPC API (`http://host:port`, HTTP/2 without TLS): every call but the lock
    /// methods, `GetMetadata` and reflection; `None` answers them `UNIMPLEMENTED`.
    pub grpc: Option<Uri>,
}

impl Upstream {
    /// Whether neither address is set.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.grpc.is_none()
    }
}

/// An upstream address as written: `http://host:port` (a trailing `/` is allowed; no other
/// path, no query, no TLS). The error says what is wrong, for the caller to name the field.
pub fn parse_address(text: &str) -> Result<Uri> {
    let uri: Uri = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{text:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("{text:?} must start with http:// (daprd's API without TLS)");
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        bail!("{text:?} has no host");
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        bail!("{text:?} may not have a path or a query: requests keep their own");
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_http_origins() {
        let uri = parse_address("http://127.0.0.1:3501").unwrap();
        assert_eq!(uri.authority().unwrap().as_str(), "127.0.0.1:3501");
        assert!(parse_address("http://daprd:50001/").is_ok());
        let error = |text| format!("{:#}", parse_address(text).unwrap_err());
        assert_eq!(
            error("https://daprd:3501"),
            "\"https://daprd:3501\" must start with http:// (daprd's API without TLS)"
        );
        assert_eq!(
            error("daprd:3501"),
            "\"daprd:3501\" must start with http:// (daprd's API without TLS)"
        );
        assert_eq!(
            error("http://daprd:3501/v1.0"),
            "\"http://daprd:3501/v1.0\" may not have a path or a query: requests keep their own"
        );
        assert!(error("http://").contains("is not a URL"));
    }

    #[test]
    fn an_upstream_without_addresses_is_empty() {
        assert!(Upstream::default().is_empty());
        let grpc_only = Upstream {
            http: None,
            grpc: Some(parse_address("http://daprd:50001").unwrap()),
        };
        assert!(!grpc_only.is_empty());
    }
}
