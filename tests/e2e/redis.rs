//! End-to-end tests of `lock.redis`: Dapr's conformance sequence, key compatibility with Dapr
//! sidecars (read and written with a plain Redis client), one round trip per call, two hosts
//! on one Redis, Redis going away under load, start-up errors, metadata the host refuses or
//! ignores (with a log line), and TLS with certificate verification and a client certificate.

use wasilock_testkit as common;
use wasilock_testkit::redis_server;

use common::load::{assert_store_failure, under_load};
use common::{Host, Options, component, component_with_refs, conformance_sequence};
use redis_server::{RedisServer, TlsFiles};
use std::time::{Duration, Instant};

/// Dapr's unlock script (components-contrib lock/redis/standalone.go).
const DAPR_UNLOCK_SCRIPT: &str = r#"local v = redis.call("get",KEYS[1]); if v==false then return -1 end; if v~=ARGV[1] then return -2 else return redis.call("del",KEYS[1]) end"#;

fn redis_component(name: &str, server: &RedisServer, extra: &[(&str, &str)]) -> String {
    let address = server.address();
    let mut metadata = vec![("redisHost", address.as_str())];
    metadata.extend_from_slice(extra);
    component(name, "lock.redis", &metadata)
}

fn plain_client(server: &RedisServer) -> redis::Connection {
    redis::Client::open(format!("redis://{}/", server.address()))
        .unwrap()
        .get_connection()
        .expect("a plain connection to the test Redis")
}

fn host_on(server: &RedisServer, app_id: &str, extra: &[(&str, &str)]) -> Host {
    Host::start_on(app_id, &redis_component("shared", server, extra))
}

/// A Redis, a plain client of it, and a host as the app `app_id` on it; `None` without
/// redis-server.
fn watched_host(app_id: &str) -> Option<(RedisServer, redis::Connection, Host)> {
    let server = RedisServer::start()?;
    let redis = plain_client(&server);
    let host = host_on(&server, app_id, &[]);
    Some((server, redis, host))
}

#[test]
fn conformance_sequence_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let host = host_on(&server, "conformance", &[]);
    assert!(host.banner().contains("lock.redis"));
    conformance_sequence(&host, "shared");
}

#[test]
fn keys_values_and_ttls_are_the_ones_a_dapr_sidecar_uses() {
    let Some((_server, mut redis, host)) = watched_host("billing") else {
        return;
    };

    // A lock taken the way a Dapr sidecar takes it blocks wasilock.
    let set: Option<String> = redis::cmd("SET")
        .arg("lock||billing||invoice-7")
        .arg("sidecar")
        .arg("EX")
        .arg(30)
        .arg("NX")
        .query(&mut redis)
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"));
    assert_eq!(host.lock("shared", "invoice-7", "wasilock", 30), Ok(false));
    assert_eq!(host.unlock("shared", "invoice-7", "wasilock"), Ok(2));
    assert_eq!(host.unlock("shared", "invoice-7", "sidecar"), Ok(0));
    let gone: Option<String> = redis::cmd("GET")
        .arg("lock||billing||invoice-7")
        .query(&mut redis)
        .unwrap();
    assert_eq!(gone, None);

    // The lock wasilock takes has Dapr's key, the owner as value, and the TTL.
    assert_eq!(host.lock("shared", "invoice-8", "worker-1", 30), Ok(true));
    let value: Option<String> = redis::cmd("GET")
        .arg("lock||billing||invoice-8")
        .query(&mut redis)
        .unwrap();
    assert_eq!(value.as_deref(), Some("worker-1"));
    let ttl: i64 = redis::cmd("PTTL")
        .arg("lock||billing||invoice-8")
        .query(&mut redis)
        .unwrap();
    assert!((29_000..=30_000).contains(&ttl), "PTTL {ttl}");
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    keys.sort();
    // Beside the lock, only its fencing counter, under a key no Dapr sidecar reads.
    assert_eq!(
        keys,
        ["fence||billing||invoice-8", "lock||billing||invoice-8"].map(String::from)
    );
    let token: Option<String> = redis::cmd("GET")
        .arg("fence||billing||invoice-8")
        .query(&mut redis)
        .unwrap();
    assert_eq!(token.as_deref(), Some("1"));
    // ... and a sidecar releases it with Dapr's script, telling other owners apart.
    let unlock = |owner: &str, redis: &mut redis::Connection| -> i64 {
        redis::cmd("EVAL")
            .arg(DAPR_UNLOCK_SCRIPT)
            .arg(1)
            .arg("lock||billing||invoice-8")
            .arg(owner)
            .query(redis)
            .unwrap()
    };
    assert_eq!(unlock("worker-2", &mut redis), -2);
    assert_eq!(unlock("worker-1", &mut redis), 1);
    assert_eq!(unlock("worker-1", &mut redis), -1);
    assert_eq!(host.lock("shared", "invoice-8", "worker-2", 30), Ok(true));
}

