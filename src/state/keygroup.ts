/**
 * Key groups (DESIGN.md section 4): every keyed-state entry belongs to the key group
 * `murmur3_32(utf8(key)) mod maxKeyGroups`, and every state key in LevelDB is prefixed with its key
 * group, so state can later be split or merged by key-group ranges when a job is rescaled (as
 * Flink's key groups). The hash is MurmurHash3 x86 32-bit, seed 0, over the key's UTF-8 bytes (the
 * `murmurhash` npm package, `v3`); it must never change, or saved state would land in other groups.
 */
import murmurhash from 'murmurhash';

/** Default number of key groups (Flink's default max parallelism is 128 as well). */
export const DEFAULT_MAX_KEY_GROUPS = 128;

/**
 * Returns the key group (0 <= g < maxKeyGroups) of a state key.
 * @param key the logical key as a string (kappa uses the key's JSON text)
 */
export function keyGroupOf(key: string, maxKeyGroups = DEFAULT_MAX_KEY_GROUPS): number {
  return murmurhash.v3(Buffer.from(key, 'utf8'), 0) % maxKeyGroups;
}

/** Fixed-width (4 hex digits) key-group prefix, so LevelDB's byte order sorts state by key group. */
export function keyGroupPrefix(group: number): string {
  return group.toString(16).padStart(4, '0');
}
