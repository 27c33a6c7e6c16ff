/**
 * The source runtime (src/stream/source.ts) with arrays and in-memory sources, the file source's
 * serialisable position, and the progress-bar decision (issue 8 items H, 1, 8, 32).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, describe, it } from 'node:test';
import { SOURCE_KINDS } from '../../src/connectors/index.js';
import { groupSources, type RecordSource, type SourcePosition } from '../../src/connectors/source.js';
import type { RowBatch } from '../../src/formats/format.js';
import '../../src/storage/local.js';
import '../../src/formats/ndjson.js';
import '../../src/connectors/files.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { drawsBar, Progress } from '../../src/stream/progress.js';
import {
  InterruptedError,
  pendingInterruptWaitersForTests,
  raceInterrupt,
  resetInterruptForTests,
  simulateInterruptForTests,
} from '../../src/stream/signals.js';
import { runSource } from '../../src/stream/source.js';
import { parseLines, tempDir } from '../helpers.js';

function batchOf(ts: number[], split?: string): RowBatch {
  return {
    rows: ts.map((t) => ({ t })),
    where: (i) => ({ source: 'mem', line: i + 1 }),
    raw: (i) => JSON.stringify({ t: ts[i] }),
    split,
  };
}

/** An in-memory source yielding `batches`, then (if `hang`) waiting for ever like an open pipe. */
function memSource(
  batches: number[][],
  o: { bound?: number; hang?: boolean } = {},
): RecordSource & { committed: boolean; closed: boolean } {
  let delivered = 0;
  const src = {
    progressUnit: 'rows' as const,
    defaultMaxOutOfOrdernessMs: o.bound,
    committed: false,
    closed: false,
    position: (): SourcePosition => ({ kind: 'mem', batches: delivered }),
    async *batches(): AsyncGenerator<RowBatch> {
      for (const b of batches) {
        delivered++; // counted before the yield: position() is asked after the batch was handled
        yield batchOf(b);
      }
      if (o.hang) await new Promise(() => {});
    },
    async commit() {
      src.committed = true;
    },
    async close() {
      src.closed = true;
    },
  };
  return src;
}

async function run(sources: RecordSource[], extra: { maxOutOfOrdernessMs?: number } = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const positions: (SourcePosition | undefined)[][] = [];
  const warnings: string[] = [];
  const p = runSource({
    sources,
    tsField: 't',
    tsFormat: 'epoch-ms',
    tz: 'UTC',
    bad: new BadRecords(),
    progress: new Progress('ingest', true),
    output: out,
    warn: (m) => warnings.push(m),
    onPositions: (ps) => positions.push(ps),
    ...extra,
  });
  return {
    done: p,
    lines: () => parseLines<{ watermark?: number; end?: boolean; ts?: number }>(text),
    positions,
    warnings,
  };
}