#[test]
fn key_prefix_strategies_match_daprd() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut redis = plain_client(&server);
    for (prefix, key) in [
        ("name", "lock||shared||r"),
        ("none", "lock||r"),
        ("team-a", "lock||team-a||r"),
    ] {
        let host = host_on(&server, "app", &[("keyPrefix", prefix)]);
        assert_eq!(host.lock("shared", "r", "o", 30), Ok(true), "{prefix}");
        let value: Option<String> = redis::cmd("GET").arg(key).query(&mut redis).unwrap();
        assert_eq!(value.as_deref(), Some("o"), "{prefix}: {key}");
        assert_eq!(host.unlock("shared", "r", "o"), Ok(0));
    }
}

#[test]
fn each_lock_and_unlock_is_one_redis_command() {
    let Some((_server, mut redis, host)) = watched_host("counted") else {
        return;
    };
    // Loads the acquire and release scripts once.
    assert_eq!(host.lock("shared", "warm-up", "o", 30), Ok(true));
    assert_eq!(host.unlock("shared", "warm-up", "o"), Ok(0));
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut redis)
        .unwrap();
    for i in 0..20 {
        assert_eq!(host.lock("shared", &format!("r{i}"), "o", 30), Ok(true));
        assert_eq!(host.unlock("shared", &format!("r{i}"), "o"), Ok(0));
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis)
        .unwrap();
    let mut calls: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let count = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), count))
        })
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect();
    calls.sort();
    // One EVALSHA per call: the acquire's script runs SET NX and INCR of the fencing
    // counter, the release's one GET of the lock, one GET of the counter, one DEL and one
    // PUBLISH for waiters (Redis counts commands inside scripts too): nothing else reached
    // Redis.
    let expected = [
        ("del", 20),
        ("evalsha", 40),
        ("get", 40),
        ("incr", 20),
        ("publish", 20),
        ("set", 20),
    ]
    .map(|(name, count)| (name.to_string(), count));
    assert_eq!(calls, expected);
}

#[test]
fn two_hosts_on_one_redis_have_exactly_one_winner_per_round() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let one = host_on(&server, "fleet", &[]);
    let two = host_on(&server, "fleet", &[]);
    common::one_winner_rounds(&[&one.base, &two.base], "shared", "leader", 16, 40);
}

