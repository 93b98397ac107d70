//! The `lock.etcd` figures: a raw etcd client sending the same transactions as the store
//! (the row beside `lock.etcd`), the etcd calls per lock+unlock, and the time from a
//! leader's death to the next grant.

use crate::load::{Measured, Settings, Tally};
use crate::machine::CpuMeter;
use crate::servers::{Launcher, Store};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use wasilock::stores::backend::etcd_api::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, compare, kv_client::KvClient, lease_client::LeaseClient, request_op,
};
use wasilock_testkit::etcd_cluster::{EtcdCluster, MEMBERS};

/// The etcd calls counted per lock+unlock.
const METHODS: [&str; 5] = ["Txn", "Range", "DeleteRange", "LeaseGrant", "LeaseRevoke"];

/// What was measured once on `lock.etcd`.
pub struct EtcdFigures {
    /// etcd calls per lock+unlock pair through wasilock.
    pub calls_per_pair: f64,
    /// From the leader's SIGKILL to the next lock granted through wasilock.
    pub leader_kill_to_grant: Duration,
}

/// `settings.connections` channels (spread over the members) each send the store's acquire
/// and release transactions on a resource of their own, on a lease granted up front; only
/// the window is measured, with the CPU use of the members.
pub async fn raw_txn_pairs(cluster: &EtcdCluster, settings: &Settings) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let measure_from = started + settings.warmup;
    let until = measure_from + settings.duration;
    let mut tasks = Vec::new();
    for connection in 0..settings.connections {
        let channel = Endpoint::from_shared(cluster.url(connection % MEMBERS))?
            .connect()
            .await?;
        let lease = LeaseClient::new(channel.clone())
            .lease_grant(LeaseGrantRequest { ttl: 3600, id: 0 })
            .await?
            .into_inner()
            .id;
        let key = format!("/lock||raw||c{connection}").into_bytes();
        tasks.push(tokio::spawn(pairs(
            channel,
            key,
            lease,
            measure_from,
            until,
        )));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(cluster.pids());
    tokio::time::sleep_until(until.into()).await;
    Measured::total(tasks, settings.duration, meter.stop()).await
}

async fn pairs(
    channel: Channel,
    key: Vec<u8>,
    lease: i64,
    measure_from: Instant,
    until: Instant,
) -> Tally {
    let mut client = KvClient::new(channel);
    let mut tally = Tally::new(measure_from);
    while Instant::now() < until {
        for request in [acquire(&key, lease), release(&key)] {
            let sent = Instant::now();
            let ok = client
                .txn(request)
                .await
                .is_ok_and(|answer| answer.into_inner().succeeded);
            tally.record(sent, ok);
        }
    }
    tally
}

fn op(request: request_op::Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

fn read(key: &[u8]) -> RequestOp {
    op(request_op::Request::RequestRange(RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }))
}

/// The store's acquire: absent, then read and put the owner on the lease.
fn acquire(key: &[u8], lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Create as i32,
            key: key.to_vec(),
            target_union: Some(compare::TargetUnion::CreateRevision(0)),
        }],
        success: vec![
            read(key),
            op(request_op::Request::RequestPut(PutRequest {
                key: key.to_vec(),
                value: b"raw".to_vec(),
                lease,
                prev_kv: false,
            })),
        ],
        failure: vec![read(key)],
    }
}

/// The store's release: the owner's, then read and delete.
fn release(key: &[u8]) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Value as i32,
            key: key.to_vec(),
            target_union: Some(compare::TargetUnion::Value(b"raw".to_vec())),
        }],
        success: vec![
            read(key),
            op(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                },
            )),
        ],
        failure: vec![read(key)],
    }
}

/// Measures, on a cluster of its own, the etcd calls of `pairs` lock+unlock pairs through
/// wasilock, then the time from the leader's SIGKILL to the next grant.
pub fn figures(launcher: &Launcher, pairs: u64) -> anyhow::Result<Option<EtcdFigures>> {
    let Some(mut cluster) = launcher.etcd() else {
        return Ok(None);
    };
    let (server, _) = launcher.wasilock(Store::Etcd(&cluster), &[])?;
    let base = format!("http://{}", server.address);
    let agent = wasilock_testkit::agent();
    let lock =
        |resource: &str| wasilock_testkit::try_lock(&agent, &base, "lockstore", resource, "o", 30);
    let unlock =
        |resource: &str| wasilock_testkit::unlock(&agent, &base, "lockstore", resource, "o");
    let calls = |cluster: &EtcdCluster| METHODS.iter().map(|m| cluster.handled(m)).sum::<u64>();
    let before = calls(&cluster);
    for i in 0..pairs {
        let resource = format!("r{i}");
        anyhow::ensure!(lock(&resource) == Ok(true), "lock {resource} refused");
        anyhow::ensure!(unlock(&resource) == Ok(0), "unlock {resource} refused");
    }
    let calls_per_pair = (calls(&cluster) - before) as f64 / pairs as f64;
    let leader = cluster.leader();
    let killed = Instant::now();
    cluster.kill(leader);
    let mut n = 0;
    while lock(&format!("after-{n}")) != Ok(true) {
        n += 1;
        anyhow::ensure!(
            killed.elapsed() < Duration::from_secs(60),
            "no grant within 60 s of the leader's death"
        );
    }
    Ok(Some(EtcdFigures {
        calls_per_pair,
        leader_kill_to_grant: killed.elapsed(),
    }))
}
