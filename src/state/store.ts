/**
 * Keyed state on LevelDB (classic-level) with a bounded in-memory LRU cache in front
 * (docs/architecture.md, "State").
 *
 * - Hot entries live in the cache as plain objects: a hit costs a Map lookup and setting a flag, no
 *   LevelDB round trip and no (de)serialisation. Operators mutate the object and call `put` to mark
 *   it dirty.
 * - When the cache holds more than `cacheEntries` entries, entries are evicted in second-chance
 *   (CLOCK) order, the usual cheap approximation of LRU: a hit only sets the entry's reference bit
 *   (no Map delete + re-insert per access, which cost 14% of a window run); eviction walks the
 *   entries oldest first, gives a referenced entry a second chance (clears the bit, moves it to the
 *   young end) and evicts the first unreferenced one;
 *   dirty ones are encoded and queued as writes, flushed to LevelDB in one batch (`flush`). So heap
 *   use is bounded by the cache size plus the flush batch, whatever the number of keys.
 * - LevelDB keys are `<key group, 4 hex digits>/<state name>/<key>`; the key group is
 *   `keyGroupOf(groupKey)` where `groupKey` is the part of the key before the first NUL character
 *   (operators put the record key there, so all state of one record key is in one key group).
 *
 * Snapshots (`snapshot`): dirty cache entries are written to LevelDB, then one LevelDB iterator
 * is created; classic-level iterators read from an implicit LevelDB snapshot taken synchronously
 * when the iterator is created (classic-level README, "Reading"; binding.cc `Iterator` takes
 * `db->GetSnapshot()` unless given an explicit one), so the operator may keep writing while the
 * snapshot is exported. The live database itself is never handed out as the snapshot.
 *
 * The store never decides on its own whether a key *might* exist in LevelDB: `getCached` answers
 * from memory only, `load` asks LevelDB. Callers that know a key is new (no timer registered) skip
 * the LevelDB read.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClassicLevel } from 'classic-level';
import { DataError, RuntimeError } from '../errors.js';
import { checkMaxKeyGroups, DEFAULT_MAX_KEY_GROUPS, keyGroupOf, keyGroupPrefix } from './keygroup.js';

/** Serialises state values to LevelDB strings and back (must round-trip exactly). */
export interface StateCodec<V> {
  encode(v: V): string;
  decode(s: string): V;
}

export interface StateStoreOptions {
  /** Directory of the LevelDB database; default: a fresh temp dir, removed by `close()`. */
  dir?: string;
  /** Most entries held in memory (>= 1). */
  cacheEntries: number;
  /** Number of key groups (default 128). */
  maxKeyGroups?: number;
  /** Name of this state (part of every LevelDB key), e.g. `window`. */
  name: string;
}

/** Counters for the summary line and for tests. */
export interface StateStats {
  /** Entries in the in-memory cache. */
  cached: number;
  /** Entries currently stored in LevelDB (evicted from the cache and not deleted since). */
  spilled: number;
  /** Total entries written to LevelDB (evictions of dirty entries). */
  writes: number;
  /** Total LevelDB reads (cache misses of existing keys). */
  reads: number;
}

interface Entry<V> {
  v: V;
  dirty: boolean;
  /** Reference bit for second-chance eviction: used since it was last passed over. */
  ref: boolean;
  /** LevelDB may hold a (possibly older) version of this key. */
  inDb: boolean;
  /** What `forEachCached`'s callback made of this value at the last snapshot; reset by `put`. */
  copy: unknown;
}

/** One entry of a state snapshot, in key-group order. */
export interface StateSnapshotEntry<V> {
  /** Key group of the entry (0 <= keyGroup < maxKeyGroups). */
  keyGroup: number;
  /** State name (`StateStoreOptions.name`). */
  state: string;
  /** The state key as given to `put` (for operators: the record key's canonical JSON, NUL, more). */
  key: string;
  /** The decoded value, a fresh copy (not shared with the live cache). */
  value: V;
}

/**
 * A consistent, point-in-time view of a store: iterate it once (entries in key-group order, then
 * by state key in UTF-8 byte order), then it is closed; `close()` releases it early.
 */
export interface StateSnapshot<V> extends AsyncIterable<StateSnapshotEntry<V>> {
  close(): Promise<void>;
}

/** An entry given to `restore`: a state key and its value, with the key group it was saved in. */
export interface RestoreEntry<V> {
  key: string;
  value: V;
  /** When given, must equal the key group the key hashes to (else DataError). */
  keyGroup?: number;
}

/** Pending writes are flushed once this many are queued. */
const FLUSH_AT = 1024;

