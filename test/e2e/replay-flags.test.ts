/**
 * `kappa replay` flags and errors (issue 11): flags that apply to nothing are usage errors (exit
 * 2), a path that does not match the layout is a data error (exit 3), `--layout` reads other
 * layouts, and the summary lists partitions and records per source.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseLines, sh, tempDir } from '../helpers.js';

describe('kappa replay flags', () => {
  const t = tempDir('kappa-replay-flags-');
  after(() => t.cleanup());
  const table = join(t.dir, 'events');
  for (const [dir, ts] of [
    ['date=20240101/hour=00', Date.UTC(2024, 0, 1, 0, 30)],
    ['date=20240101/hour=01', Date.UTC(2024, 0, 1, 1, 30)],
  ] as const) {
    mkdirSync(join(table, dir), { recursive: true });
    writeFileSync(join(table, dir, 'p.ndjson'), `${JSON.stringify({ ts, page: 'a' })}\n`);
  }

  it('--layout reads another time layout; the summary names each source', async () => {
    const r = await sh(
      `kappa replay ev=${table} --layout 'date=%Y%m%d/hour=%H' --ts-field ts --stream-format ndjson`,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = parseLines<{ watermark?: number; prov?: { source: string } }>(r.stdout);
    assert.deepEqual(
      lines.filter((l) => l.watermark !== undefined).map((l) => l.watermark),
      [Date.UTC(2024, 0, 1, 1) - 1, Date.UTC(2024, 0, 1, 2) - 1],
    );
    assert.ok(lines.filter((l) => l.prov).every((l) => l.prov?.source === 'ev'));
    assert.match(r.stderr, /kappa replay: ev: 2 partitions, 2 records/);
  });

  it('a path that does not match the layout is a data error; no time segment is a usage error', async () => {
    const bad = await sh(`kappa replay ${table} --layout 'date=%Y-%m-%d/hour=%H' --ts-field ts -q`);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /does not match the layout/);
    const none = await sh(`kappa replay ${table} --ts-field ts -q`);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /no 'dt=' segment/);
  });

  it('flags that apply to nothing are usage errors', async () => {
    const base = `kappa replay ${table} --layout 'date=%Y%m%d/hour=%H' --ts-field ts -q`;
    for (const [flags, msg] of [
      ['--until latest', /--until applies only with --then/],
      ['--overlap 5m', /--overlap applies only with --then/],
      ['--then kafka://localhost:1/t --to 2024-01-02', /--to and --then exclude each other/],
      ['--then s3://x/y', /not a kafka:\/\/ topic/],
      ['--extra-partitions 1', /applies only with --to/],
      ['--s3-endpoint http://localhost:1', /--s3-endpoint applies to s3:\/\/ SOURCEs only/],
      ['--max-rate fast', /not a rate/],
      ['--from 2024-01-02 --to 2024-01-01', /is not before/],
    ] as const) {
      const r = await sh(`${base} ${flags}`);
      assert.equal(r.code, 2, `${flags}: ${r.stderr}`);
      assert.match(r.stderr, msg, flags);
    }
  });
});
