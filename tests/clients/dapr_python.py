#!/usr/bin/env python3
"""Drive the real, unmodified Dapr Python SDK (PyPI `dapr`, pinned in
requirements.txt) against a wasilock server.

Configuration (environment only):
  DAPR_RUNTIME_HOST, DAPR_HTTP_PORT, DAPR_GRPC_PORT, DAPR_API_TOKEN
      read by the SDK itself (defaults 127.0.0.1 / 3500 / 50001 / none).
      DaprClient() first polls GET /v1.0/healthz/outbound on the HTTP port
      until it answers 2xx (up to DAPR_HEALTH_TIMEOUT, 60 s), then uses gRPC.
  WASILOCK_STORE
      name of the configured lock store (default "lockstore").
  WASILOCK_EXPECT_TOKEN_FAILURE
      "1": only check that lock calls made with the (wrong or missing)
      DAPR_API_TOKEN fail with gRPC UNAUTHENTICATED.

Prints one line per passed step; the last line is exactly
`python sdk: all checks passed`. Any mismatch exits non-zero.
"""

import os
import sys
import time
import uuid
import warnings

if sys.version_info < (3, 10):
    sys.exit('dapr_python.py: Python >= 3.10 is required (dapr 1.19.0)')

import grpc  # noqa: E402  (dependency of the SDK)
from dapr.clients import DaprClient  # noqa: E402
from dapr.clients.grpc._response import UnlockResponseStatus  # noqa: E402

# try_lock/unlock emit "The Distributed Lock API is an Alpha version" UserWarnings.
warnings.filterwarnings('ignore', message='The Distributed Lock API is an Alpha version')

STORE = os.environ.get('WASILOCK_STORE') or 'lockstore'
EXPECT_TOKEN_FAILURE = os.environ.get('WASILOCK_EXPECT_TOKEN_FAILURE') == '1'
OWNER = 'conftest'


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def ok(msg):
    print(f'ok: {msg}', flush=True)


def uid(tag):
    return f'wasilock-py-{tag}-{uuid.uuid4()}'


def expect_rpc_error(fn, code, details=None, what=''):
    """Call fn(); it must raise grpc.RpcError with the given code (and details).

    The lock methods of the Python SDK do not wrap errors: they raise the
    grpc.RpcError (grpc._channel._InactiveRpcError) from the stub unchanged,
    which exposes .code() (grpc.StatusCode) and .details() (the status message).
    dapr.clients.exceptions.DaprGrpcError is a subclass of grpc.RpcError with
    the same two methods, so catching grpc.RpcError covers both.
    """
    try:
        result = fn()
    except grpc.RpcError as err:
        got_code, got_details = err.code(), err.details()
        check(
            got_code == code,
            f'{what}: expected gRPC {code.name}, got {got_code} ({got_details!r})',
        )
        if details is not None:
            check(
                got_details == details,
                f'{what}: expected message {details!r}, got {got_details!r}',
            )
        return err
    shown = getattr(result, 'success', getattr(result, 'status', result))
    raise CheckFailed(f'{what}: expected gRPC {code.name}, but the call returned {shown!r}')


def conformance(client):
    """components-contrib tests/conformance/lock/lock.go, through the SDK."""
    key1, key2 = uid('key1'), uid('key2')

    r = client.try_lock(STORE, key1, OWNER, 15)
    check(r.success is True, f'try_lock key1 (15 s): expected success True, got {r.success!r}')
    ok('try_lock key1 owner conftest expiry 15 -> success True')

    t_key2 = time.monotonic()  # taken before sending: the expiry starts no earlier
    r = client.try_lock(STORE, key2, OWNER, 3)
    check(r.success is True, f'try_lock key2 (3 s): expected success True, got {r.success!r}')
    ok('try_lock key2 owner conftest expiry 3 -> success True')

    r = client.try_lock(STORE, key1, OWNER, 15)
    check(r.success is False, f'try_lock key1 again (same owner): expected False, got {r.success!r}')
    ok('try_lock key1 same owner again -> success False (not reentrant)')

    u = client.unlock(STORE, uid('nonexistent'), OWNER)
    check(
        u.status == UnlockResponseStatus.lock_does_not_exist,
        f'unlock nonexistent: expected LOCK_DOES_NOT_EXIST, got {u.status!r}',
    )
    ok('unlock nonexistent -> LOCK_DOES_NOT_EXIST (1)')

    u = client.unlock(STORE, key1, 'nonowner')
    check(
        u.status == UnlockResponseStatus.lock_belongs_to_others,
        f'unlock key1 by nonowner: expected LOCK_BELONGS_TO_OTHERS, got {u.status!r}',
    )
    ok('unlock key1 owner nonowner -> LOCK_BELONGS_TO_OTHERS (2)')

    u = client.unlock(STORE, key1, OWNER)
    check(
        u.status == UnlockResponseStatus.success,
        f'unlock key1 by conftest: expected SUCCESS, got {u.status!r}',
    )
    ok('unlock key1 owner conftest -> SUCCESS (0)')

    deadline = time.monotonic() + 6.0
    attempts = 0
    while True:
        attempts += 1
        r = client.try_lock(STORE, key2, OWNER, 3)
        now = time.monotonic()
        if r.success:
            break
        check(now < deadline, f'try_lock key2 never succeeded within 6 s ({attempts} attempts)')
        time.sleep(0.1)
    elapsed = now - t_key2
    check(
        elapsed >= 2.5,
        f'try_lock key2 succeeded {elapsed:.2f} s after it was locked for 3 s (expected >= 2.5 s)',
    )
    ok(f'key2 expired: try_lock succeeded again {elapsed:.2f} s after the 3 s lock ({attempts} polls)')
    client.unlock(STORE, key2, OWNER)


