//! `lock.redis`: locks in Redis with the exact data layout of Dapr's `lock.redis` component,
//! so wasilock hosts and Dapr sidecars can share one Redis.
//!
//! A lock is the key `lock||<prefix>||<resourceId>` with the owner (alpha1) or lock ID
//! (alpha2) as value and a TTL set by Redis; its fencing counter is the key
//! `fence||<prefix>||<resourceId>` ([`keys::fence_key`](crate::stores::keys::fence_key)),
//! which Dapr never reads and nothing deletes. Acquire is one Lua script (`EVALSHA`, loaded
//! on first use) doing Dapr's `SET key owner PX ms NX` and, when it succeeds, `INCR` of the
//! counter, atomically; every other swap, release included, is one script that reads and
//! writes atomically, like Dapr's unlock script. One round trip per operation.
//!
//! A release also publishes the lock key on the channel `wasilock||released`; each host
//! on a single Redis server subscribes, so its waiters wake when another host releases
//! (with Sentinel or a cluster, waiters wake on their own host's releases and at the
//! holder's expiry).
//!
//! The token is as durable as Redis makes the counter: with `appendfsync always` it never
//! goes back; with weaker persistence a crash can lose the last increments, and a Sentinel
//! failover can lose what the old master had not replicated, so a token can repeat.
//!
//! - [`settings`]: the component metadata, name by name;
//! - [`failover`]: the master of a Sentinel-watched Redis, followed across failovers;
//! - [`address`]: how to reach and log in to one Redis server.

mod address;
mod failover;
mod settings;

pub use settings::RedisSettings;

use super::{Backend, CasOutcome, Inspected, OpenContext, Opened, StoreKind, Swap};
use crate::stores::events::ReleaseEvents;
use crate::stores::keys::fence_key;
use address::{client, client_certificates, connection_info};
use anyhow::{Context, bail};
use async_trait::async_trait;
use failover::FailoverConnection;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Script, TlsMode, Value};
use settings::Topology;
use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

/// Acquire in one script: Dapr's `SET NX`, and on success the next fencing token.
/// KEYS[1] = key, KEYS[2] = its fence key; ARGV = value, ttl in ms ("" = none). Returns
/// {1, token} when set, {0, live} when held.
const ACQUIRE_SCRIPT: &str = r#"
local ok
if ARGV[2] ~= "" then
  ok = redis.call("set", KEYS[1], ARGV[1], "PX", ARGV[2], "NX")
else
  ok = redis.call("set", KEYS[1], ARGV[1], "NX")
end
if ok then return {1, redis.call("incr", KEYS[2])} end
return {0, redis.call("get", KEYS[1])}
"#;

/// Compare-and-swap in one script. KEYS[1] = key, KEYS[2] = its fence key; ARGV = expected
/// given ("1"/"0"), expected, new given ("1"/"0"), new, ttl in ms ("" = none). Returns
/// {1, token} when swapped (the next token on a grant, else the current one), {0} or
/// {0, live} on a conflict.
const CAS_SCRIPT: &str = r#"
local v = redis.call("get", KEYS[1])
local matches
if ARGV[1] == "1" then matches = (v == ARGV[2]) else matches = (v == false) end
if not matches then
  if v == false then return {0} end
  return {0, v}
end
local token
if v == false and ARGV[3] == "1" then
  token = redis.call("incr", KEYS[2])
else
  token = tonumber(redis.call("get", KEYS[2]) or "0")
end
if ARGV[3] == "1" then
  if ARGV[5] ~= "" then
    redis.call("set", KEYS[1], ARGV[4], "PX", ARGV[5])
  else
    redis.call("set", KEYS[1], ARGV[4])
  end
else
  redis.call("del", KEYS[1])
  redis.call("publish", "wasilock||released", KEYS[1])
end
return {1, token}
"#;

/// The channel every release is published on (the lock key as message), so that the hosts
/// sharing a Redis wake their waiters; `||` keeps it apart from any channel of Dapr's.
const RELEASED_CHANNEL: &str = "wasilock||released";

/// The live value with its token and remaining lifetime. KEYS[1] = key, KEYS[2] = its fence
/// key. Returns {0} when absent, else {1, value, token, pttl} (pttl -1 = no expiry).
const INSPECT_SCRIPT: &str = r#"
local v = redis.call("get", KEYS[1])
if v == false then return {0} end
return {1, v, redis.call("get", KEYS[2]) or "0", redis.call("pttl", KEYS[1])}
"#;

/// The kind `lock.redis`: [`RedisSettings`] from Dapr's metadata names; one connection per
/// store, kept on reload while the settings stay equal.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisKind;

