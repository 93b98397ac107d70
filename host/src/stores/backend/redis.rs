//! `lock.redis`: locks in Redis with the exact data layout of Dapr's `lock.redis` component,
//! so wasilock hosts and Dapr sidecars can share one Redis.
//!
//! A lock is the key `lock||<prefix>||<resourceId>` with the owner as value and a TTL set by
//! Redis. Acquire is one `SET key owner PX ms NX GET` (Redis 7 or newer); every other swap,
//! release included, is one Lua script (`EVALSHA`, loaded on first use) that reads and
//! writes atomically, like Dapr's unlock script. One round trip per operation.

use super::{Backend, CasOutcome};
use anyhow::{Context, bail};
use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Script, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Compare-and-swap in one script. KEYS[1] = key; ARGV = expected given ("1"/"0"), expected,
/// new given ("1"/"0"), new, ttl in ms ("" = none). Returns {1} when swapped, {0} or
/// {0, live} on a conflict.
const CAS_SCRIPT: &str = r#"
local v = redis.call("get", KEYS[1])
local matches
if ARGV[1] == "1" then matches = (v == ARGV[2]) else matches = (v == false) end
if not matches then
  if v == false then return {0} end
  return {0, v}
end
if ARGV[3] == "1" then
  if ARGV[5] ~= "" then
    redis.call("set", KEYS[1], ARGV[4], "PX", ARGV[5])
  else
    redis.call("set", KEYS[1], ARGV[4])
  end
else
  redis.call("del", KEYS[1])
end
return {1}
"#;

/// Settings from the component's metadata, with Dapr's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redisHost`: `host:port`.
    pub host: String,
    /// The port part of `redisHost` (6379 when it has none).
    pub port: u16,
    /// `redisUsername`.
    pub username: Option<String>,
    /// `redisPassword`.
    pub password: Option<String>,
    /// `redisDB`.
    pub db: i64,
    /// `enableTLS`: TLS without certificate verification, as Dapr does.
    pub tls: bool,
    /// `redisType: cluster`.
    pub cluster: bool,
    /// `dialTimeout`.
    pub dial_timeout: Duration,
    /// `readTimeout`/`writeTimeout`: the bound on one request's answer.
    pub response_timeout: Duration,
}

const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

impl RedisSettings {
    /// Reads Dapr's metadata names (case-insensitive, as Dapr's metadata decoder).
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let Some(address) = get("redisHost") else {
            bail!("metadata property redisHost is empty");
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .with_context(|| format!("redisHost {address:?}: invalid port"))?,
            ),
            None => (address, 6379),
        };
        let duration = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            get(name).map_or(Ok(default), |v| {
                parse_duration(v).with_context(|| format!("metadata property {name} {v:?}"))
            })
        };
        let flag = |name: &str| -> anyhow::Result<bool> {
            get(name).map_or(Ok(false), |v| {
                v.to_lowercase().parse().with_context(|| {
                    format!("metadata property {name} {v:?}: expected true or false")
                })
            })
        };
        let cluster = match get("redisType").map(str::to_lowercase).as_deref() {
            None | Some("node") => false,
            Some("cluster") => true,
            Some(other) => bail!("metadata property redisType {other:?}: expected node or cluster"),
        };
        let read = duration("readTimeout", DEFAULT_RESPONSE_TIMEOUT)?;
        let write = duration("writeTimeout", DEFAULT_RESPONSE_TIMEOUT)?;
        Ok(RedisSettings {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            username: get("redisUsername").map(str::to_string),
            password: get("redisPassword").map(str::to_string),
            db: get("redisDB").map_or(Ok(0), |v| {
                v.parse()
                    .with_context(|| format!("metadata property redisDB {v:?}"))
            })?,
            tls: flag("enableTLS")?,
            cluster,
            dial_timeout: duration("dialTimeout", DEFAULT_DIAL_TIMEOUT)?,
            response_timeout: read.max(write),
        })
    }

    fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: true,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let mut redis = RedisConnectionInfo::default().set_db(self.db);
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        Ok(addr.into_connection_info()?.set_redis_settings(redis))
    }
}

/// A Go-style duration (`5s`, `500ms`, `1m30s`), or a bare number of milliseconds.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    Ok(humantime::parse_duration(text)?)
}

/// One connection, to a single node or to a cluster; both reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A lock store in Redis.
pub struct RedisBackend {
    connection: Connection,
    cas: Script,
    address: String,
}

