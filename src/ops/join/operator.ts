/**
 * Two-input event-time joins (issue 12): the interval join (`--within`/`--between`, Flink's
 * `RowTimeIntervalJoin` semantics) and the temporal or as-of join (`--as-of`, Flink's
 * `TemporalRowTimeJoinOperator`; DuckDB's ASOF JOIN). Pure operator cores: records, watermarks and
 * the end come in by method call, results go to a Collector, so they are tested with arrays.
 *
 * The runtime (src/stream/two-inputs.ts) hands over records of both inputs (side 0 = left, 1 =
 * right) one at a time and the combined input watermark: the minimum of both inputs' watermarks
 * (an idle input left out). State lives in the keyed state store (LevelDB behind a cache,
 * src/state/store.ts, key groups from the join key) as one entry per join key and side (state key
 * `<key JSON>\0L` / `\0R`: a list of rows), each with one event-time timer (src/state/timers.ts) that
 * cleans it when the watermark passes.
 *
 * Interval join. A left row l and a right row r join when `l.ts + lower <= r.ts <= l.ts + upper`
 * and their keys are equal; the result has ts = max(l.ts, r.ts) and is emitted when the second of
 * the pair arrives (each pair exactly once, whatever the arrival order). A left row is kept until
 * the watermark reaches `ts + upper + allowedLateness`, a right row until `ts - lower +
 * allowedLateness` (no later non-late row can match it then); an outer join emits an unmatched row
 * then, null-padded, with its own ts: exactly once. The output watermark is the input watermark
 * minus `max(upper, -lower, 0) + allowedLateness` (Flink's `getMaxOutputDelay`), so no result is
 * ever behind it (anchors.md §5).
 *
 * As-of join. Right rows are versions per key (sorted by ts). A left row waits until the watermark
 * reaches its ts, then joins the version with the greatest ts <= its ts (ties: the last to arrive);
 * result ts = the left row's ts. Versions older than the newest one at or below `watermark -
 * allowedLateness - versionRetention` are dropped, always keeping one per key. Output watermark =
 * input watermark - allowedLateness. Types inner and left only.
 *
 * A row is late when its ts <= watermark - allowedLateness: it goes to `onLate` (the command sends it
 * to `--late-output` or fails) and takes no part in the join. A row whose join key is missing or
 * null never matches (SQL); outer joins emit it padded at once.
 */
import { DataError } from '../../errors.js';
import type { Json, SavepointEntry, StateDescriptor } from '../../state/savepoint/format.js';
import { finiteOrNull } from '../../state/savepoint/format.js';
import { KeyedStateStore } from '../../state/store.js';
import { TimerQueue } from '../../state/timers.js';
import type { Barrier, Header, Rec } from '../../stream/protocol.js';
import type { Collector } from '../operator.js';
import { type JoinKeySpec, type JoinType, keyExtractor, Merger, padsSide } from './fields.js';

/** Input side: 0 = left (stdin), 1 = right (`--right`). */
export type Side = 0 | 1;

/**
 * An operator with two inputs. The runtime calls `open` once with both headers, then `record` per
 * row of either input, `watermark` whenever the combined input watermark advances, `barrier` for an
 * aligned barrier, `end` once both inputs ended.
 */
export interface TwoInputOperator {
  open(left: Header, right: Header): Header | Promise<Header>;
  record(side: Side, r: Rec, out: Collector): void | Promise<void>;
  /** The combined input watermark (epoch ms) advanced to `wm`. */
  watermark(wm: number, out: Collector): void | Promise<void>;
  /**
   * An aligned checkpoint barrier (both inputs delivered it): snapshot, then forward. Default:
   * forward. Returns the barrier it forwarded when that differs from `b` (its uid added).
   */
  barrier?(b: Barrier, out: Collector): Barrier | undefined | Promise<Barrier | undefined>;
  /** The final checkpoint (both inputs' end positions merged) before it goes on the end line. */
  endBarrier?(final: Barrier): Promise<Barrier>;
  /** After barrier `b` (or the end line's final checkpoint) was forwarded and flushed. */
  complete?(b: Barrier): Promise<void>;
  /** Both inputs ended: emit everything still held (watermark +infinity). */
  end(out: Collector): void | Promise<void>;
  counters?(): Record<string, number | string>;
  close?(): void | Promise<void>;
}

