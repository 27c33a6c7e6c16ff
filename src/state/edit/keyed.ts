/**
 * Edits of keyed state (`kappa state-edit delete | write | migrate | prune | rescale | rekey`):
 * pure functions from an operator's entries (in key-group order, as `Savepoint.entries` yields them)
 * to its new entries, in the order the savepoint writer needs.
 *
 * `delete`, `migrate` and `prune` stream (the order is kept); `write`, `rescale` and `rekey` move
 * entries between key groups or add new ones and so hold the operator's entries in memory and sort
 * them (sortEntries).
 */
import { DataError } from '../../errors.js';
import { toStateKey } from '../../ops/keys.js';
import { checkMaxKeyGroups, keyGroupOf } from '../keygroup.js';
import type { Json, SavepointEntry, StateDescriptor } from '../savepoint/format.js';
import { checkEntry, type EntryExpr, entryId, keyId, sortEntries } from './model.js';

type Entries = AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;

/**
 * Drops the entries whose canonical key is in `keys` or for which `where` is truthy.
 * @param counter receives the number of entries dropped (`removed`)
 */
export async function* deleteEntries(
  entries: Entries,
  sel: { keys?: Set<string>; where?: EntryExpr; operator: string; state?: string },
  counter: { removed: number } = { removed: 0 },
): AsyncGenerator<SavepointEntry> {
  for await (const e of entries) {
    const inState = sel.state === undefined || e.state === sel.state;
    const hit =
      inState && ((sel.keys?.has(e.key) ?? false) || (sel.where ? !!sel.where(e, sel.operator) : false));
    if (hit) counter.removed++;
    else yield e;
  }
}

/**
 * Rewrites each value with `map` (an expression over the entry whose result is the new value); the
 * result is checked against the state's descriptor (window state must stay a window value).
 * @throws DataError naming the key when a new value does not fit, or is not JSON (undefined)
 */
export async function* migrateEntries(
  entries: Entries,
  map: EntryExpr,
  states: StateDescriptor[],
  opts: { operator: string; state?: string },
  counter: { changed: number } = { changed: 0 },
): AsyncGenerator<SavepointEntry> {
  const byName = new Map(states.map((s) => [s.name, s]));
  for await (const e of entries) {
    if (opts.state !== undefined && e.state !== opts.state) {
      yield e;
      continue;
    }
    const v = map(e, opts.operator);
    if (v === undefined)
      throw new DataError(`--map '${map.src}' gave undefined for key ${e.key}`, 'return the new value');
    const value = JSON.parse(JSON.stringify(v)) as Json;
    const next = { ...e, value };
    const d = byName.get(e.state);
    const bad = d && checkEntry(next, d);
    if (bad)
      throw new DataError(
        `--map '${map.src}': the new value of key ${e.key}${e.windowStart === null ? '' : ` window_start ${e.windowStart}`} does not fit state '${e.state}': ${bad}`,
        'a window state value keeps the shape {max_ts, fired, changed, next_early, acc}; change values inside it',
      );
    if (JSON.stringify(value) !== JSON.stringify(e.value)) counter.changed++;
    yield next;
  }
}

/**
 * Upserts and deletes: every entry of `upserts` replaces the entry with its identity (state, key,
 * window start) or is added; for `session` state an upserted key's rows replace all the key's
 * sessions. Keys in `deleteKeys` (canonical key text, optionally with a window start) are removed.
 * @returns the new entries, sorted
 */
