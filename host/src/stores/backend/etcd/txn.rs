//! A compare-and-swap as one etcd `Txn`, what its answer means, and what reading the key
//! back means when the answer was lost.
//!
//! The `Txn` compares the key's value (or, for "absent", its create revision with 0), then
//! reads the key and puts the new value on a lease or deletes the key; on a failed compare
//! it reads the key, so a conflict carries the live value in the same round trip. A read of
//! the key in the `Txn` gives the lock's create revision: its fencing token.
//!
//! A request cut off (lost connection, leader change) may have been applied. The key read
//! back decides: the compare still holds (not applied, or applied and undone): send it
//! again; the key shows the write: applied; else a conflict with the live value.

use super::api::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
    compare, request_op, response_op,
};
use super::api::mvccpb::KeyValue;
use crate::stores::backend::CasOutcome;

/// One compare-and-swap on an etcd key.
#[derive(Debug, Clone, Copy)]
pub struct Cas<'a> {
    /// The etcd key.
    pub key: &'a [u8],
    /// The value it must hold; `None`: it must be absent.
    pub expected: Option<&'a [u8]>,
    /// The value to put; `None`: delete.
    pub new: Option<&'a [u8]>,
    /// The lease the new value goes on (0: none).
    pub lease: i64,
}

/// A compare-and-swap's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Swapped, or the conflict with the live value.
    pub outcome: CasOutcome,
    /// The create revision of the key as it now is (the fencing token of the lock it
    /// holds); `None` when it is absent.
    pub revision: Option<i64>,
    /// The lease the key was on before a swap, if any: the lock left it.
    pub left_lease: Option<i64>,
}

/// What a key read back after a lost answer says of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// The compare holds: send the request again.
    Resend,
    /// The write is there.
    Applied(Applied),
}

impl Cas<'_> {
    /// The `Txn`.
    pub fn request(&self) -> TxnRequest {
        let key = self.key.to_vec();
        let compare = match self.expected {
            None => Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                key: key.clone(),
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
            },
            Some(value) => Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Value as i32,
                key: key.clone(),
                target_union: Some(compare::TargetUnion::Value(value.to_vec())),
            },
        };
        let write = match self.new {
            Some(value) => request_op::Request::RequestPut(PutRequest {
                key: key.clone(),
                value: value.to_vec(),
                lease: self.lease,
                prev_kv: false,
            }),
            None => request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.clone(),
                ..Default::default()
            }),
        };
        TxnRequest {
            compare: vec![compare],
            success: vec![
                read(&key),
                RequestOp {
                    request: Some(write),
                },
            ],
            failure: vec![read(&key)],
        }
    }

    /// What the `Txn`'s answer means.
    pub fn applied(&self, response: &TxnResponse) -> anyhow::Result<Applied> {
        let before = match response.responses.first().and_then(|r| r.response.as_ref()) {
            Some(response_op::Response::ResponseRange(range)) => range.kvs.first(),
            _ => anyhow::bail!("etcd answered a transaction without the read it asked for"),
        };
        if !response.succeeded {
            return Ok(Applied {
                outcome: CasOutcome::Conflict(before.map(|kv| kv.value.clone())),
                revision: before.map(|kv| kv.create_revision),
                left_lease: None,
            });
        }
        let revision = match (self.new, before) {
            (None, _) => None,
            (Some(_), Some(kv)) => Some(kv.create_revision),
            (Some(_), None) => response.header.as_ref().map(|h| h.revision),
        };
        // A release reports the token of the lock it ended.
        let token = revision.or(before.map(|kv| kv.create_revision));
        Ok(Applied {
            outcome: CasOutcome::Swapped(fencing_token(token)),
            revision,
            left_lease: before.map(|kv| kv.lease).filter(|lease| *lease != 0),
        })
    }

    /// What the key as read back (`live`) says of this request, whose answer was lost.
    pub fn read_back(&self, live: Option<&KeyValue>) -> ReadBack {
        let holds = match (self.expected, live) {
            (None, None) => true,
            (Some(expected), Some(kv)) => kv.value == expected,
            _ => false,
        };
        if holds {
            return ReadBack::Resend;
        }
        let written = match (self.new, live) {
            (None, None) => true,
            (Some(new), Some(kv)) => kv.value == new && kv.lease == self.lease,
            _ => false,
        };
        ReadBack::Applied(match written {
            // Which lease it left is unknown: the pool keeps counting it.
            // A release read back finds no key: its token is no longer readable (0).
            true => Applied {
                outcome: CasOutcome::Swapped(fencing_token(live.map(|kv| kv.create_revision))),
                revision: live.map(|kv| kv.create_revision),
                left_lease: None,
            },
            false => Applied {
                outcome: CasOutcome::Conflict(live.map(|kv| kv.value.clone())),
                revision: live.map(|kv| kv.create_revision),
                left_lease: None,
            },
        })
    }
}

/// A create revision as a fencing token; 0 when there is none.
pub fn fencing_token(revision: Option<i64>) -> u64 {
    revision.and_then(|r| u64::try_from(r).ok()).unwrap_or(0)
}

