//! `lock.redis` metadata, read with Dapr's names (case-insensitive, as daprd's decoder).
//!
//! [`NAMES`] lists every metadata name Dapr 1.18's `lock.redis` reads (the Redis settings
//! components-contrib shares between its Redis components, their legacy aliases, and
//! daprd's `keyPrefix`) with what this host does with it: implemented; refused at start-up
//! when it switches on something this host lacks; or accepted and logged as ignored (tuning
//! knobs of Dapr's connection pool, and settings that do nothing for locks in Dapr either).
//! Names Dapr does not read at all are logged as unknown, since daprd ignores them too.

use crate::stores::backend::properties::{self, Timeout, parse_bool};
use crate::stores::backend::{FromMetadata, Metadata, Remark};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::stores::backend::properties::{Handling, Redacted, Unused};

use Handling::{Ignored, Implemented, RefusedWhenTrue};

const ENTRA_ID: &str = "Entra ID (Azure AD) tokens are not supported by this host; use redisUsername and redisPassword";
const OIDC: &str =
    "OIDC tokens are not supported by this host; use redisUsername and redisPassword";
const POOL: &str = "this host keeps one multiplexed connection per Redis, not a pool";
const RETRIES: &str =
    "this host does not retry a failed command: the call fails at once and the next one reconnects";
const NOT_FOR_LOCKS: &str =
    "it belongs to Dapr's Redis state store or pub/sub and does nothing for locks, in Dapr neither";

/// Every metadata name of Dapr's `lock.redis`, with what this host does with it.
/// (`useOIDC` is newer than Dapr 1.18; it is refused rather than taken for unknown.)
pub const NAMES: &[(&str, Handling)] = &[
    ("redisHost", Implemented),
    ("redisPort", Implemented),
    ("redisUsername", Implemented),
    ("redisPassword", Implemented),
    ("redisDB", Implemented),
    ("redisType", Implemented),
    ("enableTLS", Implemented),
    ("insecureSkipTLSVerify", Implemented),
    ("clientCert", Implemented),
    ("clientKey", Implemented),
    ("dialTimeout", Implemented),
    ("readTimeout", Implemented),
    ("writeTimeout", Implemented),
    ("failover", Implemented),
    ("sentinelMasterName", Implemented),
    ("sentinelUsername", Implemented),
    ("sentinelPassword", Implemented),
    ("keyPrefix", Implemented),
    ("defaultTTL", Implemented),
    ("maxTTL", Implemented),
    ("useEntraID", RefusedWhenTrue(ENTRA_ID)),
    ("useAzureAD", RefusedWhenTrue(ENTRA_ID)),
    ("useOIDC", RefusedWhenTrue(OIDC)),
    ("redisMaxRetries", Ignored(RETRIES)),
    ("redisMinRetryInterval", Ignored(RETRIES)),
    ("redisMaxRetryInterval", Ignored(RETRIES)),
    ("maxRetries", Ignored(RETRIES)),
    ("maxRetryBackoff", Ignored(RETRIES)),
    ("poolSize", Ignored(POOL)),
    ("poolTimeout", Ignored(POOL)),
    ("minIdleConns", Ignored(POOL)),
    ("maxConnAge", Ignored(POOL)),
    ("idleTimeout", Ignored(POOL)),
    ("idleCheckFrequency", Ignored(POOL)),
    ("ttlInSeconds", Ignored(NOT_FOR_LOCKS)),
    ("queryIndexes", Ignored(NOT_FOR_LOCKS)),
    ("actorStateStore", Ignored(NOT_FOR_LOCKS)),
    ("consumerID", Ignored(NOT_FOR_LOCKS)),
    ("processingTimeout", Ignored(NOT_FOR_LOCKS)),
    ("redeliverInterval", Ignored(NOT_FOR_LOCKS)),
    ("queueDepth", Ignored(NOT_FOR_LOCKS)),
    ("concurrency", Ignored(NOT_FOR_LOCKS)),
    ("maxLenApprox", Ignored(NOT_FOR_LOCKS)),
    ("streamTTL", Ignored(NOT_FOR_LOCKS)),
];

/// How `name` (any case) is handled; `None` when Dapr's `lock.redis` does not read it.
pub fn handling(name: &str) -> Option<Handling> {
    properties::handling(NAMES, name)
}

