import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import '../../src/storage/local.js';
import { storeFor } from '../../src/storage/store.js';
import {
  columnsFromSchemaString,
  commitActions,
  commitUri,
  type DeltaAction,
  decodeDeltaPath,
  deltaSchemaString,
  encodeDeltaPath,
  FileStats,
  newMetaData,
  protocolFor,
  requiredProtocol,
} from '../../src/table/delta.js';
import { escapePartitionValue, Partitioner, parsePartitionSpec } from '../../src/table/partition.js';
import { TableSchema } from '../../src/table/schema.js';
import { runIdOfPart } from '../../src/table/sink/committer.js';
import { RollingPolicy } from '../../src/table/sink/rolling.js';
import { tempDir } from '../helpers.js';

describe('partition spec', () => {
  it('parses time and field segments and finds the finest unit', () => {
    const s = parsePartitionSpec('dt=%Y-%m-%d/hr=%H/{carrier}');
    assert.deepEqual(s.columns, ['dt', 'hr', 'carrier']);
    assert.deepEqual(s.timeColumns, ['dt', 'hr']);
    assert.equal(s.unit, 'hour');
  });
  it('rejects segments that are not Hive name=value', () => {
    assert.throws(() => parsePartitionSpec('%Y/%m'), /not name=PATTERN/);
    assert.throws(() => parsePartitionSpec('dt=%Y/dt=%m'), /twice/);
    assert.throws(() => parsePartitionSpec('dt=%Q'), /unsupported strftime/);
  });
  it('maps event time to UTC buckets with exclusive ends, fields Hive-escaped', () => {
    const p = new Partitioner(parsePartitionSpec('dt=%Y-%m-%d/hr=%H/{c}'));
    const ts = Date.UTC(2001, 0, 2, 23, 59, 59, 999);
    const a = p.partitionOf(ts, { c: 'a/b:c' });
    assert.equal(a.path, 'dt=2001-01-02/hr=23/c=a%2Fb%3Ac');
    assert.deepEqual(a.values, { dt: '2001-01-02', hr: '23', c: 'a/b:c' });
    assert.equal(a.end, Date.UTC(2001, 0, 3));
    assert.equal(p.partitionOf(ts + 1, { c: null }).path, 'dt=2001-01-03/hr=00/c=__HIVE_DEFAULT_PARTITION__');
  });
  it('an empty-string field is a null partition value (Delta, Spark), in the row too', () => {
    const p = new Partitioner(parsePartitionSpec('{c}'));
    const row: Record<string, unknown> = { c: '', n: 1 };
    const r = p.partitionOf(0, row);
    assert.equal(r.path, 'c=__HIVE_DEFAULT_PARTITION__');
    assert.deepEqual(r.values, { c: null });
    assert.deepEqual(row, { c: null, n: 1 });
  });
  it('uses the given zone, also across DST', () => {
    const p = new Partitioner(parsePartitionSpec('dt=%Y-%m-%d'), 'America/New_York');
    // 2001-04-01 05:00Z is 00:00 EST; the day ends at 04:00Z (EDT starts that day)
    const r = p.partitionOf(Date.UTC(2001, 3, 1, 5), {});
    assert.equal(r.path, 'dt=2001-04-01');
    assert.equal(r.end, Date.UTC(2001, 3, 2, 4));
    assert.equal(p.partitionOf(Date.UTC(2001, 3, 1, 4, 59), {}).path, 'dt=2001-03-31');
  });
  it('escapes like Hive', () => {
    assert.equal(escapePartitionValue('x=1#%'), 'x%3D1%23%25');
    assert.equal(escapePartitionValue(''), '__HIVE_DEFAULT_PARTITION__');
    assert.equal(escapePartitionValue('héllo world'), 'héllo world');
  });
});

