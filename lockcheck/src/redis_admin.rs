//! Talking to Redis servers and Sentinels directly, beside the hosts: one-off commands, the
//! master a Sentinel names, and a Sentinel's events recorded during a run.

use crate::history::Note;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends one command to the server or Sentinel at `address`; the answer as text, one line
/// per element.
pub fn query(address: &str, command: &[&str]) -> redis::RedisResult<String> {
    let mut connection = redis::Client::open(format!("redis://{address}/"))?.get_connection()?;
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    let value: redis::Value = cmd.query(&mut connection)?;
    Ok(text(&value))
}

fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text).collect::<Vec<_>>().join("\n")
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}\n{}", text(k), text(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{other:?}"),
    }
}

/// The port of the master the Sentinel at `sentinel` names `name`, if it names one.
pub fn master_port(sentinel: &str, name: &str) -> Option<u16> {
    let answer = query(sentinel, &["SENTINEL", "get-master-addr-by-name", name]).ok()?;
    answer.lines().last()?.trim().parse().ok()
}

/// A Sentinel's events (`+sdown`, `+switch-master`, `+tilt`, ...) as they are published.
pub struct SentinelEvents {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Note>>,
}

impl SentinelEvents {
    /// Subscribes to every event of the Sentinel at `address`, timed from `origin`; fails
    /// when it cannot subscribe.
    pub fn follow(address: &str, origin: Instant) -> redis::RedisResult<Self> {
        let mut connection =
            redis::Client::open(format!("redis://{address}/"))?.get_connection()?;
        connection.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut pubsub = connection.as_pubsub();
            let mut notes = Vec::new();
            if let Err(e) = pubsub.psubscribe("*") {
                notes.push(note(origin, format!("cannot follow the Sentinel: {e}")));
                return notes;
            }
            while !stopped.load(Ordering::Relaxed) {
                match pubsub.get_message() {
                    Ok(message) => {
                        let payload: String = message.get_payload().unwrap_or_default();
                        let channel = message.get_channel_name().to_string();
                        notes.push(note(origin, format!("Sentinel {channel} {payload}")));
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        notes.push(note(origin, format!("the Sentinel's events stopped: {e}")));
                        break;
                    }
                }
            }
            notes
        });
        Ok(SentinelEvents { stop, thread })
    }

    /// Stops following; the events seen.
    pub fn stop(self) -> Vec<Note> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the Sentinel follower panicked")
    }
}

fn note(origin: Instant, what: String) -> Note {
    Note {
        at: origin.elapsed(),
        what,
    }
}
