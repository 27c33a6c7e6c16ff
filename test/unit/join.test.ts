/**
 * The join operator cores (src/ops/join/) against independent nested-loop references, on random
 * input shuffled within a bounded out-of-orderness with valid watermarks, and the two-input runtime
 * (src/stream/two-inputs.ts) on hand-written streams: barrier alignment, stop lines, back-pressure,
 * idleness.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JoinType } from '../../src/ops/join/fields.js';
import { parseOn } from '../../src/ops/join/fields.js';
import { LookupJoinOperator } from '../../src/ops/join/lookup.js';
import {
  AsOfJoinOperator,
  IntervalJoinOperator,
  type Side,
  type TwoInputOperator,
} from '../../src/ops/join/operator.js';
import type { Collector } from '../../src/ops/operator.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { batchFromRecords } from '../../src/stream/batch.js';
import { Progress } from '../../src/stream/progress.js';
import type { Rec } from '../../src/stream/protocol.js';
import { runTwoInputs } from '../../src/stream/two-inputs.js';

interface Row {
  ts: number;
  k: string | null;
  id: string;
}

/** A collector that checks that no record is behind a watermark it already emitted. */
class CheckingCollector implements Collector {
  readonly records: Rec[] = [];
  readonly watermarks: number[] = [];
  private last = Number.NEGATIVE_INFINITY;
  record(r: Rec): void {
    assert.ok(r.ts > this.last, `result ts ${r.ts} is not after the output watermark ${this.last}`);
    this.records.push(r);
  }
  watermark(wm: number): void {
    assert.ok(wm > this.last);
    this.last = wm;
    this.watermarks.push(wm);
  }
}

/** Rows sorted by ts, then shuffled so that no row is more than `bound` ms behind an earlier one. */
function disorder(rows: Row[], bound: number, rnd: () => number): Row[] {
  return rows
    .map((r) => ({ r, s: r.ts + rnd() * bound }))
    .sort((a, b) => a.s - b.s)
    .map((x) => x.r);
}

const rowArb = (prefix: string) =>
  fc
    .array(
      fc.record({ ts: fc.integer({ min: 0, max: 2000 }), k: fc.constantFrom('a', 'b', 'c', 'd', null) }),
      { maxLength: 40 },
    )
    .map((xs) => xs.map((x, i) => ({ ...x, id: `${prefix}${i}` })));

/** Feeds both sides interleaved (by `pick`), with per-side watermarks maxSeen - bound - 1, to `op`. */
async function drive(
  op: TwoInputOperator,
  left: Row[],
  right: Row[],
  bound: number,
  pick: boolean[],
  out: Collector,
): Promise<void> {
  const sides: [Row[], Row[]] = [left, right];
  const pos = [0, 0];
  const max = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const wms = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  let combined = Number.NEGATIVE_INFINITY;
  let step = 0;
  while (pos[0] < left.length || pos[1] < right.length) {
    let s: Side = pick[step++ % Math.max(1, pick.length)] ? 1 : 0;
    if (pos[s] >= sides[s].length) s = s === 0 ? 1 : 0;
    const row = sides[s][pos[s]++];
    await op.record(s, { ts: row.ts, key: row.id, value: { k: row.k, id: row.id } }, out);
    max[s] = Math.max(max[s], row.ts);
    // A watermark promises that no ts at or below it follows (kappa-stream(5)); `disorder` keeps
    // every later row above max - bound, or at max itself when bound is 0: hence the - 1.
    wms[s] = pos[s] >= sides[s].length ? Number.POSITIVE_INFINITY : max[s] - bound - 1;
    const c = Math.min(wms[0], wms[1]);
    if (c > combined && Number.isFinite(c)) {
      combined = c;
      await op.watermark(c, out);
    }
  }
  await op.end(out);
}

