/**
 * The table sink's checkpoint commits against the real servers (test/servers): `committedEpoch`
 * reads the `txn` version from a table on S3 (S3Proxy), and a table written from a Kafka topic
 * records in its commit the next offset per partition (`kappa.kafkaOffsets`, issue 11), compared
 * with the broker's own end offsets.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { tableCommittedEpoch } from '../../src/connectors/table.js';
import { s3Client, s3Config } from '../../src/storage/s3.js';
import { sh, tempDir } from '../helpers.js';
import { after, before, it, kafkaAddr, s3Endpoint, s3Env, uniqueName } from './servers.js';

/** A stream with pipeline info (id p1, the sink is stage 1): records i and barriers, then end. */
function stream(events: (number | { barrier: number })[]): string {
  const pipeline = { id: 'p1', checkpointDir: '/tmp/unused', stage: 0, uids: ['ingest'] };
  const lines = [JSON.stringify({ kappa: 1, schema: { i: 'int64' }, pipeline })];
  for (const e of events)
    lines.push(
      typeof e === 'number'
        ? JSON.stringify({ ts: e, key: null, value: { i: e } })
        : JSON.stringify({ barrier: { id: e.barrier } }),
    );
  return `${lines.join('\n')}\n{"end":true}\n`;
}

describe('table sink checkpoint commits on S3 and from Kafka (real servers)', () => {
  const bucket = uniqueName('kappa-txn');
  const saved = { ...process.env };
  const tmp = tempDir('kappa-txn-int-');
  before(async () => {
    Object.assign(process.env, s3Env());
    s3Config.endpoint = s3Endpoint();
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  });
  after(() => {
    process.env = saved;
    s3Config.endpoint = undefined;
    tmp.cleanup();
  });

  it('committedEpoch reads the txn version of a table on S3', async () => {
    const table = `s3://${bucket}/t`;
    const r = await sh(`kappa sink ${table} --s3-endpoint ${s3Endpoint()} -q`, {
      input: stream([1, 2, { barrier: 4 }, 3, { barrier: 5 }, 6]),
      env: s3Env(),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await tableCommittedEpoch({ kind: 'table', table, appId: 'p1.sink-1' }), 5);
    assert.equal(await tableCommittedEpoch({ kind: 'table', table, appId: 'p2.sink-1' }), null);
    assert.equal(
      await tableCommittedEpoch({ kind: 'table', table: `s3://${bucket}/none`, appId: 'p1.sink-1' }),
      null,
    );
  });

  it('a table written from Kafka records the next offset per topic partition in its commit', async () => {
    const broker = kafkaAddr();
    const topic = uniqueName('offsets');
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const p = kafka.producer();
    await p.connect();
    for (let b = 0; b < 3; b++)
      await p.send({
        topic,
        messages: Array.from({ length: 40 }, (_, j) => ({
          key: `k${(b * 40 + j) % 7}`,
          value: JSON.stringify({ i: b * 40 + j }),
        })),
      });
    await p.disconnect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const out = join(tmp.dir, 'archive');
    const r = await sh(`kappa ingest kafka://${broker}/${topic} --until latest -q | kappa sink '${out}' -q`);
    assert.equal(r.code, 0, r.stderr);
    const versions = readdirSync(join(out, '_delta_log')).filter((f) => f.endsWith('.json'));
    assert.equal(versions.length, 1);
    const info = readFileSync(join(out, '_delta_log', versions[0]), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { commitInfo?: Record<string, unknown> })
      .find((a) => a.commitInfo)?.commitInfo;
    const want: Record<string, string> = {};
    for (const e of ends) if (e.high !== '0') want[String(e.partition)] = e.high;
    assert.ok(Object.keys(want).length >= 2, 'the keys spread over several partitions');
    assert.deepEqual(info?.['kappa.kafkaOffsets'], { [topic]: want });
  });
});
