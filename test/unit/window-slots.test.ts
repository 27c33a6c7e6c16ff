/**
 * The window operator's slot table (issue 14): open windows of the batch path held in typed arrays
 * ("fresh" slots, no state entry or timer until they fire, spill past --state-cache or a snapshot
 * is taken). Checked against a plain reference implementation written here (not against kappa's
 * own output), with random records, window kinds, aggregates, cache sizes that force spilling,
 * snapshots in the middle and batches that need the aggregators' own accumulators; and the hash
 * table itself against a Map.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ArrayCollector, BadRecordError } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { SlotTable } from '../../src/ops/window/columnar.js';
import { WindowOperator, type WindowSpec } from '../../src/ops/window/operator.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { writeSavepoint } from '../../src/state/savepoint/write.js';
import { batchFromRecords } from '../../src/stream/batch.js';
import type { Rec } from '../../src/stream/protocol.js';
import { tempDir } from '../helpers.js';

const MIN = 60_000;

type Step = { recs: Rec[] } | { wm: number } | { snapshot: true };

interface RefWin {
  k: string;
  s: number;
  e: number;
  vs: (number | null | undefined)[];
  ss: (string | undefined)[];
  fired: boolean;
}

/** The first smallest (sign -1) or largest (sign 1) element, or null. */
function best<T extends number | string>(xs: T[], sign: number): T | null {
  let b: T | null = null;
  for (const x of xs) if (b === null || (sign < 0 ? x < b : x > b)) b = x;
  return b;
}

/** Plain reference: every window's rows kept, aggregates computed from them when emitted. */
function reference(
  spec: WindowSpec & { kind: 'tumbling' | 'sliding' },
  lateness: number,
  aggs: string[],
  steps: Step[],
) {
  let wm = Number.NEGATIVE_INFINITY;
  let wins: RefWin[] = [];
  const results: unknown[] = [];
  let late = 0;
  const slide = spec.kind === 'sliding' ? spec.slide : spec.size;
  const offset = spec.offset ?? 0;
  const value = (w: RefWin): Record<string, unknown> => {
    const nums = w.vs.filter((v): v is number => typeof v === 'number');
    const strs = w.ss.filter((v): v is string => typeof v === 'string');
    const out: Record<string, unknown> = { window_start: w.s, window_end: w.e, k: JSON.parse(w.k) };
    for (const a of aggs) {
      if (a === 'count') out.count = w.vs.length;
      else if (a === 'count(v)') out.count_v = nums.length;
      else if (a === 'sum(v)') out.sum_v = nums.reduce((x, y) => x + y, 0);
      else if (a === 'avg(v)')
        out.avg_v = nums.length === 0 ? null : nums.reduce((x, y) => x + y, 0) / nums.length;
      else if (a === 'min(v)') out.min_v = best(nums, -1);
      else if (a === 'max(v)') out.max_v = best(nums, 1);
      else if (a === 'max(s)') out.max_s = best(strs, 1);
    }
    return out;
  };
  const fire = () => {
    for (const w of wins)
      if (!w.fired && w.e - 1 <= wm) {
        w.fired = true;
        results.push(value(w));
      }
    wins = wins.filter((w) => !(w.fired && w.e - 1 + lateness <= wm));
  };
  for (const st of steps) {
    if ('snapshot' in st) continue;
    if ('wm' in st) {
      if (st.wm > wm) {
        wm = st.wm;
        fire();
      }
      continue;
    }
    for (const r of st.recs) {
      const v = r.value as { k: string; v?: number | null; s?: string };
      const k = JSON.stringify(v.k);
      const first = r.ts - ((((r.ts - offset) % slide) + slide) % slide);
      let isLate = false;
      for (let s = first; s > r.ts - spec.size; s -= slide) {
        const e = s + spec.size;
        if (e - 1 + lateness <= wm) {
          isLate = true;
          continue;
        }
        let w = wins.find((x) => x.k === k && x.s === s);
        if (!w) {
          w = { k, s, e, vs: [], ss: [], fired: false };
          wins.push(w);
        }
        w.vs.push(v.v);
        w.ss.push(v.s);
        if (w.fired || e - 1 <= wm) {
          w.fired = true;
          results.push(value(w));
        }
      }
      if (isLate) late++;
    }
  }
  wm = Number.POSITIVE_INFINITY;
  fire();
  return { results, late };
}

