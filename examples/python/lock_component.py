"""The wasilock lock component, instantiated with wasmtime's component API.

`LockComponent` loads the component (`wasilock component --out lock.wasm` writes it), links
WASI and the `store` import (backed by store.Stores), instantiates it once, and exposes its
exports as Python methods: `try_lock`/`unlock` (the typed `lock` interface) and `handle`
(the `http-api` interface). One instance runs one call at a time: callers from several
threads share it through its lock.

wasmtime-py passes WIT values as Python values: strings, ints, bools, `bytes` for
`list<u8>`, None for `none`, records as `Record` objects with the WIT field names as
attributes, enums as their case name. A variant (and `result`) is a `Variant(tag, payload)`
only when its cases cannot be told apart by Python type; otherwise it is the payload alone.
"""

import threading

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, ResourceHost, ResourceType, Variant

from store import StoreError

PACKAGE = "wasilock:lock"
VERSION = "0.1.2"
BUCKET = 1  # our id for the `bucket` resource type


class LockError(Exception):
    """A `lock-error` from the component: `case` (`malformed-request`, ...) and Dapr's message."""

    def __init__(self, case, message):
        super().__init__(f"{case}: {message}")
        self.case = case
        self.message = message


def record(**fields):
    """A WIT record from keyword arguments (`resource_id` becomes the field `resource-id`)."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


class LockComponent:
    """One instance of the lock component over `stores`."""

    def __init__(self, path, stores, max_body_size=None):
        engine = Engine()
        component = Component.from_file(engine, path)
        self._store = Store(engine)
        self._store.set_wasi(WasiConfig())
        self._stores = stores
        self._buckets = {}  # resource representation -> store.MemoryStore
        self._next_rep = 0
        self._lock = threading.Lock()
        linker = Linker(engine)
        linker.add_wasip2()
        # The component also exports wasi:http/incoming-handler, so it imports wasi:http/types.
        linker.add_wasi_http()
        self._link_store(linker)
        instance = linker.instantiate(self._store, component)
        self._try_lock = self._export(instance, "lock", "try-lock")
        self._unlock = self._export(instance, "lock", "unlock")
        self._handle = self._export(instance, "http-api", "handle")
        if max_body_size is not None:
            configure = self._export(instance, "settings", "configure")
            self._call(configure, record(max_body_size=max_body_size))

    def _link_store(self, linker):
        """Defines the `store` interface: the `bucket` resource and its functions."""
        with linker.root() as root:
            with root.add_instance(f"{PACKAGE}/store@{VERSION}") as store:
                store.add_resource("bucket", ResourceType.host(BUCKET), self._drop_bucket)
                store.add_func("[static]bucket.open", self._open)
                store.add_func("[method]bucket.get", self._get)
                store.add_func("[method]bucket.compare-and-swap", self._compare_and_swap)
                store.add_func(
                    "[method]bucket.compare-and-swap-fenced", self._compare_and_swap_fenced
                )
                store.add_func("[method]bucket.inspect", self._inspect)

    # The `store` import. wasmtime-py calls these with its store context first.

    def _open(self, _context, name):
        try:
            bucket = self._stores.open(name)
        except StoreError as error:
            return Variant(error.case)
        self._next_rep += 1
        self._buckets[self._next_rep] = bucket
        return ResourceHost.own(self._next_rep, BUCKET)

    def _drop_bucket(self, _context, rep):
        del self._buckets[rep]

    def _bucket(self, context, handle):
        return self._buckets[handle.to_host(context).rep]

    def _get(self, context, handle, key):
        return self._bucket(context, handle).get(key)

    def _compare_and_swap(self, context, handle, key, expected, new, ttl_ms):
        bucket = self._bucket(context, handle)
        swapped, live = bucket.compare_and_swap(key, expected, new, ttl_ms)
        outcome = Variant("swapped") if swapped else Variant("conflict", live)
        return Variant("ok", outcome)

    def _compare_and_swap_fenced(self, context, handle, key, expected, new, ttl_ms):
        bucket = self._bucket(context, handle)
        swapped, token_or_live = bucket.compare_and_swap(key, expected, new, ttl_ms)
        if swapped:
            return Variant("ok", Variant("swapped", token_or_live))
        return Variant("ok", Variant("conflict", token_or_live))

    def _inspect(self, context, handle, key):
        # As `get`: the `ok` payload alone (None or a record) tells itself from an error.
        live = self._bucket(context, handle).inspect(key)
        if live is None:
            return None
        value, token, ttl_ms = live
        return record(value=value, fencing_token=token, ttl_ms=ttl_ms)

    # The exports.

    def _export(self, instance, interface, name):
        index = instance.get_export_index(self._store, f"{PACKAGE}/{interface}@{VERSION}")
        func_index = instance.get_export_index(self._store, name, index)
        return instance.get_func(self._store, func_index)

    def _call(self, func, *args):
        # Wasmtime runs the post-return step itself: wasmtime-py's `post_return` is a no-op.
        with self._lock:
            return func(self._store, *args)

    def try_lock(self, store, resource_id, lock_owner, expiry_in_seconds):
        """`lock.try-lock`: True when acquired, False when held; raises LockError."""
        request = record(
            resource_id=resource_id,
            lock_owner=lock_owner,
            expiry_in_seconds=expiry_in_seconds,
        )
        return _ok(self._call(self._try_lock, store, request))

    def unlock(self, store, resource_id, lock_owner):
        """`lock.unlock`: the `unlock-status` case name (`success`, ...); raises LockError."""
        request = record(resource_id=resource_id, lock_owner=lock_owner)
        return _ok(self._call(self._unlock, store, request))

    def handle(self, method, path_with_query, body):
        """`http-api.handle`: (status, JSON body). `body` is bytes, None when it was too
        large to read, or a str saying why it could not be read."""
        request = record(method=method, path_with_query=path_with_query, body=body)
        response = self._call(self._handle, request)
        return response.status, response.body


def _ok(result):
    """The `ok` value of a `result<_, lock-error>`, or the error raised as LockError."""
    if isinstance(result, Variant):
        raise LockError(result.tag, result.payload)
    return result