/// How the Redis behind a store is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redisType: node`, the default).
    Node,
    /// A Redis Cluster; `redisHost` lists seed nodes (`redisType: cluster`).
    Cluster,
    /// A master found through Redis Sentinel; `redisHost` lists the Sentinels (`failover`).
    Sentinel(SentinelSettings),
}

/// `failover: true`: the master is asked of the Sentinels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelSettings {
    /// `sentinelMasterName`: the name the Sentinels monitor the master under.
    pub master_name: String,
    /// `sentinelUsername`: for the Sentinels (the master uses `redisUsername`).
    pub username: Option<String>,
    /// `sentinelPassword`: for the Sentinels (the master uses `redisPassword`).
    pub password: Option<Redacted>,
}

/// `enableTLS: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Whether the server's certificate is verified (against the system's roots, or
    /// `SSL_CERT_FILE`); `insecureSkipTLSVerify: true` turns it off, as in Dapr 1.18.
    pub verify: bool,
    /// `clientCert` and `clientKey`: a certificate to present to the server.
    pub client: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `clientCert`.
    pub cert: String,
    /// `clientKey`.
    pub key: Redacted,
}

/// Settings from the component's metadata, with Dapr's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// The first address of `redisHost`: the server, the first cluster seed or Sentinel.
    pub host: String,
    /// Its port: from `redisHost`, else `redisPort`, else 6379.
    pub port: u16,
    /// The further addresses of a comma-separated `redisHost` (cluster seeds, Sentinels).
    pub more_addresses: Vec<(String, u16)>,
    /// `redisUsername`.
    pub username: Option<String>,
    /// `redisPassword`.
    pub password: Option<Redacted>,
    /// `redisDB`.
    pub db: i64,
    /// `enableTLS` with `insecureSkipTLSVerify`, `clientCert` and `clientKey`.
    pub tls: Option<TlsSettings>,
    /// `redisType` and `failover`.
    pub topology: Topology,
    /// `dialTimeout`.
    pub dial_timeout: Duration,
    /// `readTimeout`/`writeTimeout`: the bound on one request's answer; `None` = no bound.
    pub response_timeout: Option<Duration>,
}

const DEFAULT_PORT: u16 = 6379;
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

impl FromMetadata for RedisSettings {
    /// Reads Dapr's metadata names; an error names the property at fault.
    fn from_metadata(metadata: &Metadata) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(metadata, name);
        for (name, handling) in NAMES {
            if let RefusedWhenTrue(why) = handling
                && let Some(value) = get(name)
                && parse_bool(name, value)?
            {
                bail!("metadata property {name} is true: {why}");
            }
        }
        let flag = |name: &str| get(name).map_or(Ok(false), |v| parse_bool(name, v));

        let Some(host_list) = get("redisHost") else {
            bail!("metadata property redisHost is empty");
        };
        let redis_port = get("redisPort")
            .map(|v| {
                v.parse::<u16>()
                    .with_context(|| format!("metadata property redisPort {v:?}"))
            })
            .transpose()?;
        let mut addresses = host_list
            .split(',')
            .map(|address| parse_address(address.trim(), redis_port))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let failover = flag("failover")?;
        let redis_type = get("redisType").map(str::to_lowercase);
        let topology = match (redis_type.as_deref(), failover) {
            (None | Some("node" | "sentinel"), true) => Topology::Sentinel(SentinelSettings {
                master_name: get("sentinelMasterName")
                    .context("metadata property failover is true but sentinelMasterName is empty: name the master the Sentinels monitor")?
                    .to_string(),
                username: get("sentinelUsername").map(str::to_string),
                password: get("sentinelPassword").map(|v| Redacted(v.to_string())),
            }),
            (Some("cluster"), true) => bail!(
                "metadata property failover is true with redisType cluster: Sentinel-managed clusters are not supported; use failover with redisType node"
            ),
            (Some("sentinel"), false) => bail!(
                "metadata property redisType is sentinel but failover is not true: set failover: true and sentinelMasterName, with the Sentinels in redisHost"
            ),
            (None | Some("node"), false) => Topology::Node,
            (Some("cluster"), false) => Topology::Cluster,
            (Some(other), _) => {
                bail!("metadata property redisType {other:?}: expected node, cluster or sentinel")
            }
        };
        if !failover {
            for name in ["sentinelMasterName", "sentinelUsername", "sentinelPassword"] {
                if get(name).is_some() {
                    bail!(
                        "metadata property {name} is set but failover is not true: set failover: true to find the master through Sentinel, or remove {name}"
                    );
                }
            }
        }
        if topology == Topology::Node && addresses.len() > 1 {
            bail!(
                "metadata property redisHost lists {} addresses: a list is for redisType cluster (seed nodes) or failover: true (Sentinels)",
                addresses.len()
            );
        }