impl RedisBackend {
    /// Connects; fails when Redis cannot be reached within the dial timeout.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.host, settings.port);
        let info = settings.connection_info()?;
        let connect = async {
            Ok::<_, redis::RedisError>(if settings.cluster {
                let client = ClusterClientBuilder::new(vec![info])
                    .connection_timeout(settings.dial_timeout)
                    .response_timeout(settings.response_timeout)
                    .build()?;
                Connection::Cluster(client.get_async_connection().await?)
            } else {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(settings.dial_timeout))
                    .set_response_timeout(Some(settings.response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let client = redis::Client::open(info)?;
                Connection::Node(ConnectionManager::new_with_config(client, config).await?)
            })
        };
        let connection = tokio::time::timeout(settings.dial_timeout, connect)
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {:?}", settings.dial_timeout))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to Redis at {address}"))?;
        Ok(RedisBackend {
            connection,
            cas: Script::new(CAS_SCRIPT),
            address,
        })
    }

    async fn query(&self, cmd: &Cmd) -> anyhow::Result<Value> {
        let result = match self.connection.clone() {
            Connection::Node(mut c) => c.req_packed_command(cmd).await,
            Connection::Cluster(mut c) => c.req_packed_command(cmd).await,
        };
        result.with_context(|| format!("Redis at {}", self.address))
    }

    async fn run_cas_script(&self, args: [&[u8]; 5], key: &str) -> anyhow::Result<Value> {
        let mut invocation = self.cas.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let result = match self.connection.clone() {
            Connection::Node(mut c) => invocation.invoke_async(&mut c).await,
            Connection::Cluster(mut c) => invocation.invoke_async(&mut c).await,
        };
        result.with_context(|| format!("Redis at {}", self.address))
    }
}

fn bytes(value: Value) -> anyhow::Result<Option<Vec<u8>>> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        other => bail!("unexpected Redis reply {other:?}"),
    }
}

#[async_trait]
impl Backend for RedisBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        bytes(self.query(redis::cmd("GET").arg(key)).await?)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<CasOutcome> {
        let ttl_ms = ttl.map(|ttl| ttl.as_millis().max(1).to_string());
        if let (None, Some(value)) = (expected, new) {
            // Acquire: Dapr's `SET key owner EX n NX`, in milliseconds, returning the holder.
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ms) = &ttl_ms {
                cmd.arg("PX").arg(ms);
            }
            cmd.arg("NX").arg("GET");
            return Ok(match bytes(self.query(&cmd).await?)? {
                None => CasOutcome::Swapped,
                live => CasOutcome::Conflict(live),
            });
        }
        let flag = |given: bool| {
            if given {
                b"1".as_slice()
            } else {
                b"0".as_slice()
            }
        };
        let args = [
            flag(expected.is_some()),
            expected.unwrap_or_default(),
            flag(new.is_some()),
            new.unwrap_or_default(),
            ttl_ms.as_deref().unwrap_or_default().as_bytes(),
        ];
        match self.run_cas_script(args, key).await? {
            Value::Array(reply) => match reply.as_slice() {
                [Value::Int(1)] => Ok(CasOutcome::Swapped),
                [Value::Int(0)] => Ok(CasOutcome::Conflict(None)),
                [Value::Int(0), live] => Ok(CasOutcome::Conflict(bytes(live.clone())?)),
                other => bail!("unexpected reply from the compare-and-swap script: {other:?}"),
            },
            other => bail!("unexpected reply from the compare-and-swap script: {other:?}"),
        }
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        // Redis expires keys itself.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_from_daprs_metadata_names() {
        let s = RedisSettings::from_metadata(&metadata(&[
            ("redisHost", "localhost:6380"),
            ("redisPassword", "secret"),
            ("RedisUsername", "app"),
            ("redisDB", "3"),
            ("enableTLS", "True"),
            ("redisType", "cluster"),
            ("dialTimeout", "2s"),
            ("readTimeout", "750"),
            ("writeTimeout", "500ms"),
        ]))
        .unwrap();
        assert_eq!(
            s,
            RedisSettings {
                host: "localhost".into(),
                port: 6380,
                username: Some("app".into()),
                password: Some("secret".into()),
                db: 3,
                tls: true,
                cluster: true,
                dial_timeout: Duration::from_secs(2),
                response_timeout: Duration::from_millis(750),
            }
        );
        let defaults = RedisSettings::from_metadata(&metadata(&[("redisHost", "redis")])).unwrap();
        assert_eq!(
            (defaults.port, defaults.db, defaults.tls, defaults.cluster),
            (6379, 0, false, false)
        );
        assert_eq!(defaults.password, None);
    }

    #[test]
    fn settings_errors_are_clear() {
        let err = |pairs: &[(&str, &str)]| {
            format!(
                "{:#}",
                RedisSettings::from_metadata(&metadata(pairs)).unwrap_err()
            )
        };
        assert_eq!(err(&[]), "metadata property redisHost is empty");
        assert_eq!(
            err(&[("redisHost", "")]),
            "metadata property redisHost is empty"
        );
        assert!(err(&[("redisHost", "h:port")]).contains("invalid port"));
        assert!(err(&[("redisHost", "h:1"), ("redisType", "sentinel")]).contains("redisType"));
        assert!(err(&[("redisHost", "h:1"), ("enableTLS", "yes")]).contains("enableTLS"));
        assert!(err(&[("redisHost", "h:1"), ("dialTimeout", "soon")]).contains("dialTimeout"));
    }
}
