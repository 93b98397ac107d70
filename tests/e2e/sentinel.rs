//! End-to-end tests of `lock.redis` with `failover: true`: a master, a replica and a real
//! Redis Sentinel. The host finds the master through the Sentinel, and finds the promoted
//! replica after the master is killed or demoted, without a restart; over TLS too. Without
//! `failover`, a master with replicas is refused at start-up, as in Dapr.

use wasilock_testkit as common;
use wasilock_testkit::redis_server;

use common::{Host, Options, component, component_with_refs, wait_until};
use redis_server::{RedisSentinel, RedisServer, TlsFiles};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The name the Sentinel monitors the master under.
const MASTER: &str = "locks";
/// The bound on the wait for a failover, from the master's end to locks working again.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

/// A master, its replica, and a Sentinel that knows both.
struct Watched {
    master: RedisServer,
    replica: RedisServer,
    sentinel: RedisSentinel,
}

impl Watched {
    fn start(tls: Option<&TlsFiles>) -> Option<Self> {
        let master = match tls {
            Some(tls) => RedisServer::start_tls(tls)?,
            None => RedisServer::start()?,
        };
        let replica = RedisServer::start_replica_of(&master)?;
        let mut replica_client = client(&replica.address(), tls);
        wait_until(
            "the replica has synchronised",
            Duration::from_secs(10),
            || info(&mut replica_client).contains("master_link_status:up"),
        );
        let sentinel = RedisSentinel::start(MASTER, &master);
        let mut sentinel_client = client(&sentinel.address(), tls);
        wait_until(
            "the Sentinel knows the replica",
            Duration::from_secs(15),
            || {
                let replicas: Vec<HashMap<String, String>> = redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(MASTER)
                    .query(&mut sentinel_client)
                    .unwrap_or_default();
                replicas
                    .iter()
                    .any(|r| r.get("flags").map(String::as_str) == Some("slave"))
            },
        );
        Some(Watched {
            master,
            replica,
            sentinel,
        })
    }

    /// Waits until the master's writes so far reached the replica.
    fn wait_replicated(&self) {
        let replicated: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut client(&self.master.address(), None))
            .unwrap();
        assert_eq!(replicated, 1);
    }

    /// The master's port as the Sentinel names it.
    fn master_port(&self, tls: Option<&TlsFiles>) -> u16 {
        let address: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER)
            .query(&mut client(&self.sentinel.address(), tls))
            .unwrap();
        address[1].parse().unwrap()
    }
}

/// A plain client of the server at `address`, over TLS with the client certificate when
/// `tls` is given.
fn client(address: &str, tls: Option<&TlsFiles>) -> redis::Connection {
    let opened = match tls {
        None => redis::Client::open(format!("redis://{address}/")),
        Some(tls) => redis::Client::build_with_tls(
            format!("rediss://{address}/"),
            redis::TlsCertificates {
                client_tls: Some(redis::ClientTlsConfig {
                    client_cert: tls.client_cert().into_bytes(),
                    client_key: tls.client_key().into_bytes(),
                }),
                root_cert: Some(std::fs::read(tls.ca_file()).unwrap()),
            },
        ),
    };
    opened
        .unwrap()
        .get_connection()
        .unwrap_or_else(|e| panic!("a plain connection to {address}: {e}"))
}

fn info(connection: &mut redis::Connection) -> String {
    redis::cmd("INFO")
        .arg("replication")
        .query(connection)
        .unwrap_or_default()
}

/// How to start a host as the app `app_id` whose store `shared` finds its master through
/// `sentinel`, with `metadata` beside the address and the master's name, then `refs`
/// (read through `envRef`).
fn through(
    sentinel: &RedisSentinel,
    app_id: &str,
    metadata: &[(&str, &str)],
    refs: &[(&str, &str)],
) -> Options {
    let address = sentinel.address();
    let mut all = vec![
        ("redisHost", address.as_str()),
        ("failover", "true"),
        ("sentinelMasterName", MASTER),
    ];
    all.extend_from_slice(metadata);
    let yaml = component_with_refs("shared", "lock.redis", &all, refs);
    Options::new()
        .app_id(app_id)
        .resources(&[("redis.yaml", &yaml)])
}

