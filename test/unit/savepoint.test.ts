/**
 * State snapshots and the savepoint format (issue 9 groundwork): key groups, consistent snapshots
 * of the keyed state store, the savepoint writer and reader (checksums, relocation, the ObjectStore
 * seam), and window operators that continue exactly from a savepoint.
 */
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DataError, RuntimeError } from '../../src/errors.js';
import { toStateKey } from '../../src/ops/keys.js';
import { ArrayCollector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator, type WindowOptions, type WindowSpec } from '../../src/ops/window/operator.js';
import { canonicalJson, keyGroupOf, keyHash } from '../../src/state/keygroup.js';
import type { SavepointEntry } from '../../src/state/savepoint/format.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { writeSavepoint } from '../../src/state/savepoint/write.js';
import { KeyedStateStore } from '../../src/state/store.js';
import { type ObjectStore, type PendingFile, registerStore } from '../../src/storage/store.js';
import type { Rec } from '../../src/stream/protocol.js';
import { ROOT, mulberry32 as rng, tempDir } from '../helpers.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('key groups', () => {
  it('the hash is MurmurHash3 x86_32 (published test vectors)', () => {
    // Vectors of the reference implementation (SMHasher); keyHash pins seed 0, so seeded ones go
    // through the same package call the format names.
    assert.equal(keyHash(utf8('')), 0);
    assert.equal(keyHash(new Uint8Array(4)), 0x2362f9de);
    assert.equal(keyHash(utf8('The quick brown fox jumps over the lazy dog')), 0x2e4ff723);
  });

  it('canonical key bytes: RFC 8785 JSON text (object members sorted), hashed as UTF-8', () => {
    assert.equal(
      canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1, y: 2 } }),
      '{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}',
    );
    assert.equal(toStateKey({ b: 1, a: 2 }), toStateKey({ a: 2, b: 1 }));
    assert.equal(toStateKey('JFK'), '"JFK"');
    assert.notEqual(toStateKey('1'), toStateKey(1));
    // UTF-8, not UTF-16 code units modulo 256 (what the package does with a JS string).
    assert.equal(keyGroupOf('"π"', 65536), keyHash(Uint8Array.from([0x22, 0xcf, 0x80, 0x22])) % 65536);
  });

  it('the worked example of kappa-savepoint(5) is what the code computes', () => {
    assert.deepEqual([...utf8('"JFK"')], [0x22, 0x4a, 0x46, 0x4b, 0x22]);
    assert.equal(keyHash(utf8('"JFK"')), 0xdd2d4985);
    assert.equal(keyGroupOf('"JFK"', 128), 5);
    const man = readFileSync(join(ROOT, 'man', 'kappa-savepoint.5'), 'utf8');
    assert.match(man, /0xdd2d4985/);
    assert.match(man, /3710732677 mod 128 = 5/);
  });
});

interface Val {
  n: number;
}
const codec = { encode: (v: Val) => JSON.stringify(v), decode: (s: string) => JSON.parse(s) as Val };

