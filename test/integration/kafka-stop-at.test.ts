/**
 * `kappa ingest kafka://… --stop-at PARTITION:OFFSET,…` (issue 9) against the real broker: the
 * source reads each partition up to its offset and stops with a savepoint (not the end line); a run
 * from that savepoint reads exactly the rest — every record once, by (partition, offset).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { parseLines, sh, tempDir } from '../helpers.js';
import { after, before, it, kafkaAddr, uniqueName } from './servers.js';

const CLEAN = { KAPPA_CHECKPOINT_DIR: '', KAPPA_RESUME: '', KAPPA_FROM_SAVEPOINT: '' };

describe('kafka: --stop-at offsets, then --from-savepoint', () => {
  const t = tempDir('kappa-stop-at-');
  let kafka: Kafka;
  before(() => {
    kafka = new Kafka({ brokers: [kafkaAddr()], clientId: 'kappa-stop-at-test', logLevel: logLevel.NOTHING });
  });
  after(() => t.cleanup());

  it('stops at the offsets with a savepoint; the savepoint run reads exactly the rest', async () => {
    const topic = uniqueName('stopat');
    const uri = `kafka://${kafkaAddr()}/${topic}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '-1' }] }],
    });
    await admin.disconnect();
    const p = kafka.producer();
    await p.connect();
    await p.send({
      topic,
      messages: Array.from({ length: 200 }, (_, id) => ({
        value: JSON.stringify({ id }),
        partition: id % 2,
      })),
    });
    await p.disconnect();
    const ck = join(t.dir, 'ck');
    const first = await sh(
      `kappa ingest '${uri}' --from earliest --stop-at 0:30,1:70 --checkpoint-dir '${ck}' | kappa sink -`,
      { env: CLEAN },
    );
    assert.equal(first.code, 0, first.stderr);
    const sp = /kappa ingest: savepoint (\S+)/.exec(first.stderr)?.[1];
    assert.ok(sp, first.stderr);
    const a = parseLines<{ id: number }>(first.stdout).map((r) => r.id);
    // Partition 0 holds the even ids, partition 1 the odd ones, in order.
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      [
        ...Array.from({ length: 30 }, (_, i) => 2 * i),
        ...Array.from({ length: 70 }, (_, i) => 2 * i + 1),
      ].sort((x, y) => x - y),
    );
    const second = await sh(
      `kappa ingest '${uri}' --until latest --checkpoint-dir '${ck}' --from-savepoint '${sp}' | kappa sink -`,
      { env: CLEAN },
    );
    assert.equal(second.code, 0, second.stderr);
    const b = parseLines<{ id: number }>(second.stdout).map((r) => r.id);
    assert.deepEqual(
      [...a, ...b].sort((x, y) => x - y),
      Array.from({ length: 200 }, (_, i) => i),
    );
  });
});
