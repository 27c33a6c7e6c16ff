/**
 * The window operator's columnar path (`WindowOperator.batch`, issue 14) against its row path:
 * `batch(b)` must give exactly what `record` gives over `recordsOf(b)` — the same results in the
 * same order, watermarks, late records, bad rows (with reasons), held-back records and counters —
 * for every window kind, key kind and aggregate set, on shuffled input split into random batches.
 * The row path itself is checked against an independent reference in window.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CompiledExpr } from '../../src/ops/expr.js';
import { ArrayCollector, BadRecordError } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { GroupTable, ResultRows, type SlotTable } from '../../src/ops/window/columnar.js';
import {
  type KeySpec,
  WindowOperator,
  type WindowOptions,
  type WindowSpec,
} from '../../src/ops/window/operator.js';
import {
  batchFromRecords,
  DictionaryColumn,
  Float64Column,
  type RecordBatch,
  recordsOf,
} from '../../src/stream/batch.js';
import type { Rec } from '../../src/stream/protocol.js';

const MIN = 60_000;

/** The operator's private state store, for its LevelDB read counter. */
type StoreOf = { store: { stats(): { reads: number } } };

type Step = { recs: Rec[] } | { wm: number };

interface Outcome {
  records: Rec[];
  watermarks: number[];
  late: Rec[];
  bad: { rec: Rec; reason: string }[];
  held: { rec: Rec; reason: string }[];
  state: unknown[];
  /** LevelDB traffic (not compared: it depends on the order entries are touched). */
  stats?: { writes: number; reads: number };
  counters: Record<string, number>;
  extra: { recordsIn: number; merges: number; openWindows: number; peak: number };
  error?: string;
}

/**
 * A collector that also takes batches (as the stream writer does): the firing path then sends its
 * results column-wise; their records are appended in order, as `record` would have appended them.
 */
class BatchCollector extends ArrayCollector {
  batches = 0;
  batch(b: RecordBatch): void {
    this.batches++;
    for (const r of recordsOf(b)) this.records.push(r);
  }
}

/** Runs one operator over the steps, by rows (`record` over recordsOf) or by batches (`batch`). */
async function run(
  opts: WindowOptions,
  steps: Step[],
  mode: 'rows' | 'batch',
  failOnLate = false,
): Promise<Outcome> {
  const late: Rec[] = [];
  const held: { rec: Rec; reason: string }[] = [];
  const op = new WindowOperator({
    ...opts,
    onLate: (r) => {
      late.push(r);
      if (failOnLate) throw new Error(`late record at ${r.ts}`);
    },
    onBad: (rec, reason) => held.push({ rec, reason }),
  });
  const out = mode === 'batch' ? new BatchCollector() : new ArrayCollector();
  const bad: { rec: Rec; reason: string }[] = [];
  let error: string | undefined;
  const state: unknown[] = [];
  await op.open({ kappa: 1 });
  try {
    for (const s of steps) {
      if ('wm' in s) {
        await op.watermark(s.wm, out);
        continue;
      }
      const b: RecordBatch = batchFromRecords(s.recs);
      const recs = recordsOf(b);
      if (mode === 'batch') await op.batch(b, out, (row, reason) => bad.push({ rec: recs[row], reason }));
      else
        for (const r of recs) {
          try {
            await op.record(r, out);
          } catch (e) {
            if (!(e instanceof BadRecordError)) throw e;
            bad.push({ rec: r, reason: e.message });
          }
        }
    }
  } catch (e) {
    error = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
  }
  // The state itself (accumulators, max event time, flags, timers), spilled entries included; also
  // after a failure in the middle of a batch.
  const stats = {
    writes: op.counters()['state writes'],
    reads: (op as unknown as StoreOf).store.stats().reads,
  };
  const snap = await op.snapshot();
  // Copied from memory (columns) or exported from LevelDB (entries): the same rows either way. Which
  // one a path takes depends on whether its state spilled, not on its results.
  const cols = snap.columns;
  if (cols)
    for (let i = 0; i < cols.length; i++)
      state.push({
        keyGroup: cols.keyGroup[i],
        state: typeof cols.state === 'string' ? cols.state : cols.state[i],
        key: cols.key[i],
        windowStart: cols.windowStart[i],
        windowEnd: cols.windowEnd[i],
        timer: cols.timer[i],
        value: JSON.parse(cols.value[i]),
      });
  for await (const e of snap.entries) state.push(e);
  if (error === undefined)
    try {
      await op.end(out);
    } catch (e) {
      error = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    }
  const c = op.counters();
  await op.close();
  return {
    records: out.records,
    watermarks: out.watermarks,
    late,
    bad,
    held,
    state,
    stats,
    // State cache counters depend on the order entries are touched; results must not.
    counters: { late: c.late, updates: c.updates, 'open windows': c['open windows'] },
    extra: {
      recordsIn: op.recordsIn,
      merges: op.merges,
      openWindows: op.openWindows,
      peak: op.peakOpenWindows,
    },
    error,
  };
}

