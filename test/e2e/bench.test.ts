import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateRides } from '../../bench/gen.js';
import { canonicalize, compare } from '../../bench/normalize.js';
import { sh, tempDir } from '../helpers.js';

describe('bench harness against the real kappa', () => {
  it("kappa ingest's stream of generated rides normalises equal to the rides file", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const rides = join(dir, 'rides.ndjson');
      writeFileSync(
        rides,
        [...generateRides({ count: 500, seed: 3 })].map((r) => `${JSON.stringify(r)}\n`).join(''),
      );
      const r = await sh(`kappa ingest "${rides}" --ts-field event_time --quiet > "${dir}/out.ndjson"`);
      assert.equal(r.code, 0, r.stderr);
      const n = { kind: 'records' as const, timeFields: ['event_time'] };
      const c = compare(
        await canonicalize(join(dir, 'out.ndjson'), n),
        await canonicalize(rides, n),
        'kappa',
        'file',
      );
      assert.deepEqual(c, { equal: true, summary: 'equal (500 rows)' });
    } finally {
      cleanup();
    }
  });
});
