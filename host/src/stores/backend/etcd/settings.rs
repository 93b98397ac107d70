//! `lock.etcd` metadata, read with the names of Dapr's `state.etcd` (case-insensitive, as
//! daprd's decoder) plus daprd's `keyPrefix`.
//!
//! [`NAMES`] lists every name with what this host does with it: implemented; refused at
//! start-up when it asks for something this host lacks; or accepted and logged as ignored.
//! Names not in the table are logged as unknown, since daprd ignores them too.

use crate::stores::backend::properties::{self, Timeout, lookup, parse_bool};
use crate::stores::backend::{FromMetadata, Metadata, Remark};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::stores::backend::properties::{Handling, Redacted, Unused};

use Handling::{Ignored, Implemented, RefusedWhenSet};

/// Every metadata name `lock.etcd` knows, with what this host does with it.
pub const NAMES: &[(&str, Handling)] = &[
    ("endpoints", Implemented),
    ("username", Implemented),
    ("password", Implemented),
    ("tlsEnable", Implemented),
    ("ca", Implemented),
    ("cert", Implemented),
    ("key", Implemented),
    ("dialTimeout", Implemented),
    ("keyPrefix", Implemented),
    ("keyPrefixPath", Implemented),
    ("defaultTTL", Implemented),
    ("maxTTL", Implemented),
    (
        "keyPassword",
        RefusedWhenSet(
            "encrypted private keys are not supported by this host; give key unencrypted (PEM)",
        ),
    ),
    (
        "maxTxnOps",
        Ignored("it bounds Dapr's state transactions and does nothing for locks"),
    ),
];

/// `tlsEnable: true`: the server's certificate is checked against `ca`; `cert` and `key`
/// are the client's certificate, when the server asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ca`: the authority's certificate, PEM.
    pub ca: String,
    /// `cert` and `key`: the client certificate and its private key, PEM.
    pub client: Option<(String, Redacted)>,
}

/// Settings from the component's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// `endpoints`: `host:port` of each member, in the order given.
    pub endpoints: Vec<String>,
    /// `username` and `password`: etcd's own authentication (a token per connection).
    pub credentials: Option<(String, Redacted)>,
    /// `tlsEnable` with `ca`, `cert` and `key`.
    pub tls: Option<TlsSettings>,
    /// `dialTimeout`: the bound on connecting, and on each request (Dapr's default, 5 s).
    pub dial_timeout: Duration,
    /// `keyPrefixPath`: keys are `<keyPrefixPath>/<lock key>`, as Dapr's `state.etcd` lays
    /// them out (so `/lock||app||r` when it is empty).
    pub key_prefix_path: String,
}

const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

impl FromMetadata for EtcdSettings {
    /// Reads the metadata; an error names the property at fault.
    fn from_metadata(metadata: &Metadata) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(metadata, name);
        for (name, handling) in NAMES {
            if let RefusedWhenSet(why) = handling
                && get(name).is_some()
            {
                bail!("metadata property {name} is set: {why}");
            }
        }
        let Some(list) = get("endpoints") else {
            bail!("metadata property endpoints is empty");
        };
        let endpoints = list
            .split(',')
            .map(|endpoint| parse_endpoint(endpoint.trim()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let credentials = match (get("username"), get("password")) {
            (Some(user), password) => Some((
                user.to_string(),
                Redacted(password.unwrap_or_default().to_string()),
            )),
            (None, Some(_)) => bail!("metadata property password is set without username"),
            (None, None) => None,
        };
        let tls_enabled = match get("tlsEnable") {
            None => false,
            Some(v) => parse_bool("tlsEnable", v)?,
        };
        let (ca, cert, key) = (get("ca"), get("cert"), get("key"));
        let tls = if tls_enabled {
            let Some(ca) = ca else {
                bail!(
                    "metadata property ca is empty but tlsEnable is true: give the PEM certificate of the authority that signed the etcd servers' certificates"
                );
            };
            let client = match (cert, key) {
                (Some(cert), Some(key)) => Some((cert.to_string(), Redacted(key.to_string()))),
                (None, None) => None,
                (Some(_), None) => bail!("metadata property cert is set without key"),
                (None, Some(_)) => bail!("metadata property key is set without cert"),
            };
            Some(TlsSettings {
                ca: ca.to_string(),
                client,
            })
        } else {
            for (name, value) in [("ca", ca), ("cert", cert), ("key", key)] {
                if value.is_some() {
                    bail!("metadata property {name} is set but tlsEnable is not true");
                }
            }
            None
        };
        Ok(EtcdSettings {
            endpoints,
            credentials,
            tls,
            dial_timeout: dial_timeout(get("dialTimeout"))?,
            key_prefix_path: get("keyPrefixPath").unwrap_or_default().to_string(),
        })
    }

    /// [`EtcdSettings::unused`], as remarks.
    fn remarks(metadata: &Metadata) -> Vec<Remark> {
        Self::unused(metadata).iter().map(Unused::remark).collect()
    }
}

impl EtcdSettings {
    /// The entries of `metadata` accepted without effect, in name order.
    pub fn unused(metadata: &BTreeMap<String, String>) -> Vec<Unused> {
        properties::unused(NAMES, metadata, "lock.etcd")
    }

    /// The etcd key of the lock key `key` (Dapr's layout, [`crate::stores::keys`]).
    pub fn etcd_key(&self, key: &str) -> Vec<u8> {
        format!("{}/{key}", self.key_prefix_path).into_bytes()
    }

