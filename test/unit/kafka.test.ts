import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import type {
  FetchedBatch,
  KafkaAdminClient,
  PartitionReader,
  ReaderHandlers,
} from '../../src/connectors/kafka/adapter.js';
import { parseClientOptions, parseKafkaUri } from '../../src/connectors/kafka/client.js';
import { DeliveryLedger } from '../../src/connectors/kafka/ledger.js';
import {
  KAFKA_SINK_OPTIONS,
  KAFKA_SOURCE_OPTIONS,
  withKafkaSinkOptions,
  withKafkaSourceOptions,
} from '../../src/connectors/kafka/options.js';
import { KeyPartitioner, murmur2, partitionForKey } from '../../src/connectors/kafka/partitioner.js';
import { parsePartitionList, parsePosition } from '../../src/connectors/kafka/positions.js';
import { KafkaSource, SLICE } from '../../src/connectors/kafka/source.js';
import { UsageError } from '../../src/errors.js';
import type { RowBatch } from '../../src/formats/format.js';
import { parseS3Uri } from '../../src/storage/s3.js';
import { SplitWatermarks } from '../../src/time/watermark.js';
import { sh } from '../helpers.js';

const require = createRequire(import.meta.url);
// kafkajs's Java-compatible murmur2 (the one its DefaultPartitioner uses): an independent port.
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: Buffer | string,
) => number;

describe('murmur2 partitioner', () => {
  it('matches known Java Utils.murmur2 values', () => {
    // Values from Kafka's UtilsTest.testMurmur2 (clients/src/test/java/.../UtilsTest.java).
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [k, v] of cases) assert.equal(murmur2(Buffer.from(k)), v, k);
    assert.equal(murmur2(Buffer.from([97, 98, 99])), murmur2(Buffer.from('abc')));
  });
  it('agrees with kafkajs on every tail length and on non-ASCII keys', () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'SFO', 'LAX', 'ORD', 'Zürich', '東京', '🚀x'];
    for (let i = 0; i < 500; i++) keys.push(`key-${i}-${'x'.repeat(i % 13)}`);
    for (const k of keys) {
      assert.equal(murmur2(Buffer.from(k)), kafkajsMurmur2(Buffer.from(k)), k);
      assert.equal(partitionForKey(k, 7), (kafkajsMurmur2(Buffer.from(k)) & 0x7fffffff) % 7, k);
    }
  });
  it('spreads null keys round-robin', () => {
    const p = new KeyPartitioner(3);
    assert.deepEqual(
      [null, null, null, null, undefined].map((k) => p.partition(k)),
      [0, 1, 2, 0, 1],
    );
    assert.equal(p.partition('SFO'), partitionForKey('SFO', 3));
  });
});

