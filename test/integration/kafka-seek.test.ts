/**
 * Issue 9, "sources seek to its positions", against the real broker: a Kafka source read part of
 * the way, its position taken (through JSON, as a barrier carries it) and opened again with
 * `startAt`, delivers exactly the rest; a partition added since starts at its earliest offset; a
 * partition that no longer exists, and records deleted by retention, are DataErrors (the latter a
 * warning with --on-error skip). Also the files source on s3:// (a resume reads ranges from the
 * saved byte offset).
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { filesSource } from '../../src/connectors/files.js';
import { openKafka } from '../../src/connectors/kafka/source.js';
import type { SourceOptions, SourcePosition } from '../../src/connectors/source.js';
import { DataError } from '../../src/errors.js';
import { S3Store, s3Client, s3Config } from '../../src/storage/s3.js';
import { after, before, it, kafkaAddr, s3Endpoint, s3Env, uniqueName } from './servers.js';

/** Reads the topic to its current end (or `maxRows` rows), returning the value ids and the position. */
async function read(
  uri: string,
  opts: SourceOptions,
  maxRows = Number.POSITIVE_INFINITY,
): Promise<{ ids: number[]; pos: SourcePosition }> {
  const src = await openKafka([uri], { until: 'latest', ...opts });
  const ids: number[] = [];
  try {
    if (maxRows > 0)
      for await (const b of src.batches()) {
        for (const r of b.rows) ids.push((r as { id: number }).id);
        if (ids.length >= maxRows) break;
      }
    return { ids, pos: JSON.parse(JSON.stringify(src.position?.())) as SourcePosition };
  } finally {
    await src.close();
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('kafka source: resume at a position (startAt)', () => {
  let kafka: Kafka;
  before(async () => {
    kafka = new Kafka({ brokers: [kafkaAddr()], clientId: 'kappa-seek-test', logLevel: logLevel.NOTHING });
    // On a fresh broker the first group lookup creates __consumer_offsets; kafkajs' admin retries
    // until the coordinator is up, whereas the source's fetch consumer (restartOnFailure false)
    // would crash with "Consumer group was not initialized" (seen once here).
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.describeGroups([uniqueName('warm-up')]);
    } finally {
      await admin.disconnect();
    }
  });
  after(() => undefined);

  async function produce(topic: string, ids: number[], partition?: number): Promise<void> {
    const p = kafka.producer();
    await p.connect();
    try {
      await p.send({
        topic,
        messages: ids.map((id) => ({
          key: `k${id % 13}`,
          value: JSON.stringify({ id }),
          partition: partition ?? id % 3,
        })),
      });
    } finally {
      await p.disconnect();
    }
  }

  it('consume part, take the position, reopen with startAt: exactly the rest; new partitions from earliest', async () => {
    const topic = uniqueName('seek');
    const uri = `kafka://${kafkaAddr()}/${topic}`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }],
      });
      await produce(topic, range(0, 3000));
      const a = await read(uri, {}, 1000);
      assert.ok(a.ids.length >= 1000 && a.ids.length < 3000, `read part: ${a.ids.length}`);
      assert.equal(a.pos.kind, 'kafka');
      // --from latest is overridden by the position.
      const b = await read(uri, { startAt: a.pos, from: 'latest' });
      assert.deepEqual(sorted([...a.ids, ...b.ids]), range(0, 3000), 'every record exactly once');
      // More records, and a partition added since the checkpoint: it starts at its earliest offset.
      await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
      await produce(topic, range(3000, 3100));
      await produce(topic, range(3100, 3150), 3);
      const c = await read(uri, { startAt: b.pos });
      assert.deepEqual(sorted(c.ids), range(3000, 3150));
      // A listed partition that no longer exists.
      const gone = { ...c.pos, next: { ...(c.pos.next as Record<string, string>), '7': '0' } };
      await assert.rejects(read(uri, { startAt: gone }), (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.match((e as Error).message, /partition 7 .*no longer exists/);
        return true;
      });
      // Records deleted by retention before they were read: DataError, or a warning with skip.
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '500' }] });
      const early = { ...a.pos, next: { ...(a.pos.next as Record<string, string>), '0': '100' } };
      await assert.rejects(read(uri, { startAt: early }), (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.match(
          (e as Error).message,
          /partition 0: .*below the log start 500: 400 records were deleted/,
        );
        return true;
      });
      const d = await read(uri, { startAt: early, onError: 'skip' });
      const p0 = d.ids.filter((id) => id < 3000 && id % 3 === 0);
      assert.equal(Math.min(...p0), 1500, 'partition 0 resumes at its log start (offset 500 holds id 1500)');
    } finally {
      await admin.disconnect();
    }
  });
});

describe('files source on s3://: resume at a position (ranged reads from the byte offset)', () => {
  const bucket = uniqueName('kappa-seek');
  const saved = { ...process.env };
  before(async () => {
    Object.assign(process.env, s3Env());
    s3Config.endpoint = s3Endpoint();
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  });
  after(() => {
    process.env = saved;
    s3Config.endpoint = undefined;
  });

  it('NDJSON and CSV objects: rows before + after the position = the object, each once', async () => {
    const store = new S3Store();
    const n = 40_000;
    const ids = range(0, n);
    const pad = 'x'.repeat(60);
    await store.put(
      `s3://${bucket}/in/a.ndjson`,
      `${ids.map((id) => JSON.stringify({ id, pad })).join('\n')}\n`,
    );
    await store.put(
      `s3://${bucket}/in/b.csv`,
      `id,pad\n${ids.map((id) => `${n + id},"${pad}"`).join('\n')}\n`,
    );
    const uri = `s3://${bucket}/in/`;
    const src = await filesSource.open([uri], {});
    const before: number[] = [];
    let pos: SourcePosition | undefined;
    for await (const b of src.batches()) {
      for (const r of b.rows) before.push((r as { id: number }).id);
      const p = src.position?.() as SourcePosition;
      // Stop inside the CSV object, past its first batch (so the position has a byte offset).
      if (p.file === 1 && (p.byte as number) > 0) {
        pos = JSON.parse(JSON.stringify(p)) as SourcePosition;
        break;
      }
    }
    await src.close();
    assert.ok(pos && (pos.rows as number) < n, `a position inside b.csv: ${JSON.stringify(pos)}`);
    const again = await filesSource.open([uri], { startAt: pos });
    const rest: number[] = [];
    for await (const b of again.batches()) for (const r of b.rows) rest.push((r as { id: number }).id);
    await again.close();
    assert.deepEqual([...before, ...rest], range(0, 2 * n));
  });
});