#[test]
fn redis_down_under_load_gives_fast_500s_then_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let address = server.address();
    let host = Host::start_with(Options::new().app_id("load").resources(&[
        (
            "redis.yaml",
            &redis_component(
                "shared",
                &server,
                &[("dialTimeout", "500ms"), ("readTimeout", "500ms")],
            ),
        ),
        ("memory.yaml", &component("local", "lock.in-memory", &[])),
    ]));
    let ((down_at, up_at), outcomes) = under_load(&host.base, "shared", 4, || {
        std::thread::sleep(Duration::from_millis(500));
        // Taken before the stop begins: a request that fails while Redis is
        // shutting down counts as one made while it was down.
        let down_at = Instant::now();
        server.stop();
        std::thread::sleep(Duration::from_secs(2));
        // Other stores keep serving while Redis is down.
        assert_eq!(host.lock("local", "r", "o", 5), Ok(true));
        server.restart();
        let up_at = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        (down_at, up_at)
    });
    let before: Vec<_> = outcomes.iter().filter(|o| o.ended() < down_at).collect();
    assert!(!before.is_empty(), "no requests before Redis stopped");
    assert!(
        before.iter().all(|o| o.right()),
        "{:?}",
        before.iter().find(|o| !o.right())
    );
    let failures: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
    assert!(!failures.is_empty(), "no failures while Redis was down");
    for failure in &failures {
        assert_store_failure(failure.status, &failure.wrong, &address);
        let took = failure.took;
        assert!(took < Duration::from_secs(3), "a failure took {took:?}");
        assert!(
            failure.started >= down_at - Duration::from_secs(1),
            "a failure before Redis stopped"
        );
    }
    // Answers are right again within a few seconds of Redis coming back.
    let recovered: Vec<_> = outcomes
        .iter()
        .filter(|o| o.started > up_at + Duration::from_secs(2))
        .collect();
    assert!(!recovered.is_empty(), "no requests after recovery");
    assert!(
        recovered.iter().all(|o| o.right()),
        "{:?}",
        recovered.iter().find(|o| !o.right())
    );
    assert_eq!(host.lock("shared", "after", "o", 5), Ok(true));
}

#[test]
fn an_unreachable_redis_at_start_up_is_an_error_unless_ignored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut unreachable = redis_component("shared", &server, &[("dialTimeout", "300ms")]);
    unreachable = unreachable.replace(&server.address(), "127.0.0.1:1");
    let started = Instant::now();
    Host::refused(
        Options::new().resources(&[("redis.yaml", &unreachable)]),
        "start-up must fail",
        &[
            "redis.yaml",
            "shared",
            "cannot connect to Redis at 127.0.0.1:1",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let ignored = unreachable.replace("  version: v1\n", "  version: v1\n  ignoreErrors: true\n");
    let host = Host::start_with(Options::new().resources(&[("redis.yaml", &ignored)]));
    assert_eq!(
        host.lock("shared", "r", "o", 5).map_err(|r| r.status),
        Err(500)
    );

    let missing_host = component("shared", "lock.redis", &[("redisPassword", "x")]);
    Host::refused(
        Options::new().resources(&[("redis.yaml", &missing_host)]),
        "a missing redisHost must stop start-up",
        &["metadata property redisHost is empty"],
    );
}

#[test]
fn metadata_values_come_from_env_refs() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let refs = [("redisHost", "TEST_REDIS_ADDRESS")];
    let yaml = &component_with_refs("shared", "lock.redis", &[], &refs);
    let host = Host::start_with(
        Options::new()
            .app_id("env")
            .resources(&[("redis.yaml", yaml)])
            .env("TEST_REDIS_ADDRESS", &server.address()),
    );
    assert_eq!(host.lock("shared", "r", "o", 5), Ok(true));
    let value: Option<String> = redis::cmd("GET")
        .arg("lock||env||r")
        .query(&mut plain_client(&server))
        .unwrap();
    assert_eq!(value.as_deref(), Some("o"));
}