/// A linearizable read of `key`.
pub fn range(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

fn read(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(range(key))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::etcdserverpb::{RangeResponse, ResponseHeader, ResponseOp};
    use super::*;

    fn kv(value: &[u8], create_revision: i64, lease: i64) -> KeyValue {
        KeyValue {
            key: b"k".to_vec(),
            create_revision,
            mod_revision: create_revision,
            version: 1,
            value: value.to_vec(),
            lease,
        }
    }

    fn answer(succeeded: bool, before: Option<KeyValue>, revision: i64) -> TxnResponse {
        TxnResponse {
            header: Some(ResponseHeader {
                revision,
                ..Default::default()
            }),
            succeeded,
            responses: vec![ResponseOp {
                response: Some(response_op::Response::ResponseRange(RangeResponse {
                    kvs: before.into_iter().collect(),
                    ..Default::default()
                })),
            }],
        }
    }

    const ACQUIRE: Cas = Cas {
        key: b"k",
        expected: None,
        new: Some(b"me"),
        lease: 7,
    };
    const RELEASE: Cas = Cas {
        key: b"k",
        expected: Some(b"me"),
        new: None,
        lease: 0,
    };
    const RENEW: Cas = Cas {
        key: b"k",
        expected: Some(b"me"),
        new: Some(b"me"),
        lease: 8,
    };

    #[test]
    fn the_txn_compares_then_reads_and_writes() {
        let acquire = ACQUIRE.request();
        assert_eq!(
            acquire.compare[0].target_union,
            Some(compare::TargetUnion::CreateRevision(0))
        );
        assert_eq!(
            acquire.compare[0].target,
            compare::CompareTarget::Create as i32
        );
        assert!(matches!(
            &acquire.success[1].request,
            Some(request_op::Request::RequestPut(put)) if put.lease == 7 && put.value == b"me"
        ));
        assert!(matches!(
            &acquire.failure[..],
            [RequestOp { request: Some(request_op::Request::RequestRange(r)) }] if r.key == b"k" && !r.serializable
        ));
        let release = RELEASE.request();
        assert_eq!(
            release.compare[0].target_union,
            Some(compare::TargetUnion::Value(b"me".to_vec()))
        );
        assert!(matches!(
            &release.success[1].request,
            Some(request_op::Request::RequestDeleteRange(d)) if d.key == b"k"
        ));
    }

    #[test]
    fn answers_give_the_outcome_and_the_fencing_token() {
        // A fresh key: its create revision is the transaction's.
        assert_eq!(
            ACQUIRE.applied(&answer(true, None, 42)).unwrap(),
            Applied {
                outcome: CasOutcome::Swapped(42),
                revision: Some(42),
                left_lease: None
            }
        );
        // A renewal keeps the key, so its create revision (the token) stays.
        assert_eq!(
            RENEW
                .applied(&answer(true, Some(kv(b"me", 40, 7)), 42))
                .unwrap(),
            Applied {
                outcome: CasOutcome::Swapped(40),
                revision: Some(40),
                left_lease: Some(7)
            }
        );
        assert_eq!(
            ACQUIRE
                .applied(&answer(false, Some(kv(b"other", 30, 5)), 42))
                .unwrap(),
            Applied {
                outcome: CasOutcome::Conflict(Some(b"other".to_vec())),
                revision: Some(30),
                left_lease: None
            }
        );
        assert_eq!(
            RELEASE.applied(&answer(false, None, 42)).unwrap().outcome,
            CasOutcome::Conflict(None)
        );
        let released = RELEASE
            .applied(&answer(true, Some(kv(b"me", 40, 7)), 42))
            .unwrap();
        assert_eq!(
            (released.outcome, released.revision, released.left_lease),
            (CasOutcome::Swapped(40), None, Some(7))
        );
        assert!(ACQUIRE.applied(&TxnResponse::default()).is_err());
    }

    #[test]
    fn a_lost_answer_is_decided_by_the_key_read_back() {
        // Acquire: absent = not applied (or undone): send again; ours = applied; another
        // owner's = conflict. Never a definite answer without the read.
        assert_eq!(ACQUIRE.read_back(None), ReadBack::Resend);
        for (read, outcome, case) in [
            (kv(b"me", 50, 7), CasOutcome::Swapped(50), "ours"),
            (
                kv(b"me", 50, 3),
                CasOutcome::Conflict(Some(b"me".to_vec())),
                "the same owner on another lease: held before",
            ),
            (
                kv(b"other", 50, 7),
                CasOutcome::Conflict(Some(b"other".to_vec())),
                "another owner's",
            ),
        ] {
            let applied = Applied {
                outcome,
                revision: Some(50),
                left_lease: None,
            };
            assert_eq!(
                ACQUIRE.read_back(Some(&read)),
                ReadBack::Applied(applied),
                "{case}"
            );
        }
        // Release: still ours = send again; gone = released; another owner's = conflict.
        assert_eq!(RELEASE.read_back(Some(&kv(b"me", 50, 7))), ReadBack::Resend);
        assert!(matches!(
            RELEASE.read_back(None),
            ReadBack::Applied(Applied {
                outcome: CasOutcome::Swapped(0),
                revision: None,
                ..
            })
        ));
        assert!(matches!(
            RELEASE.read_back(Some(&kv(b"other", 60, 7))),
            ReadBack::Applied(Applied {
                outcome: CasOutcome::Conflict(Some(_)),
                ..
            })
        ));
        // Renewal: ours on any lease = send again (idempotent); gone = conflict.
        assert_eq!(RENEW.read_back(Some(&kv(b"me", 50, 8))), ReadBack::Resend);
        assert_eq!(RENEW.read_back(Some(&kv(b"me", 50, 7))), ReadBack::Resend);
        assert!(matches!(
            RENEW.read_back(None),
            ReadBack::Applied(Applied {
                outcome: CasOutcome::Conflict(None),
                ..
            })
        ));
    }
}