/** Options shared by the interval and the as-of join. */
export interface EventJoinOptions {
  on: JoinKeySpec;
  type: JoinType;
  /** Suffix of colliding right field names (default `_right`). */
  suffix?: string;
  /** `--allowed-lateness` in ms (default 0). */
  allowedLateness?: number;
  /**
   * Called with a late row (ts <= watermark - allowedLateness) of `side`; may throw (the default
   * policy fails the run). The row takes no part in the join.
   */
  onLate?(side: Side, r: Rec, wm: number): void;
  /** LevelDB directory (default: a temp dir removed on close). */
  stateDir?: string;
  /** State entries (join key × side) kept in memory (default 100,000). */
  stateCache?: number;
  maxKeyGroups?: number;
}

/** Interval join options: right.ts ∈ [left.ts + lower, left.ts + upper] (ms). */
export interface IntervalJoinOptions extends EventJoinOptions {
  lower: number;
  upper: number;
}

/** As-of join options. */
export interface AsOfJoinOptions extends EventJoinOptions {
  /** `--version-retention` in ms: keep right versions this much older than needed (default 0). */
  versionRetention?: number;
}

/** One stored row: ts (ms), record key, value, matched flag (interval join). */
interface Row {
  t: number;
  k: string | null;
  v: unknown;
  m?: 1;
}

/** The state entry of one join key and side. */
interface Bucket {
  r: Row[];
}

const CODEC = {
  encode: (b: Bucket) => JSON.stringify(b),
  decode: (s: string) => JSON.parse(s) as Bucket,
};

/** State names of the two sides in savepoints (kind `value`: one row per join key). */
export const JOIN_LEFT_STATE = 'join_left';
export const JOIN_RIGHT_STATE = 'join_right';

/** Non-keyed state of a join operator in a savepoint (`operatorState`). */
export interface JoinOperatorState {
  watermark: number | null;
  outputWatermark: number | null;
  counters: Record<string, number>;
}

/** What `snapshot()` returns: the savepoint writer's operator input minus the uid. */
export interface JoinSnapshot {
  kind: 'join';
  states: StateDescriptor[];
  watermark: number | null;
  operatorState: Json;
  entries: AsyncIterable<SavepointEntry>;
}

/** The state, timers, counters and savepoint code both event-time joins share. */
abstract class EventJoin implements TwoInputOperator {
  protected store: KeyedStateStore<Bucket> | undefined;
  protected readonly timers = new TimerQueue();
  protected wm = Number.NEGATIVE_INFINITY;
  protected lastOutWm = Number.NEGATIVE_INFINITY;
  protected readonly lateness: number;
  protected readonly keyOf: [(v: unknown) => string | undefined, (v: unknown) => string | undefined];
  protected merger: Merger | undefined;
  protected sinceDrain = 0;
  /** Counters: rows in per side, results, padded rows, late rows. */
  readonly stats = { leftIn: 0, rightIn: 0, joined: 0, padded: 0, late: 0 };

  constructor(protected readonly o: EventJoinOptions) {
    this.lateness = o.allowedLateness ?? 0;
    this.keyOf = [keyExtractor(o.on.left), keyExtractor(o.on.right)];
  }

