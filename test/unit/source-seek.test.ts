/**
 * Issue 9, "sources seek to its positions": a files source read to some point, its position taken
 * (and sent through JSON, as a barrier carries it), then opened again with `startAt`, delivers
 * exactly the rest: rows before + rows after equal DuckDB's read of the same files, in order, each
 * once. A changed input is a DataError; stdin cannot be resumed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { AsyncBuffer } from 'hyparquet';
import { filesSource } from '../../src/connectors/files.js';
import { resumeOffsets } from '../../src/connectors/kafka/source.js';
import type { SourceOptions, SourcePosition } from '../../src/connectors/source.js';
import { DataError, UsageError } from '../../src/errors.js';
import { parquetBatches, readParquetFooter, storeAsyncBuffer } from '../../src/formats/parquet/read.js';
import { LocalStore } from '../../src/storage/local.js';
import { tempDir } from '../helpers.js';

interface Got {
  rows: unknown[];
  lines: (number | undefined)[];
  errors: number;
  pos: SourcePosition;
  batches: number;
}

/**
 * Reads `sources` through the files source, at most `maxBatches` batches, and returns the rows
 * (bad rows as `undefined`), their line numbers and the position after them (through JSON).
 */
async function read(
  sources: string[],
  opts: SourceOptions,
  maxBatches = Number.POSITIVE_INFINITY,
): Promise<Got> {
  const src = await filesSource.open(sources, opts);
  const out: Got = { rows: [], lines: [], errors: 0, pos: src.position?.() as SourcePosition, batches: 0 };
  try {
    if (maxBatches > 0)
      for await (const b of src.batches()) {
        for (let i = 0; i < b.rows.length; i++) {
          out.rows.push(b.rows[i]);
          out.lines.push(b.where(i).line);
          if (b.errors?.has(i)) out.errors++;
        }
        if (++out.batches >= maxBatches) break;
      }
    out.pos = JSON.parse(JSON.stringify(src.position?.())) as SourcePosition;
  } finally {
    await src.close();
  }
  return out;
}

/** A deterministic PRNG (mulberry32), so a failing split point can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rows as comparable JSON with sorted keys and the given fields only. */
function canon(rows: unknown[], fields: string[]): string[] {
  return rows.map((r) =>
    r === undefined ? 'BAD' : JSON.stringify(fields.map((f) => (r as Record<string, unknown>)[f] ?? null)),
  );
}

let db: DuckDBInstance;
let con: DuckDBConnection;
let tmp: { dir: string; cleanup: () => void };