#[test]
fn a_redis_cluster_serves_locks_on_every_slot() {
    let nodes: Option<Vec<RedisServer>> =
        (0..3).map(|_| RedisServer::start_cluster_node()).collect();
    let Some(nodes) = nodes else {
        return;
    };
    let addresses: Vec<String> = nodes.iter().map(RedisServer::address).collect();
    let mut create = std::process::Command::new("redis-cli");
    create.args(["--cluster", "create"]).args(&addresses).args([
        "--cluster-replicas",
        "0",
        "--cluster-yes",
    ]);
    common::installs::run(&mut create).unwrap_or_else(|e| panic!("{e}"));
    let mut first = plain_client(&nodes[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut first).unwrap();
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not form: {info}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let host = host_on(&nodes[0], "clustered", &[("redisType", "cluster")]);
    conformance_sequence(&host, "shared");
    // Keys spread over the three nodes' slots: each lock and unlock reaches its owner node.
    for i in 0..30 {
        assert_eq!(
            host.lock("shared", &format!("r{i}"), "o", 30),
            Ok(true),
            "r{i}"
        );
        assert_eq!(
            host.lock("shared", &format!("r{i}"), "p", 30),
            Ok(false),
            "r{i}"
        );
    }
    for i in 0..30 {
        assert_eq!(host.unlock("shared", &format!("r{i}"), "p"), Ok(2), "r{i}");
        assert_eq!(host.unlock("shared", &format!("r{i}"), "o"), Ok(0), "r{i}");
    }
}

#[test]
fn metadata_the_host_cannot_honour_stops_start_up_and_ignored_metadata_is_logged() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let refused = |extra: &[(&str, &str)], property: &str| {
        let yaml = redis_component("shared", &server, extra);
        Host::refused(
            Options::new().resources(&[("redis.yaml", &yaml)]),
            &format!("start-up must fail: {extra:?}"),
            &["redis.yaml", r#"component "shared""#, property],
        );
    };
    // Each refusal names the file, the component and the property.
    for (extra, property) in [
        (&[("useEntraID", "true")][..], "useEntraID"),
        (&[("sentinelMasterName", "mymaster")], "sentinelMasterName"),
        (&[("failover", "true")], "sentinelMasterName"),
        (&[("redisType", "sentinel")], "redisType"),
        (&[("clientCert", "PEM")], "clientCert"),
        (&[("redisDB", "two")], "redisDB"),
    ] {
        refused(extra, property);
    }

    // Tuning knobs and names Dapr does not read are accepted, each with a log line.
    let host = host_on(
        &server,
        "tuned",
        &[
            ("poolSize", "20"),
            ("idleCheckFrequency", "1m"),
            ("redisHots", "typo"),
        ],
    );
    assert_eq!(host.lock("shared", "r", "o", 5), Ok(true));
    host.assert_logged(&[
        "metadata property poolSize is ignored: this host keeps one multiplexed connection",
        "metadata property idleCheckFrequency is ignored",
        "metadata property redisHots is not one Dapr's lock.redis reads",
    ]);
}

#[test]
fn tls_verifies_the_server_and_presents_the_client_certificate() {
    let Some((tls, server)) = TlsFiles::generate_for(RedisServer::start_tls) else {
        return;
    };
    let ca = tls.ca_file();
    let (cert, key) = (tls.client_cert(), tls.client_key());
    let address = server.address();
    let tls_metadata = [
        ("redisHost", address.as_str()),
        ("enableTLS", "true"),
        ("dialTimeout", "2s"),
    ];
    // `extra` metadata, and the client certificate when `certificates` refs name it.
    let yaml = |extra: &[(&str, &str)], certificates: &[(&str, &str)]| {
        let metadata = [&tls_metadata[..], extra].concat();
        component_with_refs("shared", "lock.redis", &metadata, certificates)
    };
    let certificates = [
        ("clientCert", "TEST_CLIENT_CERT"),
        ("clientKey", "TEST_CLIENT_KEY"),
    ];
    let options = |yaml: &str, trust_ca: bool| {
        let options = Options::new()
            .app_id("tls")
            .resources(&[("redis.yaml", yaml)])
            .envs(&[("TEST_CLIENT_CERT", &cert), ("TEST_CLIENT_KEY", &key)]);
        if trust_ca {
            options.env("SSL_CERT_FILE", ca.to_str().unwrap())
        } else {
            options
        }
    };
    let cannot_connect = format!("cannot connect to Redis at {}", server.address());

    // The server's certificate is verified: an unknown authority stops start-up ...
    Host::refused(
        options(&yaml(&[], &certificates), false),
        "an unknown authority: no start",
        &["invalid peer certificate: UnknownIssuer", &cannot_connect],
    );
    // ... unless verification is turned off, as Dapr's insecureSkipTLSVerify does.
    let skip = [("insecureSkipTLSVerify", "true")];
    let host = Host::start_with(options(&yaml(&skip, &certificates), false));
    assert_eq!(host.lock("shared", "skip", "o", 5), Ok(true));
    drop(host);

    // The server asks for a client certificate: without one, no start.
    Host::refused(
        options(&yaml(&[], &[]), true),
        "no client certificate: no start",
        &["CertificateRequired", &cannot_connect],
    );

    let host = Host::start_with(options(&yaml(&[], &certificates), true));
    conformance_sequence(&host, "shared");
}