export class KeyedStateStore<V> {
  private readonly cache = new Map<string, Entry<V>>();
  /** Queued LevelDB writes: encoded value, or null for a delete. */
  private pending = new Map<string, { enc: string | null; v?: V }>();
  private readonly maxKeyGroups: number;
  private readonly prefixName: string;
  private dbEntries = 0;
  /** Something was written to LevelDB since `open` (which cleared it): it may hold state. */
  private dbUsed = false;
  private writes = 0;
  private reads = 0;

  /** The database being opened (first use of a store in a temp dir), see `database()`. */
  private opening: Promise<ClassicLevel<string, string>> | undefined;

  private constructor(
    /** The open database; undefined until first use for a store in a temp dir. */
    private db: ClassicLevel<string, string> | undefined,
    private readonly codec: StateCodec<V>,
    private readonly opts: StateStoreOptions,
    private tempDir: string | undefined,
  ) {
    this.maxKeyGroups = checkMaxKeyGroups(opts.maxKeyGroups ?? DEFAULT_MAX_KEY_GROUPS);
    this.prefixName = `/${opts.name}/`;
  }

  /**
   * Opens (creating) the database. An existing database in `dir` is cleared: a run starts from
   * empty state (restoring state is the job of checkpoints, not of this flag). Without `dir`, the
   * temp dir and its database are created on first use (the first flush, snapshot or restore),
   * not here: a run whose state never leaves the cache never loads the LevelDB binding nor opens
   * a database (30-50 ms of start-up CPU, more wall time).
   * @throws what classic-level throws when `dir` cannot be opened
   */
  static async open<V>(opts: StateStoreOptions, codec: StateCodec<V>): Promise<KeyedStateStore<V>> {
    if (!(opts.cacheEntries >= 1)) throw new RangeError('state cache must hold at least 1 entry');
    if (opts.dir === undefined) return new KeyedStateStore<V>(undefined, codec, opts, undefined);
    mkdirSync(opts.dir, { recursive: true });
    const db = await openLevel(opts.dir);
    await db.clear();
    return new KeyedStateStore(db, codec, opts, undefined);
  }

  /** The database, opened (in a fresh temp dir) on first use when `open` was given no `dir`. */
  private database(): Promise<ClassicLevel<string, string>> {
    if (this.db) return Promise.resolve(this.db);
    this.opening ??= (async () => {
      const temp = mkdtempSync(join(tmpdir(), 'kappa-state-'));
      this.tempDir = temp;
      this.db = await openLevel(temp);
      return this.db;
    })();
    return this.opening;
  }

  /** The LevelDB key of a state key: key-group prefix, state name, key. */
  dbKey(key: string): string {
    const nul = key.indexOf('\u0000');
    const group = keyGroupOf(nul < 0 ? key : key.slice(0, nul), this.maxKeyGroups);
    return keyGroupPrefix(group) + this.prefixName + key;
  }

  /** The value of `key` if it is in memory (cache or queued write), else undefined. Never reads LevelDB. */
  getCached(key: string): V | undefined {
    const e = this.cache.get(key);
    if (e !== undefined) {
      e.ref = true;
      return e.v;
    }
    const p = this.pending.get(key);
    if (p === undefined || p.enc === null) return undefined;
    this.pending.delete(key);
    this.insert(key, { v: p.v as V, dirty: true, inDb: true, ref: true, copy: undefined });
    return p.v;
  }

  /** The value of `key` from memory or LevelDB (a cache miss costs one LevelDB read). */
  async load(key: string): Promise<V | undefined> {
    const c = this.getCached(key);
    if (c !== undefined) return c;
    if (this.pending.get(key)?.enc === null) return undefined;
    this.reads++;
    // Nothing was written to LevelDB since `open` cleared it (or before it exists): no read.
    if (!this.dbUsed) return undefined;
    const s = await (await this.database()).get(this.dbKey(key));
    if (s === undefined) return undefined;
    const v = this.codec.decode(s);
    this.insert(key, { v, dirty: false, inDb: true, ref: true, copy: undefined });
    return v;
  }

  /**
   * Stores (or marks as changed) the value of `key`; it becomes the most recently used.
   * @param existed the caller knows the key may already be in LevelDB (it had state before), so
   *   that a later delete also deletes it there
   */
  put(key: string, v: V, existed = false): void {
    const e = this.cache.get(key);
    if (e !== undefined) {
      e.v = v;
      e.dirty = true;
      e.ref = true;
      e.copy = undefined;
      return;
    }
    const p = this.pending.get(key);
    if (p !== undefined) this.pending.delete(key);
    this.insert(key, { v, dirty: true, inDb: existed || p !== undefined, ref: false, copy: undefined });
  }

