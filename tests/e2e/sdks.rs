//! Dapr's own SDKs, unmodified and at pinned versions, against the real `wasilock` binary:
//! the Python SDK (`dapr` on PyPI, gRPC) and the JavaScript SDK (`@dapr/dapr` on npm, over
//! HTTP and over gRPC). Each runs its script in `tests/clients/` (the conformance sequence,
//! an unknown store, and for Python the `with client.try_lock(...)` context manager), with
//! and without `DAPR_API_TOKEN`. The SDKs are installed by `wasilock_testkit::sdk_clients`.

use wasilock_testkit as common;
use wasilock_testkit::sdk_clients;

use common::{Host, Options};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "sdk-s3cret";

/// A host without an API token, and one that requires [`TOKEN`].
fn hosts() -> [(Host, Option<&'static str>); 2] {
    [
        (Host::start(), None),
        (
            Host::start_with(Options::new().env("DAPR_API_TOKEN", TOKEN)),
            Some(TOKEN),
        ),
    ]
}

/// `command` with the SDKs' environment pointed at `host`, and `token` (if any).
fn sdk_env<'c>(command: &'c mut Command, host: &Host, token: Option<&str>) -> &'c mut Command {
    let http_port = host.base.rsplit(':').next().unwrap();
    let grpc_port = host.grpc.rsplit(':').next().unwrap();
    for name in [
        "DAPR_API_TOKEN",
        "DAPR_GRPC_ENDPOINT",
        "DAPR_HTTP_ENDPOINT",
        "WASILOCK_EXPECT_TOKEN_FAILURE",
    ] {
        command.env_remove(name);
    }
    command
        .env("DAPR_RUNTIME_HOST", "127.0.0.1")
        .env("DAPR_HTTP_PORT", http_port)
        .env("DAPR_GRPC_PORT", grpc_port)
        .env("DAPR_HEALTH_TIMEOUT", "20")
        .env("WASILOCK_STORE", "lockstore");
    if let Some(token) = token {
        command.env("DAPR_API_TOKEN", token);
    }
    command
}

#[test]
fn the_python_sdk_takes_and_releases_locks_over_grpc() {
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let script = sdk_clients::clients_dir().join("dapr_python.py");
    for (host, token) in hosts() {
        let mut command = Command::new(&python);
        sdk_env(command.arg(&script), &host, token);
        sdk_clients::passes(&mut command, "python sdk: all checks passed");
    }
}

#[test]
fn the_python_sdk_is_refused_without_the_right_token() {
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let script = sdk_clients::clients_dir().join("dapr_python.py");
    let host = Host::start_with(Options::new().env("DAPR_API_TOKEN", TOKEN));
    for token in [None, Some("wrong")] {
        let mut command = Command::new(&python);
        sdk_env(command.arg(&script), &host, token).env("WASILOCK_EXPECT_TOKEN_FAILURE", "1");
        sdk_clients::passes(&mut command, "python sdk: all checks passed");
    }
}

fn js_sdk(mode: &str) {
    let Some(dir) = sdk_clients::node() else {
        return;
    };
    for (host, token) in hosts() {
        let mut command = Command::new("node");
        sdk_env(
            command.arg(Path::new(&dir).join("dapr_js.mjs")).arg(mode),
            &host,
            token,
        );
        sdk_clients::passes(&mut command, &format!("js sdk ({mode}): all checks passed"));
    }
}

#[test]
fn the_javascript_sdk_takes_and_releases_locks_over_http() {
    js_sdk("http");
}

#[test]
fn the_javascript_sdk_takes_and_releases_locks_over_grpc() {
    js_sdk("grpc");
}