    /// The endpoints, comma-separated, for people.
    pub fn describe(&self) -> String {
        self.endpoints.join(",")
    }
}

/// `host:port`, with a port: etcd has no default client port a list could rely on.
fn parse_endpoint(endpoint: &str) -> anyhow::Result<String> {
    let endpoint = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint);
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        bail!("metadata property endpoints: {endpoint:?} has no port (expected host:port)");
    };
    if host.is_empty() {
        bail!("metadata property endpoints: {endpoint:?} has no host (expected host:port)");
    }
    port.parse::<u16>().with_context(|| {
        format!("metadata property endpoints: {endpoint:?} has an invalid port")
    })?;
    Ok(endpoint.to_string())
}

/// `dialTimeout` in Dapr's duration syntax; absent or 0: the default.
fn dial_timeout(text: Option<&str>) -> anyhow::Result<Duration> {
    Ok(match properties::timeout("dialTimeout", text)? {
        Timeout::Default => DEFAULT_DIAL_TIMEOUT,
        Timeout::Unbounded => bail!(
            "metadata property dialTimeout {:?}: must not be negative",
            text.unwrap_or_default()
        ),
        Timeout::After(duration) => duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stores::backend::properties::{
        assert_each_name_once, metadata_of as metadata, read_of,
    };

    fn settings(pairs: &[(&str, &str)]) -> EtcdSettings {
        read_of(EtcdSettings::from_metadata, pairs).unwrap()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        read_of(EtcdSettings::from_metadata, pairs).unwrap_err()
    }

    #[test]
    fn every_name_is_read() {
        let s = settings(&[
            ("Endpoints", "a:2379, b:2380,http://c:2381"),
            ("username", "app"),
            ("password", "secret"),
            ("tlsEnable", "True"),
            ("ca", "CA"),
            ("cert", "CERT"),
            ("key", "KEY"),
            ("dialTimeout", "750"),
            ("keyPrefix", "none"),
            ("keyPrefixPath", "locks"),
        ]);
        assert_eq!(
            s,
            EtcdSettings {
                endpoints: vec!["a:2379".into(), "b:2380".into(), "c:2381".into()],
                credentials: Some(("app".into(), Redacted("secret".into()))),
                tls: Some(TlsSettings {
                    ca: "CA".into(),
                    client: Some(("CERT".into(), Redacted("KEY".into()))),
                }),
                dial_timeout: Duration::from_millis(750),
                key_prefix_path: "locks".into(),
            }
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("KEY"),
            "{debug}"
        );
        assert_eq!(s.etcd_key("lock||r"), b"locks/lock||r");
        assert_eq!(s.describe(), "a:2379,b:2380,c:2381");
        let defaults = settings(&[("endpoints", "a:1")]);
        assert_eq!(
            (
                &defaults.credentials,
                &defaults.tls,
                defaults.dial_timeout,
                defaults.etcd_key("lock||app||r")
            ),
            (
                &None,
                &None,
                DEFAULT_DIAL_TIMEOUT,
                b"/lock||app||r".to_vec()
            )
        );
        assert_eq!(
            settings(&[("endpoints", "a:1"), ("dialTimeout", "2s")]).dial_timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn wrong_values_are_refused_naming_the_property() {
        assert_eq!(err(&[]), "metadata property endpoints is empty");
        assert_eq!(
            err(&[("endpoints", " ")]),
            "metadata property endpoints is empty"
        );
        assert!(err(&[("endpoints", "a")]).contains("has no port"));
        assert!(err(&[("endpoints", "a:1,,b:2")]).contains("has no port"));
        assert!(err(&[("endpoints", ":1")]).contains("has no host"));
        assert!(err(&[("endpoints", "a:x")]).contains("invalid port"));
        assert!(err(&[("endpoints", "a:1"), ("password", "p")]).contains("without username"));
        assert!(err(&[("endpoints", "a:1"), ("tlsEnable", "yes")]).contains("tlsEnable"));
        assert!(err(&[("endpoints", "a:1"), ("tlsEnable", "true")]).contains("ca is empty"));
        for name in ["ca", "cert", "key"] {
            assert_eq!(
                err(&[("endpoints", "a:1"), (name, "PEM")]),
                format!("metadata property {name} is set but tlsEnable is not true")
            );
        }
        let tls = [("endpoints", "a:1"), ("tlsEnable", "true"), ("ca", "CA")];
        assert!(err(&[tls[0], tls[1], tls[2], ("cert", "C")]).contains("without key"));
        assert!(err(&[tls[0], tls[1], tls[2], ("key", "K")]).contains("without cert"));
        assert!(err(&[("endpoints", "a:1"), ("dialTimeout", "soon")]).contains("dialTimeout"));
        assert!(err(&[("endpoints", "a:1"), ("dialTimeout", "-1")]).contains("dialTimeout"));
        assert!(
            err(&[("endpoints", "a:1"), ("keyPassword", "x")])
                .starts_with("metadata property keyPassword is set: encrypted private keys")
        );
    }

    #[test]
    fn ignored_and_unknown_names_are_reported() {
        let all = metadata(&[("endpoints", "a:1"), ("maxTxnOps", "9"), ("endpionts", "x")]);
        assert_eq!(
            EtcdSettings::from_metadata(&all).unwrap(),
            settings(&[("endpoints", "a:1")])
        );
        let unused = EtcdSettings::unused(&all);
        assert_eq!(
            unused.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "metadata property endpionts is not one lock.etcd reads; ignored (as daprd does)",
                "metadata property maxTxnOps is ignored: it bounds Dapr's state transactions and does nothing for locks",
            ]
        );
        assert_each_name_once(NAMES);
    }
}