/** The nested-loop reference of an interval join. */
function intervalReference(
  left: Row[],
  right: Row[],
  lower: number,
  upper: number,
  type: JoinType,
): string[] {
  const out: string[] = [];
  const rMatched = new Set<string>();
  for (const l of left) {
    let m = false;
    for (const r of right)
      if (l.k !== null && l.k === r.k && r.ts >= l.ts + lower && r.ts <= l.ts + upper) {
        m = true;
        rMatched.add(r.id);
        out.push(`${Math.max(l.ts, r.ts)} ${l.id} ${r.id}`);
      }
    if (!m && (type === 'left' || type === 'full')) out.push(`${l.ts} ${l.id} -`);
  }
  if (type === 'right' || type === 'full')
    for (const r of right) if (!rMatched.has(r.id)) out.push(`${r.ts} - ${r.id}`);
  return out.sort();
}

function normalise(recs: Rec[]): string[] {
  return recs
    .map((r) => {
      const v = r.value as Record<string, unknown>;
      const left = v.id ?? null;
      const right = 'id_right' in v ? v.id_right : null;
      // A padded right row: the left fields are null (schema given), the right id is under id_right.
      return `${r.ts} ${left ?? '-'} ${right ?? '-'}`;
    })
    .sort();
}

/** A seeded linear congruential generator of numbers in [0, 1). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const SCHEMA = { k: 'string', id: 'string' } as const;

describe('interval join (src/ops/join/operator.ts)', () => {
  it('equals a nested-loop join for every type, on disordered input with valid watermarks; no result is behind the output watermark', async () => {
    await fc.assert(
      fc.asyncProperty(
        rowArb('L'),
        rowArb('R'),
        fc.constantFrom([0, 100], [-50, 50], [-200, -20], [30, 300]),
        fc.constantFrom<JoinType>('inner', 'left', 'right', 'full'),
        fc.integer({ min: 0, max: 150 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        fc.integer(),
        fc.constantFrom(1, 1000),
        async (left, right, [lower, upper], type, bound, pick, seed, cache) => {
          const rnd = lcg(seed);
          const l = disorder(left, bound, rnd);
          const r = disorder(right, bound, rnd);
          const op = new IntervalJoinOperator({ on: parseOn('k'), type, lower, upper, stateCache: cache });
          await op.open({ kappa: 1, schema: { ...SCHEMA } }, { kappa: 1, schema: { ...SCHEMA } });
          const out = new CheckingCollector();
          try {
            await drive(op, l, r, bound, pick, out);
            assert.deepEqual(normalise(out.records), intervalReference(left, right, lower, upper, type));
            assert.equal(op.counters()['state keys'], 0, 'all state cleaned at the end');
          } finally {
            await op.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('cleans state as the watermark passes (bounded state), emitting outer rows once their interval closed', async () => {
    const op = new IntervalJoinOperator({ on: parseOn('k'), type: 'left', lower: 0, upper: 10 });
    await op.open({ kappa: 1 }, { kappa: 1 });
    const out = new CheckingCollector();
    for (let t = 0; t < 1000; t++) {
      await op.record(0, { ts: t, key: null, value: { k: `k${t % 7}`, id: `L${t}` } }, out);
      await op.watermark(t, out);
    }
    assert.ok(op.counters()['state keys'] <= 7);
    // Rows at t <= 999 - 10 are done: padded (no right side), each exactly once.
    assert.equal(out.records.length, 990);
    await op.end(out);
    assert.equal(out.records.length, 1000);
    assert.equal(op.counters()['state keys'], 0);
    // The output watermark is held back by the upper bound.
    assert.equal(out.watermarks.at(-1), 999 - 10);
    await op.close();
  });

  it('sends late rows to onLate, never into the join', async () => {
    const late: [Side, number][] = [];
    const op = new IntervalJoinOperator({
      on: parseOn('k'),
      type: 'full',
      lower: 0,
      upper: 10,
      allowedLateness: 5,
      onLate: (s, r) => late.push([s, r.ts]),
    });
    await op.open({ kappa: 1 }, { kappa: 1 });
    const out = new CheckingCollector();
    await op.watermark(100, out);
    await op.record(0, { ts: 95, value: { k: 'a' } }, out); // behind by exactly the lateness: late
    await op.record(1, { ts: 96, value: { k: 'a' } }, out); // within the lateness: joins
    await op.end(out);
    assert.deepEqual(late, [[0, 95]]);
    assert.equal(out.records.length, 1); // the right row, padded
    await op.close();
  });

  it('snapshot and restore continue exactly (savepoint entries in key-group order)', async () => {
    const rows: [Side, Rec][] = [];
    for (let i = 0; i < 200; i++)
      rows.push([
        (i % 3 === 0 ? 1 : 0) as Side,
        { ts: i * 7, key: null, value: { k: `k${i % 11}`, id: `${i}` } },
      ]);
    const mk = () => new IntervalJoinOperator({ on: parseOn('k'), type: 'full', lower: -30, upper: 40 });
    const run = async (op: IntervalJoinOperator, part: [Side, Rec][], out: Collector) => {
      for (const [s, r] of part) {
        await op.record(s, r, out);
        await op.watermark(r.ts - 20, out);
      }
    };
    const whole = mk();
    await whole.open({ kappa: 1 }, { kappa: 1 });
    const all = new CheckingCollector();
    await run(whole, rows, all);
    await whole.end(all);
    await whole.close();

    const first = mk();
    await first.open({ kappa: 1 }, { kappa: 1 });
    const a = new CheckingCollector();
    await run(first, rows.slice(0, 120), a);
    const snap = await first.snapshot();
    const entries = [];
    for await (const e of snap.entries) entries.push(e);
    await first.close();
    assert.ok(entries.length > 0);
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i].keyGroup >= entries[i - 1].keyGroup);
    const second = mk();
    await second.open({ kappa: 1 }, { kappa: 1 });
    await second.restore({
      states: snap.states,
      operatorState: snap.operatorState,
      entries,
      maxKeyGroups: 128,
    });
    const b = new CheckingCollector();
    await run(second, rows.slice(120), b);
    await second.end(b);
    await second.close();
    assert.deepEqual(normalise([...a.records, ...b.records]), normalise(all.records));

    const other = new IntervalJoinOperator({ on: parseOn('k'), type: 'full', lower: 0, upper: 40 });
    await other.open({ kappa: 1 }, { kappa: 1 });
    await assert.rejects(
      other.restore({ states: snap.states, operatorState: snap.operatorState, entries, maxKeyGroups: 128 }),
      /the join state was saved by/,
    );
    await other.close();
  });
});

/** The reference of an as-of join: the right row with the greatest ts <= the left row's. */
function asofReference(left: Row[], right: Row[], type: 'inner' | 'left'): string[] {
  const out: string[] = [];
  for (const l of left) {
    let best: Row | undefined;
    for (const r of right)
      if (l.k !== null && r.k === l.k && r.ts <= l.ts && (!best || r.ts > best.ts)) best = r;
    if (best) out.push(`${l.ts} ${l.id} ${best.id}`);
    else if (type === 'left') out.push(`${l.ts} ${l.id} -`);
  }
  return out.sort();
}

