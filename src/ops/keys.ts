/**
 * Turning arbitrary JSON values into record keys and state keys.
 */
import { canonicalJson } from '../state/keygroup.js';

/**
 * The record-key form of a value (the stream protocol's `key` is a string or null): strings as
 * they are, null/undefined as null, objects and arrays as JSON text, other values via `String`.
 */
export function toRecordKey(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * The state-key form of a value: its canonical JSON text (RFC 8785: object members sorted, see
 * `canonicalJson` in src/state/keygroup.ts), so `"1"` and `1` are different keys, `{a,b}` and
 * `{b,a}` the same, and every value (including null) has exactly one form, whose UTF-8 bytes the
 * key-group hash reads. `undefined` is treated as null.
 */
export function toStateKey(v: unknown): string {
  if (v !== null && typeof v === 'object') return canonicalJson(v);
  return v === undefined ? 'null' : (JSON.stringify(v) ?? 'null');
}