const AGG_NAMES = ['count', 'count(v)', 'sum(v)', 'avg(v)', 'min(v)', 'max(v)', 'max(s)'];
const OUT_NAMES: Record<string, string> = {
  count: 'count',
  'count(v)': 'count_v',
  'sum(v)': 'sum_v',
  'avg(v)': 'avg_v',
  'min(v)': 'min_v',
  'max(v)': 'max_v',
  'max(s)': 'max_s',
};

const canon = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();

/** Runs the operator's batch path over the steps (snapshots taken and read in the middle). */
async function runBatches(
  spec: WindowSpec,
  lateness: number,
  aggs: string[],
  stateCache: number,
  steps: Step[],
) {
  let late = 0;
  const op = new WindowOperator({
    window: spec,
    key: { kind: 'field', path: 'k', get: compilePath('k') },
    aggs: parseAggs(aggs.map((a) => `${a} as ${OUT_NAMES[a]}`).join(', ')),
    allowedLateness: lateness,
    stateCache,
    onLate: () => {
      late++;
    },
  });
  const out = new ArrayCollector();
  await op.open({ kappa: 1 });
  let snapshotRows = 0;
  for (const st of steps) {
    if ('snapshot' in st) {
      const snap = await op.snapshot();
      if (snap.columns) snapshotRows += snap.columns.length;
      for await (const _ of snap.entries) snapshotRows++;
      continue;
    }
    if ('wm' in st) {
      await op.watermark(st.wm, out);
      continue;
    }
    await op.batch(batchFromRecords(st.recs), out, (_row, reason) => {
      throw new BadRecordError(reason);
    });
  }
  await op.end(out);
  const counters = op.counters();
  await op.close();
  return { results: out.records.map((r) => r.value), late, counters, snapshotRows };
}

const stepsArb = fc
  .record({
    recs: fc.array(
      fc.record({
        k: fc.constantFrom('a', 'b', 'c', 'd'),
        t: fc.integer({ min: 0, max: 600 }),
        v: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: -50, max: 50 }) },
          { weight: 3, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }) },
          { weight: 1, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
        // A string field in some batches only: max(s) then needs the aggregator's accumulator.
        s: fc.option(fc.constantFrom('p', 'q', 'r'), { freq: 4 }),
        jitter: fc.integer({ min: 0, max: 90 }),
        cut: fc.integer({ min: 0, max: 5 }),
        snap: fc.integer({ min: 0, max: 15 }),
      }),
      { maxLength: 80 },
    ),
    bound: fc.constantFrom(0, 20, 60),
    every: fc.integer({ min: 1, max: 15 }),
  })
  .map(({ recs, bound, every }) => {
    const sorted = [...recs].sort((a, b) => a.t + a.jitter - (b.t + b.jitter));
    const steps: Step[] = [];
    let cur: Rec[] = [];
    let max = Number.NEGATIVE_INFINITY;
    const flush = () => {
      if (cur.length > 0) steps.push({ recs: cur });
      cur = [];
    };
    sorted.forEach((x, i) => {
      const ts = x.t * MIN + (i % 5);
      const value: Record<string, unknown> = { k: x.k };
      if (x.v !== undefined) value.v = x.v;
      if (x.s !== null) value.s = x.s;
      cur.push({ ts, key: null, value });
      max = Math.max(max, ts);
      if (x.cut === 0) flush();
      if (x.snap === 0) {
        flush();
        steps.push({ snapshot: true });
      }
      if (i % every === every - 1) {
        flush();
        steps.push({ wm: max - bound * MIN - 1 });
      }
    });
    flush();
    return steps;
  });

const windowArb = fc.oneof(
  fc.record({
    kind: fc.constant('tumbling' as const),
    size: fc.constantFrom(30 * MIN, 60 * MIN),
    offset: fc.constantFrom(0, 7 * MIN),
  }),
  fc.record({
    kind: fc.constant('sliding' as const),
    size: fc.constantFrom(60 * MIN, 120 * MIN),
    slide: fc.constantFrom(20 * MIN, 30 * MIN),
    offset: fc.constantFrom(0, 7 * MIN),
  }),
);