  /**
   * Deletes `key` from memory and (by a queued delete) from LevelDB. A key that is in neither the
   * cache nor the write queue is assumed to be in LevelDB (callers delete keys that exist).
   */
  delete(key: string): void {
    const e = this.cache.get(key);
    let inDb = true;
    if (e !== undefined) {
      this.cache.delete(key);
      inDb = e.inDb || this.pending.has(key);
    }
    if (inDb) {
      if (this.pending.get(key)?.enc !== null) this.dbEntries--;
      this.pending.set(key, { enc: null });
    }
  }

  /** True when enough writes are queued that the caller should `await flush()`. */
  get needsFlush(): boolean {
    return this.pending.size >= FLUSH_AT;
  }

  /** Writes queued evictions and deletes to LevelDB in one batch. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const ops: ({ type: 'put'; key: string; value: string } | { type: 'del'; key: string })[] = [];
    for (const [k, p] of this.pending) {
      if (p.enc === null) ops.push({ type: 'del', key: this.dbKey(k) });
      else ops.push({ type: 'put', key: this.dbKey(k), value: p.enc });
    }
    this.pending = new Map();
    this.dbUsed = true;
    await (await this.database()).batch(ops);
  }

  /**
   * True when the whole state is in the cache: LevelDB has held nothing since `open` cleared it
   * (no eviction, no `snapshot`, no `restore` that went to disk) and no write is queued. Then
   * `forEachCached` visits every entry, and a snapshot can be copied from memory without a
   * LevelDB round trip (`snapshot` is the general path).
   */
  get inMemory(): boolean {
    return !this.dbUsed && this.pending.size === 0;
  }

  /**
   * Calls `fn` with every cached entry (state key as given to `put`, the live value, its key group,
   * and what `fn` returned for this entry at the previous call, or undefined when the entry was
   * `put` since or is new), in cache order, synchronously: the caller copies what it needs before
   * the store changes again, and may keep that copy (returned) for the next call, so that an
   * unchanged entry is not copied again. This relies on the store's contract that an operator
   * that changes a value calls `put`. Does not touch the entries' reference bits. Key groups are
   * hashed once per distinct group key (the part of the state key before the first NUL).
   */
  forEachCached(fn: (key: string, value: V, keyGroup: number, copy: unknown) => unknown): void {
    const groups = new Map<string, number>();
    for (const [k, e] of this.cache) {
      const nul = k.indexOf('\u0000');
      const gk = nul < 0 ? k : k.slice(0, nul);
      let g = groups.get(gk);
      if (g === undefined) {
        g = keyGroupOf(gk, this.maxKeyGroups);
        groups.set(gk, g);
      }
      e.copy = fn(k, e.v, g, e.copy);
    }
  }

  /** Number of key groups of this store. */
  get keyGroups(): number {
    return this.maxKeyGroups;
  }