  /** Opens the state store; the output header has the merged schema and the left pipeline info. */
  async open(left: Header, right: Header): Promise<Header> {
    this.merger = new Merger(left.schema, right.schema, this.o.suffix ?? '_right');
    this.store = await KeyedStateStore.open<Bucket>(
      {
        dir: this.o.stateDir,
        cacheEntries: this.o.stateCache ?? 100_000,
        name: 'join',
        maxKeyGroups: this.o.maxKeyGroups,
      },
      CODEC,
    );
    const h: Header = { kappa: left.kappa };
    const schema = this.merger.schema(left.schema);
    if (schema) h.schema = schema;
    if (left.pipeline) h.pipeline = left.pipeline;
    return h;
  }

  abstract record(side: Side, r: Rec, out: Collector): void | Promise<void>;
  abstract watermark(wm: number, out: Collector): void | Promise<void>;
  /** The timer of a state entry of `side` holding `b` (epoch ms; +infinity: none due). */
  protected abstract timerOf(side: Side, b: Bucket): number;
  /** The output watermark for input watermark `wm`. */
  protected abstract outputWatermark(wm: number): number;
  /** The schema part of this operator's state descriptors. */
  protected abstract describe(): Json;

  async end(out: Collector): Promise<void> {
    await this.fire(Number.POSITIVE_INFINITY, out);
  }

  /** Fires the timers due at `wm` (subclasses), then emits the held-back output watermark. */
  protected abstract fire(wm: number, out: Collector): Promise<void>;

  protected emitWatermark(out: Collector): void {
    const w = this.outputWatermark(this.wm);
    if (Number.isFinite(w) && w > this.lastOutWm) {
      this.lastOutWm = w;
      out.watermark(w);
    }
  }

  /** True (and `onLate` called) when `r` is behind the watermark by more than the allowed lateness. */
  protected isLate(side: Side, r: Rec): boolean {
    if (r.ts > this.wm - this.lateness) return false;
    this.stats.late++;
    this.o.onLate?.(side, r, this.wm);
    return true;
  }

  protected async bucket(sk: string): Promise<Bucket | undefined> {
    const s = this.store!;
    const b = s.getCached(sk);
    if (b !== undefined || !this.timers.has(sk)) return b;
    return s.load(sk);
  }

  protected emit(out: Collector, ts: number, key: string | null, value: unknown): void | Promise<void> {
    const r: Rec = { ts, key, value };
    out.record(r);
    if (++this.sinceDrain >= 2048) {
      this.sinceDrain = 0;
      return out.drain?.();
    }
  }

  counters(): Record<string, number> {
    const s = this.store?.stats();
    return {
      'left in': this.stats.leftIn,
      'right in': this.stats.rightIn,
      joined: this.stats.joined,
      padded: this.stats.padded,
      late: this.stats.late,
      'state keys': this.timers.size,
      'state cached': s?.cached ?? 0,
      'state spilled': s?.spilled ?? 0,
    };
  }

  async close(): Promise<void> {
    await this.store?.close();
    this.store = undefined;
  }

  /** State descriptors recorded in savepoints. */
  stateDescriptors(): StateDescriptor[] {
    const schema = this.describe();
    return [
      { name: JOIN_LEFT_STATE, kind: 'value', schema },
      { name: JOIN_RIGHT_STATE, kind: 'value', schema },
    ];
  }