describe('kafka URIs, positions and client options', () => {
  it('parses kafka://host:port[,host:port]/topic', () => {
    assert.deepEqual(parseKafkaUri('kafka://a:9092,b:9093/t.x-1'), {
      brokers: ['a:9092', 'b:9093'],
      topic: 't.x-1',
      uri: 'kafka://a:9092,b:9093/t.x-1',
    });
    assert.throws(() => parseKafkaUri('kafka:///t'), UsageError);
    assert.throws(() => parseKafkaUri('kafka://a/t'), UsageError);
    assert.throws(() => parseKafkaUri('kafka://a:1/bad topic'), UsageError);
  });
  it('parses start/stop positions and partition lists', () => {
    const kw = ['earliest', 'latest', 'committed'];
    assert.deepEqual(parsePosition('earliest', '--from', kw), { kind: 'earliest' });
    assert.deepEqual(parsePosition('0:10,3:7', '--from', kw), {
      kind: 'offsets',
      offsets: new Map([
        [0, 10n],
        [3, 7n],
      ]),
    });
    assert.deepEqual(parsePosition('2024-05-01T12:00:00Z', '--until', ['latest']), {
      kind: 'time',
      ms: Date.UTC(2024, 4, 1, 12),
    });
    assert.deepEqual(parsePosition('2024-05-01T14:00:00+02:00', '--until', ['latest']), {
      kind: 'time',
      ms: Date.UTC(2024, 4, 1, 12),
    });
    assert.throws(() => parsePosition('committed', '--until', ['latest']), UsageError);
    assert.throws(() => parsePosition('0:1,0:2', '--from', kw), UsageError);
    assert.throws(() => parsePosition('yesterday', '--from', kw), UsageError);
    assert.deepEqual(parsePartitionList('3,0,5-7'), [0, 3, 5, 6, 7]);
    assert.throws(() => parsePartitionList('2-1'), UsageError);
  });
  it('maps -X options to client settings and rejects unknown keys', () => {
    const o = parseClientOptions([
      'client.id=me',
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-512',
      'sasl.username=u',
      'sasl.password=p=w',
      'fetch.max.wait.ms=50',
      'isolation.level=read_uncommitted',
      'retries=2',
    ]);
    assert.equal(o.clientId, 'me');
    assert.equal(o.ssl, true);
    assert.deepEqual(o.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p=w' });
    assert.equal(o.retry.retries, 2);
    assert.deepEqual(o.consumer, { maxWaitMs: 50, readUncommitted: true });
    assert.throws(() => parseClientOptions(['linger.mss=5']), UsageError);
    assert.throws(() => parseClientOptions(['retries']), UsageError);
    assert.throws(() => parseClientOptions(['retries=x']), UsageError);
  });
  it('parses s3://bucket/key', () => {
    assert.deepEqual(parseS3Uri('s3://b/a/c.parquet'), { bucket: 'b', key: 'a/c.parquet' });
    assert.deepEqual(parseS3Uri('s3://b'), { bucket: 'b', key: '' });
    assert.throws(() => parseS3Uri('s3:///x'), UsageError);
  });
});

describe('SplitWatermarks idleness', () => {
  it('leaves idle splits out of the minimum and holds back on unseen splits', () => {
    const w = new SplitWatermarks(0);
    w.addSplit('0');
    w.addSplit('1');
    w.observe('0', 100);
    assert.equal(w.advance(), undefined, 'split 1 unseen holds the watermark back');
    w.setIdle(new Set(['1']));
    assert.equal(w.advance(), 99);
    w.observe('1', 50);
    w.setIdle(new Set());
    assert.equal(w.advance(), undefined, 'split 1 active again at 49: no regression');
    w.observe('1', 200);
    assert.equal(w.advance(), undefined, 'minimum still 99, already emitted');
    w.observe('0', 300);
    assert.equal(w.advance(), 199);
    w.setIdle(new Set(['0', '1']));
    assert.equal(w.advance(), undefined, 'all idle: no advance');
  });
});

describe('Kafka delivery ledger (end-of-read consistency check)', () => {
  it('a complete bounded read verifies; re-fetched overlap is harmless', () => {
    const l = new DeliveryLedger([
      { partition: 0, start: 0n, stop: 600n },
      { partition: 1, start: 10n, stop: 10n }, // empty range: complete from the start
    ]);
    l.cover(0, 0n, 256n, 256);
    l.cover(0, 100n, 300n, 44); // a fetch issued before a seek: overlaps what was delivered
    l.cover(0, 300n, 600n, 300);
    assert.deepEqual(l.verify(), []);
    assert.equal(l.next(0), 600n);
  });

  it('a read that ends with nothing delivered fails, naming partition and offsets', () => {
    const l = new DeliveryLedger([
      { partition: 0, start: 0n, stop: 6000n },
      { partition: 1, start: 0n, stop: 6000n },
    ]);
    l.cover(1, 0n, 6000n, 6000);
    const problems = l.verify();
    assert.equal(problems.length, 1);
    assert.match(
      problems[0],
      /partition 0: delivered up to offset 0 of \[0, 6000\) \(0 records\), offsets 0\.\.5999 missing/,
    );
  });

  it('offsets skipped by a jump of the fetch position are lost even if the stop was reached', () => {
    const l = new DeliveryLedger([{ partition: 3, start: 0n, stop: 100n }]);
    l.cover(3, 0n, 40n, 40);
    l.cover(3, 60n, 100n, 40); // the fetch began at 60: 40..59 were never looked at
    assert.deepEqual(l.verify(), ['partition 3: offsets 40..59 were skipped, never delivered']);
  });

  it('gaps inside a fetch (compaction, transaction markers) and a gap up to stop are covered', () => {
    const l = new DeliveryLedger([{ partition: 0, start: 5n, stop: 50n }]);
    l.cover(0, 5n, 30n, 12); // fetched from 5, records 5..29 with holes
    l.cover(0, 30n, 50n, 0); // next record returned was at/after stop
    assert.deepEqual(l.verify(), []);
  });

  it('unbounded partitions are never incomplete; unknown partitions are a bug', () => {
    const l = new DeliveryLedger([{ partition: 0, start: 7n }]);
    assert.deepEqual(l.verify(), []);
    assert.throws(() => l.cover(9, 0n, 1n, 1), /partition 9/);
  });
});

/** A scripted admin client: partitions 0..n-1 with the given log end offsets. */
function fakeAdmin(high: number[], commits: Map<number, bigint>[] = []): KafkaAdminClient {
  return {
    connect: async () => {},
    disconnect: async () => {},
    listTopics: async () => ['t'],
    partitionIds: async () => high.map((_, p) => p),
    createTopic: async () => {},
    offsetBounds: async () => new Map(high.map((h, p) => [p, { low: 0n, high: BigInt(h) }])),
    offsetsForTime: async () => new Map(),
    committedOffsets: async () => new Map(),
    commitOffsets: async (_g, _t, offsets) => {
      commits.push(new Map(offsets));
    },
    deleteGroup: async () => {},
  };
}

/** A scripted reader: the test hands batches to the source through `handlers`. */
class FakeReader implements PartitionReader {
  handlers: ReaderHandlers | undefined;
  readonly calls: string[] = [];
  async start(positions: ReadonlyMap<number, bigint>, h: ReaderHandlers) {
    this.handlers = h;
    this.calls.push(`start ${[...positions.keys()].join(',')}`);
  }
  pause(p: number) {
    this.calls.push(`pause ${p}`);
  }
  resume(p: number, o: bigint) {
    this.calls.push(`resume ${p}@${o}`);
  }
  async close() {
    this.calls.push('close');
  }
  /** Hands partition p's records at offsets from.. with event times `ts` to the source. */
  fetch(p: number, from: number, ts: number[]) {
    const b: FetchedBatch = {
      partition: p,
      fetchedOffset: BigInt(from),
      endOffset: BigInt(from + ts.length),
      highWatermark: BigInt(from + ts.length),
      records: ts.map((t, i) => ({
        offset: String(from + i),
        key: null,
        value: Buffer.from(JSON.stringify({ p, i: from + i })),
        timestamp: String(t),
      })),
    };
    return this.handlers?.batch(b);
  }
}

async function source(
  high: number[],
  opts: { idleMs?: number; driftMs?: number; bounded?: boolean; group?: string },
) {
  const reader = new FakeReader();
  const commits: Map<number, bigint>[] = [];
  const src = new KafkaSource(
    { brokers: ['x:1'], topic: 't', uri: 'kafka://x:1/t' },
    fakeAdmin(high, commits),
    () => reader,
    opts.group,
    opts.idleMs,
    opts.driftMs,
  );
  await src.init(undefined, { kind: 'earliest' }, opts.bounded ? { kind: 'latest' } : undefined);
  return { src, reader, commits, it: src.batches()[Symbol.asyncIterator]() };
}

/** The next non-empty batch (the source yields empty batches while it waits). */
async function nextBatch(it: AsyncIterator<RowBatch>): Promise<RowBatch | undefined> {
  for (let k = 0; k < 50; k++) {
    const r = await it.next();
    if (r.done) return undefined;
    if (r.value.rows.length > 0) return r.value;
  }
  throw new Error('no batch after 50 empty ones');
}

describe('Kafka source alignment and idleness (scripted reader)', () => {
  it('a partition paused by alignment is never idle (FLIP-471); an idle one does not keep it paused', async () => {
    const { src, reader, it } = await source([300, 300], { idleMs: 0, driftMs: 1000 });
    const first = it.next(); // starts the reader
    await new Promise((r) => setTimeout(r, 10));
    reader.fetch(
      0,
      0,
      Array.from({ length: 300 }, (_, i) => 5000 + i),
    );
    reader.fetch(
      1,
      0,
      Array.from({ length: 300 }, (_, i) => i * 10),
    );
    const b0 = (await first).value as RowBatch;
    assert.deepEqual([b0.split, b0.rows.length], ['0', SLICE]);
    const report = (w0: number, w1: number) =>
      src.onWatermarks(
        new Map([
          ['0', w0],
          ['1', w1],
        ]),
        Math.min(w0, w1),
      );
    report(5000 + SLICE - 2, Number.NEGATIVE_INFINITY);
    assert.match(src.detail(), /p0:\d+ paused/);
    assert.ok(!src.idleSplits().has('0'), 'paused: not idle although silent longer than --idle-timeout');
    const b1 = await nextBatch(it);
    assert.deepEqual([b1?.split, b1?.rows.length], ['1', SLICE], 'the slowest partition delivers');
    report(5000 + SLICE - 2, (SLICE - 1) * 10 - 1);
    assert.match(src.detail(), /p0:\d+ paused/, 'still more than the drift ahead');
    const b2 = await nextBatch(it);
    assert.deepEqual([b2?.split, b2?.rows.length], ['1', 300 - SLICE]);
    report(5000 + SLICE - 2, 299 * 10 - 1);
    assert.ok(src.idleSplits().has('1'), 'partition 1 delivered everything and is idle');
    assert.doesNotMatch(src.detail(), /paused/, 'an idle partition does not hold partition 0 paused');
    const b3 = await nextBatch(it);
    assert.deepEqual([b3?.split, b3?.rows.length], ['0', 300 - SLICE]);
    await src.close();
    assert.ok(reader.calls.includes('close'));
  });

  it('a finished partition never holds the others paused; the bounded read completes and commits', async () => {
    const { src, reader, it, commits } = await source([1, 600], { driftMs: 1000, bounded: true, group: 'g' });
    const first = it.next();
    await new Promise((r) => setTimeout(r, 10));
    reader.fetch(0, 0, [0]); // partition 0: one record at t=0, then it is finished
    const ts1 = Array.from({ length: 600 }, (_, i) => 100_000 + i * 1000); // far ahead of partition 0
    reader.fetch(1, 0, ts1);
    const b0 = (await first).value as RowBatch;
    assert.equal(b0.split, '0');
    const wm = new Map<string, number>([
      ['0', -1],
      ['1', Number.NEGATIVE_INFINITY],
    ]);
    src.onWatermarks(wm, Number.NEGATIVE_INFINITY);
    let records = b0.rows.length;
    const deadline = Date.now() + 5000;
    for (;;) {
      assert.ok(Date.now() < deadline, `read stuck after ${records} records: ${src.detail()}`);
      const r = await it.next();
      if (r.done) break;
      const b = r.value;
      if (b.rows.length > 0) {
        records += b.rows.length;
        const last = Number(b.nativeTs?.(b.rows.length - 1));
        wm.set(b.split as string, Math.max(wm.get(b.split as string) as number, last - 1));
      }
      src.onWatermarks(wm, Math.min(...wm.values()));
    }
    assert.equal(records, 601);
    assert.ok(src.idleSplits().has('0') && src.idleSplits().has('1'), 'finished partitions are left out');
    await src.commit();
    assert.deepEqual(commits, [
      new Map([
        [0, 1n],
        [1, 600n],
      ]),
    ]);
  });

  it('a fetch of transaction markers only, queued behind records, ends a bounded read at its stop', async () => {
    const { src, reader, it, commits } = await source([6], { bounded: true, group: 'g' });
    const first = it.next();
    await new Promise((r) => setTimeout(r, 10));
    reader.fetch(0, 0, [1, 2, 3]); // offsets 0..2
    reader.handlers?.empty(0, 3n, 6n); // offsets 3..5: commit marker, aborted records
    let records = ((await first).value as RowBatch).rows.length;
    const deadline = Date.now() + 3000;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      assert.ok(Date.now() < deadline, `read stuck: ${src.detail()}`);
      records += r.value.rows.length;
    }
    assert.equal(records, 3);
    await src.commit();
    assert.deepEqual(commits, [new Map([[0, 6n]])]);
  });

  it('never commits --group offsets of a read that did not complete (signal stop, failure)', async () => {
    const { src, reader, it, commits } = await source([5], { bounded: true, group: 'g' });
    const first = it.next();
    await new Promise((r) => setTimeout(r, 10));
    reader.fetch(0, 0, [1, 2]);
    await first;
    await it.return?.(undefined); // ingest stopped reading (e.g. SIGTERM) before the stop offset
    await src.commit();
    await src.close();
    await src.commit();
    assert.deepEqual(commits, []);
  });
});