  /**
   * Takes a consistent snapshot: encodes every dirty cache entry and writes it (with queued writes
   * and deletes) to LevelDB, then opens an iterator, which reads from an implicit LevelDB snapshot
   * taken at that moment. Once this promise resolves the caller may keep reading and writing the
   * store; the snapshot still yields the state as of the call. Callers must not call other methods
   * of the store while this promise is pending.
   * @returns the entries in key-group order (see StateSnapshot); iterate once, or `close()` it
   * @throws RuntimeError when LevelDB fails
   */
  async snapshot(): Promise<StateSnapshot<V>> {
    for (const [k, e] of this.cache) {
      if (!e.dirty) continue;
      this.pending.set(k, { enc: this.codec.encode(e.v), v: e.v });
      this.writes++;
      if (!e.inDb) this.dbEntries++;
      e.dirty = false;
      e.inDb = true;
    }
    await this.flush();
    const it = (await this.database()).iterator({ gte: keyGroupPrefix(0), lt: '\uffff' });
    const name = this.opts.name;
    const skip = 4 + this.prefixName.length;
    const codec = this.codec;
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await it.close();
    };
    async function* entries(): AsyncGenerator<StateSnapshotEntry<V>> {
      try {
        for (;;) {
          const batch = await it.nextv(1024);
          if (batch.length === 0) break;
          for (const [k, v] of batch) {
            const keyGroup = Number.parseInt(k.slice(0, 4), 16);
            if (!(keyGroup >= 0) || k.slice(4, skip) !== `/${name}/`)
              throw new RuntimeError(`state '${name}': unexpected LevelDB key '${k}' in the state database`);
            yield { keyGroup, state: name, key: k.slice(skip), value: codec.decode(v) };
          }
        }
      } finally {
        await close();
      }
    }
    const gen = entries();
    return {
      [Symbol.asyncIterator]: () => gen,
      close: async () => {
        await gen.return(undefined);
        await close();
      },
    };
  }

  /**
   * Loads entries into this store, which must be empty (a fresh store). When they all fit the
   * cache (`cacheEntries`) they go to the cache, as dirty entries (LevelDB stays empty, so
   * `inMemory` stays true); otherwise they go straight to LevelDB in batches (the cache starts
   * cold). Entries may come in any order; a key given twice keeps its last value.
   * @returns the number of entries restored
   * @throws RuntimeError when the store is not empty; DataError when an entry's `keyGroup` is not
   *   the key group its key hashes to with this store's key-group count
   */
  async restore(entries: AsyncIterable<RestoreEntry<V>> | Iterable<RestoreEntry<V>>): Promise<number> {
    if (
      this.cache.size > 0 ||
      this.pending.size > 0 ||
      (this.dbUsed && (await (await this.database()).keys({ limit: 1 }).all()).length > 0)
    )
      throw new RuntimeError(`state '${this.opts.name}': restore needs an empty state store`);
    let ops: { type: 'put'; key: string; value: string }[] = [];
    // Entries are held in memory while they fit the cache; the first one beyond it sends all of
    // them to LevelDB (the cache then starts cold).
    let held: RestoreEntry<V>[] | undefined = [];
    let n = 0;
    for await (const e of entries) {
      const key = this.dbKey(e.key);
      if (e.keyGroup !== undefined) {
        const g = Number.parseInt(key.slice(0, 4), 16);
        if (g !== e.keyGroup)
          throw new DataError(
            `state '${this.opts.name}': key ${JSON.stringify(e.key.split('\u0000')[0])} was saved in key group ${e.keyGroup}, but hashes to key group ${g} of ${this.maxKeyGroups}`,
            'the state was written with another key-group count or hash; rewrite it with the right key groups: `kappa state-edit rescale SP -o NEW --max-key-groups N`',
          );
      }
      n++;
      if (held) {
        held.push(e);
        if (held.length <= this.opts.cacheEntries) continue;
        for (const h of held)
          ops.push({ type: 'put', key: this.dbKey(h.key), value: this.codec.encode(h.value) });
        held = undefined;
      } else ops.push({ type: 'put', key, value: this.codec.encode(e.value) });
      if (ops.length >= FLUSH_AT) {
        this.dbUsed = true;
        await (await this.database()).batch(ops);
        ops = [];
      }
    }
    if (held) {
      for (const h of held)
        this.cache.set(h.key, { v: h.value, dirty: true, inDb: false, ref: false, copy: undefined });
      return n;
    }
    if (ops.length > 0) {
      this.dbUsed = true;
      await (await this.database()).batch(ops);
    }
    this.dbEntries += n;
    return n;
  }

  /** Current counters. */
  stats(): StateStats {
    return { cached: this.cache.size, spilled: this.dbEntries, writes: this.writes, reads: this.reads };
  }

  /** Closes the database (if it was opened); removes it when it was a temp dir. */
  async close(): Promise<void> {
    if (this.opening) await this.opening.catch(() => undefined);
    await this.db?.close();
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }

  private insert(key: string, e: Entry<V>): void {
    this.cache.set(key, e);
    if (this.cache.size > this.opts.cacheEntries) this.evict();
  }

  private evict(): void {
    let excess = this.cache.size - this.opts.cacheEntries;
    // Map iteration follows insertion order and visits entries re-inserted during the walk, so a
    // second-chance entry comes round again after every other one: the walk ends within two passes.
    for (const [k, e] of this.cache) {
      if (excess <= 0) break;
      if (e.ref) {
        e.ref = false;
        this.cache.delete(k);
        this.cache.set(k, e);
        continue;
      }
      excess--;
      this.cache.delete(k);
      if (e.dirty) {
        this.pending.set(k, { enc: this.codec.encode(e.v), v: e.v });
        this.writes++;
        if (!e.inDb) this.dbEntries++;
      }
    }
  }
}

/**
 * Opens the LevelDB database in `dir` (utf8 keys and values). classic-level is imported here, not
 * at start-up: loading its binding costs 10-30 ms of CPU.
 */
async function openLevel(dir: string): Promise<ClassicLevel<string, string>> {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  return db;
}