  /**
   * A consistent snapshot of both sides' rows (one savepoint row per join key and side: state
   * `join_left`/`join_right`, key = the join key's canonical JSON, value `{rows: [{t, k, v, m?}]}`,
   * timer = the entry's cleanup/firing time), the watermarks and counters. Call between events.
   * @returns the operator's part of a savepoint (writeSavepoint), entries in key-group order
   */
  async snapshot(): Promise<JoinSnapshot> {
    const snap = await this.store!.snapshot();
    // The timer is derived from the entry's rows (as of the snapshot), not read from the live
    // timer queue, which moves on while the entries are read.
    const timerOf = (side: Side, b: Bucket) => this.timerOf(side, b);
    async function* entries(): AsyncGenerator<SavepointEntry> {
      for await (const s of snap) {
        const nul = s.key.lastIndexOf('\u0000');
        const left = s.key.endsWith('L');
        yield {
          keyGroup: s.keyGroup,
          state: left ? JOIN_LEFT_STATE : JOIN_RIGHT_STATE,
          key: s.key.slice(0, nul),
          windowStart: null,
          windowEnd: null,
          timer: finiteOrNull(timerOf(left ? 0 : 1, s.value)),
          value: { rows: s.value.r } as unknown as Json,
        };
      }
    }
    const st: JoinOperatorState = {
      watermark: finiteOrNull(this.wm),
      outputWatermark: finiteOrNull(this.lastOutWm),
      counters: { ...this.stats },
    };
    return {
      kind: 'join',
      states: this.stateDescriptors(),
      watermark: finiteOrNull(this.wm),
      operatorState: st as unknown as Json,
      entries: entries(),
    };
  }

  /**
   * Restores a snapshot taken by `snapshot()` of a join with the same mode and bounds: call after
   * `open`, before any record.
   * @throws DataError when the key-group count or the join's description differ, or a row is not
   *   join state
   */
  async restore(saved: {
    states: StateDescriptor[];
    operatorState: Json;
    entries: AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;
    maxKeyGroups: number;
  }): Promise<void> {
    const store = this.store!;
    if (saved.maxKeyGroups !== store.keyGroups)
      throw new DataError(
        `savepoint: the state has ${saved.maxKeyGroups} key groups, this join ${store.keyGroups}`,
        'run with the key-group count of the savepoint, or rewrite it with `kappa state-edit rescale`',
      );
    const theirs = saved.states.find((s) => s.name === JOIN_LEFT_STATE);
    if (!theirs || JSON.stringify(theirs.schema) !== JSON.stringify(this.describe()))
      throw new DataError(
        `savepoint: the join state was saved by ${JSON.stringify(theirs?.schema ?? null)}, this join is ${JSON.stringify(this.describe())}`,
        'run with the same join mode, bounds and key as the job that took the savepoint',
      );
    const timers = this.timers;
    const timerOf = (side: Side, b: Bucket) => this.timerOf(side, b);
    async function* entries(): AsyncGenerator<{ key: string; value: Bucket; keyGroup: number }> {
      for await (const e of saved.entries) {
        const side = e.state === JOIN_LEFT_STATE ? 'L' : e.state === JOIN_RIGHT_STATE ? 'R' : undefined;
        const rows = (e.value as { rows?: unknown } | null)?.rows;
        if (side === undefined || !Array.isArray(rows))
          throw new DataError(`savepoint: a row of state '${e.state}' for key ${e.key} is not join state`);
        const sk = `${e.key}\u0000${side}`;
        const b: Bucket = { r: rows as Row[] };
        timers.set(sk, Math.min(e.timer ?? Number.POSITIVE_INFINITY, timerOf(side === 'L' ? 0 : 1, b)));
        yield { key: sk, value: b, keyGroup: e.keyGroup };
      }
    }
    await store.restore(entries());
    const st = saved.operatorState as unknown as JoinOperatorState | null;
    this.wm = st?.watermark ?? Number.NEGATIVE_INFINITY;
    this.lastOutWm = st?.outputWatermark ?? Number.NEGATIVE_INFINITY;
    if (st?.counters) Object.assign(this.stats, st.counters);
  }
}

/** Interval join (`--within DUR` = `--between 0,DUR`; `--between LOWER,UPPER`). */
export class IntervalJoinOperator extends EventJoin {
  private readonly lower: number;
  private readonly upper: number;
  private readonly delay: number;

  /** @throws RangeError when lower > upper */
  constructor(o: IntervalJoinOptions) {
    super(o);
    if (!(o.lower <= o.upper)) throw new RangeError('interval join: lower bound above upper bound');
    this.lower = o.lower;
    this.upper = o.upper;
    this.delay = Math.max(o.upper, -o.lower, 0) + this.lateness;
  }

