/**
 * Column projection in the CSV reader (`csvBatches(…, only)`, issue 14, `kappa run`): only the
 * named header fields become columns and row fields, in header order; every record is still
 * tokenized whole, so a bad record (wrong field count, broken quoting in an unread field) is bad
 * at the same line, and a resumed read (a given header) projects too. Values are checked against
 * the fields of the rows DuckDB reads from the same text.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { csvBatches } from '../../src/formats/csv.js';
import type { RowBatch } from '../../src/formats/format.js';
import { duck } from '../e2e/flights-data.js';
import { tempDir } from '../helpers.js';

async function* once(text: string): AsyncGenerator<Buffer> {
  yield Buffer.from(text);
}

async function batches(text: string, only?: ReadonlySet<string>): Promise<RowBatch[]> {
  const out: RowBatch[] = [];
  for await (const b of csvBatches(once(text), 'in.csv', ',', undefined, undefined, only)) out.push(b);
  return out;
}

describe('CSV reader with a projection', () => {
  const t = tempDir('kappa-csvproj-');
  after(() => t.cleanup());

  it('gives only the named fields, with the values DuckDB reads', async () => {
    const lines = ['id,note,delay,origin,extra'];
    for (let i = 0; i < 500; i++)
      lines.push(
        `${i},"x, ""${i % 7}""",${(i * 37) % 200},${['LAS', 'ATL', 'SFO'][i % 3]},${i % 5 === 0 ? '' : i * 1.5}`,
      );
    const text = `${lines.join('\n')}\n`;
    const file = join(t.dir, 'f.csv');
    writeFileSync(file, text);
    const [b] = await batches(text, new Set(['origin', 'id', 'absent']));
    assert.ok(b.columns, 'a chunk without bad rows has columns');
    assert.deepEqual(b.columns.fields, ['id', 'origin']);
    assert.equal(b.columns.column('note'), undefined);
    const want = await duck(`SELECT id::BIGINT AS id, origin FROM read_csv('${file}', header=true)`);
    assert.deepEqual(
      b.rows.map((r) => ({ ...r, id: Number(r?.id) })),
      want.map((r) => ({ id: Number(r.id), origin: r.origin })),
    );
    assert.deepEqual(Object.keys(b.rows[0] ?? {}), ['id', 'origin']);
  });

  it('projects a resumed read (the header given)', async () => {
    const rows: unknown[] = [];
    const start = { byte: 6, line: 2, header: ['a', 'b', 'c'] };
    for await (const b of csvBatches(once('1,x,3\n4,y,6\n'), 'in.csv', ',', start, undefined, new Set(['b'])))
      rows.push(...b.rows);
    assert.deepEqual(rows, [{ b: 'x' }, { b: 'y' }]);
  });

  it('keeps bad records bad at their lines (an unread field too)', async () => {
    const text = 'a,b,c\n1,2,3\n4,"x"y,6\n7,8\n9,10,11\n';
    const whole = await batches(text);
    const proj = await batches(text, new Set(['a']));
    assert.equal(proj.length, whole.length);
    const errs = (bs: RowBatch[]) =>
      bs.flatMap((b) => [...(b.errors ?? new Map<number, string>())].map(([i, m]) => [b.where(i).line, m]));
    assert.deepEqual(errs(proj), errs(whole));
    assert.equal(errs(proj).length, 2);
    assert.deepEqual(
      proj.flatMap((b) => b.rows.filter((r) => r !== undefined)),
      [{ a: 1 }, { a: 9 }],
    );
  });
});
