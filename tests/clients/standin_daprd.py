"""A stand-in daprd for wasilock's upstream tests: the gRPC side is the servicer stubs that
ship inside the official `dapr` package (`DaprServicer`, `add_DaprServicer_to_server`), the
HTTP side a small stdlib `http.server`. It records every call it sees, so a test can check
what reached daprd (and that no lock call did).

Usage: python standin_daprd.py HTTP_PORT GRPC_PORT
Prints `standin ready` once both listen. `GET /standin/calls` (not recorded) answers the
calls seen so far as a JSON list of "grpc <path>" and "http <METHOD> <path>".

Besides daprd's own methods it serves `wasilock.test.Echo` (a service wasilock has never
heard of): `Echo` (unary; echoes the bytes reversed, the `x-test-header` metadata back as a
header and a trailer; the bytes `fail` answer FAILED_PRECONDITION with an ErrorInfo detail)
and `Concat` (client streaming). Any other HTTP path echoes the request: status from
`x-standin-status`, the method, path and token seen in `x-standin-*` headers, the body back.
"""

import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import any_pb2, empty_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

import dapr.proto.runtime.v1 as api_v1
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2, dapr_pb2_grpc

CALLS = []
STATE = {}
GUARD = threading.Lock()
UNSUBSCRIBED = threading.Event()


def record(call):
    with GUARD:
        CALLS.append(call)


def recorded(method):
    """Wraps a servicer method so that each call is recorded under its full path."""

    def wrapper(self, request, context):
        record(f"grpc /dapr.proto.runtime.v1.Dapr/{method.__name__}")
        return method(self, request, context)

    wrapper.__name__ = method.__name__
    return wrapper


class Daprd(dapr_pb2_grpc.DaprServicer):
    """Daprd's gRPC API, the part the tests use."""

    @recorded
    def SaveState(self, request, context):
        with GUARD:
            for item in request.states:
                STATE[(request.store_name, item.key)] = item.value
        return empty_pb2.Empty()

    @recorded
    def GetState(self, request, context):
        with GUARD:
            data = STATE.get((request.store_name, request.key), b"")
        return api_v1.GetStateResponse(data=data, etag="1")

    @recorded
    def PublishEvent(self, request, context):
        return empty_pb2.Empty()

    def _configuration(self, request, context):
        yield api_v1.SubscribeConfigurationResponse(id="config-subscription")
        items = {
            key: common_pb2.ConfigurationItem(value=f"value-of-{key}", version="1")
            for key in request.keys
        }
        yield api_v1.SubscribeConfigurationResponse(id="config-subscription", items=items)
        # A long-lived stream, as daprd's: it ends when the client unsubscribes or leaves.
        while context.is_active() and not UNSUBSCRIBED.wait(0.1):
            pass

    @recorded
    def SubscribeConfigurationAlpha1(self, request, context):
        yield from self._configuration(request, context)

    @recorded
    def SubscribeConfiguration(self, request, context):
        yield from self._configuration(request, context)

    @recorded
    def UnsubscribeConfigurationAlpha1(self, request, context):
        UNSUBSCRIBED.set()
        return api_v1.UnsubscribeConfigurationResponse(ok=True)

    @recorded
    def UnsubscribeConfiguration(self, request, context):
        UNSUBSCRIBED.set()
        return api_v1.UnsubscribeConfigurationResponse(ok=True)

    @recorded
    def SubscribeTopicEventsAlpha1(self, request_iterator, context):
        initial = next(request_iterator).initial_request
        yield api_v1.SubscribeTopicEventsResponseAlpha1(
            initial_response=api_v1.SubscribeTopicEventsResponseInitialAlpha1()
        )
        event = appcallback_pb2.TopicEventRequest(
            id="event-1",
            source="standin",
            type="com.dapr.event.sent",
            spec_version="1.0",
            data_content_type="text/plain",
            data=b"hello through wasilock",
            topic=initial.topic,
            pubsub_name=initial.pubsub_name,
        )
        yield api_v1.SubscribeTopicEventsResponseAlpha1(event_message=event)
        for request in request_iterator:
            if request.HasField("event_processed"):
                processed = request.event_processed
                record(f"processed {processed.id} status={processed.status.status}")

    @recorded
    def TryLockAlpha1(self, request, context):
        return api_v1.TryLockResponse(success=True)

    @recorded
    def UnlockAlpha1(self, request, context):
        return api_v1.UnlockResponse(status=0)

    @recorded
    def GetMetadata(self, request, context):
        return api_v1.GetMetadataResponse(
            id="standin-app",
            runtime_version="1.16.0-standin",
            registered_components=[
                api_v1.RegisteredComponents(name="statestore", type="state.in-memory", version="v1"),
                api_v1.RegisteredComponents(name="theirs", type="lock.redis", version="v1"),
            ],
            extended_metadata={"standin": "yes"},
            subscriptions=[api_v1.PubsubSubscription(pubsub_name="pubsub", topic="orders")],
        )