  protected describe(): Json {
    return {
      mode: 'interval',
      lower: this.lower,
      upper: this.upper,
      allowedLateness: this.lateness,
      type: this.o.type,
      on: this.o.on as unknown as Json,
      value: { rows: 'list of {t: epoch ms, k: record key, v: value, m: 1 when matched}' },
    };
  }

  protected outputWatermark(wm: number): number {
    return wm - this.delay;
  }

  protected timerOf(side: Side, b: Bucket): number {
    let t = Number.POSITIVE_INFINITY;
    for (const row of b.r) t = Math.min(t, this.expiry(side, row.t));
    return t;
  }

  /** Cleanup time of a row of `side` with ts `t`: no later non-late row of the other side can match it. */
  private expiry(side: Side, t: number): number {
    return (side === 0 ? t + this.upper : t - this.lower) + this.lateness;
  }

  /**
   * Probes the other side's rows of the key, emits the pairs, then stores the row (or, when no later
   * row can match it any more, emits it padded at once). Synchronous unless a state entry must be
   * read from LevelDB, the output must drain or the state store must flush (hot path: no promise).
   */
  record(side: Side, r: Rec, out: Collector): void | Promise<void> {
    if (side === 0) this.stats.leftIn++;
    else this.stats.rightIn++;
    if (this.isLate(side, r)) return;
    const key = this.keyOf[side](r.value);
    if (key === undefined) {
      if (!padsSide(this.o.type, side)) return;
      const m = this.merger!;
      this.stats.padded++;
      return this.emit(out, r.ts, r.key ?? null, side === 0 ? m.padLeft(r.value) : m.padRight(r.value));
    }
    const ob = this.cachedOrLoad(`${key}\u0000${side === 0 ? 'R' : 'L'}`);
    if (ob instanceof Promise) return ob.then((b) => this.probe(side, r, key, b, out));
    return this.probe(side, r, key, ob, out);
  }

  /** A state entry from memory, or a promise of it when it may be in LevelDB only. */
  private cachedOrLoad(sk: string): Bucket | undefined | Promise<Bucket | undefined> {
    const b = this.store!.getCached(sk);
    if (b !== undefined || !this.timers.has(sk)) return b;
    return this.store!.load(sk);
  }

  private probe(
    side: Side,
    r: Rec,
    key: string,
    ob: Bucket | undefined,
    out: Collector,
  ): void | Promise<void> {
    const m = this.merger!;
    const rk = r.key ?? null;
    let matched = false;
    let drain: Promise<void> | undefined;
    if (ob !== undefined) {
      let changed = false;
      const lo = this.lower;
      const hi = this.upper;
      for (const row of ob.r) {
        const lt = side === 0 ? r.ts : row.t;
        const rt = side === 0 ? row.t : r.ts;
        if (rt < lt + lo || rt > lt + hi) continue;
        matched = true;
        if (row.m !== 1) {
          row.m = 1;
          changed = true;
        }
        this.stats.joined++;
        const ts = Math.max(lt, rt);
        const p =
          side === 0
            ? this.emit(out, ts, rk, m.merge(r.value, row.v))
            : this.emit(out, ts, row.k, m.merge(row.v, r.value));
        if (p) drain = p;
      }
      if (changed) this.store!.put(`${key}\u0000${side === 0 ? 'R' : 'L'}`, ob, true);
    }
    const exp = this.expiry(side, r.ts);
    if (exp <= this.wm) {
      // No later non-late row can match it: it is done now.
      if (!matched && padsSide(this.o.type, side)) {
        this.stats.padded++;
        const p = this.emit(out, r.ts, rk, side === 0 ? m.padLeft(r.value) : m.padRight(r.value));
        if (p) drain = p;
      }
      return drain;
    }
    const own = `${key}\u0000${side === 0 ? 'L' : 'R'}`;
    const row: Row = { t: r.ts, k: rk, v: r.value };
    if (matched) row.m = 1;
    const b = this.cachedOrLoad(own);
    if (b instanceof Promise) return b.then((x) => this.append(own, x, row, exp)).then(() => drain);
    const f = this.append(own, b, row, exp);
    return f && drain ? f.then(() => drain) : (f ?? drain);
  }

