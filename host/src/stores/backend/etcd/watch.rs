//! Releases seen by etcd, from every host and from lease expiry: one watch on the store's
//! key prefix turns each deleted lock key into a release event, so that a waiter on this
//! host is woken when a lock is released anywhere or expires, not when its own timer runs
//! out.
//!
//! The watch resumes after the last revision it saw when it is cut (a lost member, a
//! leader change: the member cancels it then), so no deletion in between is missed. When
//! etcd has compacted that revision away, the watch starts again from the present; the
//! waiters of a deletion missed that way wake at the holder's expiry, as without a watch.

use super::api::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse, watch_request};
use super::api::mvccpb::event::EventType;
use super::client::Client;
use crate::stores::events::ReleaseEvents;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often a quiet watch checks that the store still exists.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The pause before opening a watch again after it failed.
const PAUSE: Duration = Duration::from_millis(200);

/// The watch of every key under `prefix` from revision `start` (0: from now).
pub fn create_request(prefix: &[u8], start: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                start_revision: start,
                prev_kv: false,
            },
        )),
    }
}

/// The end of the range of keys that start with `prefix` (etcd's `GetPrefixRangeEnd`):
/// the prefix with its last byte below 0xff incremented, and what follows it cut.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte is 0xff: to the end of the key space.
    vec![0]
}

/// What one answer of a watch says: the lock keys deleted (without `prefix`), and the
/// revision to resume from if the watch is cut after it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Lock keys deleted, in etcd's order.
    pub released: Vec<String>,
    /// The revision after the last one this answer covers (0: unchanged).
    pub resume_at: i64,
    /// etcd ended the watch (canceled, or its start revision was compacted).
    pub ended: bool,
}

/// Reads one answer of the watch of `prefix`, opened from now (`from_now`) or from a past
/// revision. A watch from now has seen everything up to the revision it was created at; one
/// from a past revision has not (the events since then come after its creation).
pub fn seen(prefix: &[u8], answer: &WatchResponse, from_now: bool) -> Seen {
    let mut seen = Seen {
        ended: answer.canceled,
        ..Seen::default()
    };
    if answer.created
        && from_now
        && let Some(header) = &answer.header
    {
        seen.resume_at = header.revision + 1;
    }
    for event in &answer.events {
        let Some(kv) = &event.kv else { continue };
        seen.resume_at = seen.resume_at.max(kv.mod_revision + 1);
        if event.r#type == EventType::Delete as i32
            && let Some(key) = kv.key.strip_prefix(prefix)
            && let Ok(key) = std::str::from_utf8(key)
        {
            seen.released.push(key.to_string());
        }
    }
    seen
}

/// Watches every lock key under `prefix` and tells `events` each one deleted, until the
/// store is gone; opens the watch again (at the next endpoint) whenever it is cut.
pub async fn forward_releases(client: Arc<Client>, prefix: Vec<u8>, events: Weak<ReleaseEvents>) {
    let mut resume_at = 0;
    while events.strong_count() > 0 {
        let from_now = resume_at == 0;
        match client.watch(create_request(&prefix, resume_at)).await {
            Ok(mut answers) => loop {
                let answer = match tokio::time::timeout(CHECK_EVERY, answers.message()).await {
                    Ok(Ok(Some(answer))) => answer,
                    Ok(Ok(None)) => break,
                    Ok(Err(status)) => {
                        tracing::debug!("etcd watch of lock releases cut: {status}");
                        break;
                    }
                    Err(_) if events.strong_count() == 0 => return,
                    Err(_) => continue,
                };
                let Some(events) = events.upgrade() else {
                    return;
                };
                let seen = seen(&prefix, &answer, from_now);
                for key in &seen.released {
                    events.released(key);
                }
                if answer.compact_revision > 0 {
                    resume_at = 0;
                } else if seen.resume_at > 0 {
                    resume_at = seen.resume_at;
                }
                if seen.ended {
                    break;
                }
            },
            Err(failure) => {
                tracing::debug!("cannot watch lock releases: {failure}");
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::etcdserverpb::ResponseHeader;
    use super::super::api::mvccpb::{Event, KeyValue};
    use super::*;

    fn event(kind: EventType, key: &[u8], revision: i64) -> Event {
        Event {
            r#type: kind as i32,
            kv: Some(KeyValue {
                key: key.to_vec(),
                mod_revision: revision,
                ..KeyValue::default()
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn the_prefix_range_ends_after_every_key_that_starts_with_it() {
        assert_eq!(prefix_end(b"locks/"), b"locks0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        let WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        } = create_request(b"p/", 7)
        else {
            panic!("not a create request");
        };
        assert_eq!(
            (create.key, create.range_end),
            (b"p/".to_vec(), b"p0".to_vec())
        );
        assert_eq!(create.start_revision, 7);
    }

    #[test]
    fn deletions_are_releases_and_the_watch_resumes_after_the_last_revision() {
        let answer = WatchResponse {
            events: vec![
                event(EventType::Put, b"p/lock||a||r1", 10),
                event(EventType::Delete, b"p/lock||a||r1", 11),
                event(EventType::Delete, b"p/lock||a||r2", 12),
            ],
            ..WatchResponse::default()
        };
        let seen = seen(b"p/", &answer, false);
        assert_eq!(seen.released, ["lock||a||r1", "lock||a||r2"]);
        assert_eq!(seen.resume_at, 13);
        assert!(!seen.ended);
    }

    #[test]
    fn a_watch_from_now_resumes_after_its_creation_and_a_canceled_one_ends() {
        let created = WatchResponse {
            created: true,
            header: Some(ResponseHeader {
                revision: 40,
                ..ResponseHeader::default()
            }),
            ..WatchResponse::default()
        };
        assert_eq!(seen(b"p/", &created, true).resume_at, 41);
        // Resumed from a past revision: the events since then are still to come.
        assert_eq!(seen(b"p/", &created, false).resume_at, 0);
        let canceled = WatchResponse {
            canceled: true,
            compact_revision: 30,
            ..WatchResponse::default()
        };
        let seen = seen(b"p/", &canceled, true);
        assert!(seen.ended);
        assert_eq!(seen.resume_at, 0);
    }
}