describe('KeyedStateStore snapshot and restore', () => {
  it('restore fills the cache when the entries fit it (inMemory: LevelDB untouched), else LevelDB', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => ({ key: `"k${i}"\u0000${i}`, value: { n: i } }));
    for (const [cache, inMemory] of [
      [100, true],
      [10, false],
    ] as const) {
      const store = await KeyedStateStore.open<Val>(
        { cacheEntries: cache, name: 's', maxKeyGroups: 16 },
        codec,
      );
      try {
        assert.equal(store.inMemory, true, 'a fresh store');
        assert.equal(await store.restore(entries), 40);
        assert.equal(store.inMemory, inMemory);
        assert.equal(store.stats().spilled, inMemory ? 0 : 40);
        for (const e of entries) assert.deepEqual(await store.load(e.key), e.value);
        const seen = new Map<string, number>();
        if (inMemory)
          store.forEachCached((k, v, g) => {
            assert.equal(g, keyGroupOf(k.split('\u0000')[0], 16));
            seen.set(k, v.n);
          });
        if (inMemory) assert.equal(seen.size, 40);
      } finally {
        await store.close();
      }
    }
  });

  it('forEachCached hands back the copy made at the previous call until the entry is put again', async () => {
    const store = await KeyedStateStore.open<Val>({ cacheEntries: 100, name: 's', maxKeyGroups: 16 }, codec);
    try {
      for (let i = 0; i < 5; i++) store.put(`"k${i}"\u00000`, { n: i });
      const copies = (): Map<string, unknown> => {
        const m = new Map<string, unknown>();
        store.forEachCached((k, v, _g, copy) => {
          m.set(k, copy);
          return copy ?? `copy of ${v.n}`;
        });
        return m;
      };
      assert.deepEqual([...copies().values()], [undefined, undefined, undefined, undefined, undefined]);
      const v = store.getCached('"k2"\u00000')!;
      v.n = 20;
      store.put('"k2"\u00000', v);
      const second = copies();
      assert.equal(second.get('"k2"\u00000'), undefined, 'changed since: no copy');
      assert.equal(second.get('"k1"\u00000'), 'copy of 1');
      assert.equal(copies().get('"k2"\u00000'), 'copy of 20');
    } finally {
      await store.close();
    }
  });

  it('a snapshot is the state at the call, in key-group order, while the store keeps changing', async () => {
    const store = await KeyedStateStore.open<Val>({ cacheEntries: 7, name: 's', maxKeyGroups: 16 }, codec);
    const expect = new Map<string, number>();
    try {
      for (let i = 0; i < 100; i++) {
        const k = `${JSON.stringify(`k${i}`)}\u0000${i % 3}`;
        store.put(k, { n: i });
        expect.set(k, i);
        if (store.needsFlush) await store.flush();
      }
      // Some entries only in LevelDB (evicted), some dirty in the cache, some deleted.
      for (let i = 0; i < 100; i += 10) {
        const k = `${JSON.stringify(`k${i}`)}\u0000${i % 3}`;
        const v = (await store.load(k))!;
        v.n = -i - 1000; // mutated in place, as operators do
        store.put(k, v, true);
        expect.set(k, -i - 1000);
      }
      for (const i of [5, 15, 95]) {
        const k = `${JSON.stringify(`k${i}`)}\u0000${i % 3}`;
        await store.load(k);
        store.delete(k);
        expect.delete(k);
      }
      const snap = await store.snapshot();
      // Writes after the snapshot: in place, new keys, deletes; none may show in the snapshot.
      for (let i = 0; i < 100; i++) {
        const k = `${JSON.stringify(`k${i}`)}\u0000${i % 3}`;
        const v = await store.load(k);
        if (v) {
          v.n = 1000;
          store.put(k, v, true);
        }
        if (i % 4 === 0 && v) store.delete(k);
        store.put(`"new${i}"\u0000x`, { n: 7 });
      }
      await store.flush();
      const got: { keyGroup: number; key: string; n: number }[] = [];
      for await (const e of snap) {
        assert.equal(e.state, 's');
        got.push({ keyGroup: e.keyGroup, key: e.key, n: e.value.n });
      }
      assert.equal(got.length, expect.size);
      for (const g of got) {
        assert.equal(g.n, expect.get(g.key), g.key);
        assert.equal(g.keyGroup, keyGroupOf(g.key.split('\u0000')[0], 16));
      }
      for (let i = 1; i < got.length; i++)
        assert.ok(got[i - 1].keyGroup <= got[i].keyGroup, 'key-group order');

      // Restore into a fresh store: every key loads with its value; a non-empty store refuses.
      const fresh = await KeyedStateStore.open<Val>({ cacheEntries: 5, name: 's', maxKeyGroups: 16 }, codec);
      try {
        const n = await fresh.restore(
          got.map((g) => ({ key: g.key, value: { n: g.n }, keyGroup: g.keyGroup })),
        );
        assert.equal(n, expect.size);
        for (const [k, v] of expect) assert.deepEqual(await fresh.load(k), { n: v });
        await assert.rejects(fresh.restore([{ key: '"a"', value: { n: 1 } }]), RuntimeError);
      } finally {
        await fresh.close();
      }
      const other = await KeyedStateStore.open<Val>({ cacheEntries: 5, name: 's', maxKeyGroups: 16 }, codec);
      try {
        const g = keyGroupOf('"a"', 16);
        await assert.rejects(
          other.restore([{ key: '"a"\u00001', value: { n: 1 }, keyGroup: (g + 1) % 16 }]),
          (e: unknown) => e instanceof DataError && /hashes to key group/.test(e.message),
        );
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
    }
  });
});