/**
 * An outcome as the stream carries it (JSON text), LevelDB traffic left out. Both paths may turn a
 * -0 into 0 where state round-trips through LevelDB (JSON), depending on which entries the cache
 * evicted when: the same number on the NDJSON wire.
 */
const wire = (o: Outcome): unknown => JSON.parse(JSON.stringify({ ...o, stats: undefined }));

const KEYS: Record<string, KeySpec> = {
  field: { kind: 'field', path: 'k', get: compilePath('k') },
  record: { kind: 'record' },
  nested: { kind: 'field', path: 'n.k', get: compilePath('n.k') },
  expr: { kind: 'expr', src: 'r.k', fn: ((v: { k?: unknown }) => v.k) as CompiledExpr },
};

const AGG_SETS = [
  // the columnar accumulators
  'count, count(v), sum(v), avg(v), min(v), max(v)',
  // the aggregator's own add per row, values from the columns
  'first(v), last(s), count_distinct(v) as cd, approx_count_distinct(s) as acd, median(v), quantile_disc(v, 0.9) as qd, approx_quantile(v, 0.5) as aq, min(s) as mins, max(s) as maxs',
  // both, and a dotted field (read from the row)
  'count, sum(v), max(v), last(v), p90(v), avg(n.x) as anx, count(n.x) as cnx',
  // min/max that accept strings: typed in some batches, over a string accumulator in others
  'min(v), max(v), count',
];

const WINDOWS: Record<string, WindowSpec> = {
  tumbling: { kind: 'tumbling', size: 60 * MIN },
  'tumbling+offset': { kind: 'tumbling', size: 60 * MIN, offset: 7 * MIN },
  sliding: { kind: 'sliding', size: 120 * MIN, slide: 30 * MIN },
  session: { kind: 'session', gap: 30 * MIN, maxSession: 180 * MIN },
};

/** A value field: mostly numbers (integers and doubles, -0 included), some null, missing or text. */
const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -5, max: 20 }) },
  { weight: 4, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant('x') },
);

/**
 * A key field of one of three domains (strings: dictionary codes; numbers: coded per batch; mixed:
 * a json column, the row path), or null, or missing (a bad record for a field key).
 */
