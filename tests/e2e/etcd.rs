//! End-to-end tests of `lock.etcd` on a real 3-member etcd cluster: Dapr's conformance
//! sequence, every answer of the lock API as the in-memory store gives it, Dapr's key
//! layout under `keyPrefixPath` (read back with a raw etcd client), two hosts racing, a
//! killed leader under load, a whole-cluster outage and recovery, start-up refusals, TLS
//! with client certificates, etcd's user authentication, and an alpha2 waiter on one host
//! woken by a release on another (through etcd's watch).

use wasilock_testkit as common;

use common::alpha2::{Alpha2, Grant};
use common::etcd_cluster::EtcdCluster;
use common::load::{assert_store_failure, under_load};
use common::redis_server::TlsFiles;
use common::{Host, Options, component, component_with_refs, conformance_sequence};
use std::time::{Duration, Instant};
use wasilock::stores::backend::etcd_api::etcdserverpb::{
    PutRequest, RangeResponse, RequestOp, TxnRequest, request_op,
};
use wasilock::stores::backend::etcd_api::etcdserverpb::{RangeRequest, kv_client::KvClient};

fn etcd_component(name: &str, cluster: &EtcdCluster, extra: &[(&str, &str)]) -> String {
    let endpoints = cluster.endpoints();
    let mut metadata = vec![("endpoints", endpoints.as_str())];
    metadata.extend_from_slice(extra);
    component(name, "lock.etcd", &metadata)
}

fn host_on(cluster: &EtcdCluster, app_id: &str, extra: &[(&str, &str)]) -> Host {
    Host::start_on(app_id, &etcd_component("shared", cluster, extra))
}

/// A raw etcd client of member 0, for reading and writing keys beside the hosts.
struct Raw {
    runtime: tokio::runtime::Runtime,
    url: String,
}

impl Raw {
    fn new(cluster: &EtcdCluster) -> Self {
        Raw {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            url: cluster.url(0),
        }
    }

    fn client(&self) -> KvClient<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(self.url.clone())
            .unwrap()
            .connect_lazy();
        KvClient::new(channel)
    }

    /// Every key with its value, create revision and lease.
    fn all(&self) -> Vec<(String, String, i64, i64)> {
        let answer: RangeResponse = self.runtime.block_on(async {
            let request = RangeRequest {
                key: vec![0],
                range_end: vec![0],
                ..Default::default()
            };
            self.client().range(request).await.unwrap().into_inner()
        });
        answer
            .kvs
            .into_iter()
            .map(|kv| {
                (
                    String::from_utf8(kv.key).unwrap(),
                    String::from_utf8(kv.value).unwrap(),
                    kv.create_revision,
                    kv.lease,
                )
            })
            .collect()
    }

    /// Puts `value` at `key` without a lease (a transaction with no compare).
    fn put(&self, key: &str, value: &str) {
        self.runtime.block_on(async {
            let put = PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                ..Default::default()
            };
            let request = TxnRequest {
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(put)),
                }],
                ..Default::default()
            };
            self.client().txn(request).await.unwrap();
        });
    }
}

#[test]
fn conformance_sequence_on_etcd() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let host = host_on(&cluster, "conformance", &[]);
    assert!(host.banner().contains("lock.etcd"), "{}", host.banner());
    conformance_sequence(&host, "shared");
}

#[test]
fn every_answer_is_the_one_the_in_memory_store_gives() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let start =
        |yaml: &str| Host::start_with(Options::new().resources(&[("lockstore.yaml", yaml)]));
    let on_etcd = start(&etcd_component("lockstore", &cluster, &[]));
    let in_memory = start(&component("lockstore", "lock.in-memory", &[]));
    let cases = common::http_cases::http_cases();
    common::http_cases::assert_same_answers(&on_etcd.base, &in_memory.base, &cases, String::new);
}