/** An ObjectStore under the test scheme `memtest://` that records the order of visible writes. */
function memStore(): { log: string[]; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const log: string[] = [];
  const store: ObjectStore = {
    async *list(root) {
      for (const [uri, b] of [...files].sort()) if (uri.startsWith(root)) yield { uri, size: b.length };
    },
    async stat(uri) {
      const b = files.get(uri);
      return b ? { uri, size: b.length } : undefined;
    },
    async read(uri) {
      const b = files.get(uri);
      if (!b) throw new RuntimeError(`no ${uri}`);
      return b;
    },
    async readRange(uri, s, e) {
      return (await store.read(uri)).subarray(s, e);
    },
    async *readStream(uri) {
      yield await store.read(uri);
    },
    async create(uri): Promise<PendingFile> {
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      return {
        async write(c) {
          chunks.push(c.slice());
          bytes += c.length;
        },
        async commit() {
          files.set(uri, Buffer.concat(chunks));
          log.push(`commit ${uri}`);
        },
        async abort() {},
        async finish() {
          throw new RuntimeError('memtest: finish() is not used by savepoints');
        },
        get bytes() {
          return bytes;
        },
      };
    },
    async publish() {
      throw new RuntimeError('memtest: publish() is not used by savepoints');
    },
    async discard() {},
    async *listInProgress() {},
    async put(uri, data, opts) {
      if (opts?.ifAbsent && files.has(uri)) return false;
      files.set(uri, typeof data === 'string' ? utf8(data) : data);
      log.push(`put ${uri}`);
      return true;
    },
    async delete(uri) {
      files.delete(uri);
    },
  };
  registerStore('memtest', () => store);
  return { log, files };
}

/** Entries for `keys` keys with one window each, in key-group order. */
function sampleEntries(keys: number, maxKeyGroups: number): SavepointEntry[] {
  const out: SavepointEntry[] = [];
  for (let i = 0; i < keys; i++) {
    const key = JSON.stringify(`key-${i}`);
    out.push({
      keyGroup: keyGroupOf(key, maxKeyGroups),
      state: 'window',
      key,
      windowStart: i * 1000,
      windowEnd: i * 1000 + 1000,
      timer: i * 1000 + 999,
      value: { n: i, s: `v${i}`, nested: [1, { x: null }] },
    });
  }
  return out.sort((a, b) => a.keyGroup - b.keyGroup || (a.key < b.key ? -1 : 1));
}

const input = (entries: SavepointEntry[], maxKeyGroups = 20) => ({
  metadata: {
    pipeline: 'p1',
    maxKeyGroups,
    checkpointId: 7,
    sources: [{ uid: 'ingest-0', positions: { '0': '42' }, watermark: 5000 }],
  },
  operators: [
    {
      uid: 'window-1',
      kind: 'window',
      states: [{ name: 'window', kind: 'window' as const, schema: { any: 'thing' } }],
      watermark: 1234,
      operatorState: { late: 3 },
      entries,
    },
    { uid: 'empty-2', kind: 'window', states: [], entries: [] },
  ],
});