export async function upsertEntries(
  entries: Entries,
  upserts: SavepointEntry[],
  deletes: { state?: string; key: string; windowStart?: number | null }[],
  states: StateDescriptor[],
  counts: { added: number; replaced: number; removed: number } = { added: 0, replaced: 0, removed: 0 },
): Promise<SavepointEntry[]> {
  const session = new Set(states.filter((s) => s.kind === 'session').map((s) => s.name));
  const newIds = new Map<string, SavepointEntry>();
  const newKeys = new Set<string>();
  for (const u of upserts) {
    if (session.has(u.state)) newKeys.add(keyId(u));
    else newIds.set(entryId(u), u);
  }
  const delKeys = new Set(
    deletes.filter((d) => d.windowStart === undefined || d.windowStart === null).map((d) => d.key),
  );
  const delIds = new Set(
    deletes
      .filter((d) => d.windowStart !== undefined && d.windowStart !== null)
      .map((d) => `${d.key}\u0000${d.windowStart}`),
  );
  const delStates = new Map(deletes.map((d) => [d.key, d.state]));
  const out: SavepointEntry[] = [];
  const replacedIds = new Set<string>();
  for await (const e of entries) {
    const st = delStates.get(e.key);
    if (
      (st === undefined || st === e.state) &&
      (delKeys.has(e.key) || delIds.has(`${e.key}\u0000${e.windowStart}`))
    ) {
      counts.removed++;
      continue;
    }
    if (newKeys.has(keyId(e))) {
      counts.replaced++;
      continue;
    }
    const id = entryId(e);
    if (newIds.has(id)) {
      replacedIds.add(id);
      counts.replaced++;
      continue;
    }
    out.push(e);
  }
  for (const u of upserts) {
    out.push(u);
    if (!session.has(u.state) && !replacedIds.has(entryId(u))) counts.added++;
  }
  if (newKeys.size > 0) counts.added += upserts.filter((u) => session.has(u.state)).length;
  return sortEntries(out);
}

/**
 * The event time of an entry for `prune`: `window_end - 1` for windowed entries, else its timer,
 * else null (such entries are kept).
 */
export function entryTime(e: SavepointEntry): number | null {
  if (e.windowEnd !== null) return e.windowEnd - 1;
  return e.timer;
}

/** Drops entries whose event time (entryTime) is before `cutoff` (epoch ms). */
export async function* pruneEntries(
  entries: Entries,
  cutoff: number,
  counter: { removed: number } = { removed: 0 },
): AsyncGenerator<SavepointEntry> {
  for await (const e of entries) {
    const t = entryTime(e);
    if (t !== null && t < cutoff) counter.removed++;
    else yield e;
  }
}

/**
 * Re-splits entries into `maxKeyGroups` key groups (the key-group hash of each key, mod the new
 * count) and sorts them.
 * @throws UsageError for a count outside 1..65536
 */
export async function rescaleEntries(entries: Entries, maxKeyGroups: number): Promise<SavepointEntry[]> {
  checkMaxKeyGroups(maxKeyGroups);
  const out: SavepointEntry[] = [];
  for await (const e of entries) out.push({ ...e, keyGroup: keyGroupOf(e.key, maxKeyGroups) });
  return sortEntries(out);
}

/**
 * Re-keys entries: the new key is `keyExpr`'s result (any JSON value) on each entry; key groups are
 * recomputed.
 * @throws DataError when two entries get the same identity (two old keys mapped onto one key with
 *   the same window, or onto one key of session state), naming both old keys; or the expression
 *   gives undefined
 */
export async function rekeyEntries(
  entries: Entries,
  keyExpr: EntryExpr,
  states: StateDescriptor[],
  maxKeyGroups: number,
  operator: string,
): Promise<SavepointEntry[]> {
  const session = new Set(states.filter((s) => s.kind === 'session').map((s) => s.name));
  const seen = new Map<string, string>();
  const out: SavepointEntry[] = [];
  for await (const e of entries) {
    const v = keyExpr(e, operator);
    if (v === undefined)
      throw new DataError(
        `--key-expr '${keyExpr.src}' gave undefined for key ${e.key}`,
        'return the new key',
      );
    const key = toStateKey(v);
    const n: SavepointEntry = { ...e, key, keyGroup: keyGroupOf(key, maxKeyGroups) };
    const id = session.has(e.state) ? keyId(n) : entryId(n);
    const prev = seen.get(id);
    if (prev !== undefined && prev !== e.key)
      throw new DataError(
        `--key-expr '${keyExpr.src}' maps keys ${prev} and ${e.key} onto ${key}${session.has(e.state) || e.windowStart === null ? '' : ` for window_start ${e.windowStart}`}`,
        'state of two keys cannot be merged by rekey: map every key onto a distinct key, or delete one first',
      );
    if (prev !== undefined && !session.has(e.state))
      throw new DataError(`two entries of key ${e.key} with the same window`);
    seen.set(id, e.key);
    out.push(n);
  }
  return sortEntries(out);
}
