/**
 * The `kappa window` operator core: event-time tumbling, sliding (hopping) and session windows
 * with aggregates, on keyed state that spills to LevelDB (src/state/store.ts).
 *
 * Semantics (Flink's event-time windows):
 * - Windows are `[start, end)`, aligned to the epoch plus `offset`. A result record carries
 *   `ts = end - 1`, record key = the window key, value `{window_start, window_end, <key>, aggs…}`.
 * - A window fires (emits its result) when the watermark reaches `end - 1`; no record with
 *   `ts <= watermark` can follow, so the window is complete.
 * - With `allowedLateness` L, a fired window keeps its state until the watermark reaches
 *   `end - 1 + L`; a record arriving for it meanwhile updates it and re-fires at once (an updated
 *   result for the same key and window: downstream upserts). A record all of whose windows were
 *   already purged (sliding: any of them) is *late*: it is counted and handed to `onLate`, which
 *   writes it to a side output, drops it (the user opted in) or throws (the default policy of
 *   `kappa window`: fail rather than lose data); for sliding windows it still counts in those of its
 *   windows still open.
 * - The operator's output watermark is the input watermark minus L, so updated results are never
 *   behind the watermark they were emitted with.
 * - `early` D (`--emit early:D`): before a window fires, a provisional result is emitted whenever
 *   the watermark passes `start + k*D - 1` (k >= 1) and the window changed since its last result.
 * - Sessions: a record opens `[ts, ts + gap)` and merges every session of its key it overlaps.
 *   With `maxSession`, a session never spans more than that: `end = min(maxTs + gap, start + max)`;
 *   a record that cannot join without exceeding it starts a new session (so a session that never
 *   goes quiet is fired at `start + max`). Merging a record into a session that already fired
 *   re-fires the merged session (its start or end may differ from the earlier result). A record
 *   that joins one session is added to it in place (O(1) per record, whatever the session's
 *   length); only a record that bridges several sessions merges accumulators (`merges` counts it).
 * - Key: with a field key, a record without that field is a bad record (`BadRecordError`, the
 *   `--on-error` policy applies). Until one record had the field, records without it are held back
 *   (at most FIRST_BATCH): if the first batch (those records, or all records before the first
 *   watermark or end) has no record with the field at all, the key is wrong (misspelled, or a path
 *   into the wrong object), a UsageError naming the field and the fields seen; otherwise the held
 *   records are reported through `onBad`.
 * - Back-pressure: while a watermark fires many windows, `out.drain()` is awaited every
 *   DRAIN_EVERY emitted results.
 * - End of input = watermark +infinity: every open window fires.
 *
 * State layout: one state entry per (key, window start) for tumbling and sliding windows, one per
 * key (its list of sessions) for sessions; each entry has exactly one event-time timer (its next
 * firing, early-firing or clean-up time).
 *
 * Batches (`batch`, issue 14): the same semantics column-wise for tumbling and sliding windows
 * keyed by the record key or a top-level string or number field; one lookup per row in a slot table
 * on (key id, window start), typed accumulators for count/sum/avg/min/max, state entries touched
 * once per run. Without allowed lateness or early firing and with only those aggregates, a new
 * window lives only in the slot table (a fresh slot: no state entry, timer or object) until it
 * fires, is spilled (past `--state-cache`) or snapshotted, or the row path runs (`materialiseAll`). Sessions, expression keys and dotted key paths take the row
 * path per batch; late rows, rows of fired windows, rows without the key field and bad rows take
 * it per row (see `batch`).
 *
 * Snapshots (`snapshot`/`restore`, the savepoint format of man/kappa-savepoint.5): state `window`,
 * one row per window (kind `window` for tumbling and sliding, `session` for sessions: the rows of a
 * key are its sessions), with `value` = WindowValue; the watermarks, counters and held-back records
 * go into the operator state (WindowOperatorState).
 */
import { DataError, KappaError, UsageError } from '../../errors.js';
import { keyGroupOf } from '../../state/keygroup.js';
import {
  finiteOrNull,
  type Json,
  type SavepointEntry,
  type StateDescriptor,
} from '../../state/savepoint/format.js';
import type { SavepointColumns } from '../../state/savepoint/write.js';
import { KeyedStateStore } from '../../state/store.js';
import { MinHeap, TimerQueue } from '../../state/timers.js';
import type { Column, RecordBatch } from '../../stream/batch.js';
import type { Header, Rec, Schema } from '../../stream/protocol.js';
import type { CompiledExpr } from '../expr.js';
import { toRecordKey, toStateKey } from '../keys.js';
import {
  BadRecordError,
  type BadRow,
  type Collector,
  type Operator,
  type SnapshotOptions,
} from '../operator.js';
import type { Getter } from '../path.js';
import { type Aggregator, type AggSpec, makeAggregator, readInputs } from './aggregate.js';
import { ensureF64, ensureU8, keyCodes, numericValues, ResultRows, SlotTable } from './columnar.js';
import {
  K_AVG,
  K_COUNT,
  K_MINMAX,
  K_NONE,
  type WindowRowsCopy,
  windowSnapshotColumns,
} from './snapshot-rows.js';

/** Window kind and sizes (all in ms). */
export type WindowSpec =
  | { kind: 'tumbling'; size: number; offset?: number }
  | { kind: 'sliding'; size: number; slide: number; offset?: number }
  | { kind: 'session'; gap: number; maxSession?: number };

/** Results emitted between two awaits of `Collector.drain` while firing. */
export const DRAIN_EVERY = 4096;

/**
 * Records without the `--key` field held back while no record had it; if this many are held (or the
 * first watermark or the end comes first) and none had the field, the key is a usage error.
 */
export const FIRST_BATCH = 1000;

/** How the window key is read from a record. */
export type KeySpec =
  | { kind: 'record' }
  | { kind: 'field'; path: string; get: Getter }
  | { kind: 'expr'; src: string; fn: CompiledExpr };

export interface WindowOptions {
  window: WindowSpec;
  key: KeySpec;
  aggs: AggSpec[];
  /** ms (default 0). */
  allowedLateness?: number;
  /** Early firing period in ms (`--emit early:DUR`); undefined for final results only. */
  early?: number;
  /**
   * Receives each late record (behind every window it belongs to, including the allowed lateness)
   * after it was counted, with the operator's current watermark (ms). It may write the record to a
   * side output, ignore it (dropping, by the user's choice) or throw (e.g. a DataError: fail the
   * run rather than lose data). Without it, late records are counted and dropped.
   */
  onLate?: (r: Rec, watermark: number) => void;
  /**
   * Receives records found bad after the fact: records without the `--key` field held back during
   * the first batch (see FIRST_BATCH). May throw (the `fail` policy). Default: throw
   * BadRecordError.
   */
  onBad?: (r: Rec, reason: string) => void;
  /** LevelDB directory (default: temp dir removed on close) and cache size in entries. */
  stateDir?: string;
  stateCache?: number;
  maxKeyGroups?: number;
}

/** One window's state. Short names: this is what is serialised to LevelDB per window. */
interface Win {
  /** start, end (ms) */
  s: number;
  e: number;
  /** largest event time seen (sessions) */
  m: number;
  /** accumulators, one per aggregate */
  a: unknown[];
  /** fired (final result emitted): 0/1 */
  f: number;
  /** changed since its last emitted result: 0/1 */
  u: number;
  /** next early-firing time (ms), or null when none */
  x: number | null;
}

/** A state entry: the key's value and its window(s). */
interface Entry {
  k: unknown;
  w: Win[];
}

/**
 * `value` of a window row in a savepoint: `max_ts` largest event time added (ms); `fired` the final
 * result was emitted (the window stays for its allowed lateness); `changed` it changed since its
 * last result; `next_early` the next early-firing time (ms) or null; `acc` the accumulator of each
 * aggregate by output name, in the aggregate's JSON form (aggregate.ts `encode`: count and sums as
 * numbers, count_distinct a list of JSON texts, approx_count_distinct a base64 HyperLogLog, …).
 */
export interface WindowValue {
  max_ts: number;
  fired: boolean;
  changed: boolean;
  next_early: number | null;
  acc: Record<string, Json>;
}

/** Non-keyed state of a window operator in a savepoint (`operatorState`). */
export interface WindowOperatorState {
  /** Input watermark (ms) or null (none yet). */
  watermark: number | null;
  /** Last output watermark emitted (ms) or null. */
  outputWatermark: number | null;
  peakOpenWindows: number;
  late: number;
  updates: number;
  recordsIn: number;
  merges: number;
  /** A record had the `--key` field. */
  keySeen: boolean;
  /** Records without the key field held back while no record had it (at most FIRST_BATCH). */
  held: Rec[];
}

/** What `WindowOperator.snapshot` returns: the savepoint writer's operator input minus the uid. */
export interface WindowSnapshot {
  kind: 'window';
  states: StateDescriptor[];
  watermark: number | null;
  operatorState: Json;
  entries: AsyncIterable<SavepointEntry>;
  /** The rows as columns, copied from memory (then `entries` is empty); see `memoryCopy`. */
  columns?: SavepointColumns;
  /** The rows as typed arrays instead of `columns` (`SnapshotOptions.deferColumns`). */
  windowRows?: WindowRowsCopy;
  /** Key groups of the state store. */
  maxKeyGroups: number;
}

/** Name of the window operator's keyed state. */
export const WINDOW_STATE = 'window';

/** Key ids kept beyond twice the open windows before the slot table's key ids are compacted. */
const KEY_IDS_SLACK = 4096;

