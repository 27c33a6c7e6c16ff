import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { ArrayCollector } from '../../src/ops/operator.js';
import { SideOutput, withSideOutputs } from '../../src/stream/side-output.js';
import { tempDir } from '../helpers.js';

describe('side outputs (src/stream/side-output.ts)', () => {
  it('a clean finish writes header, records and the end line; a failed run leaves no end line', async () => {
    const t = tempDir();
    try {
      const ok = await SideOutput.create(`${t.dir}/ok.kappa`, '--late-output');
      const failed = await SideOutput.create(`${t.dir}/failed.kappa`, '--late-output');
      const op = withSideOutputs(
        {
          open: (h) => h,
          record: (r) => {
            ok.record(r);
            failed.record(r);
          },
          watermark: () => {},
          end: () => {},
        },
        [ok, failed],
      );
      const out = new ArrayCollector();
      await op.open({ kappa: 1, schema: { v: 'int64' } });
      await op.record({ ts: 5, key: 'a', value: { v: 1 } }, out);
      await op.watermark(10, out);
      await op.end(out); // finishes both
      await failed.abort(); // no-op after finish
      assert.deepEqual(readFileSync(`${t.dir}/ok.kappa`, 'utf8').trim().split('\n'), [
        '{"kappa":1,"schema":{"v":"int64"}}',
        '{"ts":5,"key":"a","value":{"v":1}}',
        '{"end":true}',
      ]);
      const cut = await SideOutput.create(`${t.dir}/cut.kappa`, '--late-output');
      cut.open({ kappa: 1 });
      cut.record({ ts: 1, value: 2 });
      await cut.abort();
      assert.deepEqual(readFileSync(`${t.dir}/cut.kappa`, 'utf8').trim().split('\n'), [
        '{"kappa":1}',
        '{"ts":1,"key":null,"value":2}',
      ]);
      assert.equal(cut.count, 1);
      await assert.rejects(SideOutput.create(`${t.dir}/no/such/dir/x`, '--late-output'), UsageError);
    } finally {
      t.cleanup();
    }
  });
});
