/**
 * Shared pieces of `kappa state-edit` (issue 10): the line shape that `read` prints and `write`
 * takes, entry identity, the savepoint's entry order, value checks against a state's schema, and
 * user expressions over entries (the sandboxed evaluator of src/ops/expr.ts).
 *
 * Entry identity (what `write` upserts, `diff` compares): state, key and window start. For `session`
 * state the rows of one key are that key's sessions and are replaced together by `write`.
 */
import { DataError, UsageError } from '../../errors.js';
import { type CompiledExpr, compileExpr } from '../../ops/expr.js';
import { toRecordKey, toStateKey } from '../../ops/keys.js';
import { keyGroupOf } from '../keygroup.js';
import type { Json, SavepointEntry, StateDescriptor } from '../savepoint/format.js';

/**
 * One entry as `read` prints it (one NDJSON line) and `write --from` takes it: `key` is the key as a
 * JSON value (not its canonical text), times are epoch ms or null, `value` the entry's JSON value.
 */
export interface EntryLine {
  operator?: string;
  state: string;
  key: Json;
  key_group: number;
  window_start: number | null;
  window_end: number | null;
  timer: number | null;
  value: Json;
}

/** The line form of an entry (see EntryLine). */
export function entryToLine(e: SavepointEntry, operator?: string): EntryLine {
  return {
    ...(operator === undefined ? {} : { operator }),
    state: e.state,
    key: JSON.parse(e.key) as Json,
    key_group: e.keyGroup,
    window_start: e.windowStart,
    window_end: e.windowEnd,
    timer: e.timer,
    value: e.value,
  };
}

/** Identity of an entry: state, canonical key, window start (see the module comment). */
export function entryId(e: Pick<SavepointEntry, 'state' | 'key' | 'windowStart'>): string {
  return `${e.state}\u0000${e.key}\u0000${e.windowStart ?? ''}`;
}

/** Identity of a key of one state. */
export function keyId(e: Pick<SavepointEntry, 'state' | 'key'>): string {
  return `${e.state}\u0000${e.key}`;
}

/**
 * Sorts entries into the order the savepoint writer needs: by key group, then state name and key
 * (UTF-8 byte order, as the state store's LevelDB keys), then window start; stable otherwise, so the
 * sessions of a key stay in their order and contiguous.
 */
export function sortEntries(entries: SavepointEntry[]): SavepointEntry[] {
  const bytes = new Map<string, Buffer>();
  const b = (s: string) => {
    let x = bytes.get(s);
    if (!x) {
      x = Buffer.from(s, 'utf8');
      bytes.set(s, x);
    }
    return x;
  };
  return entries.sort(
    (x, y) =>
      x.keyGroup - y.keyGroup ||
      Buffer.compare(b(x.state), b(y.state)) ||
      Buffer.compare(b(x.key), b(y.key)) ||
      (x.windowStart ?? 0) - (y.windowStart ?? 0),
  );
}

/**
 * A `--key K` argument as a canonical key text: K parsed as JSON when it is JSON (`42`, `"42"`,
 * `{"a":1}`), else K as a string (`JFK`).
 */
export function parseKeyArg(k: string): string {
  let v: unknown;
  try {
    v = JSON.parse(k);
  } catch {
    v = k;
  }
  return toStateKey(v);
}

/** Window schema fields the checks read (the window operator's `stateDescriptor`). */
interface WindowSchema {
  window?: { kind?: string; size?: number };
  aggs?: { name: string }[];
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks an entry against its state's descriptor. For `window` and `session` state with a window
 * operator's schema: window bounds present (`window_end - window_start` = the size for tumbling and
 * sliding windows) and `value` a window value (`max_ts` ms, `fired`/`changed` booleans,
 * `next_early` ms or null, `acc` with exactly one accumulator per aggregate name); for `value`
 * state: no window bounds. Any state: a JSON value.
 * @returns what is wrong, or undefined when the entry fits
 */
