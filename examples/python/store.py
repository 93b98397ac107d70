"""The `store` interface that the lock component imports, kept in memory.

Each lock store is a dict from key to (value, deadline). Expiry is checked against the
store's own clock (`time.monotonic()`), and every compare-and-swap holds the store's lock,
so that it is atomic however many component instances share the store.
"""

import threading
import time


class StoreError(Exception):
    """A failed store operation; `case` names the WIT `error` case (`no-such-store`, ...)."""

    def __init__(self, case):
        super().__init__(case)
        self.case = case


class MemoryStore:
    """One lock store: keys to byte values, each with an optional expiry."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}  # key -> (value, deadline in monotonic seconds or None)
        self._fences = {}  # key -> the last fencing token granted; never removed

    def _live(self, key):
        """The live value of `key` (None when absent or expired); the caller holds the lock."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and time.monotonic() >= deadline:
            del self._entries[key]
            return None
        return value

    def get(self, key):
        """The live value of `key`, or None."""
        with self._lock:
            return self._live(key)

    def compare_and_swap(self, key, expected, new, ttl_ms):
        """Sets `key` to `new` (None deletes) if its live value equals `expected`.

        Returns (True, fencing token) when swapped, (False, live value) otherwise. A grant
        (absent to a value) takes the key's next token; anything else keeps the current one.
        """
        with self._lock:
            live = self._live(key)
            if live != expected:
                return False, live
            if live is None and new is not None:
                self._fences[key] = self._fences.get(key, 0) + 1
            if new is None:
                self._entries.pop(key, None)
            else:
                deadline = None if ttl_ms is None else time.monotonic() + ttl_ms / 1000
                self._entries[key] = (new, deadline)
            return True, self._fences.get(key, 0)

    def inspect(self, key):
        """(value, fencing token, remaining ms or None) of the live value, or None."""
        with self._lock:
            value = self._live(key)
            if value is None:
                return None
            deadline = self._entries[key][1]
            remaining = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            return value, self._fences.get(key, 0), remaining


class Stores:
    """The lock stores this host offers, by name."""

    def __init__(self, names):
        self._stores = {name: MemoryStore() for name in names}

    def open(self, name):
        """The store called `name`; raises StoreError when there is none."""
        if not self._stores:
            raise StoreError("not-configured")
        if name not in self._stores:
            raise StoreError("no-such-store")
        return self._stores[name]