def context_manager(client):
    """TryLockResponse is a context manager: __exit__ unlocks if the lock was acquired."""
    res = uid('ctx')
    with client.try_lock(STORE, res, OWNER, 60) as lock:
        check(lock.success is True, f'with try_lock(...) as lock: expected success, got {lock.success!r}')
        check(bool(lock), 'bool(TryLockResponse) should be True when acquired')
        other = client.try_lock(STORE, res, 'other-owner', 60)
        check(other.success is False, f'other owner inside with-block: expected False, got {other.success!r}')
    ok('context manager: lock held inside the with-block (other owner gets False)')

    other = client.try_lock(STORE, res, 'other-owner', 60)
    check(
        other.success is True,
        f'other owner after the with-block: expected True (SDK unlocks on exit), got {other.success!r}',
    )
    u = client.unlock(STORE, res, 'other-owner')
    check(u.status == UnlockResponseStatus.success, f'cleanup unlock: got {u.status!r}')
    ok('context manager: lock released on exit (other owner then acquires it)')


def unknown_store(client):
    msg = 'lock store no-such-store not found'
    expect_rpc_error(
        lambda: client.try_lock('no-such-store', uid('nostore'), OWNER, 15),
        grpc.StatusCode.INVALID_ARGUMENT,
        msg,
        'try_lock on unknown store',
    )
    ok(f'try_lock on unknown store -> grpc.RpcError INVALID_ARGUMENT {msg!r}')
    expect_rpc_error(
        lambda: client.unlock('no-such-store', uid('nostore'), OWNER),
        grpc.StatusCode.INVALID_ARGUMENT,
        msg,
        'unlock on unknown store',
    )
    ok(f'unlock on unknown store -> grpc.RpcError INVALID_ARGUMENT {msg!r}')


def client_side_validation(client):
    try:
        client.try_lock(STORE, uid('zero'), OWNER, 0)
    except ValueError:
        pass
    else:
        raise CheckFailed('try_lock with expiry 0: expected ValueError from the SDK')
    ok('try_lock expiry 0 -> ValueError raised client-side by the SDK')


def token_failure(client):
    sent = 'a wrong' if os.environ.get('DAPR_API_TOKEN') else 'no'
    err = expect_rpc_error(
        lambda: client.try_lock(STORE, uid('token'), OWNER, 15),
        grpc.StatusCode.UNAUTHENTICATED,
        'Unauthorized',
        f'try_lock with {sent} token',
    )
    ok(f'try_lock with {sent} api token -> grpc.RpcError UNAUTHENTICATED ({err.details()!r})')
    err = expect_rpc_error(
        lambda: client.unlock(STORE, uid('token'), OWNER),
        grpc.StatusCode.UNAUTHENTICATED,
        'Unauthorized',
        f'unlock with {sent} token',
    )
    ok(f'unlock with {sent} api token -> grpc.RpcError UNAUTHENTICATED ({err.details()!r})')


def main():
    # Blocks on GET /v1.0/healthz/outbound (exempt from the API token) until 2xx.
    with DaprClient() as client:
        ok('DaprClient() connected (healthz/outbound answered 2xx)')
        if EXPECT_TOKEN_FAILURE:
            token_failure(client)
        else:
            conformance(client)
            context_manager(client)
            unknown_store(client)
            client_side_validation(client)
    print('python sdk: all checks passed', flush=True)


if __name__ == '__main__':
    try:
        main()
    except CheckFailed as e:
        print(f'FAIL: {e}', file=sys.stderr, flush=True)
        sys.exit(1)
    except grpc.RpcError as e:
        print(f'FAIL: unexpected gRPC error {e.code()}: {e.details()!r}', file=sys.stderr, flush=True)
        sys.exit(1)
