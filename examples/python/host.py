"""A Python host for the wasilock lock component (wasmtime-py), with two modes.

    python host.py serve --component lock.wasm [--port 3500] [--stores lockstore]
                         [--max-body-size BYTES]
        Dapr's lock API over HTTP: every request goes to the component's `http-api` export,
        except daprd's health checks (`GET /v1.0/healthz`, `/v1.0/healthz/outbound`), which
        the host answers itself (204).

    python host.py calls --component lock.wasm [--stores lockstore]
        The typed `lock` export: one JSON array per line on stdin,
        `["try_lock", store, resource, owner, expiry]` or `["unlock", store, resource, owner]`,
        one JSON object per line on stdout: `{"ok": true}`, `{"ok": "success"}` or
        `{"error": ["malformed-request", "ExpiryInSeconds is not positive in lock store s"]}`.

`--stores` lists the lock stores by name, comma-separated (`""` for none).
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lock_component import LockComponent, LockError
from store import Stores

DEFAULT_MAX_BODY_SIZE = 4 * 1024 * 1024  # daprd's default, which the component also uses
HEALTH_PATHS = ("/v1.0/healthz", "/v1.0/healthz/outbound")  # daprd's, answered with 204


class LockApiHandler(BaseHTTPRequestHandler):
    """Hands every request to the component, whatever its method."""

    protocol_version = "HTTP/1.1"  # keep connections alive

    def __getattr__(self, name):
        # http.server calls do_<METHOD>; the component answers every method itself.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self):
        if self.command == "GET" and self.path.split("?")[0] in HEALTH_PATHS:
            self._answer(204, None, b"")
            return
        body = self._read_body()
        status, answer = self.server.component.handle(self.command, self.path, body)
        self._answer(status, "application/json", answer.encode())

    def _read_body(self):
        """The body as `http-api` takes it: bytes, None when too large, or why it is unreadable.

        A body left unread leaves the connection unusable, so it is closed after the answer.
        """
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunks()
        else:
            body = self._read_length()
        if not isinstance(body, bytes):
            self.close_connection = True
        return body

    def _read_length(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            return "invalid Content-Length"
        if length > self.server.max_body_size:
            return None
        body = self.rfile.read(length)
        return body if len(body) == length else "the body ended early"

    def _read_chunks(self):
        body = b""
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0], 16)
            except ValueError:
                return "invalid chunk size"
            if size == 0:
                break
            if len(body) + size > self.server.max_body_size:
                return None
            chunk = self.rfile.read(size + 2)  # the data and its CRLF
            if len(chunk) < size + 2:
                return "the body ended early"
            body += chunk[:size]
        while self.rfile.readline(1024).strip():
            pass  # trailer fields, up to the empty line
        return body

    def _answer(self, status, content_type, body):
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve(args, component):
    server = ThreadingHTTPServer((args.bind, args.port), LockApiHandler)
    server.daemon_threads = True
    server.component = component
    server.max_body_size = args.max_body_size or DEFAULT_MAX_BODY_SIZE
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


def calls(component):
    for line in sys.stdin:
        operation, *arguments = json.loads(line)
        call = {"try_lock": component.try_lock, "unlock": component.unlock}[operation]
        try:
            answer = {"ok": call(*arguments)}
        except LockError as error:
            answer = {"error": [error.case, error.message]}
        print(json.dumps(answer), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["serve", "calls"])
    parser.add_argument("--component", required=True, help="the lock component (.wasm)")
    parser.add_argument("--stores", default="lockstore", help="lock store names, comma-separated")
    parser.add_argument("--bind", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=3500, help="0 picks a free port")
    parser.add_argument("--max-body-size", type=int, help="bytes; daprd's 4 MiB when not given")
    args = parser.parse_args()
    stores = Stores([name for name in args.stores.split(",") if name])
    component = LockComponent(args.component, stores, args.max_body_size)
    if args.mode == "serve":
        serve(args, component)
    else:
        calls(component)


if __name__ == "__main__":
    main()
