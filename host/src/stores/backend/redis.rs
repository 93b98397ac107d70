//! `lock.redis`: locks in Redis with the exact data layout of Dapr's `lock.redis` component,
//! so wasilock hosts and Dapr sidecars can share one Redis.
//!
//! A lock is the key `lock||<prefix>||<resourceId>` with the owner as value and a TTL set by
//! Redis. Acquire is one `SET key owner PX ms NX GET` (Redis 7 or newer); every other swap,
//! release included, is one Lua script (`EVALSHA`, loaded on first use) that reads and
//! writes atomically, like Dapr's unlock script. One round trip per operation.
//!
//! - [`settings`]: the component metadata, name by name;
//! - [`failover`]: the master of a Sentinel-watched Redis, followed across failovers.

mod failover;
mod settings;

pub use settings::RedisSettings;

use super::{Backend, CasOutcome, Metadata, OpenContext, Opened, Remark, StoreKind};
use anyhow::{Context, bail};
use async_trait::async_trait;
use failover::FailoverConnection;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    Script, TlsCertificates, TlsMode, Value,
};
use settings::{Redacted, TlsSettings, Topology};
use std::sync::Arc;
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

/// The kind `lock.redis`: [`RedisSettings`] from Dapr's metadata names; one connection per
/// store, kept on reload while the settings stay equal.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisKind;

#[async_trait]
impl StoreKind for RedisKind {
    const TYPE_NAME: &'static str = "lock.redis";
    type Settings = RedisSettings;

    fn settings(&self, metadata: &Metadata) -> anyhow::Result<RedisSettings> {
        RedisSettings::from_metadata(metadata)
    }

    fn remarks(&self, metadata: &Metadata) -> Vec<Remark> {
        RedisSettings::unused(metadata)
            .into_iter()
            .map(|unused| match unused.is_unknown() {
                true => Remark::Warn(unused.to_string()),
                false => Remark::Info(unused.to_string()),
            })
            .collect()
    }

    async fn open(
        &self,
        settings: &RedisSettings,
        _context: OpenContext<'_>,
    ) -> anyhow::Result<Opened> {
        let location = format!("redis {} db {}", settings.describe(), settings.db);
        Ok(Opened {
            backend: Arc::new(RedisBackend::connect(settings).await?),
            location,
        })
    }
}

/// One connection per store: to a server, a cluster, or the master the Sentinels name.
/// Each finds its server again after a failure by itself.
enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
    Failover(Box<FailoverConnection>),
}

/// The client certificate of `tls`, in the form the `redis` crate takes it.
fn client_certificates(tls: &TlsSettings) -> Option<TlsCertificates> {
    tls.client.as_ref().map(|client| TlsCertificates {
        client_tls: Some(ClientTlsConfig {
            client_cert: client.cert.as_bytes().to_vec(),
            client_key: client.key.0.as_bytes().to_vec(),
        }),
        root_cert: None,
    })
}

/// The address of the server (or Sentinel) at `host:port`, over TLS when `tls` is set.
fn server_address(tls: Option<&TlsSettings>, host: &str, port: u16) -> ConnectionAddr {
    match tls {
        Some(tls) => ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: !tls.verify,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host.to_string(), port),
    }
}

/// `AUTH` credentials.
fn credentials(username: Option<&str>, password: Option<&Redacted>) -> RedisConnectionInfo {
    let mut redis = RedisConnectionInfo::default();
    if let Some(username) = username {
        redis = redis.set_username(username);
    }
    if let Some(password) = password {
        redis = redis.set_password(&password.0);
    }
    redis
}

/// How to reach and log in to the data server at `host:port` (not a Sentinel).
fn connection_info(
    settings: &RedisSettings,
    host: &str,
    port: u16,
) -> redis::RedisResult<ConnectionInfo> {
    let redis = credentials(settings.username.as_deref(), settings.password.as_ref());
    Ok(server_address(settings.tls.as_ref(), host, port)
        .into_connection_info()?
        .set_redis_settings(redis.set_db(settings.db)))
}

