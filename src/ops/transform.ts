/**
 * The `kappa transform` operator core: a chain of stateless steps (filter, map, flat-map, select,
 * drop, rename, re-key, re-time) plus keyed de-duplication, applied in the order given.
 *
 * Performance: every expression is compiled once; a record that passes the chain without change is
 * emitted as the same object, so the runtime can re-emit its original line instead of
 * re-serialising it. Steps never mutate their input record (they build new ones).
 *
 * Re-timing (`--ts EXPR`) and watermarks: upstream watermarks promise something about the *old*
 * event times only, and an arbitrary expression can move a record anywhere in time. So once a
 * chain contains a `ts` step, upstream watermarks are not forwarded; the operator generates its
 * own, as a source does, with bounded out-of-orderness over the new times
 * (`max new ts seen - maxOutOfOrderness - 1`), emitted whenever an upstream watermark arrives (so
 * at the upstream's pace). Records whose new time falls behind that are late downstream (a window
 * stage sends them to its late output); choose `maxOutOfOrderness` to cover the disorder the
 * re-timing introduces. End of input still means watermark +infinity.
 *
 * De-duplication (`dedupe EXPR` with `within` ms): a record is dropped when a record with the same
 * dedupe key was seen within `within` ms of event time (|ts - seen| < within, compared with the
 * latest event time seen for that key, kept or dropped, so a key repeating more often than
 * `within` is kept once). The latest time per key is keyed state (LevelDB + cache), expired when
 * the watermark passes `seen + within - 1`: no later record can then be a duplicate.
 */

import { DataError, KappaError } from '../errors.js';
import { DEFAULT_MAX_KEY_GROUPS } from '../state/keygroup.js';
import { finiteOrNull, type SavepointEntry } from '../state/savepoint/format.js';
import { KeyedStateStore } from '../state/store.js';
import { TimerQueue } from '../state/timers.js';
import { type RecordBatch, recordsOf } from '../stream/batch.js';
import type { Header, Rec, Schema } from '../stream/protocol.js';
import { type CompiledExpr, compileExpr, type ExprScope } from './expr.js';
import { toRecordKey, toStateKey } from './keys.js';
import {
  BadRecordError,
  type BadRow,
  type Collector,
  emitBatch,
  type Operator,
  type OperatorStateSnapshot,
  type SavedOperatorState,
} from './operator.js';
import { compilePath } from './path.js';
import { type ColumnarChain, columnarChain } from './transform-columns.js';

/** One step of the chain, as given on the command line. */
export type TransformStep =
  | { kind: 'filter' | 'map' | 'flat-map' | 'key' | 'ts' | 'dedupe'; expr: string }
  | { kind: 'select' | 'drop'; fields: string[] }
  | { kind: 'rename'; pairs: [from: string, to: string][] };

export interface TransformOptions {
  steps: TransformStep[];
  /** Functions from `--module` files, in scope of every expression. */
  scope?: ExprScope;
  /** Dedupe horizon in ms (required when a `dedupe` step is present). */
  within?: number;
  /** Out-of-orderness bound (ms) of the watermarks generated after a `ts` step (default 0). */
  maxOutOfOrderness?: number;
  /** Dedupe state: LevelDB directory (default: temp dir) and cache size (default 100,000 keys). */
  stateDir?: string;
  stateCache?: number;
}

type StepResult = Rec | null | Rec[] | Promise<Rec | null>;
type StepFn = (r: Rec) => StepResult;

const FLAG: Record<TransformStep['kind'], string> = {
  filter: '--filter',
  map: '--map',
  'flat-map': '--flat-map',
  key: '--key',
  ts: '--ts',
  dedupe: '--dedupe',
  select: '--select',
  drop: '--drop',
  rename: '--rename',
};

/** Parses `a=b,c=d` into rename pairs. Throws Error on a malformed pair. */
export function parseRenames(text: string): [string, string][] {
  return text.split(',').map((p) => {
    const [a, b, ...rest] = p.split('=').map((s) => s.trim());
    if (!a || !b || rest.length > 0) throw new Error(`'${p}' is not old=new`);
    return [a, b];
  });
}

