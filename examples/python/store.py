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

        Returns (True, None) when swapped, (False, live value) otherwise.
        """
        with self._lock:
            live = self._live(key)
            if live != expected:
                return False, live
            if new is None:
                self._entries.pop(key, None)
            else:
                deadline = None if ttl_ms is None else time.monotonic() + ttl_ms / 1000
                self._entries[key] = (new, deadline)
            return True, None


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
