import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { UsageError } from '../../src/errors.js';
import { ArrayCollector, BadRecordError, type Collector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { makeAggregator, parseAggs } from '../../src/ops/window/aggregate.js';
import {
  DRAIN_EVERY,
  FIRST_BATCH,
  WindowOperator,
  type WindowOptions,
  type WindowSpec,
} from '../../src/ops/window/operator.js';
import type { Rec } from '../../src/stream/protocol.js';

type Ev = { rec: Rec } | { wm: number };
const MIN = 60_000;
const AGGS = 'count, sum(v), min(v), max(v), count_distinct(v) as distinct';

async function runOp(o: Partial<WindowOptions> & { window: WindowSpec }, events: Ev[]) {
  const late: Rec[] = [];
  const op = new WindowOperator({
    key: { kind: 'field', path: 'k', get: compilePath('k') },
    aggs: parseAggs(AGGS),
    onLate: (r) => late.push(r),
    ...o,
  });
  const out = new ArrayCollector();
  // Check the output watermark promise: no result at or behind an emitted watermark.
  let lastWm = Number.NEGATIVE_INFINITY;
  const checked = {
    record(r: Rec) {
      assert.ok(r.ts > lastWm, `result ts ${r.ts} behind output watermark ${lastWm}`);
      out.record(r);
    },
    watermark(wm: number) {
      assert.ok(wm > lastWm, 'output watermarks increase');
      lastWm = wm;
      out.watermark(wm);
    },
  };
  await op.open({ kappa: 1, schema: { k: 'string', v: 'int64' } });
  try {
    for (const e of events) {
      if ('rec' in e) await op.record(e.rec, checked);
      else await op.watermark(e.wm, checked);
    }
    await op.end(checked);
    assert.equal(op.openWindows, 0);
  } finally {
    await op.close();
  }
  return { results: out.records.map((r) => r.value as Record<string, unknown>), late };
}

/** Plain reference: windows as arrays of records, fired and purged by scanning. */
function reference(spec: WindowSpec, lateness: number, events: Ev[]) {
  interface W {
    k: string;
    s: number;
    e: number;
    m: number;
    recs: Rec[];
    fired: boolean;
  }
  let wins: W[] = [];
  let wm = Number.NEGATIVE_INFINITY;
  const results: Record<string, unknown>[] = [];
  const late: Rec[] = [];
  const emit = (w: W) => {
    const vs = w.recs.map((r) => (r.value as { v: number }).v);
    results.push({
      window_start: w.s,
      window_end: w.e,
      k: w.k,
      count: vs.length,
      sum_v: vs.reduce((a, b) => a + b, 0),
      min_v: Math.min(...vs),
      max_v: Math.max(...vs),
      distinct: new Set(vs).size,
    });
  };
  for (const ev of events) {
    if ('wm' in ev) {
      if (ev.wm <= wm) continue;
      wm = ev.wm;
      for (const w of wins)
        if (!w.fired && w.e - 1 <= wm) {
          emit(w);
          w.fired = true;
        }
      wins = wins.filter((w) => !(w.fired && w.e - 1 + lateness <= wm));
      continue;
    }
    const r = ev.rec;
    const k = (r.value as { k: string }).k;
    if (spec.kind === 'session') {
      const mine = wins.filter((w) => w.k === k && w.s < r.ts + spec.gap && r.ts < w.e);
      const s = Math.min(r.ts, ...mine.map((w) => w.s));
      const m = Math.max(r.ts, ...mine.map((w) => w.m));
      const e = m + spec.gap;
      if (e - 1 + lateness <= wm) {
        late.push(r);
        continue;
      }
      const merged: W = { k, s, e, m, recs: [...mine.flatMap((w) => w.recs), r], fired: false };
      wins = wins.filter((w) => !mine.includes(w));
      wins.push(merged);
      if (mine.some((w) => w.fired) || e - 1 <= wm) {
        merged.fired = true;
        emit(merged);
      }
      continue;
    }
    const size = spec.size;
    const slide = spec.kind === 'sliding' ? spec.slide : spec.size;
    let isLate = false;
    for (let s = Math.floor(r.ts / slide) * slide; s > r.ts - size; s -= slide) {
      const e = s + size;
      if (e - 1 + lateness <= wm) {
        isLate = true;
        continue;
      }
      let w = wins.find((x) => x.k === k && x.s === s);
      if (!w) {
        w = { k, s, e, m: r.ts, recs: [], fired: false };
        wins.push(w);
      }
      w.recs.push(r);
      if (w.fired || e - 1 <= wm) {
        w.fired = true;
        emit(w);
      }
    }
    if (isLate) late.push(r);
  }
  for (const w of wins) if (!w.fired) emit(w);
  return { results, late };
}

const canon = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();

/** Records in ts order, shuffled with bounded disorder, with watermarks that are sometimes wrong. */
const eventsArb = fc
  .record({
    recs: fc.array(
      fc.record({
        k: fc.constantFrom('a', 'b', 'c'),
        t: fc.integer({ min: 0, max: 600 }),
        v: fc.integer({ min: -5, max: 20 }),
        jitter: fc.integer({ min: 0, max: 90 }),
      }),
      { maxLength: 40 },
    ),
    bound: fc.constantFrom(0, 20, 60),
    every: fc.integer({ min: 1, max: 6 }),
  })
  .map(({ recs, bound, every }) => {
    const sorted = [...recs].sort((a, b) => a.t + a.jitter - (b.t + b.jitter));
    const events: Ev[] = [];
    let max = Number.NEGATIVE_INFINITY;
    sorted.forEach((x, i) => {
      const ts = x.t * MIN + i; // distinct times
      events.push({ rec: { ts, key: null, value: { k: x.k, v: x.v } } });
      max = Math.max(max, ts);
      if (i % every === every - 1) events.push({ wm: max - bound * MIN - 1 });
    });
    return events;
  });

for (const [name, spec] of [
  ['sliding 2h,30m', { kind: 'sliding', size: 120 * MIN, slide: 30 * MIN }],
  ['tumbling 1h', { kind: 'tumbling', size: 60 * MIN }],
  ['session 30m', { kind: 'session', gap: 30 * MIN }],
] as [string, WindowSpec][]) {
  describe(`window ${name} (property: matches the reference)`, () => {
    it('gives the same results and late records for shuffled input, any lateness and cache size', async () => {
      await fc.assert(
        fc.asyncProperty(
          eventsArb,
          fc.constantFrom(0, 10 * MIN, 60 * MIN),
          fc.constantFrom(1, 2, 1000),
          async (events, lateness, cache) => {
            const got = await runOp({ window: spec, allowedLateness: lateness, stateCache: cache }, events);
            const want = reference(spec, lateness, events);
            assert.deepEqual(canon(got.results), canon(want.results));
            assert.deepEqual(canon(got.late), canon(want.late));
          },
        ),
        { numRuns: 60 },
      );
    });
  });
}

describe('window operator', () => {
  it('fires tumbling windows on the watermark with ts = end - 1 and epoch alignment plus offset', async () => {
    const H = 60 * MIN;
    const r = (ts: number, v: number): Ev => ({ rec: { ts, key: null, value: { k: 'x', v } } });
    const { results } = await runOp({ window: { kind: 'tumbling', size: H, offset: 30 * MIN } }, [
      r(0, 1),
      r(29 * MIN, 2),
      r(30 * MIN, 3),
      { wm: 30 * MIN - 1 },
      r(89 * MIN, 4),
    ]);
    assert.deepEqual(
      results.map((x) => [x.window_start, x.window_end, x.count, x.sum_v]),
      [
        [-30 * MIN, 30 * MIN, 2, 3],
        [30 * MIN, 90 * MIN, 2, 7],
      ],
    );
  });

  it('force-fires a session at --max-session and emits early results', async () => {
    const evs: Ev[] = [];
    for (let i = 0; i < 10; i++)
      evs.push({ rec: { ts: i * 10 * MIN, key: null, value: { k: 'bot', v: i } } });
    const { results } = await runOp(
      { window: { kind: 'session', gap: 30 * MIN, maxSession: 40 * MIN } },
      evs,
    );
    assert.deepEqual(
      results.map((x) => [x.window_start, x.window_end, x.count]),
      [
        [0, 40 * MIN, 4],
        [40 * MIN, 80 * MIN, 4],
        [80 * MIN, 120 * MIN, 2],
      ],
    );
    const early = await runOp({ window: { kind: 'tumbling', size: 60 * MIN }, early: 20 * MIN }, [
      { rec: { ts: 5 * MIN, key: null, value: { k: 'a', v: 1 } } },
      { wm: 25 * MIN },
      { rec: { ts: 30 * MIN, key: null, value: { k: 'a', v: 2 } } },
      { wm: 41 * MIN },
      { wm: 50 * MIN },
    ]);
    assert.deepEqual(
      early.results.map((x) => x.count),
      [1, 2, 2],
    );
  });

  it('computes every aggregate, and serialises sketches through a spilling cache', async () => {
    const evs: Ev[] = [];
    for (let i = 0; i < 2000; i++)
      evs.push({
        rec: { ts: i, key: String(i % 7), value: { k: `k${i % 7}`, v: i % 100, s: `s${i % 13}` } },
      });
    const run = (cache: number) =>
      runOp(
        {
          window: { kind: 'tumbling', size: 1000 },
          key: { kind: 'record' },
          aggs: parseAggs(
            'count, avg(v), first(s), last(s), approx_count_distinct(v) as hll, p50(v), quantile(v, 0.9) as q9',
          ),
          stateCache: cache,
        },
        evs,
      );
    const big = await run(1000);
    const small = await run(1);
    assert.deepEqual(small.results, big.results);
    const w0 = big.results.find((x) => x.key === '0' && x.window_start === 0)!;
    assert.equal(w0.count, 143);
    assert.equal(w0.first_s, 's0');
    assert.ok(Math.abs((w0.hll as number) - 100) <= 10, `hll ${w0.hll}`);
    assert.ok(Math.abs((w0.p50_v as number) - 50) <= 5, `p50 ${w0.p50_v}`);
    assert.ok(Math.abs((w0.q9 as number) - 90) <= 5, `q9 ${w0.q9}`);
  });
});

/** Result of one aggregate over `values` through the accumulator (added in two halves, merged). */
function aggOver(agg: string, values: number[]): unknown {
  const g = makeAggregator(parseAggs(agg)[0]);
  const half = Math.floor(values.length / 2);
  let a = g.create();
  let b = g.create();
  values.forEach((v, i) => {
    if (i < half) a = g.add(a, v, i);
    else b = g.add(b, v, i);
  });
  // Through the state codec, as a spilled window would be.
  const merged = g.merge(g.decode(JSON.parse(JSON.stringify(g.encode(a)))), b);
  return g.result(merged);
}

describe('exact quantiles (DuckDB definitions)', () => {
  it('median of [29, 29, 218] is 29 (t-digest said 92)', () => {
    assert.equal(aggOver('median(v)', [29, 29, 218]), 29);
    assert.equal(aggOver('p50(v)', [29, 218, 29]), 29);
    assert.equal(aggOver('quantile_disc(v, 0.5)', [218, 29, 29]), 29);
  });

  it('median, quantile_cont, quantile_disc and quantile equal DuckDB on random small windows', async () => {
    const con = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      const levels = ['0', '0.1', '0.25', '0.3', '0.5', '0.75', '0.9', '0.95', '0.99', '1'];
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(fc.integer({ min: -50, max: 50 }), fc.double({ min: -1e6, max: 1e6, noNaN: true })),
            {
              minLength: 1,
              maxLength: 30,
            },
          ),
          fc.constantFrom(...levels),
          async (values, q) => {
            const list = values.map((v) => `'${v}'::DOUBLE`).join(','); // text: no DECIMAL literal rounding
            const sql = `SELECT median(x) m, quantile_cont(x, ${q}) c, quantile_disc(x, ${q}) d, quantile(x, ${q}) qq
              FROM (SELECT unnest([${list}]) x)`;
            const row = (await con.runAndReadAll(sql)).getRowObjectsJson()[0] as Record<string, number>;
            // -0 and 0 are one value (JSON writes both as 0).
            const got = (agg: string) => (aggOver(agg, values) as number) + 0;
            assert.equal(got('median(v)'), Number(row.m));
            assert.equal(got(`quantile_cont(v, ${q})`), Number(row.c));
            assert.equal(got(`quantile_disc(v, ${q})`), Number(row.d));
            assert.equal(got(`quantile(v, ${q})`), Number(row.qq));
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      con.closeSync();
    }
  });

  it('names and types: exact quantiles of an int64 field are float64 (cont) or int64 (disc)', () => {
    const specs = parseAggs(
      'median(d), quantile_cont(d, 0.9), quantile_disc(d, 0.9), p99(d), approx_quantile(d, 0.5)',
    );
    assert.deepEqual(
      specs.map((s) => s.name),
      ['median_d', 'quantile_cont_d_90', 'quantile_disc_d_90', 'p99_d', 'approx_quantile_d_50'],
    );
    assert.deepEqual(
      specs.map((s) => makeAggregator(s).type({ d: 'int64' })),
      ['float64', 'float64', 'int64', 'float64', 'float64'],
    );
  });
});

