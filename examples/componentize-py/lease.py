"""Dapr's lock rules over the host's store, plus this component's owner policy.

Validation follows daprd's order (pkg/api/universal/lock.go), with its messages: expiry
(try-lock only), stores configured, resource id, owner, store exists, the key's `||` rule;
then the owner policy (`policy.py`), then one compare-and-swap on the store: from "absent" to
the owner, with the lease as TTL, to acquire; from the owner to "deleted" to release.

Refusals are raised as `Err(<WIT lock-error case>)`, which the typed export hands to the host
as is and `routes.py` turns into daprd's HTTP answer.
"""

from contextlib import contextmanager

import policy
from componentize_py_types import Err
from wit_world.exports import lock
from wit_world.imports import store

# The separator of Dapr's lock keys (`lock||<prefix>||<resourceId>`).
KEY_SEPARATOR = "||"
TRY_LOCK_FAILED = "failed to try acquiring lock: "
UNLOCK_FAILED = "failed to release lock: "
NOT_CONFIGURED = "lock store is not configured"


def try_lock(store_name, resource_id, lock_owner, expiry_in_seconds):
    """Whether `lock_owner` acquired `resource_id` (False when a live lock exists)."""
    if expiry_in_seconds <= 0:
        raise malformed("ExpiryInSeconds is not positive in lock store %s" % store_name)
    failed = lock.LockError_TryLockFailed
    owner = lock_owner.encode("utf-8")
    with opened(store_name, resource_id, lock_owner, TRY_LOCK_FAILED, failed) as bucket:
        admit(store_name, resource_id, lock_owner, TRY_LOCK_FAILED, failed)
        with store_errors(TRY_LOCK_FAILED, failed):
            outcome = bucket.compare_and_swap(resource_id, None, owner, expiry_in_seconds * 1000)
    return isinstance(outcome, store.CasOutcome_Swapped)


def unlock(store_name, resource_id, lock_owner):
    """The `lock.UnlockStatus` of releasing `resource_id` held by `lock_owner`."""
    failed = lock.LockError_UnlockFailed
    owner = lock_owner.encode("utf-8")
    with opened(store_name, resource_id, lock_owner, UNLOCK_FAILED, failed) as bucket:
        admit(store_name, resource_id, lock_owner, UNLOCK_FAILED, failed)
        with store_errors(UNLOCK_FAILED, failed):
            outcome = bucket.compare_and_swap(resource_id, owner, None, None)
    if isinstance(outcome, store.CasOutcome_Swapped):
        return lock.UnlockStatus.SUCCESS
    if outcome.value is None:
        return lock.UnlockStatus.LOCK_DOES_NOT_EXIST
    if outcome.value != owner:
        return lock.UnlockStatus.LOCK_BELONGS_TO_OTHERS
    # The store reported a conflict with our own value: it broke its contract.
    return lock.UnlockStatus.INTERNAL_ERROR


def opened(store_name, resource_id, lock_owner, failure_prefix, failure):
    """The store's bucket, once daprd's checks up to "the store exists" have passed."""
    try:
        bucket, error = store.Bucket.open(store_name), None
    except Err as e:
        bucket, error = None, e.value
    if isinstance(error, store.Error_NotConfigured):
        raise Err(lock.LockError_StoreNotConfigured(NOT_CONFIGURED))
    problem = None
    if resource_id == "":
        problem = "ResourceId is empty in lock store %s" % store_name
    elif lock_owner == "":
        problem = "LockOwner is empty in lock store %s" % store_name
    if problem is not None:
        if bucket is not None:
            bucket.__exit__(None, None, None)
        raise malformed(problem)
    if isinstance(error, store.Error_Backend):
        raise Err(failure(failure_prefix + error.value))
    if error is not None:
        raise Err(lock.LockError_StoreNotFound("lock store %s not found" % store_name))
    return bucket


def admit(store_name, resource_id, lock_owner, failure_prefix, failure):
    """The checks after the store is known: daprd's `||` rule, then the owner policy."""
    if KEY_SEPARATOR in resource_id:
        raise Err(
            failure(
                "%sinput key/keyPrefix '%s' can't contain '%s'"
                % (failure_prefix, resource_id, KEY_SEPARATOR)
            )
        )
    refused = policy.refusal(store_name, lock_owner)
    if refused is not None:
        raise malformed(refused)


@contextmanager
def store_errors(failure_prefix, failure):
    """Turns a store error raised inside into `failure`, with daprd's prefix."""
    try:
        yield
    except Err as e:
        raise Err(failure(failure_prefix + store_error_text(e.value))) from None


def store_error_text(error):
    """The text of a WIT `store.error`, as the built-in component writes it."""
    if isinstance(error, store.Error_Backend):
        return error.value
    if isinstance(error, store.Error_NotConfigured):
        return NOT_CONFIGURED
    if isinstance(error, store.Error_NoSuchStore):
        return "no such lock store"
    return "access to the lock store is denied"


def malformed(message):
    """400 `ERR_MALFORMED_REQUEST` with `message`."""
    return Err(lock.LockError_MalformedRequest(message))
