/**
 * The stream reader (src/stream/input.ts) and line splitter (src/stream/lines.ts) against the
 * rules of kappa-stream(5): record validation on every path, bad lines through the consumer's
 * policy, nesting depth, line length, cut-off streams, protocol versions, concatenation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataError, KappaError, RuntimeError } from '../../src/errors.js';
import { readStream, type StreamConsumer } from '../../src/stream/input.js';
import { LineSplitter, lineBatches } from '../../src/stream/lines.js';
import {
  decodeLine,
  jsonTooDeep,
  MAX_JSON_DEPTH,
  ProtocolError,
  type Rec,
} from '../../src/stream/protocol.js';

interface Seen {
  events: string[];
  records: Rec[];
  bad: { line: number; reason: string; raw: string }[];
}

/** A consumer that records what it gets; `withBad` false leaves out the bad-record callback. */
function collect(withBad = true): { c: StreamConsumer; seen: Seen } {
  const seen: Seen = { events: [], records: [], bad: [] };
  const c: StreamConsumer = {
    header: (h) => void seen.events.push(`header ${h.kappa}`),
    record: (r, line) => {
      seen.records.push(r);
      seen.events.push(`record ${line}`);
    },
    watermark: (wm) => void seen.events.push(`watermark ${wm}`),
    barrier: (b) => void seen.events.push(`barrier ${b.id}`),
    end: () => void seen.events.push('end'),
    stop: (st) => void seen.events.push(`stop ${st.checkpoint}`),
  };
  if (withBad) c.bad = (line, reason, raw) => void seen.bad.push({ line, reason, raw });
  return { c, seen };
}

const H = '{"kappa":1}';
const E = '{"end":true}';
const rec = (ts: unknown, v: unknown = 1) =>
  `{"ts":${JSON.stringify(ts)},"key":null,"value":${JSON.stringify(v)}}`;
const deep = (d: number) => `${'['.repeat(d)}${']'.repeat(d)}`;

async function* chunks(list: string[]): AsyncGenerator<string> {
  yield* list;
}

async function read(text: string | string[], withBad = true, maxLineBytes?: number) {
  const { c, seen } = collect(withBad);
  let error: unknown;
  try {
    await readStream(chunks(typeof text === 'string' ? [text] : text), c, { maxLineBytes });
  } catch (e) {
    error = e;
  }
  return { seen, error };
}

describe('stream reader: records are validated on the fast path as on the slow one (issue 8 item 5)', () => {
  for (const [what, line] of [
    ['ts a string (fast path)', rec('abc')],
    ['ts 1e300 (fast path)', '{"ts":1e300,"key":null,"value":1}'],
    ['ts not an integer (fast path)', rec(1.5)],
    ['ts beyond 8.64e15 (fast path)', rec(8.64e15 + 1)],
    ['ts a string (slow path: key order)', '{"value":1,"ts":"abc"}'],
    ['no value (fast path)', '{"ts":5,"key":null}'],
    ['key a number', '{"ts":5,"key":7,"value":1}'],
  ] as const)
    it(`${what} is a bad record with its line, the next records still read`, async () => {
      const { seen, error } = await read(`${H}\n${rec(1)}\n${line}\n${rec(2)}\n${E}\n`);
      assert.equal(error, undefined);
      assert.deepEqual(seen.events, ['header 1', 'record 2', 'record 4', 'end']);
      assert.equal(seen.bad.length, 1);
      assert.equal(seen.bad[0].line, 3);
      assert.equal(seen.bad[0].raw, line);
    });
  it('the largest valid ts values pass', async () => {
    const { seen, error } = await read(`${H}\n${rec(8.64e15)}\n${rec(-8.64e15)}\n${E}\n`);
    assert.equal(error, undefined);
    assert.deepEqual(
      seen.records.map((r) => r.ts),
      [8.64e15, -8.64e15],
    );
  });
  it('without a bad-record callback a bad line is a DataError naming its line', async () => {
    const { error } = await read(`${H}\n${rec('abc')}\n${E}\n`, false);
    assert.ok(error instanceof DataError);
    assert.match((error as Error).message, /stdin line 2: "ts" must be an integer/);
  });
  it('decodeLine rejects the same records', () => {
    assert.throws(() => decodeLine(rec('abc')), ProtocolError);
    assert.throws(() => decodeLine('{"ts":1e300,"value":1}'), ProtocolError);
    assert.throws(() => decodeLine('{"ts":1}'), ProtocolError);
  });
});