const KEY_DOMAINS: Record<string, unknown[]> = {
  str: ['a', 'b', 'c'],
  num: [1, 2, 1.5, -0, 0],
  mixed: ['a', 1, 'b'],
};
const keyArb = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const stepsArb = fc
  .record({
    recs: fc.array(
      fc.record({
        k: keyArb,
        rk: fc.constantFrom<string | null>('a', 'b', null),
        t: fc.integer({ min: 0, max: 600 }),
        v: valueArb,
        s: fc.oneof(fc.constantFrom<unknown>('p', 'q', 'r'), fc.integer({ min: 0, max: 3 })),
        nx: fc.option(fc.integer({ min: 0, max: 9 })),
        jitter: fc.integer({ min: 0, max: 90 }),
        cut: fc.integer({ min: 0, max: 4 }),
      }),
      { maxLength: 60 },
    ),
    bound: fc.constantFrom(0, 20, 60),
    every: fc.integer({ min: 1, max: 12 }),
    domain: fc.constantFrom(...Object.keys(KEY_DOMAINS)),
  })
  .map(({ recs, bound, every, domain }) => {
    const dom = KEY_DOMAINS[domain];
    const sorted = [...recs].sort((a, b) => a.t + a.jitter - (b.t + b.jitter));
    const steps: Step[] = [];
    let cur: Rec[] = [];
    let max = Number.NEGATIVE_INFINITY;
    const flush = () => {
      if (cur.length > 0) steps.push({ recs: cur });
      cur = [];
    };
    sorted.forEach((x, i) => {
      const ts = x.t * MIN + (i % 3); // ties in event time too
      const value: Record<string, unknown> = { s: x.s };
      if (x.k !== undefined) value.k = x.k === null ? null : dom[x.k % dom.length];
      if (x.v !== undefined) value.v = x.v;
      if (x.nx !== null) value.n = { x: x.nx, k: value.k ?? 'z' };
      cur.push({ ts, key: x.rk, value });
      max = Math.max(max, ts);
      if (x.cut === 0) flush(); // random batch sizes
      if (i % every === every - 1) {
        flush();
        steps.push({ wm: max - bound * MIN - 1 });
      }
    });
    flush();
    return steps;
  });

for (const [wname, window] of Object.entries(WINDOWS))
  describe(`window batch = rows (${wname})`, () => {
    it('gives the same results, order, late records, bad rows and counters for any key, aggregates, lateness, early firing and cache size', async () => {
      await fc.assert(
        fc.asyncProperty(
          stepsArb,
          fc.constantFrom(...Object.keys(KEYS)),
          fc.constantFrom(...AGG_SETS),
          fc.constantFrom(0, 10 * MIN, 60 * MIN),
          fc.constantFrom(undefined, 20 * MIN),
          fc.constantFrom(1, 3, 1000),
          fc.boolean(),
          async (steps, key, aggs, allowedLateness, early, stateCache, failOnLate) => {
            const opts: WindowOptions = {
              window,
              key: KEYS[key],
              aggs: parseAggs(aggs),
              allowedLateness,
              early,
              stateCache,
            };
            const rows = await run(opts, steps, 'rows', failOnLate);
            const cols = await run(opts, steps, 'batch', failOnLate);
            assert.deepStrictEqual(wire(cols), wire(rows));
          },
        ),
        { numRuns: 100 },
      );
    });
  });

