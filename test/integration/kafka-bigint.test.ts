/**
 * Kafka record values parsed as JSON keep integers beyond 2^53 exactly (issue 8, issue 14 int64
 * rule; src/formats/json-exact.ts): a bounded `kappa ingest kafka://…` gives them as their exact
 * decimal strings (kappa-stream(5)), top level and nested, and counts them in the summary.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { parseLines, sh } from '../helpers.js';
import { it, kafkaAddr, uniqueName } from './servers.js';

describe('kafka source: integers beyond 2^53', () => {
  it('JSON values keep them as exact decimal strings', async () => {
    const broker = kafkaAddr();
    const topic = uniqueName('bigint');
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const p = kafka.producer();
    await p.connect();
    await p.send({
      topic,
      messages: [
        { value: '{"id":12345678901234567890,"o":{"id":-9007199254740993},"arr":[9007199254740993],"n":1}' },
        { value: '{"id":9007199254740991,"f":1.5e300}' },
      ],
    });
    await p.disconnect();
    const r = await sh(`kappa ingest kafka://${broker}/${topic} --until latest --stream-format ndjson`);
    assert.equal(r.code, 0, r.stderr);
    const values = parseLines<{ value?: Record<string, unknown> }>(r.stdout)
      .filter((l) => l.value)
      .map((l) => l.value);
    assert.deepEqual(values, [
      { id: '12345678901234567890', o: { id: '-9007199254740993' }, arr: ['9007199254740993'], n: 1 },
      { id: 9007199254740991, f: 1.5e300 },
    ]);
    assert.match(r.stderr, /3 integers beyond 2\^53 kept as decimal strings/);
  });
});