describe('runSource', () => {
  afterEach(() => resetInterruptForTests());

  it('a source without a default bound (files) emits no watermark before the end line', async () => {
    const src = memSource([
      [5000, 1000],
      [9000, 2000],
    ]);
    const r = await run([src]);
    assert.equal(await r.done, 'done');
    const lines = r.lines();
    assert.equal(lines.filter((l) => l.watermark !== undefined).length, 0);
    assert.deepEqual(
      lines.filter((l) => l.ts !== undefined).map((l) => l.ts),
      [5000, 1000, 9000, 2000],
    );
    assert.deepEqual(lines.at(-1), { end: true });
    assert.equal(src.committed, true);
    assert.equal(src.closed, true);
    assert.deepEqual(r.warnings, [], 'no ingestion-time warning with a ts field');
  });

  it('a source with a default bound of 0 (Kafka) and an explicit bound emit watermarks', async () => {
    const k = await run([memSource([[1000, 3000], [2000]], { bound: 0 })]);
    await k.done;
    assert.deepEqual(
      k
        .lines()
        .filter((l) => l.watermark !== undefined)
        .map((l) => l.watermark),
      [2999],
    );
    const f = await run([memSource([[1000, 3000], [9000]])], { maxOutOfOrdernessMs: 1000 });
    await f.done;
    assert.deepEqual(
      f
        .lines()
        .filter((l) => l.watermark !== undefined)
        .map((l) => l.watermark),
      [1999, 7999],
    );
  });

  it('a source not yet read holds the watermark back; a finished one does not', async () => {
    const a = memSource([[1000], [5000]], { bound: 0 });
    const b = memSource([[7000], [9000]], { bound: 0 });
    const r = await run([a, b]);
    await r.done;
    const wms = r
      .lines()
      .filter((l) => l.watermark !== undefined)
      .map((l) => l.watermark);
    // While `a` runs, `b` (not started) holds it back; after `a` ended, b's own watermark counts.
    assert.deepEqual(wms, [6999, 8999]);
  });

  it('hands out every source’s serialisable position after each batch', async () => {
    const r = await run([memSource([[1], [2], [3]])]);
    await r.done;
    assert.deepEqual(r.positions, [
      [{ kind: 'mem', batches: 1 }],
      [{ kind: 'mem', batches: 2 }],
      [{ kind: 'mem', batches: 3 }],
    ]);
  });

  it('a signal while the source waits for data: InterruptedError, no end line, no commit', async () => {
    const src = memSource([[1000, 2000]], { hang: true });
    const r = await run([src]);
    await new Promise((res) => setTimeout(res, 50));
    simulateInterruptForTests('SIGTERM');
    await assert.rejects(r.done, (e: unknown) => {
      assert.ok(e instanceof InterruptedError);
      assert.equal(e.exitCode, 143);
      assert.match(e.message, /SIGTERM after 2 records; .*no end-of-stream line/);
      return true;
    });
    assert.equal(
      r.lines().some((l) => l.end === true),
      false,
    );
    assert.equal(src.committed, false);
    assert.equal(src.closed, true);
  });

  it('raceInterrupt leaves no waiter behind once its promise settled (no leak per batch)', async () => {
    for (let i = 0; i < 1000; i++) assert.equal(await raceInterrupt(Promise.resolve(i)), i);
    await assert.rejects(raceInterrupt(Promise.reject(new Error('x'))), /x/);
    assert.equal(pendingInterruptWaitersForTests(), 0);
    const pending = raceInterrupt(new Promise(() => {}));
    assert.equal(pendingInterruptWaitersForTests(), 1);
    simulateInterruptForTests('SIGTERM');
    assert.ok((await pending) instanceof InterruptedError);
    assert.equal(pendingInterruptWaitersForTests(), 0);
  });

  it('a signal that arrives when the source has just ended still writes no end line', async () => {
    // The Kafka source used to end its batches on SIGTERM, which then looked like end of input.
    const src: RecordSource = {
      ...memSource([]),
      async *batches() {
        yield batchOf([1000]);
        simulateInterruptForTests('SIGINT');
      },
    };
    const r = await run([src]);
    await assert.rejects(r.done, (e: unknown) => e instanceof InterruptedError && e.exitCode === 130);
    assert.equal(
      r.lines().some((l) => l.end === true),
      false,
    );
  });

  it('without a ts field and without a native time, warns once about ingestion time', async () => {
    const out = new PassThrough();
    out.resume();
    const warnings: string[] = [];
    await runSource({
      sources: [memSource([[1], [2], [3]])],
      tsFormat: 'auto',
      tz: 'UTC',
      bad: new BadRecords(),
      progress: new Progress('ingest', true),
      output: out,
      warn: (m) => warnings.push(m),
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /ingestion time.*--ts-field/);
  });
});

describe('file source position', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('is JSON, counts rows per file, and resuming from it gives exactly the rows after it', async () => {
    const files = ['a', 'b'].map((n, fi) => {
      const f = join(t.dir, `${n}.ndjson`);
      const n2 = fi === 0 ? 120_000 : 50;
      writeFileSync(f, `${Array.from({ length: n2 }, (_, i) => `{"f":${fi},"i":${i}}`).join('\n')}\n`);
      return { path: f, rows: n2 };
    });
    const [g] = groupSources(
      files.map((f) => f.path),
      SOURCE_KINDS,
    );
    const src = await g.kind.open(g.sources, {});
    const delivered: { f: number; i: number }[] = [];
    const cuts: { pos: SourcePosition; at: number }[] = [];
    for await (const b of src.batches()) {
      for (const r of b.rows) delivered.push(r as { f: number; i: number });
      const pos = src.position?.();
      assert.ok(pos);
      cuts.push({ pos: JSON.parse(JSON.stringify(pos)) as SourcePosition, at: delivered.length });
    }
    await src.close();
    assert.ok(cuts.length >= 3, `several batches (${cuts.length})`);
    const { kind, file, uri, rows, count } = src.position?.() ?? { kind: '' };
    assert.deepEqual(
      { kind, file, uri, rows, count },
      { kind: 'files', file: 2, uri: null, rows: 0, count: 2 },
    );
    for (const { pos, at } of cuts) {
      assert.equal(pos.kind, 'files');
      const file = pos.file as number;
      const rows = pos.rows as number;
      if (file < files.length) assert.equal(pos.uri, files[file].path);
      // What a reader resuming at `pos` delivers: file `file` from row `rows`, then later files.
      const resumed: { f: number; i: number }[] = [];
      for (let fi = file; fi < files.length; fi++)
        for (let i = fi === file ? rows : 0; i < files[fi].rows; i++) resumed.push({ f: fi, i });
      assert.deepEqual(resumed.length, delivered.length - at);
      assert.deepEqual(resumed.slice(0, 3), delivered.slice(at, at + 3));
    }
  });
});

describe('progress bar: one per pipeline', () => {
  it('only the first stage of a pipeline draws a bar, only on a terminal, never with --quiet', () => {
    const base = { quiet: false, stderrIsTTY: true, source: false } as const;
    assert.equal(drawsBar({ ...base, source: true, stdin: 'pipe' }), true, 'ingest fed by a pipe');
    assert.equal(drawsBar({ ...base, stdin: 'pipe' }), false, 'a stage after another stage');
    assert.equal(drawsBar({ ...base, stdin: 'file' }), true, 'sink T < saved.kappa is first');
    assert.equal(drawsBar({ ...base, stdin: 'tty' }), true);
    assert.equal(drawsBar({ ...base, source: true, stdin: 'tty', stderrIsTTY: false }), false);
    assert.equal(drawsBar({ ...base, source: true, stdin: 'tty', quiet: true }), false);
  });
});
