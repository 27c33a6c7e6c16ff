import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ArrayCollector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator, type WindowOptions, type WindowSpec } from '../../src/ops/window/operator.js';
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