  /** Appends `row` to the entry `sk` (existing bucket `b`, if any) and moves its timer to `exp` if earlier. */
  private append(sk: string, b: Bucket | undefined, row: Row, exp: number): void | Promise<void> {
    const store = this.store!;
    const existed = this.timers.has(sk);
    if (b === undefined) b = { r: [row] };
    else b.r.push(row);
    store.put(sk, b, existed);
    const t = this.timers.get(sk);
    if (t === undefined || exp < t) this.timers.set(sk, exp);
    if (store.needsFlush) return store.flush();
  }

  async watermark(wm: number, out: Collector): Promise<void> {
    if (wm <= this.wm) return;
    await this.fire(wm, out);
  }

  protected async fire(wm: number, out: Collector): Promise<void> {
    this.wm = wm;
    const store = this.store!;
    const m = this.merger!;
    for (const sk of this.timers.popDue(wm)) {
      const side: Side = sk.endsWith('L') ? 0 : 1;
      const b = store.getCached(sk) ?? (await store.load(sk));
      if (b === undefined) continue;
      const pads = padsSide(this.o.type, side);
      const keep: Row[] = [];
      let next = Number.POSITIVE_INFINITY;
      for (const row of b.r) {
        const exp = this.expiry(side, row.t);
        if (exp > wm) {
          keep.push(row);
          if (exp < next) next = exp;
        } else if (pads && row.m !== 1) {
          this.stats.padded++;
          await this.emit(out, row.t, row.k, side === 0 ? m.padLeft(row.v) : m.padRight(row.v));
        }
      }
      if (keep.length === 0) store.delete(sk);
      else {
        b.r = keep;
        store.put(sk, b, true);
        this.timers.set(sk, next);
      }
      if (store.needsFlush) await store.flush();
    }
    this.emitWatermark(out);
  }
}

/** Temporal (as-of) join (`--as-of`). */
export class AsOfJoinOperator extends EventJoin {
  private readonly retention: number;

  /** @throws RangeError for the right or full type (a version table has no unmatched-row notion) */
  constructor(o: AsOfJoinOptions) {
    super(o);
    if (o.type === 'right' || o.type === 'full')
      throw new RangeError('as-of join: only inner and left joins are defined');
    this.retention = o.versionRetention ?? 0;
  }

  protected describe(): Json {
    return {
      mode: 'as-of',
      allowedLateness: this.lateness,
      versionRetention: this.retention,
      type: this.o.type,
      on: this.o.on as unknown as Json,
      value: { rows: 'list of {t: epoch ms, k: record key, v: value}; right: versions by t' },
    };
  }

  protected outputWatermark(wm: number): number {
    return wm - this.lateness;
  }

  protected timerOf(side: Side, b: Bucket): number {
    if (side === 1) return this.cleanupTime(b);
    let t = Number.POSITIVE_INFINITY;
    for (const row of b.r) t = Math.min(t, row.t);
    return t;
  }

  /** When the oldest kept version of a right bucket can go: the watermark passed the next one. */
  private cleanupTime(b: Bucket): number {
    return b.r.length >= 2 ? b.r[1].t + this.lateness + this.retention : Number.POSITIVE_INFINITY;
  }