describe('stream reader: nesting depth (issue 8 item 16)', () => {
  it('jsonTooDeep counts brackets outside strings only', () => {
    assert.equal(jsonTooDeep(deep(MAX_JSON_DEPTH)), false);
    assert.equal(jsonTooDeep(deep(MAX_JSON_DEPTH + 1)), true);
    assert.equal(jsonTooDeep(`{"a":${JSON.stringify('['.repeat(5000))}}`), false);
    // An escaped quote inside a string does not end it; an escaped backslash before the quote does.
    assert.equal(jsonTooDeep(`["\\"${'['.repeat(3000)}"]`), false);
    assert.equal(jsonTooDeep(`["\\\\",${deep(2000)}]`), true);
  });
  it('a record nested 10,000 deep is a bad record naming its line; a value 1000 deep passes', async () => {
    const ok = rec(1, JSON.parse(deep(MAX_JSON_DEPTH)));
    const tooDeep = `{"ts":2,"key":null,"value":${deep(10_000)}}`;
    const justTooDeep = rec(3, JSON.parse(deep(MAX_JSON_DEPTH + 1)));
    const { seen, error } = await read(`${H}\n${ok}\n${tooDeep}\n${justTooDeep}\n${E}\n`);
    assert.equal(error, undefined);
    assert.deepEqual(seen.events, ['header 1', 'record 2', 'end']);
    assert.deepEqual(
      seen.bad.map((b) => b.line),
      [3, 4],
    );
    assert.match(seen.bad[0].reason, /nested deeper than 1000 levels/);
    // The accepted record can be serialised again (the crash of issue 8 item 16).
    assert.ok(JSON.stringify(seen.records[0]).length > 2000);
  });
  it('a deep record on the slow path (ts not first) is a bad record too', async () => {
    const { seen } = await read(`${H}\n{"value":${deep(10_000)},"ts":2}\n${E}\n`);
    assert.equal(seen.bad[0]?.line, 2);
  });
});

describe('line splitting (issue 8 item 17)', () => {
  it('splits across chunk boundaries, strips CR, keeps multi-byte characters whole', () => {
    const sp = new LineSplitter();
    const euro = Buffer.from('€');
    const lines = [
      ...sp.push(Buffer.concat([Buffer.from('a\r'), euro.subarray(0, 1)])),
      ...sp.push(Buffer.concat([euro.subarray(1), Buffer.from('\r\nb\r')])),
      ...sp.push('\nc'),
      ...sp.end(),
    ];
    assert.deepEqual(lines, ['a\r€', 'b', 'c']);
    assert.equal(sp.lineNo, 3);
  });
  it('a 50 MB line in 64 KiB chunks is linear (well under 10 s; it was 23 s)', () => {
    const chunk = 'x'.repeat(64 * 1024);
    const n = Math.ceil(50e6 / chunk.length);
    const sp = new LineSplitter();
    const t0 = Date.now();
    for (let i = 0; i < n; i++) assert.equal(sp.push(chunk).length, 0);
    const [line] = sp.push('\nnext\n');
    const ms = Date.now() - t0;
    assert.equal(line.length, n * chunk.length);
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });
  it('a line over the limit is not buffered: only its head is kept, and reading resynchronises at the newline', () => {
    const sp = new LineSplitter(1000);
    assert.deepEqual(sp.push('short\n'), ['short']);
    let peak = 0;
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(sp.push('é'.repeat(500)), []); // 1000 bytes per chunk
      peak = Math.max(peak, sp.buffered);
    }
    assert.ok(peak <= 1000, `held ${peak} characters of an over-long line`);
    const out = sp.push('é\nafter\n');
    assert.deepEqual(out, ['', 'after']);
    assert.equal(sp.oversized?.get(0)?.bytes, 100 * 1000 + 2);
    assert.equal(sp.oversized?.get(0)?.head, 'é'.repeat(1000)); // what was held when the limit was passed
    assert.equal(sp.lineNo, 3);
  });
  it('the limit counts UTF-8 bytes, not characters, also within one chunk', () => {
    const sp = new LineSplitter(10);
    const out = sp.push(`${'é'.repeat(5)}\n${'é'.repeat(6)}\nab\n`);
    assert.deepEqual(out, ['é'.repeat(5), '', 'ab']);
    assert.equal(sp.oversized?.get(1)?.bytes, 12);
  });
  it('an over-long last line without newline is reported by end()', async () => {
    const batches = [];
    for await (const b of lineBatches(chunks(['ok\n', 'x'.repeat(50)]), { maxLineBytes: 10 }))
      batches.push(b);
    assert.deepEqual(batches[1].lines, ['']);
    assert.equal(batches[1].oversized?.get(0)?.bytes, 50);
    assert.equal(batches[1].unterminated, true);
  });
  it('the reader makes an over-long line a bad record with its line number and reads on', async () => {
    const big = rec(2, 'y'.repeat(5000));
    const { seen, error } = await read(
      [`${H}\n${rec(1)}\n${big.slice(0, 100)}`, `${big.slice(100)}\n${rec(3)}\n${E}\n`],
      true,
      1024,
    );
    assert.equal(error, undefined);
    assert.deepEqual(seen.events, ['header 1', 'record 2', 'record 4', 'end']);
    assert.equal(seen.bad[0].line, 3);
    assert.match(seen.bad[0].reason, /5\d{3} bytes is longer than --max-line-bytes 1024/);
    assert.equal(seen.bad[0].raw, big.slice(0, 1024));
  });
});

