//! The master of a Redis watched by Sentinels (`failover: true`), followed across failovers.
//!
//! The master's address is asked of the Sentinels (which check that it answers as master),
//! and one multiplexed connection to it is kept until one of these drops it:
//! - a Sentinel announces `+switch-master` for this master (a background task listens to
//!   one Sentinel at a time): the old master may still accept writes until the Sentinels
//!   demote it, and those would be lost, so it is left at once;
//! - a call fails on it (I/O error, timeout, connection dropped): the call fails, and the
//!   next one asks the Sentinels again;
//! - a `READONLY` or `MASTERDOWN` reply (the server is a replica now): the command did
//!   nothing, so the call asks the Sentinels again and runs once more on the new master.
//!
//! Lookups run one at a time: calls that find one under way wait and use its connection.

use super::address::{client, client_certificates, credentials, server_address};
use super::settings::{RedisSettings, SentinelSettings, Topology};
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, ServerErrorKind, TlsMode, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The master's connection, as last found through the Sentinels.
pub struct FailoverConnection {
    lookups: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    dial_timeout: Duration,
    master: Arc<Mutex<Option<Master>>>,
    generations: AtomicU64,
    switches: tokio::task::JoinHandle<()>,
}

/// One connection to a master; `generation` tells it apart from every other one.
#[derive(Clone)]
struct Master {
    generation: u64,
    connection: MultiplexedConnection,
}

/// How long to wait before listening to the next Sentinel when one goes away.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(1);

impl FailoverConnection {
    /// Prepares the Sentinel client and finds the master once; fails when no Sentinel
    /// names a master that answers.
    pub async fn connect(settings: &RedisSettings) -> RedisResult<Self> {
        let Topology::Sentinel(sentinel) = &settings.topology else {
            unreachable!("a failover connection is made for failover settings only");
        };
        let tls = settings.tls.as_ref();
        let mut builder = SentinelClientBuilder::new(
            settings
                .addresses()
                .map(|(host, port)| server_address(tls, host, port))
                .collect::<Vec<_>>(),
            &sentinel.master_name,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(settings.db);
        if let Some(username) = &settings.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &settings.password {
            builder = builder.set_client_to_redis_password(&password.0);
        }
        if let Some(username) = &sentinel.username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &sentinel.password {
            builder = builder.set_client_to_sentinel_password(&password.0);
        }
        if let Some(tls) = tls {
            let mode = if tls.verify {
                TlsMode::Secure
            } else {
                TlsMode::Insecure
            };
            builder = builder
                .set_client_to_redis_tls_mode(mode)
                .set_client_to_sentinel_tls_mode(mode);
            if let Some(certificates) = client_certificates(tls) {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates);
            }
        }
        let master = Arc::new(Mutex::new(None));
        let switches = tokio::spawn(follow_switches(
            sentinel_clients(settings, sentinel)?,
            sentinel.master_name.clone(),
            Arc::downgrade(&master),
            settings.dial_timeout,
        ));
        let connection = FailoverConnection {
            lookups: tokio::sync::Mutex::new(builder.build()?),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(settings.dial_timeout))
                .set_response_timeout(settings.response_timeout),
            dial_timeout: settings.dial_timeout,
            master,
            generations: AtomicU64::new(0),
            switches,
        };
        connection.master().await?;
        Ok(connection)
    }

    /// The master's connection: the one kept, or a new one to the master the Sentinels name.
    pub async fn master(&self) -> RedisResult<MasterConnection<'_>> {
        let found = |master| MasterConnection {
            owner: self,
            master,
        };
        if let Some(master) = self.current() {
            return Ok(found(master));
        }
        let mut lookups = self.lookups.lock().await;
        // A call that held the lock before this one may have found the master already.
        if let Some(master) = self.current() {
            return Ok(found(master));
        }
        let lookup = async {
            let client = lookups.async_get_client().await?;
            let address = client.get_connection_info().addr().to_string();
            let connection = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            Ok::<_, RedisError>((address, connection))
        };
        let (address, connection) = tokio::time::timeout(self.dial_timeout, lookup)
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no master found through the Sentinels within {:?}",
                        self.dial_timeout
                    ),
                ))
            })??;
        let master = Master {
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
            connection,
        };
        *self.master.lock().unwrap_or_else(|p| p.into_inner()) = Some(master.clone());
        tracing::info!(master = %address, "Redis master found through the Sentinels");
        Ok(found(master))
    }

    fn current(&self) -> Option<Master> {
        self.master
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops the connection of `generation` (unless a newer one replaced it already).
    fn forget(&self, generation: u64) {
        let mut slot = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|m| m.generation == generation) {
            *slot = None;
        }
    }
}

impl Drop for FailoverConnection {
    fn drop(&mut self) {
        self.switches.abort();
    }
}

/// Clients of the Sentinels, with the Sentinels' credentials.
fn sentinel_clients(
    settings: &RedisSettings,
    sentinel: &SentinelSettings,
) -> RedisResult<Vec<redis::Client>> {
    let tls = settings.tls.as_ref();
    settings
        .addresses()
        .map(|(host, port)| {
            let login = credentials(sentinel.username.as_deref(), sentinel.password.as_ref());
            let info = server_address(tls, host, port)
                .into_connection_info()?
                .set_redis_settings(login);
            client(info, tls)
        })
        .collect()
}