async function readAll(it: AsyncIterable<SavepointEntry>): Promise<SavepointEntry[]> {
  const out: SavepointEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('savepoint writer and reader', () => {
  it('round trip through an ObjectStore: files by key-group range, _metadata.json written last', async () => {
    const { log, files } = memStore();
    const entries = sampleEntries(200, 20);
    const meta = await writeSavepoint('memtest://b/sp1', input(entries), {
      keyGroupsPerFile: 8,
      rowGroupRows: 7,
    });
    assert.equal(log.at(-1), 'put memtest://b/sp1/_metadata.json');
    assert.ok(log.slice(0, -1).every((l) => l.startsWith('commit memtest://b/sp1/window-1/kg-')));
    const op = meta.operators[0];
    assert.deepEqual(
      op.files.map((f) => [f.path, f.keyGroups]),
      [
        ['window-1/kg-00000-00007.parquet', [0, 7]],
        ['window-1/kg-00008-00015.parquet', [8, 15]],
        ['window-1/kg-00016-00019.parquet', [16, 19]],
      ],
    );
    assert.equal(op.entries, 200);
    assert.deepEqual(meta.operators[1].files, []);
    const sp = await openSavepoint('memtest://b/sp1');
    assert.deepEqual(await readAll(sp.entries('window-1')), entries);
    assert.deepEqual(await readAll(sp.entries('empty-2')), []);
    assert.equal(sp.metadata.checkpointId, 7);
    assert.deepEqual(sp.metadata.sources, [{ uid: 'ingest-0', positions: { '0': '42' }, watermark: 5000 }]);
    assert.deepEqual(sp.operator('window-1')?.operatorState, { late: 3 });
    assert.equal(sp.operator('window-1')?.watermark, 1234);
    assert.equal(sp.metadata.keyGroupHash.algorithm, 'murmur3_x86_32');
    await assert.rejects(
      readAll(sp.entries('nope')),
      (e: unknown) => e instanceof DataError && /nope/.test(e.message),
    );
    // Never overwritten.
    await assert.rejects(writeSavepoint('memtest://b/sp1', input(entries)), RuntimeError);
    assert.ok(files.has('memtest://b/sp1/_metadata.json'));
  });

  it('local: relocatable; a flipped byte, a missing file, an unknown version, no metadata are DataErrors naming what', async () => {
    const t = tempDir();
    try {
      const entries = sampleEntries(300, 64);
      const a = join(t.dir, 'a');
      await writeSavepoint(a, input(entries, 64), { keyGroupsPerFile: 32 });
      const b = join(t.dir, 'moved');
      renameSync(a, b);
      assert.deepEqual(await readAll((await openSavepoint(b)).entries('window-1')), entries);

      const metaPath = join(b, '_metadata.json');
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      const file = join(b, 'window-1', 'kg-00032-00063.parquet');
      const bytes = readFileSync(file);
      bytes[100] ^= 0xff;
      writeFileSync(file, bytes);
      await assert.rejects(
        openSavepoint(b),
        (e: unknown) => e instanceof DataError && /kg-00032-00063\.parquet: sha256/.test(e.message),
      );
      bytes[100] ^= 0xff;
      writeFileSync(file, bytes);
      await openSavepoint(b);

      renameSync(file, `${file}.x`);
      await assert.rejects(
        openSavepoint(b),
        (e: unknown) =>
          e instanceof DataError && /file window-1\/kg-00032-00063\.parquet is missing/.test(e.message),
      );
      renameSync(`${file}.x`, file);

      writeFileSync(metaPath, JSON.stringify({ ...meta, formatVersion: 2 }));
      await assert.rejects(
        openSavepoint(b),
        (e: unknown) => e instanceof DataError && /format version 2 is not supported/.test(e.message),
      );
      renameSync(metaPath, `${metaPath}.x`);
      await assert.rejects(
        openSavepoint(b),
        (e: unknown) => e instanceof DataError && /no _metadata\.json/.test(e.message),
      );
    } finally {
      t.cleanup();
    }
  });

  it('the writer refuses entries out of key-group order or in the wrong key group', async () => {
    const t = tempDir();
    try {
      const entries = sampleEntries(50, 20);
      await assert.rejects(
        writeSavepoint(join(t.dir, 'x'), input([...entries].reverse())),
        (e: unknown) => e instanceof RuntimeError && /out of key-group order/.test(e.message),
      );
      const wrong = { ...entries[0], keyGroup: (entries[0].keyGroup + 1) % 20 };
      await assert.rejects(
        writeSavepoint(join(t.dir, 'y'), input([wrong])),
        (e: unknown) => e instanceof RuntimeError && /not in key group/.test(e.message),
      );
    } finally {
      t.cleanup();
    }
  });
});

type Ev = { rec: Rec } | { wm: number };
const AGGS =
  'count, sum(v), min(v), max(v), count_distinct(v) as distinct, approx_count_distinct(v) as hll, avg(v), first(v), last(v)';

function opFor(window: WindowSpec, extra: Partial<WindowOptions> = {}): WindowOperator {
  return new WindowOperator({
    window,
    key: { kind: 'field', path: 'k', get: compilePath('k') },
    aggs: parseAggs(AGGS),
    onLate: () => {},
    stateCache: 3, // most state is spilled to LevelDB when the snapshot is taken
    maxKeyGroups: 16,
    ...extra,
  });
}

/** Shuffled (bounded disorder, some late) records with a watermark every 7 records. */
function events(n: number, seed: number): Ev[] {
  const r = rng(seed);
  const recs: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const ts = Math.floor(i * 40 + r() * 400);
    const x = Math.floor(r() * 26);
    const k = x === 24 ? { id: 1, b: [2] } : x === 25 ? 7 : `k${x}`;
    recs.push({ ts, key: null, value: { k, v: Math.floor(r() * 20) } });
  }
  // Out of order: jitter (up to 400 ms, more than the watermark's 300 ms lag, so some are late)
  // plus pairwise swaps 5 records apart.
  for (let i = 0; i + 5 < recs.length; i += 10)
    if (r() < 0.5) [recs[i], recs[i + 5]] = [recs[i + 5], recs[i]];
  const evs: Ev[] = [];
  let max = Number.NEGATIVE_INFINITY;
  recs.forEach((rec, i) => {
    evs.push({ rec });
    max = Math.max(max, rec.ts);
    if (i % 7 === 6) evs.push({ wm: max - 300 });
  });
  return evs;
}