/// A client for `info` that presents the client certificate of `tls`, if there is one.
fn client(info: ConnectionInfo, tls: Option<&TlsSettings>) -> redis::RedisResult<redis::Client> {
    match tls.and_then(client_certificates) {
        Some(certificates) => redis::Client::build_with_tls(info, certificates),
        None => redis::Client::open(info),
    }
}

/// Refuses a server with replicas, as Dapr's `lock.redis` does without `failover`: a lock
/// the master acknowledged can be lost when a replica takes over.
async fn refuse_replicas(connection: &mut ConnectionManager) -> anyhow::Result<()> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(connection)
        .await?;
    let replicas = info
        .lines()
        .find_map(|line| line.strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if replicas > 0 {
        bail!(
            "it has {replicas} connected replica(s): replication is not supported without failover (as in Dapr), since a replica that takes over can lack locks the master acknowledged; use failover: true with Redis Sentinel"
        );
    }
    Ok(())
}

/// A lock store in Redis.
pub struct RedisBackend {
    connection: Connection,
    cas: Script,
    address: String,
}

impl RedisBackend {
    /// Connects; fails when Redis cannot be reached within the dial timeout, and when a
    /// server reached without `failover` has replicas (as Dapr's `lock.redis`).
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let address = settings.describe();
        let connect = async {
            Ok::<_, redis::RedisError>(match &settings.topology {
                Topology::Node => {
                    let info = connection_info(settings, &settings.host, settings.port)?;
                    let client = client(info, settings.tls.as_ref())?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(settings.dial_timeout))
                        .set_response_timeout(settings.response_timeout)
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_secs(1));
                    Connection::Node(ConnectionManager::new_with_config(client, config).await?)
                }
                Topology::Cluster => {
                    let nodes = settings
                        .addresses()
                        .map(|(host, port)| connection_info(settings, host, port))
                        .collect::<redis::RedisResult<Vec<_>>>()?;
                    let mut builder =
                        ClusterClientBuilder::new(nodes).connection_timeout(settings.dial_timeout);
                    if let Some(timeout) = settings.response_timeout {
                        builder = builder.response_timeout(timeout);
                    }
                    if let Some(tls) = &settings.tls {
                        builder = builder.tls(if tls.verify {
                            TlsMode::Secure
                        } else {
                            TlsMode::Insecure
                        });
                        if let Some(certificates) = client_certificates(tls) {
                            builder = builder.certs(certificates);
                        }
                    }
                    Connection::Cluster(builder.build()?.get_async_connection().await?)
                }
                Topology::Sentinel(_) => {
                    Connection::Failover(Box::new(FailoverConnection::connect(settings).await?))
                }
            })
        };
        let mut connection = tokio::time::timeout(settings.dial_timeout, connect)
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {:?}", settings.dial_timeout))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to Redis at {address}"))?;
        if let Connection::Node(manager) = &mut connection {
            refuse_replicas(manager)
                .await
                .with_context(|| format!("Redis at {address}"))?;
        }
        Ok(RedisBackend {
            connection,
            cas: Script::new(CAS_SCRIPT),
            address,
        })
    }

    async fn query(&self, cmd: &Cmd) -> anyhow::Result<Value> {
        let result = match &self.connection {
            Connection::Node(c) => c.clone().req_packed_command(cmd).await,
            Connection::Cluster(c) => c.clone().req_packed_command(cmd).await,
            Connection::Failover(f) => match f.master().await {
                Ok(mut master) => master.req_packed_command(cmd).await,
                Err(e) => Err(e),
            },
        };
        result.with_context(|| format!("Redis at {}", self.address))
    }

    async fn run_cas_script(&self, args: [&[u8]; 5], key: &str) -> anyhow::Result<Value> {
        let mut invocation = self.cas.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let result = match &self.connection {
            Connection::Node(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Failover(f) => match f.master().await {
                Ok(mut master) => invocation.invoke_async(&mut master).await,
                Err(e) => Err(e),
            },
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
