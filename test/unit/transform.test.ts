import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { compileExpr, loadModules } from '../../src/ops/expr.js';
import { ArrayCollector, BadRecordError } from '../../src/ops/operator.js';
import { TransformOperator, type TransformStep } from '../../src/ops/transform.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import type { SavepointEntry } from '../../src/state/savepoint/format.js';
import { KeyedStateStore } from '../../src/state/store.js';
import type { Rec } from '../../src/stream/protocol.js';
import { tempDir } from '../helpers.js';

type Ev = Rec | { wm: number };

async function run(
  steps: TransformStep[],
  events: Ev[],
  extra: Partial<ConstructorParameters<typeof TransformOperator>[0]> = {},
) {
  const op = new TransformOperator({ steps, ...extra });
  const out = new ArrayCollector();
  const header = await op.open({ kappa: 1, schema: { a: 'int64', b: 'string', c: 'float64' } });
  for (const e of events) {
    if ('wm' in e) await op.watermark(e.wm, out);
    else await op.record(e, out);
  }
  await op.end(out);
  const counters = op.counters();
  await op.close();
  return { header, out, counters };
}

const rec = (ts: number, value: unknown, key: string | null = null): Rec => ({ ts, key, value });

describe('transform operator', () => {
  it('applies steps in order and keeps the schema true', async () => {
    const { header, out } = await run(
      [
        { kind: 'filter', expr: 'r.a > 1' },
        { kind: 'rename', pairs: [['b', 'name']] },
        { kind: 'select', fields: ['name', 'a'] },
        { kind: 'key', expr: 'r.name.toUpperCase()' },
      ],
      [rec(1, { a: 1, b: 'x', c: 0.5 }), rec(2, { a: 2, b: 'y', c: 1.5 })],
    );
    assert.deepEqual(header.schema, { name: 'string', a: 'int64' });
    assert.deepEqual(out.records, [{ ts: 2, key: 'Y', value: { name: 'y', a: 2 } }]);
  });

  it('map and flat-map drop the schema; drop removes fields; unchanged records keep their identity', async () => {
    const input = rec(5, { a: 3, b: 'z', c: 1 });
    const keep = await run([{ kind: 'filter', expr: 'true' }], [input]);
    assert.equal(keep.out.records[0], input);
    const d = await run([{ kind: 'drop', fields: ['c'] }], [input]);
    assert.deepEqual(d.header.schema, { a: 'int64', b: 'string' });
    assert.deepEqual(d.out.records[0].value, { a: 3, b: 'z' });
    const f = await run(
      [
        { kind: 'flat-map', expr: '[r.a, r.a * 2]' },
        { kind: 'map', expr: '({v: r, t: ts, k: key})' },
      ],
      [input],
    );
    assert.equal(f.header.schema, undefined);
    assert.deepEqual(
      f.out.records.map((r) => r.value),
      [
        { v: 3, t: 5, k: null },
        { v: 6, t: 5, k: null },
      ],
    );
  });

  it('the watermark follows the event time of the last --ts step, not an earlier one', async () => {
    // The property test of the columnar path found this: `--ts r.b --ts r.a` with b later than a.
    const op = new TransformOperator({
      steps: [
        { kind: 'ts', expr: 'r.b' },
        { kind: 'ts', expr: 'r.a' },
      ],
    });
    const out = new ArrayCollector();
    await op.open({ kappa: 1 });
    await op.record({ ts: 0, key: null, value: { a: -20, b: 5000 } }, out);
    await op.watermark(100, out);
    assert.deepEqual(
      out.records.map((r) => r.ts),
      [-20],
    );
    assert.deepEqual(out.watermarks, [-21]);
  });

  it('turns a throwing expression into a BadRecordError naming the flag', async () => {
    const op = new TransformOperator({ steps: [{ kind: 'map', expr: 'r.x.y' }] });
    await op.open({ kappa: 1 });
    assert.throws(
      () => op.record(rec(1, {}), new ArrayCollector()),
      (e: Error) => {
        assert.ok(e instanceof BadRecordError);
        assert.match(e.message, /--map 'r\.x\.y' threw/);
        return true;
      },
    );
    assert.throws(() => compileExpr('a b', {}, '--filter'), /not a valid JavaScript expression/);
  });

  it('re-timing replaces upstream watermarks with bounded out-of-orderness ones', async () => {
    const { out } = await run(
      [{ kind: 'ts', expr: 'r.a * 1000' }],
      [rec(1, { a: 10 }), rec(2, { a: 5 }), { wm: 2 }, rec(3, { a: 30 }), { wm: 3 }],
      { maxOutOfOrderness: 1000 },
    );
    assert.deepEqual(
      out.records.map((r) => r.ts),
      [10_000, 5_000, 30_000],
    );
    assert.deepEqual(out.watermarks, [8_999, 28_999]);
  });

  it('dedupes within the horizon, with state expired by the watermark, through a spilling cache', async () => {
    const events: Ev[] = [];
    for (let i = 0; i < 300; i++) {
      events.push(rec(i * 10, { id: i % 50 }));
      if (i % 10 === 9) events.push({ wm: i * 10 - 1 });
    }
    // id repeats every 500 ms of event time: duplicates within 600, not within 400.
    // (a run of repeats closer than `within` keeps only its first record)
    for (const [within, cache, kept] of [
      [400, 1000, 300],
      [600, 1000, 50],
      [600, 3, 50],
    ]) {
      const { out, counters } = await run([{ kind: 'dedupe', expr: 'r.id' }], events, {
        within,
        stateCache: cache,
      });
      assert.equal(out.records.length, kept, `within ${within} cache ${cache}`);
      assert.equal(counters.duplicates, 300 - kept);
    }
  });

  it('loads named functions from --module files', async () => {
    const t = tempDir();
    try {
      const f = join(t.dir, 'm.mjs');
      writeFileSync(f, 'export function hub(x) { return x === "ATL"; }\n');
      const scope = await loadModules([f]);
      const { out } = await run(
        [{ kind: 'filter', expr: 'hub(r.b)' }],
        [rec(1, { b: 'ATL' }), rec(2, { b: 'SFO' })],
        {
          scope,
        },
      );
      assert.deepEqual(
        out.records.map((r) => r.ts),
        [1],
      );
    } finally {
      t.cleanup();
    }
  });
});