async function feed(op: WindowOperator, evs: Ev[], out: ArrayCollector): Promise<void> {
  for (const e of evs) {
    if ('rec' in e) await op.record(e.rec, out);
    else await op.watermark(e.wm, out);
  }
}

const sorted = (rs: Rec[]) => rs.map((r) => JSON.stringify(r)).sort();

describe('WindowOperator snapshot/restore through a savepoint', () => {
  const cases: [string, WindowSpec, Partial<WindowOptions>][] = [
    ['tumbling', { kind: 'tumbling', size: 500 }, { allowedLateness: 200 }],
    ['sliding', { kind: 'sliding', size: 600, slide: 200 }, { early: 150 }],
    ['session', { kind: 'session', gap: 150 }, { allowedLateness: 100 }],
    ['session with max', { kind: 'session', gap: 120, maxSession: 700 }, { early: 100 }],
  ];
  for (const [name0, window, extra0] of cases)
    for (const inMemory of [false, true]) {
      // In memory: the state fits the cache, so the snapshot is copied from memory (no LevelDB).
      const extra = inMemory ? { ...extra0, stateCache: 100_000 } : extra0;
      const name = `${name0}${inMemory ? ' (state in memory)' : ' (state spilled)'}`;
      it(`${name}: half, savepoint, a new operator, the other half = one uninterrupted run`, async () => {
        const evs = events(1500, name0.length);
        const half = Math.floor(evs.length / 2);
        // Right after the savepoint: a record far behind the watermark (late only if the watermark was
        // restored) and a repeated watermark (not forwarded again only if the output watermark was).
        let lastWm = Number.NEGATIVE_INFINITY;
        for (const e of evs.slice(0, half)) if ('wm' in e) lastWm = Math.max(lastWm, e.wm);
        const firstRec = evs.find((e): e is { rec: Rec } => 'rec' in e)!.rec;
        evs.splice(half, 0, { rec: { ...firstRec, ts: firstRec.ts - 5000 } }, { wm: lastWm });
        const whole = opFor(window, extra);
        const outWhole = new ArrayCollector();
        await whole.open({ kappa: 1 });
        await feed(whole, evs, outWhole);
        await whole.end(outWhole);
        const wholeCounters = whole.counters();
        await whole.close();

        const t = tempDir();
        const first = opFor(window, extra);
        const second = opFor(window, extra);
        try {
          const out = new ArrayCollector();
          await first.open({ kappa: 1 });
          await feed(first, evs.slice(0, half), out);
          const open = first.openWindows;
          assert.ok(open > 3, `windows open at the savepoint: ${open}`);
          const writesBefore = first.counters()['state writes'];
          const snap = await first.snapshot();
          if (inMemory) {
            assert.ok(snap.columns, 'copied from memory');
            assert.equal(first.counters()['state writes'], writesBefore, 'no LevelDB write for the snapshot');
          } else assert.equal(snap.columns, undefined);
          // The first operator keeps running after the snapshot: the savepoint must not change.
          await first.watermark(Number.MAX_SAFE_INTEGER, new ArrayCollector());
          const sp = join(t.dir, 'sp');
          const meta = await writeSavepoint(
            sp,
            { metadata: { pipeline: 'p', maxKeyGroups: 16 }, operators: [{ uid: 'window-1', ...snap }] },
            { keyGroupsPerFile: 4 },
          );
          assert.ok(meta.operators[0].entries >= open);
          const saved = await openSavepoint(sp);
          const op = saved.operator('window-1')!;
          await second.open({ kappa: 1 });
          await second.restore({ ...op, entries: saved.entries('window-1'), maxKeyGroups: 16 });
          assert.equal(second.openWindows, open);
          await feed(second, evs.slice(half), out);
          await second.end(out);
          assert.deepEqual(sorted(out.records), sorted(outWhole.records));
          assert.deepEqual(out.watermarks, outWhole.watermarks);
          assert.ok(outWhole.records.length > 50);
          const c = second.counters();
          for (const k of ['late', 'updates', 'peak open windows', 'open windows'])
            assert.equal(c[k], wholeCounters[k], k);
          assert.equal(second.merges, whole.merges);
          assert.equal(second.recordsIn, whole.recordsIn);
        } finally {
          await first.close();
          await second.close();
          t.cleanup();
        }
      });
    }

  for (const [name, window, extra] of cases)
    it(`${name}: snapshots copied from memory hold the same rows, in the same order, as snapshots through LevelDB (DuckDB reads both)`, async () => {
      const evs = events(1200, name.length + 7);
      const t = tempDir();
      const mem = opFor(window, { ...extra, stateCache: 100_000 });
      const disk = opFor(window, extra);
      const con = await (await DuckDBInstance.create(':memory:')).connect();
      try {
        await mem.open({ kappa: 1 });
        await disk.open({ kappa: 1 });
        const sink = new ArrayCollector();
        // Three snapshots at different points; between them some entries change, some do not (the
        // in-memory path reuses the copies of unchanged ones).
        for (const [i, cut] of [0.3, 0.6, 0.9].entries()) {
          const from = i === 0 ? 0 : Math.floor(evs.length * [0.3, 0.6, 0.9][i - 1]);
          const to = Math.floor(evs.length * cut);
          await feed(mem, evs.slice(from, to), sink);
          await feed(disk, evs.slice(from, to), sink);
          const rows: string[][][] = [];
          for (const [label, op] of [
            ['mem', mem],
            ['disk', disk],
          ] as const) {
            const snap = await op.snapshot();
            assert.equal(snap.columns !== undefined, label === 'mem');
            const sp = join(t.dir, `${label}-${i}`);
            await writeSavepoint(
              sp,
              { metadata: { pipeline: 'p', maxKeyGroups: 16 }, operators: [{ uid: 'w', ...snap }] },
              { keyGroupsPerFile: 4 },
            );
            const r = await con.runAndReadAll(
              `SELECT key_group, state, key, window_start::VARCHAR, window_end::VARCHAR, timer::VARCHAR, value
               FROM read_parquet('${sp}/w/*.parquet', filename = true) ORDER BY filename, file_row_number`,
            );
            rows.push(r.getRowsJson().map((x) => x.map(String)));
          }
          assert.ok(rows[0].length > 5, `rows: ${rows[0].length}`);
          assert.deepEqual(rows[0], rows[1], `snapshot ${i}`);
        }
      } finally {
        con.closeSync();
        await mem.close();
        await disk.close();
        t.cleanup();
      }
    });

  it('restoring into another window or another key-group count is a DataError', async () => {
    const t = tempDir();
    const a = opFor({ kind: 'tumbling', size: 500 });
    const b = opFor({ kind: 'tumbling', size: 600 });
    try {
      await a.open({ kappa: 1 });
      await feed(a, events(50, 1), new ArrayCollector());
      const sp = join(t.dir, 'sp');
      await writeSavepoint(sp, {
        metadata: { pipeline: 'p', maxKeyGroups: 16 },
        operators: [{ uid: 'w', ...(await a.snapshot()) }],
      });
      const saved = await openSavepoint(sp);
      await b.open({ kappa: 1 });
      await assert.rejects(
        b.restore({ ...saved.operator('w')!, entries: saved.entries('w'), maxKeyGroups: 16 }),
        (e: unknown) => e instanceof DataError && /saved with window/.test(e.message),
      );
      const c = opFor({ kind: 'tumbling', size: 500 });
      try {
        await c.open({ kappa: 1 });
        const rows = await readAll(saved.entries('w'));
        await assert.rejects(
          c.restore({ ...saved.operator('w')!, entries: [rows[0], rows[0]], maxKeyGroups: 16 }),
          (e: unknown) => e instanceof DataError && /two rows for key/.test(e.message),
        );
      } finally {
        await c.close();
      }
      await assert.rejects(
        b.restore({ ...saved.operator('w')!, entries: saved.entries('w'), maxKeyGroups: 32 }),
        (e: unknown) => e instanceof DataError && /32 key groups, this window 16/.test(e.message),
      );
    } finally {
      await a.close();
      await b.close();
      t.cleanup();
    }
  });
});