async function duck(sql: string, fields: string[]): Promise<string[]> {
  const rows = (await con.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  return canon(rows, fields);
}

/**
 * Splits a read at `splits` random batch counts (and before the first and after the last batch):
 * rows before + rows after must equal `whole` (DuckDB's rows) in order, and the position after
 * the resumed read must equal the one of an uninterrupted read.
 */
async function checkSplits(
  sources: string[],
  opts: SourceOptions,
  whole: string[],
  fields: string[],
  seed: number,
  splits = 4,
): Promise<SourcePosition[]> {
  const full = await read(sources, opts);
  assert.deepEqual(canon(full.rows, fields), whole, 'an uninterrupted read equals DuckDB');
  assert.ok(full.batches >= 3, `the input should give several batches, got ${full.batches}`);
  const r = rng(seed);
  const points = [
    0,
    full.batches,
    ...Array.from({ length: splits }, () => 1 + Math.floor(r() * (full.batches - 1))),
  ];
  const seen: SourcePosition[] = [];
  for (const k of points) {
    const a = await read(sources, opts, k);
    const b = await read(sources, { ...opts, startAt: a.pos });
    const msg = `seed ${seed}, split after ${k} batches at ${JSON.stringify(a.pos)}`;
    assert.deepEqual(canon([...a.rows, ...b.rows], fields), whole, msg);
    assert.deepEqual([...a.lines, ...b.lines], full.lines, `line numbers stay the file's own (${msg})`);
    assert.deepEqual(b.pos, full.pos, msg);
    // A resumed read's own positions continue counting: resuming from one of them again gives the rest.
    const b1 = await read(sources, { ...opts, startAt: a.pos }, 1);
    if (b1.pos.file === a.pos.file && b1.rows.length > 0)
      assert.equal(b1.pos.rows, (a.pos.rows as number) + b1.rows.length, msg);
    const b2 = await read(sources, { ...opts, startAt: b1.pos });
    assert.deepEqual(
      canon([...b1.rows, ...b2.rows], fields),
      canon(b.rows, fields),
      `resumed twice (${msg})`,
    );
    assert.deepEqual([...b1.lines, ...b2.lines], b.lines, msg);
    seen.push(a.pos);
  }
  return seen;
}

const SEED = Number(process.env.KAPPA_SEED ?? Date.now() % 100000);

/** `n` rows of varied length (so batches end at varied rows), with a text field holding commas and quotes. */
function genRows(n: number, from = 0): { id: number; g: number; s: string }[] {
  const r = rng(n + from);
  return Array.from({ length: n }, (_, i) => ({
    id: from + i,
    g: (from + i) % 7,
    s: `v${'é,"x'.repeat(Math.floor(r() * 12))}${from + i}`,
  }));
}

before(async () => {
  db = await DuckDBInstance.create(':memory:');
  con = await db.connect();
  tmp = tempDir('kappa-seek-');
});
after(() => {
  con.closeSync();
  tmp.cleanup();
});

describe('files source: resume at a position (startAt)', () => {
  const F = ['id', 'g', 's'];

  it('NDJSON: byte/line positions; before + after = the whole file; bad lines keep their line numbers', async () => {
    const p = join(tmp.dir, 'a.ndjson');
    const rows = genRows(60_000);
    // Blank lines and a CRLF line, to make bytes and lines differ from rows.
    const text = rows.map((x, i) => `${JSON.stringify(x)}${i % 1000 === 5 ? '\r\n\n' : '\n'}`).join('');
    writeFileSync(p, text);
    const whole = await duck(`SELECT id::INTEGER AS id, g::INTEGER AS g, s FROM read_json('${p}')`, F);
    const pos = await checkSplits([p], {}, whole, F, SEED);
    const mid = pos.find((x) => (x.byte as number) > 0 && (x.byte as number) < (x.size as number));
    assert.ok(mid, 'some position carries a byte offset');
    // The byte offset is the start of the line numbered `line`.
    const before = Buffer.from(text)
      .subarray(0, mid.byte as number)
      .toString();
    assert.ok(before.endsWith('\n'), 'a byte offset is at a line start');
    assert.equal(before.split('\n').length, mid.line, 'line is the 1-based number of the line at byte');
    assert.equal(mid.count, 1);
    assert.equal(typeof mid.listing, 'string');
    assert.equal(mid.size, Buffer.byteLength(text));
    // A resume seeks: with the bytes before the offset blanked out (same size), the rest is the same.
    const rest = await read([p], { startAt: mid });
    const buf = Buffer.from(text);
    buf.fill(0x20, 0, mid.byte as number);
    writeFileSync(p, buf);
    utimesSync(p, new Date(mid.mtime as number), new Date(mid.mtime as number));
    const seeked = await read([p], { startAt: mid });
    assert.deepEqual(seeked.rows, rest.rows);
    assert.deepEqual(seeked.lines, rest.lines);
    assert.ok(rest.rows.length > 0);
  });

  it('NDJSON: a bad line after the resume point is reported with its line in the file', async () => {
    const p = join(tmp.dir, 'bad.ndjson');
    const lines = genRows(40_000).map((x) => JSON.stringify(x));
    lines[35_000] = '{not json';
    writeFileSync(p, `${lines.join('\n')}\n`);
    const a = await read([p], {}, 1);
    assert.ok((a.pos.line as number) < 35_000, 'the split is before the bad line');
    const b = await read([p], { startAt: a.pos });
    assert.equal(b.errors, 1);
    assert.equal(b.lines[b.rows.indexOf(undefined)], 35_001);
  });

  it('gzip NDJSON: the byte offset is into the decompressed bytes', async () => {
    const p = join(tmp.dir, 'z.ndjson.gz');
    writeFileSync(
      p,
      gzipSync(
        `${genRows(30_000)
          .map((x) => JSON.stringify(x))
          .join('\n')}\n`,
      ),
    );
    const whole = await duck(`SELECT id::INTEGER AS id, g::INTEGER AS g, s FROM read_json('${p}')`, F);
    const pos = await checkSplits([p], {}, whole, F, SEED + 1);
    assert.ok(pos.some((x) => (x.byte as number) > 0));
  });

  it('JSON array file: rows only, skipped on resume', async () => {
    const p = join(tmp.dir, 'arr.json');
    writeFileSync(
      p,
      `[\n${genRows(40_000)
        .map((x) => JSON.stringify(x))
        .join(',\n')}\n]\n`,
    );
    const whole = await duck(`SELECT id::INTEGER AS id, g::INTEGER AS g, s FROM read_json('${p}')`, F);
    const pos = await checkSplits([p], {}, whole, F, SEED + 2);
    assert.ok(pos.every((x) => x.byte === undefined));
  });

  it('CSV with a header and quoted fields spanning lines: byte/line positions, header re-read', async () => {
    const p = join(tmp.dir, 'c.csv');
    const rows = genRows(50_000);
    const q = (s: string) => `"${s.replaceAll('"', '""')}"`;
    const text = `id,g,s\n${rows.map((x) => `${x.id},${x.g},${x.id % 97 === 0 ? q(`${x.s}\nmore`) : q(x.s)}\n`).join('')}`;
    writeFileSync(p, text);
    for (const x of rows) if (x.id % 97 === 0) x.s = `${x.s}\nmore`;
    const whole = await duck(
      `SELECT id::INTEGER AS id, g::INTEGER AS g, s FROM read_csv('${p}', header = true, quote = '"', escape = '"', columns = {'id': 'INTEGER', 'g': 'INTEGER', 's': 'VARCHAR'})`,
      F,
    );
    assert.deepEqual(whole, canon(rows, F));
    const pos = await checkSplits([p], {}, whole, F, SEED + 3);
    const mid = pos.find((x) => (x.byte as number) > 0 && (x.byte as number) < (x.size as number));
    assert.ok(mid);
    assert.ok(
      Buffer.from(text)
        .subarray(0, mid.byte as number)
        .toString()
        .endsWith('\n'),
    );
    assert.ok(
      (mid.line as number) > (mid.rows as number) + 1,
      'line counts the header and the multi-line records',
    );
    // A resume reads the header, then seeks: the records before the offset are not read.
    const rest = await read([p], { startAt: mid });
    const buf = Buffer.from(text);
    buf.fill(0x0a, 'id,g,s\n'.length, mid.byte as number);
    writeFileSync(p, buf);
    utimesSync(p, new Date(mid.mtime as number), new Date(mid.mtime as number));
    const seeked = await read([p], { startAt: mid });
    assert.deepEqual(seeked.rows, rest.rows);
    assert.ok(rest.rows.length > 0);
  });

  it('Parquet with several row groups: rowGroup/row positions; whole groups before it are not read', async () => {
    const p = join(tmp.dir, 'p.parquet');
    await con.run(
      `COPY (SELECT i::INTEGER AS id, (i % 7)::INTEGER AS g, 'v' || i AS s FROM range(50000) t(i)) TO '${p}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`,
    );
    const whole = await duck(`SELECT id, g, s FROM read_parquet('${p}')`, F);
    const pos = await checkSplits([p], {}, whole, F, SEED + 4);
    const mid = pos.find((x) => (x.rowGroup as number) > 2);
    assert.ok(mid, `some position is past group 2: ${JSON.stringify(pos)}`);
    // Resuming at the last group reads far fewer bytes than the whole file.
    const store = new LocalStore();
    const size = (await store.stat(p))!.size;
    let bytes = 0;
    const inner = storeAsyncBuffer(store, p, size);
    const counting: AsyncBuffer = {
      byteLength: size,
      slice: async (s, e) => {
        bytes += (e ?? size) - s;
        return inner.slice(s, e);
      },
    };
    const info = await readParquetFooter(counting, p);
    const groups = info.metadata.row_groups.length;
    assert.ok(groups >= 10, `several row groups (${groups})`);
    bytes = 0;
    let n = 0;
    for await (const b of parquetBatches(counting, p, info, { rowGroup: groups - 1, row: 5 }))
      n += b.rows.length;
    assert.equal(n, Number(info.metadata.row_groups[groups - 1].num_rows) - 5);
    assert.ok(bytes < size / 4, `read ${bytes} of ${size} bytes`);
  });

  it('a directory of several files (Hive partitions): the position moves across files', async () => {
    const dir = join(tmp.dir, 'dir');
    for (const [k, d] of ['1', '2', '3'].entries()) {
      mkdirSync(join(dir, `d=${d}`), { recursive: true });
      writeFileSync(
        join(dir, `d=${d}`, 'part.ndjson'),
        `${genRows(25_000, k * 25_000)
          .map((x) => JSON.stringify(x))
          .join('\n')}\n`,
      );
    }
    const G = [...F, 'd'];
    const whole = await duck(
      `SELECT id::INTEGER AS id, g::INTEGER AS g, s, d::VARCHAR AS d FROM read_json('${dir}/*/*.ndjson', hive_partitioning = true) ORDER BY id`,
      G,
    );
    const pos = await checkSplits([dir], {}, whole, G, SEED + 5, 6);
    assert.ok(new Set(pos.map((x) => x.file)).size >= 2, 'splits land in different files');
    assert.deepEqual(pos.find((x) => x.file === 3)?.uri ?? null, null);
  });

  it('a changed input is a DataError naming the file; stdin cannot be resumed', async () => {
    const p = join(tmp.dir, 'ch.ndjson');
    writeFileSync(
      p,
      `${genRows(40_000)
        .map((x) => JSON.stringify(x))
        .join('\n')}\n`,
    );
    const a = await read([p], {}, 1);
    appendFileSync(p, '{"id":-1}\n');
    await assert.rejects(read([p], { startAt: a.pos }), (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match((e as Error).message, /ch\.ndjson.*bytes at the checkpoint/);
      return true;
    });
    // Same size, another modification time: the file was rewritten.
    const q = join(tmp.dir, 'ch-m.ndjson');
    writeFileSync(
      q,
      `${genRows(40_000)
        .map((x) => JSON.stringify(x))
        .join('\n')}\n`,
    );
    const m = await read([q], {}, 1);
    assert.equal(typeof m.pos.mtime, 'number');
    utimesSync(q, new Date((m.pos.mtime as number) + 5000), new Date((m.pos.mtime as number) + 5000));
    await assert.rejects(read([q], { startAt: m.pos }), /ch-m\.ndjson: it was modified since the checkpoint/);
    // A named pipe cannot be read again.
    const fifo = join(tmp.dir, 'in.ndjson');
    execFileSync('mkfifo', [fifo]);
    await assert.rejects(read([fifo], { startAt: m.pos }), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.match((e as Error).message, /in\.ndjson.*cannot be read again/);
      return true;
    });
    const dir = join(tmp.dir, 'ch2');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'a.ndjson'),
      `${genRows(40_000)
        .map((x) => JSON.stringify(x))
        .join('\n')}\n`,
    );
    const b = await read([dir], {}, 1);
    writeFileSync(join(dir, 'b.ndjson'), '{"id":1}\n');
    await assert.rejects(read([dir], { startAt: b.pos }), (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match((e as Error).message, /1 input files, now there are 2/);
      return true;
    });
    await assert.rejects(read([dir], { startAt: { kind: 'kafka', topic: 't', next: {} } }), DataError);
    await assert.rejects(read(['-'], { startAt: b.pos }), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.match((e as Error).message, /stdin/);
      assert.match((e as UsageError).hint ?? '', /re-readable source/);
      return true;
    });
  });
});

