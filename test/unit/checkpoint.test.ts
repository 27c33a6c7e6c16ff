/**
 * Unit tests of src/checkpoint: checkpoint ids and listing, retention, assembling `_metadata.json`
 * from the stages' parts, choosing the restore point (with a fake sink probe that completes a
 * checkpoint whose epoch the sink committed before the crash), and the flag rules.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkpointUri,
  listCheckpoints,
  PARTS_DIR,
  pipelineId,
  retainCheckpoints,
  savepointUri,
} from '../../src/checkpoint/layout.js';
import { checkpointSettings } from '../../src/checkpoint/options.js';
import {
  completeSnapshot,
  operatorPartUids,
  readSinkParts,
  writeBarrierPart,
  writeOperatorPart,
  writeSinkPart,
} from '../../src/checkpoint/snapshot.js';
import { findRestorePoint, type SinkProbe, SourceCheckpointer } from '../../src/checkpoint/source.js';
import { UsageError } from '../../src/errors.js';
import { validateSavepoint } from '../../src/state/edit/validate.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import type { SavepointEntry } from '../../src/state/savepoint/format.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { tempDir, walkFiles } from '../helpers.js';

const STATES = [{ name: 'dedupe0', kind: 'value' as const, schema: {} }];
const PIPE = '00000000-0000-4000-8000-000000000001';

/** Writes the source's part of checkpoint `id` below `dir`; returns its path. */
async function barrierPart(dir: string, id: number, type: 'checkpoint' | 'savepoint' = 'checkpoint') {
  const path = checkpointUri(dir, id);
  await writeBarrierPart(path, {
    id,
    type,
    pipeline: PIPE,
    sources: [
      {
        uid: 'ingest-0',
        positions: { kind: 'files', file: 0, uri: 'in.ndjson', rows: id * 10 },
        watermark: id,
      },
    ],
    createdAt: '2026-01-01T00:00:00.000Z',
  });
  return path;
}

function entries(keys: string[], maxKeyGroups = 128): SavepointEntry[] {
  return keys
    .map((k) => ({
      keyGroup: keyGroupOf(JSON.stringify(k), maxKeyGroups),
      state: 'dedupe0',
      key: JSON.stringify(k),
      windowStart: null,
      windowEnd: null,
      timer: 99,
      value: 42,
    }))
    .sort((a, b) => a.keyGroup - b.keyGroup);
}

/** A complete checkpoint `id` with one operator part. */
async function completeCheckpoint(dir: string, id: number) {
  const path = await barrierPart(dir, id);
  await writeOperatorPart(
    path,
    { uid: 'transform-1', kind: 'transform', states: STATES, entries: entries(['a', 'b']) },
    128,
  );
  await completeSnapshot(path, ['transform-1']);
  return path;
}

