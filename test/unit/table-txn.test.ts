/**
 * The table sink in a checkpointing pipeline (issue 9): one Delta commit per barrier carrying a
 * `txn` action, a replayed epoch skipped, `committedEpoch` from the log (also from a Delta log
 * checkpoint), and `kappa.kafkaOffsets` per commit (issue 11). Records and barriers are fed to the
 * sink as arrays; the tables are checked with Delta Kernel (test/delta.ts), DuckDB and the raw
 * log files.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import '../../src/storage/local.js';
import type { SinkCheckpointContext } from '../../src/connectors/sink.js';
import { singleFileSink, tableCommittedEpoch } from '../../src/connectors/table.js';
import type { Barrier, Header, Provenance, Rec } from '../../src/stream/protocol.js';
import { TableSink } from '../../src/table/sink/index.js';
import { DeltaKernelError, type KernelTable, readDeltaTables, type TableSpec } from '../delta.js';
import { tempDir } from '../helpers.js';

const HEADER: Header = { kappa: 1, schema: { i: 'int64', g: 'string' } };
const APP = 'pipe-1.sink-2';

type Event = Rec | { barrier: number };

/** Records with i in [from, from + n), group g = i % 3, ts = i minutes, optional provenance. */
function recs(from: number, n: number, prov?: (i: number) => Provenance): Rec[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { ts: i * 60_000, key: null, value: { i, g: `g${i % 3}` }, ...(prov ? { prov: prov(i) } : {}) };
  });
}

/**
 * Feeds events to a new TableSink into `dir`. `end: true` commits at the end (end of input),
 * otherwise the run is aborted after the events (a crash: nothing after the last barrier commits).
 */
async function run(
  dir: string,
  events: Event[],
  o: { ctx?: SinkCheckpointContext; end?: boolean; rollRecords?: number; partitionBy?: string } = {},
): Promise<TableSink> {
  const sink = new TableSink(dir, { rollRecords: o.rollRecords, partitionBy: o.partitionBy });
  await sink.open(HEADER, o.ctx);
  for (const e of events) {
    if ('barrier' in e) await sink.barrier({ id: e.barrier } as Barrier);
    else await sink.write(e);
  }
  if (o.end) await sink.commit();
  else await sink.abort();
  return sink;
}