/// A host whose store `shared` finds its master through `sentinel`, with short timeouts.
fn host_through(sentinel: &RedisSentinel) -> Host {
    let timeouts = [("dialTimeout", "1s"), ("readTimeout", "1s")];
    Host::start_with(through(sentinel, "failover", &timeouts, &[]))
}

/// Takes fresh locks through `host` until one succeeds; every failure meanwhile must be the
/// API's 500 for a store error. Returns the resource of the lock that succeeded.
fn lock_until_it_works(host: &Host) -> String {
    let started = Instant::now();
    for attempt in 0.. {
        let resource = format!("after-{attempt}");
        match host.lock("shared", &resource, "o", 30) {
            Ok(true) => return resource,
            Ok(false) => panic!("{resource} was held by someone"),
            Err(reply) => {
                assert_eq!(reply.status, 500, "{}", reply.body);
                assert!(reply.body.contains("ERR_TRY_LOCK"), "{}", reply.body);
            }
        }
        assert!(
            started.elapsed() < FAILOVER_BOUND,
            "locks did not work again within {FAILOVER_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    unreachable!()
}

#[test]
fn locks_work_again_after_the_master_is_killed_and_a_replica_promoted() {
    let Some(mut watched) = Watched::start(None) else {
        return;
    };
    let host = host_through(&watched.sentinel);
    assert_eq!(host.lock("shared", "before", "o1", 600), Ok(true));
    assert_eq!(host.lock("shared", "before", "o2", 600), Ok(false));
    // The lock reached the replica before the master goes.
    watched.wait_replicated();

    watched.master.stop();
    let resource = lock_until_it_works(&host);
    assert_eq!(watched.master_port(None), watched.replica.port);
    // The new lock lives on the promoted replica, with Dapr's key.
    let value: Option<String> = redis::cmd("GET")
        .arg(format!("lock||failover||{resource}"))
        .query(&mut client(&watched.replica.address(), None))
        .unwrap();
    assert_eq!(value.as_deref(), Some("o"));
    // The lock replicated before the failover still holds.
    assert_eq!(host.lock("shared", "before", "o2", 600), Ok(false));
    assert_eq!(host.unlock("shared", "before", "o2"), Ok(2));
    assert_eq!(host.unlock("shared", "before", "o1"), Ok(0));
}

#[test]
fn after_a_sentinel_failover_locks_go_to_the_new_master_before_the_old_one_is_demoted() {
    let Some(watched) = Watched::start(None) else {
        return;
    };
    let host = host_through(&watched.sentinel);
    assert_eq!(host.lock("shared", "before", "o1", 600), Ok(true));
    watched.wait_replicated();

    let _: () = redis::cmd("SENTINEL")
        .arg("failover")
        .arg(MASTER)
        .query(&mut client(&watched.sentinel.address(), None))
        .unwrap();
    wait_until("the Sentinel names the new master", FAILOVER_BOUND, || {
        watched.master_port(None) == watched.replica.port
    });
    // The Sentinel demotes the old master some 10 s later; until then it still takes
    // writes, which it would drop then. The host left it on the Sentinel's +switch-master
    // (published as the new master is named; a moment is allowed for it to arrive).
    let mut old_master = client(&watched.master.address(), None);
    assert!(info(&mut old_master).contains("role:master"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(host.lock("shared", "after", "o", 30), Ok(true));
    let key = "lock||failover||after";
    let on = |server: &RedisServer| -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut client(&server.address(), None))
            .unwrap()
    };
    assert_eq!(on(&watched.replica).as_deref(), Some("o"));
    assert_eq!(on(&watched.master), None);
    assert_eq!(host.unlock("shared", "before", "o1"), Ok(0));

    // Once the old master is demoted (its clients disconnected), nothing changes for the host.
    wait_until("the old master is demoted", FAILOVER_BOUND, || {
        info(&mut client(&watched.master.address(), None)).contains("role:slave")
    });
    assert_eq!(host.unlock("shared", "after", "o"), Ok(0));
}

#[test]
fn failover_over_tls_verifies_the_servers_and_presents_the_client_certificate() {
    let Some((tls, mut watched)) = TlsFiles::generate_for(|tls| Watched::start(Some(tls))) else {
        return;
    };
    let ca = tls.ca_file();
    let (cert, key) = (tls.client_cert(), tls.client_key());
    let env = [
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("TEST_CLIENT_CERT", cert.as_str()),
        ("TEST_CLIENT_KEY", key.as_str()),
    ];
    let certificates = [
        ("clientCert", "TEST_CLIENT_CERT"),
        ("clientKey", "TEST_CLIENT_KEY"),
    ];
    // With the client certificate when `certificates` refs name it.
    let options = |certificates: &[(&str, &str)], env: &[(&str, &str)]| {
        let metadata = [
            ("enableTLS", "true"),
            ("dialTimeout", "1s"),
            ("readTimeout", "1s"),
        ];
        through(&watched.sentinel, "failover", &metadata, certificates).envs(env)
    };

    // Without the client certificate the Sentinel turns the host away; without the
    // authority the host turns the Sentinel away (certificates are verified).
    Host::refused(
        options(&[], &env),
        "no client certificate: no start",
        &[
            "cannot connect to Redis at master \"locks\" of the Sentinels at",
            "CertificateRequired",
        ],
    );
    Host::refused(
        options(&certificates, &env[1..]),
        "an unknown authority: no start",
        &[
            "invalid peer certificate: UnknownIssuer",
            "cannot connect to Redis at master",
        ],
    );

    let host = Host::start_with(options(&certificates, &env));
    assert_eq!(host.lock("shared", "before", "o1", 600), Ok(true));
    watched.master.stop();
    let resource = lock_until_it_works(&host);
    assert_eq!(watched.master_port(Some(&tls)), watched.replica.port);
    let value: Option<String> = redis::cmd("GET")
        .arg(format!("lock||failover||{resource}"))
        .query(&mut client(&watched.replica.address(), Some(&tls)))
        .unwrap();
    assert_eq!(value.as_deref(), Some("o"));
}

#[test]
fn a_master_with_replicas_is_refused_without_failover() {
    let Some(master) = RedisServer::start() else {
        return;
    };
    let Some(replica) = RedisServer::start_replica_of(&master) else {
        return;
    };
    let mut master_client = client(&master.address(), None);
    wait_until("the replica is attached", Duration::from_secs(10), || {
        info(&mut master_client).contains("connected_slaves:1")
    });
    let address = master.address();
    let yaml = component("shared", "lock.redis", &[("redisHost", address.as_str())]);
    Host::refused(
        Options::new().resources(&[("redis.yaml", &yaml)]),
        "a master with a replica and no failover must stop start-up",
        &[
            "redis.yaml",
            r#"lock store "shared""#,
            "1 connected replica(s): replication is not supported without failover",
        ],
    );
    drop(replica);
}

#[test]
fn the_master_and_the_sentinels_each_get_their_own_credentials() {
    let Some(master) = RedisServer::start_with(&["--requirepass", "m-pass"]) else {
        return;
    };
    let Some(_replica) = RedisServer::start_replica_with(
        &master,
        &["--requirepass", "m-pass", "--masterauth", "m-pass"],
    ) else {
        return;
    };
    let sentinel = RedisSentinel::start_with(
        MASTER,
        &master,
        &[
            "requirepass s-pass",
            &format!("sentinel auth-pass {MASTER} m-pass"),
        ],
    );
    let options = |credentials: &[(&str, &str)]| {
        let metadata = [&[("dialTimeout", "1s")], credentials].concat();
        through(&sentinel, "creds", &metadata, &[])
    };
    let both = [
        ("redisUsername", "default"),
        ("redisPassword", "m-pass"),
        ("sentinelUsername", "default"),
        ("sentinelPassword", "s-pass"),
    ];
    let host = Host::start_with(options(&both));
    assert_eq!(host.lock("shared", "r", "o", 30), Ok(true));
    let mut on_master = redis::Client::open(format!("redis://:m-pass@{}/", master.address()))
        .unwrap()
        .get_connection()
        .unwrap();
    let value: Option<String> = redis::cmd("GET")
        .arg("lock||creds||r")
        .query(&mut on_master)
        .unwrap();
    assert_eq!(value.as_deref(), Some("o"));

    // Each credential reaches its own server: change any one and start-up fails.
    for (index, wrong) in ["nobody", "s-pass", "nobody", "m-pass"]
        .into_iter()
        .enumerate()
    {
        let mut credentials = both;
        credentials[index].1 = wrong;
        Host::refused(
            options(&credentials),
            &format!("{credentials:?} started"),
            &["cannot connect to Redis at master"],
        );
    }
}