describe('table schema', () => {
  it('infers, widens inferred int64 to float64, adds new fields', () => {
    const s = new TableSchema();
    assert.deepEqual(s.check({ a: 1, b: 'x' }), { ok: true, changed: true });
    assert.deepEqual(s.check({ a: 2, b: 'y' }), { ok: true, changed: false });
    assert.deepEqual(s.check({ a: 2.5, c: { n: 1 } }), { ok: true, changed: true });
    assert.deepEqual(s.toSchema(), { a: 'float64', b: 'string', c: 'json' });
  });
  it('reports conflicts and changes nothing', () => {
    const s = new TableSchema({ n: 'int64', t: 'timestamp' });
    const v = s.version;
    const r = s.check({ n: 1.5 });
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /field 'n' \(int64\): expected an integer/);
    assert.equal(s.check({ t: '2001-01-01' }).ok, false);
    assert.equal(s.check({ n: 'x', z: 1 }).ok, false);
    assert.equal(s.get('z'), undefined);
    assert.equal(s.version, v);
  });
  it('an existing table: new fields need allowNew; committed int64 never widens (Delta typeWidening has no long -> double)', () => {
    const s = new TableSchema(undefined, [{ name: 'n', type: 'int64', declared: false }]);
    s.allowNew = false;
    const r = s.check({ n: 1, extra: 'x' });
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /new field 'extra'.*--merge-schema/);
    const w = s.check({ n: 1.5 });
    assert.match((w as { reason: string }).reason, /would widen the table's column from long to double/);
    s.allowNew = true;
    assert.deepEqual(s.check({ n: 2, extra: 'x' }), { ok: true, changed: true });
    // a column of this run's first commit may still widen before it is committed, not after
    const f = new TableSchema();
    assert.equal(f.check({ m: 1 }).ok, true);
    assert.equal(f.check({ m: 1.5 }).ok, true);
    f.check({ k: 1 });
    f.markCommitted();
    assert.equal(f.check({ k: 2.5 }).ok, false);
  });
  it('frozen: new fields are conflicts', () => {
    const s = new TableSchema({ a: 'string' });
    s.frozen = true;
    assert.equal(s.check({ a: 'x' }).ok, true);
    assert.equal(s.check({ b: 1 }).ok, false);
  });
});

describe("another engine's table: appends keep its Delta types", () => {
  const foreign = JSON.stringify({
    type: 'struct',
    fields: [
      { name: 'b', type: 'byte', nullable: true, metadata: {} },
      { name: 'h', type: 'short', nullable: true, metadata: { comment: 'x' } },
      { name: 'i', type: 'integer', nullable: false, metadata: {} },
      { name: 'f', type: 'float', nullable: true, metadata: {} },
      { name: 'd', type: 'decimal(10,2)', nullable: true, metadata: {} },
      { name: 's', type: { type: 'struct', fields: [] }, nullable: true, metadata: {} },
    ],
  });

  it('byte/short/integer take their range only; float, decimal and nested take only null; not-null needs a value', () => {
    const s = new TableSchema(undefined, columnsFromSchemaString(foreign));
    assert.deepEqual(s.check({ b: -128, h: 32767, i: -2147483648 }), { ok: true, changed: false });
    for (const bad of [{ b: 128, i: 1 }, { h: -32769, i: 1 }, { i: 2147483648 }, { i: 1.5 }])
      assert.equal(s.check(bad).ok, false, JSON.stringify(bad));
    const why = (v: Record<string, unknown>) => {
      const r = s.check(v);
      return r.ok ? '' : r.reason;
    };
    assert.match(why({ i: 1, f: 1.5 }), /'f'.*float/);
    assert.match(why({ i: 1, d: 1.25 }), /'d'.*decimal\(10,2\)/);
    assert.match(why({ i: 1, s: {} }), /'s'.*struct/);
    assert.match(why({ b: 1 }), /'i' is missing.*not nullable/);
    assert.match(why({ i: null }), /'i' is null.*not nullable/);
    assert.equal(s.check({ i: 7, f: null, d: null, s: null }).ok, true);
  });

  it('the schema string is written back exactly; new columns are added in kappa form', () => {
    const cols = columnsFromSchemaString(foreign);
    assert.equal(deltaSchemaString(cols, []), foreign);
    const s = new TableSchema(undefined, cols);
    assert.equal(s.check({ i: 1, extra: 'x' }).ok, true);
    const out = JSON.parse(deltaSchemaString(s.columns, [])) as { fields: unknown[] };
    assert.deepEqual(out.fields.slice(0, 6), JSON.parse(foreign).fields);
    assert.deepEqual(out.fields[6], {
      name: 'extra',
      type: 'string',
      nullable: true,
      metadata: { 'kappa.type': 'string' },
    });
  });

  it('an int64 column a Parquet file of the run holds is not widened any more', () => {
    const s = new TableSchema();
    assert.equal(s.check({ x: 1 }).ok, true);
    s.markWritten();
    const r = s.check({ x: 1.5 });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /already written with it as int64/);
    assert.equal(s.get('x')?.type, 'int64');
  });

  it('the protocol is kept when it allows what kappa needs, upgraded (keeping its features) when not', () => {
    const t = { minReaderVersion: 1, minWriterVersion: 7, writerFeatures: ['appendOnly'] };
    assert.equal(protocolFor(t, { minReaderVersion: 1, minWriterVersion: 2 }), t);
    const ntz = requiredProtocol([{ name: 'x', type: 'timestamp', declared: true }]);
    assert.deepEqual(protocolFor(t, ntz), {
      minReaderVersion: 3,
      minWriterVersion: 7,
      readerFeatures: ['timestampNtz'],
      writerFeatures: ['appendOnly', 'timestampNtz'],
    });
    assert.deepEqual(protocolFor({ minReaderVersion: 1, minWriterVersion: 2 }, ntz).writerFeatures, [
      'appendOnly',
      'invariants',
      'timestampNtz',
    ]);
  });
});