#[test]
fn keys_are_daprs_layout_under_the_prefix_path_with_the_owner_on_a_lease() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let raw = Raw::new(&cluster);
    let host = host_on(&cluster, "billing", &[]);
    assert_eq!(host.lock("shared", "invoice-8", "worker-1", 30), Ok(true));
    let keys = raw.all();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (key, value, revision, lease) = &keys[0];
    assert_eq!(
        (key.as_str(), value.as_str()),
        ("/lock||billing||invoice-8", "worker-1")
    );
    assert!(*revision > 0 && *lease != 0, "{keys:?}");
    // The lease outlives the TTL: 30 s rounded up, plus the one-second sharing window.
    let lease_hex = format!("{lease:x}");
    let ttl = cluster
        .etcdctl(0, &["lease", "timetolive", &lease_hex])
        .unwrap();
    let ttl = String::from_utf8(ttl).unwrap();
    assert!(ttl.contains("granted with TTL(31s)"), "{ttl}");
    assert_eq!(host.unlock("shared", "invoice-8", "worker-2"), Ok(2));
    assert_eq!(host.unlock("shared", "invoice-8", "worker-1"), Ok(0));
    assert_eq!(raw.all(), []);

    // A lock written by another client with the same layout holds for wasilock too.
    raw.put("/lock||billing||invoice-7", "sidecar");
    assert_eq!(host.lock("shared", "invoice-7", "wasilock", 30), Ok(false));
    assert_eq!(host.unlock("shared", "invoice-7", "sidecar"), Ok(0));
    assert_eq!(raw.all(), []);

    // keyPrefix strategies, under keyPrefixPath.
    for (prefix, key) in [
        ("name", "locks/lock||shared||r"),
        ("none", "locks/lock||r"),
        ("team-a", "locks/lock||team-a||r"),
    ] {
        let host = host_on(
            &cluster,
            "app",
            &[("keyPrefix", prefix), ("keyPrefixPath", "locks")],
        );
        assert_eq!(host.lock("shared", "r", "o", 30), Ok(true), "{prefix}");
        let keys = raw.all();
        assert_eq!(
            keys.iter()
                .map(|k| (k.0.as_str(), k.1.as_str()))
                .collect::<Vec<_>>(),
            [(key, "o")],
            "{prefix}"
        );
        assert_eq!(host.unlock("shared", "r", "o"), Ok(0));
    }
}

#[test]
fn each_lock_and_unlock_is_one_etcd_transaction() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let host = host_on(&cluster, "counted", &[]);
    let methods = ["Txn", "Range", "DeleteRange", "LeaseGrant", "LeaseRevoke"];
    let counts = || methods.map(|m| cluster.handled(m));
    let before = counts();
    let pairs = 20;
    for i in 0..pairs {
        assert_eq!(host.lock("shared", &format!("r{i}"), "o", 30), Ok(true));
        assert_eq!(host.unlock("shared", &format!("r{i}"), "o"), Ok(0));
    }
    let after = counts();
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // One Txn per call and nothing else on the way, but a lease now and then (one per
    // second of locks at most, shared by the locks of that second; revoked once empty).
    assert_eq!(&delta[..3], &[2 * pairs, 0, 0], "{methods:?}: {delta:?}");
    assert!(delta[3] >= 1 && delta[3] <= pairs, "{methods:?}: {delta:?}");
}

#[test]
fn two_hosts_on_one_cluster_grant_each_lock_once() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let first = host_on(&cluster, "race", &[]);
    let second = host_on(&cluster, "race", &[]);
    common::one_winner_rounds(&[&first.base, &second.base], "shared", "r", 8, 20);
    assert_eq!(first.lock("shared", "x", "one", 30), Ok(true));
    assert_eq!(second.lock("shared", "x", "two", 30), Ok(false));
    assert_eq!(second.unlock("shared", "x", "one"), Ok(0));
}

/// A failure is daprd's 500 naming etcd.
fn assert_named_500(status: u16, body: &str) {
    assert_store_failure(status, body, "etcd at 127.0.0.1:");
}

#[test]
fn a_killed_leader_stops_neither_grants_nor_the_locks_held() {
    let Some(mut cluster) = EtcdCluster::start() else {
        return;
    };
    let host = host_on(&cluster, "failover", &[("dialTimeout", "2s")]);
    assert_eq!(host.lock("shared", "held", "holder", 60), Ok(true));
    let (killed_at, outcomes) = under_load(&host.base, "shared", 4, || {
        std::thread::sleep(Duration::from_millis(500));
        let leader = cluster.leader();
        let killed_at = Instant::now();
        cluster.kill(leader);
        // Grants resume once a new leader is elected.
        common::wait_until(
            "a grant after the leader was killed",
            Duration::from_secs(15),
            || host.lock("shared", "after-kill", "o", 30) == Ok(true),
        );
        std::thread::sleep(Duration::from_secs(1));
        killed_at
    });
    assert!(
        outcomes.iter().any(|o| o.ended() < killed_at),
        "no load before the kill"
    );
    assert!(outcomes.iter().any(|o| o.ended() > killed_at && o.right()));
    for outcome in &outcomes {
        // Never a wrong answer; at worst daprd's 500 naming etcd.
        if outcome.status == 200 {
            assert_eq!(outcome.wrong, "", "a wrong answer");
        } else {
            assert_named_500(outcome.status, &outcome.wrong);
        }
    }
    // The lock held before the kill still holds.
    assert_eq!(host.lock("shared", "held", "other", 60), Ok(false));
    assert_eq!(host.unlock("shared", "held", "holder"), Ok(0));
}

