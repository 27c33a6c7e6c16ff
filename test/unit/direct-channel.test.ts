import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DirectChannel } from '../../src/stream/direct.js';
import type { StreamConsumer } from '../../src/stream/input.js';

describe('DirectChannel (kappa run)', () => {
  it('delivers events pushed while a delivery pass is finishing: the end of a stream never waits forever', async () => {
    // A consumer that handles the header synchronously ends the delivery pass at once; the record
    // and the end pushed right after it found the pass still marked running and were never
    // delivered (`kappa run` then exited 0 with the window and sink stages unfinished and nothing
    // written). Tried after 0..7 microtask hops since attaching.
    for (let gap = 0; gap < 8; gap++) {
      const ch = new DirectChannel('stage 1 (test)');
      const w = ch.writer();
      const seen: number[] = [];
      let ended = false;
      const consumer: StreamConsumer = {
        header() {},
        async record(r) {
          seen.push(r.ts);
          await Promise.resolve();
        },
        watermark() {},
        barrier() {},
        end() {
          ended = true;
        },
        stop() {},
      };
      const done = ch.attach(consumer);
      for (let i = 0; i < gap; i++) await Promise.resolve();
      w.header({ kappa: 1 });
      w.record({ ts: 1, value: {} });
      w.endEvent();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'stalled'>((r) => {
        timer = setTimeout(() => r('stalled'), 200);
      });
      const outcome = await Promise.race([done.then(() => 'done' as const), timeout]);
      clearTimeout(timer);
      assert.equal(outcome, 'done', `after ${gap} hops: records delivered ${JSON.stringify(seen)}`);
      assert.deepEqual(seen, [1]);
      assert.ok(ended);
    }
  });
});