        let db = match get("redisDB") {
            None => 0,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .with_context(|| {
                    format!("metadata property redisDB {v:?}: expected a database number")
                })?,
        };
        if topology == Topology::Cluster && db != 0 {
            bail!(
                "metadata property redisDB is {db} with redisType cluster: a Redis Cluster has only database 0"
            );
        }

        let (first_host, first_port) = addresses.remove(0);
        Ok(RedisSettings {
            host: first_host,
            port: first_port,
            more_addresses: addresses,
            username: get("redisUsername").map(str::to_string),
            password: get("redisPassword").map(|v| Redacted(v.to_string())),
            db,
            tls: tls_settings(metadata, flag("enableTLS")?, flag("insecureSkipTLSVerify")?)?,
            topology,
            dial_timeout: match timeout(metadata, "dialTimeout")? {
                Timeout::Default => DEFAULT_DIAL_TIMEOUT,
                Timeout::After(d) => d,
                Timeout::Unbounded => bail!(
                    "metadata property dialTimeout: a negative value is allowed only for readTimeout and writeTimeout"
                ),
            },
            response_timeout: response_timeout(
                timeout(metadata, "readTimeout")?,
                timeout(metadata, "writeTimeout")?,
            ),
        })
    }

    /// [`RedisSettings::unused`], as remarks.
    fn remarks(metadata: &Metadata) -> Vec<Remark> {
        Self::unused(metadata).iter().map(Unused::remark).collect()
    }
}

impl RedisSettings {
    /// The entries of `metadata` that are accepted but change nothing, in name order: to be
    /// logged, so that none is dropped without a word.
    pub fn unused(metadata: &BTreeMap<String, String>) -> Vec<Unused> {
        properties::unused(NAMES, metadata, "Dapr's lock.redis")
    }

    /// Every address of `redisHost`, first one first.
    pub fn addresses(&self) -> impl Iterator<Item = (&str, u16)> {
        std::iter::once((self.host.as_str(), self.port))
            .chain(self.more_addresses.iter().map(|(h, p)| (h.as_str(), *p)))
    }

    /// What the store connects to, for people: `host:port`, the cluster seeds, or the master
    /// name and the Sentinels.
    pub fn describe(&self) -> String {
        let list = self
            .addresses()
            .map(|(host, port)| match host.contains(':') {
                true => format!("[{host}]:{port}"),
                false => format!("{host}:{port}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        match &self.topology {
            Topology::Sentinel(sentinel) => {
                format!(
                    "master {:?} of the Sentinels at {list}",
                    sentinel.master_name
                )
            }
            Topology::Node | Topology::Cluster => list,
        }
    }
}

/// The value of the implemented property `name`, trimmed; `None` when absent or empty.
fn lookup<'m>(metadata: &'m BTreeMap<String, String>, name: &str) -> Option<&'m str> {
    debug_assert!(
        matches!(handling(name), Some(Implemented | RefusedWhenTrue(_))),
        "{name} is not a name this host reads"
    );
    properties::lookup(metadata, name)
}

/// `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IPv6 address; a missing port is
/// `redisPort`'s (else 6379), and a port that differs from `redisPort` is an error, as in Dapr.
fn parse_address(address: &str, redis_port: Option<u16>) -> anyhow::Result<(String, u16)> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .with_context(|| format!("redisHost {address:?}: missing ']'"))?;
        (host, after.strip_prefix(':'))
    } else {
        match address.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (address, None),
        }
    };
    if host.is_empty() {
        bail!("metadata property redisHost {address:?}: no host name");
    }
    let port = match (port, redis_port) {
        (None, port) => port.unwrap_or(DEFAULT_PORT),
        (Some(text), redis_port) => {
            let port: u16 = text
                .parse()
                .with_context(|| format!("redisHost {address:?}: invalid port"))?;
            if redis_port.is_some_and(|p| p != port) {
                bail!(
                    "redisHost {address:?} has port {port} but redisPort is {}; remove one of them",
                    redis_port.unwrap_or_default()
                );
            }
            port
        }
    };
    Ok((host.to_string(), port))
}

