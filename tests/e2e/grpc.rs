//! End-to-end tests of the gRPC API against the real `wasilock` binary: the same cases
//! through HTTP and gRPC agree, daprd's status codes and messages, the API token with
//! daprd's `ErrorInfo`, `GetMetadata`, `UNIMPLEMENTED` for the rest of the service, server
//! reflection, and typed calls on the same warm instances as HTTP.

use wasilock_testkit as common;

use crate::grpc_client::{channel, dapr, granted, runtime};
use common::{Host, Options, component};
use tonic::Code;
use tonic::transport::Channel;
use wasilock::api::grpc::proto::dapr_client::DaprClient;
use wasilock::api::grpc::proto::{
    GetMetadataRequest, TryLockRequest, UnlockRequest, unlock_response,
};

/// One lock operation.
#[derive(Debug, Clone)]
enum Step {
    Lock(&'static str, &'static str, &'static str, i32),
    Unlock(&'static str, &'static str, &'static str),
}

/// What a client learns from a step, in transport-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Locked(bool),
    Unlocked(i32),
    Refused(Code, String),
}

/// Every case of the spec's table on a host with one store `lockstore`.
const STEPS: &[Step] = &[
    Step::Lock("lockstore", "r1", "a", 30),
    Step::Lock("lockstore", "r1", "a", 30),
    Step::Lock("lockstore", "r1", "b", 30),
    Step::Unlock("lockstore", "r1", "b"),
    Step::Unlock("lockstore", "r2", "a"),
    Step::Unlock("lockstore", "r1", "a"),
    Step::Unlock("lockstore", "r1", "a"),
    Step::Lock("lockstore", "r1", "b", 1),
    Step::Lock("lockstore", "r", "o", 0),
    Step::Lock("lockstore", "r", "o", -5),
    Step::Lock("no-such-store", "r", "o", 0),
    Step::Lock("lockstore", "", "o", 10),
    Step::Lock("lockstore", "r", "", 10),
    Step::Lock("lockstore", " ", " ", 10),
    Step::Unlock("lockstore", "", "o"),
    Step::Unlock("lockstore", "r", ""),
    Step::Lock("no-such-store", "r", "o", 10),
    Step::Unlock("no-such-store", "r", "o"),
    Step::Lock("lockstore", "a||b", "o", 10),
    Step::Unlock("lockstore", "a||b", "o"),
];

/// The gRPC code daprd gives for an HTTP `errorCode` (spec §1).
fn grpc_code(error_code: &str) -> Code {
    match error_code {
        "ERR_MALFORMED_REQUEST" | "ERR_LOCK_STORE_NOT_FOUND" => Code::InvalidArgument,
        "ERR_LOCK_STORE_NOT_CONFIGURED" => Code::FailedPrecondition,
        "ERR_TRY_LOCK" | "ERR_UNLOCK" => Code::Internal,
        other => panic!("no gRPC code for {other}"),
    }
}

fn over_http(host: &Host, step: &Step) -> Outcome {
    let result = match step {
        Step::Lock(store, resource, owner, expiry) => host
            .lock(store, resource, owner, *expiry)
            .map(Outcome::Locked),
        Step::Unlock(store, resource, owner) => host
            .unlock(store, resource, owner)
            .map(|status| Outcome::Unlocked(status as i32)),
    };
    result.unwrap_or_else(|reply| {
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let code = body["errorCode"].as_str().unwrap();
        assert_eq!(
            reply.status,
            if matches!(code, "ERR_MALFORMED_REQUEST" | "ERR_LOCK_STORE_NOT_FOUND") {
                400
            } else {
                500
            },
            "{reply:?}"
        );
        Outcome::Refused(grpc_code(code), body["message"].as_str().unwrap().into())
    })
}

async fn over_grpc(client: &mut DaprClient<Channel>, step: &Step) -> Outcome {
    let result = match step {
        Step::Lock(store, resource, owner, expiry) => client
            .try_lock_alpha1(TryLockRequest {
                store_name: store.to_string(),
                resource_id: resource.to_string(),
                lock_owner: owner.to_string(),
                expiry_in_seconds: *expiry,
            })
            .await
            .map(|r| Outcome::Locked(r.into_inner().success)),
        Step::Unlock(store, resource, owner) => client
            .unlock_alpha1(UnlockRequest {
                store_name: store.to_string(),
                resource_id: resource.to_string(),
                lock_owner: owner.to_string(),
            })
            .await
            .map(|r| Outcome::Unlocked(r.into_inner().status)),
    };
    result.unwrap_or_else(|status| Outcome::Refused(status.code(), status.message().into()))
}

/// Runs `STEPS` over HTTP on one fresh host and over gRPC on another, both on the
/// resource files `files`; returns both lists.
fn both_transports(files: &[(&str, &str)]) -> (Vec<Outcome>, Vec<Outcome>) {
    let options = Options::new().resources(files);
    let http_host = Host::start_with(options.clone());
    let http: Vec<_> = STEPS.iter().map(|s| over_http(&http_host, s)).collect();
    let grpc_host = Host::start_with(options);
    let grpc = runtime().block_on(async {
        let mut client = dapr(&grpc_host.grpc).await;
        let mut outcomes = Vec::new();
        for step in STEPS {
            outcomes.push(over_grpc(&mut client, step).await);
        }
        outcomes
    });
    (http, grpc)
}

#[test]
fn http_and_grpc_agree_on_every_case() {
    let store = component("lockstore", "lock.in-memory", &[]);
    let (http, grpc) = both_transports(&[("lockstore.yaml", &store)]);
    for ((step, h), g) in STEPS.iter().zip(&http).zip(&grpc) {
        assert_eq!(h, g, "{step:?}");
    }
    // And the answers are daprd's, not merely equal to each other.
    let refused = |code, message: &str| Outcome::Refused(code, message.into());
    let invalid = |message| refused(Code::InvalidArgument, message);
    let internal = |message| refused(Code::Internal, message);
    assert_eq!(
        grpc,
        vec![
            Outcome::Locked(true),
            Outcome::Locked(false),
            Outcome::Locked(false),
            Outcome::Unlocked(unlock_response::Status::LockBelongsToOthers as i32),
            Outcome::Unlocked(unlock_response::Status::LockDoesNotExist as i32),
            Outcome::Unlocked(unlock_response::Status::Success as i32),
            Outcome::Unlocked(unlock_response::Status::LockDoesNotExist as i32),
            Outcome::Locked(true),
            invalid("ExpiryInSeconds is not positive in lock store lockstore"),
            invalid("ExpiryInSeconds is not positive in lock store lockstore"),
            invalid("ExpiryInSeconds is not positive in lock store no-such-store"),
            invalid("ResourceId is empty in lock store lockstore"),
            invalid("LockOwner is empty in lock store lockstore"),
            Outcome::Locked(true),
            invalid("ResourceId is empty in lock store lockstore"),
            invalid("LockOwner is empty in lock store lockstore"),
            invalid("lock store no-such-store not found"),
            invalid("lock store no-such-store not found"),
            internal("failed to try acquiring lock: input key/keyPrefix 'a||b' can't contain '||'"),
            internal("failed to release lock: input key/keyPrefix 'a||b' can't contain '||'"),
        ]
    );
}

#[test]
fn without_stores_both_transports_say_not_configured() {
    let (http, grpc) = both_transports(&[]);
    assert_eq!(http, grpc);
    assert_eq!(
        grpc[0],
        Outcome::Refused(
            Code::FailedPrecondition,
            "lock store is not configured".into()
        )
    );
}

#[test]
fn a_lock_taken_over_grpc_is_seen_over_http_and_the_other_way() {
    let host = Host::start();
    runtime().block_on(async {
        let mut client = dapr(&host.grpc).await;
        let step = Step::Lock("lockstore", "shared", "grpc-owner", 30);
        assert_eq!(over_grpc(&mut client, &step).await, Outcome::Locked(true));
        assert_eq!(
            host.lock("lockstore", "shared", "http-owner", 30),
            Ok(false)
        );
        assert_eq!(host.unlock("lockstore", "shared", "http-owner"), Ok(2));
        assert_eq!(host.unlock("lockstore", "shared", "grpc-owner"), Ok(0));
        assert_eq!(host.lock("lockstore", "shared", "http-owner", 30), Ok(true));
        let step = Step::Unlock("lockstore", "shared", "http-owner");
        assert_eq!(
            over_grpc(&mut client, &step).await,
            Outcome::Unlocked(unlock_response::Status::Success as i32)
        );
    });
}

#[test]
fn get_metadata_lists_the_app_and_its_lock_stores() {
    let host = Host::start_with(Options::new().app_id("checkout").resources(&[
        ("a.yaml", &component("orders", "lock.in-memory", &[])),
        ("b.yaml", &component("lockstore", "lock.embedded", &[])),
    ]));
    let metadata = runtime().block_on(async {
        let mut client = dapr(&host.grpc).await;
        client
            .get_metadata(GetMetadataRequest {})
            .await
            .expect("GetMetadata")
            .into_inner()
    });
    assert_eq!(metadata.id, "checkout");
    assert_eq!(metadata.runtime_version, "1.18.3");
    let components: Vec<_> = metadata
        .registered_components
        .iter()
        .map(|c| (c.name.as_str(), c.r#type.as_str(), c.version.as_str()))
        .collect();
    assert_eq!(
        components,
        [
            ("lockstore", "lock.embedded", "v1"),
            ("orders", "lock.in-memory", "v1")
        ]
    );
    assert_eq!(
        metadata
            .extended_metadata
            .get("daprRuntimeVersion")
            .map(String::as_str),
        Some("1.18.3")
    );
    // The HTTP twin says the same.
    let reply = host.get("/v1.0/metadata");
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["id"], "checkout");
    assert_eq!(body["components"][1]["name"], "orders");
}

#[test]
fn the_api_token_is_checked_as_daprd_does() {
    use tonic_types::StatusExt;
    let host = Host::start_with(Options::new().env("DAPR_API_TOKEN", "s3cret"));
    runtime().block_on(async {
        let mut client = dapr(&host.grpc).await;
        let request = |token: Option<&str>| {
            let mut request = tonic::Request::new(GetMetadataRequest {});
            if let Some(token) = token {
                request
                    .metadata_mut()
                    .insert("dapr-api-token", token.parse().unwrap());
            }
            request
        };
        for (token, reason) in [
            (None, "missing api token in request metadata"),
            (Some("wrong"), "authentication error: api token mismatch"),
        ] {
            let status = client.get_metadata(request(token)).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), "Unauthorized");
            let info = status.get_details_error_info().expect("an ErrorInfo");
            assert_eq!(info.reason, "Unauthorized");
            assert_eq!(info.domain, "dapr.io");
            assert_eq!(info.metadata["http.code"], "401");
            assert_eq!(info.metadata["http.error_message"], reason);
        }
        let metadata = client.get_metadata(request(Some("s3cret"))).await;
        assert_eq!(metadata.expect("admitted").into_inner().id, "");
        let mut lock = tonic::Request::new(TryLockRequest {
            store_name: "lockstore".into(),
            resource_id: "r".into(),
            lock_owner: "o".into(),
            expiry_in_seconds: 10,
        });
        lock.metadata_mut()
            .insert("dapr-api-token", "s3cret".parse().unwrap());
        assert!(granted(&mut client, lock).await);
    });
}