describe('expression context (issue 8 item 31)', () => {
  const input: Rec = { ts: 7, key: 'k', value: { delay: 3, tags: ['a'], nested: { x: 1 } } };
  const hostBoom = () => {
    throw new Error('host boom');
  };
  const hostObj = () => ({ made: 'on the host' });
  const ev = (src: string) =>
    compileExpr(src, { hostBoom, hostObj }, '--map')(input.value, input.key, input.ts, input);
  const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);

  it('has no process, require, timers or console, directly or through globalThis', () => {
    for (const name of [
      'process',
      'require',
      'setTimeout',
      'setImmediate',
      'queueMicrotask',
      'console',
      'Buffer',
    ])
      assert.equal(ev(`typeof ${name}`), 'undefined', name);
    assert.equal(ev('typeof globalThis.process'), 'undefined');
    assert.equal(ev('globalThis.process'), undefined);
    assert.throws(() => ev('process.env.HOME'), usage(/process is not defined/));
    assert.throws(() => ev("process.getBuiltinModule('child_process')"), usage(/process is not defined/));
    assert.throws(() => ev("require('node:child_process')"), usage(/require is not defined/));
    assert.throws(() => ev('setTimeout(() => 0, 1)'), usage(/setTimeout is not defined/));
  });

  it('refuses import() (it returns a Promise) without an unhandled rejection', async () => {
    assert.throws(() => ev("import('node:child_process')"), usage(/returned a Promise/));
    await new Promise((r) => setTimeout(r, 20)); // an unhandled rejection would fail this test
  });

  it('cannot reach the host Function through constructors of the record, the context or --module functions', () => {
    for (const src of [
      "constructor.constructor('return process')()",
      "globalThis.constructor.constructor('return process')()",
      "r.constructor.constructor('return process')()",
      "r.tags.constructor.constructor('return process')()",
      "rec.constructor.constructor('return process')()",
      "hostBoom.constructor.constructor('return process')()",
      "hostObj().constructor.constructor('return process')()",
      "(() => { try { hostBoom() } catch (e) { return e.constructor.constructor('return process')() } })()",
      "eval('process')",
    ])
      assert.throws(() => ev(src), /Code generation from strings disallowed/, src);
    assert.notEqual(ev('r.constructor'), Object);
    assert.notEqual(ev('hostObj().constructor'), Object);
    assert.throws(() => ev('hostBoom()'), /host boom/);
  });

  it('an assignment cannot change the record: it is a usage error and the input stays as it was', async () => {
    for (const src of [
      'r.delay = 5',
      'r.fresh = 1',
      'r.tags.push("b")',
      'r.nested.x++',
      'delete r.delay',
      'rec.ts = 0',
    ])
      assert.throws(() => ev(src), usage(/tried to change the record/), src);
    assert.deepEqual(input, { ts: 7, key: 'k', value: { delay: 3, tags: ['a'], nested: { x: 1 } } });
    const op = new TransformOperator({ steps: [{ kind: 'filter', expr: 'r.a = 5' }] });
    await op.open({ kappa: 1 });
    const v = { a: 1 };
    assert.throws(
      () => op.record(rec(1, v), new ArrayCollector()),
      usage(/--filter 'r\.a = 5' tried to change/),
    );
    assert.deepEqual(v, { a: 1 });
    await op.close();
  });

  it('a Promise or thenable result is a usage error', async () => {
    assert.throws(() => ev('(async () => r.delay)()'), usage(/returned a Promise/));
    assert.throws(() => ev('Promise.resolve(1)'), usage(/returned a Promise/));
    assert.throws(() => ev('({ then() {} })'), usage(/returned a Promise/));
    const op = new TransformOperator({ steps: [{ kind: 'filter', expr: 'Promise.resolve(false)' }] });
    await op.open({ kappa: 1 });
    assert.throws(
      () => op.record(rec(1, { a: 1 }), new ArrayCollector()),
      usage(/--filter .* returned a Promise/),
    );
    await op.close();
  });

  it('still computes: new values, Dates for --ts, module results', async () => {
    assert.deepEqual(ev('({...r, h: r.delay / 60, t: ts, k: key})'), {
      delay: 3,
      tags: ['a'],
      nested: { x: 1 },
      h: 0.05,
      t: 7,
      k: 'k',
    });
    assert.equal(ev('rec.value === r && rec.ts === ts'), true);
    assert.deepEqual(ev('hostObj()'), { made: 'on the host' });
    const { out } = await run([{ kind: 'ts', expr: 'new Date(r.a * 1000)' }], [rec(1, { a: 5 })]);
    assert.equal(out.records[0].ts, 5000);
  });
});

