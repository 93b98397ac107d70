//! End-to-end tests of the alpha2 lock API over HTTP on every store (in-memory, embedded,
//! Redis): every row of its table, fencing tokens strictly increasing in grant order (across
//! a `kill -9` of an embedded host and across two hosts on one Redis), FIFO waiters woken by
//! a release, a waiter that disconnects leaving its queue, a lock held by a stream (renewed
//! past its first TTL, released when the client goes away, told when it is forced away),
//! alpha1 and alpha2 excluding each other, and a component built before alpha2.

use wasilock_testkit as common;
use wasilock_testkit::redis_server::RedisServer;

use common::alpha2::{Alpha2, Grant};
use common::{Host, Options, component, resources};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STORE: &str = "lockstore";

/// A host of one store named `lockstore` of each kind (Redis when it can start), with
/// `--allow-force-unlock`; Redis lives as long as the host.
struct Setup {
    name: &'static str,
    host: Host,
    _redis: Option<RedisServer>,
}

/// A host with `extra` arguments whose one store is `store_yaml` (the embedded default
/// store when `None`).
fn host_with(store_yaml: Option<String>, extra: &[&str]) -> Host {
    let mut options = Options::new().args(extra.iter().copied());
    if let Some(yaml) = store_yaml {
        options = options.resources(&[("store.yaml", &yaml)]);
    }
    Host::start_with(options)
}

/// The component of the store `lockstore` on `redis`.
fn on_redis(redis: &RedisServer) -> String {
    component(STORE, "lock.redis", &[("redisHost", &redis.address())])
}

fn setups(extra: &[&str]) -> Vec<Setup> {
    let memory = component(STORE, "lock.in-memory", &[]);
    let mut setups = vec![
        Setup {
            name: "memory",
            host: host_with(Some(memory), extra),
            _redis: None,
        },
        Setup {
            name: "embedded",
            host: host_with(None, extra),
            _redis: None,
        },
    ];
    match RedisServer::start() {
        Some(redis) => setups.push(Setup {
            name: "redis",
            host: host_with(Some(on_redis(&redis)), extra),
            _redis: Some(redis),
        }),
        None => eprintln!("SKIPPED: alpha2 on lock.redis (no redis-server)"),
    }
    setups
}

/// Two hosts of the store `lockstore` on one Redis, and that Redis; without redis-server,
/// `None` once the test (`what`) is said to be skipped.
fn two_hosts_on_redis(what: &str) -> Option<(Host, Host, RedisServer)> {
    let Some(redis) = RedisServer::start() else {
        eprintln!("SKIPPED: {what} (no redis-server)");
        return None;
    };
    let one = host_with(Some(on_redis(&redis)), &[]);
    let two = host_with(Some(on_redis(&redis)), &[]);
    Some((one, two, redis))
}

fn error_code(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
    value["errorCode"].as_str().expect("errorCode").to_owned()
}

/// How long the lock on `resource` has left, as `inspect` says.
fn time_left(api: &Alpha2, resource: &str) -> Duration {
    let left = inspected(api, resource)["expiresIn"]
        .as_str()
        .expect("expiresIn")
        .to_owned();
    wasilock_rules::duration::parse(&left).unwrap()
}

fn inspected(api: &Alpha2, resource: &str) -> serde_json::Value {
    let reply = api.inspect(STORE, resource);
    assert_eq!(reply.status, 200, "{reply:?}");
    serde_json::from_str(&reply.body).unwrap()
}

