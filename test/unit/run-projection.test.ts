/**
 * Column projection under `kappa run` (issue 14): which fields `ingest … | window …` and
 * `ingest … | transform … [| window …]` read (`windowReads`, `transformReads`, `pipelineReads`,
 * `sourceProjection`), and the Parquet reader decoding only those columns inside a fused source
 * stage, with the values DuckDB reads from the same file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildProgram } from '../../src/cli.js';
import {
  pipelineReads,
  sourceProjection,
  splitPipeline,
  transformReads,
  windowReads,
} from '../../src/commands/run.js';
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
    // A dotted path also names the key holding the dots (ops/path.ts matches `{"meta.id"}` first).
    assert.deepEqual(sorted(got), ['date', 'delay', 'meta', 'meta.id', 'origin', 'p', 'p.q']);
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

  it('projects ingest | transform when the chain is closed, and through transforms into a window', async () => {
    assert.deepEqual(
      sorted(await project("ingest - | transform --filter 'r.delay > 60' --select date,origin,delay")),
      ['date', 'delay', 'origin'],
    );
    assert.deepEqual(
      sorted(
        await project(
          "ingest f.ndjson --ts-field t --key-field k | transform --filter 'r.a > 1' --rename b=c --select c --map 'JSON.stringify(r)'",
        ),
      ),
      ['a', 'b', 'c', 'k', 't'],
    );
    assert.deepEqual(
      sorted(
        await project(
          "ingest f.parquet --ts-field date | transform --filter 'r.delay > 0' | window --key origin --tumbling 1h | sink out/",
        ),
      ),
      ['date', 'delay', 'origin'],
    );
  });

  it('does not project anything else', async () => {
    for (const text of [
      'ingest f.parquet --ts-field date | sink out/',
      "ingest f.parquet --ts-field date | transform --filter 'JSON.stringify(r).length > 5' --select a | sink -",
      "ingest f.ndjson --ts-field date | transform --filter 'r.delay > 0' | sink -",
      "ingest f.ndjson | transform --map '({...r, x: 1})' | window --key origin --tumbling 1h | sink -",
      'ingest f.ndjson | transform --select a --on-error dead-letter=bad.ndjson | sink -',
      'ingest f.ndjson --on-error dead-letter=bad.ndjson | transform --select a | sink -',
      "ingest f.ndjson | transform --filter 'r.a > 0' | join --on id right.kappa | sink -",
      'ingest f.ndjson | transform --filter \'r["a"] > 0\' --select a | sink -',
      "ingest f.ndjson | transform --filter 'rec.value.a > 0' --select a | sink -",
      'ingest f.ndjson | transform --select a --bogus | sink -',
      'replay s.kappa | transform --select a | sink -',
      'ingest f.parquet --ts-field date | window --key origin --tumbling 1h --late-output late.kappa | sink out/',
      'ingest f.parquet --ts-field date --on-error dead-letter=bad.ndjson | window --key origin --tumbling 1h | sink -',
      'ingest f.parquet --ts-field date | window --key origin --tumbling 1h --no-such-flag | sink -',
    ])
      assert.equal(await project(text), undefined, text);
  });
});

describe('transformReads', () => {
  it('reads the fields of each step up to the step that closes the value', () => {
    assert.deepEqual(
      transformReads([
        { kind: 'filter', expr: 'r.delay > 60' },
        { kind: 'select', fields: ['date', 'origin', 'a.b'] },
        { kind: 'map', expr: 'JSON.stringify(r)' },
      ]),
      { fields: ['delay', 'date', 'origin', 'a', 'a.b'], closed: true },
    );
    assert.deepEqual(
      transformReads([
        { kind: 'key', expr: 'r.k' },
        { kind: 'map', expr: '({x: r.a * 2, key})' },
      ]),
      { fields: ['k', 'a'], closed: true },
    );
    assert.deepEqual(
      transformReads([
        { kind: 'rename', pairs: [['o', 'origin']] },
        { kind: 'drop', fields: ['x'] },
        { kind: 'select', fields: ['origin'] },
      ]),
      { fields: ['o', 'origin'], closed: true },
    );
    assert.deepEqual(transformReads([{ kind: 'filter', expr: 'r.a > 1' }]), { fields: ['a'], closed: false });
  });

  it('is undefined when a step before the closing one may read the whole value', () => {
    assert.equal(transformReads([{ kind: 'filter', expr: 'JSON.stringify(r).length > 5' }]), undefined);
    assert.equal(
      transformReads([
        { kind: 'filter', expr: 'Object.keys(r).length > 2' },
        { kind: 'select', fields: ['a'] },
      ]),
      undefined,
    );
    assert.equal(transformReads([{ kind: 'map', expr: '({...r})' }]), undefined);
    assert.equal(transformReads([{ kind: 'flat-map', expr: 'rec.value.xs' }]), undefined);
  });
});

describe('pipelineReads', () => {
  it('walks transforms that pass fields on up to a closing transform or a window', () => {
    const ingest = { tsField: 'date' };
    const t = (steps: Parameters<typeof transformReads>[0]) => ({ command: 'transform' as const, steps });
    assert.deepEqual(
      sorted(
        pipelineReads({
          ingest,
          after: [t([{ kind: 'filter', expr: 'r.x > 0' }]), t([{ kind: 'select', fields: ['origin'] }])],
        }),
      ),
      ['date', 'origin', 'x'],
    );
    assert.deepEqual(
      sorted(
        pipelineReads({
          ingest,
          after: [
            t([{ kind: 'rename', pairs: [['o', 'origin']] }]),
            { command: 'window', flags: { key: 'origin', agg: 'max(delay)' } },
          ],
        }),
      ),
      ['date', 'delay', 'o', 'origin'],
    );
    assert.equal(pipelineReads({ ingest, after: [t([{ kind: 'filter', expr: 'r.x > 0' }])] }), undefined);
    assert.equal(
      pipelineReads({ ingest, after: [t([{ kind: 'filter', expr: 'r.x > 0' }]), { command: 'other' }] }),
      undefined,
    );
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