/// Listens to `+switch-master` on one Sentinel after another, for as long as `master` lives,
/// and drops the master's connection when `master_name` has a new master.
async fn follow_switches(
    sentinels: Vec<redis::Client>,
    master_name: String,
    master: Weak<Mutex<Option<Master>>>,
    dial_timeout: Duration,
) {
    for sentinel in sentinels.iter().cycle() {
        if master.strong_count() == 0 {
            return;
        }
        if let Err(e) = listen_for_switches(sentinel, &master_name, &master, dial_timeout).await {
            tracing::debug!(sentinel = %sentinel.get_connection_info().addr(), "not listening to this Sentinel: {e}");
        }
        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
    }
}

/// Listens to one Sentinel until its connection ends.
async fn listen_for_switches(
    sentinel: &redis::Client,
    master_name: &str,
    master: &Weak<Mutex<Option<Master>>>,
    dial_timeout: Duration,
) -> RedisResult<()> {
    let mut pubsub = tokio::time::timeout(dial_timeout, sentinel.get_async_pubsub())
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    pubsub.subscribe("+switch-master").await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        // "<name> <old ip> <old port> <new ip> <new port>"
        let announcement: String = message.get_payload()?;
        if announcement.split(' ').next() != Some(master_name) {
            continue;
        }
        let Some(master) = master.upgrade() else {
            return Ok(());
        };
        *master.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!("a Sentinel announced a new master: {announcement}");
    }
    Ok(())
}

/// Whether `error` means the server answered as a replica: the command did nothing.
fn not_the_master(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
    )
}

/// Whether `error` leaves the connection unusable or its server in doubt.
fn connection_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

/// The master's connection for one call; see the module docs for what a failure does.
pub struct MasterConnection<'a> {
    owner: &'a FailoverConnection,
    master: Master,
}

impl MasterConnection<'_> {
    /// Drops the connection after `error` when it calls for it; `true` when the command
    /// did nothing and a new master was found to run it again on.
    async fn recover(&mut self, error: &RedisError) -> bool {
        if !(not_the_master(error) || connection_lost(error)) {
            return false;
        }
        self.owner.forget(self.master.generation);
        if !not_the_master(error) {
            return false;
        }
        match self.owner.master().await {
            Ok(fresh) => {
                self.master = fresh.master;
                true
            }
            Err(_) => false,
        }
    }

    /// Sends `cmd` to the master; a server's error reply, which arrives as a value, is an
    /// error here, to be seen.
    async fn send(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.master
            .connection
            .req_packed_command(cmd)
            .await
            .and_then(Value::extract_error)
    }
}

impl ConnectionLike for MasterConnection<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let first = self.send(cmd).await;
            let Err(error) = &first else {
                return first;
            };
            if !self.recover(error).await {
                return first;
            }
            let again = self.send(cmd).await;
            if let Err(error) = &again {
                // No third try: only drop the connection if it calls for it.
                if not_the_master(error) || connection_lost(error) {
                    self.owner.forget(self.master.generation);
                }
            }
            again
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .master
                .connection
                .req_packed_commands(pipeline, offset, count)
                .await
                .and_then(|values| values.into_iter().map(Value::extract_error).collect());
            if let Err(error) = &result
                && (not_the_master(error) || connection_lost(error))
            {
                self.owner.forget(self.master.generation);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.master.connection.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::backend::FromMetadata;
    use wasilock_testkit::redis_server::{RedisSentinel, RedisServer};

    #[tokio::test]
    async fn a_replica_answering_readonly_is_left_for_the_master_and_the_command_runs_there() {
        let Some(master) = RedisServer::start() else {
            return;
        };
        let Some(replica) = RedisServer::start_replica_of(&master) else {
            return;
        };
        let sentinel = RedisSentinel::start("m", &master);
        let metadata = [
            ("redisHost", sentinel.address()),
            ("failover", "true".into()),
            ("sentinelMasterName", "m".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let settings = RedisSettings::from_metadata(&metadata).unwrap();
        let connection = FailoverConnection::connect(&settings).await.unwrap();

        // As if the server kept had been demoted to replica with its clients connected.
        let stale = redis::Client::open(format!("redis://{}/", replica.address()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        *connection.master.lock().unwrap() = Some(Master {
            generation: 7,
            connection: stale,
        });
        let mut call = connection.master().await.unwrap();
        let set: String = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut call)
            .await
            .unwrap();
        assert_eq!(set, "OK");
        let generation = connection.current().unwrap().generation;
        assert_ne!(generation, 7, "a new connection");
        let mut on_master = redis::Client::open(format!("redis://{}/", master.address()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let value: Option<String> = redis::cmd("GET")
            .arg("k")
            .query_async(&mut on_master)
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("v"));

        // Any other server error is the call's own, and keeps the connection.
        let wrong: RedisResult<Value> = redis::cmd("LPUSH")
            .arg("k")
            .arg("x")
            .query_async(&mut call)
            .await;
        assert!(wrong.is_err());
        assert_eq!(connection.current().unwrap().generation, generation);
    }
}