describe('kafka source: start offsets from a saved position (resumeOffsets)', () => {
  const bounds = new Map([
    [0, { low: 10n, high: 100n }],
    [1, { low: 0n, high: 50n }],
    [2, { low: 5n, high: 9n }],
  ]);
  const pos = (next: Record<string, string>): SourcePosition => ({ kind: 'kafka', topic: 't', next });
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);

  it('listed partitions start at their next offset, others (added since) at the log start', () => {
    const m = resumeOffsets(
      pos({ 0: '42', 1: '50' }),
      'kafka://b/t',
      't',
      [0, 1, 2],
      [0, 1, 2],
      bounds,
      false,
      warn,
    );
    assert.deepEqual(
      [...m],
      [
        [0, 42n],
        [1, 50n],
        [2, 5n],
      ],
    );
  });

  it('a partition that no longer exists, another topic, an offset past the log end: DataError', () => {
    const f = (p: SourcePosition) => () =>
      resumeOffsets(p, 'kafka://b/t', 't', [0, 1, 2], [0, 1, 2], bounds, false, warn);
    assert.throws(f(pos({ 3: '0' })), /partition 3 of the saved position no longer exists/);
    assert.throws(f({ kind: 'kafka', topic: 'u', next: {} }), DataError);
    assert.throws(f({ kind: 'files', file: 0 }), DataError);
    assert.throws(f(pos({ 1: '51' })), /beyond the log end 50/);
    assert.throws(f(pos({ 1: '-1' })), DataError);
  });

  it('an offset below the log start: DataError, or a warning with the number lost under --on-error skip', () => {
    assert.throws(
      () => resumeOffsets(pos({ 0: '4' }), 'kafka://b/t', 't', [0, 1, 2], [0], bounds, false, warn),
      /6 records were deleted by retention/,
    );
    warnings.length = 0;
    const m = resumeOffsets(pos({ 0: '4' }), 'kafka://b/t', 't', [0, 1, 2], [0], bounds, true, warn);
    assert.equal(m.get(0), 10n);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /6 records were deleted .*resuming at 10/);
  });
});
