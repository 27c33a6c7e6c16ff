/**
 * Issue 8 item 21: a watermark that fires many windows writes its results through back-pressure
 * (Collector.drain) instead of building them up as one unbounded string. The real WindowOperator
 * runs under runOperator against a slow destination; the largest single write must stay near the
 * writer's 64 KiB chunk (before: one write of every fired window, ~25 MB for 200k windows).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator } from '../../src/ops/window/operator.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { Progress } from '../../src/stream/progress.js';
import { runOperator } from '../../src/stream/run.js';

const WINDOWS = 200_000;

async function* input(): AsyncGenerator<string> {
  yield '{"kappa":1}\n';
  const lines: string[] = [];
  for (let i = 0; i < WINDOWS; i++) {
    lines.push(`{"ts":${i % 3_600_000},"key":null,"value":{"k":"key-${i}","x":${i}}}`);
    if (lines.length === 5000) {
      yield `${lines.join('\n')}\n`;
      lines.length = 0;
    }
  }
  // One watermark fires all 200k windows (one per key, all in the first hour).
  yield `${lines.join('\n')}\n{"watermark":3600000}\n{"end":true}\n`;
}

describe('window output through back-pressure (issue 8 item 21)', () => {
  it('a watermark firing 200k windows never hands the destination more than ~1 MiB at once', async () => {
    let maxWrite = 0;
    let total = 0;
    let results = 0;
    let tail = '';
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        maxWrite = Math.max(maxWrite, chunk.length);
        total += chunk.length;
        const text = tail + chunk.toString();
        const parts = text.split('\n');
        tail = parts.pop() ?? '';
        for (const p of parts) if (p.startsWith('{"ts":')) results++;
        setImmediate(cb); // a slow reader: the writer must wait for 'drain'
      },
    });
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: 3_600_000 },
      key: { kind: 'field', path: 'k', get: compilePath('k') },
      aggs: parseAggs('count, sum(x)'),
      stateCache: WINDOWS + 1,
    });
    await runOperator(op, {
      input: input(),
      output: slow as unknown as NodeJS.WritableStream & Writable,
      bad: new BadRecords(),
      progress: new Progress('window', true, 'rows'),
    });
    assert.equal(results, WINDOWS);
    assert.ok(total > 10 * 1024 * 1024, `wrote ${total} bytes`);
    assert.ok(
      maxWrite < 1024 * 1024,
      `one write of ${maxWrite} bytes: the fired windows were buffered whole`,
    );
  });
});
