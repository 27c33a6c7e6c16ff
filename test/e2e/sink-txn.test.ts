/**
 * `kappa sink` in a checkpointing pipeline (issue 9), fed a hand-written stream whose header
 * carries pipeline info and whose barriers end epochs: one Delta commit per barrier with a `txn`
 * action (appId `<pipeline id>.sink-<stage + 1>`), a rerun restored from checkpoint 1 skips the
 * replayed epoch 2, and a single-file target refuses to checkpoint. Checked with DuckDB over the
 * data files, Delta Kernel (test/delta.ts) and the raw log.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DeltaKernelError, readDeltaTables } from '../delta.js';
import { sh, tempDir, writeEmptySnapshot } from '../helpers.js';

interface Pipe {
  id: string;
  checkpointDir: string;
  stage: number;
  uids: string[];
  restore?: { path: string; checkpointId: number | null; type: 'checkpoint' };
}

/** A stream: header with pipeline info, then records i (one per entry) and barriers, then end. */
function stream(pipeline: Pipe, events: (number | { barrier: number })[]): string {
  const lines = [JSON.stringify({ kappa: 1, schema: { i: 'int64' }, pipeline })];
  for (const e of events)
    lines.push(
      typeof e === 'number'
        ? JSON.stringify({ ts: e * 1000, key: null, value: { i: e } })
        : JSON.stringify({ barrier: { id: e.barrier, type: 'checkpoint' } }),
    );
  lines.push('{"end":true}');
  return `${lines.join('\n')}\n`;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, j) => from + j);

describe('kappa sink with pipeline info: one commit per checkpoint, replayed epochs skipped', () => {
  const tmp = tempDir('kappa-sink-txn-');
  after(() => tmp.cleanup());
  const pipe: Pipe = {
    id: 'p7',
    checkpointDir: join(tmp.dir, 'ckpt'),
    stage: 1,
    uids: ['ingest', 'transform'],
  };
  const appId = 'p7.sink-2';

  it('commits per barrier with txn, skips an epoch replayed after a restore, and DuckDB/Kernel see every record once', async () => {
    const out = join(tmp.dir, 'table');
    // Run 1: epochs 1 and 2 commit; the records after barrier 2 are lost in a "crash" (cut-off stream).
    const first = stream(pipe, [
      ...range(0, 5),
      { barrier: 1 },
      ...range(5, 5),
      { barrier: 2 },
      ...range(10, 3),
    ]);
    let r = await sh(`kappa sink '${out}' -q`, { input: first.replace('{"end":true}\n', '') });
    assert.notEqual(r.code, 0, 'a stream without an end line is cut off: the sink fails');
    const log = () =>
      readdirSync(join(out, '_delta_log'))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) =>
          readFileSync(join(out, '_delta_log', f), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, { appId: string; version: number }>),
        );
    assert.deepEqual(
      log().map((v) => v.filter((a) => a.txn).map((a) => [a.txn.appId, a.txn.version])),
      [[[appId, 1]], [[appId, 2]]],
      'one version per barrier, each with its txn',
    );
    // Run 2, restored from checkpoint 1: epoch 2 comes again, then epoch 3 and the end.
    const resumed: Pipe = {
      ...pipe,
      restore: { path: join(pipe.checkpointDir, 'chk-1'), checkpointId: 1, type: 'checkpoint' },
    };
    writeEmptySnapshot(join(pipe.checkpointDir, 'chk-1'), pipe.id, 1);
    r = await sh(`kappa sink '${out}'`, {
      input: stream(resumed, [
        ...range(5, 5),
        { barrier: 2 },
        ...range(10, 6),
        { barrier: 3 },
        ...range(16, 2),
      ]),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipped epoch 2: already committed/);
    assert.match(r.stderr, /1 epochs skipped \(already committed\)/);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const rows = await db.runAndReadAll(`SELECT i FROM read_parquet('${out}/**/*.parquet') ORDER BY i`);
    assert.deepEqual(
      rows.getRows().map((x) => Number(x[0])),
      range(0, 18),
      'DuckDB: every record exactly once',
    );
    const [k] = await readDeltaTables([{ dir: out, txn: appId }]);
    if (k instanceof DeltaKernelError) assert.fail(k.message);
    assert.equal(k.txnVersion, 3, 'Kernel: the latest txn version is the last barrier');
    assert.deepEqual(
      k.rows.map((x) => Number(x.i)).sort((a, b) => a - b),
      range(0, 18),
    );
  });

  it('a single file target refuses a checkpointing pipeline (exit 2, use a table directory)', async () => {
    const r = await sh(`kappa sink '${join(tmp.dir, 'out.parquet')}'`, {
      input: stream(pipe, [1, { barrier: 1 }]),
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /single file cannot be committed per checkpoint/);
    assert.match(r.stderr, /table directory/);
  });
});