def echo(request, context):
    """`wasilock.test.Echo/Echo`: raw bytes, metadata echoed, or a rich error."""
    record("grpc /wasilock.test.Echo/Echo")
    sent = dict(context.invocation_metadata()).get("x-test-header", "")
    if request == b"fail":
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason="STANDIN_FAILED", domain="standin.test", metadata={"sent": sent}
            )
        )
        status = status_pb2.Status(
            code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
            message="the stand-in failed on purpose",
            details=[detail],
        )
        context.abort_with_status(rpc_status.to_status(status))
    context.send_initial_metadata((("x-echo-header", f"header-{sent}"),))
    context.set_trailing_metadata((("x-echo-trailer", f"trailer-{sent}"),))
    return request[::-1]


def concat(request_iterator, context):
    """`wasilock.test.Echo/Concat`: the client's messages joined."""
    record("grpc /wasilock.test.Echo/Concat")
    return b"+".join(request_iterator)


class Http(BaseHTTPRequestHandler):
    """Daprd's HTTP API, the part the tests use, and an echo for every other path."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == "/standin/calls":
            with GUARD:
                calls = json.dumps(CALLS).encode()
            return self.answer(200, calls, [("Content-Type", "application/json")])
        record(f"http {self.command} {self.path}")
        parts = path.strip("/").split("/")
        if path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
            return self.answer(204)
        if path == "/v1.0/metadata":
            metadata = {
                "id": "standin-app",
                "runtimeVersion": "1.16.0-standin",
                "actors": [{"type": "cart", "count": 1}],
                "components": [
                    {"name": "statestore", "type": "state.in-memory", "version": "v1", "capabilities": []},
                    {"name": "theirs", "type": "lock.redis", "version": "v1", "capabilities": []},
                ],
                "extended": {"standin": "yes"},
                "subscriptions": [{"pubsubname": "pubsub", "topic": "orders"}],
            }
            return self.answer(200, json.dumps(metadata).encode(), [("Content-Type", "application/json")])
        if len(parts) == 3 and parts[:2] == ["v1.0", "state"] and self.command == "POST":
            with GUARD:
                for item in json.loads(body):
                    STATE[(parts[2], item["key"])] = json.dumps(item["value"]).encode()
            return self.answer(204)
        if len(parts) == 4 and parts[:2] == ["v1.0", "state"] and self.command == "GET":
            with GUARD:
                value = STATE.get((parts[2], parts[3]))
            if value is None:
                return self.answer(204)
            return self.answer(200, value, [("Content-Type", "application/json"), ("ETag", "1")])
        status = int(self.headers.get("x-standin-status") or 200)
        echoed = [
            ("x-standin-method", self.command),
            ("x-standin-path", self.path),
            ("x-standin-token", self.headers.get("dapr-api-token") or ""),
            ("Content-Type", self.headers.get("Content-Type") or "application/octet-stream"),
        ]
        return self.answer(status, body, echoed)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    http_port, grpc_port = int(sys.argv[1]), int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    dapr_pb2_grpc.add_DaprServicer_to_server(Daprd(), server)
    echo_service = grpc.method_handlers_generic_handler(
        "wasilock.test.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Concat": grpc.stream_unary_rpc_method_handler(concat),
        },
    )
    server.add_generic_rpc_handlers((echo_service,))
    if server.add_insecure_port(f"127.0.0.1:{grpc_port}") != grpc_port:
        sys.exit(f"cannot listen on gRPC port {grpc_port}")
    server.start()
    ThreadingHTTPServer.daemon_threads = True
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Http)
    print("standin ready", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
