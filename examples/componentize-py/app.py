"""The component's exports (world `wasilock:lock/lock-api`): the typed `lock` interface, Dapr's
HTTP API as one `http-api` call per request, and `settings`.

Build: `componentize-py -d ../../wit -w lock-api componentize app -o policy.wasm`.
"""

import lease
import routes
from wit_world import exports
from wit_world.exports import http_api, lock, settings


class Lock(exports.Lock):
    """`wasilock:lock/lock`: Dapr's TryLock and Unlock as typed calls (the host's gRPC API)."""

    def try_lock(self, store: str, request: lock.LockRequest) -> bool:
        return lease.try_lock(
            store, request.resource_id, request.lock_owner, request.expiry_in_seconds
        )

    def unlock(self, store: str, request: lock.UnlockRequest) -> lock.UnlockStatus:
        return lease.unlock(store, request.resource_id, request.lock_owner)


class HttpApi(exports.HttpApi):
    """`wasilock:lock/http-api`: one HTTP request in, its answer out."""

    def handle(self, request: http_api.Request) -> http_api.Response:
        status, body = routes.answer(
            request.method, request.path_with_query, lambda: request_body(request.body)
        )
        return http_api.Response(status=status, body=body)


class Settings(exports.Settings):
    """`wasilock:lock/settings`: the host's body bound, named when a body is too large."""

    def configure(self, config: settings.Config) -> None:
        routes.configure(config.max_body_size)


def request_body(sent: http_api.RequestBody) -> bytes:
    """The bytes of a body the host read whole; raises `routes.Refused` otherwise."""
    if isinstance(sent, http_api.RequestBody_Complete):
        return sent.value
    if isinstance(sent, http_api.RequestBody_TooLarge):
        raise routes.too_large()
    raise routes.unreadable(sent.value)