describe('savepoint writer: values from columns', () => {
  it('writes non-ASCII value texts byte-exact (DuckDB reads them back, as does the reader)', async () => {
    const t = tempDir();
    try {
      const texts = [
        '{"s":"é"}',
        '{"s":"€ 5"}',
        '{"s":"😀x"}',
        '{"n":1}',
        `{"s":"${'ü'.repeat(300)}"}`,
        '{"s":"a"}',
      ];
      const keys = texts.map((_, i) => canonicalJson(`k${i}`));
      const rows = keys
        .map((key, i) => ({ key, g: keyGroupOf(key, 16), value: texts[i] }))
        .sort((a, b) => a.g - b.g || (a.key < b.key ? -1 : 1));
      const sp = join(t.dir, 'sp');
      await writeSavepoint(sp, {
        metadata: { pipeline: 'p', maxKeyGroups: 16 },
        operators: [
          {
            uid: 'op',
            kind: 'test',
            states: [{ name: 's', kind: 'value', schema: null }],
            entries: [],
            columns: {
              length: rows.length,
              state: 's',
              keyGroup: Int32Array.from(rows, (r) => r.g),
              key: rows.map((r) => r.key),
              windowStart: rows.map(() => null),
              windowEnd: rows.map(() => null),
              timer: rows.map(() => null),
              value: rows.map((r) => r.value),
            },
          },
        ],
      });
      const con = await (await DuckDBInstance.create(':memory:')).connect();
      const read = await con.runAndReadAll(
        `SELECT key, value FROM read_parquet('${join(sp, 'op', '*.parquet')}') ORDER BY key`,
      );
      const expected = [...rows].sort((a, b) => (a.key < b.key ? -1 : 1)).map((r) => [r.key, r.value]);
      assert.deepEqual(read.getRows(), expected);
      const back: [string, unknown][] = [];
      for await (const e of (await openSavepoint(sp)).entries('op')) back.push([e.key, e.value]);
      assert.deepEqual(
        back,
        rows.map((r) => [r.key, JSON.parse(r.value)]),
      );
    } finally {
      t.cleanup();
    }
  });
});
