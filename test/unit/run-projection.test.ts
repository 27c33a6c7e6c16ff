/**
 * Column projection under `kappa run` (issue 14): which fields `ingest … | window …` reads
 * (`windowReads`, `sourceProjection`), and the Parquet reader decoding only those columns inside a
 * fused source stage, with the values DuckDB reads from the same file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildProgram } from '../../src/cli.js';
import { sourceProjection, splitPipeline, windowReads } from '../../src/commands/run.js';
import { parquetReader } from '../../src/formats/parquet/read.js';
import { localStore } from '../../src/storage/local.js';
import { runInStage } from '../../src/stream/direct.js';
import { duck } from '../e2e/flights-data.js';
import { tempDir } from '../helpers.js';

const sorted = (a: string[] | undefined) => (a === undefined ? undefined : [...a].sort());

describe('windowReads', () => {
  it('is the ts, key and aggregated fields (top-level names)', () => {
    const got = windowReads({
      ingest: { tsField: 'date', keyField: 'meta.id', onError: 'fail' },
      window: { key: 'r.origin', agg: 'count, avg(delay), max(p.q) as m', onError: 'skip' },
    });
    assert.deepEqual(sorted(got), ['date', 'delay', 'meta', 'origin', 'p']);
    const expr = windowReads({ ingest: { tsField: 't' }, window: { key: 'r.a + "-" + r.b', agg: 'count' } });
    assert.deepEqual(sorted(expr), ['a', 'b', 't']);
  });

  it('is undefined when whole records leave the stage or the reads are not known', () => {
    const base = { ingest: { tsField: 't' }, window: { key: 'k', agg: 'count' } };
    assert.equal(windowReads({ ...base, window: { ...base.window, lateOutput: 'late.kappa' } }), undefined);
    assert.equal(windowReads({ ...base, window: { ...base.window, onError: 'dead-letter=x' } }), undefined);
    assert.equal(windowReads({ ...base, ingest: { ...base.ingest, onError: 'dead-letter=x' } }), undefined);
    assert.equal(windowReads({ ...base, window: { key: 'JSON.stringify(r)', agg: 'count' } }), undefined);
    assert.equal(windowReads({ ...base, window: { key: 'k', agg: 'nope(' } }), undefined);
  });
});

describe('sourceProjection', () => {
  const project = (text: string) => sourceProjection(splitPipeline(text), buildProgram);

  it('projects ingest | window from the stages’ own flags', async () => {
    const got = await project(
      "ingest f.parquet --ts-field date | window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' | sink out/",
    );
    assert.deepEqual(sorted(got), ['date', 'delay', 'origin']);
  });

  it('does not project anything else', async () => {
    for (const text of [
      'ingest f.parquet --ts-field date | sink out/',
      "ingest f.parquet --ts-field date | transform --filter 'r.delay > 0' | window --key origin --tumbling 1h | sink out/",
      'ingest f.parquet --ts-field date | window --key origin --tumbling 1h --late-output late.kappa | sink out/',
      'ingest f.parquet --ts-field date --on-error dead-letter=bad.ndjson | window --key origin --tumbling 1h | sink -',
      'ingest f.parquet --ts-field date | window --key origin --tumbling 1h --no-such-flag | sink -',
    ])
      assert.equal(await project(text), undefined, text);
  });
});

describe('Parquet reader in a projected source stage', () => {
  const t = tempDir('kappa-proj-');
  const file = join(t.dir, 'f.parquet');
  before(async () => {
    await duck(
      `COPY (SELECT i, 'k' || (i % 7) AS k, (i * 0.5)::DOUBLE AS v, 'x' || i AS wide, {'a': i} AS nested FROM range(20000) r(i)) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 5000)`,
    );
  });
  after(() => t.cleanup());

  for (const decoder of ['parquet-wasm', 'hyparquet']) {
    it(`decodes only the named columns (${decoder}), with DuckDB's values`, async () => {
      const prev = process.env.KAPPA_PARQUET_DECODER;
      process.env.KAPPA_PARQUET_DECODER = decoder === 'hyparquet' ? 'hyparquet' : '';
      try {
        const rows: Record<string, unknown>[] = [];
        let schema: unknown;
        await runInStage({ readColumns: ['v', 'k', 'absent'] }, async () => {
          const o = await parquetReader.open(localStore, file, {});
          schema = o.schema;
          for await (const b of o.batches) for (const r of b.rows) rows.push(r as Record<string, unknown>);
        });
        assert.deepEqual(schema, { k: 'string', v: 'float64' });
        const want = await duck(`SELECT k, v FROM read_parquet('${file}')`);
        assert.equal(rows.length, 20_000);
        assert.deepEqual(rows, want);
      } finally {
        if (prev === undefined) delete process.env.KAPPA_PARQUET_DECODER;
        else process.env.KAPPA_PARQUET_DECODER = prev;
      }
    });
  }

  it('keeps the first column when none is named, so that rows are counted', async () => {
    let n = 0;
    let fields: string[] = [];
    await runInStage({ readColumns: [] }, async () => {
      const o = await parquetReader.open(localStore, file, {});
      for await (const b of o.batches) {
        n += b.rows.length;
        fields = Object.keys(b.rows[0] ?? {});
      }
    });
    assert.equal(n, 20_000);
    assert.deepEqual(fields, ['i']);
  });
});
