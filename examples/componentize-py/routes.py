"""Dapr's HTTP surface for locks: routing, status codes and the exact response bodies.

Only `POST /v1.0-alpha1/lock/{store}` and `POST /v1.0-alpha1/unlock/{store}` are routed;
anything else gets daprd's service-invocation 404. Bodies are those of daprd (and of the
built-in component), byte for byte: Go's `json.Marshal` escaping, no trailing newline.
"""

import json

import body
import lease
from componentize_py_types import Err
from wit_world.exports import lock

# daprd's default `--max-body-size` (4Mi), the bound named when the host sets none.
DEFAULT_MAX_BODY_SIZE = 4 * 1024 * 1024
LOCK_PREFIX = "/v1.0-alpha1/lock/"
UNLOCK_PREFIX = "/v1.0-alpha1/unlock/"
HEX = "0123456789abcdefABCDEF"
# Characters Go's json.Marshal escapes that Python's json.dumps writes as they are.
GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
              "\u2029": "\\u2029"}
ERRORS = {
    lock.LockError_MalformedRequest: (400, "ERR_MALFORMED_REQUEST"),
    lock.LockError_StoreNotConfigured: (500, "ERR_LOCK_STORE_NOT_CONFIGURED"),
    lock.LockError_StoreNotFound: (400, "ERR_LOCK_STORE_NOT_FOUND"),
    lock.LockError_TryLockFailed: (500, "ERR_TRY_LOCK"),
    lock.LockError_UnlockFailed: (500, "ERR_UNLOCK"),
}

# The body bound in force: the host's, through `settings.configure`, else daprd's default.
body_limit = DEFAULT_MAX_BODY_SIZE


def configure(max_body_size):
    """Sets the body bound named in the `too-large` answer (None: daprd's default)."""
    global body_limit
    body_limit = DEFAULT_MAX_BODY_SIZE if max_body_size is None else max_body_size


def answer(method, path_with_query, read_body):
    """`(status, json_body)` for one request; `read_body()` gives the body's bytes, or
    raises `Refused` with the answer when the host could not read it."""
    route = find_route(method, path_with_query)
    if route is None:
        return 404, error_body(
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        )
    operation, store_name = route
    if store_name is None:
        return 400, error_body("ERR_MALFORMED_REQUEST", "invalid URL escape in the lock store name")
    try:
        content = read_body()
    except Refused as refused:
        return refused.status, refused.body
    try:
        if operation == "lock":
            acquired = lease.try_lock(store_name, *parsed(body.lock_request, content))
            return 200, '{"success":%s}' % ("true" if acquired else "false")
        status = lease.unlock(store_name, *parsed(body.unlock_request, content))
        return 200, '{"status":%d}' % status.value
    except Err as e:
        status, code = ERRORS[type(e.value)]
        return status, error_body(code, e.value.value)


class Refused(Exception):
    """A request body the host could not hand over, with the answer to give."""

    def __init__(self, status, json_body):
        super().__init__(json_body)
        self.status = status
        self.body = json_body


def too_large():
    """The refusal of a body over the bound."""
    return Refused(413, error_body(
        "ERR_MALFORMED_REQUEST",
        "failed deserializing HTTP body: request body larger than %d bytes" % body_limit,
    ))


def unreadable(reason):
    """The refusal of a body that could not be read."""
    return Refused(400, error_body(
        "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: %s" % reason
    ))


def parsed(parse, content):
    """`parse(content)`, a refused body becoming 400 `ERR_MALFORMED_REQUEST`."""
    try:
        return parse(content)
    except body.BodyError as e:
        raise lease.malformed("failed deserializing HTTP body: %s" % e) from None


def find_route(method, path_with_query):
    """`("lock" | "unlock", store)` (store None: invalid escape), or None: not routed."""
    if method != "POST":
        return None
    path = path_with_query.split("?", 1)[0]
    if path.startswith(LOCK_PREFIX):
        operation, segment = "lock", path[len(LOCK_PREFIX):]
    elif path.startswith(UNLOCK_PREFIX):
        operation, segment = "unlock", path[len(UNLOCK_PREFIX):]
    else:
        return None
    if not segment or "/" in segment:
        return None
    return operation, query_unescape(segment)


def query_unescape(text):
    """Go's `url.QueryUnescape`: `%XX` decoded, `+` a space; None on an invalid escape."""
    out = bytearray()
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == ord("%"):
            digits = raw[i + 1 : i + 3].decode("latin-1")
            if len(digits) < 2 or any(d not in HEX for d in digits):
                return None
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(ord(" ") if byte == ord("+") else byte)
            i += 1
    return out.decode("utf-8", errors="replace")


def error_body(code, message):
    """`{"errorCode":..,"message":..}` as Go's json.Marshal writes it."""
    text = json.dumps({"errorCode": code, "message": message}, ensure_ascii=False,
                      separators=(",", ":"))
    for raw, escaped in GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text