/** Splits a `f1,f2,…` field list, trimming blanks. */
export function parseFieldList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function asObject(r: Rec, flag: string): Record<string, unknown> {
  const v = r.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new BadRecordError(`${flag}: the record's value is not an object`);
  return v as Record<string, unknown>;
}

export class TransformOperator implements Operator {
  private readonly fns: StepFn[] = [];
  private readonly retimed: boolean;
  private readonly bound: number;
  private maxTs = Number.NEGATIVE_INFINITY;
  private lastWm = Number.NEGATIVE_INFINITY;
  private lastInWm = Number.NEGATIVE_INFINITY;
  private store: KeyedStateStore<number> | undefined;
  private readonly dedupes: { timers: TimerQueue; afterTs: boolean; name: string }[] = [];
  /** Records dropped as duplicates. */
  duplicates = 0;
  /** Columnar path (transform-columns.ts): set when every step has a columnar form. */
  batch?: (b: RecordBatch, out: Collector, bad: BadRow) => void;
  private outSchema: Schema | undefined;

  constructor(private readonly o: TransformOptions) {
    const scope = o.scope ?? {};
    this.bound = o.maxOutOfOrderness ?? 0;
    let seenTs = false;
    // Only the last --ts step sets the event time the watermark follows (an earlier one is
    // overwritten, so its times must not advance the watermark).
    const lastTs = o.steps.map((x) => x.kind).lastIndexOf('ts');
    // The compiled expression of each expression step, for the columnar path.
    const exprs: (CompiledExpr | undefined)[] = [];
    for (const [si, step] of o.steps.entries()) {
      const flag = FLAG[step.kind];
      switch (step.kind) {
        case 'filter': {
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          this.fns.push((r) => (f(r.value, r.key, r.ts, r) ? r : null));
          break;
        }
        case 'map': {
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          this.fns.push((r) => ({ ...r, value: f(r.value, r.key, r.ts, r) ?? null }));
          break;
        }
        case 'flat-map': {
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          this.fns.push((r) => {
            const vs = f(r.value, r.key, r.ts, r);
            if (!Array.isArray(vs))
              throw new BadRecordError(`--flat-map '${step.expr}': did not return an array`);
            return vs.map((value) => ({ ...r, value }));
          });
          break;
        }
        case 'key': {
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          this.fns.push((r) => ({ ...r, key: toRecordKey(f(r.value, r.key, r.ts, r)) }));
          break;
        }
        case 'ts': {
          seenTs = true;
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          this.fns.push((r) => {
            const t = f(r.value, r.key, r.ts, r);
            // A Date made inside the expression's context is not a host Date: test its tag.
            const ms =
              Object.prototype.toString.call(t) === '[object Date]' ? Date.prototype.getTime.call(t) : t;
            if (typeof ms !== 'number' || !Number.isFinite(ms))
              throw new BadRecordError(`--ts '${step.expr}': returned ${String(t)}, not epoch milliseconds`);
            const ts = Math.round(ms);
            if (si === lastTs && ts > this.maxTs) this.maxTs = ts;
            return { ...r, ts };
          });
          break;
        }
        case 'dedupe': {
          if (o.within === undefined) throw new Error('--dedupe needs --within');
          const within = o.within;
          const f = guard(compileExpr(step.expr, scope, flag), flag, step.expr);
          exprs[si] = f;
          const timers = new TimerQueue();
          const name = `dedupe${this.dedupes.length}`;
          this.dedupes.push({ timers, afterTs: seenTs, name });
          const decide = (r: Rec, k: string, kept: number | undefined): Rec | null => {
            const dup = kept !== undefined && Math.abs(r.ts - kept) < within;
            const nk = kept === undefined ? r.ts : Math.max(kept, r.ts);
            if (nk !== kept) {
              this.store!.put(k, nk, kept !== undefined);
              timers.set(k, nk + within - 1);
            }
            if (dup) this.duplicates++;
            return dup ? null : r;
          };
          this.fns.push((r) => {
            // The dedupe key first: the store takes the key group from the part before the NUL.
            const k = `${toStateKey(f(r.value, r.key, r.ts, r))}\u0000${name}`;
            const kept = this.store!.getCached(k);
            if (kept === undefined && timers.has(k)) return this.store!.load(k).then((v) => decide(r, k, v));
            return decide(r, k, kept);
          });
          break;
        }
        case 'select': {
          const fields = step.fields;
          const getters = fields.map((f) => compilePath(f));
          this.fns.push((r) => {
            const v = asObject(r, flag);
            const o: Record<string, unknown> = {};
            for (let i = 0; i < fields.length; i++) o[fields[i]] = getters[i](v) ?? null;
            return { ...r, value: o };
          });
          break;
        }
        case 'drop': {
          const drop = new Set(step.fields);
          this.fns.push((r) => {
            const v = asObject(r, flag);
            const o: Record<string, unknown> = {};
            for (const k in v) if (!drop.has(k)) o[k] = v[k];
            return { ...r, value: o };
          });
          break;
        }
        case 'rename': {
          const m = new Map(step.pairs);
          this.fns.push((r) => {
            const v = asObject(r, flag);
            const o: Record<string, unknown> = {};
            for (const k in v) o[m.get(k) ?? k] = v[k];
            return { ...r, value: o };
          });
          break;
        }
      }
    }
    this.retimed = seenTs;
    const chain = columnarChain(o.steps, exprs);
    if (chain) this.batch = (b, out, bad) => this.columnar(chain, b, out, bad);
    if (this.dedupes.length > 0 || this.retimed) {
      this.snapshot = () => this.takeSnapshot();
      this.restore = (saved) => this.restoreState(saved);
    }
  }

