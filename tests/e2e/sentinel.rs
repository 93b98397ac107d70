//! End-to-end tests of `lock.redis` with `failover: true`: a master, a replica and a real
//! Redis Sentinel. The host finds the master through the Sentinel, and finds the promoted
//! replica after the master is killed or demoted, without a restart; over TLS too. Without
//! `failover`, a master with replicas is refused at start-up, as in Dapr.

use wasilock_testkit as common;
use wasilock_testkit::redis_server;

use common::{Host, Options, StartFailure, component, resources};
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

fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A host whose store `shared` finds its master through `sentinel`; `extra` is more metadata
/// and `env` the host's environment.
fn host_through(
    sentinel: &RedisSentinel,
    extra: &[(&str, &str)],
    env: &[(&str, &str)],
) -> (Host, tempfile::TempDir) {
    let address = sentinel.address();
    let mut metadata = vec![
        ("redisHost", address.as_str()),
        ("failover", "true"),
        ("sentinelMasterName", MASTER),
        ("dialTimeout", "1s"),
        ("readTimeout", "1s"),
    ];
    metadata.extend_from_slice(extra);
    let dir = resources(&[("redis.yaml", &component("shared", "lock.redis", &metadata))]);
    let mut options = Options::new().args([
        "--app-id",
        "failover",
        "--resources-path",
        dir.path().to_str().unwrap(),
    ]);
    for (name, value) in env {
        options = options.env(name, value);
    }
    (Host::start_with(options), dir)
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
    let (host, _dir) = host_through(&watched.sentinel, &[], &[]);
    assert_eq!(host.lock("shared", "before", "o1", 600), Ok(true));
    assert_eq!(host.lock("shared", "before", "o2", 600), Ok(false));
    // The lock reached the replica before the master goes.
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut client(&watched.master.address(), None))
        .unwrap();
    assert_eq!(replicated, 1);

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
    let (host, _dir) = host_through(&watched.sentinel, &[], &[]);
    assert_eq!(host.lock("shared", "before", "o1", 600), Ok(true));
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut client(&watched.master.address(), None))
        .unwrap();
    assert_eq!(replicated, 1);

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
    let Some(tls) = TlsFiles::generate() else {
        return;
    };
    let Some(mut watched) = Watched::start(Some(&tls)) else {
        return;
    };
    let ca = tls.ca_file();
    let (cert, key) = (tls.client_cert(), tls.client_key());
    let env = [
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("TEST_CLIENT_CERT", cert.as_str()),
        ("TEST_CLIENT_KEY", key.as_str()),
    ];
    let yaml = |extra: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: shared\nspec:\n  type: lock.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: \"{}\"\n  - name: failover\n    value: \"true\"\n  - name: sentinelMasterName\n    value: {MASTER}\n  - name: enableTLS\n    value: \"true\"\n  - name: dialTimeout\n    value: 1s\n  - name: readTimeout\n    value: 1s\n{extra}",
            watched.sentinel.address()
        )
    };
    let certificates = "  - name: clientCert\n    envRef: TEST_CLIENT_CERT\n  - name: clientKey\n    envRef: TEST_CLIENT_KEY\n";
    let start = |yaml: &str, env: &[(&str, &str)]| {
        let dir = resources(&[("redis.yaml", yaml)]);
        let mut options = Options::new().args([
            "--app-id",
            "failover",
            "--resources-path",
            dir.path().to_str().unwrap(),
        ]);
        for (name, value) in env {
            options = options.env(name, value);
        }
        (Host::try_start(options), dir)
    };

    // Without the client certificate the Sentinel turns the host away; without the
    // authority the host turns the Sentinel away (certificates are verified).
    let (refused, _dir) = start(&yaml(""), &env);
    StartFailure::expect(
        refused,
        "no client certificate: no start",
        &[
            "cannot connect to Redis at master \"locks\" of the Sentinels at",
            "CertificateRequired",
        ],
    );
    let (refused, _dir) = start(&yaml(certificates), &env[1..]);
    StartFailure::expect(
        refused,
        "an unknown authority: no start",
        &[
            "invalid peer certificate: UnknownIssuer",
            "cannot connect to Redis at master",
        ],
    );

    let (host, _dir) = start(&yaml(certificates), &env);
    let host = host.unwrap_or_else(|failure| panic!("{failure}"));
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
    let dir = resources(&[("redis.yaml", &yaml)]);
    let failure =
        Host::try_start(Options::new().args(["--resources-path", dir.path().to_str().unwrap()]))
            .err()
            .expect("a master with a replica and no failover must stop start-up");
    for needle in [
        "redis.yaml",
        r#"lock store "shared""#,
        "1 connected replica(s): replication is not supported without failover",
    ] {
        assert!(
            failure.stderr.contains(needle),
            "{needle}: {}",
            failure.stderr
        );
    }
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
    let start = |credentials: &[(&str, &str)]| {
        let address = sentinel.address();
        let mut metadata = vec![
            ("redisHost", address.as_str()),
            ("failover", "true"),
            ("sentinelMasterName", MASTER),
            ("dialTimeout", "1s"),
        ];
        metadata.extend_from_slice(credentials);
        let dir = resources(&[("redis.yaml", &component("shared", "lock.redis", &metadata))]);
        let options = Options::new().args([
            "--app-id",
            "creds",
            "--resources-path",
            dir.path().to_str().unwrap(),
        ]);
        (Host::try_start(options), dir)
    };
    let both = [
        ("redisUsername", "default"),
        ("redisPassword", "m-pass"),
        ("sentinelUsername", "default"),
        ("sentinelPassword", "s-pass"),
    ];
    let (host, _dir) = start(&both);
    let host = host.unwrap_or_else(|failure| panic!("{failure}"));
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
        let (failure, _dir) = start(&credentials);
        let failure = failure
            .err()
            .unwrap_or_else(|| panic!("{credentials:?} started"));
        assert!(
            failure.stderr.contains("cannot connect to Redis at master"),
            "{credentials:?}: {}",
            failure.stderr
        );
    }
}
