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

/** The last fencing token granted, per store name and key (a `bigint`); never removed. */
const fences = new Map();

/** Makes `names` the lock stores, each empty; with no names, every `open` is `not-configured`. */
export function configureStores(names) {
  stores.clear();
  fences.clear();
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
  #fences;

  constructor(entries, fences) {
    this.#entries = entries;
    this.#fences = fences;
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
    let storeFences = fences.get(name);
    if (storeFences === undefined) {
      storeFences = new Map();
      fences.set(name, storeFences);
    }
    return new Bucket(entries, storeFences);
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
    const outcome = this.compareAndSwapFenced(key, expected, value, ttlMs);
    return outcome.tag === 'swapped' ? { tag: 'swapped' } : outcome;
  }

  /**
   * `compare-and-swap-fenced(...) -> result<fenced-outcome, error>`: as `compareAndSwap`,
   * answering the key's fencing token (a `bigint`): the next one on a grant (absent to a
   * value), else the current one.
   */
  compareAndSwapFenced(key, expected, value, ttlMs) {
    const live = this.#live(key);
    if (!sameBytes(live, expected)) {
      return { tag: 'conflict', val: live };
    }
    if (live === undefined && value !== undefined) {
      this.#fences.set(key, this.#token(key) + 1n);
    }
    if (value === undefined) {
      this.#entries.delete(key);
    } else {
      const expiresAt = ttlMs === undefined ? Infinity : performance.now() + Number(ttlMs);
      this.#entries.set(key, { value, expiresAt });
    }
    return { tag: 'swapped', val: this.#token(key) };
  }

  /** `inspect(key) -> result<option<entry>, error>`: the live value, its token and TTL left. */
  inspect(key) {
    const value = this.#live(key);
    if (value === undefined) {
      return undefined;
    }
    const { expiresAt } = this.#entries.get(key);
    const ttlMs =
      expiresAt === Infinity ? undefined : BigInt(Math.ceil(expiresAt - performance.now()));
    return { value, fencingToken: this.#token(key), ttlMs };
  }

  /** The last token granted for `key` (0n before the first grant). */
  #token(key) {
    return this.#fences.get(key) ?? 0n;
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