#[async_trait]
impl StoreKind for RedisKind {
    const TYPE_NAME: &'static str = "lock.redis";
    type Settings = RedisSettings;

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
    /// A client for the release subscription (a single server only).
    subscriber: Option<redis::Client>,
    acquire: Script,
    cas: Script,
    inspect: Script,
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
        let subscriber = match &settings.topology {
            Topology::Node => connection_info(settings, &settings.host, settings.port)
                .and_then(|info| client(info, settings.tls.as_ref()))
                .ok(),
            _ => None,
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
            subscriber,
            acquire: Script::new(ACQUIRE_SCRIPT),
            cas: Script::new(CAS_SCRIPT),
            inspect: Script::new(INSPECT_SCRIPT),
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

    /// The fence key of `key`; in a cluster, one in the same hash slot (scripts may only
    /// touch keys of one slot).
    fn fence_key(&self, key: &str) -> String {
        match self.connection {
            Connection::Cluster(_) => same_slot_fence_key(key),
            _ => fence_key(key),
        }
    }

    /// Runs `script` on `key` and its fence key with `args`: one round trip.
    async fn run_script(
        &self,
        script: &Script,
        key: &str,
        args: &[&[u8]],
    ) -> anyhow::Result<Value> {
        let mut invocation = script.key(key);
        invocation.key(self.fence_key(key));
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

/// The reply of the acquire and compare-and-swap scripts.
fn cas_reply(reply: Value) -> anyhow::Result<CasOutcome> {
    match reply {
        Value::Array(reply) => match reply.as_slice() {
            [Value::Int(1), Value::Int(token)] => Ok(CasOutcome::Swapped(
                u64::try_from(*token).context("a negative fencing token")?,
            )),
            [Value::Int(0)] => Ok(CasOutcome::Conflict(None)),
            [Value::Int(0), live] => Ok(CasOutcome::Conflict(bytes(live.clone())?)),
            other => bail!("unexpected reply from the compare-and-swap script: {other:?}"),
        },
        other => bail!("unexpected reply from the compare-and-swap script: {other:?}"),
    }
}

/// A fence key in the hash slot of `key`, for Redis Cluster: the key's own hash tag when it
/// has one (the `fence||` prefix has no braces, so `{…}` stays the first tag), else the
/// whole key as the tag. A key with a `}` but no tag of its own cannot be tagged: its fence
/// key is the plain one and a cluster refuses the script (`CROSSSLOT`).
fn same_slot_fence_key(key: &str) -> String {
    let has_tag = key
        .find('{')
        .is_some_and(|open| key[open + 1..].find('}').is_some_and(|len| len > 0));
    if has_tag || key.contains('}') {
        fence_key(key)
    } else {
        format!("fence||{{{key}}}")
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

    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
        let key = swap.key;
        let ttl_ms = swap.ttl.map(|ttl| ttl.as_millis().max(1).to_string());
        let ttl_arg = ttl_ms.as_deref().unwrap_or_default().as_bytes();
        if let (None, Some(value)) = (swap.expected, swap.new) {
            // Acquire: Dapr's `SET key owner EX n NX`, in milliseconds, and the next token.
            let reply = self
                .run_script(&self.acquire, key, &[value, ttl_arg])
                .await?;
            return cas_reply(reply);
        }
        let flag = |given: bool| {
            if given {
                b"1".as_slice()
            } else {
                b"0".as_slice()
            }
        };
        let args = [
            flag(swap.expected.is_some()),
            swap.expected.unwrap_or_default(),
            flag(swap.new.is_some()),
            swap.new.unwrap_or_default(),
            ttl_arg,
        ];
        cas_reply(self.run_script(&self.cas, key, &args).await?)
    }

    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
        let reply = self.run_script(&self.inspect, key, &[]).await?;
        let unexpected = |other: &dyn std::fmt::Debug| {
            anyhow::anyhow!("unexpected reply from the inspect script: {other:?}")
        };
        match reply {
            Value::Array(reply) => match reply.as_slice() {
                [Value::Int(0)] => Ok(None),
                [Value::Int(1), value, token, Value::Int(pttl)] => {
                    let value = bytes(value.clone())?.ok_or_else(|| unexpected(value))?;
                    let token = bytes(token.clone())?
                        .and_then(|t| std::str::from_utf8(&t).ok()?.parse::<u64>().ok())
                        .ok_or_else(|| unexpected(token))?;
                    Ok(Some(Inspected {
                        value,
                        fencing_token: token,
                        ttl: u64::try_from(*pttl).ok().map(Duration::from_millis),
                    }))
                }
                other => Err(unexpected(&other)),
            },
            other => Err(unexpected(&other)),
        }
    }

    fn watch_releases(&self, events: Weak<ReleaseEvents>) {
        if let Some(client) = self.subscriber.clone() {
            tokio::spawn(forward_releases(client, events, self.address.clone()));
        }
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        // Redis expires keys itself.
        Ok(0)
    }
}

/// Subscribes to [`RELEASED_CHANNEL`] and tells `events` every key released, until the
/// store is gone; after a lost connection, subscribes again (waiters meanwhile wake at the
/// holder's expiry).
async fn forward_releases(client: redis::Client, events: Weak<ReleaseEvents>, address: String) {
    use futures_util::StreamExt;
    while events.strong_count() > 0 {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(RELEASED_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match subscribed.await {
            Ok(pubsub) => {
                let mut messages = pubsub.into_on_message();
                loop {
                    let next = tokio::time::timeout(Duration::from_secs(1), messages.next());
                    match next.await {
                        Ok(Some(message)) => {
                            let Some(events) = events.upgrade() else {
                                return;
                            };
                            if let Ok(key) = std::str::from_utf8(message.get_payload_bytes()) {
                                events.released(key);
                            }
                        }
                        Ok(None) => break,
                        // Checks now and then whether the store is still there.
                        Err(_) if events.strong_count() == 0 => return,
                        Err(_) => {}
                    }
                }
            }
            Err(e) => {
                tracing::debug!("Redis at {address}: cannot subscribe to releases: {e}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::same_slot_fence_key;

    #[test]
    fn cluster_fence_keys_share_the_lock_keys_slot() {
        assert_eq!(same_slot_fence_key("lock||a||r"), "fence||{lock||a||r}");
        assert_eq!(same_slot_fence_key("lock||a||x{t}y"), "fence||a||x{t}y");
        assert_eq!(same_slot_fence_key("lock||a||x{y"), "fence||{lock||a||x{y}");
    }
}