describe('delta log pieces', () => {
  it('maps kappa types to Delta types and back', () => {
    const cols = new TableSchema({ a: 'int64', t: 'timestamp', z: 'timestamptz', j: 'json', d: 'date' })
      .columns;
    const s = JSON.parse(deltaSchemaString(cols, ['dt']));
    assert.deepEqual(
      s.fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`),
      ['a:long', 't:timestamp_ntz', 'z:timestamp', 'j:string', 'd:date', 'dt:string'],
    );
    const back = columnsFromSchemaString(deltaSchemaString(cols, ['dt']), ['dt']);
    assert.deepEqual(
      back.map((c) => c.type),
      ['int64', 'timestamp', 'timestamptz', 'json', 'date'],
    );
    assert.deepEqual(requiredProtocol(cols).readerFeatures, ['timestampNtz']);
    assert.deepEqual(requiredProtocol(cols.filter((c) => c.type !== 'timestamp')), {
      minReaderVersion: 1,
      minWriterVersion: 2,
    });
  });
  it('URI-encodes add paths (Hive escapes become %25XX)', () => {
    const p = 'c=a%3Ab/part 1.parquet';
    assert.equal(encodeDeltaPath(p), 'c=a%253Ab/part%201.parquet');
    assert.equal(decodeDeltaPath(encodeDeltaPath(p)), p);
  });
  it('computes per-file stats', () => {
    const cols = new TableSchema({ n: 'int64', t: 'timestamp', s: 'string' }).columns;
    const st = new FileStats(cols);
    st.add({ n: 3, t: 0, s: 'b' });
    st.add({ n: -1, t: 86_400_000, s: null });
    assert.deepEqual(JSON.parse(st.toJSON()), {
      numRecords: 2,
      minValues: { n: -1, t: '1970-01-01T00:00:00.000', s: 'b' },
      maxValues: { n: 3, t: '1970-01-02T00:00:00.000', s: 'b' },
      nullCount: { n: 0, t: 0, s: 1 },
    });
  });
});

describe('rolling policy', () => {
  it('rolls at size or record count, and by age', () => {
    const p = new RollingPolicy({ rollSize: 100, rollRecords: 10, rollInterval: '2s' });
    assert.equal(p.full(99, 9), false);
    assert.equal(p.full(100, 1), true);
    assert.equal(p.full(1, 10), true);
    assert.equal(p.expired(0, 1999), false);
    assert.equal(p.expired(0, 2000), true);
    assert.equal(new RollingPolicy({}).expired(0, 1e12), false);
    assert.throws(() => new RollingPolicy({ rollRecords: 0 }), /--roll-records/);
  });
});

describe('Delta commit conflicts (commitActions)', () => {
  const tmp = tempDir('kappa-conflict-');
  after(() => tmp.cleanup());
  const store = storeFor(tmp.dir);
  const cols = new TableSchema({ a: 'string', b: 'string' }).columns;
  const first = (part: string): DeltaAction[] => [
    { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
    { metaData: newMetaData(cols, [part], [], 'parquet', {}) },
    {
      add: {
        path: `${part}=x/f-${part}.parquet`,
        partitionValues: { [part]: 'x' },
        size: 1,
        modificationTime: 0,
        dataChange: true,
      },
    },
    { commitInfo: { engineInfo: `writer-${part}` } },
  ];
  const empty = (version: number) => ({ version, files: new Map() });

  it('two concurrent first writers with different partition columns: the second fails', async () => {
    const root = join(tmp.dir, 'first');
    assert.equal(await commitActions(store, root, empty(-1), first('a')), 0);
    await assert.rejects(
      commitActions(store, root, empty(-1), first('b')),
      /concurrent commit conflict: version 0 was written by writer-a .*metaData/,
    );
    assert.equal(existsSync(commitUri(root, 1)), false, 'nothing written after the conflict');
    assert.match(readFileSync(commitUri(root, 0), 'utf8'), /"partitionColumns":\["a"\]/);
  });

  it('a winner that only added files: the append is retried after it, the winner kept', async () => {
    const root = join(tmp.dir, 'append');
    await commitActions(store, root, empty(-1), first('a'));
    const add = (n: string): DeltaAction[] => [
      {
        add: {
          path: `a=x/${n}.parquet`,
          partitionValues: { a: 'x' },
          size: 1,
          modificationTime: 0,
          dataChange: true,
        },
      },
      { commitInfo: { engineInfo: n } },
    ];
    assert.equal(await commitActions(store, root, empty(0), add('winner')), 1);
    assert.equal(await commitActions(store, root, empty(0), add('loser')), 2);
    assert.match(readFileSync(commitUri(root, 1), 'utf8'), /winner/);
    assert.match(readFileSync(commitUri(root, 2), 'utf8'), /loser/);
  });

  it('a lost response: the winner is this commit itself (same kappa.commitId), so it is not written twice', async () => {
    const root = join(tmp.dir, 'self');
    await commitActions(store, root, empty(-1), first('a'));
    const mine: DeltaAction[] = [
      {
        add: {
          path: 'a=x/m.parquet',
          partitionValues: { a: 'x' },
          size: 1,
          modificationTime: 0,
          dataChange: true,
        },
      },
      { commitInfo: { 'kappa.commitId': 'run-7' } },
    ];
    assert.equal(await commitActions(store, root, empty(0), mine, 'run-7'), 1);
    assert.equal(
      await commitActions(store, root, empty(0), mine, 'run-7'),
      1,
      'the retry finds its own version',
    );
    assert.equal(existsSync(commitUri(root, 2)), false);
  });

  it('a winner that changed the protocol (or metaData) fails the append', async () => {
    const root = join(tmp.dir, 'proto');
    await commitActions(store, root, empty(-1), first('a'));
    await commitActions(store, root, empty(0), [
      {
        protocol: {
          minReaderVersion: 3,
          minWriterVersion: 7,
          readerFeatures: ['timestampNtz'],
          writerFeatures: ['timestampNtz'],
        },
      },
    ]);
    await assert.rejects(
      commitActions(store, root, empty(0), [{ commitInfo: {} }]),
      /version 1 .*changes the table's protocol/,
    );
  });
});

describe('pending-file records (local store)', () => {
  const tmp = tempDir('kappa-pending-');
  after(() => tmp.cleanup());
  const store = storeFor(tmp.dir);

  it('finish() returns a record another process can publish (idempotently) or discard', async () => {
    const target = join(tmp.dir, 'dt=1', `part-00000-${'ab'.repeat(8)}.ndjson`);
    const p = await store.create(target);
    await p.write(Buffer.from('{"a":1}\n'));
    const rec = await p.finish();
    assert.equal(rec.store, 'file');
    assert.equal(rec.bytes, 8);
    const found = [];
    for await (const f of store.listInProgress(tmp.dir)) found.push(f.uri);
    assert.deepEqual(found, [target]);
    assert.equal(runIdOfPart(target), 'ab'.repeat(8));
    // a JSON round trip, as the pending-commit record stores it
    const again = JSON.parse(JSON.stringify(rec));
    await store.publish(again);
    await store.publish(again);
    assert.equal(readFileSync(target, 'utf8'), '{"a":1}\n');
    const q = await store.create(join(tmp.dir, 'other.ndjson'));
    await q.write(Buffer.from('x'));
    await store.discard(await q.finish());
    const left = [];
    for await (const f of store.listInProgress(tmp.dir)) left.push(f.uri);
    assert.deepEqual(left, []);
    assert.equal(existsSync(join(tmp.dir, 'other.ndjson')), false);
  });

  it('publish of a record whose file vanished (neither hidden nor final) is an error naming both', async () => {
    await assert.rejects(
      store.publish({
        store: 'file',
        tmp: join(tmp.dir, '.gone.inprogress-1'),
        target: join(tmp.dir, 'gone'),
        bytes: 0,
      }),
      /cannot publish .*\.gone\.inprogress-1 as .*gone/,
    );
  });
});
