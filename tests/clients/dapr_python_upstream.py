"""Dapr's Python SDK (and raw grpcio calls) through wasilock to a daprd upstream (the
stand-in of standin_daprd.py).

Usage: python dapr_python_upstream.py through|down
Environment: DAPR_RUNTIME_HOST, DAPR_HTTP_PORT, DAPR_GRPC_PORT (wasilock's), DAPR_API_TOKEN
(optional), WASILOCK_STORE, STANDIN_HTTP (the stand-in's own HTTP address, asked directly
what it saw).

- through: state saved and read, an event published, a configuration subscription
  (server streaming) and a topic subscription (bidirectional) followed, GetMetadata merged,
  a lock taken and released (wasilock's), and raw calls to `wasilock.test.Echo`, a service
  wasilock has never heard of: headers, trailers, status and error details unchanged, and a
  client stream.
- down (the stand-in is stopped): raw calls only (the SDK waits for a healthy sidecar):
  a forwarded call fails UNAVAILABLE naming the upstream, while locks and GetMetadata
  (wasilock's own) keep working.

Prints one line per check; the last line is `python upstream (<mode>): all checks passed`.
"""

import json
import os
import sys
import threading
import time
import urllib.request
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import dapr.proto.runtime.v1 as api_v1
from dapr.proto.runtime.v1 import dapr_pb2_grpc

MODE = sys.argv[1]
STORE = os.environ.get("WASILOCK_STORE", "lockstore")
TOKEN = os.environ.get("DAPR_API_TOKEN")
TOKEN_METADATA = [("dapr-api-token", TOKEN)] if TOKEN else []
GRPC = f"127.0.0.1:{os.environ['DAPR_GRPC_PORT']}"


def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")
    print(f"ok: {message}", flush=True)


def standin_saw(call):
    """Whether the stand-in records `call` within 30 s (asked directly, not through wasilock)."""
    url = f"{os.environ['STANDIN_HTTP']}/standin/calls"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url) as answer:
            if call in json.load(answer):
                return True
        time.sleep(0.1)
    return False


def raw_calls(channel):
    echo = channel.unary_unary("/wasilock.test.Echo/Echo")
    reply, call = echo.with_call(b"abc", metadata=TOKEN_METADATA + [("x-test-header", "h1")])
    check(reply == b"cba", f"an unknown method's answer arrives unchanged ({reply!r})")
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    check(initial.get("x-echo-header") == "header-h1", f"its headers arrive ({initial})")
    check(trailing.get("x-echo-trailer") == "trailer-h1", f"its trailers arrive ({trailing})")
    try:
        echo(b"fail", metadata=TOKEN_METADATA + [("x-test-header", "h2")])
        check(False, "a failing call fails")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.FAILED_PRECONDITION, f"its status arrives ({error.code()})")
        status = rpc_status.from_call(error)
        check(status is not None and status.message == "the stand-in failed on purpose",
              "grpc-status-details-bin arrives and matches the status")
        info = error_details_pb2.ErrorInfo()
        check(status.details[0].Unpack(info) and info.reason == "STANDIN_FAILED"
              and info.metadata["sent"] == "h2", f"its ErrorInfo arrives ({info})")
    concat = channel.stream_unary("/wasilock.test.Echo/Concat")
    joined = concat(iter([b"a", b"b", b"c"]), metadata=TOKEN_METADATA)
    check(joined == b"a+b+c", f"a client stream goes through ({joined!r})")


def through():
    from dapr.clients import DaprClient

    with DaprClient() as client:
        key = f"key-{uuid.uuid4()}"
        client.save_state("statestore", key, "saved through wasilock")
        state = client.get_state("statestore", key)
        check(state.data == b"saved through wasilock", f"state saved and read ({state.data!r})")

        client.publish_event("pubsub", "orders", data='{"order": 1}', data_content_type="application/json")
        check(True, "an event is published")

        seen = {}
        arrived = threading.Event()

        def on_change(_id, response):
            seen.update({k: v.value for k, v in response.items.items()})
            if seen:
                arrived.set()

        subscription_id = client.subscribe_configuration("configstore", ["a", "b"], on_change)
        check(arrived.wait(30) and seen == {"a": "value-of-a", "b": "value-of-b"},
              f"a server stream is followed ({subscription_id}: {seen})")
        check(client.unsubscribe_configuration("configstore", subscription_id), "and unsubscribed")

        subscription = client.subscribe("pubsub", "orders")
        message = subscription.next_message()
        check(message.data() == "hello through wasilock" and message.topic() == "orders",
              f"a bidirectional stream delivers an event ({message.data()!r})")
        subscription.respond_success(message)
        check(standin_saw("processed event-1 status=0"), "and the subscriber's answer goes back up")
        subscription.close()

        resource = f"resource-{uuid.uuid4()}"
        with client.try_lock(STORE, resource, "python-upstream", 30) as lock:
            check(lock.success, "a lock is taken (by wasilock)")
        check(client.try_lock(STORE, resource, "someone-else", 30).success, "and released")

        metadata = client.get_metadata()
        components = {c.name: c.type for c in metadata.registered_components}
        check(metadata.application_id == "standin-app", f"metadata is daprd's ({metadata.application_id})")
        check(components.get("statestore") == "state.in-memory" and components.get(STORE, "").startswith("lock.")
              and "theirs" not in components, f"with wasilock's lock stores for daprd's ({components})")

    channel = grpc.insecure_channel(GRPC)
    raw = dapr_pb2_grpc.DaprStub(channel).GetMetadata(api_v1.GetMetadataRequest(), metadata=TOKEN_METADATA)
    topics = [s.topic for s in raw.subscriptions]
    check(topics == ["orders"], f"fields wasilock does not know arrive too (subscriptions {topics})")
    raw_calls(channel)


def down():
    channel = grpc.insecure_channel(GRPC)
    echo = channel.unary_unary("/wasilock.test.Echo/Echo")
    try:
        echo(b"abc", metadata=TOKEN_METADATA, timeout=30)
        check(False, "a forwarded call fails")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.UNAVAILABLE and "the upstream daprd http://" in error.details(),
              f"a forwarded call fails UNAVAILABLE naming the upstream ({error.details()})")
    try_lock = channel.unary_unary(
        "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
        request_serializer=api_v1.TryLockRequest.SerializeToString,
        response_deserializer=api_v1.TryLockResponse.FromString,
    )
    request = api_v1.TryLockRequest(store_name=STORE, resource_id=f"down-{uuid.uuid4()}",
                                    lock_owner="python-upstream", expiry_in_seconds=30)
    check(try_lock(request, metadata=TOKEN_METADATA, timeout=30).success, "locks keep working")
    metadata = dapr_pb2_grpc.DaprStub(channel).GetMetadata(api_v1.GetMetadataRequest(), metadata=TOKEN_METADATA)
    names = [c.name for c in metadata.registered_components]
    check(names == [STORE], f"GetMetadata answers wasilock's own ({names})")


{"through": through, "down": down}[MODE]()
print(f"python upstream ({MODE}): all checks passed")