describe('window operator: sessions, back-pressure, keys', () => {
  it('adds to a long session in place: 16k records with count_distinct merge no accumulator', async () => {
    const op = new WindowOperator({
      window: { kind: 'session', gap: 30 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, count_distinct(v) as d'),
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    const t0 = Date.now();
    try {
      for (let i = 0; i < 16_000; i++) await op.record({ ts: i * 1000, value: { k: 'bot', v: i } }, out);
      await op.end(out);
      assert.equal(op.merges, 0, 'no accumulator merges for records joining one session');
    } finally {
      await op.close();
    }
    assert.deepEqual(
      out.records.map((r) => r.value),
      [{ window_start: 0, window_end: 15_999_000 + 30 * MIN, k: 'bot', count: 16_000, d: 16_000 }],
    );
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  it('merges the sessions a record bridges (and counts it)', async () => {
    const op = new WindowOperator({
      window: { kind: 'session', gap: 20 * MIN },
      key: { kind: 'record' },
      aggs: parseAggs('count, count_distinct(v) as d, median(v)'),
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    try {
      for (const [t, v] of [
        [0, 1],
        [30, 2],
        [15, 3],
      ])
        await op.record({ ts: t * MIN, key: 'a', value: { v } }, out);
      await op.end(out);
      assert.equal(op.merges, 1);
    } finally {
      await op.close();
    }
    assert.deepEqual(
      out.records.map((r) => r.value),
      [{ window_start: 0, window_end: 50 * MIN, key: 'a', count: 3, d: 3, median_v: 2 }],
    );
  });

  it('awaits out.drain() every few thousand results while one watermark fires many windows', async () => {
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count'),
    });
    const n = 3 * DRAIN_EVERY + 10;
    let drains = 0;
    let emitted = 0;
    let maxBetween = 0;
    let since = 0;
    const out: Collector = {
      record() {
        emitted++;
        since++;
        maxBetween = Math.max(maxBetween, since);
      },
      watermark() {},
      async drain() {
        drains++;
        since = 0;
        await new Promise((r) => setImmediate(r));
      },
    };
    await op.open({ kappa: 1 });
    try {
      for (let i = 0; i < n; i++) await op.record({ ts: 5, value: { k: i } }, out);
      await op.watermark(2 * MIN, out);
    } finally {
      await op.close();
    }
    assert.equal(emitted, n);
    assert.ok(drains >= 3, `drain awaited ${drains} times`);
    assert.ok(maxBetween <= DRAIN_EVERY + 1, `${maxBetween} results between drains`);
  });

  const keyed = (late?: (r: Rec) => void, bad?: (r: Rec, why: string) => void) =>
    new WindowOperator({
      window: { kind: 'tumbling', size: MIN },
      key: { kind: 'field', path: 'origin', get: compilePath('origin') },
      aggs: parseAggs('count'),
      onLate: late,
      onBad: bad,
    });

  it('a record without the --key field is a bad record; held records are reported once the field is seen', async () => {
    const bad: string[] = [];
    const op = keyed(undefined, (r, why) => bad.push(`${r.ts} ${why}`));
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    try {
      await op.record({ ts: 1, value: { dest: 'x' } }, out);
      await op.record({ ts: 2, value: { origin: 'SFO' } }, out);
      assert.deepEqual(bad, ["1 the --key field 'origin' is missing from the record"]);
      assert.throws(() => op.record({ ts: 3, value: { dest: 'y' } }, out), BadRecordError);
      await op.record({ ts: 4, value: { origin: null } }, out);
      await op.end(out);
    } finally {
      await op.close();
    }
    assert.deepEqual(
      out.records.map((r) => [r.value, r.key]),
      [
        [{ window_start: 0, window_end: MIN, origin: 'SFO', count: 1 }, 'SFO'],
        [{ window_start: 0, window_end: MIN, origin: null, count: 1 }, null],
      ],
    );
  });

  it('a --key field in no record of the first batch is a usage error naming the field and the fields seen', async () => {
    const op = keyed();
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    try {
      await op.record({ ts: 1, value: { orig: 'SFO', delay: 3 } }, out);
      await assert.rejects(
        async () => op.end(out),
        (e: Error) => e instanceof UsageError && /'origin'/.test(e.message) && /orig, delay/.test(e.message),
      );
    } finally {
      await op.close();
    }
    const op2 = keyed();
    await op2.open({ kappa: 1 });
    try {
      assert.throws(() => {
        for (let i = 0; i < FIRST_BATCH; i++) op2.record({ ts: i, value: { x: i } }, out);
      }, UsageError);
    } finally {
      await op2.close();
    }
  });

  it('key columns keep their input type in the output schema', async () => {
    const schemaFor = async (key: WindowOptions['key'], schema: Record<string, 'int64' | 'string'>) => {
      const op = new WindowOperator({
        window: { kind: 'tumbling', size: MIN },
        key,
        aggs: parseAggs('count'),
      });
      try {
        return (await op.open({ kappa: 1, schema })).schema ?? {};
      } finally {
        await op.close();
      }
    };
    const delay = await schemaFor(
      { kind: 'field', path: 'delay', get: compilePath('delay') },
      { delay: 'int64' },
    );
    assert.equal(delay.delay, 'int64');
    const undeclared = await schemaFor({ kind: 'field', path: 'delay', get: compilePath('delay') }, {});
    assert.equal(
      undeclared.delay,
      undefined,
      'an untyped key is left for the sink to infer, not declared string',
    );
    const rec = await schemaFor({ kind: 'record' }, {});
    assert.equal(rec.key, 'string');
  });

  it('calls onLate with the watermark for a late record (the command fails or writes it)', async () => {
    const late: number[] = [];
    const op = keyed((r) => late.push(r.ts));
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    try {
      await op.record({ ts: 5 * MIN, value: { origin: 'a' } }, out);
      await op.watermark(3 * MIN, out);
      await op.record({ ts: MIN, value: { origin: 'a' } }, out);
      await op.end(out);
    } finally {
      await op.close();
    }
    assert.deepEqual(late, [MIN]);
    assert.equal(op.late, 1);
  });
});