#[test]
fn other_methods_of_the_service_are_unimplemented() {
    let host = Host::start();
    let status = runtime().block_on(async {
        let channel = channel(&host.grpc).await;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        grpc.unary::<(), (), _>(
            tonic::Request::new(()),
            "/dapr.proto.runtime.v1.Dapr/GetState".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err()
    });
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

/// The answers of the reflection service of version `$version` (`v1` or `v1alpha`) on
/// `$channel` to `$requests` (one of its `MessageRequest`s each): the two versions are twin
/// generated modules.
macro_rules! reflection_answers {
    ($version:ident, $channel:expr, $requests:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        let requests: Vec<_> = $requests
            .into_iter()
            .map(|message| ServerReflectionRequest {
                host: String::new(),
                message_request: Some(message),
            })
            .collect();
        let count = requests.len();
        let mut stream = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream_of(requests))
            .await
            .expect(concat!("reflection ", stringify!($version)))
            .into_inner();
        let mut answers = Vec::new();
        for _ in 0..count {
            answers.push(stream.message().await.unwrap().unwrap().message_response);
        }
        answers
    }};
}

#[test]
fn reflection_lists_and_describes_the_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;

    let host = Host::start();
    runtime().block_on(async {
        let channel = channel(&host.grpc).await;
        let requests = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("dapr.proto.runtime.v1.Dapr".into()),
        ];
        let answers = reflection_answers!(v1, channel.clone(), requests);
        let Some(MessageResponse::ListServicesResponse(list)) = &answers[0] else {
            panic!("no service list")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"dapr.proto.runtime.v1.Dapr"), "{names:?}");
        let Some(MessageResponse::FileDescriptorResponse(files)) = &answers[1] else {
            panic!("no file descriptor")
        };
        let files = files.file_descriptor_proto.concat();
        for method in ["TryLockAlpha1", "UnlockAlpha1", "GetMetadata"] {
            assert!(
                files.windows(method.len()).any(|w| w == method.as_bytes()),
                "{method} not described"
            );
        }

        let requests = [AlphaRequest::ListServices(String::new())];
        let answers = reflection_answers!(v1alpha, channel, requests);
        let Some(AlphaResponse::ListServicesResponse(list)) = &answers[0] else {
            panic!("no v1alpha service list")
        };
        assert!(
            list.service
                .iter()
                .any(|s| s.name == "dapr.proto.runtime.v1.Dapr")
        );
    });
}