  /**
   * Snapshot of the dedupe state (one `value` state per `--dedupe` step, named `dedupe0`, `dedupe1`,
   * …: per dedupe key the event time of the newest record kept, with its expiry timer) and of the
   * re-timing watermark generator; present only when the transform keeps state (`--dedupe`, `--ts`).
   */
  snapshot?: () => Promise<OperatorStateSnapshot>;
  /** Restores what `snapshot` wrote (after `open`, before any record). */
  restore?: (saved: SavedOperatorState) => Promise<void>;

  private async takeSnapshot(): Promise<OperatorStateSnapshot> {
    const within = this.o.within ?? 0;
    const snap = this.store ? await this.store.snapshot() : undefined;
    async function* entries(): AsyncGenerator<SavepointEntry> {
      if (!snap) return;
      for await (const e of snap) {
        const nul = e.key.lastIndexOf('\u0000');
        yield {
          keyGroup: e.keyGroup,
          state: e.key.slice(nul + 1),
          key: e.key.slice(0, nul),
          windowStart: null,
          windowEnd: null,
          timer: e.value + within - 1,
          value: e.value,
        };
      }
    }
    const steps = this.o.steps.filter((x) => x.kind === 'dedupe');
    return {
      kind: 'transform',
      states: this.dedupes.map((d, i) => ({
        name: d.name,
        kind: 'value' as const,
        schema: {
          dedupe: (steps[i] as { expr: string }).expr,
          within,
          value: 'epoch ms of the newest record kept for the key; the key expires at value + within - 1',
        },
      })),
      watermark: finiteOrNull(this.lastInWm),
      operatorState: {
        maxTs: finiteOrNull(this.maxTs),
        outputWatermark: finiteOrNull(this.lastWm),
        duplicates: this.duplicates,
      },
      entries: entries(),
      maxKeyGroups: this.store?.keyGroups ?? DEFAULT_MAX_KEY_GROUPS,
    };
  }

