/**
 * Key groups (docs/architecture.md, "State"): every keyed-state entry belongs to a key group, and every state
 * key in LevelDB is prefixed with its key group, so state can be split or merged by key-group ranges
 * (as Flink's key groups, `KeyGroupRangeAssignment`), and a savepoint stores state by key-group
 * range (man/kappa-savepoint.5).
 *
 * The assignment is part of the savepoint format and must never change, or saved state would land in
 * other groups:
 *
 *   key group = murmur3_x86_32(canonical key bytes, seed 0) mod maxKeyGroups
 *
 * - **Canonical key bytes**: the UTF-8 bytes of the key's canonical JSON text (`canonicalJson`):
 *   JSON as ECMAScript `JSON.stringify` writes it (strings with the minimal escapes, numbers in
 *   shortest round-trip form, no whitespace), with object members sorted by name in UTF-16 code
 *   unit order: the JSON Canonicalization Scheme, RFC 8785. So the string key `JFK` hashes the 5
 *   bytes `"JFK"` (quotes included), the number 1 the byte `1`, and `"1"` and `1` are different keys.
 * - **Hash**: MurmurHash3 x86 32-bit (Austin Appleby's reference `MurmurHash3_x86_32`), seed 0, read
 *   as an unsigned 32-bit integer; the `murmurhash` npm package (`v3`, given the bytes, not a JS
 *   string: its string form takes UTF-16 code units modulo 256).
 * - Unlike Flink, there is no second hash over a 32-bit `hashCode`: the bytes are hashed once.
 *
 * The LevelDB prefix is always 4 hex digits (2 bytes), so more than 128 (up to 65536) key groups
 * need no format change.
 */
import { createRequire } from 'node:module';
import { UsageError } from '../errors.js';

/** Default number of key groups (Flink's default max parallelism is 128 as well). */
export const DEFAULT_MAX_KEY_GROUPS = 128;

/** Largest number of key groups: what a 2-byte key-group prefix can address. */
export const MAX_KEY_GROUPS_LIMIT = 65_536;

/** Seed of the key-group hash (pinned: part of the savepoint format). */
export const KEY_GROUP_HASH_SEED = 0;

/** The key-group hash as recorded in savepoint metadata (`keyGroupHash`). */
export const KEY_GROUP_HASH = {
  algorithm: 'murmur3_x86_32',
  seed: KEY_GROUP_HASH_SEED,
  keyBytes: 'utf8(canonical JSON, RFC 8785)',
  prefixBytes: 2,
} as const;

/**
 * Checks a key-group count: an integer in [1, 65536].
 * @throws UsageError otherwise
 */
export function checkMaxKeyGroups(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_KEY_GROUPS_LIMIT)
    throw new UsageError(`max key groups must be an integer from 1 to ${MAX_KEY_GROUPS_LIMIT}, got ${n}`);
  return n;
}

/**
 * The canonical JSON text of a JSON value (RFC 8785): `JSON.stringify` output with object members
 * sorted by name (UTF-16 code unit order). Members whose value is undefined are left out, as by
 * `JSON.stringify`; `undefined` itself gives `null`.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x)).join(',')}]`;
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    const x = o[k];
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(x)}`);
  }
  return `{${parts.join(',')}}`;
}

type Murmur3 = (key: Uint8Array | string, seed?: number) => number;
let v3: Murmur3 | undefined;

/**
 * The `murmurhash` package's `v3` (MurmurHash3 x86 32-bit, unsigned), required (CommonJS,
 * synchronously) on the first hash: a stage that never hashes a key does not load it.
 */
export function murmur3(): Murmur3 {
  v3 ??= (createRequire(import.meta.url)('murmurhash') as { v3: Murmur3 }).v3;
  return v3;
}

/** MurmurHash3 x86 32-bit of bytes with the pinned seed, unsigned. */
export function keyHash(bytes: Uint8Array): number {
  return (v3 ?? murmur3())(bytes, KEY_GROUP_HASH_SEED);
}

/**
 * Returns the key group (0 <= g < maxKeyGroups) of a key.
 * @param key the key's canonical JSON text (`canonicalJson`, which `toStateKey` returns)
 */
export function keyGroupOf(key: string, maxKeyGroups = DEFAULT_MAX_KEY_GROUPS): number {
  return keyHash(Buffer.from(key, 'utf8')) % maxKeyGroups;
}

/** Fixed-width (4 hex digits, 2 bytes) key-group prefix, so LevelDB's byte order sorts state by key group. */
export function keyGroupPrefix(group: number): string {
  return group.toString(16).padStart(4, '0');
}