/// A finite request stream.
fn tokio_stream_of<T: Send + 'static>(
    items: Vec<T>,
) -> impl tonic::IntoStreamingRequest<Message = T> {
    tokio_stream::iter(items)
}

#[test]
fn typed_calls_share_the_warm_instances_and_limits_of_http() {
    let guest = common::fault_injection_guest();
    let options = Options::new()
        .args(["--component", guest.to_str().unwrap()])
        .args(["--guest-timeout", "300ms"])
        .resources(&[
            (
                "count.yaml",
                &component("fault-count", "lock.in-memory", &[]),
            ),
            ("spin.yaml", &component("fault-spin", "lock.in-memory", &[])),
        ]);
    let host = Host::start_with(options);
    runtime().block_on(async {
        let mut client = dapr(&host.grpc).await;
        // Typed calls on the counting store count like HTTP requests, in the same instance.
        for _ in 0..3 {
            let step = Step::Lock("fault-count", "r", "o", 10);
            assert_eq!(over_grpc(&mut client, &step).await, Outcome::Locked(true));
        }
        let reply = host.post("/v1.0-alpha1/lock/fault-count", "{}");
        assert_eq!(reply.body, r#"{"calls":4}"#, "{reply:?}");
        // A guest past its deadline is named the same way on both transports.
        let step = Step::Lock("fault-spin", "r", "o", 10);
        let Outcome::Refused(code, message) = over_grpc(&mut client, &step).await else {
            panic!("a spinning guest answered")
        };
        assert_eq!(code, Code::Internal);
        let http = host.post("/v1.0-alpha1/lock/fault-spin", "{}");
        assert_eq!(http.status, 500);
        let http: serde_json::Value = serde_json::from_str(&http.body).unwrap();
        assert_eq!(http["message"].as_str(), Some(message.as_str()));
        assert!(
            message.starts_with("failed to try acquiring lock: the lock component failed: it ran past its execution deadline of 300ms"),
            "{message}"
        );
    });
}