#[test]
fn a_whole_cluster_outage_fails_naming_etcd_and_recovery_needs_nothing() {
    let Some(mut cluster) = EtcdCluster::start() else {
        return;
    };
    let host = Host::start_with(Options::new().app_id("outage").resources(&[
        (
            "etcd.yaml",
            &etcd_component("shared", &cluster, &[("dialTimeout", "500ms")]),
        ),
        ("memory.yaml", &component("local", "lock.in-memory", &[])),
    ]));
    assert_eq!(host.lock("shared", "before", "o", 60), Ok(true));
    cluster.kill_all();
    let reply = host.lock("shared", "r", "o", 5).unwrap_err();
    assert_named_500(reply.status, &reply.body);
    let reply = host.unlock("shared", "before", "o").unwrap_err();
    assert_named_500(reply.status, &reply.body);
    // Other stores keep serving.
    assert_eq!(host.lock("local", "r", "o", 5), Ok(true));
    for i in 0..common::etcd_cluster::MEMBERS {
        cluster.restart(i);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match host.lock("shared", "after", "o", 5) {
            Ok(true) => break,
            other => assert!(Instant::now() < deadline, "no recovery: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // What was held before the outage is still held.
    assert_eq!(host.lock("shared", "before", "p", 60), Ok(false));
    assert_eq!(host.unlock("shared", "before", "o"), Ok(0));
}

#[test]
fn start_up_refuses_what_the_host_cannot_honour_naming_file_component_and_property() {
    let Some(cluster) = EtcdCluster::start() else {
        return;
    };
    let refused = |yaml: &str, needles: &[&str]| {
        let options = Options::new().resources(&[("etcd.yaml", yaml)]);
        Host::refused(options, &format!("start-up must fail: {yaml}"), needles);
    };
    for (extra, needle) in [
        (
            &[("keyPassword", "x")][..],
            "metadata property keyPassword is set",
        ),
        (
            &[("ca", "PEM")],
            "metadata property ca is set but tlsEnable is not true",
        ),
        (&[("tlsEnable", "true")], "metadata property ca is empty"),
        (&[("dialTimeout", "soon")], "metadata property dialTimeout"),
        (
            &[("password", "p")],
            "metadata property password is set without username",
        ),
    ] {
        let yaml = etcd_component("shared", &cluster, extra);
        refused(&yaml, &["etcd.yaml", r#"component "shared""#, needle]);
    }
    refused(
        &component("shared", "lock.etcd", &[("keyPrefixPath", "x")]),
        &["metadata property endpoints is empty"],
    );
    let unreachable = component(
        "shared",
        "lock.etcd",
        &[("endpoints", "127.0.0.1:1"), ("dialTimeout", "300ms")],
    );
    refused(
        &unreachable,
        &[
            "etcd.yaml",
            "shared",
            "cannot connect to etcd at 127.0.0.1:1",
        ],
    );

    // Ignored and unknown names are accepted, each with a log line.
    let host = host_on(
        &cluster,
        "tuned",
        &[("maxTxnOps", "64"), ("endpionts", "x")],
    );
    assert_eq!(host.lock("shared", "r", "o", 5), Ok(true));
    host.assert_logged(&[
        "metadata property maxTxnOps is ignored",
        "metadata property endpionts is not one lock.etcd reads",
    ]);
}

#[test]
fn tls_checks_the_servers_and_presents_the_client_certificate() {
    let Some((tls, cluster)) = TlsFiles::generate_for(EtcdCluster::start_tls) else {
        return;
    };
    let ca = std::fs::read_to_string(tls.ca_file()).unwrap();
    let (cert, key) = (tls.client_cert(), tls.client_key());
    let endpoints = cluster.endpoints();
    let metadata = [
        ("endpoints", endpoints.as_str()),
        ("tlsEnable", "true"),
        ("dialTimeout", "2s"),
    ];
    // With the authority, and the client certificate when `certificates` refs name it.
    let yaml = |certificates: &[(&str, &str)]| {
        let refs = [&[("ca", "TEST_CA")], certificates].concat();
        component_with_refs("shared", "lock.etcd", &metadata, &refs)
    };
    let options = |yaml: &str, ca: &str| {
        Options::new()
            .app_id("tls")
            .resources(&[("etcd.yaml", yaml)])
            .envs(&[
                ("TEST_CA", ca),
                ("TEST_CLIENT_CERT", &cert),
                ("TEST_CLIENT_KEY", &key),
            ])
    };
    let cannot_connect = format!("cannot connect to etcd at {}", cluster.endpoints());
    // The members ask for a client certificate: without one, no start.
    Host::refused(
        options(&yaml(&[]), &ca),
        "no client certificate: no start",
        &[&cannot_connect],
    );
    let certificates = [("cert", "TEST_CLIENT_CERT"), ("key", "TEST_CLIENT_KEY")];
    // An authority that did not sign the members' certificates: no start.
    let Some(other) = TlsFiles::generate() else {
        return;
    };
    let other_ca = std::fs::read_to_string(other.ca_file()).unwrap();
    Host::refused(
        options(&yaml(&certificates), &other_ca),
        "an unknown authority: no start",
        &[&cannot_connect],
    );
    let host = Host::start_with(options(&yaml(&certificates), &ca));
    conformance_sequence(&host, "shared");
}

#[test]
fn etcd_users_log_in_again_when_the_token_expires_and_wrong_credentials_stop_start_up() {
    // Tokens expire after a second without use.
    let Some(mut cluster) = EtcdCluster::start_with(&["--auth-token-ttl", "1"]) else {
        return;
    };
    cluster.enable_auth("s3cret");
    let wrong = etcd_component(
        "shared",
        &cluster,
        &[
            ("username", "root"),
            ("password", "wrong"),
            ("dialTimeout", "1s"),
        ],
    );
    let failure = Host::refused(
        Options::new().resources(&[("etcd.yaml", &wrong)]),
        "a wrong password: no start",
        &[
            "etcd.yaml",
            "cannot connect to etcd at",
            "authentication failed",
        ],
    );
    assert!(
        !failure.stderr.contains("wrong"),
        "the password is not printed"
    );
    let host = host_on(
        &cluster,
        "auth",
        &[("username", "root"), ("password", "s3cret")],
    );
    assert_eq!(host.lock("shared", "r", "o", 30), Ok(true));
    let logins = cluster.handled("Authenticate");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(host.unlock("shared", "r", "o"), Ok(0));
    assert!(cluster.handled("Authenticate") > logins, "logged in again");
    assert_eq!(host.lock("shared", "r", "o", 30), Ok(true));
}

#[test]
fn a_release_on_one_host_wakes_a_waiter_on_another_through_etcd_even_after_an_outage() {
    let Some(mut cluster) = EtcdCluster::start() else {
        return;
    };
    let one = host_on(&cluster, "waking", &[("dialTimeout", "2s")]);
    let two = host_on(&cluster, "waking", &[("dialTimeout", "2s")]);
    for round in ["first", "after the whole cluster was killed and restarted"] {
        let holder = Alpha2::new(&one.base).grant("shared", "r", r#"{"ttl":"10m"}"#);
        if round != "first" {
            // Every watch is cut; the waiter's host must watch again, from where it was.
            cluster.kill_all();
            for i in 0..common::etcd_cluster::MEMBERS {
                cluster.restart(i);
            }
            cluster.wait_for_leader();
        }
        let waiter = {
            let api = Alpha2::new(&two.base);
            // Far shorter than the holder's TTL: only the release can grant it in time.
            std::thread::spawn(move || api.acquire("shared", "r", r#"{"waitTimeout":"20s"}"#))
        };
        std::thread::sleep(Duration::from_millis(500));
        let reply = Alpha2::new(&one.base).release("shared", "r", &holder.lock_id);
        assert_eq!(reply.status, 204, "{round}: {reply:?}");
        let reply = waiter.join().unwrap();
        assert_eq!(reply.status, 200, "{round}: not woken: {reply:?}");
        let grant = Grant::from_json(&reply.body);
        assert!(grant.fencing_token > holder.fencing_token, "{round}");
        let reply = Alpha2::new(&two.base).release("shared", "r", &grant.lock_id);
        assert_eq!(reply.status, 204, "{round}: {reply:?}");
    }
}
