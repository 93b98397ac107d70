//! Dapr's HTTP surface for locks: routing, status codes and exact response bodies.
//!
//! Pure: the component feeds it the method, the path and the body it read, and writes back
//! the [`Response`] it returns.

use crate::body::{parse_lock_request, parse_unlock_request};
use crate::lease::{self, LockError, LockStore};

/// The body bound when the host sets none: daprd's default `--max-body-size` (4Mi).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 4 * 1024 * 1024;

const LOCK_PREFIX: &str = "/v1.0-alpha1/lock/";
const UNLOCK_PREFIX: &str = "/v1.0-alpha1/unlock/";

/// A response: status and JSON body (always `Content-Type: application/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body, byte for byte as daprd writes it.
    pub body: String,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1.0-alpha1/lock/{store}`.
    TryLock(String),
    /// `POST /v1.0-alpha1/unlock/{store}`.
    Unlock(String),
    /// Anything else: daprd hands it to service invocation, which fails.
    NotFound,
    /// A lock path whose store name has an invalid percent-escape.
    BadEscape,
}

/// Routes a request by method and path (a query string is ignored).
pub fn route(method: &str, path_with_query: &str) -> Route {
    if method != "POST" {
        return Route::NotFound;
    }
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query, |(p, _)| p);
    let (segment, make): (&str, fn(String) -> Route) =
        if let Some(rest) = path.strip_prefix(LOCK_PREFIX) {
            (rest, Route::TryLock)
        } else if let Some(rest) = path.strip_prefix(UNLOCK_PREFIX) {
            (rest, Route::Unlock)
        } else {
            return Route::NotFound;
        };
    if segment.is_empty() || segment.contains('/') {
        return Route::NotFound;
    }
    query_unescape(segment).map_or(Route::BadEscape, make)
}

/// Answers a routed request whose body has been read in full.
pub fn respond<S: LockStore>(store: &S, route: &Route, body: &[u8]) -> Response {
    let result = match route {
        Route::TryLock(name) => parse_lock_request(body)
            .map_err(malformed_body)
            .and_then(|request| lease::try_lock(store, name, &request))
            .map(|acquired| format!(r#"{{"success":{acquired}}}"#)),
        Route::Unlock(name) => parse_unlock_request(body)
            .map_err(malformed_body)
            .and_then(|request| lease::unlock(store, name, &request))
            .map(|status| format!(r#"{{"status":{}}}"#, status as u8)),
        Route::NotFound => return not_found(),
        Route::BadEscape => return bad_escape(),
    };
    match result {
        Ok(body) => Response { status: 200, body },
        Err(err) => error_response(&err),
    }
}

/// The answer to a path or method daprd does not route to the lock API.
pub fn not_found() -> Response {
    Response {
        status: 404,
        body: error_body(
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        ),
    }
}

/// The answer to a lock path with an invalid percent-escape in the store name.
fn bad_escape() -> Response {
    Response {
        status: 400,
        body: error_body(
            "ERR_MALFORMED_REQUEST",
            "invalid URL escape in the lock store name",
        ),
    }
}

/// The answer to a body larger than the bound.
pub fn body_too_large(limit: u64) -> Response {
    Response {
        status: 413,
        body: error_body(
            "ERR_MALFORMED_REQUEST",
            &format!("failed deserializing HTTP body: request body larger than {limit} bytes"),
        ),
    }
}

/// The answer to a body that could not be read from the connection.
pub fn body_unreadable(reason: &str) -> Response {
    Response {
        status: 400,
        body: error_body(
            "ERR_MALFORMED_REQUEST",
            &format!("failed deserializing HTTP body: {reason}"),
        ),
    }
}

/// The typed error as daprd's HTTP answer.
pub fn error_response(err: &LockError) -> Response {
    Response {
        status: err.http_status(),
        body: error_body(err.error_code(), err.message()),
    }
}

fn malformed_body(reason: String) -> LockError {
    LockError::MalformedRequest(format!("failed deserializing HTTP body: {reason}"))
}

/// `{"errorCode":..,"message":..}` as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028
/// and U+2029 escaped, no trailing newline.
pub fn error_body(code: &str, message: &str) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody<'a> {
        error_code: &'a str,
        message: &'a str,
    }
    let json = serde_json::to_string(&ErrorBody {
        error_code: code,
        message,
    })
    .expect("two strings always serialize");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `%XX` decoded, `+` as a space; `None` on an invalid escape.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_store::FakeStore;

    fn post(store: &FakeStore, path: &str, body: &str) -> Response {
        respond(&store, &route("POST", path), body.as_bytes())
    }

    fn error(status: u16, code: &str, message: &str) -> Response {
        Response {
            status,
            body: format!(r#"{{"errorCode":"{code}","message":"{message}"}}"#),
        }
    }

    #[test]
    fn routes_only_the_two_post_paths() {
        assert_eq!(
            route("POST", "/v1.0-alpha1/lock/s"),
            Route::TryLock("s".into())
        );
        assert_eq!(
            route("POST", "/v1.0-alpha1/unlock/s?x=1"),
            Route::Unlock("s".into())
        );
        assert_eq!(
            route("POST", "/v1.0-alpha1/lock/my%20store+x"),
            Route::TryLock("my store x".into())
        );
        assert_eq!(
            route("POST", "/v1.0-alpha1/lock/a%2Fb"),
            Route::TryLock("a/b".into())
        );
        assert_eq!(
            route("POST", "/v1.0-alpha1/lock/Case"),
            Route::TryLock("Case".into())
        );
        for (method, path) in [
            ("GET", "/v1.0-alpha1/lock/s"),
            ("PUT", "/v1.0-alpha1/unlock/s"),
            ("POST", "/v1.0-alpha/lock/s"),
            ("POST", "/v1.0-alpha1/lock/"),
            ("POST", "/v1.0-alpha1/lock/s/extra"),
            ("POST", "/v1.0-alpha1/lock"),
            ("POST", "/"),
        ] {
            assert_eq!(route(method, path), Route::NotFound, "{method} {path}");
        }
        assert_eq!(route("POST", "/v1.0-alpha1/lock/%zz"), Route::BadEscape);
        assert_eq!(route("POST", "/v1.0-alpha1/lock/%+1"), Route::BadEscape);
        assert_eq!(route("POST", "/v1.0-alpha1/lock/%2"), Route::BadEscape);
    }

    #[test]
    fn not_found_is_daprs_direct_invoke_error() {
        let store = FakeStore::new();
        assert_eq!(
            respond(&&store, &Route::NotFound, b""),
            error(
                404,
                "ERR_DIRECT_INVOKE",
                "failed getting app id either from the URL path or the header dapr-app-id"
            )
        );
    }

    #[test]
    fn success_bodies_are_exact() {
        let store = FakeStore::new();
        let body = r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":10}"#;
        assert_eq!(
            post(&store, "/v1.0-alpha1/lock/lockstore", body),
            Response {
                status: 200,
                body: r#"{"success":true}"#.into()
            }
        );
        assert_eq!(
            post(&store, "/v1.0-alpha1/lock/lockstore", body),
            Response {
                status: 200,
                body: r#"{"success":false}"#.into()
            }
        );
        let unlock = |owner: &str, resource: &str| {
            post(
                &store,
                "/v1.0-alpha1/unlock/lockstore",
                &format!(r#"{{"resourceId":"{resource}","lockOwner":"{owner}"}}"#),
            )
            .body
        };
        assert_eq!(unlock("x", "r"), r#"{"status":2}"#);
        assert_eq!(unlock("o", "r"), r#"{"status":0}"#);
        assert_eq!(unlock("o", "r"), r#"{"status":1}"#);
    }

    #[test]
    fn every_error_row_in_daprs_order() {
        let store = FakeStore::new();
        let lock = "/v1.0-alpha1/lock/lockstore";
        // Row 0: invalid JSON.
        let response = post(&store, lock, "{");
        assert_eq!(response.status, 400);
        assert!(response.body.starts_with(r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"failed deserializing HTTP body: proto: syntax error"#), "{}", response.body);
        // Row 1: expiry first, even with everything else missing.
        assert_eq!(
            post(&store, "/v1.0-alpha1/lock/nope", "{}"),
            error(
                400,
                "ERR_MALFORMED_REQUEST",
                "ExpiryInSeconds is not positive in lock store nope"
            )
        );
        // Row 2: no store at all.
        let empty = FakeStore {
            stores: vec![],
            ..FakeStore::default()
        };
        assert_eq!(
            post(&empty, lock, r#"{"expiryInSeconds":1}"#),
            error(
                500,
                "ERR_LOCK_STORE_NOT_CONFIGURED",
                "lock store is not configured"
            )
        );
        // Rows 3, 4, 5.
        assert_eq!(
            post(&store, "/v1.0-alpha1/lock/nope", r#"{"expiryInSeconds":1}"#),
            error(
                400,
                "ERR_MALFORMED_REQUEST",
                "ResourceId is empty in lock store nope"
            )
        );
        assert_eq!(
            post(&store, "/v1.0-alpha1/unlock/nope", r#"{"resourceId":"r"}"#),
            error(
                400,
                "ERR_MALFORMED_REQUEST",
                "LockOwner is empty in lock store nope"
            )
        );
        assert_eq!(
            post(
                &store,
                "/v1.0-alpha1/unlock/nope",
                r#"{"resourceId":"r","lockOwner":"o"}"#
            ),
            error(400, "ERR_LOCK_STORE_NOT_FOUND", "lock store nope not found")
        );
        // Row 7: component error.
        let failing = FakeStore {
            failure: Some("disk on fire".into()),
            ..FakeStore::new()
        };
        assert_eq!(
            post(
                &failing,
                lock,
                r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}"#
            ),
            error(
                500,
                "ERR_TRY_LOCK",
                "failed to try acquiring lock: disk on fire"
            )
        );
        assert_eq!(
            post(
                &failing,
                "/v1.0-alpha1/unlock/lockstore",
                r#"{"resourceId":"r","lockOwner":"o"}"#
            ),
            error(500, "ERR_UNLOCK", "failed to release lock: disk on fire")
        );
    }

    #[test]
    fn error_bodies_escape_like_go() {
        assert_eq!(
            error_body("E", "<a> & \u{2028}\u{2029} \"q\""),
            r#"{"errorCode":"E","message":"\u003ca\u003e \u0026 \u2028\u2029 \"q\""}"#
        );
        let store = FakeStore::new();
        let response = post(&store, "/v1.0-alpha1/lock/%3Cs%3E", "{}");
        assert_eq!(
            response.body,
            r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"ExpiryInSeconds is not positive in lock store \u003cs\u003e"}"#
        );
    }

    #[test]
    fn body_bound_answer() {
        assert_eq!(DEFAULT_MAX_BODY_SIZE, 4 * 1024 * 1024);
        let response = body_too_large(10);
        assert_eq!(response.status, 413);
        assert!(response.body.contains("ERR_MALFORMED_REQUEST"));
    }
}