describe('as-of join (src/ops/join/operator.ts)', () => {
  it('equals the reference (greatest right ts <= left ts) on disordered input, and keeps few versions', async () => {
    await fc.assert(
      fc.asyncProperty(
        rowArb('L'),
        // distinct right times, so "the latest version" is unique
        fc.uniqueArray(fc.integer({ min: 0, max: 2000 }), { maxLength: 40 }).chain((ts) =>
          fc
            .array(fc.constantFrom('a', 'b', 'c', 'd', null), {
              minLength: ts.length,
              maxLength: ts.length,
            })
            .map((ks) => ts.map((t, i) => ({ ts: t, k: ks[i], id: `R${i}` }))),
        ),
        fc.constantFrom<'inner' | 'left'>('inner', 'left'),
        fc.integer({ min: 0, max: 150 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        fc.integer(),
        async (left, right, type, bound, pick, seed) => {
          const rnd = lcg(seed);
          const op = new AsOfJoinOperator({ on: parseOn('k'), type, stateCache: 3 });
          await op.open({ kappa: 1, schema: { ...SCHEMA } }, { kappa: 1, schema: { ...SCHEMA } });
          const out = new CheckingCollector();
          try {
            await drive(op, disorder(left, bound, rnd), disorder(right, bound, rnd), bound, pick, out);
            assert.deepEqual(normalise(out.records), asofReference(left, right, type));
          } finally {
            await op.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('drops right versions older than the newest one at or below the watermark, keeping one', async () => {
    const op = new AsOfJoinOperator({ on: parseOn('k'), type: 'left' });
    await op.open({ kappa: 1 }, { kappa: 1 });
    const out = new CheckingCollector();
    for (let t = 0; t < 100; t++) await op.record(1, { ts: t, value: { k: 'a', v: t } }, out);
    await op.watermark(98, out);
    const snap = await op.snapshot();
    const entries = [];
    for await (const e of snap.entries) entries.push(e);
    assert.deepEqual(
      (entries[0].value as { rows: { t: number }[] }).rows.map((r) => r.t),
      [98, 99],
    );
    await op.record(0, { ts: 99, value: { k: 'a' } }, out);
    await op.watermark(99, out);
    assert.equal((out.records[0].value as { v: number }).v, 99);
    await op.close();
  });
});

describe('as-of join --version-retention', () => {
  it('keeps versions that much older than the newest one at or below the watermark', async () => {
    const op = new AsOfJoinOperator({ on: parseOn('k'), type: 'left', versionRetention: 10 });
    await op.open({ kappa: 1 }, { kappa: 1 });
    const out = new CheckingCollector();
    for (let t = 0; t < 100; t++) await op.record(1, { ts: t, value: { k: 'a', v: t } }, out);
    await op.watermark(98, out);
    const snap = await op.snapshot();
    const entries = [];
    for await (const e of snap.entries) entries.push(e);
    const kept = (entries[0].value as { rows: { t: number }[] }).rows.map((r) => r.t);
    assert.deepEqual(
      kept,
      Array.from({ length: 12 }, (_, i) => 88 + i),
    );
    await op.close();
  });
});

describe('lookup join (src/ops/join/lookup.ts)', () => {
  it('the columnar path gives what the row path gives; left join pads missing keys, inner drops them', async () => {
    const table = [
      { iata: 'JFK', name: 'Kennedy' },
      { iata: 'LAX', name: 'Los Angeles' },
      { iata: 'LAX', name: 'LA again' },
      { iata: null, name: 'no code' },
    ];
    const recs: Rec[] = ['JFK', 'XXX', 'LAX', null, 'JFK'].map((o, i) => ({
      ts: i,
      key: null,
      value: { origin: o, n: i },
    }));
    for (const type of ['inner', 'left'] as const) {
      const rowOp = new LookupJoinOperator({
        on: parseOn('origin=iata'),
        type,
        rows: table,
        schema: { iata: 'string', name: 'string' },
      });
      const colOp = new LookupJoinOperator({
        on: parseOn('origin=iata'),
        type,
        rows: table,
        schema: { iata: 'string', name: 'string' },
      });
      const h = { kappa: 1, schema: { origin: 'string' as const, n: 'int64' as const } };
      rowOp.open(h);
      colOp.open(h);
      const a = new CheckingCollector();
      const b = new CheckingCollector();
      for (const r of recs) await rowOp.record(r, a);
      await colOp.batch(batchFromRecords(recs, h.schema), b, () => assert.fail('no bad rows'));
      assert.deepEqual(b.records, a.records);
      const names = a.records.map((r) => (r.value as { name: string | null }).name);
      assert.deepEqual(
        names,
        type === 'left'
          ? ['Kennedy', null, 'Los Angeles', 'LA again', null, 'Kennedy']
          : ['Kennedy', 'Los Angeles', 'LA again', 'Kennedy'],
      );
    }
  });
});

// ---- the two-input runtime ----

const enc = (o: unknown) => `${JSON.stringify(o)}\n`;

/** An input that yields the given lines, awaiting `gate(i)` (if any) before line i. */
function input(lines: unknown[], gate?: (i: number) => Promise<void> | undefined): AsyncIterable<string> {
  return {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < lines.length; i++) {
        const g = gate?.(i);
        if (g) await g;
        yield enc(lines[i]);
      }
    },
  };
}

/** A TwoInputOperator that records the calls it gets, and forwards records and barriers. */
function recorder(log: string[]): TwoInputOperator {
  return {
    open: (l) => ({ kappa: 1, ...(l.schema ? { schema: l.schema } : {}) }),
    record(s, r, out) {
      log.push(`${s === 0 ? 'L' : 'R'}${r.ts}`);
      out.record(r);
    },
    watermark(wm, out) {
      log.push(`wm${wm}`);
      out.watermark(wm);
    },
    end(out) {
      log.push('end');
      out.watermark(Number.MAX_SAFE_INTEGER);
    },
  };
}

async function runBoth(
  op: TwoInputOperator,
  left: AsyncIterable<string>,
  right: AsyncIterable<string>,
  idleTimeoutMs?: number,
  onHeld?: (side: 0 | 1, b: { id: number }) => void,
) {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (d: Buffer) => chunks.push(d.toString()));
  await runTwoInputs(op, {
    left,
    right,
    output,
    bad: new BadRecords(),
    progress: new Progress('join', true),
    format: 'ndjson',
    idleTimeoutMs,
    onHeld,
  });
  return chunks
    .join('')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('two-input runtime (src/stream/two-inputs.ts)', () => {
  it('aligns barriers: an input at barrier N is held until barrier N arrives on the other; one merged barrier goes out', async () => {
    const log: string[] = [];
    const left = input([
      { kappa: 1 },
      { ts: 1, value: {} },
      { barrier: { id: 1, sources: [{ uid: 'l', positions: 1, watermark: null }], operators: ['a'] } },
      { ts: 2, value: {} },
      { end: true },
    ]);
    // The right input is slow: its barrier comes 150 ms later, after two more records.
    const right = input(
      [
        { kappa: 1 },
        { ts: 10, value: {} },
        { ts: 11, value: {} },
        { barrier: { id: 1, sources: [{ uid: 'r', positions: 2, watermark: null }], operators: ['a', 'b'] } },
        { ts: 12, value: {} },
        { end: true },
      ],
      (i) => (i === 2 ? sleep(150) : undefined),
    );
    const out = await runBoth(recorder(log), left, right);
    const barriers = out.filter((l) => 'barrier' in l);
    assert.deepEqual(barriers, [
      {
        barrier: {
          id: 1,
          sources: [
            { uid: 'l', positions: 1, watermark: null },
            { uid: 'r', positions: 2, watermark: null },
          ],
          operators: ['a', 'b'],
        },
      },
    ]);
    const bi = out.findIndex((l) => 'barrier' in l);
    const before = out
      .slice(0, bi)
      .filter((l) => 'ts' in l)
      .map((l) => l.ts);
    const after = out
      .slice(bi)
      .filter((l) => 'ts' in l)
      .map((l) => l.ts);
    assert.deepEqual(before.sort(), [1, 10, 11]); // the left record after its barrier waited
    assert.deepEqual(after.sort(), [12, 2]);
    assert.deepEqual(out.at(-1), { end: true });
  });

  it('an input paused for its watermark is released when the other input holds at a barrier (no deadlock)', async () => {
    // The right input is ahead (watermark 1000) and waits for the left to catch up; the left then
    // stops at barrier 1, which only the right's barrier 1 (behind its watermark) releases.
    const left = input(
      [
        { kappa: 1 },
        { ts: 1, value: {} },
        { watermark: 0 },
        { barrier: { id: 1 } },
        { ts: 2, value: {} },
        { end: true },
      ],
      (i) => (i === 3 ? sleep(100) : undefined),
    );
    const right = input([
      { kappa: 1 },
      { ts: 1000, value: {} },
      { watermark: 1000 },
      { barrier: { id: 1 } },
      { end: true },
    ]);
    const held: string[] = [];
    const out = await Promise.race([
      runBoth(recorder([]), left, right, undefined, (side, b) => held.push(`${side}:${b.id}`)),
      sleep(5000).then(() => 'stuck' as const),
    ]);
    assert.notEqual(out, 'stuck', 'both inputs waited for each other');
    assert.deepEqual(held, ['0:1'], 'onHeld: the left input held at barrier 1, the right one not yet there');
    assert.deepEqual(
      (out as Record<string, unknown>[]).filter((l) => 'barrier' in l),
      [{ barrier: { id: 1 } }],
    );
  });

  it('an input that ended counts in later checkpoints: its end positions join every later barrier and the final checkpoint', async () => {
    const l = (n: number) => ({ uid: 'l', positions: n, watermark: null });
    const r = { uid: 'r', positions: 'end', watermark: null };
    // The right input ends first (a follower's end line: its positions, no id of its own).
    const left = input(
      [
        { kappa: 1 },
        { ts: 1, value: {} },
        { barrier: { id: 4, path: '/ck/chk-4', sources: [l(1)] } },
        { end: true, checkpoint: { id: 5, path: '/ck/chk-5', sources: [l(2)] } },
      ],
      (i) => (i === 2 ? sleep(100) : undefined),
    );
    const right = input([
      { kappa: 1 },
      { ts: 2, value: {} },
      { end: true, checkpoint: { id: 0, sources: [r] } },
    ]);
    const out = await runBoth(recorder([]), left, right);
    assert.deepEqual(
      out.filter((x) => 'barrier' in x),
      [{ barrier: { id: 4, path: '/ck/chk-4', sources: [l(1), r] } }],
    );
    assert.deepEqual(out.at(-1), { end: true, checkpoint: { id: 5, path: '/ck/chk-5', sources: [l(2), r] } });
  });

  it('a stop line on both inputs is forwarded once, without firing', async () => {
    const log: string[] = [];
    const stop = { stop: { savepoint: '/sp', checkpoint: 3 } };
    const out = await runBoth(
      recorder(log),
      input([{ kappa: 1 }, { ts: 1, value: {} }, stop]),
      input([{ kappa: 1 }, { ts: 2, value: {} }, stop]),
    );
    assert.deepEqual(
      out.filter((l) => 'stop' in l),
      [stop],
    );
    assert.ok(!log.includes('end'), 'nothing fires on a stop');
    assert.ok(!out.some((l) => 'end' in l));
  });

  it('the watermark is the minimum of both inputs; an input ahead is paused until the other catches up', async () => {
    const log: string[] = [];
    // Left races ahead to watermark 1000; right moves slowly.
    const left = input([
      { kappa: 1 },
      { ts: 100, value: {} },
      { watermark: 100 },
      { ts: 1000, value: {} },
      { watermark: 1000 },
      { end: true },
    ]);
    const right = input(
      [
        { kappa: 1 },
        { ts: 50, value: {} },
        { watermark: 50 },
        { ts: 500, value: {} },
        { watermark: 500 },
        { ts: 1500, value: {} },
        { watermark: 1500 },
        { end: true },
      ],
      (i) => (i > 0 ? sleep(30) : undefined),
    );
    await runBoth(recorder(log), left, right);
    // The left record at 1000 (after left's watermark 100) is not read before right reaches 100.
    assert.ok(log.indexOf('L1000') > log.indexOf('R500'), log.join(' '));
    const wms = log.filter((e) => e.startsWith('wm')).map((e) => Number(e.slice(2)));
    assert.deepEqual(wms, [50, 100, 500, 1000, 1500]);
  });

  it('--idle-timeout: an input without events is left out of the watermark until it sends again', async () => {
    const timed = async (idle: number | undefined): Promise<number> => {
      const log: string[] = [];
      const t0 = Date.now();
      const op = recorder(log);
      let at = -1;
      const wm = op.watermark.bind(op);
      op.watermark = (w, out) => {
        if (w === 100 && at < 0) at = Date.now() - t0;
        return wm(w, out);
      };
      const left = input([{ kappa: 1 }, { ts: 100, value: {} }, { watermark: 100 }, { end: true }]);
      // The right input sends its header, then nothing for 400 ms.
      const right = input([{ kappa: 1 }, { end: true }], (i) => (i === 1 ? sleep(400) : undefined));
      await runBoth(op, left, right, idle);
      return at;
    };
    const withIdle = await timed(50);
    assert.ok(
      withIdle >= 0 && withIdle < 350,
      `the idle right input held the watermark back (${withIdle} ms)`,
    );
    const without = await timed(undefined);
    assert.ok(without >= 390, `without --idle-timeout the silent input holds the watermark (${without} ms)`);
  });
});
