/**
 * Micro-benchmarks of the stream protocol's hot loop, the part every command pays per record:
 * line splitting (`LineSplitter` vs Node's `readline`), record decoding (`readStream`'s fast path
 * is `JSON.parse` of the line) and record encoding (`encodeRecord` vs `JSON.stringify` of the whole
 * record, and with the raw value text reused as ingest does for unchanged NDJSON lines).
 *
 * Usage: `node dist/bench/micro.js [FILE.ndjson] [N]` (default: N synthetic flight-like records).
 * Prints one line per case: median of 5 runs after a warm-up, in ns/record and records/s.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { LineSplitter } from '../src/stream/lines.js';
import { encodeRecord, type Rec } from '../src/stream/protocol.js';

function synthetic(n: number): string {
  const origins = ['LAS', 'ATL', 'MCI', 'ORD', 'SFO', 'JFK', 'DEN', 'SEA'];
  const parts: string[] = [];
  for (let i = 0; i < n; i++)
    parts.push(
      JSON.stringify({
        date: new Date(978307260000 + i * 1000).toISOString(),
        delay: (i % 200) - 20,
        distance: (i * 7) % 3000,
        origin: origins[i % origins.length],
        destination: origins[(i * 3) % origins.length],
      }),
    );
  return `${parts.join('\n')}\n`;
}

function chunks(buf: Buffer, size = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

async function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const ms: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b)[2];
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const n = Number(process.argv[3] ?? 1_000_000);
  const text = file ? readFileSync(file, 'utf8') : synthetic(n);
  const buf = Buffer.from(text);
  const parts = chunks(buf);
  const lines = text.split('\n').filter((l) => l.length > 0);
  const count = lines.length;
  const values = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const recs: Rec[] = values.map((v, i) => ({ ts: 978307260000 + i, key: null, value: v }));
  const encoded = recs.map((r, i) => encodeRecord(r, lines[i]));
  let sink = 0;
  const cases: [string, () => unknown | Promise<unknown>][] = [
    [
      'split: LineSplitter over 64 KiB chunks',
      () => {
        const sp = new LineSplitter();
        for (const c of parts) sink += sp.push(c).length;
        sink += sp.end().length;
      },
    ],
    [
      'split: node:readline',
      async () => {
        const rl = createInterface({ input: Readable.from(parts), crlfDelay: Number.POSITIVE_INFINITY });
        for await (const _ of rl) sink++;
      },
    ],
    [
      'decode: JSON.parse of a record line',
      () => {
        for (const l of encoded) sink += (JSON.parse(l) as Rec).ts;
      },
    ],
    [
      'encode: encodeRecord (value serialised)',
      () => {
        for (const r of recs) sink += encodeRecord(r).length;
      },
    ],
    [
      'encode: encodeRecord (raw value text reused)',
      () => {
        for (let i = 0; i < recs.length; i++) sink += encodeRecord(recs[i], lines[i]).length;
      },
    ],
    [
      'encode: JSON.stringify of the whole record',
      () => {
        for (const r of recs) sink += JSON.stringify(r).length;
      },
    ],
  ];
  process.stdout.write(
    `${count.toLocaleString('en-US')} records, ${(buf.length / 1e6).toFixed(1)} MB, Node ${process.version}\n`,
  );
  for (const [name, fn] of cases) {
    const ms = await time(fn);
    const ns = (ms * 1e6) / count;
    process.stdout.write(
      `${name.padEnd(46)} ${ns.toFixed(0).padStart(5)} ns/record  ${(((count / ms) * 1000) / 1e6).toFixed(2)} M records/s\n`,
    );
  }
  if (sink === -1) process.stdout.write('\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`micro: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