  async record(side: Side, r: Rec, out: Collector): Promise<void> {
    if (side === 0) this.stats.leftIn++;
    else this.stats.rightIn++;
    if (this.isLate(side, r)) return;
    const key = this.keyOf[side](r.value);
    const rk = r.key ?? null;
    const store = this.store!;
    if (side === 0) {
      if (key === undefined || r.ts <= this.wm) {
        // No key (never matches), or its time has passed already (allowed lateness): join now.
        await this.joinLeft(key, { t: r.ts, k: rk, v: r.value }, out);
        return;
      }
      const sk = `${key}\u0000L`;
      const existed = this.timers.has(sk);
      const b = (await this.bucket(sk)) ?? { r: [] };
      b.r.push({ t: r.ts, k: rk, v: r.value });
      store.put(sk, b, existed);
      const t = this.timers.get(sk);
      if (t === undefined || r.ts < t) this.timers.set(sk, r.ts);
    } else {
      if (key === undefined) return; // a version without a key can never be found
      const sk = `${key}\u0000R`;
      const existed = this.timers.has(sk);
      const b = (await this.bucket(sk)) ?? { r: [] };
      // Insert sorted by ts; equal ts: after the earlier arrivals (the last one wins a lookup).
      let i = b.r.length;
      while (i > 0 && b.r[i - 1].t > r.ts) i--;
      b.r.splice(i, 0, { t: r.ts, k: rk, v: r.value });
      store.put(sk, b, existed);
      this.timers.set(sk, this.cleanupTime(b));
    }
    if (store.needsFlush) await store.flush();
  }

  /** Joins one left row with the newest version at or before its ts (or pads it, left join). */
  private async joinLeft(key: string | undefined, row: Row, out: Collector): Promise<void> {
    const m = this.merger!;
    let v: Row | undefined;
    if (key !== undefined) {
      const b = await this.bucket(`${key}\u0000R`);
      if (b !== undefined) {
        let lo = 0;
        let hi = b.r.length; // first version with t > row.t
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (b.r[mid].t <= row.t) lo = mid + 1;
          else hi = mid;
        }
        if (lo > 0) v = b.r[lo - 1];
      }
    }
    if (v !== undefined) {
      this.stats.joined++;
      await this.emit(out, row.t, row.k, m.merge(row.v, v.v));
    } else if (this.o.type === 'left') {
      this.stats.padded++;
      await this.emit(out, row.t, row.k, m.padLeft(row.v));
    }
  }

  async watermark(wm: number, out: Collector): Promise<void> {
    if (wm <= this.wm) return;
    await this.fire(wm, out);
  }

  protected async fire(wm: number, out: Collector): Promise<void> {
    this.wm = wm;
    const store = this.store!;
    const due = this.timers.popDue(wm);
    // Left rows first: they may need versions that the right cleanup below drops.
    for (const sk of due) {
      if (!sk.endsWith('L')) continue;
      const b = store.getCached(sk) ?? (await store.load(sk));
      if (b === undefined) continue;
      const key = sk.slice(0, -2);
      const keep: Row[] = [];
      let next = Number.POSITIVE_INFINITY;
      for (const row of b.r) {
        if (row.t <= wm) await this.joinLeft(key, row, out);
        else {
          keep.push(row);
          if (row.t < next) next = row.t;
        }
      }
      if (keep.length === 0) store.delete(sk);
      else {
        b.r = keep;
        store.put(sk, b, true);
        this.timers.set(sk, next);
      }
      if (store.needsFlush) await store.flush();
    }
    const horizon = wm - this.lateness - this.retention;
    for (const sk of due) {
      if (!sk.endsWith('R')) continue;
      const b = store.getCached(sk) ?? (await store.load(sk));
      if (b === undefined) continue;
      // Keep the newest version at or below the horizon and everything after it.
      let i = 0;
      while (i + 1 < b.r.length && b.r[i + 1].t <= horizon) i++;
      if (i > 0) b.r = b.r.slice(i);
      store.put(sk, b, true);
      this.timers.set(sk, this.cleanupTime(b));
      if (store.needsFlush) await store.flush();
    }
    this.emitWatermark(out);
  }
}