export function checkEntry(e: SavepointEntry, d: StateDescriptor): string | undefined {
  if (d.kind === 'value') {
    if (e.windowStart !== null || e.windowEnd !== null) return `state '${d.name}' has no windows`;
    return undefined;
  }
  if (!isNum(e.windowStart) || !isNum(e.windowEnd) || e.windowEnd <= e.windowStart)
    return 'window_start and window_end must be epoch ms with window_start < window_end';
  const s = (d.schema ?? {}) as WindowSchema;
  if (
    s.window?.kind !== undefined &&
    s.window.kind !== 'session' &&
    isNum(s.window.size) &&
    e.windowEnd - e.windowStart !== s.window.size
  )
    return `window_end - window_start is ${e.windowEnd - e.windowStart} ms, the ${s.window.kind} window size is ${s.window.size} ms`;
  if (!Array.isArray(s.aggs)) return undefined;
  const v = e.value as Record<string, Json> | null;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'value must be a JSON object';
  if (!isNum(v.max_ts)) return 'value.max_ts must be epoch ms';
  if (typeof v.fired !== 'boolean' || typeof v.changed !== 'boolean')
    return 'value.fired and value.changed must be booleans';
  if (v.next_early !== null && v.next_early !== undefined && !isNum(v.next_early))
    return 'value.next_early must be epoch ms or null';
  const acc = v.acc;
  if (acc === null || typeof acc !== 'object' || Array.isArray(acc)) return 'value.acc must be an object';
  const want = s.aggs.map((a) => a.name).sort();
  const got = Object.keys(acc).sort();
  if (JSON.stringify(want) !== JSON.stringify(got))
    return `value.acc has accumulators ${JSON.stringify(got)}, the state's aggregates are ${JSON.stringify(want)}`;
  return undefined;
}

/**
 * Turns a `write --from` line into an entry: key group from the key's hash (a given `key_group`
 * must equal it), checked against the state's descriptor.
 * @param where the line's place for messages, e.g. `new.ndjson line 3`
 * @throws DataError naming `where` for an unknown state, a wrong key group or a value that does not
 *   fit the state's schema
 */
export function lineToEntry(
  line: unknown,
  states: StateDescriptor[],
  maxKeyGroups: number,
  where: string,
): SavepointEntry {
  if (line === null || typeof line !== 'object' || Array.isArray(line))
    throw new DataError(`${where}: not a JSON object`);
  const l = line as Partial<EntryLine>;
  const stateName = l.state ?? (states.length === 1 ? states[0].name : undefined);
  const d = states.find((s) => s.name === stateName);
  if (!d)
    throw new DataError(
      `${where}: state ${JSON.stringify(l.state)} is not one of the operator's states (${states.map((s) => s.name).join(', ')})`,
    );
  if (l.key === undefined) throw new DataError(`${where}: no key`);
  if (l.value === undefined) throw new DataError(`${where}: no value`);
  const key = toStateKey(l.key);
  const keyGroup = keyGroupOf(key, maxKeyGroups);
  if (l.key_group !== undefined && l.key_group !== null && l.key_group !== keyGroup)
    throw new DataError(
      `${where}: key ${key} is in key group ${keyGroup} of ${maxKeyGroups}, the line says ${l.key_group}`,
      'leave key_group out: it is computed from the key',
    );
  const num = (v: unknown, f: string): number | null => {
    if (v === undefined || v === null) return null;
    if (!isNum(v)) throw new DataError(`${where}: ${f} must be epoch ms or null`);
    return v;
  };
  const e: SavepointEntry = {
    keyGroup,
    state: d.name,
    key,
    windowStart: num(l.window_start, 'window_start'),
    windowEnd: num(l.window_end, 'window_end'),
    timer: num(l.timer, 'timer'),
    value: l.value,
  };
  const bad = checkEntry(e, d);
  if (bad) throw new DataError(`${where}: key ${key}: ${bad}`, "write entries in the shape 'read' prints");
  return e;
}

/** A compiled expression over entries: `r` is the entry's line (EntryLine), `key` its record key. */
export interface EntryExpr {
  readonly src: string;
  /** Evaluates on one entry. @throws UsageError (sandbox), DataError naming the entry (the expression threw) */
  (e: SavepointEntry, operator: string): unknown;
}

/**
 * Compiles an expression evaluated per entry: `r` is the entry as `read` prints it (`r.key`,
 * `r.value`, `r.window_start`, …), `key` the key as a record key (a string key as itself), `ts` the
 * window start (or the timer, or 0).
 * @throws UsageError for a syntax error
 */
export function entryExpr(src: string, flag: string): EntryExpr {
  const fn: CompiledExpr = compileExpr(src, {}, flag);
  const f = (e: SavepointEntry, operator: string): unknown => {
    const line = entryToLine(e, operator);
    const ts = e.windowStart ?? e.timer ?? 0;
    const key = toRecordKey(line.key);
    try {
      return fn(line, key, ts, { ts, key, value: line });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new DataError(
        `${flag} '${src}' threw on key ${e.key}${e.windowStart === null ? '' : ` window_start ${e.windowStart}`}: ${(err as Error).message}`,
      );
    }
  };
  return Object.assign(f, { src }) as EntryExpr;
}

/** Collects an async or sync iterable into an array. */
export async function collect<T>(it: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
