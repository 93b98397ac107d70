//! Every answer of the lock API as a list of raw HTTP requests, replayed in order against any
//! host of the lock component, so that hosts can be compared byte for byte: the conformance
//! steps, every row of daprd's error table, body parsing, routing and escapes.
//!
//! The cases expect one lock store, `lockstore`, empty at the start. Bodies over the bound
//! are not among them: a host may answer before reading such a body and close the
//! connection, which a client sees as a failed write.

use crate::host::agent;

/// One raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCase {
    /// The method.
    pub method: &'static str,
    /// The path and query, as sent.
    pub path: String,
    /// The body.
    pub body: String,
}

/// One answer, as much of it as daprd's clients see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body, byte for byte.
    pub body: String,
}

fn case(method: &'static str, path: &str, body: &str) -> HttpCase {
    HttpCase {
        method,
        path: path.to_string(),
        body: body.to_string(),
    }
}

fn lock(resource: &str, owner: &str, expiry: i64) -> HttpCase {
    case(
        "POST",
        "/v1.0-alpha1/lock/lockstore",
        &format!(
            r#"{{"resourceId":"{resource}","lockOwner":"{owner}","expiryInSeconds":{expiry}}}"#
        ),
    )
}

fn unlock(resource: &str, owner: &str) -> HttpCase {
    case(
        "POST",
        "/v1.0-alpha1/unlock/lockstore",
        &format!(r#"{{"resourceId":"{resource}","lockOwner":"{owner}"}}"#),
    )
}

/// The cases, in the order they must be replayed (the first ones take and release locks).
pub fn http_cases() -> Vec<HttpCase> {
    let lock_path = "/v1.0-alpha1/lock/lockstore";
    let unlock_path = "/v1.0-alpha1/unlock/lockstore";
    vec![
        // The conformance steps (without the wait for expiry).
        lock("r1", "a", 30),
        lock("r1", "a", 30),
        lock("r1", "b", 30),
        unlock("r1", "b"),
        unlock("r2", "a"),
        unlock("r1", "a"),
        unlock("r1", "a"),
        lock("r1", "b", 1),
        // daprd's error table, row by row, in its order of checks.
        lock("r", "o", 0),
        lock("r", "o", -5),
        lock("", "", 0),
        lock("", "o", 10),
        lock("r", "", 10),
        unlock("", "o"),
        unlock("r", ""),
        lock(" ", " ", 10),
        case(
            "POST",
            "/v1.0-alpha1/lock/no-such-store",
            r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":10}"#,
        ),
        case(
            "POST",
            "/v1.0-alpha1/unlock/no-such-store",
            r#"{"resourceId":"r","lockOwner":"o"}"#,
        ),
        case(
            "POST",
            "/v1.0-alpha1/lock/no-such-store",
            r#"{"resourceId":"","lockOwner":"o","expiryInSeconds":10}"#,
        ),
        lock("a||b", "o", 10),
        unlock("a||b", "o"),
        lock("||", "o", 10),
        lock("a|b", "o", 10),
        // Bodies.
        case("POST", lock_path, ""),
        case("POST", lock_path, "{"),
        case("POST", lock_path, "null"),
        case("POST", lock_path, "[]"),
        case("POST", lock_path, "{}"),
        case("POST", unlock_path, "{}"),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":1,"lockOwner":"o","expiryInSeconds":10}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":"10"}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":1.5}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":99999999999}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":"u","lockOwner":"o","expiryInSeconds":10,"extra":true}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"resourceId":"\u003cé\u003e","lockOwner":"ö","expiryInSeconds":10}"#,
        ),
        case(
            "POST",
            lock_path,
            r#"{"ResourceID":"ci","LOCKOWNER":"o","expiryinseconds":10}"#,
        ),
        case(
            "POST",
            lock_path,
            "{\"resourceId\":\"r\",\"lockOwner\":\"o\",\"expiryInSeconds\":10} trailing",
        ),
        // Routing and escapes.
        case(
            "POST",
            "/v1.0-alpha1/lock/lock%73tore",
            r#"{"resourceId":"esc","lockOwner":"o","expiryInSeconds":10}"#,
        ),
        case(
            "POST",
            "/v1.0-alpha1/lock/lockstore?x=1",
            r#"{"resourceId":"q","lockOwner":"o","expiryInSeconds":10}"#,
        ),
        case("POST", "/v1.0-alpha1/lock/%zz", "{}"),
        case("POST", "/v1.0-alpha1/lock/", "{}"),
        case("POST", "/v1.0-alpha1/lock/lockstore/extra", "{}"),
        case("POST", "/v1.0/lock/lockstore", "{}"),
        case("GET", lock_path, ""),
        case("PUT", lock_path, "{}"),
        case("POST", "/", ""),
    ]
}

/// Replays `cases` in order against the host at `base` (`http://HOST:PORT`), one
/// connection, and gives every answer.
pub fn replay(base: &str, cases: &[HttpCase]) -> Vec<HttpAnswer> {
    let agent = agent();
    cases
        .iter()
        .map(|case| {
            let url = format!("{base}{}", case.path);
            let request = ureq::http::Request::builder()
                .method(case.method)
                .uri(&url)
                .body(case.body.clone())
                .expect("a valid request");
            let mut response = agent
                .run(request)
                .unwrap_or_else(|e| panic!("{} {url}: {e}", case.method));
            HttpAnswer {
                status: response.status().as_u16(),
                content_type: response
                    .headers()
                    .get("content-type")
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                body: response.body_mut().read_to_string().expect("a text body"),
            }
        })
        .collect()
}

/// Replays `cases` against the host at `base` and the one at `reference` (each as [`replay`]
/// does) and asserts that every answer is the reference's, naming the case and what
/// `context` says (say, a host's stderr); gives the answers.
pub fn assert_same_answers(
    base: &str,
    reference: &str,
    cases: &[HttpCase],
    context: impl Fn() -> String,
) -> Vec<HttpAnswer> {
    let expected = replay(reference, cases);
    let answers = replay(base, cases);
    assert_eq!(answers.len(), cases.len());
    for ((case, expected), answer) in cases.iter().zip(&expected).zip(&answers) {
        assert_eq!(answer, expected, "{case:?}{}", context());
    }
    answers
}