describe('window slot table (batch path) against a plain reference', () => {
  it('gives the reference results and late records for random windows, aggregates, cache sizes and snapshots', async () => {
    await fc.assert(
      fc.asyncProperty(
        stepsArb,
        windowArb,
        fc.subarray(AGG_NAMES, { minLength: 1 }),
        fc.constantFrom(0, 0, 10 * MIN),
        fc.constantFrom(1, 2, 5, 1000),
        async (steps, spec, aggs, lateness, cache) => {
          const got = await runBatches(spec, lateness, aggs, cache, steps);
          const want = reference(spec, lateness, aggs, steps);
          assert.deepEqual(canon(got.results), canon(want.results));
          assert.equal(got.late, want.late);
          assert.equal(got.counters['open windows'], 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('holds new windows in the slot table: no state entry or timer until they fire', async () => {
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 60 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, avg(v), max(v)'),
      stateCache: 1000,
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    const recs: Rec[] = [];
    for (let i = 0; i < 300; i++) recs.push({ ts: i * MIN, key: null, value: { k: `k${i % 7}`, v: i } });
    await op.batch(batchFromRecords(recs), out, () => {});
    const c = op.counters();
    assert.equal(c['open windows'], 35); // 5 hours x 7 keys
    assert.equal(c['state cached'], 0);
    assert.equal((op as unknown as { timers: { size: number } }).timers.size, 0);
    await op.watermark(2 * 60 * MIN - 1, out);
    assert.equal(out.records.length, 14);
    const first = out.records[0].value as Record<string, unknown>;
    assert.deepEqual(first, {
      window_start: 0,
      window_end: 60 * MIN,
      k: 'k0',
      count: 9,
      avg_v: 28,
      max_v: 56,
    });
    // A snapshot from memory copies the fresh slots as they are: 21 open windows in the columns,
    // and they stay fresh (no state entry, no timer) for the rest of the run.
    const snap = await op.snapshot();
    assert.equal(snap.columns?.length, 21);
    assert.equal(op.counters()['state cached'], 0);
    assert.equal((op as unknown as { timers: { size: number } }).timers.size, 0);
    // Key k3, hour 2: minutes 122..179 with i % 7 === 3, i.e. 122, 129, ..., 178 (9 rows).
    const cols = snap.columns!;
    const r = cols.key.findIndex((k, i) => k === JSON.stringify('k3') && cols.windowStart[i] === 120 * MIN);
    assert.ok(r >= 0, 'the window (k3, hour 2) is in the snapshot');
    assert.equal(cols.windowEnd[r], 180 * MIN);
    assert.equal(cols.timer[r], 180 * MIN - 1);
    assert.deepEqual(JSON.parse(cols.value[r]), {
      max_ts: 178 * MIN,
      fired: false,
      changed: true,
      next_early: null,
      acc: { count: 9, avg_v: [1350, 9], max_v: 178 },
    });
    // One more record for (k3, hour 2): the next snapshot must not reuse that window's old text.
    await op.batch(
      batchFromRecords([{ ts: 179 * MIN, key: null, value: { k: 'k3', v: 1000 } }]),
      out,
      () => {},
    );
    const snap2 = (await op.snapshot()).columns!;
    const at = (c: typeof cols, k: string, h: number) =>
      JSON.parse(
        c.value[c.key.findIndex((x, i) => x === JSON.stringify(k) && c.windowStart[i] === h * 60 * MIN)],
      );
    assert.deepEqual(at(snap2, 'k3', 2), {
      max_ts: 179 * MIN,
      fired: false,
      changed: true,
      next_early: null,
      acc: { count: 10, avg_v: [2350, 10], max_v: 1000 },
    });
    assert.deepEqual(at(snap2, 'k4', 3), at(cols, 'k4', 3));
    await op.end(out);
    assert.equal(out.records.length, 35);
    await op.close();
  });

  it('a savepoint taken while windows are fresh slots restores into a new operator that finishes like the reference', async () => {
    const spec: WindowSpec = { kind: 'sliding', size: 60 * MIN, slide: 20 * MIN };
    const aggs = ['count', 'sum(v)', 'avg(v)', 'min(v)', 'max(v)'];
    const mk = (stateCache: number) =>
      new WindowOperator({
        window: spec,
        key: { kind: 'field', path: 'k', get: compilePath('k') },
        aggs: parseAggs(aggs.map((a) => `${a} as ${OUT_NAMES[a]}`).join(', ')),
        stateCache,
      });
    const recs: Rec[] = [];
    for (let i = 0; i < 400; i++)
      recs.push({ ts: i * 3 * MIN + (i % 7), key: null, value: { k: `k${i % 5}`, v: (i * 37) % 101 } });
    const steps: Step[] = [];
    for (let i = 0; i < recs.length; i += 50) {
      steps.push({ recs: recs.slice(i, i + 50) });
      steps.push({ wm: recs[Math.min(i + 49, recs.length - 1)].ts - 90 * MIN });
    }
    const want = reference(spec, 0, aggs, steps);
    for (const cache of [1000, 3]) {
      const t = tempDir();
      const first = mk(cache);
      const second = mk(cache);
      try {
        const out = new ArrayCollector();
        await first.open({ kappa: 1 });
        const half = steps.length / 2;
        for (const st of steps.slice(0, half))
          if ('recs' in st) await first.batch(batchFromRecords(st.recs), out, () => {});
          else if ('wm' in st) await first.watermark(st.wm, out);
        const open = first.openWindows;
        assert.ok(open > 10, `open windows ${open}`);
        const snap = await first.snapshot();
        const sp = join(t.dir, 'sp');
        await writeSavepoint(sp, {
          metadata: { pipeline: 'p', maxKeyGroups: 128 },
          operators: [{ uid: 'w', ...snap }],
        });
        const saved = await openSavepoint(sp);
        await second.open({ kappa: 1 });
        await second.restore({ ...saved.operator('w')!, entries: saved.entries('w'), maxKeyGroups: 128 });
        assert.equal(second.openWindows, open);
        // Restored into the slot table (issue 14), not as state entries with timers, while the
        // windows fit --state-cache; past it they are all state entries (which spill).
        const c = second.counters();
        if (cache === 1000) {
          assert.equal(second.freshWindows, open, 'restored windows are fresh slots');
          assert.equal(c['state cached'] + c['state spilled'], 0, 'no state entry');
        } else {
          assert.equal(second.freshWindows, 0, 'past --state-cache: no fresh slot');
          assert.ok(c['state spilled'] > 0, 'state entries, spilled');
        }
        for (const st of steps.slice(half))
          if ('recs' in st) await second.batch(batchFromRecords(st.recs), out, () => {});
          else if ('wm' in st) await second.watermark(st.wm, out);
        await second.end(out);
        assert.deepEqual(canon(out.records.map((r) => r.value)), canon(want.results), `cache ${cache}`);
      } finally {
        await first.close();
        await second.close();
        t.cleanup();
      }
    }
  });

  it('spills to LevelDB past --state-cache', async () => {
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 60 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, sum(v)'),
      stateCache: 10,
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    const recs: Rec[] = [];
    for (let i = 0; i < 200; i++) recs.push({ ts: i * MIN, key: null, value: { k: `k${i % 20}`, v: 1 } });
    await op.batch(batchFromRecords(recs), out, () => {});
    const c = op.counters();
    assert.ok(c['state spilled'] > 0, `spilled ${c['state spilled']}`);
    assert.ok(c['state cached'] <= 10);
    await op.end(out);
    assert.equal(out.records.length, 80);
    assert.equal(
      out.records.reduce((n, r) => n + ((r.value as { count: number }).count ?? 0), 0),
      200,
    );
    await op.close();
  });
});

describe('window slot table: key ids', () => {
  it('drops the key ids of keys with no open window although the table is never empty', async () => {
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 60 * MIN },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, sum(v)'),
      stateCache: 1_000_000,
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    // Hour h has 1000 keys never seen before; the watermark fires hour h-1 only, so hour h's
    // windows stay open and the slot table is never empty.
    const hours = 40;
    for (let h = 0; h < hours; h++) {
      const recs: Rec[] = [];
      for (let i = 0; i < 1000; i++)
        recs.push({ ts: h * 60 * MIN + i, key: null, value: { k: `h${h}-${i}`, v: i } });
      await op.batch(batchFromRecords(recs), out, () => {});
      await op.watermark(h * 60 * MIN - 1, out);
    }
    const ids = (op as unknown as { keyStrOf: string[] }).keyStrOf.length;
    assert.ok(ids <= 4096 + 2 * 1000, `${ids} key ids held for 1000 open windows`);
    await op.end(out);
    assert.equal(out.records.length, hours * 1000);
    // Every window fired once, with its own key's values (the renumbered ids kept the right keys).
    const seen = new Set<string>();
    for (const r of out.records) {
      const v = r.value as { k: string; count: number; sum_v: number; window_start: number };
      const [h, i] = v.k.slice(1).split('-').map(Number);
      assert.equal(v.window_start, h * 60 * MIN);
      assert.equal(v.count, 1);
      assert.equal(v.sum_v, i);
      seen.add(v.k);
    }
    assert.equal(seen.size, hours * 1000);
    await op.close();
  });
});

describe('SlotTable', () => {
  it('finds, adds and removes (backward-shift deletion, reused ids) like a Map', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 30 })), {
          maxLength: 600,
        }),
        (ops) => {
          const t = new SlotTable(4);
          const m = new Map<string, number>();
          for (const [add, kid, h] of ops) {
            const start = h * 3_600_000 + 1.7e12;
            const id = `${kid}/${start}`;
            const g = t.find(kid, start);
            assert.equal(g, m.get(id) ?? -1);
            if (add && g < 0) {
              const n = t.add(kid, start);
              assert.ok(![...m.values()].includes(n), 'a live slot id handed out twice');
              m.set(id, n);
            } else if (!add && g >= 0) {
              t.remove(g);
              m.delete(id);
            }
            assert.equal(t.size, m.size);
          }
          for (const [id, g] of m) {
            const [kid, start] = id.split('/').map(Number);
            assert.equal(t.find(kid, start), g);
            assert.ok(t.is(g, kid, start));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps its lazily built hash index right when finds come rarely (adds, removes, clears and key renumbering before, between and after)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('add', 'add', 'remove', 'find', 'clear', 'remap'),
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: 30 }),
            fc.nat(),
          ),
          { maxLength: 600, size: 'max' },
        ),
        (ops) => {
          const t = new SlotTable(4);
          const m = new Map<string, number>();
          for (const [op, kid, h, pick] of ops) {
            const start = h * 3_600_000 + 1.7e12;
            const id = `${kid}/${start}`;
            if (op === 'add' && !m.has(id)) {
              const n = t.add(kid, start);
              assert.ok(![...m.values()].includes(n), 'a live slot id handed out twice');
              m.set(id, n);
            } else if (op === 'remove' && m.size > 0) {
              const [rid, g] = [...m][pick % m.size];
              t.remove(g);
              m.delete(rid);
            } else if (op === 'find') assert.equal(t.find(kid, start), m.get(id) ?? -1);
            else if (op === 'clear') {
              t.clear();
              m.clear();
            } else if (op === 'remap') {
              // key ids renumbered pairwise (0 <-> 1, 2 <-> 3, …), as compactKeyIds renumbers them
              t.remapKids((k) => k ^ 1);
              const next = new Map<string, number>();
              for (const [rid, g] of m) {
                const [k, st] = rid.split('/').map(Number);
                next.set(`${k ^ 1}/${st}`, g);
              }
              m.clear();
              for (const [rid, g] of next) m.set(rid, g);
            }
            assert.equal(t.size, m.size);
          }
          for (const [id, g] of m) {
            const [kid, start] = id.split('/').map(Number);
            assert.equal(t.find(kid, start), g);
            assert.ok(t.is(g, kid, start));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('builds no hash index while every find is answered by the key bound (new windows in time order)', () => {
    const t = new SlotTable(4);
    const live: number[] = [];
    for (let h = 0; h < 50; h++) {
      for (let kid = 0; kid < 20; kid++) {
        const s = h * 3_600_000;
        assert.equal(t.find(kid, s), -1);
        live.push(t.add(kid, s));
      }
      if (h % 5 === 4) for (const g of live.splice(0, live.length - 20)) t.remove(g);
    }
    assert.equal(t.indexed, false);
    assert.equal(t.indexBuilds, 0);
    assert.equal(t.size, 20);
    // A start at or below a key's bound probes: the index is built once, from the live slots.
    assert.equal(t.find(3, 49 * 3_600_000), live[3]);
    assert.equal(t.find(3, 48 * 3_600_000), -1);
    assert.equal(t.indexBuilds, 1);
  });
});