describe('Kafka options: declared lists and -X checked at parse time (issue 8 item 22)', () => {
  it('the declared option lists are exactly the flags the Kafka source and sink add', () => {
    const names = (cmd: Command) => cmd.options.map((o) => o.attributeName()).sort();
    assert.deepEqual(names(withKafkaSourceOptions(new Command())), [...KAFKA_SOURCE_OPTIONS].sort());
    const sink = names(withKafkaSinkOptions(new Command()));
    for (const n of KAFKA_SINK_OPTIONS.filter((n) => n !== 'compression')) assert.ok(sink.includes(n), n);
    assert.deepEqual(sink, KAFKA_SINK_OPTIONS.filter((n) => n !== 'compression').sort());
  });

  it('an unknown -X key is a usage error listing the known ones, whatever the source or target', async () => {
    const i = await sh('kappa ingest - -X foo=bar -q', { input: '{"a":1}\n' });
    assert.equal(i.code, 2, i.stderr);
    assert.match(i.stderr, /-X foo: unknown client option/);
    assert.match(i.stderr, /understood: .*security\.protocol/);
    assert.doesNotMatch(i.stdout, /"a":1/, 'nothing was read');
    const k = await sh('kappa sink - -X nonsense=1 -q', { input: '{"kappa":1}\n{"end":true}\n' });
    assert.equal(k.code, 2, k.stderr);
    assert.match(k.stderr, /-X nonsense: unknown client option/);
    const v = await sh('kappa ingest - -X retries=many -q', { input: '' });
    assert.equal(v.code, 2, 'a bad value too');
    assert.match(v.stderr, /-X retries: expected a non-negative integer/);
  });
});
