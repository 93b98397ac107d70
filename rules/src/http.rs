//! Dapr's HTTP surface for locks: routing, status codes and exact response bodies.
//!
//! Pure: the component feeds it the method, the path and the body it read, and writes back
//! the [`Response`] it returns.

use crate::body::{parse_lock_request, parse_unlock_request};
use crate::lease::{self, LockError, LockStore, UnlockStatus};

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
            .map(|acquired| {
                let body = if acquired {
                    r#"{"success":true}"#
                } else {
                    r#"{"success":false}"#
                };
                body.to_owned()
            }),
        Route::Unlock(name) => parse_unlock_request(body)
            .map_err(malformed_body)
            .and_then(|request| lease::unlock(store, name, &request))
            .map(|status| {
                let body = match status {
                    UnlockStatus::Success => r#"{"status":0}"#,
                    UnlockStatus::LockDoesNotExist => r#"{"status":1}"#,
                    UnlockStatus::LockBelongsToOthers => r#"{"status":2}"#,
                    UnlockStatus::InternalError => r#"{"status":3}"#,
                };
                body.to_owned()
            }),
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
pub(crate) fn query_unescape(s: &str) -> Option<String> {
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

/// Test support (unit tests and the fuzz target): `Ok` when `response` is an answer daprd
/// could give to a request routed as `route`, judged from the spec's table alone (not from
/// [`LockError`]): a 200 carries `{"success":bool}` (try-lock) or `{"status":0..3}` (unlock);
/// any other status carries `{"errorCode","message"}` with a code of that status and route,
/// escaped like Go's `json.Marshal`.
#[cfg(any(test, feature = "test-support"))]
pub fn check_dapr_shape(route: &Route, response: &Response) -> Result<(), String> {
    use serde_json::Value;
    let (status, body) = (response.status, &response.body);
    let fail = |why: &str| Err(format!("{why}: {status} {body}"));
    if body.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return fail("a character Go escapes is written raw");
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return fail("the body is not a JSON object");
    };
    if status == 200 {
        let well_formed = match route {
            Route::TryLock(_) => fields.get("success").is_some_and(Value::is_boolean),
            Route::Unlock(_) => fields
                .get("status")
                .and_then(Value::as_u64)
                .is_some_and(|s| s <= 3),
            Route::NotFound | Route::BadEscape => false,
        };
        let compact = serde_json::to_string(&fields).is_ok_and(|text| text == *body);
        return if well_formed && fields.len() == 1 && compact {
            Ok(())
        } else {
            fail("not a success body of this route")
        };
    }
    let (Some(Value::String(code)), Some(Value::String(message)), 2) =
        (fields.get("errorCode"), fields.get("message"), fields.len())
    else {
        return fail("not an error body");
    };
    if !body.starts_with(r#"{"errorCode":""#) || message.is_empty() {
        return fail("error body out of order or without a message");
    }
    let lock_route = matches!(route, Route::TryLock(_) | Route::Unlock(_));
    let (statuses, message_start): (&[u16], &str) = match (route, code.as_str()) {
        (Route::NotFound, "ERR_DIRECT_INVOKE") => (
            &[404],
            "failed getting app id either from the URL path or the header dapr-app-id",
        ),
        (Route::BadEscape, "ERR_MALFORMED_REQUEST") => (&[400], ""),
        (_, "ERR_MALFORMED_REQUEST") if lock_route => (&[400, 413], ""),
        (_, "ERR_LOCK_STORE_NOT_CONFIGURED") if lock_route => {
            (&[500], "lock store is not configured")
        }
        (_, "ERR_LOCK_STORE_NOT_FOUND") if lock_route => (&[400], "lock store "),
        (Route::TryLock(_), "ERR_TRY_LOCK") => (&[500], "failed to try acquiring lock: "),
        (Route::Unlock(_), "ERR_UNLOCK") => (&[500], "failed to release lock: "),
        _ => return fail("an error code this route never gets"),
    };
    if !statuses.contains(&status) || !message.starts_with(message_start) {
        return fail("status or message does not match the error code");
    }
    Ok(())
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
        for (path, expected) in [
            ("/v1.0-alpha1/lock/s", Route::TryLock("s".into())),
            ("/v1.0-alpha1/unlock/s?x=1", Route::Unlock("s".into())),
            (
                "/v1.0-alpha1/lock/my%20store+x",
                Route::TryLock("my store x".into()),
            ),
            ("/v1.0-alpha1/lock/a%2Fb", Route::TryLock("a/b".into())),
            ("/v1.0-alpha1/lock/Case", Route::TryLock("Case".into())),
        ] {
            assert_eq!(route("POST", path), expected, "{path}");
        }
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
        let owned = r#"{"resourceId":"r","lockOwner":"o"}"#;
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
            post(&store, "/v1.0-alpha1/unlock/nope", owned),
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
            post(&failing, "/v1.0-alpha1/unlock/lockstore", owned),
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

#[cfg(test)]
mod properties {
    use super::*;
    use crate::body::strategies::{
        json_ish_body, lock_body, lock_body_of, unlock_body, unlock_body_of,
    };
    use crate::fake_store::FakeStore;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Methods: the routed one, near misses, anything.
    fn method() -> impl Strategy<Value = String> {
        prop_oneof![5 => Just("POST".to_owned()), 1 => other_method()]
    }

    /// Methods other than `POST`: near misses and anything.
    fn other_method() -> impl Strategy<Value = String> {
        prop_oneof![
            select(&["GET", "PUT", "post", "Post", "POST ", " POST", "DELETE", ""][..])
                .prop_map(str::to_owned),
            any::<String>().prop_filter("not POST", |method| method != "POST"),
        ]
    }

    /// A `%XX` escape of `byte`, in either case.
    fn escape(byte: u8, upper: bool) -> String {
        if upper {
            format!("%{byte:02X}")
        } else {
            format!("%{byte:02x}")
        }
    }

    /// Paths: a lock route to a store of [`FakeStore::scenarios`] (or an unknown one) with
    /// random escapes and a query; near misses of the routes followed by pieces of a store
    /// name with valid and invalid percent-escapes and separators; anything.
    fn path() -> impl Strategy<Value = String> {
        let route = (
            select(&[LOCK_PREFIX, UNLOCK_PREFIX][..]),
            select(&["lockstore", "secret", "other store"][..])
                .prop_flat_map(|name| escaped_segment(name.to_owned())),
            select(&["", "?", "?a=b&c", "?/x"][..]),
        )
            .prop_map(|(prefix, segment, query)| format!("{prefix}{segment}{query}"));
        let prefix = select(
            &[
                LOCK_PREFIX,
                UNLOCK_PREFIX,
                "/v1.0-alpha1/lock",
                "/v1.0-alpha/lock/",
                "/v1.0-alpha1/LOCK/",
                "/v1.0/unlock/",
                "//v1.0-alpha1/lock/",
                "/",
                "",
            ][..],
        );
        let piece = prop_oneof![
            "[a-zA-Z0-9._~-]{1,4}",
            (any::<u8>(), any::<bool>()).prop_map(|(byte, upper)| escape(byte, upper)),
            select(
                &[
                    "%", "%g", "%2", "%%", "%+1", "+", "/", "?", "#", "||", " ", "%2F", "%3f"
                ][..]
            )
            .prop_map(str::to_owned),
            any::<char>().prop_map(String::from),
        ];
        let near = (prefix, prop::collection::vec(piece, 0..8))
            .prop_map(|(prefix, pieces)| format!("{prefix}{}", pieces.concat()));
        prop_oneof![6 => route, 2 => near, 1 => any::<String>()]
    }

    /// Bodies: any bytes, near-valid JSON, valid bodies of any fields or of the fields that
    /// meet the lock `r` held by `o` in [`FakeStore::scenarios`].
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let resource = || select(&["r", "x", "a||b", ""][..]).prop_map(str::to_owned);
        let owner = || select(&["o", "p", ""][..]).prop_map(str::to_owned);
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            json_ish_body(),
            lock_body().prop_map(|(_, body)| body),
            unlock_body().prop_map(|(_, body)| body),
            lock_body_of(resource(), owner(), select(&[1, 15, 0, -1][..]))
                .prop_map(|(_, body)| body),
            unlock_body_of(resource(), owner()).prop_map(|(_, body)| body),
        ]
    }

    /// `name` as a URL path segment: each character plain or percent-escaped at random (a
    /// space also as `+`); the characters that would change the route always escaped.
    fn escaped_segment(name: String) -> impl Strategy<Value = String> {
        let len = name.chars().count();
        prop::collection::vec(0u8..4, len).prop_map(move |choices| {
            let mut out = String::new();
            for (c, choice) in name.chars().zip(choices) {
                match (c, choice) {
                    (' ', 0) => out.push('+'),
                    ('/' | '?' | '%' | '+', _) | (_, 0 | 1) => {
                        for byte in c.to_string().bytes() {
                            out.push_str(&escape(byte, choice == 1));
                        }
                    }
                    _ => out.push(c),
                }
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(384))]

        #[test]
        fn every_request_gets_an_answer_daprd_could_give(
            method in method(),
            path in path(),
            body in body(),
        ) {
            let route = route(&method, &path);
            for store in FakeStore::scenarios() {
                let response = respond(&&store, &route, &body);
                prop_assert_eq!(check_dapr_shape(&route, &response), Ok(()), "{:?}", route);
            }
        }

        #[test]
        fn an_escaped_store_name_routes_back_to_itself(
            (name, segment) in any::<String>()
                .prop_filter("a store name", |name| !name.is_empty())
                .prop_flat_map(|name| (Just(name.clone()), escaped_segment(name))),
            query in prop::option::of(any::<String>()),
        ) {
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            prop_assert_eq!(
                route("POST", &format!("{LOCK_PREFIX}{segment}{query}")),
                Route::TryLock(name.clone())
            );
            prop_assert_eq!(
                route("POST", &format!("{UNLOCK_PREFIX}{segment}{query}")),
                Route::Unlock(name)
            );
        }

        #[test]
        fn an_invalid_escape_is_a_bad_escape_answer(
            before in "[a-z0-9]{0,4}",
            bad in select(&["%g0", "%0g", "%-1", "% 1", "%+1", "%%"][..]),
            after in "[a-z0-9%]{0,4}",
            end in select(&["", "%", "%a"][..]),
        ) {
            let path = format!("{LOCK_PREFIX}{before}{bad}{after}{end}");
            prop_assert_eq!(route("POST", &path), Route::BadEscape);
            let response = respond(&&FakeStore::new(), &Route::BadEscape, b"");
            prop_assert_eq!(response.status, 400);
        }

        #[test]
        fn only_post_is_routed(method in other_method(), path in path()) {
            prop_assert_eq!(route(&method, &path), Route::NotFound);
        }

        #[test]
        fn a_valid_request_locks_conflicts_and_unlocks(
            (lock, lock_body) in lock_body().prop_filter("acquirable", |(r, _)| {
                !r.resource_id.is_empty()
                    && !r.resource_id.contains(lease::KEY_SEPARATOR)
                    && !r.lock_owner.is_empty()
                    && r.expiry_in_seconds > 0
            }),
            other in "[a-z]{1,8}",
        ) {
            let store = FakeStore::new();
            let post = |route: Route, body: &[u8]| respond(&&store, &route, body).body;
            let lock_route = Route::TryLock("lockstore".to_owned());
            let unlock_route = Route::Unlock("lockstore".to_owned());
            let unlock_as = |owner: &str| {
                let body = serde_json::json!({"resourceId": lock.resource_id, "lockOwner": owner});
                post(unlock_route.clone(), body.to_string().as_bytes())
            };
            prop_assert_eq!(post(lock_route.clone(), &lock_body), r#"{"success":true}"#);
            prop_assert_eq!(post(lock_route, &lock_body), r#"{"success":false}"#);
            if other != lock.lock_owner {
                prop_assert_eq!(unlock_as(&other), r#"{"status":2}"#);
            }
            prop_assert_eq!(unlock_as(&lock.lock_owner), r#"{"status":0}"#);
            prop_assert_eq!(unlock_as(&lock.lock_owner), r#"{"status":1}"#);
        }

        #[test]
        fn error_bodies_are_json_escaped_like_go(code in any::<String>(), message in any::<String>()) {
            let body = error_body(&code, &message);
            prop_assert!(!body.contains(['<', '>', '&', '\u{2028}', '\u{2029}']), "{}", body);
            let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(parsed, serde_json::json!({"errorCode": code, "message": message}));
        }
    }

    #[test]
    fn the_shape_check_refuses_what_daprd_never_answers() {
        let (lock, unlock) = (Route::TryLock("s".into()), Route::Unlock("s".into()));
        let malformed = r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"m"}"#;
        let try_lock_failed =
            r#"{"errorCode":"ERR_TRY_LOCK","message":"failed to try acquiring lock: x"}"#;
        let not_found_body = not_found().body;
        for (route, status, body) in [
            (&lock, 200, r#"{"status":0}"#),
            (&lock, 200, r#"{"success":"true"}"#),
            (&lock, 200, r#"{"success":true,"x":1}"#),
            (&lock, 200, r#"{"success": true}"#),
            (&unlock, 200, r#"{"status":4}"#),
            (&unlock, 200, malformed),
            (&lock, 500, malformed),
            (&lock, 201, malformed),
            (&lock, 400, "{"),
            (
                &lock,
                400,
                r#"{"message":"m","errorCode":"ERR_MALFORMED_REQUEST"}"#,
            ),
            (
                &lock,
                400,
                r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":""}"#,
            ),
            (
                &lock,
                400,
                r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"<"}"#,
            ),
            (&lock, 400, r#"{"errorCode":"ERR_OTHER","message":"m"}"#),
            (&unlock, 500, try_lock_failed),
            (&lock, 500, r#"{"errorCode":"ERR_TRY_LOCK","message":"x"}"#),
            (&lock, 404, &not_found_body),
            (&Route::NotFound, 400, malformed),
            (&Route::BadEscape, 413, malformed),
        ] {
            let response = Response {
                status,
                body: body.to_owned(),
            };
            assert!(
                check_dapr_shape(route, &response).is_err(),
                "{route:?} {response:?}"
            );
        }
        // And the answers it accepts, one per kind.
        let store = FakeStore::new();
        let lockstore = |make: fn(String) -> Route| make("lockstore".into());
        let answer = |route: &Route, body: &str| respond(&&store, route, body.as_bytes());
        let acquire = r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}"#;
        for (route, response) in [
            (&lock, answer(&lockstore(Route::TryLock), acquire)),
            (&lock, answer(&lockstore(Route::TryLock), acquire)),
            (
                &unlock,
                answer(
                    &lockstore(Route::Unlock),
                    r#"{"resourceId":"r","lockOwner":"p"}"#,
                ),
            ),
            (&lock, answer(&lock, acquire)),
            (
                &lock,
                Response {
                    status: 500,
                    body: try_lock_failed.to_owned(),
                },
            ),
            (&Route::NotFound, not_found()),
            (&lock, body_too_large(1)),
            (&unlock, body_unreadable("<reset>")),
            (&Route::BadEscape, bad_escape()),
        ] {
            assert_eq!(check_dapr_shape(route, &response), Ok(()), "{route:?}");
        }
    }
}
