import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { byPartition, planBins } from '../../src/table/compact/plan.js';
import { orderRows } from '../../src/table/compact/rewrite.js';
import type { DeltaAdd } from '../../src/table/delta.js';

const add = (path: string, size: number): DeltaAdd => ({
  path,
  size,
  partitionValues: { dt: path.slice(3, 13) },
  modificationTime: 0,
  dataChange: true,
});

describe('compaction planning (first-fit decreasing per partition, as delta-rs optimize)', () => {
  it('packs small files into bins of at most the target, drops single-file bins and large files', () => {
    const files = [
      add('dt=2001-01-01/a', 60),
      add('dt=2001-01-01/b', 50),
      add('dt=2001-01-01/c', 40),
      add('dt=2001-01-01/d', 30),
      add('dt=2001-01-01/big', 100),
    ];
    const bins = planBins(files, 100, 2);
    // 60 -> bin1; 50 -> bin2; 40 -> bin1 (100); 30 -> bin2 (80); big (>= target) untouched.
    assert.deepEqual(
      bins.map((b) => b.files.map((f) => f.path.slice(14))),
      [
        ['a', 'c'],
        ['b', 'd'],
      ],
    );
    assert.deepEqual(
      bins.map((b) => b.bytes),
      [100, 80],
    );
    assert.deepEqual(planBins([add('dt=2001-01-01/a', 60), add('dt=2001-01-01/b', 50)], 100, 2), []);
    assert.deepEqual(planBins(files, 100, 5), [], 'fewer small files than --min-files');
  });

  it('groups live files by partition directory', () => {
    const g = byPartition([add('dt=2001-01-02/x', 1), add('dt=2001-01-01/y', 1), add('dt=2001-01-02/z', 1)]);
    assert.deepEqual([...g.keys()], ['dt=2001-01-01', 'dt=2001-01-02']);
    assert.equal(g.get('dt=2001-01-02')?.length, 2);
  });
});

describe('rewrite order and keep-latest-by', () => {
  const rows = [
    { id: 1, ts: 30, seq: 1 },
    { id: 2, ts: 10, seq: 2 },
    { id: 1, ts: 20, seq: 3 },
    { id: 1, ts: 30, seq: 0 },
    { id: 2, ts: null, seq: 9 },
  ];
  it('sorts by event time, stable, nulls first', () => {
    assert.deepEqual(
      orderRows(rows, { tsField: 'ts' }).map((r) => r.seq),
      [9, 2, 3, 1, 0],
    );
  });
  it('keeps the latest row per key, ties by --order-by', () => {
    const kept = orderRows(rows, { tsField: 'ts', keepLatestBy: ['id'], orderBy: 'seq' });
    assert.deepEqual(
      kept.map((r) => [r.id, r.seq]),
      [
        [2, 2],
        [1, 1],
      ],
    );
  });
});

describe('compaction commit conflicts (commitActions with a WinnerCheck)', () => {
  it('a winner that removed an input aborts the commit; a winner that only added files is retried after', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { storeFor } = await import('../../src/storage/store.js');
    const { commitActions, CommitConflictError, readDeltaLog } = await import('../../src/table/delta.js');
    const dir = mkdtempSync(join(tmpdir(), 'kappa-compact-unit-'));
    try {
      const store = storeFor(dir);
      const base = { version: -1, files: new Map() };
      const a = (path: string) => ({ add: add(path, 10) });
      await commitActions(store, dir, base, [a('dt=2001-01-01/x'), a('dt=2001-01-01/y')]);
      const snap0 = (await readDeltaLog(store, dir))!;
      const inputs = new Set(['dt=2001-01-01/x', 'dt=2001-01-01/y']);
      const check = (won: Record<string, unknown>[]) =>
        won.some((w) => inputs.has((w.remove as { path?: string } | undefined)?.path ?? ''))
          ? 'removed an input'
          : undefined;
      // A concurrent append (version 1) wins: the compaction lands at version 2.
      await commitActions(store, dir, snap0, [a('dt=2001-01-01/z')]);
      const compaction = [
        { remove: { path: 'dt=2001-01-01/x', dataChange: false } },
        { remove: { path: 'dt=2001-01-01/y', dataChange: false } },
        a('dt=2001-01-01/xy'),
      ];
      assert.equal(await commitActions(store, dir, snap0, compaction, undefined, check), 2);
      // A second compaction planned on version 1 loses to version 2, which removed its inputs.
      const snap1 = { ...snap0, version: 1 };
      await assert.rejects(
        commitActions(store, dir, snap1, compaction, undefined, check),
        (e: unknown) =>
          e instanceof CommitConflictError && /version 2: removed an input/.test((e as Error).message),
      );
      assert.equal((await readDeltaLog(store, dir))!.version, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