export class WindowOperator implements Operator {
  private readonly aggs: Aggregator[];
  private readonly inputs: unknown[];
  private readonly timers = new TimerQueue();
  private store: KeyedStateStore<Entry> | undefined;
  private wm = Number.NEGATIVE_INFINITY;
  private lastOutWm = Number.NEGATIVE_INFINITY;
  private readonly lateness: number;
  private readonly keyName: string;
  /** Windows currently open (in state, fired or not). */
  openWindows = 0;
  /** Largest number of open windows seen. */
  peakOpenWindows = 0;
  /** Late records (sent to onLate). */
  late = 0;
  /** Results emitted that update an already-fired window (late firings). */
  updates = 0;
  /** Input records seen (1-based position of the current record while it is processed). */
  recordsIn = 0;
  /** Accumulator merges (sessions bridged by a record); joining one session merges nothing. */
  merges = 0;
  /** Open windows held in the slot table as fresh slots (no state entry, no timer). */
  get freshWindows(): number {
    return this.fresh;
  }
  /** Results emitted since the last `out.drain()`. */
  private sinceDrain = 0;
  /** A record had the `--key` field (the key is not misspelled). */
  private keySeen = false;
  /** Records without the `--key` field held back while `keySeen` is false. */
  private held: Rec[] = [];
  /** The batch path's run state (reused across batches). */
  private run: Run | undefined;
  private readonly heldFields = new Set<string>();
  /** Output schema (from `open`), for the result batches of `fire`. */
  private outSchema: Schema | undefined;
  /** Result rows of the current `fire`, gathered column-wise (see `emit`). */
  private results: ResultRows | undefined;
  /** Scratch row of `emit`: window_start, window_end, key, then one value per aggregate. */
  private readonly resultRow: unknown[] = [];
  /** The batch path's windows by (key id, window start) -> slot (see `batch`). */
  private readonly slots = new SlotTable();
  /** Key ids of `slots`: state-key text -> id; the text and the key value of each id. */
  private readonly keyIds = new Map<string, number>();
  private readonly keyStrOf: string[] = [];
  private readonly keyValOf: unknown[] = [];
  /** Number of fresh slots: windows held only in the typed arrays (no state entry, no timer). */
  private fresh = 0;
  /** Fresh slots by window end (ms), each list in creation order; the distinct ends. */
  private freshByEnd = new Map<number, number[]>();
  /** The end (ms) `addFresh` last added to and its list in `freshByEnd` (NaN: none). */
  private lastEnd = Number.NaN;
  private lastEndList: number[] | undefined;
  private readonly freshEnds = new MinHeap();
  /** Largest window end (ms) of a fresh slot since the slot table was last empty. */
  private freshMaxEnd = Number.NEGATIVE_INFINITY;
  /** Fresh slots may be used: tumbling/sliding, no allowed lateness, no early firing, typed aggregates only. */
  private readonly freshOk: boolean;
  /** Accumulator kind of each aggregate in a fresh slot (K_*). */
  private readonly kinds: Uint8Array;
  /** avg's accumulator handed to its `result` for a fresh slot. */
  private readonly avgScratch: [number, number] = [0, 0];
  /** `--state-cache` (entries). */
  private cacheEntries = 100_000;
  /** `batchTumbling`'s slot of each row of the current batch. */
  private gids = new Int32Array(1024);
  /**
   * Per key id: the slot of its last row in `scanTumbling` (-1: none), kept across batches; a hint
   * only, checked with `slots.is` (ids are renumbered and slots freed between batches).
   */
  private kidHint = new Int32Array(0);

  constructor(private readonly o: WindowOptions) {
    this.aggs = o.aggs.map(makeAggregator);
    this.inputs = new Array(this.aggs.length);
    this.lateness = o.allowedLateness ?? 0;
    this.keyName = o.key.kind === 'field' ? o.key.path.replace(/\./g, '_') : 'key';
    this.kinds = Uint8Array.from(o.aggs, (a) => KIND_OF[a.fn] ?? K_NONE);
    this.freshOk =
      o.window.kind !== 'session' &&
      this.lateness === 0 &&
      o.early === undefined &&
      this.kinds.every((k) => k !== K_NONE);
    const names = new Set(['window_start', 'window_end', this.keyName]);
    for (const a of o.aggs)
      if (names.has(a.name))
        throw new UsageError(
          `--agg: the name '${a.name}' clashes with an output field`,
          "rename it with 'as NAME'",
        );
  }

  async open(h: Header): Promise<Header> {
    const aggs = this.aggs;
    this.cacheEntries = this.o.stateCache ?? 100_000;
    this.store = await KeyedStateStore.open<Entry>(
      {
        dir: this.o.stateDir,
        cacheEntries: this.cacheEntries,
        name: WINDOW_STATE,
        maxKeyGroups: this.o.maxKeyGroups,
      },
      {
        encode: (e) =>
          JSON.stringify({
            k: e.k,
            w: e.w.map((w) => ({ ...w, a: w.a.map((acc, i) => aggs[i].encode(acc)) })),
          }),
        decode: (s) => {
          const e = JSON.parse(s) as Entry;
          for (const w of e.w) w.a = w.a.map((j, i) => aggs[i].decode(j));
          return e;
        },
      },
    );
    // The key column keeps its input type: the stream key is a string; a top-level field has the
    // type the input header declares; otherwise (nested path, expression) it is left undeclared, so
    // a sink infers it from the values, as for any undeclared field.
    const schema: Schema = { window_start: 'timestamp', window_end: 'timestamp' };
    const key = this.o.key;
    if (key.kind === 'record') schema[this.keyName] = 'string';
    else if (key.kind === 'field' && h.schema?.[key.path] !== undefined)
      schema[this.keyName] = h.schema[key.path];
    for (const g of aggs) {
      const t = g.type(h.schema);
      if (t !== undefined) schema[g.spec.name] = t;
    }
    this.outSchema = schema;
    return { kappa: h.kappa, schema };
  }