fn tls_settings(
    metadata: &BTreeMap<String, String>,
    enabled: bool,
    skip_verify: bool,
) -> anyhow::Result<Option<TlsSettings>> {
    let cert = lookup(metadata, "clientCert");
    let key = lookup(metadata, "clientKey");
    if !enabled {
        for (name, set) in [
            ("clientCert", cert.is_some()),
            ("clientKey", key.is_some()),
            ("insecureSkipTLSVerify", skip_verify),
        ] {
            if set {
                bail!("metadata property {name} is set but enableTLS is not true");
            }
        }
        return Ok(None);
    }
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: cert.to_string(),
            key: Redacted(key.to_string()),
        }),
        (None, None) => None,
        (Some(_), None) => bail!("metadata property clientCert is set without clientKey"),
        (None, Some(_)) => bail!("metadata property clientKey is set without clientCert"),
    };
    Ok(Some(TlsSettings {
        verify: !skip_verify,
        client,
    }))
}

/// The property `name`, in Dapr's duration syntax.
fn timeout(metadata: &BTreeMap<String, String>, name: &str) -> anyhow::Result<Timeout> {
    properties::timeout(name, lookup(metadata, name))
}

/// One bound on an answer from a read and a write timeout: the longer; none if either is.
fn response_timeout(read: Timeout, write: Timeout) -> Option<Duration> {
    let bound = |t: Timeout| match t {
        Timeout::Default => Some(DEFAULT_RESPONSE_TIMEOUT),
        Timeout::Unbounded => None,
        Timeout::After(d) => Some(d),
    };
    Some(bound(read)?.max(bound(write)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stores::backend::properties::{
        assert_each_name_once, metadata_of as metadata, read_of,
    };

    fn settings(pairs: &[(&str, &str)]) -> RedisSettings {
        read_of(RedisSettings::from_metadata, pairs).unwrap()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        read_of(RedisSettings::from_metadata, pairs).unwrap_err()
    }

    #[test]
    fn the_table_names_each_property_once() {
        assert_each_name_once(NAMES);
        assert_eq!(handling("REDISHOST"), Some(Implemented));
        assert_eq!(handling("redisHots"), None);
    }

    #[test]
    fn implemented_properties_are_read_with_daprs_names() {
        let s = settings(&[
            ("redisHost", "localhost:6380"),
            ("redisPassword", "secret"),
            ("RedisUsername", "app"),
            ("redisDB", "3"),
            ("enableTLS", "True"),
            ("insecureSkipTLSVerify", "1"),
            ("clientCert", "CERT"),
            ("clientKey", "KEY"),
            ("dialTimeout", "2s"),
            ("readTimeout", "750"),
            ("writeTimeout", "500ms"),
            ("keyPrefix", "none"),
        ]);
        assert_eq!(
            s,
            RedisSettings {
                host: "localhost".into(),
                port: 6380,
                more_addresses: Vec::new(),
                username: Some("app".into()),
                password: Some(Redacted("secret".into())),
                db: 3,
                tls: Some(TlsSettings {
                    verify: false,
                    client: Some(ClientIdentity {
                        cert: "CERT".into(),
                        key: Redacted("KEY".into()),
                    }),
                }),
                topology: Topology::Node,
                dial_timeout: Duration::from_secs(2),
                response_timeout: Some(Duration::from_millis(750)),
            }
        );
        assert!(!format!("{s:?}").contains("secret") && !format!("{s:?}").contains("KEY"));
        let defaults = settings(&[("redisHost", "redis")]);
        assert_eq!(
            (
                defaults.port,
                defaults.db,
                &defaults.tls,
                &defaults.topology
            ),
            (6379, 0, &None, &Topology::Node)
        );
        assert_eq!(
            (defaults.dial_timeout, defaults.response_timeout),
            (DEFAULT_DIAL_TIMEOUT, Some(DEFAULT_RESPONSE_TIMEOUT))
        );
        assert_eq!(defaults.password, None);
        // TLS verifies certificates unless told otherwise, as in Dapr 1.18.
        let tls = settings(&[("redisHost", "redis"), ("enableTLS", "true")]);
        assert_eq!(
            tls.tls,
            Some(TlsSettings {
                verify: true,
                client: None
            })
        );
    }

    #[test]
    fn addresses_take_redis_port_and_lists() {
        let address = |pairs: &[(&str, &str)]| {
            let s = settings(pairs);
            (s.host, s.port)
        };
        assert_eq!(
            address(&[("redisHost", "redis"), ("redisPort", "6390")]),
            ("redis".into(), 6390)
        );
        assert_eq!(
            address(&[("redisHost", "redis:6390"), ("redisPort", "6390")]),
            ("redis".into(), 6390)
        );
        assert_eq!(
            address(&[("redisHost", "[::1]:7000")]),
            ("::1".into(), 7000)
        );
        assert_eq!(address(&[("redisHost", "::1")]), ("::1".into(), 6379));
        let cluster = settings(&[("redisHost", "a:7000, b ,c:7002"), ("redisType", "cluster")]);
        assert_eq!(
            cluster.addresses().collect::<Vec<_>>(),
            [("a", 7000), ("b", 6379), ("c", 7002)]
        );
        assert_eq!(cluster.describe(), "a:7000,b:6379,c:7002");
        assert!(
            err(&[("redisHost", "redis:6390"), ("redisPort", "6391")])
                .contains("redisPort is 6391")
        );
        assert!(err(&[("redisHost", "h:port")]).contains("invalid port"));
        assert!(err(&[("redisHost", "a:1,b:2")]).contains("lists 2 addresses"));
        assert!(err(&[("redisHost", "a:1,,b:2"), ("redisType", "cluster")]).contains("no host"));
    }

    #[test]
    fn failover_finds_the_master_through_the_sentinels() {
        let s = settings(&[
            ("redisHost", "s1:26379,s2:26380"),
            ("failover", "true"),
            ("sentinelMasterName", "mymaster"),
            ("sentinelUsername", "watcher"),
            ("sentinelPassword", "s-secret"),
            ("redisPassword", "m-secret"),
            ("redisDB", "2"),
        ]);
        assert_eq!(
            s.topology,
            Topology::Sentinel(SentinelSettings {
                master_name: "mymaster".into(),
                username: Some("watcher".into()),
                password: Some(Redacted("s-secret".into())),
            })
        );
        assert_eq!(
            s.addresses().collect::<Vec<_>>(),
            [("s1", 26379), ("s2", 26380)]
        );
        assert_eq!((s.db, &s.password), (2, &Some(Redacted("m-secret".into()))));
        assert_eq!(
            s.describe(),
            r#"master "mymaster" of the Sentinels at s1:26379,s2:26380"#
        );
        // Dapr lists `sentinel` among redisType's values: it means the same with failover.
        let typed = settings(&[
            ("redisHost", "s1:26379"),
            ("redisType", "sentinel"),
            ("failover", "true"),
            ("sentinelMasterName", "m"),
        ]);
        assert!(matches!(typed.topology, Topology::Sentinel(_)));
    }

    #[test]
    fn settings_that_would_silently_change_where_locks_live_are_refused() {
        let sentinel = [("redisHost", "s:26379"), ("failover", "true")];
        assert!(err(&sentinel).contains("failover is true but sentinelMasterName is empty"));
        for name in ["sentinelMasterName", "sentinelUsername", "sentinelPassword"] {
            assert!(
                err(&[("redisHost", "h"), (name, "x")])
                    .contains(&format!("{name} is set but failover is not true")),
                "{name}"
            );
            assert!(
                err(&[("redisHost", "h"), ("failover", "false"), (name, "x")])
                    .contains("failover is not true"),
                "{name}"
            );
        }
        assert!(
            err(&[("redisHost", "h"), ("redisType", "sentinel")])
                .contains("redisType is sentinel but failover is not true")
        );
        assert!(
            err(&[
                ("redisHost", "h"),
                ("redisType", "cluster"),
                ("failover", "true"),
                ("sentinelMasterName", "m")
            ])
            .contains("Sentinel-managed clusters are not supported")
        );
        assert!(
            err(&[
                ("redisHost", "h"),
                ("redisType", "cluster"),
                ("redisDB", "1")
            ])
            .contains("only database 0")
        );
        assert!(err(&[("redisHost", "h"), ("redisType", "ring")]).contains("redisType \"ring\""));
        assert!(err(&[("redisHost", "h"), ("redisDB", "-1")]).contains("redisDB"));
        for name in ["clientCert", "clientKey"] {
            assert!(
                err(&[("redisHost", "h"), (name, "PEM")])
                    .contains(&format!("{name} is set but enableTLS is not true")),
                "{name}"
            );
        }
        assert!(
            err(&[("redisHost", "h"), ("insecureSkipTLSVerify", "true")])
                .contains("insecureSkipTLSVerify is set but enableTLS is not true")
        );
        let tls = [("redisHost", "h"), ("enableTLS", "true")];
        assert!(err(&[tls[0], tls[1], ("clientCert", "C")]).contains("without clientKey"));
        assert!(err(&[tls[0], tls[1], ("clientKey", "K")]).contains("without clientCert"));
    }

    #[test]
    fn refused_switches_are_refused_when_true_and_accepted_when_false() {
        let refused: Vec<_> = NAMES
            .iter()
            .filter(|(_, h)| matches!(h, RefusedWhenTrue(_)))
            .collect();
        assert_eq!(refused.len(), 3);
        for (name, handling) in refused {
            let RefusedWhenTrue(why) = handling else {
                unreachable!()
            };
            assert_eq!(
                err(&[("redisHost", "h"), (name, "true")]),
                format!("metadata property {name} is true: {why}")
            );
            assert!(err(&[("redisHost", "h"), (name, "maybe")]).contains("expected true or false"));
            settings(&[("redisHost", "h"), (name, "false")]);
            assert_eq!(RedisSettings::unused(&metadata(&[(name, "false")])), []);
        }
    }

    #[test]
    fn ignored_and_unknown_properties_are_accepted_and_reported() {
        let ignored: Vec<_> = NAMES
            .iter()
            .filter_map(|(name, h)| match h {
                Ignored(why) => Some((*name, *why)),
                _ => None,
            })
            .collect();
        assert!(ignored.len() > 10);
        let mut pairs = vec![("redisHost", "h"), ("redisHots", "typo")];
        pairs.extend(ignored.iter().map(|(name, _)| (*name, "not even parsed")));
        let all = metadata(&pairs);
        let s = RedisSettings::from_metadata(&all).unwrap();
        assert_eq!(s, settings(&[("redisHost", "h")]));
        let mut expected: Vec<_> = ignored
            .iter()
            .map(|(name, why)| Unused::Ignored {
                name: name.to_string(),
                why,
            })
            .collect();
        expected.push(Unused::Unknown {
            name: "redisHots".into(),
            reader: "Dapr's lock.redis",
        });
        expected.sort_by_key(|u| match u {
            Unused::Ignored { name, .. } | Unused::Unknown { name, .. } => name.clone(),
        });
        let found = RedisSettings::unused(&all);
        assert_eq!(found, expected);
        let unknown: Vec<_> = found.iter().filter(|u| u.is_unknown()).collect();
        assert_eq!(
            unknown,
            [&Unused::Unknown {
                name: "redisHots".into(),
                reader: "Dapr's lock.redis",
            }]
        );
        assert_eq!(
            Unused::Unknown {
                name: "redisHots".into(),
                reader: "Dapr's lock.redis",
            }
            .to_string(),
            "metadata property redisHots is not one Dapr's lock.redis reads; ignored (as daprd does)"
        );
        assert_eq!(
            Unused::Ignored {
                name: "poolSize".into(),
                why: POOL
            }
            .to_string(),
            format!("metadata property poolSize is ignored: {POOL}")
        );
    }

    #[test]
    fn timeouts_follow_daprs_syntax() {
        let response = |read: &str, write: &str| {
            settings(&[
                ("redisHost", "h"),
                ("readTimeout", read),
                ("writeTimeout", write),
            ])
            .response_timeout
        };
        assert_eq!(response("0", "0"), Some(DEFAULT_RESPONSE_TIMEOUT));
        assert_eq!(response("-1", "2s"), None);
        assert_eq!(response("1m30s", "100"), Some(Duration::from_secs(90)));
        assert!(err(&[("redisHost", "h"), ("dialTimeout", "soon")]).contains("dialTimeout"));
        assert!(err(&[("redisHost", "h"), ("dialTimeout", "-1")]).contains("dialTimeout"));
        assert_eq!(
            settings(&[("redisHost", "h"), ("dialTimeout", "0")]).dial_timeout,
            DEFAULT_DIAL_TIMEOUT
        );
    }

    #[test]
    fn errors_name_the_property() {
        assert_eq!(err(&[]), "metadata property redisHost is empty");
        assert_eq!(
            err(&[("redisHost", " ")]),
            "metadata property redisHost is empty"
        );
        assert!(err(&[("redisHost", "h:1"), ("enableTLS", "yes")]).contains("enableTLS"));
        assert!(err(&[("redisHost", "h:1"), ("redisPort", "x")]).contains("redisPort"));
    }
}
