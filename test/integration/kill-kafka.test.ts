/**
 * Issue 9, acceptance 2, against the real broker: a checkpointing Kafka-to-Kafka pipeline
 * (`ingest kafka://…/in --until latest --checkpoint-interval 250ms | transform … | sink kafka://…/out`)
 * killed with SIGKILL at random moments and resumed each time (test/kill.ts); afterwards a
 * read_committed consumer (kafkajs) of the output sees every expected record exactly once.
 *
 * Input: 1,000,000 keyed records, as the issue asks (`KAPPA_KILL_KAFKA_RECORDS` sets another count).
 * Produced with kafkajs straight into a 3-partition topic; the expected output is computed here
 * from the record numbers, not by kappa.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it as nodeIt } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { tempDir } from '../helpers.js';
import { killAndResume } from '../kill.js';
import { after, before, kafkaAddr, SKIP, uniqueName } from './servers.js';

const N = Number(process.env.KAPPA_KILL_KAFKA_RECORDS ?? 1_000_000);
const T0 = 1_700_000_000_000;
const keep = (i: number) => i % 3 !== 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill test: kafka -> transform -> kafka, killed and resumed at random (issue 9, acceptance 2)', () => {
  let broker: string;
  let kafka: Kafka;
  let tmp: { dir: string; cleanup: () => void };
  const input = uniqueName('kill-in');
  const output = uniqueName('kill-out');
  const progress = uniqueName('kill-progress');

  before(async () => {
    broker = kafkaAddr();
    kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    tmp = tempDir('kappa-kill-kafka-');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: input, numPartitions: 3 },
        { topic: output, numPartitions: 3 },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const p = kafka.producer();
    await p.connect();
    const inflight: Promise<unknown>[] = [];
    for (let s = 0; s < N; s += 20_000) {
      const messages = [];
      for (let i = s; i < Math.min(N, s + 20_000); i++)
        messages.push({
          key: `k${i % 997}`,
          value: JSON.stringify({ i, k: `k${i % 997}`, pad: 'x'.repeat(i % 17) }),
          timestamp: String(T0 + i * 10),
        });
      inflight.push(p.send({ topic: input, messages, acks: -1 }));
      if (inflight.length >= 4) await inflight.shift();
    }
    await Promise.all(inflight);
    await p.disconnect();
  });
  after(() => tmp?.cleanup());

  nodeIt(
    '≥ 10 SIGKILLs of random stages, then a read_committed consumer sees every expected record exactly once',
    { skip: SKIP, timeout: 300_000 },
    async (t) => {
      const seed = Number(process.env.KAPPA_KILL_SEED ?? 9092);
      const outcome = await killAndResume({
        stages: [
          [
            'ingest',
            `kafka://${broker}/${input}`,
            '--until',
            'latest',
            '--checkpoint-interval',
            '250ms',
            '-q',
          ],
          ['transform', '--filter', 'r.i % 3 != 0', '--select', 'i,k', '-q'],
          [
            'sink',
            `kafka://${broker}/${output}`,
            '--progress-topic',
            progress,
            '--transaction-timeout',
            '60s',
            '-q',
          ],
        ],
        env: { KAPPA_CHECKPOINT_DIR: join(tmp.dir, 'checkpoints') },
        kills: 10,
        seed,
        // Within 0.3 s after the run's first complete checkpoint (see kill-files.test.ts).
        afterCheckpoint: join(tmp.dir, 'checkpoints'),
        minKillMs: 0,
        maxKillMs: 300,
        exitTimeoutMs: 30_000,
        runTimeoutMs: 120_000,
        deadlineMs: 150_000,
        onRun: (r) =>
          t.diagnostic(
            `run ${r.run}: ${r.ms} ms, ${r.resumedFrom === undefined ? 'fresh' : `resumed from checkpoint ${r.resumedFrom}`}, ${r.killed === undefined ? 'not killed' : `killed stage ${r.killed} at ${r.killAtMs} ms`}; exits ${r.exits.map((x) => x.code ?? x.signal).join(' ')}`,
          ),
      });
      assert.ok(outcome.kills >= 10, `seed ${seed}: only ${outcome.kills} kills hit a live stage`);
      // The kills fell after checkpoints: most reruns resumed rather than started over.
      const resumed = outcome.runs.filter((r) => r.resumedFrom !== undefined).length;
      assert.ok(resumed >= 5, `seed ${seed}: only ${resumed} runs resumed from a checkpoint`);

      const expected = Array.from({ length: N }, (_, i) => i).filter(keep).length;
      const seen = new Map<number, number>();
      let total = 0;
      const c = kafka.consumer({ groupId: uniqueName('kill-check'), readUncommitted: false });
      await c.connect();
      try {
        await c.subscribe({ topics: [output], fromBeginning: true });
        await c.run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              const i = (JSON.parse(String(m.value)) as { i: number }).i;
              seen.set(i, (seen.get(i) ?? 0) + 1);
              total++;
            }
          },
        });
        // Until every expected record arrived (or 90 s), then 2 s more for any surplus.
        const t0 = Date.now();
        while (total < expected && Date.now() - t0 < 90_000) await sleep(200);
        await sleep(2000);
      } finally {
        await c.disconnect();
      }
      let missing = 0;
      let twice = 0;
      let unexpected = 0;
      for (let i = 0; i < N; i++) {
        const n = seen.get(i) ?? 0;
        if (keep(i) && n === 0) missing++;
        else if (keep(i) && n > 1) twice++;
        else if (!keep(i) && n > 0) unexpected++;
      }
      assert.deepEqual(
        { total, missing, duplicated: twice, unexpected },
        { total: expected, missing: 0, duplicated: 0, unexpected: 0 },
        `seed ${seed}: the committed output holds every expected record exactly once`,
      );
    },
  );
});
