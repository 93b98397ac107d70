//! The JSON of the alpha2 HTTP API: request bodies (every field optional, unknown fields
//! ignored), grant and inspection answers, and the lines of a lock held by a stream.

use super::{Alpha2Error, Grant, LockState};
use crate::duration;
use std::time::Duration;

/// The body of an acquire (`POST`), every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AcquireBody {
    /// The TTL, a Go duration.
    pub ttl: Option<String>,
    /// Answer at once when held, instead of waiting.
    pub immediate: bool,
    /// How long to wait at most, a Go duration.
    pub wait_timeout: Option<String>,
}

/// The body of a renewal (`PUT`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RenewBody {
    /// The lock ID.
    #[serde(rename = "lockID")]
    pub lock_id: String,
    /// The new TTL, a Go duration.
    pub ttl: Option<String>,
}

/// The body of a release (`DELETE`): a lock ID, or `force`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReleaseBody {
    /// The lock ID.
    #[serde(rename = "lockID")]
    pub lock_id: String,
    /// Release whoever holds it.
    pub force: bool,
}

/// Parses an alpha2 body; an empty body is every field's default, unknown fields are
/// ignored.
pub fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Alpha2Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| Alpha2Error::MalformedRequest(format!("failed deserializing HTTP body: {e}")))
}

/// A wait bound asked for: a Go duration (zero allowed: do not wait).
pub fn wait_timeout(text: &str) -> Result<Duration, Alpha2Error> {
    duration::parse(text)
        .map_err(|e| Alpha2Error::MalformedRequest(format!("invalid waitTimeout: {e}")))
}

/// The JSON of a grant, in the order the API documents.
#[derive(serde::Serialize)]
struct GrantJson<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(rename = "lockID")]
    lock_id: &'a str,
    #[serde(rename = "fencingToken")]
    fencing_token: String,
    ttl: String,
}

impl<'a> GrantJson<'a> {
    fn new(kind: Option<&'static str>, grant: &'a Grant) -> Self {
        GrantJson {
            kind,
            lock_id: &grant.lock_id,
            // A string: JSON numbers lose precision beyond 2^53.
            fencing_token: grant.fencing_token.to_string(),
            ttl: duration::format(grant.ttl),
        }
    }
}

/// `{"lockID":"…","fencingToken":"17","ttl":"30s"}`.
pub fn grant_body(grant: &Grant) -> String {
    serde_json::to_string(&GrantJson::new(None, grant)).expect("plain data serializes")
}

/// `{"locked":true,"fencingToken":"17","expiresIn":"12.5s"}` or `{"locked":false}`.
pub fn state_body(state: Option<&LockState>) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct StateJson {
        locked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        fencing_token: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_in: Option<String>,
    }
    serde_json::to_string(&StateJson {
        locked: state.is_some(),
        fencing_token: state.map(|s| s.fencing_token.to_string()),
        expires_in: state.and_then(|s| s.expires_in).map(duration::format),
    })
    .expect("plain data serializes")
}

/// The first line of a lock held by a stream:
/// `{"type":"lock-acquired","lockID":"…","fencingToken":"17","ttl":"30s"}`.
pub fn stream_acquired_line(grant: &Grant) -> String {
    serde_json::to_string(&GrantJson::new(Some("lock-acquired"), grant))
        .expect("plain data serializes")
}

/// A keep-alive line of a lock held by a stream.
pub const STREAM_PING_LINE: &str = r#"{"type":"ping"}"#;

/// The last line of a stream whose lock is lost or was never granted:
/// `{"type":"error","errorCode":"…","message":"…"}`.
pub fn stream_error_line(code: &str, message: &str) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorLine<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error_code: &'a str,
        message: &'a str,
    }
    serde_json::to_string(&ErrorLine {
        kind: "error",
        error_code: code,
        message,
    })
    .expect("plain data serializes")
}
