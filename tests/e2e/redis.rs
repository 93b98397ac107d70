//! End-to-end tests of `lock.redis`: Dapr's conformance sequence, key compatibility with Dapr
//! sidecars (read and written with a plain Redis client), one round trip per call, two hosts
//! on one Redis, Redis going away under load, start-up errors, metadata the host refuses or
//! ignores (with a log line), and TLS with certificate verification and a client certificate.

use wasilock_testkit as common;
use wasilock_testkit::redis_server;

use common::{Host, Options, StartFailure, component, conformance_sequence, resources};
use redis_server::{RedisServer, TlsFiles};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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

fn host_on(
    server: &RedisServer,
    app_id: &str,
    extra: &[(&str, &str)],
) -> (Host, tempfile::TempDir) {
    Host::start_on(app_id, &redis_component("shared", server, extra))
}

#[test]
fn conformance_sequence_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (host, _dir) = host_on(&server, "conformance", &[]);
    assert!(host.banner().contains("lock.redis"));
    conformance_sequence(&host, "shared");
}

#[test]
fn keys_values_and_ttls_are_the_ones_a_dapr_sidecar_uses() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut redis = plain_client(&server);
    let (host, _dir) = host_on(&server, "billing", &[]);

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
        let (host, _dir) = host_on(&server, "app", &[("keyPrefix", prefix)]);
        assert_eq!(host.lock("shared", "r", "o", 30), Ok(true), "{prefix}");
        let value: Option<String> = redis::cmd("GET").arg(key).query(&mut redis).unwrap();
        assert_eq!(value.as_deref(), Some("o"), "{prefix}: {key}");
        assert_eq!(host.unlock("shared", "r", "o"), Ok(0));
    }
}

#[test]
fn each_lock_and_unlock_is_one_redis_command() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut redis = plain_client(&server);
    let (host, _dir) = host_on(&server, "counted", &[]);
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
    let (one, _a) = host_on(&server, "fleet", &[]);
    let (two, _b) = host_on(&server, "fleet", &[]);
    common::one_winner_rounds(
        &[one.base.clone(), two.base.clone()],
        "shared",
        "leader",
        16,
        40,
    );
}

#[test]
fn redis_down_under_load_gives_fast_500s_then_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let address = server.address();
    let dir = resources(&[
        (
            "redis.yaml",
            &redis_component(
                "shared",
                &server,
                &[("dialTimeout", "500ms"), ("readTimeout", "500ms")],
            ),
        ),
        ("memory.yaml", &component("local", "lock.in-memory", &[])),
    ]);
    let host = Host::start_with(Options::new().args([
        "--app-id",
        "load",
        "--resources-path",
        dir.path().to_str().unwrap(),
    ]));
    let stop = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::<(Instant, Duration, u16, String)>::new());
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (base, stop, outcomes) = (&host.base, &stop, &outcomes);
            scope.spawn(move || {
                let agent = common::agent();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let resource = format!("w{worker}-{i}");
                    let started = Instant::now();
                    let reply = match common::try_lock(&agent, base, "shared", &resource, "o", 30) {
                        Ok(true) => match common::unlock(&agent, base, "shared", &resource, "o") {
                            Ok(0) => None,
                            Ok(status) => Some((200, format!("unlock status {status}"))),
                            Err(reply) => Some((reply.status, reply.body)),
                        },
                        Ok(false) => Some((200, "lost a lock nobody held".to_string())),
                        Err(reply) => Some((reply.status, reply.body)),
                    };
                    let (status, body) = reply.unwrap_or((200, String::new()));
                    outcomes
                        .lock()
                        .unwrap()
                        .push((started, started.elapsed(), status, body));
                }
            });
        }
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
        stop.store(true, Ordering::Relaxed);
        let outcomes = outcomes.lock().unwrap();
        let before: Vec<_> = outcomes.iter().filter(|o| o.0 + o.1 < down_at).collect();
        assert!(!before.is_empty(), "no requests before Redis stopped");
        assert!(
            before.iter().all(|o| o.2 == 200 && o.3.is_empty()),
            "{:?}",
            before.iter().find(|o| o.2 != 200 || !o.3.is_empty())
        );
        let failures: Vec<_> = outcomes.iter().filter(|o| o.2 != 200).collect();
        assert!(!failures.is_empty(), "no failures while Redis was down");
        for (started, took, status, body) in &failures {
            assert_eq!(*status, 500, "{body}");
            assert!(
                body.starts_with(
                    r#"{"errorCode":"ERR_TRY_LOCK","message":"failed to try acquiring lock: "#
                ) || body.starts_with(
                    r#"{"errorCode":"ERR_UNLOCK","message":"failed to release lock: "#
                ),
                "{body}"
            );
            assert!(body.contains(&address), "the cause names Redis: {body}");
            assert!(*took < Duration::from_secs(3), "a failure took {took:?}");
            assert!(
                *started >= down_at - Duration::from_secs(1),
                "a failure before Redis stopped"
            );
        }
        // Answers are right again within a few seconds of Redis coming back.
        let recovered: Vec<_> = outcomes
            .iter()
            .filter(|o| o.0 > up_at + Duration::from_secs(2))
            .collect();
        assert!(!recovered.is_empty(), "no requests after recovery");
        assert!(
            recovered.iter().all(|o| o.2 == 200 && o.3.is_empty()),
            "{:?}",
            recovered.iter().find(|o| !o.3.is_empty())
        );
    });
    assert_eq!(host.lock("shared", "after", "o", 5), Ok(true));
}

