/**
 * The version-2 read side over a reused read buffer (src/storage/stdin.ts `stdinStream`,
 * src/stream/arrow-input.ts `IpcFramer.push(c, true)`, arrow.ts in-place int64 -> double
 * conversion): no batch may see the reader's buffer after it was reused, batches decoded earlier
 * stay unchanged while later ones are read, a caller's own (not reused) bytes are never written,
 * and stdin read through a pipe, a socket and a regular file gives every byte in order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { markReused } from '../../src/storage/stdin.js';
import type { RecordBatch } from '../../src/stream/batch.js';
import { readStream, type StreamConsumer } from '../../src/stream/input.js';
import type { Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';
import { ROOT, tempDir } from '../helpers.js';

/** Three record batches (a watermark between them flushes the writer's pending rows). */
async function stream(): Promise<{ bytes: Buffer; recs: Rec[][] }> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  w.header({ kappa: 1, schema: { n: 'int64', x: 'float64', s: 'string', t: 'timestamp' } });
  const recs: Rec[][] = [];
  for (let b = 0; b < 3; b++) {
    const part: Rec[] = [];
    for (let i = 0; i < 300 + 50 * b; i++) {
      const n = b === 2 && i === 7 ? 2 ** 60 + 1 : b * 1_000_000 + i * 3 - 500;
      part.push({
        ts: 1_700_000_000_000 + b * 10_000_000 + i * 1000,
        key: `k${(i + b) % 5}`,
        value: {
          n: n > Number.MAX_SAFE_INTEGER ? '1152921504606846977' : n,
          x: i / 4 + b,
          s: `s${i % 3}-${b}`,
          t: 1_600_000_000_000 + b * 1000 + i,
        },
      });
    }
    for (const r of part) w.record(r);
    w.watermark(1_700_000_000_000 + b * 10_000_000 + 999_999);
    recs.push(part);
  }
  w.endEvent();
  await w.close();
  return { bytes: Buffer.concat(chunks), recs };
}

/** Reads `bytes` through one reused buffer of `size` bytes, scribbled over after each chunk. */
async function readReused(bytes: Buffer, size: number): Promise<RecordBatch[]> {
  const buf = Buffer.allocUnsafeSlow(size);
  markReused(buf.buffer);
  async function* gen(): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += size) {
      const n = bytes.copy(buf, 0, i, Math.min(bytes.length, i + size));
      yield buf.subarray(0, n);
      buf.fill(0xaa); // the reader's next read: whatever still points here is wrong now
    }
  }
  return collect(gen());
}

async function collect(input: AsyncIterable<Buffer>): Promise<RecordBatch[]> {
  const batches: RecordBatch[] = [];
  const c: StreamConsumer = {
    header: () => {},
    record: () => assert.fail('a batch consumer gets batches'),
    batch: (b) => {
      // touch the accessors that convert in place, as the window does, before the next batch
      b.column('n')?.float64();
      b.column('x')?.float64();
      b.column('t')?.float64();
      b.column('s')?.dictionary();
      batches.push(b);
    },
    watermark: () => {},
    barrier: () => {},
    end: () => {},
    stop: () => {},
  };
  await readStream(input, c);
  return batches;
}

function rows(b: RecordBatch): Rec[] {
  const out: Rec[] = [];
  for (let i = 0; i < b.length; i++) {
    const v = b.value(i);
    out.push({ ts: b.ts[i], key: b.key.get(i) as string, value: v });
  }
  return out;
}

describe('v2 read side over a reused read buffer', () => {
  it('keeps every earlier batch intact while later chunks overwrite the read buffer', async () => {
    const { bytes, recs } = await stream();
    for (const size of [bytes.length + 64, 1 << 16, 4096, 1000, 13]) {
      const batches = await readReused(bytes, size);
      assert.equal(batches.length, 3, `chunks of ${size}`);
      for (let k = 0; k < 3; k++) {
        assert.deepEqual(rows(batches[k]), recs[k], `batch ${k}, chunks of ${size}`);
        const n = batches[k].column('n');
        const f = n?.float64();
        if (k < 2) {
          assert.ok(f, 'int64 column within 2^53 has doubles');
          assert.deepEqual(
            Array.from(f),
            recs[k].map((r) => (r.value as { n: number }).n),
          );
        } else assert.equal(f, undefined, 'a value beyond 2^53: no doubles, exact strings');
        assert.deepEqual(
          Array.from(batches[k].ts),
          recs[k].map((r) => r.ts),
        );
      }
    }
  });

  it('never writes into bytes the caller owns (chunks that are not reused)', async () => {
    const { bytes, recs } = await stream();
    const before = createHash('sha1').update(bytes).digest('hex');
    for (const size of [bytes.length, 4096]) {
      async function* gen(): AsyncGenerator<Buffer> {
        for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
      }
      const batches = await collect(gen());
      assert.deepEqual(batches.map(rows), recs);
    }
    assert.equal(createHash('sha1').update(bytes).digest('hex'), before);
  });

  it('reads stdin of a stream stage through a pipe, a socket and a regular file, every byte in order', () => {
    const { dir, cleanup } = tempDir();
    try {
      const data = Buffer.alloc(3_000_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
      const file = join(dir, 'in.bin');
      writeFileSync(file, data);
      const want = createHash('sha1').update(data).digest('hex');
      const script = join(dir, 'hash.mjs');
      writeFileSync(
        script,
        `import { createHash } from 'node:crypto';
import { stdinStream, isTransientChunk } from ${JSON.stringify(join(ROOT, 'dist/src/storage/stdin.js'))};
const h = createHash('sha1');
let transient = 0;
for await (const c of stdinStream()) {
  h.update(c);
  if (isTransientChunk(c)) transient++;
  await new Promise((r) => setTimeout(r, 0));
}
console.log(h.digest('hex'), transient > 0);
`,
      );
      const opts = { encoding: 'utf8' as const, timeout: 30_000 };
      const fifo = spawnSync('sh', ['-c', `cat "${file}" | node "${script}"`], opts);
      assert.equal(fifo.stdout.trim(), `${want} true`, fifo.stderr);
      const socket = spawnSync('node', [script], { ...opts, input: data });
      assert.equal(socket.stdout.trim(), `${want} true`, socket.stderr);
      const regular = spawnSync('sh', ['-c', `node "${script}" < "${file}"`], opts);
      assert.equal(regular.stdout.trim(), `${want} true`, regular.stderr);
      const empty = spawnSync('sh', ['-c', `node "${script}" < /dev/null`], opts);
      assert.equal(empty.stdout.trim(), `${createHash('sha1').digest('hex')} false`, empty.stderr);
    } finally {
      cleanup();
    }
  });
});