describe('cut-off streams, versions and concatenation (issue 8 item 18)', () => {
  it('an incomplete last line is a cut-off stream: RuntimeError (exit 1) naming the line', async () => {
    const { error, seen } = await read(`${H}\n${rec(1)}\n{"ts":2,"key":nu`);
    assert.ok(error instanceof RuntimeError, String(error));
    assert.match((error as Error).message, /stream cut off at line 3/);
    assert.deepEqual(seen.bad, []);
    assert.ok(!seen.events.includes('end'));
  });
  it('a stream without its end line is cut off at its last line', async () => {
    const { error } = await read(`${H}\n${rec(1)}\n${rec(2)}\n`);
    assert.ok(error instanceof RuntimeError);
    assert.match((error as Error).message, /stream cut off at line 3/);
  });
  it('an end line without its newline is still an end', async () => {
    const { error, seen } = await read(`${H}\n${rec(1)}\n${E}`);
    assert.equal(error, undefined);
    assert.deepEqual(seen.events, ['header 1', 'record 2', 'end']);
  });
  for (const v of ['2', '0', '1.5', '"1"'])
    it(`a header with protocol version ${v} is refused`, async () => {
      const { error, seen } = await read(`{"kappa":${v}}\n${E}\n`);
      assert.ok(error instanceof KappaError && error.exitCode === 3, String(error));
      assert.deepEqual(seen.events, []);
    });
  it('concatenated streams continue: one end, watermarks never go backwards, later barriers dropped', async () => {
    const a = [H, rec(1), '{"barrier":{"id":1}}', '{"watermark":10}', rec(11), E];
    const b = [H, rec(2), '{"barrier":{"id":1}}', '{"watermark":5}', rec(12), '{"watermark":20}', E];
    const { seen, error } = await read(`${[...a, ...b].join('\n')}\n`);
    assert.equal(error, undefined);
    assert.deepEqual(seen.events, [
      'header 1',
      'record 2',
      'barrier 1',
      'watermark 10',
      'record 5',
      'record 8',
      'record 11',
      'watermark 20',
      'end',
    ]);
  });
  it('a concatenated part with a conflicting schema is refused', async () => {
    const { error } = await read(
      `{"kappa":1,"schema":{"a":"int64"}}\n${E}\n{"kappa":1,"schema":{"a":"string"}}\n${E}\n`,
    );
    assert.ok(error instanceof DataError);
    assert.match((error as Error).message, /line 3: .*field 'a' as string.*int64/);
  });
  it('data after the end line without a header is refused', async () => {
    const { error } = await read(`${H}\n${E}\n${rec(1)}\n`);
    assert.ok(error instanceof DataError);
    assert.match((error as Error).message, /line 3: data after the end-of-stream line \(line 2\)/);
  });
});