/** The actions of each log version, in order (the raw _delta_log JSON files). */
function logVersions(dir: string): Record<string, unknown>[][] {
  const files = readdirSync(join(dir, '_delta_log'))
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort();
  return files.map((f) =>
    readFileSync(join(dir, '_delta_log', f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

const txnsOf = (v: Record<string, unknown>[]) =>
  v.filter((a) => a.txn).map((a) => a.txn as { appId: string; version: number; lastUpdated: number });
const addsOf = (v: Record<string, unknown>[]) => v.filter((a) => a.add).length;
const infoOf = (v: Record<string, unknown>[]) =>
  v.find((a) => a.commitInfo)?.commitInfo as Record<string, unknown>;

const ctx = (restoredCheckpoint: number | null = null): SinkCheckpointContext => ({
  appId: APP,
  restoredCheckpoint,
});

describe('table sink: one Delta commit per checkpoint, exactly once', () => {
  const tmp = tempDir('kappa-table-txn-');
  let db: DuckDBConnection;
  const A = join(tmp.dir, 'a'); // epochs 1, 2, empty 3, then the end
  const B = join(tmp.dir, 'b'); // crash after epoch 2, resumed from checkpoint 1
  const C = join(tmp.dir, 'c'); // 12 epochs: a Delta log checkpoint at version 10
  const D = join(tmp.dir, 'd'); // no checkpoint context: no txn
  let kernel: (KernelTable | DeltaKernelError)[] = [];
  let resumed: TableSink;

  before(async () => {
    db = await (await DuckDBInstance.create(':memory:')).connect();
    // Files roll every 4 records inside an epoch: they must wait for the barrier.
    await run(
      A,
      [...recs(0, 10), { barrier: 1 }, ...recs(10, 10), { barrier: 2 }, { barrier: 3 }, ...recs(20, 5)],
      {
        ctx: ctx(),
        end: true,
        rollRecords: 4,
        partitionBy: '{g}',
      },
    );
    await run(B, [...recs(0, 10), { barrier: 1 }, ...recs(10, 10), { barrier: 2 }, ...recs(20, 7)], {
      ctx: ctx(),
    });
    // Resumed from checkpoint 1: epoch 2 arrives again (same records), then new epochs.
    resumed = await run(
      B,
      [...recs(10, 10), { barrier: 2 }, ...recs(20, 10), { barrier: 3 }, ...recs(30, 5), { barrier: 4 }],
      { ctx: ctx(1), end: true },
    );
    const epochs: Event[] = [];
    for (let e = 1; e <= 12; e++) epochs.push(...recs((e - 1) * 2, 2), { barrier: e });
    await run(C, epochs, { ctx: ctx(), end: true });
    // Log cleanup: versions before the Delta checkpoint are gone; the txns must come from it.
    for (let v = 0; v < 10; v++) rmSync(join(C, '_delta_log', `${String(v).padStart(20, '0')}.json`));
    await run(D, [...recs(0, 5), { barrier: 1 }, ...recs(5, 5)], { end: true });
    const specs: TableSpec[] = [];
    for (let v = 0; v <= 3; v++) specs.push({ dir: A, version: v, txn: APP });
    specs.push({ dir: B, txn: APP }, { dir: C, txn: APP }, { dir: D, txn: APP });
    kernel = await readDeltaTables(specs);
  });
  after(() => tmp.cleanup());

  const k = (i: number): KernelTable => {
    const t = kernel[i];
    if (t instanceof DeltaKernelError) assert.fail(t.message);
    return t;
  };
  const ids = (t: KernelTable) => t.rows.map((r) => Number(r.i)).sort((a, b) => a - b);
  const range = (from: number, n: number) => Array.from({ length: n }, (_, j) => from + j);

  async function duckIds(dir: string): Promise<number[]> {
    const r = await db.runAndReadAll(
      `SELECT i FROM read_parquet('${dir}/**/*.parquet', hive_partitioning=true, union_by_name=true) ORDER BY i`,
    );
    return r.getRows().map((row) => Number(row[0]));
  }

  it('each barrier writes exactly one log version, with txn {appId, version: barrier id}; none between barriers', () => {
    const vs = logVersions(A);
    assert.equal(vs.length, 4, 'barriers 1, 2, 3 and the end');
    for (const [v, id] of [
      [0, 1],
      [1, 2],
      [2, 3],
    ]) {
      const t = txnsOf(vs[v]);
      assert.equal(t.length, 1, `version ${v}: one txn action`);
      assert.equal(t[0].appId, APP);
      assert.equal(t[0].version, id);
      assert.ok(typeof t[0].lastUpdated === 'number' && t[0].lastUpdated > 0);
      assert.equal(infoOf(vs[v])['kappa.checkpointId'], id);
    }
    // Epoch 1: g0 holds 4 records (its file rolled mid-epoch), g1 and g2 3 each (rolled at the barrier).
    assert.equal(addsOf(vs[0]), 3, 'epoch 1: one file per group, all in the barrier commit');
    assert.equal(addsOf(vs[1]), 3);
    assert.equal(addsOf(vs[2]), 0, 'the empty epoch 3 is committed without files, to record it');
  });

  it('Delta Kernel sees the txn version and the rows of each epoch at each version', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((v) => k(v).txnVersion),
      [1, 2, 3, 3],
    );
    assert.deepEqual(ids(k(0)), range(0, 10));
    assert.deepEqual(ids(k(1)), range(0, 20));
    assert.deepEqual(ids(k(2)), range(0, 20));
    assert.deepEqual(ids(k(3)), range(0, 25));
  });

  it('the end-of-input commit is recognisable: txn "<appId>.end" = the last checkpoint, commitInfo kappa.endOfInput', () => {
    const last = logVersions(A)[3];
    assert.deepEqual(
      txnsOf(last).map((t) => [t.appId, t.version]),
      [[`${APP}.end`, 3]],
    );
    assert.equal(infoOf(last)['kappa.endOfInput'], true);
    assert.equal(infoOf(last)['kappa.afterCheckpoint'], 3);
  });

  it('a replayed epoch that the table already committed is skipped; the rest lands exactly once', async () => {
    assert.deepEqual(resumed.skippedEpochs, [2]);
    assert.equal(resumed.counters()['epochs skipped (already committed)'], 1);
    const want = range(0, 35);
    assert.deepEqual(ids(k(4)), want, 'Kernel: every record once');
    assert.deepEqual(await duckIds(B), want, 'DuckDB over the data files: every record once');
    assert.equal(k(4).txnVersion, 4);
    // Versions: epoch 1, epoch 2 (run 1); epochs 3, 4 (run 2); no version for the skipped epoch.
    assert.deepEqual(
      logVersions(B).map((v) => txnsOf(v).map((t) => t.version)),
      [[1], [2], [3], [4]],
    );
  });

  it('committedEpoch reads the txn version from the log, also from a Delta log checkpoint', async () => {
    assert.equal(await tableCommittedEpoch({ kind: 'table', table: A, appId: APP }), 3);
    assert.equal(await tableCommittedEpoch({ kind: 'table', table: B, appId: APP }), 4);
    assert.equal(await tableCommittedEpoch({ kind: 'table', table: C, appId: APP }), 12);
    assert.equal(k(5).txnVersion, 12, 'Kernel agrees on the table whose early versions are gone');
    assert.equal(await tableCommittedEpoch({ kind: 'table', table: A, appId: 'other' }), null);
    assert.equal(
      await tableCommittedEpoch({ kind: 'table', table: join(tmp.dir, 'none'), appId: APP }),
      null,
    );
    await assert.rejects(
      tableCommittedEpoch({ kind: 'kafka', topic: 'x' }),
      /not a table sink commit descriptor/,
    );
  });

  it('commitDescriptor names the table and appId; without a context there is none, and no txn', async () => {
    const s = new TableSink(A, {});
    await s.open(HEADER, ctx(3));
    assert.deepEqual(s.commitDescriptor(), { kind: 'table', table: A, appId: APP });
    await s.abort();
    const t = new TableSink(D, {});
    await t.open(HEADER);
    assert.equal(t.commitDescriptor(), null);
    await t.abort();
    assert.deepEqual(logVersions(D).flatMap(txnsOf), []);
    assert.equal(k(6).txnVersion, null);
  });

  it('a concurrent commit of the same appId (a second run of the same pipeline sink) is a conflict', async () => {
    const dir = join(tmp.dir, 'race');
    await run(dir, [...recs(0, 2), { barrier: 1 }], { ctx: ctx(), end: true });
    const s = new TableSink(dir, {});
    await s.open(HEADER, ctx(1));
    for (const r of recs(2, 2)) await s.write(r);
    // Another run with the same appId commits epoch 2 first (version 1 is taken).
    const other = new TableSink(dir, {});
    await other.open(HEADER, ctx(1));
    for (const r of recs(2, 2)) await other.write(r);
    await other.barrier({ id: 2 });
    await other.commit();
    await assert.rejects(
      s.barrier({ id: 2 }),
      /another run of the same pipeline sink \(pipe-1\.sink-2\) committed its epoch 2/,
    );
    await s.abort();
    assert.deepEqual(await duckIds(dir), range(0, 4), 'the losing run left nothing visible');
    // A different appId's concurrent commit is no conflict (a blind append after it).
    const a = new TableSink(dir, {});
    await a.open(HEADER, { appId: 'x.sink-1', restoredCheckpoint: null });
    await a.write(recs(9, 1)[0]);
    const b = new TableSink(dir, {});
    await b.open(HEADER, { appId: 'y.sink-1', restoredCheckpoint: null });
    await b.write(recs(10, 1)[0]);
    await b.barrier({ id: 1 });
    await a.barrier({ id: 1 });
    await a.commit();
    await b.commit();
    assert.deepEqual(await duckIds(dir), [...range(0, 4), 9, 10]);
  });

  it('a single file cannot take part in a checkpointing pipeline: usage error pointing to a table dir', async () => {
    const s = await singleFileSink.create(join(tmp.dir, 'out.parquet'), {});
    await assert.rejects(s.open(HEADER, ctx()), (e: Error) => {
      assert.match(e.message, /single file cannot be committed per checkpoint/);
      assert.equal((e as Error & { exitCode?: number }).exitCode, 2);
      return true;
    });
  });
});

describe('table sink: kappa.kafkaOffsets in each commit (issue 11)', () => {
  const tmp = tempDir('kappa-table-offsets-');
  after(() => tmp.cleanup());

  it('records one past the highest offset per topic partition among the commit records', async () => {
    const dir = join(tmp.dir, 't');
    // Two topics, partitions interleaved, offsets out of order and beyond 2^53.
    const big = 9007199254740993n; // 2^53 + 1
    const kafka = (topic: string, p: number, off: bigint): Provenance => ({
      source: `kafka://localhost:9092/${topic}`,
      partition: p,
      offset: String(off),
    });
    const epoch1: Rec[] = [];
    const want1: Record<string, Record<string, bigint>> = {};
    const note = (want: typeof want1, topic: string, p: number, off: bigint) => {
      want[topic] ??= {};
      const cur = want[topic][String(p)];
      if (cur === undefined || off + 1n > cur) want[topic][String(p)] = off + 1n;
    };
    let i = 0;
    for (const [topic, p, off] of [
      ['flights', 0, 7n],
      ['flights', 1, 3n],
      ['flights', 0, 5n],
      ['flights', 0, 12n],
      ['planes', 2, big],
      ['flights', 1, 4n],
    ] as const) {
      epoch1.push({ ...recs(i++, 1)[0], prov: kafka(topic, p, off) });
      note(want1, topic, p, off);
    }
    // File provenance (a line number) is not a Kafka offset: ignored.
    epoch1.push({ ...recs(i++, 1)[0], prov: { source: 'in.ndjson', offset: 17 } });
    const epoch2: Rec[] = [];
    const want2: typeof want1 = {};
    for (const [topic, p, off] of [
      ['flights', 0, 13n],
      ['flights', 2, 0n],
    ] as const) {
      epoch2.push({ ...recs(i++, 1)[0], prov: kafka(topic, p, off) });
      note(want2, topic, p, off);
    }
    const sink = new TableSink(dir, {});
    await sink.open(HEADER, ctx());
    for (const r of epoch1) await sink.write(r);
    await sink.barrier({ id: 1 });
    for (const r of epoch2) await sink.write(r);
    await sink.commit();
    const vs = logVersions(dir);
    assert.equal(vs.length, 2);
    const asStrings = (w: typeof want1) =>
      Object.fromEntries(
        Object.entries(w).map(([t, ps]) => [
          t,
          Object.fromEntries(Object.entries(ps).map(([p, o]) => [p, String(o)])),
        ]),
      );
    assert.deepEqual(infoOf(vs[0])['kappa.kafkaOffsets'], asStrings(want1));
    assert.deepEqual(infoOf(vs[0])['kappa.kafkaOffsets'], {
      flights: { '0': '13', '1': '5' },
      planes: { '2': '9007199254740994' },
    });
    assert.deepEqual(infoOf(vs[1])['kappa.kafkaOffsets'], asStrings(want2));
  });

  it('a commit without Kafka records has no kappa.kafkaOffsets', async () => {
    const dir = join(tmp.dir, 'files');
    await run(dir, recs(0, 3), { end: true });
    assert.equal(infoOf(logVersions(dir)[0])['kappa.kafkaOffsets'], undefined);
  });
});