describe('window batch path', () => {
  it('fires fresh slots into typed result columns (Float64Array numbers, dictionary-coded keys)', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 600; i++)
      recs.push({ ts: i * MIN, key: `r${i % 3}`, value: { v: i % 2 ? i : null, w: i / 8 } });
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 60 * MIN },
      key: { kind: 'record' },
      aggs: parseAggs('count, sum(w), avg(v), min(v), max(w)'),
    });
    await op.open({ kappa: 1, schema: { v: 'int64', w: 'float64' } });
    const batches: RecordBatch[] = [];
    const out = new ArrayCollector() as ArrayCollector & { batch(b: RecordBatch): void };
    out.batch = (b) => batches.push(b);
    await op.batch(batchFromRecords(recs), out, () => assert.fail('no bad rows'));
    await op.end(out);
    await op.close();
    assert.equal(batches.length, 1);
    const b = batches[0];
    assert.equal(b.length, 30);
    for (const f of ['window_start', 'window_end', 'count', 'sum_w', 'avg_v', 'min_v', 'max_w'])
      assert.ok(b.column(f) instanceof Float64Column, `${f} is a Float64Column`);
    assert.ok(b.column('key') instanceof DictionaryColumn, 'the key field is dictionary-coded');
    assert.ok(b.key instanceof DictionaryColumn, 'the record keys are dictionary-coded');
    assert.equal(b.column('window_start')?.type, 'timestamp');
    // Window 0 of key r1: rows 1, 4, …, 58 (v = i for odd i, else null).
    const rows = Array.from({ length: 20 }, (_, j) => 1 + 3 * j);
    const odd = rows.filter((i) => i % 2 === 1);
    const i = recordsOf(b).findIndex((r) => r.key === 'r1' && r.ts === 60 * MIN - 1);
    assert.deepEqual(b.value(i), {
      window_start: 0,
      window_end: 60 * MIN,
      key: 'r1',
      count: 20,
      sum_w: rows.reduce((a, x) => a + x / 8, 0),
      avg_v: odd.reduce((a, x) => a + x, 0) / odd.length,
      min_v: Math.min(...odd),
      max_w: 58 / 8,
    });
  });

  it('time-ordered batches find every open window through hints: the slot table never builds its hash index', async () => {
    // 40 keys, 3 h of rows in 7 batches whose cuts fall inside windows; a watermark fires some
    // windows between batches. A key's first row in a batch continues the window of its last row
    // in the batch before (the hint kept per key id; per-batch hints would probe the table).
    const recs: Rec[] = [];
    for (let i = 0; i < 7000; i++)
      recs.push({ ts: i * 1500, key: null, value: { k: `k${(i * 7) % 40}`, v: i } });
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 60 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, max(v)'),
    });
    await op.open({ kappa: 1, schema: { k: 'string', v: 'int64' } });
    const out = new ArrayCollector() as ArrayCollector & { batch(b: RecordBatch): void };
    const batches: RecordBatch[] = [];
    out.batch = (b) => batches.push(b);
    for (let i = 0; i < recs.length; i += 1000) {
      await op.batch(batchFromRecords(recs.slice(i, i + 1000)), out, () => assert.fail('no bad rows'));
      await op.watermark(recs[i].ts, out);
    }
    const slots = (op as unknown as { slots: SlotTable }).slots;
    assert.equal(slots.indexBuilds, 0);
    await op.end(out);
    await op.close();
    const n = batches.reduce((a, b) => a + b.length, 0);
    assert.equal(n, 3 * 40);
    let count = 0;
    for (const b of batches) for (let i = 0; i < b.length; i++) count += b.value(i).count as number;
    assert.equal(count, 7000);
  });

  it('a row of the row path in the middle of a batch leaves no stale slot hint (its windows move to state entries)', async () => {
    // Rows of keys a and b in one window, a row without the key field (the row path: it turns the
    // fresh slots into state entries and frees their slots), then a and b again in the same window,
    // then a new window (a fresh slot that may reuse a freed slot id).
    const v = (k: string | undefined, x: number) => (k === undefined ? { x } : { k, x });
    const rows: [number, string | undefined, number][] = [
      [1, 'a', 1],
      [2, 'b', 2],
      [3, undefined, 100],
      [4, 'a', 3],
      [5, 'b', 4],
      [61, 'b', 5],
      [62, 'a', 6],
      [63, 'a', 7],
    ];
    const recs: Rec[] = rows.map(([m, k, x]) => ({ ts: m * MIN, key: null, value: v(k, x) }));
    const opts: WindowOptions = {
      window: { kind: 'tumbling', size: 60 * MIN },
      key: KEYS.field,
      aggs: parseAggs('count, sum(x), max(x)'),
    };
    const steps: Step[] = [{ recs: [{ ts: 0, key: null, value: { k: 'a', x: 0 } }] }, { recs }];
    const byBatch = await run(opts, steps, 'batch');
    const byRows = await run(opts, steps, 'rows');
    assert.equal(byBatch.error, undefined);
    const got = byBatch.records.map((r) => r.value);
    assert.deepEqual(got, [
      { window_start: 0, window_end: 60 * MIN, k: 'a', count: 3, sum_x: 4, max_x: 3 },
      { window_start: 0, window_end: 60 * MIN, k: 'b', count: 2, sum_x: 6, max_x: 4 },
      { window_start: 60 * MIN, window_end: 120 * MIN, k: 'b', count: 1, sum_x: 5, max_x: 5 },
      { window_start: 60 * MIN, window_end: 120 * MIN, k: 'a', count: 2, sum_x: 13, max_x: 7 },
    ]);
    assert.equal(byBatch.bad.length, 1);
    assert.deepEqual(wire(byBatch), wire(byRows));
  });

  it('result rows keep a value that does not fit its typed storage (NaN, big integers, other types, undefined)', () => {
    const rows = new ResultRows(['n', 'f', 's', 'u'], { n: 'int64', f: 'float64', s: 'string' }, 2);
    const want: { ts: number; key: string | null; value: Record<string, unknown> }[] = [];
    const cells: unknown[][] = [
      [1, 0.5, 'a', 1],
      [null, Number.NaN, null, undefined],
      [2 ** 60, -0, 'b', 'x'],
      [3, Number.POSITIVE_INFINITY, 7, null],
    ];
    cells.forEach((c, i) => {
      rows.push(i, i === 1 ? null : `k${i}`, c);
      const value: Record<string, unknown> = {};
      ['n', 'f', 's', 'u'].forEach((f, j) => {
        if (c[j] !== undefined) value[f] = c[j];
      });
      want.push({ ts: i, key: i === 1 ? null : `k${i}`, value });
    });
    const b = rows.take()!;
    assert.deepEqual(
      recordsOf(b).map((r) => ({ ts: r.ts, key: r.key, value: r.value })),
      want,
    );
    assert.equal(b.complete, false, 'a value was undefined');
    assert.equal(b.column('n')?.typed, false, '2^60 is no safe integer: not typed');
    assert.equal(b.column('f')?.typed, false, 'a NaN value is kept, not read as null');
    assert.ok(Number.isNaN(b.column('f')?.get(1)));
    assert.equal(b.column('s')?.typed, false, 'a number in a string field');
    assert.equal(b.column('u')?.type, 'json', 'undeclared mixed values are json');
    assert.equal(rows.take(), undefined);
    // After a take the storage is typed again.
    rows.push(9, 'k', [4, 1.5, 'c', 2]);
    const c = rows.take()!;
    assert.ok(c.column('n') instanceof Float64Column);
    assert.ok(c.column('s') instanceof DictionaryColumn);
    assert.deepEqual(c.value(0), { n: 4, f: 1.5, s: 'c', u: 2 });
    assert.equal(c.column('u')?.type, 'int64');
  });

  for (const [even, odd, type] of [
    [7, 8, 'int64'],
    ['a', 'b', 'string'],
  ] as const)
    it(`takes the columnar path for a ${type} key with numeric aggregates (no row object is read)`, async () => {
      // A batch whose value(i) throws: only the columns may be read.
      const recs: Rec[] = [];
      for (let i = 0; i < 1000; i++)
        recs.push({ ts: i * MIN, key: null, value: { k: i % 2 ? odd : even, v: i % 10, w: i / 4 } });
      const base = batchFromRecords(recs);
      const b: RecordBatch = {
        ...base,
        value: () => {
          throw new Error('row materialised');
        },
      };
      assert.equal(base.column('k')?.type, type);
      const op = new WindowOperator({
        window: { kind: 'tumbling', size: 60 * MIN },
        key: { kind: 'field', path: 'k', get: compilePath('k') },
        aggs: parseAggs('count, sum(v), avg(w), min(v), max(w)'),
      });
      await op.open({ kappa: 1 });
      const out = new ArrayCollector();
      await op.batch(b, out, () => assert.fail('no bad rows'));
      await op.end(out);
      await op.close();
      // 1000 minutes = 17 hours (the last one partial), two keys each.
      assert.equal(out.records.length, 34);
      const first = out.records.find((r) => (r.value as { k: unknown }).k === even && r.ts === 60 * MIN - 1);
      // rows 0,2,…,58 of hour 0
      const rows = Array.from({ length: 30 }, (_, j) => 2 * j);
      assert.deepEqual(first?.value, {
        window_start: 0,
        window_end: 60 * MIN,
        k: even,
        count: 30,
        sum_v: rows.reduce((acc, i) => acc + (i % 10), 0),
        avg_w: rows.reduce((acc, i) => acc + i / 4, 0) / 30,
        min_v: 0,
        max_w: 58 / 4,
      });
    });

  it('fires column-wise: results reach a batch-taking collector as batches of the row records, typed', async () => {
    // 3 keys x 50 hours, fired by one watermark in the middle and by the end of input; one key's
    // max is a string in one window (an untyped column), one window has no delay (null average).
    const recs: Rec[] = [];
    for (let i = 0; i < 3000; i++) {
      const k = ['a', 'é', 'z😀'][i % 3];
      const v = i % 300 === 1 ? null : i % 17;
      recs.push({ ts: i * MIN, key: k, value: { k, v, m: i < 60 && k === 'é' ? 'x' : v } });
    }
    const fire = async (out: ArrayCollector) => {
      const op = new WindowOperator({
        window: { kind: 'tumbling', size: 60 * MIN },
        key: { kind: 'field', path: 'k', get: compilePath('k') },
        aggs: parseAggs('count, avg(v), max(m), first(v)'),
      });
      await op.open({ kappa: 1, schema: { k: 'string' } });
      await op.batch(batchFromRecords(recs.slice(0, 1500)), out, () => assert.fail('no bad rows'));
      await op.watermark(1500 * MIN, out);
      await op.batch(batchFromRecords(recs.slice(1500)), out, () => assert.fail('no bad rows'));
      await op.end(out);
      await op.close();
      return out;
    };
    const rows = await fire(new ArrayCollector());
    const cols = (await fire(new BatchCollector())) as BatchCollector;
    assert.equal(cols.batches, 2);
    assert.equal(rows.records.length, 150);
    assert.deepEqual(cols.records, rows.records);
    assert.deepEqual(cols.watermarks, rows.watermarks);
    // The batch columns: typed where every value is of the column's type (in every batch).
    const typed: Record<string, boolean | undefined> = {};
    const got = new BatchCollector();
    got.batch = (b: RecordBatch) => {
      for (const f of b.fields) typed[f] = (typed[f] ?? true) && b.column(f)?.typed === true;
      assert.equal(b.complete, true);
    };
    await fire(got);
    assert.deepEqual(typed, {
      window_start: true,
      window_end: true,
      k: true,
      count: true,
      avg_v: true,
      max_m: false,
      first_v: true,
    });
  });

  it('spills to LevelDB and reads spilled windows back in the middle of a batch, as the row path does', async () => {
    // 1500 keys x 4 hours with a cache of 100 entries: windows are evicted, spilled (write batches
    // of 1024 are flushed during a run) and loaded again by later batches.
    const recs: Rec[] = [];
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    for (let i = 0; i < 12_000; i++)
      recs.push({
        ts: Math.floor((i / 12_000) * 4 * 60 * MIN + rnd() * 20 * MIN),
        key: null,
        value: { k: `key${Math.floor(rnd() * 1500)}`, v: Math.round(rnd() * 1000) / 8 },
      });
    const steps: Step[] = [];
    for (let i = 0; i < recs.length; i += 2000) {
      const part = recs.slice(i, i + 2000);
      steps.push({ recs: part });
      steps.push({ wm: Math.max(...part.map((r) => r.ts)) });
    }
    const opts: WindowOptions = {
      window: { kind: 'sliding', size: 60 * MIN, slide: 30 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, sum(v), avg(v), max(v), last(v), count_distinct(v) as cd'),
      allowedLateness: 5 * MIN,
      stateCache: 100,
    };
    const rows = await run(opts, steps, 'rows');
    const cols = await run(opts, steps, 'batch');
    assert.ok(cols.records.length > 5_000);
    assert.ok(cols.late.length > 0);
    assert.ok(cols.stats && cols.stats.writes > 2000 && cols.stats.reads > 500, JSON.stringify(cols.stats));
    assert.deepStrictEqual(wire(cols), wire(rows));
  });

  it('GroupTable maps (code, start) pairs to dense ids across growth and reset', () => {
    const t = new GroupTable(2);
    const ids = new Map<string, number>();
    for (let c = 0; c < 50; c++)
      for (let s = 0; s < 40; s++) {
        const start = 1.7e12 + s * 3_600_000;
        assert.equal(t.find(c, start), -1);
        ids.set(`${c}/${s}`, t.add(c, start));
      }
    assert.equal(t.size, 2000);
    for (let c = 0; c < 50; c++)
      for (let s = 0; s < 40; s++) assert.equal(t.find(c, 1.7e12 + s * 3_600_000), ids.get(`${c}/${s}`));
    // `is` confirms a remembered id only while it still names that pair
    assert.equal(t.is(ids.get('7/5') as number, 7, 1.7e12 + 5 * 3_600_000), true);
    assert.equal(t.is(ids.get('7/5') as number, 7, 1.7e12), false);
    assert.equal(t.is(-1, 7, 1.7e12), false);
    t.reset();
    assert.equal(t.size, 0);
    assert.equal(t.is(0, 0, 1.7e12), false);
    assert.equal(t.find(3, 1.7e12), -1);
    assert.equal(t.add(3, 1.7e12), 0);
    assert.equal(t.is(0, 3, 1.7e12), true);
    assert.equal(t.is(0, 0, 1.7e12), false); // id 0 was (0, 1.7e12) before the reset
  });
});