  private async restoreState(saved: SavedOperatorState): Promise<void> {
    const names = new Map(this.dedupes.map((d) => [d.name, d]));
    for (const st of saved.states)
      if (!names.has(st.name))
        throw new DataError(
          `savepoint: transform state '${st.name}' has no --dedupe step here (this transform has ${this.dedupes.length})`,
          'run with the same --dedupe steps as the job that took the savepoint',
        );
    if (this.store && saved.maxKeyGroups !== this.store.keyGroups)
      throw new DataError(
        `savepoint: the dedupe state has ${saved.maxKeyGroups} key groups, this transform ${this.store.keyGroups}`,
        'rewrite the state with `kappa state-edit rescale SP -o NEW --max-key-groups N`',
      );
    const within = this.o.within ?? 0;
    const store = this.store;
    async function* rows(): AsyncGenerator<{ key: string; value: number; keyGroup: number }> {
      for await (const e of saved.entries) {
        const d = names.get(e.state);
        if (!d)
          throw new DataError(`savepoint: a row of state '${e.state}', which this transform does not have`);
        if (typeof e.value !== 'number')
          throw new DataError(
            `savepoint: dedupe row of key ${e.key} has value ${JSON.stringify(e.value)}, not epoch ms`,
          );
        const key = `${e.key}\u0000${e.state}`;
        d.timers.set(key, e.value + within - 1);
        yield { key, value: e.value, keyGroup: e.keyGroup };
      }
    }
    if (store) await store.restore(rows());
    const os = (saved.operatorState ?? {}) as {
      maxTs?: number | null;
      outputWatermark?: number | null;
      duplicates?: number;
    };
    this.maxTs = os.maxTs ?? Number.NEGATIVE_INFINITY;
    this.lastWm = os.outputWatermark ?? Number.NEGATIVE_INFINITY;
    this.duplicates = os.duplicates ?? 0;
  }

  /**
   * Applies a columnar chain to a complete batch: its prefix on columns, then the rest of the steps
   * on the rows of the result; any other batch goes through the row steps.
   */
  private columnar(chain: ColumnarChain, b: RecordBatch, out: Collector, bad: BadRow): void {
    if (b.complete) {
      // The chain finds bad rows step by step; report them in row order, as the row path does.
      const bads: [number, string][] = [];
      const res = chain.apply(
        b,
        this.outSchema,
        (row, why) => bads.push([row, why]),
        (t) => {
          if (t > this.maxTs) this.maxTs = t;
        },
      );
      const view = res.batch;
      if (chain.prefix < this.fns.length) {
        // The steps after the prefix, on rows (no dedupe step here: synchronous).
        const recs = view.length > 0 ? recordsOf(view) : [];
        for (let j = 0; j < recs.length; j++) {
          try {
            void this.run(recs[j], chain.prefix, out);
          } catch (e) {
            if (!(e instanceof BadRecordError)) throw e;
            bads.push([res.rows ? res.rows[j] : j, e.message]);
          }
        }
        bads.sort((x, y) => x[0] - y[0]);
        for (const [row, why] of bads) bad(row, why);
        return;
      }
      bads.sort((x, y) => x[0] - y[0]);
      for (const [row, why] of bads) bad(row, why);
      if (view.length > 0) emitBatch(out, view);
      return;
    }
    const recs = b.rec ? undefined : recordsOf(b);
    for (let i = 0; i < b.length; i++) {
      const r = recs ? recs[i] : (b.rec as (j: number) => Rec)(i);
      try {
        void this.run(r, 0, out); // no dedupe step in a columnar chain: synchronous
      } catch (e) {
        if (!(e instanceof BadRecordError)) throw e;
        bad(i, e.message);
      }
    }
  }

  async open(h: Header): Promise<Header> {
    if (this.dedupes.length > 0)
      this.store = await KeyedStateStore.open(
        { dir: this.o.stateDir, cacheEntries: this.o.stateCache ?? 100_000, name: 'dedupe' },
        { encode: String, decode: Number },
      );
    this.outSchema = outputSchema(h.schema, this.o.steps);
    return { kappa: h.kappa, schema: this.outSchema };
  }