describe('checkpoint layout', () => {
  it('names checkpoints chk- and ten digits, so they list in order, and savepoints by id and UTC time', () => {
    assert.equal(checkpointUri('/x/ck', 7), '/x/ck/chk-0000000007');
    assert.equal(checkpointUri('s3://b/p', 1234567890), 's3://b/p/chk-1234567890');
    assert.equal(
      savepointUri('/x/sp', 3, Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
      '/x/sp/savepoint-3-20260102T030405Z',
    );
  });

  it('lists checkpoints oldest first with completeness, ignoring other entries', async () => {
    const t = tempDir();
    try {
      await completeCheckpoint(t.dir, 2);
      await barrierPart(t.dir, 10);
      await completeCheckpoint(t.dir, 9);
      mkdirSync(join(t.dir, 'savepoints', 'savepoint-4-20260101T000000Z'), { recursive: true });
      writeFileSync(join(t.dir, 'savepoints', 'savepoint-4-20260101T000000Z', '_metadata.json'), '{}');
      writeFileSync(join(t.dir, 'chk-notanid'), 'x');
      const l = await listCheckpoints(t.dir);
      assert.deepEqual(
        l.map((c) => [c.id, c.complete]),
        [
          [2, true],
          [9, true],
          [10, false],
        ],
      );
      assert.ok(l[0].files.some((f) => f.endsWith('/_metadata.json')));
      assert.ok(l[0].files.some((f) => f.includes('/transform-1/kg-')));
    } finally {
      t.cleanup();
    }
  });

  it('creates the pipeline id once and keeps it', async () => {
    const t = tempDir();
    try {
      assert.equal(await pipelineId(t.dir, false), undefined);
      const a = await pipelineId(t.dir, true);
      assert.match(a ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(await pipelineId(t.dir, true), a);
      assert.equal(await pipelineId(t.dir, false), a);
    } finally {
      t.cleanup();
    }
  });

  it('retains the newest N complete checkpoints, drops older incomplete ones, keeps newer incomplete ones', async () => {
    const t = tempDir();
    try {
      for (const id of [1, 2, 4, 5]) await completeCheckpoint(t.dir, id);
      await barrierPart(t.dir, 3); // a crashed run's leftover, older than the newest complete one
      await barrierPart(t.dir, 6); // in flight
      const gone = await retainCheckpoints(t.dir, 2);
      assert.deepEqual(gone, [1, 2, 3]);
      assert.deepEqual(
        (await listCheckpoints(t.dir)).map((c) => [c.id, c.complete]),
        [
          [4, true],
          [5, true],
          [6, false],
        ],
      );
      assert.equal(existsSync(checkpointUri(t.dir, 1)), false, 'the directory is gone, not left empty');
    } finally {
      t.cleanup();
    }
  });
});

describe('checkpoint snapshot parts', () => {
  it('assembles _metadata.json from the source part and the operator parts (a valid savepoint)', async () => {
    const t = tempDir();
    try {
      const path = await barrierPart(t.dir, 5);
      await writeOperatorPart(
        path,
        {
          uid: 'transform-1',
          kind: 'transform',
          states: [{ name: 'dedupe0', kind: 'value', schema: {} }],
          watermark: 77,
          operatorState: { duplicates: 3 },
          entries: entries(['x', 'y', 'z']),
        },
        128,
      );
      await writeSinkPart(path, { uid: 'sink-2', target: 'table', descriptor: { table: '/t' } });
      assert.deepEqual(await operatorPartUids(path), ['transform-1']);
      assert.deepEqual(
        (await readSinkParts(path)).map((p) => [p.uid, p.target]),
        [['sink-2', 'table']],
      );
      const meta = await completeSnapshot(path, ['transform-1']);
      assert.equal(meta.checkpointId, 5);
      assert.equal(meta.type, 'checkpoint');
      assert.equal(meta.pipeline, PIPE);
      assert.equal(meta.maxKeyGroups, 128);
      assert.deepEqual(meta.sources[0].positions, { kind: 'files', file: 0, uri: 'in.ndjson', rows: 50 });
      assert.deepEqual(
        meta.operators.map((o) => [o.uid, o.entries, o.watermark, o.operatorState]),
        [['transform-1', 3, 77, { duplicates: 3 }]],
      );
      // The savepoint reader accepts it, checksums included, with the parts beside it.
      const sp = await openSavepoint(path);
      const got: SavepointEntry[] = [];
      for await (const e of sp.entries('transform-1')) got.push(e);
      assert.deepEqual(got.map((e) => e.key).sort(), ['"x"', '"y"', '"z"']);
      // Completing again leaves the first metadata in place.
      const again = await completeSnapshot(path, []);
      assert.deepEqual(again, meta);
      assert.ok(walkFiles(path).includes(`${PARTS_DIR}/transform-1.json`));
    } finally {
      t.cleanup();
    }
  });

  it('refuses to complete a snapshot when a stage part or the source part is missing', async () => {
    const t = tempDir();
    try {
      const path = await barrierPart(t.dir, 1);
      await assert.rejects(completeSnapshot(path, ['window-1']), /part of stage 'window-1' is missing/);
      await assert.rejects(completeSnapshot(checkpointUri(t.dir, 2), []), /_barrier\.json\) is missing/);
      assert.equal(existsSync(join(path, '_metadata.json')), false);
    } finally {
      t.cleanup();
    }
  });

  it('refuses stages with different key-group counts', async () => {
    const t = tempDir();
    try {
      const path = await barrierPart(t.dir, 1);
      await writeOperatorPart(
        path,
        { uid: 'a', kind: 'transform', states: STATES, entries: entries(['k'], 128) },
        128,
      );
      await writeOperatorPart(
        path,
        { uid: 'b', kind: 'transform', states: STATES, entries: entries(['k'], 64) },
        64,
      );
      await assert.rejects(completeSnapshot(path, ['a', 'b']), (e: unknown) => e instanceof UsageError);
    } finally {
      t.cleanup();
    }
  });
});

describe('findRestorePoint', () => {
  const quiet = () => {};

  it('picks the newest complete checkpoint, skipping newer incomplete ones the sink did not commit', async () => {
    const t = tempDir();
    try {
      await completeCheckpoint(t.dir, 1);
      await completeCheckpoint(t.dir, 2);
      const p3 = await barrierPart(t.dir, 3);
      await writeSinkPart(p3, { uid: 'sink-2', target: 'table', descriptor: { table: '/t' } });
      const probe: SinkProbe = async () => 2; // the sink committed epoch 2, not 3
      const r = await findRestorePoint(t.dir, probe, quiet);
      assert.equal(r?.checkpointId, 2);
      assert.equal(r?.path, checkpointUri(t.dir, 2));
      assert.equal(existsSync(join(p3, '_metadata.json')), false);
    } finally {
      t.cleanup();
    }
  });

  it('completes and picks a checkpoint whose every sink committed its epoch (crash before _metadata.json)', async () => {
    const t = tempDir();
    try {
      await completeCheckpoint(t.dir, 1);
      const p2 = await barrierPart(t.dir, 2);
      await writeOperatorPart(
        p2,
        { uid: 'transform-1', kind: 'transform', states: STATES, entries: entries(['q']) },
        128,
      );
      await writeSinkPart(p2, { uid: 'sink-2', target: 'table', descriptor: { table: '/t', appId: 'x' } });
      const asked: unknown[] = [];
      const notes: string[] = [];
      const probe: SinkProbe = async (part) => {
        asked.push(part.descriptor);
        return 2;
      };
      const r = await findRestorePoint(t.dir, probe, (m) => notes.push(m));
      assert.equal(r?.checkpointId, 2);
      assert.deepEqual(asked, [{ table: '/t', appId: 'x' }]);
      assert.ok(existsSync(join(p2, '_metadata.json')));
      assert.deepEqual(
        r?.metadata.operators.map((o) => [o.uid, o.entries]),
        [['transform-1', 1]],
      );
      assert.match(notes.join('\n'), /checkpoint 2 was committed by the sink but not marked complete/);
    } finally {
      t.cleanup();
    }
  });

  it('does not complete a checkpoint when the probe cannot answer or one of two sinks did not commit', async () => {
    const t = tempDir();
    try {
      await completeCheckpoint(t.dir, 1);
      const p2 = await barrierPart(t.dir, 2);
      await writeSinkPart(p2, { uid: 'a', target: 'table', descriptor: 'a' });
      await writeSinkPart(p2, { uid: 'b', target: 'kafka', descriptor: 'b' });
      assert.equal((await findRestorePoint(t.dir, async () => undefined, quiet))?.checkpointId, 1);
      assert.equal(
        (await findRestorePoint(t.dir, async (p) => (p.descriptor === 'a' ? 2 : 1), quiet))?.checkpointId,
        1,
      );
      assert.equal(existsSync(join(p2, '_metadata.json')), false);
    } finally {
      t.cleanup();
    }
  });

  it('returns undefined for an empty or missing directory', async () => {
    const t = tempDir();
    try {
      assert.equal(await findRestorePoint(t.dir, async () => null, quiet), undefined);
      assert.equal(await findRestorePoint(join(t.dir, 'nope'), async () => null, quiet), undefined);
    } finally {
      t.cleanup();
    }
  });
});

describe('checkpoint flags', () => {
  it('takes the environment as defaults and flags first', () => {
    const env = { KAPPA_CHECKPOINT_DIR: '/env', KAPPA_RESUME: '1' };
    assert.deepEqual(checkpointSettings({}, env), {
      dir: '/env',
      dirFromFlag: false,
      uid: undefined,
      resume: true,
      fromSavepoint: undefined,
      restoreFromFlag: false,
    });
    const s = checkpointSettings({ checkpointDir: '/flag', fromSavepoint: '/sp' }, env);
    assert.equal(s.dir, '/flag');
    assert.equal(s.resume, false, '--from-savepoint overrides KAPPA_RESUME');
    assert.equal(s.fromSavepoint, '/sp');
  });

  it('rejects --resume with --from-savepoint and a bad --uid (usage errors)', () => {
    assert.throws(() => checkpointSettings({ resume: true, fromSavepoint: '/sp' }, {}), UsageError);
    assert.throws(
      () => checkpointSettings({}, { KAPPA_RESUME: '1', KAPPA_FROM_SAVEPOINT: '/sp' }),
      UsageError,
    );
    assert.throws(() => checkpointSettings({ uid: 'a/b' }, {}), /--uid 'a\/b'/);
  });
});

describe('checkpoints and state-edit validate', () => {
  it('a complete checkpoint validates: its _parts/ directory is not an orphan', async () => {
    const t = tempDir();
    try {
      const path = await completeCheckpoint(t.dir, 1);
      await writeSinkPart(path, { uid: 'sink-2', target: 'table', descriptor: null });
      assert.ok(walkFiles(path).some((f) => f.startsWith(`${PARTS_DIR}/`)));
      assert.deepEqual(await validateSavepoint(path), []);
      writeFileSync(join(path, 'transform-1', 'stray.parquet'), 'x');
      assert.deepEqual(await validateSavepoint(path), [
        'file transform-1/stray.parquet is not listed in _metadata.json (an orphan file)',
      ]);
    } finally {
      t.cleanup();
    }
  });
});

describe('SourceCheckpointer pacing: one checkpoint in flight', () => {
  /**
   * A source checkpointer on `dir` with a 1 s interval and the given pacing. `due(now)` takes the
   * clock as an argument; the barrier's own time is real time, taken before `t0` + a few ms on a
   * quiet machine and up to some hundreds on a loaded one: the offsets below leave room for that.
   */
  const make = (dir: string, timeoutMs: number, minPauseMs: number, notes: string[]) =>
    new SourceCheckpointer(
      dir,
      'ingest-0',
      PIPE,
      join(dir, 'savepoints'),
      1000,
      3,
      undefined,
      1,
      false,
      undefined,
      (m) => notes.push(m),
      undefined,
      { timeoutMs, minPauseMs },
    );
  /** Lets a started probe (a stat) answer. */
  const settle = () => new Promise((r) => setTimeout(r, 100));
  const complete = (path: string) => writeFileSync(join(path, '_metadata.json'), '{}');

  it('skips ticks while the previous checkpoint is not complete, starts at the next tick after it is', async () => {
    const t = tempDir();
    try {
      const notes: string[] = [];
      const ck = make(t.dir, 60_000, 0, notes);
      const t0 = Date.now();
      const b1 = await ck.barrier('checkpoint', [], Number.NEGATIVE_INFINITY);
      assert.equal(ck.due(t0 + 10), false, 'before the tick');
      await settle(); // (the stat started there says: not complete; too early for the tick)
      assert.equal(ck.due(t0 + 1600), false, 'the tick: waits for a stat started at or after it');
      await settle();
      assert.equal(ck.due(t0 + 1601), false, 'checkpoint 1 is in flight: the tick is skipped');
      assert.equal(ck.counters()['checkpoint ticks skipped (one in flight)'], 1);
      complete(b1.path as string);
      assert.equal(ck.due(t0 + 1900), false, 'no tick yet (one interval after the skipped one)');
      await settle();
      assert.equal(ck.due(t0 + 2600), false, 'complete, but before the next tick');
      assert.equal(ck.due(t0 + 2601), true, 'the next tick after the completion');
      const b2 = await ck.barrier('checkpoint', [], Number.NEGATIVE_INFINITY);
      assert.equal(b2.id, 2);
      assert.deepEqual(ck.counters(), {
        'checkpoints taken': 2,
        'checkpoint ticks skipped (one in flight)': 1,
      });
      assert.deepEqual(notes, []);
    } finally {
      t.cleanup();
    }
  });

  it('gives up a checkpoint after the timeout (one warning), and holds the next start for the minimum pause', async () => {
    const t = tempDir();
    try {
      const notes: string[] = [];
      const ck = make(t.dir, 2500, 0, notes);
      const t0 = Date.now();
      await ck.barrier('checkpoint', [], Number.NEGATIVE_INFINITY);
      assert.equal(ck.due(t0 + 1600), false);
      await settle();
      assert.equal(ck.due(t0 + 1601), false);
      assert.equal(ck.due(t0 + 3000), true, 'expired at the first tick after the timeout');
      assert.equal(ck.counters()['checkpoints expired'], 1);
      assert.match(notes.join('\n'), /checkpoint 1 did not complete within 2500 ms/);

      const p = make(join(t.dir, 'p'), 60_000, 10_000, []);
      const b = await p.barrier('checkpoint', [], Number.NEGATIVE_INFINITY);
      complete(b.path as string);
      p.due(Date.now()); // starts a probe
      await settle();
      const seen = Date.now();
      assert.equal(p.due(seen + 5_000), false, 'a tick within the minimum pause');
      assert.equal(p.due(seen + 5_100), false, 'still within it');
      assert.equal(p.due(seen + 10_100), true, 'after it');
    } finally {
      t.cleanup();
    }
  });
});