/**
 * Micro-measurement (not asserted; set KAPPA_WINDOW_BENCH=1): records/s of `batch` against
 * `record` on 1M generated records, count/avg/max per key per hour, batches of 8192.
 */
describe('window batch micro-measurement', { skip: process.env.KAPPA_WINDOW_BENCH !== '1' }, () => {
  it('prints records/s of batch and record', async () => {
    const N = 1_000_000;
    const keys = Array.from({ length: 300 }, (_, i) => `K${i}`);
    let seed = 42;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const recs: Rec[] = new Array(N);
    for (let i = 0; i < N; i++)
      recs[i] = {
        ts: 1.7e12 + Math.floor(i * 36) + Math.floor(rnd() * 60_000),
        key: null,
        value: { origin: keys[Math.floor(rnd() * keys.length)], delay: Math.round(rnd() * 300 - 30) },
      };
    const opts = (): WindowOptions => ({
      window: { kind: 'tumbling', size: 3_600_000 },
      key: { kind: 'field', path: 'origin', get: compilePath('origin') },
      aggs: parseAggs('count, avg(delay), max(delay)'),
    });
    const makeBatches = () => {
      const bs: RecordBatch[] = [];
      for (let i = 0; i < N; i += 8192) bs.push(batchFromRecords(recs.slice(i, i + 8192)));
      return bs;
    };
    const out = { record() {}, watermark() {} };
    const time = async (f: (op: WindowOperator) => Promise<void>) => {
      const op = new WindowOperator(opts());
      await op.open({ kappa: 1 });
      const t0 = performance.now();
      await f(op);
      await op.end(out);
      const ms = performance.now() - t0;
      await op.close();
      return ms;
    };
    const byRows = async (op: WindowOperator) => {
      for (let i = 0; i < N; i++) {
        const p = op.record(recs[i], out);
        if (p) await p;
        if (i % 8192 === 8191) await op.watermark(recs[i].ts - 120_000, out);
      }
    };
    const byBatches = (batches: RecordBatch[]) => async (op: WindowOperator) => {
      for (const b of batches) {
        await op.batch(b, out, () => {});
        await op.watermark(b.ts[b.length - 1] - 120_000, out);
      }
    };
    // Best of 3 rounds (the machine is shared): by rows; by batches whose columns (dictionary
    // codes, Float64Array) are built inside the timing, as from a row source; by the same batches
    // again, columns ready, as Arrow batches come.
    let rowMs = Number.POSITIVE_INFINITY;
    let colMs = Number.POSITIVE_INFINITY;
    let prepMs = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 3; round++) {
      rowMs = Math.min(rowMs, await time(byRows));
      const batches = makeBatches();
      colMs = Math.min(colMs, await time(byBatches(batches)));
      prepMs = Math.min(prepMs, await time(byBatches(batches)));
    }
    const rate = (ms: number) => `${(((N / ms) * 1000) / 1e6).toFixed(2)} M records/s (${ms.toFixed(0)} ms)`;
    console.log(`record: ${rate(rowMs)}`);
    console.log(`batch, columns built in the loop: ${rate(colMs)}`);
    console.log(`batch, columns ready: ${rate(prepMs)}`);
  });
});
