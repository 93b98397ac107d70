// The `wasilock:lock/store` interface that the lock component imports, in memory.
//
// jco binds the component's import to this module (`--map wasilock:lock/store=../store.js`):
// the resource `bucket` is the class `Bucket`, `result<T, error>` is "return T or throw", and
// what is thrown carries the WIT error as `payload` (`{ tag: 'no-such-store' }`).
//
// Atomicity: Node runs JavaScript on one thread and the component calls the store
// synchronously, so a compare-and-swap runs to its end before any other call begins.
//
// Expiry uses this process's monotonic clock (`performance.now()`, in milliseconds). An
// expired value is treated as absent and removed when its key is next used.

/** The lock stores by name: each maps a key to `{ value: Uint8Array, expiresAt: number }`. */
const stores = new Map();

/** Makes `names` the lock stores, each empty; with no names, every `open` is `not-configured`. */
export function configureStores(names) {
  stores.clear();
  for (const name of names) {
    stores.set(name, new Map());
  }
}

/** A failed store operation, thrown the way jco turns it into the WIT `err(error)`. */
class StoreError extends Error {
  constructor(payload) {
    super(`lock store error: ${payload.tag}`);
    this.payload = payload;
  }
}

/** One lock store (the WIT resource `bucket`). */
export class Bucket {
  #entries;

  constructor(entries) {
    this.#entries = entries;
  }

  /** `open: static func(name) -> result<bucket, error>`. */
  static open(name) {
    if (stores.size === 0) {
      throw new StoreError({ tag: 'not-configured' });
    }
    const entries = stores.get(name);
    if (entries === undefined) {
      throw new StoreError({ tag: 'no-such-store' });
    }
    return new Bucket(entries);
  }

  /** `get(key) -> result<option<list<u8>>, error>`: the live value, `undefined` if none. */
  get(key) {
    return this.#live(key);
  }

  /**
   * `compare-and-swap(key, expected, new, ttl-ms) -> result<cas-outcome, error>`: when the
   * live value equals `expected` (`undefined` = absent), stores `value` (`undefined` =
   * delete) for `ttlMs` milliseconds (a `bigint`; `undefined` = no expiry).
   */
  compareAndSwap(key, expected, value, ttlMs) {
    const live = this.#live(key);
    if (!sameBytes(live, expected)) {
      return { tag: 'conflict', val: live };
    }
    if (value === undefined) {
      this.#entries.delete(key);
    } else {
      const expiresAt = ttlMs === undefined ? Infinity : performance.now() + Number(ttlMs);
      this.#entries.set(key, { value, expiresAt });
    }
    return { tag: 'swapped' };
  }

  /** The value of `key` unless absent or expired (an expired one is removed). */
  #live(key) {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      return undefined;
    }
    if (entry.expiresAt <= performance.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
}

/** Whether two optional byte strings are equal (`undefined` equals only `undefined`). */
function sameBytes(a, b) {
  if (a === undefined || b === undefined) {
    return a === b;
  }
  return Buffer.compare(a, b) === 0;
}