  /** The key of a record; MISSING when a field key's field is absent. */
  private keyOf(r: Rec): unknown {
    const k = this.o.key;
    if (k.kind === 'record') return r.key ?? null;
    if (k.kind === 'field') {
      const v = k.get(r.value);
      return v === undefined ? MISSING : v;
    }
    try {
      return k.fn(r.value, r.key, r.ts, r) ?? null;
    } catch (e) {
      if (e instanceof KappaError) throw e; // e.g. a usage error from the expression sandbox
      throw new BadRecordError(`--key '${k.src}' threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  record(r: Rec, out: Collector): void | Promise<void> {
    // The row path reads and creates state entries: fresh slots become entries first (all of them,
    // so that timers of one time keep their creation order).
    if (this.fresh > 0) this.materialiseAll();
    this.recordsIn++;
    const keyVal = this.keyOf(r);
    if (keyVal === MISSING) {
      this.missingKey(r);
      return;
    }
    if (!this.keySeen) this.firstKeyed();
    readInputs(this.aggs, r.value, this.inputs);
    const keyStr = toStateKey(keyVal);
    const w = this.o.window;
    if (w.kind === 'session') {
      const sk = `${keyStr}\u0000s`;
      const e = this.store!.getCached(sk);
      if (e === undefined && this.timers.has(sk))
        return this.store!.load(sk).then((x) => this.session(r, out, sk, keyVal, x));
      this.session(r, out, sk, keyVal, e);
      return this.maybeFlush();
    }
    // Tumbling and sliding: the starts of every window containing ts, latest first.
    const ts = r.ts;
    const offset = w.offset ?? 0;
    const slide = w.kind === 'tumbling' ? w.size : w.slide;
    const last = ts - mod(ts - offset, slide);
    let lateSome = false;
    let pending: Promise<void> | undefined;
    for (let s = last; s > ts - w.size; s -= slide) {
      const end = s + w.size;
      if (end - 1 + this.lateness <= this.wm) {
        lateSome = true;
        continue;
      }
      const sk = `${keyStr}\u0000${s}`;
      const e = this.store!.getCached(sk);
      if (e === undefined && this.timers.has(sk)) {
        const start = s;
        const p = () => this.store!.load(sk).then((x) => this.addTo(r, out, sk, keyVal, start, end, x));
        pending = pending ? pending.then(p) : p();
      } else if (pending) {
        const start = s;
        pending = pending.then(() => this.addTo(r, out, sk, keyVal, start, end, this.store!.getCached(sk)));
      } else this.addTo(r, out, sk, keyVal, s, end, e);
    }
    if (lateSome) this.toLate(r);
    if (pending) return pending.then(() => this.maybeFlush());
    return this.maybeFlush();
  }

  /**
   * Columnar path (Operator.batch): the same results, late records, bad rows and counters as
   * `record` over `recordsOf(b)`, computed column-wise where it applies:
   * - tumbling and sliding windows keyed by the record key or a top-level field whose column is a
   *   string (dictionary codes) or a number column (`int64`/`float64`, see columnar.ts
   *   `keyCodes`); sessions, expression keys, dotted key paths and other key types take the row
   *   path for the whole batch (sessions merge per key and gain little from columns);
   * - a slot table on (key id, window start) maps each row to its window's slot: a fresh slot
   *   (a new window with no state entry, see `newFresh`) or, for a window with a state entry, a
   *   backed slot looked up once per run (not per row); count, count(f), and sum/avg/min/max of a
   *   trusted numeric column update Float64Array accumulators in row order (so sums are the same
   *   doubles as row by row) and are written back to the entry when the run ends; other aggregates
   *   (first/last, count_distinct, quantiles, values of json or mixed columns, dotted fields) call
   *   the aggregator on the entry per row, with values read from the column (no row object);
   * - a row goes through `record` (ending the run: accumulators are written back first) when it
   *   would do more than add to open windows: while no record had the `--key` field yet, when its
   *   key field is missing, when one of its windows is complete or past its allowed lateness
   *   (late records, late firings), or when a numeric aggregate's value is not a number (a bad
   *   row). `BadRecordError` from `record` goes to `bad`.
   * State entries stay in the keyed state store (cache and spill to LevelDB unchanged): a run holds
   * at most one reference per window it touched, and the store is flushed as in the row path;
   * fresh slots become entries (`materialiseAll`) when they exceed `--state-cache`, before the row
   * path, before a batch that needs the aggregators' own accumulators, and before a snapshot.
   */
  async batch(b: RecordBatch, out: Collector, bad: BadRow): Promise<void> {
    const w = this.o.window;
    const key = this.o.key;
    let keyCol: Column | undefined;
    if (w.kind !== 'session') {
      if (key.kind === 'record') keyCol = b.key;
      else if (key.kind === 'field' && !key.path.includes('.')) keyCol = b.column(key.path);
    }
    const kc = keyCol && keyCodes(keyCol);
    if (w.kind === 'session' || keyCol === undefined || kc === undefined) {
      for (let i = 0; i < b.length; i++) await this.rowOfBatch(b, i, out, bad);
      return;
    }
    const size = w.size;
    const slide = w.kind === 'tumbling' ? w.size : w.slide;
    const offset = w.offset ?? 0;
    const codes = kc.codes;
    const nullCode = kc.values.length;
    const run = this.bindRun(b);
    // A batch that needs the aggregators' own accumulators (M_GENERIC) works on state entries only.
    if (!run.fast && this.fresh > 0) this.materialiseAll();
    if (w.kind === 'tumbling' && !run.generic)
      return this.batchTumbling(b, out, bad, run, kc, offset, key.kind === 'field' ? key.get : undefined);
    const { mode, f64, cols, getters } = run;
    const slots = this.slots;
    // Per key code: its key id in `slots` (-1: not looked up yet).
    const codeKid = new Int32Array(nullCode + 1).fill(-1);
    const aggs = this.aggs;
    const na = aggs.length;
    const inputs = this.inputs;
    const fieldGet = key.kind === 'field' ? key.get : undefined;
    const ts = b.ts;
    const keyValues = kc.values;
    // Per key code: the group its last row went to (a hint checked with `table.is`, which saves the
    // hash lookup for rows of one key and window in a row, the common case of time-ordered input).
    const hint = new Int32Array(nullCode + 1).fill(-1);
    // The slide bucket of the last row: [bucket, bucket + slide) holds ts -> `last` = bucket with
    // no modulo (exact either way: integer ms).
    let bucket = Number.NaN;
    try {
      for (let i = 0; i < b.length; i++) {
        // Held-back records without the key field are reported by `record` (firstKeyed).
        let slow = !this.keySeen && this.held.length > 0;
        let code = codes[i];
        if (!slow && code < 0) {
          if (fieldGet !== undefined && fieldGet(b.value(i)) === undefined) slow = true;
          code = nullCode;
        }
        const t = ts[i];
        if (!(t >= bucket && t < bucket + slide)) bucket = t - mod(t - offset, slide);
        const last = bucket;
        if (!slow) {
          let first = last;
          while (first - slide > t - size) first -= slide;
          // One of its windows is complete (late firing) or purged (late record): the row path.
          if (first + size - 1 <= this.wm) slow = true;
        }
        if (!slow)
          for (let j = 0; j < na; j++) {
            if (mode[j] !== M_GENERIC) continue;
            const c = cols[j];
            let v = c !== undefined ? c.get(i) : getters[j]!(b.value(i));
            if (v === undefined) v = null;
            if (v !== null && aggs[j].numeric && typeof v !== 'number') {
              slow = true; // a bad row: `record` throws the row path's BadRecordError
              break;
            }
            inputs[j] = v;
          }
        if (slow) {
          await this.endRun(run);
          await this.rowOfBatch(b, i, out, bad);
          continue;
        }
        this.recordsIn++;
        this.keySeen = true;
        let kid = codeKid[code];
        if (kid < 0) {
          kid = this.keyId(code === nullCode ? null : keyValues[code]);
          codeKid[code] = kid;
        }
        for (let s = last; s > t - size; s -= slide) {
          let g = hint[code];
          if (!slots.is(g, kid, s)) {
            g = slots.find(kid, s);
            if (g < 0) {
              const r = this.openGroup(run, kid, s, t);
              g = typeof r === 'number' ? r : await r;
            }
            hint[code] = g;
          }
          const base = g * na;
          const { acc0, acc1, has, mixed } = run;
          for (let j = 0; j < na; j++) {
            switch (mode[j]) {
              case M_COUNT:
                acc0[base + j]++;
                break;
              case M_COUNTF:
                if (!cols[j]!.isNull(i)) acc0[base + j]++;
                break;
              case M_SUM: {
                const v = f64[j]![i];
                if (!Number.isNaN(v)) acc0[base + j] += v;
                break;
              }
              case M_AVG: {
                const v = f64[j]![i];
                if (!Number.isNaN(v)) {
                  acc0[base + j] += v;
                  acc1[base + j]++;
                }
                break;
              }
              case M_MIN:
              case M_MAX: {
                const v = f64[j]![i];
                if (Number.isNaN(v)) break;
                if (mixed[base + j]) {
                  const win = run.wins[g]!;
                  win.a[j] = aggs[j].add(win.a[j], v, t);
                } else if (!has[base + j] || (mode[j] === M_MIN ? v < acc0[base + j] : v > acc0[base + j])) {
                  acc0[base + j] = v;
                  has[base + j] = 1;
                }
                break;
              }
              case M_GENERIC: {
                const v = inputs[j];
                if (v !== null) {
                  const win = run.wins[g]!;
                  win.a[j] = aggs[j].add(win.a[j], v, t);
                }
                break;
              }
            }
          }
          if (t > run.maxTs[g]) run.maxTs[g] = t;
        }
      }
    } finally {
      // Also when a row throws (e.g. the fail policy for late records): rows before it are in state.
      await this.endRun(run);
    }
  }

  /**
   * `batch` for tumbling windows when no aggregate reads values through its aggregator (no
   * M_GENERIC): the same results, row for row, in two passes per segment of rows (a segment ends at
   * a row that takes the row path, see `batch`). Pass 1 gives each row its slot (`gids`: key id
   * once per key code, the window start once per change of the window, a per-code hint before the
   * hash lookup) and its largest event time; pass 2 adds each aggregate's column into the slots'
   * accumulators in one loop per aggregate (no per-row dispatch). Each accumulator still sees its
   * rows in row order, so sums are the same doubles as row by row.
   */
  private async batchTumbling(
    b: RecordBatch,
    out: Collector,
    bad: BadRow,
    run: Run,
    kc: { codes: Int32Array; values: readonly unknown[] },
    offset: number,
    fieldGet: Getter | undefined,
  ): Promise<void> {
    const n = b.length;
    const nullCode = kc.values.length;
    if (this.gids.length < n) this.gids = new Int32Array(Math.max(n, 2 * this.gids.length));
    const scan: TumblingScan = {
      b,
      codes: kc.codes,
      keyValues: kc.values,
      fieldGet,
      offset,
      size: (this.o.window as { size: number }).size,
      wm: this.wm,
      codeKid: new Int32Array(nullCode + 1).fill(-1),
      hint: new Int32Array(nullCode + 1),
      hintStart: new Float64Array(nullCode + 1),
      hintGen: new Int32Array(nullCode + 1),
      gen: 1,
      bucket: Number.NaN,
      bucketEnd: Number.NaN,
      bucketLate: false,
      stop: SCAN_DONE,
      pending: undefined,
    };
    let i = 0;
    try {
      while (i < n) {
        const from = i;
        // Held-back records without the key field are reported by `record` (firstKeyed).
        if (!this.keySeen && this.held.length > 0) scan.stop = SCAN_SLOW;
        else {
          i = this.scanTumbling(scan, run, i);
          // A window with a state entry in LevelDB: load it, then go on scanning.
          while (scan.stop === SCAN_PENDING) {
            const g = await scan.pending!;
            scan.pending = undefined;
            this.placeRow(scan, run, i, g);
            i = this.scanTumbling(scan, run, i + 1);
          }
        }
        if (i > from) {
          this.recordsIn += i - from;
          this.keySeen = true;
          this.addColumns(b, run, from, i);
        }
        if (scan.stop === SCAN_SLOW) {
          await this.endRun(run);
          await this.rowOfBatch(b, i, out, bad);
          // endRun and the row path may free or reuse slots: the hints of this batch are stale.
          scan.gen++;
          i++;
        }
      }
    } finally {
      // Also when a row throws (e.g. the fail policy for late records): rows before it are in state.
      await this.endRun(run);
    }
  }

  /**
   * Pass 1 of `batchTumbling` from row `from`, synchronous: gives each row its slot in `gids` and
   * updates the slot's largest event time, until the end of the batch, a row that takes the row
   * path (`scan.stop` SCAN_SLOW) or a window whose state entry must be loaded from LevelDB
   * (SCAN_PENDING, `scan.pending` resolves to its slot; the caller finishes the row with
   * `placeRow`).
   * @returns the index of the row it stopped at (the batch length when done)
   */
  private scanTumbling(scan: TumblingScan, run: Run, from: number): number {
    const { b, codes, keyValues, fieldGet, offset, size, wm, codeKid, hint, hintStart, hintGen, gen } = scan;
    const n = b.length;
    const nullCode = keyValues.length;
    const slots = this.slots;
    const gids = this.gids;
    let kidHint = this.kidHint;
    const ts = b.ts;
    let bucket = scan.bucket;
    let bucketEnd = scan.bucketEnd;
    let bucketLate = scan.bucketLate;
    let stop = SCAN_DONE;
    let i = from;
    for (; i < n; i++) {
      let code = codes[i];
      if (code < 0) {
        if (fieldGet !== undefined && fieldGet(b.value(i)) === undefined) {
          stop = SCAN_SLOW;
          break;
        }
        code = nullCode;
      }
      const t = ts[i];
      if (!(t >= bucket && t < bucketEnd)) {
        bucket = t - mod(t - offset, size);
        bucketEnd = bucket + size;
        bucketLate = bucketEnd - 1 <= wm;
      }
      // Its window is complete (late firing) or purged (late record): the row path.
      if (bucketLate) {
        stop = SCAN_SLOW;
        break;
      }
      let kid = codeKid[code];
      if (kid < 0) {
        kid = this.keyId(code === nullCode ? null : keyValues[code]);
        codeKid[code] = kid;
        kidHint = this.kidHint; // keyId may have grown it
      }
      let g: number;
      // The slot of this code's last row, when it is this row's window (no slot is freed while the
      // scan runs, so a hint of the current generation is valid without a look at the table).
      if (hintStart[code] === bucket && hintGen[code] === gen) g = hint[code];
      else {
        // The key's slot of its last row of an earlier batch (or scan generation), checked against
        // the table: without it, the first row of each key in a batch would probe the hash index
        // (and build it, see `SlotTable`).
        g = kid < kidHint.length ? kidHint[kid] : -1;
        if (!slots.is(g, kid, bucket)) g = slots.find(kid, bucket);
        if (g < 0) {
          const r = this.openGroup(run, kid, bucket, t);
          if (typeof r !== 'number') {
            scan.pending = r;
            stop = SCAN_PENDING;
            break;
          }
          g = r;
        }
        hint[code] = g;
        hintStart[code] = bucket;
        hintGen[code] = gen;
        if (kid < kidHint.length) kidHint[kid] = g;
      }
      gids[i] = g;
      const maxTs = run.maxTs;
      if (t > maxTs[g]) maxTs[g] = t;
    }
    scan.bucket = bucket;
    scan.bucketEnd = bucketEnd;
    scan.bucketLate = bucketLate;
    scan.stop = stop;
    return i;
  }

  /** Finishes row `i` of a scan that stopped at SCAN_PENDING: its slot is `g`. */
  private placeRow(scan: TumblingScan, run: Run, i: number, g: number): void {
    let code = scan.codes[i];
    if (code < 0) code = scan.keyValues.length;
    scan.hint[code] = g;
    scan.hintStart[code] = this.slots.start(g);
    scan.hintGen[code] = scan.gen;
    this.gids[i] = g;
    const t = scan.b.ts[i];
    if (t > run.maxTs[g]) run.maxTs[g] = t;
  }

  /**
   * Pass 2 of `batchTumbling`: adds rows [from, to) of batch `b` into the accumulators of their
   * slots (`gids`), one loop per aggregate, in row order.
   */
  private addColumns(b: RecordBatch, run: Run, from: number, to: number): void {
    const gids = this.gids;
    const na = this.aggs.length;
    const { acc0, acc1, has, mixed, mode, f64, cols } = run;
    const ts = b.ts;
    for (let j = 0; j < na; j++) {
      const m = mode[j];
      if (m === M_COUNT) for (let i = from; i < to; i++) acc0[gids[i] * na + j]++;
      else if (m === M_COUNTF) {
        const c = cols[j]!;
        for (let i = from; i < to; i++) if (!c.isNull(i)) acc0[gids[i] * na + j]++;
      } else if (m === M_SUM) {
        const f = f64[j]!;
        for (let i = from; i < to; i++) {
          const v = f[i];
          if (!Number.isNaN(v)) acc0[gids[i] * na + j] += v;
        }
      } else if (m === M_AVG) {
        const f = f64[j]!;
        for (let i = from; i < to; i++) {
          const v = f[i];
          if (!Number.isNaN(v)) {
            const x = gids[i] * na + j;
            acc0[x] += v;
            acc1[x]++;
          }
        }
      } else if ((m === M_MIN || m === M_MAX) && run.touched.length === 0) {
        // Only fresh slots in these rows (a backed slot is in `touched` until `endRun`): none is
        // `mixed`, so the loop compares numbers only.
        const f = f64[j]!;
        if (m === M_MIN)
          for (let i = from; i < to; i++) {
            const v = f[i];
            const x = gids[i] * na + j;
            if (v < acc0[x] || (!has[x] && !Number.isNaN(v))) {
              acc0[x] = v;
              has[x] = 1;
            }
          }
        else
          for (let i = from; i < to; i++) {
            const v = f[i];
            const x = gids[i] * na + j;
            if (v > acc0[x] || (!has[x] && !Number.isNaN(v))) {
              acc0[x] = v;
              has[x] = 1;
            }
          }
      } else if (m === M_MIN || m === M_MAX) {
        const f = f64[j]!;
        const isMin = m === M_MIN;
        const agg = this.aggs[j];
        for (let i = from; i < to; i++) {
          const v = f[i];
          if (Number.isNaN(v)) continue;
          const g = gids[i];
          const x = g * na + j;
          if (mixed[x]) {
            const win = run.wins[g]!;
            win.a[j] = agg.add(win.a[j], v, ts[i]);
          } else if (!has[x] || (isMin ? v < acc0[x] : v > acc0[x])) {
            acc0[x] = v;
            has[x] = 1;
          }
        }
      }
    }
  }

  /** Row `i` of a batch through `record`; a BadRecordError goes to `bad`. */
  private async rowOfBatch(b: RecordBatch, i: number, out: Collector, bad: BadRow): Promise<void> {
    const r: Rec = { ts: b.ts[i], key: (b.key.get(i) as string | null) ?? null, value: b.value(i) };
    const p = b.prov?.(i);
    if (p !== undefined) r.prov = p;
    const h = b.headers?.(i);
    if (h !== undefined) r.headers = h;
    try {
      await this.record(r, out);
    } catch (e) {
      if (e instanceof BadRecordError) bad(i, e.message);
      else throw e;
    }
  }

  /** How each aggregate reads batch `b` (see `batch`), on the operator's run arrays. */
  private bindRun(b: RecordBatch): Run {
    const aggs = this.aggs;
    const na = aggs.length;
    const mode = new Uint8Array(na);
    const f64: (Float64Array | undefined)[] = new Array(na);
    const cols: (Column | undefined)[] = new Array(na);
    const getters: (Getter | undefined)[] = new Array(na);
    for (let j = 0; j < na; j++) {
      const g = aggs[j];
      const field = g.spec.field;
      if (field === undefined) {
        mode[j] = M_COUNT;
        continue;
      }
      if (field.includes('.')) {
        mode[j] = M_GENERIC;
        getters[j] = g.get;
        continue;
      }
      const col = b.column(field);
      if (col === undefined) {
        mode[j] = M_SKIP; // no row of the batch has the field: every input is null
        continue;
      }
      cols[j] = col;
      const fn = g.spec.fn;
      const typed =
        fn === 'sum' || fn === 'avg' || fn === 'min' || fn === 'max' ? numericValues(col) : undefined;
      if (fn === 'count') mode[j] = M_COUNTF;
      else if (typed !== undefined) {
        f64[j] = typed;
        mode[j] = fn === 'sum' ? M_SUM : fn === 'avg' ? M_AVG : fn === 'min' ? M_MIN : M_MAX;
      } else mode[j] = M_GENERIC;
    }
    const run = this.ensureRun();
    run.mode = mode;
    run.f64 = f64;
    run.cols = cols;
    run.getters = getters;
    run.generic = mode.includes(M_GENERIC);
    run.fast = this.freshOk && !run.generic;
    return run;
  }

  /** The run state, created on first use (by a batch, or a restore into fresh slots). */
  private ensureRun(): Run {
    if (this.run !== undefined) return this.run;
    const na = this.aggs.length;
    this.run = {
      entries: [],
      wins: [],
      sks: [],
      touched: [],
      backed: new Uint8Array(64),
      maxTs: new Float64Array(64),
      acc0: new Float64Array(64 * na),
      acc1: new Float64Array(64 * na),
      has: new Uint8Array(64 * na),
      mixed: new Uint8Array(64 * na),
      mode: new Uint8Array(na),
      f64: new Array(na),
      cols: new Array(na),
      getters: new Array(na),
      fast: false,
      generic: false,
    };
    return this.run;
  }

  /** The id in `slots` of a key value (by its state-key text), assigned on first use. */
  private keyId(keyVal: unknown): number {
    const ks = toStateKey(keyVal);
    let id = this.keyIds.get(ks);
    if (id === undefined) {
      id = this.keyStrOf.length;
      this.keyIds.set(ks, id);
      this.keyStrOf.push(ks);
      this.keyValOf.push(keyVal);
      if (id >= this.kidHint.length) {
        const h = new Int32Array(Math.max(64, 2 * this.kidHint.length, id + 1)).fill(-1);
        h.set(this.kidHint);
        this.kidHint = h;
      }
    }
    return id;
  }

  /** Grows the run's per-slot arrays to cover every slot id handed out. */
  private growRun(run: Run): void {
    const hi = this.slots.hi;
    const n = hi * this.aggs.length;
    if (run.maxTs.length >= hi && run.acc0.length >= n) return;
    run.acc0 = ensureF64(run.acc0, n);
    run.acc1 = ensureF64(run.acc1, n);
    run.has = ensureU8(run.has, n);
    run.mixed = ensureU8(run.mixed, n);
    run.maxTs = ensureF64(run.maxTs, hi);
    run.backed = ensureU8(run.backed, hi);
  }

  /**
   * Opens the slot of (key id, window start) for the current run. A window with a state entry
   * (cached, queued or in LevelDB: exactly when its state key has a timer) gets a backed slot
   * (`initGroup`); a new one a fresh slot when the batch allows it (`run.fast`), else a new
   * entry. With no timer at all (no entry exists) the state key is not even built.
   */
  private openGroup(run: Run, kid: number, s: number, t: number): number | Promise<number> {
    if (run.fast && this.timers.size === 0) return this.newFresh(run, kid, s, t);
    const sk = `${this.keyStrOf[kid]}\u0000${s}`;
    if (!this.timers.has(sk))
      return run.fast ? this.newFresh(run, kid, s, t) : this.initGroup(run, kid, s, t, sk, undefined);
    const store = this.store!;
    const e = store.getCached(sk);
    if (e === undefined) return store.load(sk).then((x) => this.initGroup(run, kid, s, t, sk, x));
    return this.initGroup(run, kid, s, t, sk, e);
  }

  /**
   * A fresh slot for a new window: its accumulators, largest event time and key live only in the
   * run's typed arrays and `slots` until it fires (`fireFresh`) or becomes a state entry
   * (`materialiseAll`); its firing time is kept in `freshByEnd` instead of the timer queue.
   */
  private newFresh(run: Run, kid: number, s: number, t: number): number {
    const g = this.addFresh(run, kid, s, s + (this.o.window as { size: number }).size);
    const na = this.aggs.length;
    const base = g * na;
    run.maxTs[g] = t;
    for (let j = 0; j < na; j++) {
      run.acc0[base + j] = 0;
      run.acc1[base + j] = 0;
      run.has[base + j] = 0;
      run.mixed[base + j] = 0;
    }
    this.openWindows++;
    if (this.openWindows > this.peakOpenWindows) this.peakOpenWindows = this.openWindows;
    return g;
  }

  /**
   * Restores one unfired window of a savepoint row as a fresh slot (issue 14: a resumed run keeps
   * the fast path), when its accumulators have a fresh slot's shape (count and sum a number, avg a
   * [sum, count] pair of numbers, min/max a number or null).
   * @param keyText the row's key (the key's state-key text, canonical JSON)
   * @returns false when they do not (the caller makes it a state entry)
   * @throws DataError when `keyText` is not JSON text
   */
  private restoreFresh(keyText: string, s: number, end: number, maxTs: number, acc: unknown[]): boolean {
    const kinds = this.kinds;
    const na = kinds.length;
    for (let j = 0; j < na; j++) {
      const a = acc[j];
      const k = kinds[j];
      const ok =
        k === K_AVG
          ? Array.isArray(a) && a.length === 2 && typeof a[0] === 'number' && typeof a[1] === 'number'
          : k === K_MINMAX
            ? a === null || typeof a === 'number'
            : typeof a === 'number';
      if (!ok) return false;
    }
    let kid = this.keyIds.get(keyText);
    if (kid === undefined) {
      let k: unknown;
      try {
        k = JSON.parse(keyText);
      } catch {
        throw new DataError(`savepoint: window row key ${keyText} is not JSON text`);
      }
      kid = this.keyStrOf.length;
      this.keyIds.set(keyText, kid);
      this.keyStrOf.push(keyText);
      this.keyValOf.push(k);
    } else if (this.slots.find(kid, s) >= 0)
      throw new DataError(`savepoint: two rows for key ${keyText} and window_start ${s}`);
    const run = this.ensureRun();
    const g = this.addFresh(run, kid, s, end);
    const base = g * na;
    run.maxTs[g] = maxTs;
    for (let j = 0; j < na; j++) {
      const a = acc[j];
      const x = base + j;
      run.acc1[x] = 0;
      run.has[x] = 0;
      run.mixed[x] = 0;
      if (kinds[j] === K_AVG) {
        run.acc0[x] = (a as [number, number])[0];
        run.acc1[x] = (a as [number, number])[1];
      } else if (kinds[j] === K_MINMAX) {
        run.acc0[x] = a === null ? 0 : (a as number);
        run.has[x] = a === null ? 0 : 1;
      } else run.acc0[x] = a as number;
    }
    return true;
  }

  /**
   * Adds a fresh slot for (key id, window start `s`) ending at `end` (ms) to the slot table and
   * the per-end lists; the caller sets its accumulators and largest event time.
   */
  private addFresh(run: Run, kid: number, s: number, end: number): number {
    const g = this.slots.add(kid, s);
    this.growRun(run);
    run.backed[g] = 0;
    // Time-ordered input opens its new windows at one end after another: the last list first.
    if (end === this.lastEnd) this.lastEndList!.push(g);
    else {
      let list = this.freshByEnd.get(end);
      if (list !== undefined) list.push(g);
      else {
        list = [g];
        this.freshByEnd.set(end, list);
        this.freshEnds.push(end);
        if (end > this.freshMaxEnd) this.freshMaxEnd = end;
      }
      this.lastEnd = end;
      this.lastEndList = list;
    }
    this.fresh++;
    return g;
  }

  /** The aggregators' accumulators of fresh slot `g` (what `endRun` writes into a window). */
  private freshAccs(run: Run, g: number): unknown[] {
    const kinds = this.kinds;
    const na = kinds.length;
    const base = g * na;
    const a: unknown[] = [];
    for (let j = 0; j < na; j++) {
      const k = kinds[j];
      if (k === K_AVG) a.push([run.acc0[base + j], run.acc1[base + j]]);
      else if (k === K_MINMAX) a.push(run.has[base + j] ? run.acc0[base + j] : null);
      else a.push(run.acc0[base + j]);
    }
    return a;
  }

  /**
   * Turns every fresh slot into a state entry with its timer (as `initGroup` would have made it),
   * in creation order per window end, and frees the slots. Called before the row path, a batch
   * that needs entries, a snapshot, and when fresh slots exceed `--state-cache` (the store then
   * spills as usual). Queued LevelDB writes are flushed by the caller's next `maybeFlush`/`flush`.
   */
  private materialiseAll(): void {
    if (this.fresh === 0) return;
    const store = this.store!;
    const run = this.run!;
    const slots = this.slots;
    for (const [end, list] of this.freshByEnd)
      for (const g of list) {
        const kid = slots.kid(g);
        const s = slots.start(g);
        const sk = `${this.keyStrOf[kid]}\u0000${s}`;
        const win: Win = { s, e: end, m: run.maxTs[g], a: this.freshAccs(run, g), f: 0, u: 1, x: null };
        store.put(sk, { k: this.keyValOf[kid], w: [win] }, false);
        this.timers.set(sk, end - 1);
        slots.remove(g);
      }
    this.freshByEnd = new Map();
    this.lastEnd = Number.NaN;
    this.lastEndList = undefined;
    this.freshEnds.clear();
    this.freshMaxEnd = Number.NEGATIVE_INFINITY;
    this.fresh = 0;
  }

  /**
   * Fires the fresh slots of window end `end` (ms): their results in creation order; frees them
   * (unless `bulk`: the caller clears the slot table when every fresh slot has fired).
   */
  private async fireFresh(
    end: number,
    out: Collector,
    rows: ResultRows | undefined,
    bulk: boolean,
  ): Promise<void> {
    const list = this.freshByEnd.get(end)!;
    this.freshByEnd.delete(end);
    if (end === this.lastEnd) {
      this.lastEnd = Number.NaN;
      this.lastEndList = undefined;
    }
    this.freshEnds.pop();
    const run = this.run!;
    const slots = this.slots;
    const aggs = this.aggs;
    const kinds = this.kinds;
    const na = aggs.length;
    const row = this.resultRow;
    const avg = this.avgScratch;
    const { acc0, acc1, has } = run;
    for (const g of list) {
      const kid = slots.kid(g);
      const k = this.keyValOf[kid];
      const base = g * na;
      if (rows !== undefined) {
        // Typed: numbers straight from the slot arrays into the result columns (avg as
        // aggregate.ts's avg `result`: null for no values, else sum / count).
        rows.keyRow(end - 1, kid, k);
        rows.num(0, slots.start(g));
        rows.num(1, end);
        for (let j = 0; j < na; j++) {
          const kind = kinds[j];
          const x = base + j;
          if (kind === K_AVG) {
            if (acc1[x] === 0) rows.nul(3 + j);
            else rows.num(3 + j, acc0[x] / acc1[x]);
          } else if (kind === K_MINMAX) {
            if (has[x]) rows.num(3 + j, acc0[x]);
            else rows.nul(3 + j);
          } else rows.num(3 + j, acc0[x]);
        }
      } else {
        row[0] = slots.start(g);
        row[1] = end;
        row[2] = k;
        for (let j = 0; j < na; j++) {
          const kind = kinds[j];
          let v: unknown;
          if (kind === K_AVG) {
            avg[0] = acc0[base + j];
            avg[1] = acc1[base + j];
            v = aggs[j].result(avg);
          } else if (kind === K_MINMAX) v = has[base + j] ? acc0[base + j] : null;
          else v = acc0[base + j];
          row[3 + j] = v;
        }
        const value: Record<string, unknown> = {
          window_start: row[0],
          window_end: end,
          [this.keyName]: k,
        };
        for (let j = 0; j < na; j++) value[aggs[j].spec.name] = row[3 + j];
        out.record({ ts: end - 1, key: toRecordKey(k), value });
      }
      this.sinceDrain++;
      if (!bulk) slots.remove(g);
      this.fresh--;
      this.openWindows--;
      if (this.sinceDrain >= DRAIN_EVERY) {
        this.sinceDrain = 0;
        if (rows !== undefined && rows.length >= RESULT_BATCH_ROWS) sendRows(rows, out);
        await out.drain?.();
      }
    }
  }

  /**
   * A backed slot for the window `e` (undefined: a new window, given a new entry), registered and
   * timed as `addTo` does for a record; its accumulators are copied into the run's typed arrays.
   */
  private initGroup(
    run: Run,
    kid: number,
    s: number,
    t: number,
    sk: string,
    e: Entry | undefined,
  ): number | Promise<number> {
    const store = this.store!;
    const existed = e !== undefined;
    const size = (this.o.window as { size: number }).size;
    if (e === undefined) e = { k: this.keyValOf[kid], w: [this.newWin(s, s + size, t)] };
    const win = e.w[0];
    store.put(sk, e, existed);
    this.timers.set(sk, this.nextTime(e));
    const g = this.slots.add(kid, s);
    this.growRun(run);
    const na = this.aggs.length;
    run.backed[g] = 1;
    run.touched.push(g);
    run.entries[g] = e;
    run.wins[g] = win;
    run.sks[g] = sk;
    run.maxTs[g] = win.m;
    const base = g * na;
    for (let j = 0; j < na; j++) {
      const a = win.a[j];
      run.has[base + j] = 0;
      run.mixed[base + j] = 0;
      switch (run.mode[j]) {
        case M_COUNT:
        case M_COUNTF:
        case M_SUM:
          run.acc0[base + j] = a as number;
          break;
        case M_AVG:
          run.acc0[base + j] = (a as [number, number])[0];
          run.acc1[base + j] = (a as [number, number])[1];
          break;
        case M_MIN:
        case M_MAX:
          if (typeof a === 'number') {
            run.acc0[base + j] = a;
            run.has[base + j] = 1;
          } else if (a !== null) run.mixed[base + j] = 1; // e.g. a string from earlier records
          break;
      }
    }
    if (store.needsFlush) return store.flush().then(() => g);
    return g;
  }

  /**
   * Ends the current run: writes the typed accumulators of its backed slots back to their state
   * entries and frees those slots (fresh slots stay); turns the fresh slots into entries when they
   * exceed `--state-cache`.
   */
  private async endRun(run: Run): Promise<void> {
    const na = this.aggs.length;
    const store = this.store!;
    const touched = run.touched;
    for (let i = 0; i < touched.length; i++) {
      const g = touched[i];
      const win = run.wins[g]!;
      const base = g * na;
      for (let j = 0; j < na; j++) {
        switch (run.mode[j]) {
          case M_COUNT:
          case M_COUNTF:
          case M_SUM:
            win.a[j] = run.acc0[base + j];
            break;
          case M_AVG: {
            const x = win.a[j] as [number, number];
            x[0] = run.acc0[base + j];
            x[1] = run.acc1[base + j];
            break;
          }
          case M_MIN:
          case M_MAX:
            if (!run.mixed[base + j]) win.a[j] = run.has[base + j] ? run.acc0[base + j] : null;
            break;
        }
      }
      win.m = run.maxTs[g];
      win.u = 1;
      // The entry may have been evicted (and spilled) during the run: this puts the live object back.
      store.put(run.sks[g]!, run.entries[g]!, true);
      run.entries[g] = undefined;
      run.wins[g] = undefined;
      run.sks[g] = undefined;
      this.slots.remove(g);
    }
    touched.length = 0;
    if (this.fresh > this.cacheEntries) this.materialiseAll();
    if (store.needsFlush) await store.flush();
  }

  private toLate(r: Rec): void {
    this.late++;
    this.o.onLate?.(r, this.wm);
  }

  private keyPath(): string {
    return (this.o.key as { path: string }).path;
  }

  /** A record without the `--key` field: bad, or held back while no record had the field. */
  private missingKey(r: Rec): void {
    const reason = `the --key field '${this.keyPath()}' is missing from the record`;
    if (this.keySeen) throw new BadRecordError(reason);
    this.held.push(r);
    if (r.value !== null && typeof r.value === 'object' && !Array.isArray(r.value))
      for (const f of Object.keys(r.value)) if (this.heldFields.size < 50) this.heldFields.add(f);
    if (this.held.length >= FIRST_BATCH) this.wrongKey();
  }

  /** The first record with the key field: the held-back records are bad records. */
  private firstKeyed(): void {
    this.keySeen = true;
    const held = this.held;
    this.held = [];
    const reason = `the --key field '${this.keyPath()}' is missing from the record`;
    for (const r of held) {
      if (this.o.onBad) this.o.onBad(r, reason);
      else throw new BadRecordError(reason);
    }
  }

  /** The first batch ended and no record had the key field: the flag is wrong. */
  private checkFirstBatch(): void {
    if (!this.keySeen && this.held.length > 0) this.wrongKey();
  }

  private wrongKey(): never {
    const fields = [...this.heldFields];
    throw new UsageError(
      `--key '${this.keyPath()}': none of the first ${this.held.length} records has this field; fields seen: ${fields.length > 0 ? fields.join(', ') : '(none: the values are not objects)'}`,
      '--key takes a field name (a dotted path for nested fields, `r.` optional) or a JS expression over r, key, ts; check the spelling',
    );
  }

  private maybeFlush(): Promise<void> | undefined {
    return this.store!.needsFlush ? this.store!.flush() : undefined;
  }

  private newWin(s: number, e: number, ts: number): Win {
    const early = this.o.early;
    const x = early !== undefined && s + early - 1 < e - 1 ? s + early - 1 : null;
    this.openWindows++;
    if (this.openWindows > this.peakOpenWindows) this.peakOpenWindows = this.openWindows;
    return { s, e, m: ts, a: this.aggs.map((g) => g.create()), f: 0, u: 0, x };
  }

  private addInputs(win: Win, ts: number): void {
    const aggs = this.aggs;
    const inputs = this.inputs;
    for (let i = 0; i < aggs.length; i++) {
      const v = inputs[i];
      if (v !== null) win.a[i] = aggs[i].add(win.a[i], v, ts);
    }
    if (ts > win.m) win.m = ts;
    win.u = 1;
  }

  private addTo(
    r: Rec,
    out: Collector,
    sk: string,
    keyVal: unknown,
    s: number,
    end: number,
    e: Entry | undefined,
  ): void {
    const existed = e !== undefined;
    if (e === undefined) e = { k: keyVal, w: [this.newWin(s, end, r.ts)] };
    const win = e.w[0];
    this.addInputs(win, r.ts);
    if (win.f) this.emit(e, win, out, true);
    else if (end - 1 <= this.wm) {
      // A window first seen within its allowed lateness: complete already, so it fires at once.
      win.f = 1;
      this.emit(e, win, out, false);
    }
    this.store!.put(sk, e, existed);
    this.timers.set(sk, this.nextTime(e));
  }

  private session(r: Rec, out: Collector, sk: string, keyVal: unknown, e: Entry | undefined): void {
    const w = this.o.window as { gap: number; maxSession?: number };
    const ts = r.ts;
    const gap = w.gap;
    const max = w.maxSession;
    const existed = e !== undefined;
    const wins = e?.w ?? [];
    let join = wins.filter((x) => x.s < ts + gap && ts < x.e);
    if (max !== undefined && join.length > 0) {
      let s = ts;
      let m = ts;
      for (const x of join) {
        s = Math.min(s, x.s);
        m = Math.max(m, x.m);
      }
      if (m - s >= max) {
        // Cannot merge them all within the maximum: join the latest single session that fits.
        const fit = join.filter((x) => Math.max(x.m, ts) - Math.min(x.s, ts) < max);
        join = fit.length > 0 ? [fit[fit.length - 1]] : [];
      }
    }
    let s = ts;
    let m = ts;
    for (const x of join) {
      s = Math.min(s, x.s);
      m = Math.max(m, x.m);
    }
    const end = max === undefined ? m + gap : Math.min(m + gap, s + max);
    if (end - 1 + this.lateness <= this.wm) {
      this.toLate(r);
      return;
    }
    // Update in place: a record joining one session is added to it (no copy of its accumulators);
    // a record bridging several sessions folds the others into the first.
    const early = this.o.early;
    let target: Win;
    let fired = false;
    let rest = wins;
    if (join.length === 0) {
      target = this.newWin(s, end, ts);
      rest.push(target);
    } else {
      target = join[0];
      fired = join.some((x) => x.f === 1);
      for (let j = 1; j < join.length; j++) {
        const x = join[j];
        for (let i = 0; i < this.aggs.length; i++) target.a[i] = this.aggs[i].merge(target.a[i], x.a[i]);
        this.openWindows--;
        this.merges++;
      }
      if (join.length > 1) rest = wins.filter((x) => !join.includes(x) || x === target);
      target.s = s;
      target.e = end;
      target.f = 0;
      target.x = early !== undefined && s + early - 1 < end - 1 ? s + early - 1 : null;
    }
    this.addInputs(target, ts);
    target.m = m;
    if (rest.length > 1) rest.sort((a, b) => a.s - b.s);
    const entry: Entry = e ?? { k: keyVal, w: rest };
    entry.w = rest;
    // A merged window that is already complete (its end passed the watermark) fires at once.
    if (fired || end - 1 <= this.wm) {
      target.f = 1;
      this.emit(entry, target, out, fired);
    }
    this.store!.put(sk, entry, existed);
    this.timers.set(sk, this.nextTime(entry));
  }

  /** Next timer of an entry: the earliest firing, early-firing or clean-up time of its windows. */
  private nextTime(e: Entry): number {
    let t = Number.POSITIVE_INFINITY;
    for (const w of e.w) {
      const n = w.f ? w.e - 1 + this.lateness : w.x !== null ? Math.min(w.x, w.e - 1) : w.e - 1;
      if (n < t) t = n;
    }
    return t;
  }

  private emit(e: Entry, w: Win, out: Collector, update: boolean, rows?: ResultRows): void {
    if (rows !== undefined) {
      // Column-wise (fire): the same values, in the order of the row below.
      const row = this.resultRow;
      row[0] = w.s;
      row[1] = w.e;
      row[2] = e.k;
      const aggs = this.aggs;
      for (let i = 0; i < aggs.length; i++) row[3 + i] = aggs[i].result(w.a[i]);
      rows.push(w.e - 1, toRecordKey(e.k), row);
      this.sinceDrain++;
      w.u = 0;
      if (update) this.updates++;
      return;
    }
    const value: Record<string, unknown> = {
      window_start: w.s,
      window_end: w.e,
      [this.keyName]: e.k,
    };
    const aggs = this.aggs;
    for (let i = 0; i < aggs.length; i++) value[aggs[i].spec.name] = aggs[i].result(w.a[i]);
    out.record({ ts: w.e - 1, key: toRecordKey(e.k), value });
    this.sinceDrain++;
    w.u = 0;
    if (update) this.updates++;
  }

  async watermark(wm: number, out: Collector): Promise<void> {
    this.checkFirstBatch();
    if (wm > this.wm) {
      this.wm = wm;
      await this.fire(wm, out);
    }
    const o = wm - this.lateness;
    if (o > this.lastOutWm) {
      this.lastOutWm = o;
      out.watermark(o);
    }
  }

  /**
   * Fires the windows whose timer is due at `wm`. Results go out column-wise (`ResultRows`, one
   * batch per RESULT_BATCH_ROWS results and one at the end) when the collector takes batches,
   * else one record each; either way in timer order, as `emit` would send them one by one.
   */
  private async fire(wm: number, out: Collector): Promise<void> {
    let rows: ResultRows | undefined;
    if (out.batch !== undefined) {
      rows =
        this.results ??
        new ResultRows(
          ['window_start', 'window_end', this.keyName, ...this.aggs.map((g) => g.spec.name)],
          this.outSchema,
          2,
        );
      this.results = rows;
    }
    try {
      await this.fireDue(wm, out, rows);
    } finally {
      if (rows !== undefined) sendRows(rows, out);
    }
  }

  /**
   * Fires what is due at `wm`: timers of state entries (`fireKey`) and fresh slots (`fireFresh`),
   * merged by time (for one time, entries first: every entry was registered before every fresh
   * slot of that time, since the row path and `materialiseAll` turn all fresh slots into entries).
   */
  private async fireDue(wm: number, out: Collector, rows: ResultRows | undefined): Promise<void> {
    // Every fresh slot fires now and no backed slot exists (between batches): free them all at the
    // end instead of one by one.
    const bulk = this.fresh > 0 && this.freshMaxEnd - 1 <= wm && this.slots.size === this.fresh;
    if (this.fresh === 0)
      for (const sk of this.timers.popDue(wm)) {
        const p = this.fireKey(sk, wm, out, rows);
        if (p !== undefined) await p;
      }
    else
      for (;;) {
        const t1 = this.timers.peek() ?? Number.POSITIVE_INFINITY;
        const end = this.freshEnds.peek();
        const t2 = end - 1;
        const t = Math.min(t1, t2);
        if (!(t <= wm)) break;
        if (t === Number.POSITIVE_INFINITY) {
          for (const sk of this.timers.popDue(wm)) {
            const p = this.fireKey(sk, wm, out, rows);
            if (p !== undefined) await p;
          }
          break;
        }
        if (t1 === t)
          for (const sk of this.timers.popDue(t)) {
            const p = this.fireKey(sk, wm, out, rows);
            if (p !== undefined) await p;
          }
        if (t2 === t) await this.fireFresh(end, out, rows, bulk);
      }
    if (bulk && this.fresh === 0) this.slots.clear();
    if (this.fresh === 0) this.freshMaxEnd = Number.NEGATIVE_INFINITY;
    if (this.slots.size === 0 && this.keyIds.size > 0) {
      // No window left in the slot table: forget the key ids (they would grow with every key seen).
      this.keyIds.clear();
      this.keyStrOf.length = 0;
      this.keyValOf.length = 0;
    } else if (this.keyStrOf.length > KEY_IDS_SLACK + 2 * this.slots.size) this.compactKeyIds();
  }

  /**
   * Drops the key ids of keys with no window in the slot table and renumbers the rest, so that a
   * stream whose keys keep changing (windows always open, so the table is never empty) holds key
   * ids for at most about twice its open windows. Runs between batches only (`fireDue`): a batch's
   * code -> key id cache must not see ids change. Amortised O(1) per key id handed out.
   */
  private compactKeyIds(): void {
    const oldStr = this.keyStrOf.slice();
    const oldVal = this.keyValOf.slice();
    const remap = new Int32Array(oldStr.length).fill(-1);
    this.keyIds.clear();
    this.keyStrOf.length = 0;
    this.keyValOf.length = 0;
    this.slots.remapKids((kid) => {
      let id = remap[kid];
      if (id < 0) {
        id = this.keyStrOf.length;
        remap[kid] = id;
        this.keyIds.set(oldStr[kid], id);
        this.keyStrOf.push(oldStr[kid]);
        this.keyValOf.push(oldVal[kid]);
      }
      return id;
    });
  }

  /**
   * Fires, early-fires or purges the windows of state entry `sk` whose timer is due at `wm`.
   * @returns a promise only when it must be awaited (a LevelDB read, a flush or a drain)
   */
  private fireKey(
    sk: string,
    wm: number,
    out: Collector,
    rows: ResultRows | undefined,
  ): Promise<void> | undefined {
    const store = this.store!;
    const c = store.getCached(sk);
    if (c === undefined) return store.load(sk).then((e) => this.fireEntry(sk, e, wm, out, rows));
    return this.fireEntry(sk, c, wm, out, rows);
  }

  private fireEntry(
    sk: string,
    e: Entry | undefined,
    wm: number,
    out: Collector,
    rows: ResultRows | undefined,
  ): Promise<void> | undefined {
    if (e === undefined) return;
    const store = this.store!;
    const keep: Win[] = [];
    for (const w of e.w) {
      if (!w.f && w.e - 1 <= wm) {
        this.emit(e, w, out, false, rows);
        w.f = 1;
      } else if (!w.f && w.x !== null && w.x <= wm) {
        if (w.u) this.emit(e, w, out, false, rows);
        const d = this.o.early!;
        const k = Math.floor((wm - w.s + 1) / d) + 1;
        const x = w.s + k * d - 1;
        w.x = x < w.e - 1 ? x : null;
      }
      if (w.f && w.e - 1 + this.lateness <= wm) this.openWindows--;
      else keep.push(w);
    }
    if (keep.length === 0) store.delete(sk);
    else {
      e.w = keep;
      store.put(sk, e, true);
      this.timers.set(sk, this.nextTime(e));
    }
    const flushed = store.needsFlush ? store.flush() : undefined;
    if (this.sinceDrain < DRAIN_EVERY) return flushed;
    const drain = async () => {
      await flushed;
      this.sinceDrain = 0;
      if (rows !== undefined && rows.length >= RESULT_BATCH_ROWS) sendRows(rows, out);
      await out.drain?.();
    };
    return drain();
  }

  async end(out: Collector): Promise<void> {
    this.checkFirstBatch();
    this.wm = Number.POSITIVE_INFINITY;
    await this.fire(Number.POSITIVE_INFINITY, out);
  }

  /** Counters for the summary line and periodic stats. */
  counters(): Record<string, number> {
    const s = this.store?.stats();
    return {
      'open windows': this.openWindows,
      'peak open windows': this.peakOpenWindows,
      late: this.late,
      updates: this.updates,
      'state cached': s?.cached ?? 0,
      'state spilled': s?.spilled ?? 0,
      'state writes': s?.writes ?? 0,
    };
  }

  /** The state descriptor of this operator's keyed state (kind and schema recorded in savepoints). */
  stateDescriptor(): StateDescriptor {
    const o = this.o;
    const k = o.key;
    return {
      name: WINDOW_STATE,
      kind: o.window.kind === 'session' ? 'session' : 'window',
      schema: {
        window: { ...o.window },
        allowedLateness: this.lateness,
        early: o.early ?? null,
        key:
          k.kind === 'record' ? 'record key' : k.kind === 'field' ? `field ${k.path}` : `expression ${k.src}`,
        aggs: o.aggs.map((a) => ({
          name: a.name,
          fn: a.fn,
          field: a.field ?? null,
          q: a.qText ?? a.q ?? null,
        })),
        value: {
          max_ts: 'epoch ms',
          fired: 'boolean',
          changed: 'boolean',
          next_early: 'epoch ms or null',
          acc: 'object: aggregate output name -> accumulator JSON',
        },
      } as Json,
    };
  }

  /**
   * Takes a consistent snapshot of everything needed to continue exactly: every open window or
   * session with its accumulators and timer (from a point-in-time snapshot of the state store),
   * the watermarks, the counters and held-back records. Call it between records (not while a
   * `record`/`watermark` call is pending); after it resolves the operator may keep processing while
   * `entries` is still being read.
   * @returns the operator's part of a savepoint (see writeSavepoint), entries in key-group order
   */
  async snapshot(opts?: SnapshotOptions): Promise<WindowSnapshot> {
    // From memory (`memoryCopy`), fresh slots are copied as they are and stay fresh; for the
    // LevelDB path (spilled state) they become state entries first, so the store holds every window.
    if (!this.store!.inMemory) this.materialiseAll();
    const operatorState: WindowOperatorState = {
      watermark: finiteOrNull(this.wm),
      outputWatermark: finiteOrNull(this.lastOutWm),
      peakOpenWindows: this.peakOpenWindows,
      late: this.late,
      updates: this.updates,
      recordsIn: this.recordsIn,
      merges: this.merges,
      keySeen: this.keySeen,
      held: this.held.map((r) => ({ ...r })),
    };
    const copy = this.memoryCopy();
    if (copy)
      return {
        kind: 'window',
        states: [this.stateDescriptor()],
        watermark: finiteOrNull(this.wm),
        operatorState: operatorState as unknown as Json,
        entries: (async function* () {})(),
        ...(opts?.deferColumns ? { windowRows: copy } : { columns: windowSnapshotColumns(copy) }),
        maxKeyGroups: this.store!.keyGroups,
      };
    const snap = await this.store!.snapshot();
    const aggs = this.aggs;
    const session = this.o.window.kind === 'session';
    const nextTime = (e: Entry) => this.nextTime(e);
    async function* entries(): AsyncGenerator<SavepointEntry> {
      for await (const s of snap) {
        const nul = s.key.indexOf('\u0000');
        const key = s.key.slice(0, nul);
        const timer = nextTime(s.value);
        for (const w of s.value.w) {
          const acc: Record<string, Json> = {};
          for (let i = 0; i < aggs.length; i++) acc[aggs[i].spec.name] = aggs[i].encode(w.a[i]) as Json;
          const value: WindowValue = {
            max_ts: w.m,
            fired: w.f === 1,
            changed: w.u === 1,
            next_early: w.x,
            acc,
          };
          yield {
            keyGroup: s.keyGroup,
            state: s.state,
            key,
            windowStart: w.s,
            windowEnd: w.e,
            timer,
            value: value as unknown as Json,
          };
          if (!session) break;
        }
      }
    }
    return {
      kind: 'window',
      states: [this.stateDescriptor()],
      watermark: finiteOrNull(this.wm),
      operatorState: operatorState as unknown as Json,
      entries: entries(),
      maxKeyGroups: this.store!.keyGroups,
    };
  }

  /**
   * The snapshot's rows copied straight from memory, synchronously, when the whole state is in the
   * store's cache (`KeyedStateStore.inMemory`: nothing spilled), else undefined: each cached
   * entry's value as its JSON text (reused when the entry was not `put` since the last snapshot),
   * each fresh slot as numbers (its accumulators, largest event time and times), all in typed
   * arrays or plain strings, so the copy can go to another thread. `windowSnapshotColumns`
   * (snapshot-rows.ts) turns it into the savepoint columns.
   */
  private memoryCopy(): WindowRowsCopy | undefined {
    const store = this.store!;
    if (!store.inMemory) return undefined;
    const aggs = this.aggs;
    const names = aggs.map((g) => g.spec.name);
    const session = this.o.window.kind === 'session';
    // The value of a window row as JSON text, exactly as the LevelDB path writes it.
    const text = (w: Win): string => {
      const acc: Record<string, Json> = {};
      for (let i = 0; i < aggs.length; i++) acc[names[i]] = aggs[i].encode(w.a[i]) as Json;
      const v: WindowValue = { max_ts: w.m, fired: w.f === 1, changed: w.u === 1, next_early: w.x, acc };
      return JSON.stringify(v);
    };
    const fresh = this.fresh;
    const na = aggs.length;
    let cap = Math.max(16, store.stats().cached + fresh);
    let kid = new Int32Array(cap);
    let ws = new Float64Array(cap);
    let we = new Float64Array(cap);
    let tm = new Float64Array(cap);
    const texts: string[] = [];
    const grow = () => {
      cap *= 2;
      const g32 = (x: Int32Array) => {
        const y = new Int32Array(cap);
        y.set(x);
        return y;
      };
      const g64 = (x: Float64Array) => {
        const y = new Float64Array(cap);
        y.set(x);
        return y;
      };
      kid = g32(kid);
      ws = g64(ws);
      we = g64(we);
      tm = g64(tm);
    };
    const keyIds = new Map<string, number>();
    const keyText: string[] = [];
    const keyGroup: number[] = [];
    let n = 0;
    store.forEachCached((sk, e, group, copy) => {
      const key = sk.slice(0, sk.indexOf('\u0000'));
      let id = keyIds.get(key);
      if (id === undefined) {
        id = keyText.length;
        keyIds.set(key, id);
        keyText.push(key);
        keyGroup.push(group);
      }
      const timer = this.nextTime(e);
      const rows = session ? e.w.length : Math.min(1, e.w.length);
      // The value texts of an entry not `put` since the last snapshot are still right: reuse them.
      let t = copy as string | string[] | undefined;
      if (t === undefined) t = rows === 1 ? text(e.w[0]) : e.w.slice(0, rows).map(text);
      for (let j = 0; j < rows; j++) {
        if (n === cap) grow();
        const w = e.w[j];
        kid[n] = id;
        ws[n] = w.s;
        we[n] = w.e;
        tm[n] = Number.isFinite(timer) ? timer : Number.NaN;
        texts.push(typeof t === 'string' ? t : t[j]);
        n++;
      }
      return t;
    });
    // Fresh slots (disjoint from the entries: a window with an entry never gets a fresh slot), as
    // numbers; their rows are those an entry made by `materialiseAll` would give (timer end - 1).
    const maxTs = new Float64Array(fresh);
    const acc0 = new Float64Array(fresh * na);
    const acc1 = new Float64Array(fresh * na);
    const has = new Uint8Array(fresh * na);
    if (fresh > 0) {
      const run = this.run!;
      const slots = this.slots;
      const local = new Int32Array(this.keyStrOf.length).fill(-1);
      let f = 0;
      for (const [end, list] of this.freshByEnd)
        for (const g of list) {
          const k = slots.kid(g);
          let id = local[k];
          if (id < 0) {
            const key = this.keyStrOf[k];
            id = keyIds.get(key) ?? -1;
            if (id < 0) {
              id = keyText.length;
              keyIds.set(key, id);
              keyText.push(key);
              keyGroup.push(keyGroupOf(key, store.keyGroups));
            }
            local[k] = id;
          }
          if (n === cap) grow();
          kid[n] = id;
          ws[n] = slots.start(g);
          we[n] = end;
          tm[n] = end - 1;
          maxTs[f] = run.maxTs[g];
          const base = g * na;
          acc0.set(run.acc0.subarray(base, base + na), f * na);
          acc1.set(run.acc1.subarray(base, base + na), f * na);
          has.set(run.has.subarray(base, base + na), f * na);
          n++;
          f++;
        }
    }
    return {
      state: WINDOW_STATE,
      session,
      names,
      kinds: this.kinds.slice(),
      keyText,
      keyGroup: Int32Array.from(keyGroup),
      length: n,
      kid: kid.slice(0, n),
      windowStart: ws.slice(0, n),
      windowEnd: we.slice(0, n),
      timer: tm.slice(0, n),
      texts,
      maxTs,
      acc0,
      acc1,
      has,
    };
  }

  /**
   * Restores a snapshot into this operator: call after `open` and before any record. Window rows
   * become state entries again (consecutive rows of one key form a key's sessions), each with its
   * timer (the saved timer, or the entry's next firing time if that is earlier).
   * @param saved the operator's metadata from the savepoint (`Savepoint.operator(uid)`), its rows
   *   (`Savepoint.entries(uid)`) and the savepoint's `maxKeyGroups`
   * @throws DataError when the saved state has another key-group count, is not window state of the
   *   same window and aggregates, or a row is malformed or in the wrong key group
   */
  async restore(saved: {
    states: StateDescriptor[];
    operatorState: Json;
    entries: AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;
    maxKeyGroups: number;
  }): Promise<void> {
    if (saved.maxKeyGroups !== this.store!.keyGroups)
      throw new DataError(
        `savepoint: the state has ${saved.maxKeyGroups} key groups, this window ${this.store!.keyGroups}`,
        'run with the key-group count of the savepoint, or rewrite the state for the new count with `kappa state-edit rescale SP -o NEW --max-key-groups N`',
      );
    const mine = this.stateDescriptor();
    const theirs = saved.states.find((s) => s.name === WINDOW_STATE);
    if (!theirs) throw new DataError(`savepoint: no '${WINDOW_STATE}' state for this window operator`);
    const a = theirs.schema as { window?: unknown; aggs?: unknown; allowedLateness?: unknown };
    const m = mine.schema as { window: unknown; aggs: unknown; allowedLateness: unknown };
    for (const f of ['window', 'aggs'] as const)
      if (theirs.kind !== mine.kind || JSON.stringify(a[f]) !== JSON.stringify(m[f]))
        throw new DataError(
          `savepoint: the window state was saved with ${f} ${JSON.stringify(a[f])}, this window has ${JSON.stringify(m[f])}`,
          'run with the same window and aggregates as the job that took the savepoint',
        );
    const st = saved.operatorState as unknown as WindowOperatorState;
    const aggs = this.aggs;
    const session = this.o.window.kind === 'session';
    const self = this;
    const slotsOk = this.freshOk;
    // Fresh slots reached --state-cache: the rest of the windows are state entries.
    let overflow = false;
    const size = session ? 0 : (this.o.window as { size: number }).size;
    let windows = 0;
    async function* entries(): AsyncGenerator<{ key: string; value: Entry; keyGroup: number }> {
      let cur: { key: string; value: Entry; keyGroup: number; timer: number } | undefined;
      const done = (c: NonNullable<typeof cur>) => {
        c.value.w.sort((x, y) => x.s - y.s);
        self.timers.set(c.key, Math.min(c.timer, self.nextTime(c.value)));
        return { key: c.key, value: c.value, keyGroup: c.keyGroup };
      };
      for await (const r of saved.entries) {
        if (r.state !== WINDOW_STATE)
          throw new DataError(
            `savepoint: a row of state '${r.state}', which this window operator does not have`,
          );
        const v = r.value as unknown as WindowValue;
        if (r.windowStart === null || r.windowEnd === null || v === null || typeof v !== 'object' || !v.acc)
          throw new DataError(
            `savepoint: window row of key ${r.key} lacks window_start, window_end or value.acc`,
          );
        const acc = aggs.map((g) => {
          const j = v.acc[g.spec.name];
          if (j === undefined)
            throw new DataError(`savepoint: window row of key ${r.key} has no accumulator '${g.spec.name}'`);
          return g.decode(j);
        });
        const w: Win = {
          s: r.windowStart,
          e: r.windowEnd,
          m: v.max_ts,
          a: acc,
          f: v.fired ? 1 : 0,
          u: v.changed ? 1 : 0,
          x: v.next_early ?? null,
        };
        windows++;
        const timer = r.timer ?? Number.POSITIVE_INFINITY;
        // An unfired window of the fast path's shape goes into the slot table (a fresh slot, no
        // state entry or timer), as if the run had never stopped.
        if (self.fresh >= self.cacheEntries) overflow = true;
        else if (
          slotsOk &&
          w.f === 0 &&
          w.u === 1 &&
          w.x === null &&
          w.e === w.s + size &&
          timer >= w.e - 1 &&
          cur?.key !== `${r.key}\u0000${r.windowStart}` &&
          (self.timers.size === 0 || !self.timers.has(`${r.key}\u0000${r.windowStart}`)) &&
          self.restoreFresh(r.key, w.s, w.e, w.m, acc)
        )
          continue;
        const sk = session ? `${r.key}\u0000s` : `${r.key}\u0000${r.windowStart}`;
        if (cur && cur.key === sk && session) {
          cur.value.w.push(w);
          cur.timer = Math.min(cur.timer, timer);
          continue;
        }
        if (cur) yield done(cur);
        const freshKid = session ? undefined : self.keyIds.get(r.key);
        if (self.timers.has(sk) || (freshKid !== undefined && self.slots.find(freshKid, w.s) >= 0))
          throw new DataError(
            session
              ? `savepoint: the sessions of key ${r.key} are not in consecutive rows`
              : `savepoint: two rows for key ${r.key} and window_start ${r.windowStart}`,
          );
        let k: unknown;
        try {
          k = JSON.parse(r.key);
        } catch {
          throw new DataError(`savepoint: window row key ${r.key} is not JSON text`);
        }
        cur = { key: sk, value: { k, w: [w] }, keyGroup: r.keyGroup, timer };
      }
      if (cur) yield done(cur);
    }
    await this.store!.restore(entries());
    // More windows than --state-cache: the fresh slots become state entries too, so that all
    // windows are entries, as before restore into slots (a mix measured slower with 1M windows).
    if (overflow) this.materialiseAll();
    if (this.store!.needsFlush) await this.store!.flush();
    this.openWindows = windows;
    this.wm = st?.watermark ?? Number.NEGATIVE_INFINITY;
    this.lastOutWm = st?.outputWatermark ?? Number.NEGATIVE_INFINITY;
    this.peakOpenWindows = Math.max(st?.peakOpenWindows ?? 0, windows);
    this.late = st?.late ?? 0;
    this.updates = st?.updates ?? 0;
    this.recordsIn = st?.recordsIn ?? 0;
    this.merges = st?.merges ?? 0;
    this.keySeen = st?.keySeen ?? false;
    this.held = st?.held ?? [];
    for (const r of this.held)
      if (r.value !== null && typeof r.value === 'object' && !Array.isArray(r.value))
        for (const f of Object.keys(r.value)) if (this.heldFields.size < 50) this.heldFields.add(f);
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    await s?.close();
  }
}

/** Where `scanTumbling` stopped: the end of the batch, a row for the row path, a LevelDB read. */
const SCAN_DONE = 0;
const SCAN_SLOW = 1;
const SCAN_PENDING = 2;

/** The state of `batchTumbling`'s pass 1 over one batch, kept across its stops. */
interface TumblingScan {
  b: RecordBatch;
  codes: Int32Array;
  keyValues: readonly unknown[];
  fieldGet: Getter | undefined;
  /** Window offset and size (ms), the watermark (ms) during the batch. */
  offset: number;
  size: number;
  wm: number;
  /**
   * Per key code: its key id (-1: not looked up yet) and the slot its last row went to, with that
   * slot's window start and the generation it was set in (`gen`, bumped after each row of the row
   * path, which may free slots: a hint of an older generation is not used).
   */
  codeKid: Int32Array;
  hint: Int32Array;
  hintStart: Float64Array;
  hintGen: Int32Array;
  gen: number;
  /** The window [bucket, bucketEnd) of the last row and whether it is complete already. */
  bucket: number;
  bucketEnd: number;
  bucketLate: boolean;
  stop: number;
  /** The slot being opened when `stop` is SCAN_PENDING. */
  pending: Promise<number> | undefined;
}

/** How an aggregate reads a batch (`WindowOperator.batch`). */
const M_SKIP = 0; // the batch has no such field: every input is null
const M_COUNT = 1; // count(*)
const M_COUNTF = 2; // count(f): non-null rows of the column
const M_SUM = 3; // sum, avg, min, max of a trusted numeric column (Float64Array)
const M_AVG = 4;
const M_MIN = 5;
const M_MAX = 6;
const M_GENERIC = 7; // the aggregator's own add, with the value from the column (or the row for a dotted path)

/** Accumulator kinds of a fresh slot by aggregate function (K_* in snapshot-rows.ts). */
const KIND_OF: Record<string, number> = {
  count: K_COUNT,
  sum: K_COUNT,
  avg: K_AVG,
  min: K_MINMAX,
  max: K_MINMAX,
};

/**
 * The batch path's per-window arrays, indexed by slot of `WindowOperator.slots` (typed accumulators
 * at slot * aggregates + aggregate), kept across batches, and how each aggregate reads the current
 * batch. A slot is *backed* (a window with a state entry, touched in the current run: its
 * accumulators are copied in by `initGroup` and written back by `endRun`, which frees the slot) or
 * *fresh* (a new window held only here until it fires or is materialised; see `newFresh`).
 */
interface Run {
  /** Backed slots: the state entry, its window and state key. */
  entries: (Entry | undefined)[];
  wins: (Win | undefined)[];
  sks: (string | undefined)[];
  /** Backed slots of the current run, in the order they were opened. */
  touched: number[];
  /** 1 for a backed slot, 0 for a fresh one. */
  backed: Uint8Array;
  /** Largest event time of each slot. */
  maxTs: Float64Array;
  /** count, sum, avg's sum, min/max value. */
  acc0: Float64Array;
  /** avg's count. */
  acc1: Float64Array;
  /** min/max has a value. */
  has: Uint8Array;
  /** min/max held a non-number before the run: updated through the aggregator instead. */
  mixed: Uint8Array;
  mode: Uint8Array;
  f64: (Float64Array | undefined)[];
  cols: (Column | undefined)[];
  getters: (Getter | undefined)[];
  /** The batch may create fresh slots (`freshOk` and no aggregate in M_GENERIC mode). */
  fast: boolean;
  /** Some aggregate reads the batch in M_GENERIC mode. */
  generic: boolean;
}

/**
 * Results gathered by `fire` before they are sent as one batch: the drain period, so an NDJSON
 * writer holds no more lines than the row path did (64k-row batches cost +50 MB peak RSS when
 * windows spill; the Arrow encoder's cost per batch is small at this size).
 */
const RESULT_BATCH_ROWS = DRAIN_EVERY;

/** Sends the rows gathered in `rows` (if any) as one batch. */
function sendRows(rows: ResultRows, out: Collector): void {
  const b = rows.take();
  if (b !== undefined) out.batch!(b);
}

/** keyOf's answer for a record without the `--key` field. */
const MISSING: unique symbol = Symbol('missing key');

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}