  record(r: Rec, out: Collector): void | Promise<void> {
    const p = this.run(r, 0, out);
    if (p && this.store?.needsFlush) return p.then(() => this.store!.flush());
    if (this.store?.needsFlush) return this.store.flush();
    return p;
  }

  private run(r: Rec, from: number, out: Collector): void | Promise<void> {
    const fns = this.fns;
    for (let i = from; i < fns.length; i++) {
      const res = fns[i](r);
      if (res === null) return;
      if (Array.isArray(res)) {
        let chain: Promise<void> | undefined;
        for (const child of res) {
          if (chain) chain = chain.then(() => this.run(child, i + 1, out));
          else {
            const p = this.run(child, i + 1, out);
            if (p) chain = p;
          }
        }
        return chain;
      }
      if (res instanceof Promise) {
        const next = i + 1;
        return res.then((x) => (x === null ? undefined : this.run(x, next, out)));
      }
      r = res;
    }
    out.record(r);
  }

  async watermark(wm: number, out: Collector): Promise<void> {
    this.lastInWm = wm;
    const own = this.retimed ? this.maxTs - this.bound - 1 : wm;
    for (const d of this.dedupes) this.expire(d.timers, d.afterTs ? own : wm);
    if (this.store?.needsFlush) await this.store.flush();
    if (own > this.lastWm && Number.isFinite(own)) {
      this.lastWm = own;
      out.watermark(own);
    }
  }

  private expire(timers: TimerQueue, wm: number): void {
    for (const k of timers.popDue(wm)) this.store!.delete(k);
  }

  end(_out: Collector): void {}

  /** Counters for the summary: duplicates dropped and dedupe keys held. */
  counters(): Record<string, number> {
    if (this.dedupes.length === 0) return {};
    let keys = 0;
    for (const d of this.dedupes) keys += d.timers.size;
    return { duplicates: this.duplicates, 'dedupe keys': keys };
  }

  /** The last upstream watermark seen (ms). */
  get inputWatermark(): number {
    return this.lastInWm;
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    await s?.close();
  }
}

/**
 * Wraps a compiled expression so that anything it throws becomes a BadRecordError naming the flag,
 * except a KappaError (compileExpr's UsageErrors: a name not in scope, a change to the record, a
 * Promise result), which is wrong for every record and ends the run.
 */
function guard(f: CompiledExpr, flag: string, src: string): CompiledExpr {
  const g = (r: unknown, key: string | null | undefined, ts: number, rec: Rec): unknown => {
    try {
      return f(r, key, ts, rec);
    } catch (e) {
      if (e instanceof KappaError) throw e;
      throw new BadRecordError(`${flag} '${src}' threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return f.fields === undefined ? g : Object.assign(g, { fields: f.fields });
}

/**
 * The header schema after the steps: select/drop/rename update it; map and flat-map make the value
 * shape unknown (no schema); the others keep it.
 */
export function outputSchema(schema: Schema | undefined, steps: TransformStep[]): Schema | undefined {
  let s = schema;
  for (const step of steps) {
    if (s === undefined) return undefined;
    switch (step.kind) {
      case 'map':
      case 'flat-map':
        s = undefined;
        break;
      case 'select': {
        const n: Schema = {};
        for (const f of step.fields) {
          // A field the schema does not know (or a nested path) is typed as generic JSON.
          n[f] = s[f] ?? 'json';
        }
        s = n;
        break;
      }
      case 'drop': {
        const n: Schema = {};
        for (const [k, t] of Object.entries(s)) if (!step.fields.includes(k)) n[k] = t;
        s = n;
        break;
      }
      case 'rename': {
        const m = new Map(step.pairs);
        const n: Schema = {};
        for (const [k, t] of Object.entries(s)) n[m.get(k) ?? k] = t;
        s = n;
        break;
      }
      default:
        break;
    }
  }
  return s;
}