#[test]
fn every_row_on_every_store() {
    for setup in setups(&["--allow-force-unlock"]) {
        let name = setup.name;
        let api = Alpha2::new(&setup.host.base);
        // acquire: 200 with a lock ID, a token and the TTL.
        let first = api.grant(STORE, "job", r#"{"ttl":"30s"}"#);
        assert_eq!(first.ttl, "30s", "{name}");
        assert_eq!(first.lock_id.len(), 22, "{name}: 128 bits, URL-safe");
        assert!(
            first
                .lock_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{name}"
        );
        // held and immediate, or held past waitTimeout: 409.
        for body in [r#"{"immediate":true}"#, r#"{"waitTimeout":"200ms"}"#] {
            let reply = api.acquire(STORE, "job", body);
            assert_eq!(reply.status, 409, "{name}: {body}");
            assert_eq!(error_code(&reply.body), "ERR_RESOURCE_LOCKED");
        }
        // inspect: locked, the token, the time left; never the lock ID.
        let state = inspected(&api, "job");
        assert_eq!(state["locked"], true, "{name}");
        assert_eq!(state["fencingToken"], first.fencing_token.to_string());
        assert!(
            state["expiresIn"].as_str().unwrap().ends_with('s'),
            "{state}"
        );
        assert!(!api.inspect(STORE, "job").body.contains(&first.lock_id));
        // renew: same lock ID, same token, the new TTL.
        let reply = api.renew(STORE, "job", &first.lock_id, "1m");
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        let renewed = Grant::from_json(&reply.body);
        assert_eq!(
            (
                renewed.lock_id.as_str(),
                renewed.fencing_token,
                renewed.ttl.as_str()
            ),
            (first.lock_id.as_str(), first.fencing_token, "1m0s"),
            "{name}"
        );
        // release: 204, then 404 for the same lock ID (renew too).
        let reply = api.release(STORE, "job", &first.lock_id);
        assert_eq!((reply.status, reply.body.as_str()), (204, ""), "{name}");
        for reply in [
            api.release(STORE, "job", &first.lock_id),
            api.renew(STORE, "job", &first.lock_id, "30s"),
        ] {
            assert_eq!(reply.status, 404, "{name}: {reply:?}");
            assert_eq!(error_code(&reply.body), "ERR_LOCK_NOT_FOUND");
        }
        assert_eq!(api.inspect(STORE, "job").body, r#"{"locked":false}"#);
        // The next grant has a higher token; a force release frees it; 404 when nothing is held.
        let second = api.grant(STORE, "job", "");
        assert!(second.fencing_token > first.fencing_token, "{name}");
        assert_eq!(second.ttl, "30s", "{name}: the default TTL");
        assert_eq!(api.force_release(STORE, "job").status, 204, "{name}");
        let reply = api.force_release(STORE, "job");
        assert_eq!(reply.status, 404, "{name}: {reply:?}");
        // Bad input.
        for (body, what) in [
            (r#"{"ttl":"0s"}"#, "zero ttl"),
            (r#"{"ttl":"25h"}"#, "beyond maxTTL"),
            (r#"{"ttl":"30"}"#, "no unit"),
            (r#"{"waitTimeout":"soon"}"#, "bad waitTimeout"),
            ("{", "not JSON"),
        ] {
            let reply = api.acquire(STORE, "bad", body);
            assert_eq!(reply.status, 400, "{name}: {what}: {reply:?}");
            assert_eq!(error_code(&reply.body), "ERR_MALFORMED_REQUEST", "{what}");
        }
        let reply = api.acquire(STORE, "", "");
        assert_eq!(reply.status, 400, "{name}: empty resource: {reply:?}");
        let reply = api.acquire("nope", "r", "");
        assert_eq!(reply.status, 400, "{name}");
        assert_eq!(error_code(&reply.body), "ERR_LOCK_STORE_NOT_FOUND");
    }
}

/// A store of `kind` named `lockstore` whose component sets `defaultTTL: 1500ms` and
/// `maxTTL: 2m`.
fn bounded(kind: &str) -> String {
    component(STORE, kind, &[("defaultTTL", "1500ms"), ("maxTTL", "2m")])
}

#[test]
fn a_stores_default_and_maximum_ttl_hold_for_acquire_renew_and_stream() {
    let mut stores = vec![("memory", bounded("lock.in-memory"), None)];
    stores.push(("embedded", bounded("lock.embedded"), None));
    match RedisServer::start() {
        Some(redis) => {
            let address = redis.address();
            let yaml = component(
                STORE,
                "lock.redis",
                &[
                    ("redisHost", &address),
                    ("DEFAULTTTL", "1500ms"),
                    ("maxttl", "2m"),
                ],
            );
            stores.push(("redis", yaml, Some(redis)));
        }
        None => eprintln!("SKIPPED: TTL bounds on lock.redis (no redis-server)"),
    }
    for (name, yaml, _redis) in stores {
        let host = host_with(Some(yaml), &[]);
        let api = Alpha2::new(&host.base);
        // No ttl: the store's default, said in the answer and kept by the store.
        let grant = api.grant(STORE, "job", "");
        assert_eq!(grant.ttl, "1.5s", "{name}");
        let left = time_left(&api, "job");
        assert!(left <= Duration::from_millis(1500), "{name}: {left:?} left");
        // Renew without a ttl: the default again; above the maximum: 400 naming it.
        let body = format!(r#"{{"lockID":"{}"}}"#, grant.lock_id);
        let reply = api.call("PUT", STORE, "job", &body);
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        assert_eq!(Grant::from_json(&reply.body).ttl, "1.5s", "{name}");
        let reply = api.renew(STORE, "job", &grant.lock_id, "121s");
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
        assert_eq!(error_code(&reply.body), "ERR_MALFORMED_REQUEST");
        assert!(
            reply.body.contains("longer than the maximum, 2m0s"),
            "{name}: {reply:?}"
        );
        assert_eq!(api.release(STORE, "job", &grant.lock_id).status, 204);
        // Acquire: up to the maximum, not beyond; the alpha2 ceiling (24h) is refused too.
        for ttl in ["3m", "24h"] {
            let reply = api.acquire(STORE, "job", &format!(r#"{{"ttl":"{ttl}"}}"#));
            assert_eq!(reply.status, 400, "{name}: {ttl}: {reply:?}");
            assert_eq!(error_code(&reply.body), "ERR_MALFORMED_REQUEST");
            assert!(reply.body.contains("2m0s"), "{name}: {reply:?}");
        }
        let longest = api.grant(STORE, "job", r#"{"ttl":"2m"}"#);
        assert_eq!(longest.ttl, "2m0s", "{name}");
        assert_eq!(api.release(STORE, "job", &longest.lock_id).status, 204);
        // A lock held by a stream lives on the default TTL: pinged every third of it.
        let mut stream = api.stream(STORE, "streamed", "");
        assert_eq!(stream.status(), 200, "{name}");
        let first: serde_json::Value =
            serde_json::from_str(&stream.next_line().expect("lock-acquired")).unwrap();
        assert_eq!(first["type"], "lock-acquired", "{name}");
        let started = std::time::Instant::now();
        let ping = stream.next_line().expect("a ping");
        assert!(ping.contains("ping"), "{name}: {ping}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: a ping after {:?}, not every third of 1.5s",
            started.elapsed()
        );
        let left = time_left(&api, "streamed");
        assert!(left <= Duration::from_millis(1500), "{name}: {left:?} left");
    }
}

#[test]
fn bad_ttl_bounds_stop_start_up_naming_the_file_the_component_and_the_property() {
    for (metadata, says) in [
        (
            &[("defaultTTL", "soon")][..],
            r#"metadata property defaultTTL is not a duration: time: invalid duration "soon""#,
        ),
        (
            &[("maxTTL", "0s")][..],
            r#"metadata property maxTTL is "0s"; it must be above zero"#,
        ),
        (
            &[("defaultTTL", "2m"), ("maxTTL", "1m")][..],
            "metadata property defaultTTL is 2m0s, above maxTTL (1m0s)",
        ),
    ] {
        for kind in ["lock.in-memory", "lock.embedded"] {
            let options =
                Options::new().resources(&[("bounds.yaml", &component(STORE, kind, metadata))]);
            Host::refused(
                options,
                "bad TTL bounds: no start",
                &["bounds.yaml", r#"component "lockstore""#, says],
            );
        }
    }
}

#[test]
fn reloaded_ttl_bounds_take_effect_and_keep_the_locks() {
    let dir = resources(&[("store.yaml", &bounded("lock.in-memory"))]);
    let host = Host::start_with(Options::new().resources_path(&dir));
    let api = Alpha2::new(&host.base);
    let held = api.grant(STORE, "kept", r#"{"ttl":"2m"}"#);
    let yaml = component(
        STORE,
        "lock.in-memory",
        &[("defaultTTL", "45s"), ("maxTTL", "1h")],
    );
    std::fs::write(dir.path().join("store.yaml"), yaml).unwrap();
    let since = std::time::Instant::now();
    loop {
        let grant = api.grant(STORE, "probe", "");
        assert_eq!(api.release(STORE, "probe", &grant.lock_id).status, 204);
        if grant.ttl == "45s" {
            break;
        }
        assert_eq!(grant.ttl, "1.5s", "the old default until the reload");
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the reload never took effect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let longer = api.grant(STORE, "long", r#"{"ttl":"1h"}"#);
    assert_eq!(longer.ttl, "1h0m0s");
    // The store kept its data: the lock taken before the reload still holds.
    let reply = api.acquire(STORE, "kept", r#"{"immediate":true}"#);
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(api.release(STORE, "kept", &held.lock_id).status, 204);
}

#[test]
fn force_release_needs_permission() {
    let host = host_with(None, &[]);
    let api = Alpha2::new(&host.base);
    api.grant(STORE, "r", "");
    let reply = api.force_release(STORE, "r");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(error_code(&reply.body), "ERR_PERMISSION_DENIED");
    assert_eq!(inspected(&api, "r")["locked"], true);
}

#[test]
fn alpha1_and_alpha2_exclude_each_other_and_alpha1_grants_get_tokens() {
    for setup in setups(&[]) {
        let name = setup.name;
        let (host, api) = (&setup.host, Alpha2::new(&setup.host.base));
        assert_eq!(host.lock(STORE, "shared", "worker-1", 30), Ok(true));
        let state = inspected(&api, "shared");
        assert_eq!(state["locked"], true, "{name}");
        assert_eq!(
            state["fencingToken"], "1",
            "{name}: an alpha1 grant's token"
        );
        let reply = api.acquire(STORE, "shared", r#"{"immediate":true}"#);
        assert_eq!(reply.status, 409, "{name}");
        assert_eq!(host.unlock(STORE, "shared", "worker-1"), Ok(0));
        let grant = api.grant(STORE, "shared", r#"{"immediate":true}"#);
        assert_eq!(grant.fencing_token, 2, "{name}");
        assert_eq!(
            host.lock(STORE, "shared", "worker-1", 30),
            Ok(false),
            "{name}"
        );
        // An alpha1 owner cannot release it: the value is the lock ID.
        assert_eq!(host.unlock(STORE, "shared", "worker-1"), Ok(2), "{name}");
        assert_eq!(api.release(STORE, "shared", &grant.lock_id).status, 204);
    }
}

#[test]
fn waiters_are_granted_in_arrival_order_when_released() {
    for setup in setups(&[]) {
        let name = setup.name;
        let api = Alpha2::new(&setup.host.base);
        let holder = api.grant(STORE, "queue", "");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..4 {
            let (api, order) = (api.clone(), order.clone());
            waiters.push(std::thread::spawn(move || {
                let grant = api.grant(STORE, "queue", r#"{"waitTimeout":"60s"}"#);
                order.lock().unwrap().push((i, grant.fencing_token));
                assert_eq!(api.release(STORE, "queue", &grant.lock_id).status, 204);
            }));
            // Each waiter is queued before the next arrives.
            std::thread::sleep(Duration::from_millis(300));
        }
        assert_eq!(api.release(STORE, "queue", &holder.lock_id).status, 204);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        let order = order.lock().unwrap().clone();
        let expected: Vec<(usize, u64)> = (0..4)
            .map(|i| (i, holder.fencing_token + 1 + i as u64))
            .collect();
        assert_eq!(order, expected, "{name}: FIFO, tokens in grant order");
    }
}

#[test]
fn a_waiter_that_disconnects_leaves_the_queue() {
    let host = host_with(Some(component(STORE, "lock.in-memory", &[])), &[]);
    let api = Alpha2::new(&host.base);
    let holder = api.grant(STORE, "r", "");
    // The first waiter (a stream, not granted yet) goes away while queued.
    let gone = api.stream(STORE, "r", r#"{"waitTimeout":"60s"}"#);
    std::thread::sleep(Duration::from_millis(300));
    let waiter = {
        let api = api.clone();
        std::thread::spawn(move || api.grant(STORE, "r", r#"{"waitTimeout":"60s"}"#))
    };
    std::thread::sleep(Duration::from_millis(300));
    drop(gone);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.release(STORE, "r", &holder.lock_id).status, 204);
    // Had the gone waiter stayed at the head, it would have taken the next token.
    let grant = waiter.join().unwrap();
    assert_eq!(grant.fencing_token, holder.fencing_token + 1);
}

#[test]
fn a_lock_held_by_a_stream_is_renewed_and_released_when_the_client_goes() {
    for setup in setups(&[]) {
        let name = setup.name;
        let api = Alpha2::new(&setup.host.base);
        let mut stream = api.stream(STORE, "streamed", r#"{"ttl":"1s"}"#);
        assert_eq!(stream.status(), 200, "{name}");
        let first: serde_json::Value =
            serde_json::from_str(&stream.next_line().expect("lock-acquired")).unwrap();
        assert_eq!(first["type"], "lock-acquired", "{name}");
        let token = first["fencingToken"].as_str().unwrap().to_owned();
        // Three renewals (a ping each, every third of the TTL) carry it past its first TTL.
        for _ in 0..6 {
            assert_eq!(
                stream.next_line().as_deref(),
                Some(r#"{"type":"ping"}"#),
                "{name}"
            );
        }
        let state = inspected(&api, "streamed");
        assert_eq!(state["locked"], true, "{name}: held past its first TTL");
        assert_eq!(
            state["fencingToken"].as_str(),
            Some(token.as_str()),
            "{name}"
        );
        drop(stream);
        // Released at once (not at expiry): a waiter gets it.
        let grant = api.grant(STORE, "streamed", r#"{"ttl":"1m","waitTimeout":"20s"}"#);
        assert!(grant.fencing_token > token.parse().unwrap(), "{name}");
        let state = inspected(&api, "streamed");
        assert_eq!(
            state["fencingToken"],
            grant.fencing_token.to_string(),
            "{name}"
        );
    }
}

#[test]
fn a_forced_release_reaches_the_stream_holder_as_an_error_line() {
    for setup in setups(&["--allow-force-unlock"]) {
        let name = setup.name;
        let api = Alpha2::new(&setup.host.base);
        let mut stream = api.stream(STORE, "forced", r#"{"ttl":"30s"}"#);
        assert_eq!(stream.status(), 200, "{name}");
        let first = stream.next_line().expect("lock-acquired");
        assert!(first.contains("lock-acquired"), "{name}: {first}");
        assert_eq!(api.force_release(STORE, "forced").status, 204, "{name}");
        let line = stream.next_line().expect("an error line");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "error", "{name}: {line}");
        assert_eq!(value["errorCode"], "ERR_LOCK_LOST", "{name}");
        assert_eq!(stream.next_line(), None, "{name}: the stream ends");
    }
}

#[test]
fn an_acquire_that_fails_answers_the_stream_with_its_error() {
    let host = host_with(None, &[]);
    let api = Alpha2::new(&host.base);
    api.grant(STORE, "held", "");
    let mut stream = api.stream(STORE, "held", r#"{"immediate":true}"#);
    assert_eq!(stream.status(), 409);
}

#[test]
fn embedded_tokens_keep_increasing_across_kill_9() {
    let mut host = host_with(None, &[]);
    let mut last = 0;
    for round in 0..3 {
        let api = Alpha2::new(&host.base);
        for _ in 0..3 {
            let grant = api.grant(STORE, "durable", r#"{"immediate":true}"#);
            assert!(
                grant.fencing_token > last,
                "round {round}: {grant:?} after {last}"
            );
            last = grant.fencing_token;
            assert_eq!(api.release(STORE, "durable", &grant.lock_id).status, 204);
        }
        // A lock held across the crash keeps its token.
        let held = api.grant(STORE, "held", r#"{"ttl":"1m","immediate":true}"#);
        host.kill9_and_restart();
        let state = inspected(&Alpha2::new(&host.base), "held");
        assert_eq!(state["fencingToken"], held.fencing_token.to_string());
        let api = Alpha2::new(&host.base);
        assert_eq!(api.release(STORE, "held", &held.lock_id).status, 204);
    }
}

#[test]
fn tokens_increase_across_two_hosts_on_one_redis() {
    let Some((one, two, _redis)) = two_hosts_on_redis("two hosts on one Redis") else {
        return;
    };
    let apis = [Alpha2::new(&one.base), Alpha2::new(&two.base)];
    let mut last = 0;
    for i in 0..10 {
        let api = &apis[i % 2];
        let grant = api.grant(STORE, "shared", r#"{"immediate":true}"#);
        assert!(grant.fencing_token > last, "{grant:?} after {last}");
        last = grant.fencing_token;
        let other = &apis[(i + 1) % 2];
        assert_eq!(
            other
                .acquire(STORE, "shared", r#"{"immediate":true}"#)
                .status,
            409
        );
        assert_eq!(api.release(STORE, "shared", &grant.lock_id).status, 204);
    }
}

#[test]
fn a_release_on_one_redis_host_wakes_a_waiter_on_another() {
    let Some((one, two, _redis)) = two_hosts_on_redis("waking across hosts on one Redis") else {
        return;
    };
    let holder = Alpha2::new(&one.base).grant(STORE, "r", r#"{"ttl":"10m"}"#);
    let waiter = {
        let api = Alpha2::new(&two.base);
        // Far shorter than the holder's TTL: only the release can grant it in time.
        std::thread::spawn(move || api.acquire(STORE, "r", r#"{"waitTimeout":"60s"}"#))
    };
    std::thread::sleep(Duration::from_millis(500));
    let reply = Alpha2::new(&one.base).release(STORE, "r", &holder.lock_id);
    assert_eq!(reply.status, 204);
    let reply = waiter.join().unwrap();
    assert_eq!(
        reply.status, 200,
        "woken by the release on the other host: {reply:?}"
    );
    assert_eq!(
        Grant::from_json(&reply.body).fencing_token,
        holder.fencing_token + 1
    );
}

#[test]
fn a_component_built_before_alpha2_answers_not_supported() {
    let fixture = common::workspace().join("tests/fixtures/wasilock-lock-0.1.0.wasm");
    let host = Host::start_with(Options::new().args(["--component", fixture.to_str().unwrap()]));
    let api = Alpha2::new(&host.base);
    let reply = api.acquire(STORE, "r", "");
    assert_eq!(reply.status, 501, "{reply:?}");
    assert_eq!(error_code(&reply.body), "ERR_NOT_SUPPORTED");
    assert!(
        reply.body.contains("wasilock:lock/lock-alpha2"),
        "{}",
        reply.body
    );
    // alpha1 still works.
    assert_eq!(host.lock(STORE, "r", "o", 30), Ok(true));
}

mod grpc {
    //! The same API over gRPC (`wasilock.lock.v1alpha2.Locks`) on every store.

    use super::{STORE, setups};
    use crate::grpc_client::{channel, runtime};
    use tonic::Code;
    use tonic::transport::Channel;
    use wasilock::api::grpc::alpha2_proto::lock_stream_event::Event;
    use wasilock::api::grpc::alpha2_proto::locks_client::LocksClient;
    use wasilock::api::grpc::alpha2_proto::{
        GetLockRequest, LockRequest, LockResponse, LockStreamEvent, RenewLockRequest, UnlockRequest,
    };

    async fn client(address: &str) -> LocksClient<Channel> {
        LocksClient::new(channel(address).await)
    }

    /// Runs `test` with a client of a host of each kind of store (see `setups`), and the
    /// kind's name.
    fn on_every_store(test: impl AsyncFn(&'static str, LocksClient<Channel>)) {
        for setup in setups(&["--allow-force-unlock"]) {
            runtime().block_on(async {
                test(setup.name, client(&setup.host.grpc).await).await;
            });
        }
    }

    /// A lock held by a stream: the stream, and the grant it began with.
    async fn held_by_stream(
        c: &mut LocksClient<Channel>,
        request: LockRequest,
    ) -> (tonic::Streaming<LockStreamEvent>, LockResponse) {
        let mut events = c.lock_stream(request).await.unwrap().into_inner();
        let Some(Event::Acquired(grant)) = events.message().await.unwrap().unwrap().event else {
            panic!("no grant first")
        };
        (events, grant)
    }

    fn lock(resource: &str, ttl: &str, immediate: bool) -> LockRequest {
        LockRequest {
            store_name: STORE.into(),
            resource_id: resource.into(),
            ttl: ttl.into(),
            immediate,
            wait_timeout: String::new(),
        }
    }

    fn renew(resource: &str, lock_id: &str, ttl: &str) -> RenewLockRequest {
        RenewLockRequest {
            store_name: STORE.into(),
            resource_id: resource.into(),
            lock_id: lock_id.into(),
            ttl: ttl.into(),
        }
    }

    fn release(resource: &str, lock_id: &str) -> UnlockRequest {
        UnlockRequest {
            store_name: STORE.into(),
            resource_id: resource.into(),
            lock_id: lock_id.into(),
            force: false,
        }
    }

    /// A forced release (`--allow-force-unlock`): no lock ID.
    fn forced(resource: &str) -> UnlockRequest {
        UnlockRequest {
            force: true,
            ..release(resource, "")
        }
    }

    fn get(resource: &str) -> GetLockRequest {
        GetLockRequest {
            store_name: STORE.into(),
            resource_id: resource.into(),
        }
    }

    #[test]
    fn unary_calls_on_every_store() {
        on_every_store(async |name, mut c| {
            let grant = c.lock(lock("g", "10s", false)).await.unwrap().into_inner();
            assert_eq!(
                (grant.ttl.as_str(), grant.lock_id.len()),
                ("10s", 22),
                "{name}"
            );
            let err = c.lock(lock("g", "", true)).await.unwrap_err();
            assert_eq!(err.code(), Code::Aborted, "{name}: {err:?}");
            let state = c.get_lock(get("g")).await.unwrap().into_inner();
            assert!(state.locked, "{name}");
            assert_eq!(state.fencing_token, grant.fencing_token);
            let renewed = c
                .renew_lock(renew("g", &grant.lock_id, "1m"))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(renewed.fencing_token, grant.fencing_token, "{name}");
            c.unlock(release("g", &grant.lock_id)).await.unwrap();
            let err = c.unlock(release("g", &grant.lock_id)).await.unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{name}");
            assert!(!c.get_lock(get("g")).await.unwrap().into_inner().locked);
            let next = c.lock(lock("g", "", true)).await.unwrap().into_inner();
            assert!(next.fencing_token > grant.fencing_token, "{name}");
            c.unlock(forced("g")).await.unwrap();
            let err = c.lock(lock("g", "0s", true)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{name}");
            let mut other = lock("g", "", true);
            other.store_name = "nope".into();
            let err = c.lock(other).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{name}");
        });
    }

    #[test]
    fn a_stores_ttl_bounds_hold_over_grpc() {
        let host = super::host_with(Some(super::bounded("lock.in-memory")), &[]);
        runtime().block_on(async {
            let mut c = client(&host.grpc).await;
            let grant = c.lock(lock("b", "", true)).await.unwrap().into_inner();
            assert_eq!(grant.ttl, "1.5s", "the store's defaultTTL");
            let err = c.lock(lock("c", "3m", true)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert!(err.message().contains("2m0s"), "{err:?}");
            let renewed = c.renew_lock(renew("b", &grant.lock_id, "")).await;
            let renewed = renewed.unwrap().into_inner();
            assert_eq!(renewed.ttl, "1.5s");
            let err = c.renew_lock(renew("b", &grant.lock_id, "2m1s")).await;
            let err = err.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            let (_events, streamed) = held_by_stream(&mut c, lock("s", "", false)).await;
            assert_eq!(streamed.ttl, "1.5s");
        });
    }

    #[test]
    fn a_forbidden_force_release_is_permission_denied() {
        let host = super::host_with(None, &[]);
        runtime().block_on(async {
            let mut c = client(&host.grpc).await;
            c.lock(lock("f", "", true)).await.unwrap();
            let err = c.unlock(forced("f")).await.unwrap_err();
            assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        });
    }

    #[test]
    fn a_streamed_lock_is_renewed_released_on_cancel_and_told_when_lost() {
        on_every_store(async |name, mut c| {
            let (mut events, grant) = held_by_stream(&mut c, lock("s", "1s", false)).await;
            for _ in 0..6 {
                let event = events.message().await.unwrap().unwrap().event;
                assert!(matches!(event, Some(Event::Ping(_))), "{name}: {event:?}");
            }
            let state = c.get_lock(get("s")).await.unwrap().into_inner();
            assert_eq!(
                (state.locked, state.fencing_token),
                (true, grant.fencing_token)
            );
            drop(events);
            // Released at once on cancel: a waiter gets it.
            let mut waiting = lock("s", "30s", false);
            waiting.wait_timeout = "20s".into();
            let next = c.lock(waiting).await.unwrap().into_inner();
            assert!(next.fencing_token > grant.fencing_token, "{name}");
            c.unlock(release("s", &next.lock_id)).await.unwrap();
            // A forced release ends the stream with ERR_LOCK_LOST.
            let (mut events, _) = held_by_stream(&mut c, lock("s", "30s", false)).await;
            c.unlock(forced("s")).await.unwrap();
            let err = events.message().await.unwrap_err();
            assert_eq!(err.code(), Code::Aborted, "{name}: {err:?}");
            assert!(
                err.message().starts_with("ERR_LOCK_LOST: "),
                "{name}: {err:?}"
            );
        });
    }
}