describe('keyed state store', () => {
  it('spills to LevelDB past the cache and reads back, with key-group prefixed keys', async () => {
    const t = tempDir();
    try {
      const s = await KeyedStateStore.open<{ n: number }>(
        { dir: t.dir, cacheEntries: 10, name: 'test' },
        { encode: JSON.stringify, decode: JSON.parse },
      );
      for (let i = 0; i < 5000; i++) s.put(`k${i}\u0000x`, { n: i });
      await s.flush();
      assert.equal(s.stats().cached, 10);
      assert.equal(s.stats().spilled, 4990);
      for (let i = 0; i < 5000; i += 97) assert.deepEqual(await s.load(`k${i}\u0000x`), { n: i });
      s.delete('k0\u0000x');
      await s.flush();
      assert.equal(await s.load('k0\u0000x'), undefined);
      assert.ok(s.dbKey('k7\u0000x').startsWith(`${keyGroupOf('k7').toString(16).padStart(4, '0')}/test/`));
      await s.close();
    } finally {
      t.cleanup();
    }
    const g = keyGroupOf('driver-42');
    assert.ok(g >= 0 && g < 128);
    assert.equal(keyGroupOf('driver-42'), g);
  });
});

describe('transform snapshot/restore (checkpoints)', () => {
  it('a restored dedupe state drops the duplicates of records kept before the snapshot, and expires as before', async () => {
    const steps: TransformStep[] = [{ kind: 'dedupe', expr: 'r.id' }];
    const header = { kappa: 1, schema: { id: 'string' } } as const;
    // One uninterrupted run is the expectation; the second run snapshots after `cut` events and a
    // new operator restored from that snapshot takes the rest.
    const events: Ev[] = [];
    for (let i = 0; i < 120; i++) {
      events.push(rec(i * 10, { id: `k${i % 17}` }));
      if (i % 20 === 19) events.push({ wm: i * 10 - 300 });
    }
    const within = 400;
    const whole = await run(steps, events, { within, stateCache: 4 });
    for (const cut of [1, 40, 77, events.length - 1]) {
      const a = new TransformOperator({ steps, within, stateCache: 4 });
      const out = new ArrayCollector();
      await a.open(header);
      const feed = async (op: TransformOperator, evs: Ev[]) => {
        for (const e of evs) {
          if ('wm' in e) await op.watermark(e.wm, out);
          else await op.record(e, out);
        }
      };
      await feed(a, events.slice(0, cut));
      assert.ok(a.snapshot && a.restore, 'a transform with --dedupe is stateful');
      const snap = await a.snapshot();
      const saved: SavepointEntry[] = [];
      for await (const e of snap.entries) saved.push(e);
      await a.close();
      assert.equal(snap.kind, 'transform');
      assert.deepEqual(
        snap.states.map((s) => s.name),
        ['dedupe0'],
      );
      for (const e of saved) {
        assert.equal(e.state, 'dedupe0');
        assert.equal(e.keyGroup, keyGroupOf(e.key, snap.maxKeyGroups), `key group of ${e.key}`);
        assert.equal(e.timer, (e.value as number) + within - 1);
      }
      const b = new TransformOperator({ steps, within, stateCache: 4 });
      await b.open(header);
      await b.restore?.({
        states: snap.states,
        operatorState: snap.operatorState,
        entries: saved,
        maxKeyGroups: snap.maxKeyGroups,
      });
      await feed(b, events.slice(cut));
      await b.end(out);
      const counters = b.counters();
      await b.close();
      assert.deepEqual(out.records, whole.out.records, `cut at ${cut}`);
      assert.equal(counters.duplicates, whole.counters.duplicates, `cut at ${cut}`);
    }
  });

  it('refuses a snapshot with dedupe state this transform does not have', async () => {
    const op = new TransformOperator({ steps: [{ kind: 'dedupe', expr: 'r.id' }], within: 10 });
    await op.open({ kappa: 1 });
    await assert.rejects(
      op.restore!({
        states: [{ name: 'dedupe1', kind: 'value', schema: {} }],
        operatorState: null,
        entries: [],
        maxKeyGroups: 128,
      }),
      /dedupe1/,
    );
    await op.close();
  });

  it('a stateless transform has no snapshot', () => {
    const op = new TransformOperator({ steps: [{ kind: 'filter', expr: 'true' }] });
    assert.equal(op.snapshot, undefined);
  });
});