#[test]
fn an_unreachable_redis_at_start_up_is_an_error_unless_ignored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut unreachable = redis_component("shared", &server, &[("dialTimeout", "300ms")]);
    unreachable = unreachable.replace(&server.address(), "127.0.0.1:1");
    let dir = resources(&[("redis.yaml", &unreachable)]);
    let args = ["--resources-path", dir.path().to_str().unwrap()];
    let started = Instant::now();
    let failure = Host::try_start(Options::new().args(args))
        .err()
        .expect("start-up must fail");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!failure.status.success());
    for needle in [
        "redis.yaml",
        "shared",
        "cannot connect to Redis at 127.0.0.1:1",
    ] {
        assert!(
            failure.stderr.contains(needle),
            "{needle}: {}",
            failure.stderr
        );
    }
    let ignored = unreachable.replace("  version: v1\n", "  version: v1\n  ignoreErrors: true\n");
    let dir = resources(&[("redis.yaml", &ignored)]);
    let host =
        Host::start_with(Options::new().args(["--resources-path", dir.path().to_str().unwrap()]));
    assert_eq!(
        host.lock("shared", "r", "o", 5).map_err(|r| r.status),
        Err(500)
    );

    let missing_host = component("shared", "lock.redis", &[("redisPassword", "x")]);
    let dir = resources(&[("redis.yaml", &missing_host)]);
    let failure =
        Host::try_start(Options::new().args(["--resources-path", dir.path().to_str().unwrap()]))
            .err()
            .expect("a missing redisHost must stop start-up");
    assert!(
        failure
            .stderr
            .contains("metadata property redisHost is empty"),
        "{}",
        failure.stderr
    );
}

#[test]
fn metadata_values_come_from_env_refs() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let yaml = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: shared\nspec:\n  type: lock.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    envRef: TEST_REDIS_ADDRESS\n";
    let dir = resources(&[("redis.yaml", yaml)]);
    let host = Host::start_with(
        Options::new()
            .args([
                "--app-id",
                "env",
                "--resources-path",
                dir.path().to_str().unwrap(),
            ])
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
    let created = std::process::Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("run redis-cli --cluster create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
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
    let (host, _dir) = host_on(&nodes[0], "clustered", &[("redisType", "cluster")]);
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
    let refused = |extra: &[(&str, &str)]| {
        let dir = resources(&[("redis.yaml", &redis_component("shared", &server, extra))]);
        let args = ["--resources-path", dir.path().to_str().unwrap()];
        let failure = Host::try_start(Options::new().args(args))
            .err()
            .expect("start-up must fail");
        assert!(!failure.status.success());
        failure.stderr
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
        let stderr = refused(extra);
        for needle in ["redis.yaml", r#"component "shared""#, property] {
            assert!(stderr.contains(needle), "{extra:?}: {needle}: {stderr}");
        }
    }

    // Tuning knobs and names Dapr does not read are accepted, each with a log line.
    let (host, _dir) = host_on(
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
    let Some(tls) = TlsFiles::generate() else {
        return;
    };
    let Some(server) = RedisServer::start_tls(&tls) else {
        return;
    };
    let ca = tls.ca_file();
    let (cert, key) = (tls.client_cert(), tls.client_key());
    let yaml = |extra: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: shared\nspec:\n  type: lock.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: \"{}\"\n  - name: enableTLS\n    value: \"true\"\n  - name: dialTimeout\n    value: 2s\n{extra}",
            server.address()
        )
    };
    let certificates = "  - name: clientCert\n    envRef: TEST_CLIENT_CERT\n  - name: clientKey\n    envRef: TEST_CLIENT_KEY\n";
    let start = |yaml: &str, trust_ca: bool| {
        let dir = resources(&[("redis.yaml", yaml)]);
        let mut options = Options::new()
            .args([
                "--app-id",
                "tls",
                "--resources-path",
                dir.path().to_str().unwrap(),
            ])
            .env("TEST_CLIENT_CERT", &cert)
            .env("TEST_CLIENT_KEY", &key);
        if trust_ca {
            options = options.env("SSL_CERT_FILE", ca.to_str().unwrap());
        }
        (Host::try_start(options), dir)
    };
    let cannot_connect = format!("cannot connect to Redis at {}", server.address());

    // The server's certificate is verified: an unknown authority stops start-up ...
    let (failure, _dir) = start(&yaml(certificates), false);
    StartFailure::expect(
        failure,
        "an unknown authority: no start",
        &["invalid peer certificate: UnknownIssuer", &cannot_connect],
    );
    // ... unless verification is turned off, as Dapr's insecureSkipTLSVerify does.
    let skip = format!("{certificates}  - name: insecureSkipTLSVerify\n    value: \"true\"\n");
    let (host, _dir) = start(&yaml(&skip), false);
    let host = host.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(host.lock("shared", "skip", "o", 5), Ok(true));
    drop(host);

    // The server asks for a client certificate: without one, no start.
    let (failure, _dir) = start(&yaml(""), true);
    StartFailure::expect(
        failure,
        "no client certificate: no start",
        &["CertificateRequired", &cannot_connect],
    );

    let (host, _dir) = start(&yaml(certificates), true);
    let host = host.unwrap_or_else(|failure| panic!("{failure}"));
    conformance_sequence(&host, "shared");
}
