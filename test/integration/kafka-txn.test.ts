/**
 * Issue 9, Kafka sink: one Kafka transaction per checkpoint epoch, against the real broker. A
 * hand-written stream with `pipeline` info in its header (the sink derives its appId from it)
 * and barriers is fed to `kappa sink kafka://…` through a pipe:
 * (a) a read_committed consumer sees the records of committed epochs only; SIGKILL mid-epoch
 *     leaves the open epoch invisible, and the next run with the same appId fences the dead
 *     producer (its open transaction is aborted at once, not after the transaction timeout);
 * (b) committedEpoch() returns the last committed barrier id (end of input: last id + 1);
 * (c) an epoch committed before and replayed after a restore is skipped (exactly once overall).
 * Also measures produce throughput with and without transactions on 200k records.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { committedEpochKafka } from '../../src/connectors/kafka/sink.js';
import { KAPPA, ROOT, tempDir, writeEmptySnapshot } from '../helpers.js';
import { after, before, it, kafkaAddr, uniqueName } from './servers.js';

const T0 = 1_700_000_000_000;
const rec = (i: number) => JSON.stringify({ ts: T0 + i * 1000, key: `k${i % 5}`, value: { i } });
const recs = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, k) => `${rec(from + k)}\n`).join('');
const barrier = (id: number) =>
  `${JSON.stringify({ barrier: { id, sources: [{ uid: 'ingest', positions: { next: id * 1000 }, watermark: null }] } })}\n`;

interface Run {
  p: ChildProcessWithoutNullStreams;
  exit: Promise<number | null>;
  err: () => string;
}

function startSink(broker: string, topic: string, progress: string, extra: string[] = []): Run {
  const p = spawn(
    KAPPA,
    [
      'sink',
      `kafka://${broker}/${topic}`,
      '--create-topic',
      '3',
      '--progress-topic',
      progress,
      '--transaction-timeout',
      '60s',
      '--linger',
      '10ms',
      ...extra,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let err = '';
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdout.resume();
  p.stdin.on('error', () => {});
  const exit = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  return { p, exit, err: () => err };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Kafka sink: one transaction per checkpoint epoch (real broker)', () => {
  let broker: string;
  let kafka: Kafka;
  let tmp: { dir: string; cleanup: () => void };
  const topic = uniqueName('txn-out');
  const progress = uniqueName('txn-progress');
  const pipelineId = uniqueName('pipe');
  const appId = `${pipelineId}.sink-2`; // stage 1 wrote the header: the sink is stage 2
  const header = (restoredFrom: number | null) => {
    // The stages open the snapshot they restore from: give the header a real (empty) one.
    if (restoredFrom !== null)
      writeEmptySnapshot(join(tmp.dir, 'ck', `chk-${restoredFrom}`), pipelineId, restoredFrom);
    return headerLine(restoredFrom);
  };
  const headerLine = (restoredFrom: number | null) =>
    `${JSON.stringify({
      kappa: 1,
      pipeline: {
        id: pipelineId,
        checkpointDir: join(tmp.dir, 'ck'),
        stage: 1,
        uids: ['ingest', 'transform'],
        ...(restoredFrom !== null && {
          restore: {
            path: join(tmp.dir, 'ck', `chk-${restoredFrom}`),
            checkpointId: restoredFrom,
            type: 'checkpoint',
          },
        }),
      },
    })}\n`;
  const descriptor = () => ({
    kind: 'kafka',
    brokers: [broker],
    topic,
    progressTopic: progress,
    appId,
    transactionalId: `kappa:${appId}`,
    X: [],
    secrets: [],
  });

  /**
   * The `i` of every record of `topic` a fresh consumer reads (read_committed unless
   * `uncommitted`), once `enough(count)` holds or `timeoutMs` passed, plus a quiet second for
   * records that should not be there.
   */
  async function consume(
    uncommitted: boolean,
    enough: (n: number) => boolean,
    timeoutMs: number,
  ): Promise<number[]> {
    const c = kafka.consumer({ groupId: uniqueName('txn-check'), readUncommitted: uncommitted });
    const seen: number[] = [];
    await c.connect();
    try {
      await c.subscribe({ topics: [topic], fromBeginning: true });
      await c.run({
        eachMessage: async ({ message }) => {
          seen.push((JSON.parse(String(message.value)) as { i: number }).i);
        },
      });
      const t0 = Date.now();
      while (!enough(seen.length) && Date.now() - t0 < timeoutMs) await sleep(100);
      await sleep(1000);
    } finally {
      await c.disconnect();
    }
    return seen.sort((a, b) => a - b);
  }
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

  before(async () => {
    broker = kafkaAddr();
    kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    tmp = tempDir('kappa-txn-');
    // Created up front so that the checking consumers can subscribe before the sink writes.
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
  });
  after(() => tmp?.cleanup());

  it('(a, b) committed epochs only are visible; SIGKILL mid-epoch leaves the open epoch invisible', async () => {
    const r = startSink(broker, topic, progress);
    try {
      r.p.stdin.write(header(null) + recs(0, 100) + barrier(1));
      assert.deepEqual(await consume(false, (n) => n >= 100, 30_000), range(0, 100), r.err());
      r.p.stdin.write(recs(100, 150));
      // The open epoch's records are in the log (read_uncommitted sees them) ...
      assert.equal((await consume(true, (n) => n >= 150, 30_000)).length, 150, r.err());
    } finally {
      r.p.kill('SIGKILL');
    }
    await r.exit;
    // ... but a read_committed consumer sees epoch 1 only.
    assert.deepEqual(await consume(false, () => false, 2000), range(0, 100));
    assert.equal(await committedEpochKafka(descriptor()), 1);
  });

  it('(a) the next run with the same appId fences the killed producer; (c) a replayed epoch is skipped', async () => {
    // Run 2 (resumed from checkpoint 1): epoch 2 again, barrier 2, then killed mid-epoch 3.
    const r2 = startSink(broker, topic, progress);
    const t0 = Date.now();
    try {
      r2.p.stdin.write(header(1) + recs(100, 150) + barrier(2));
      // Epoch 2 becomes visible long before run 1's open transaction would time out (60 s): the
      // new producer aborted it when it took the transactional id over.
      assert.deepEqual(await consume(false, (n) => n >= 150, 25_000), range(0, 150), r2.err());
      assert.ok(Date.now() - t0 < 40_000, `took ${Date.now() - t0} ms`);
      assert.equal(await committedEpochKafka(descriptor()), 2);
      r2.p.stdin.write(recs(150, 160));
      await consume(true, (n) => n >= 260, 20_000); // 100 + 50 aborted + 100 + 10 in the log
    } finally {
      r2.p.kill('SIGKILL');
    }
    await r2.exit;
    // Run 3: the checkpoint core saw checkpoint 2 incomplete and restores checkpoint 1, so epoch 2
    // arrives again: the sink finds it committed and drops it.
    const r3 = startSink(broker, topic, progress);
    r3.p.stdin.end(`${header(1)}${recs(100, 150)}${barrier(2)}${recs(150, 200)}${barrier(3)}{"end":true}\n`);
    assert.equal(await r3.exit, 0, r3.err());
    assert.match(r3.err(), /skipped 50 records of 1 replayed epoch/);
    assert.deepEqual(
      await consume(false, (n) => n >= 200, 30_000),
      range(0, 200),
      'every record exactly once',
    );
    // End of input commits epoch last barrier + 1.
    assert.equal(await committedEpochKafka(descriptor()), 4);
  });

  it('measures produce throughput with and without transactions (200k records)', async (t) => {
    const n = 200_000;
    const input = join(tmp.dir, 'in.ndjson');
    const parts: string[] = [];
    const h = (pid: string | null) =>
      `${JSON.stringify({ kappa: 1, ...(pid && { pipeline: { id: pid, checkpointDir: '/tmp/unused', stage: 0, uids: ['ingest'] } }) })}\n`;
    for (let e = 0; e < 10; e++) parts.push(recs(e * 20_000, (e + 1) * 20_000), barrier(e + 1));
    const body = `${parts.join('')}{"end":true}\n`;
    const times: Record<string, number> = {};
    for (const mode of ['plain', 'transactional', 'plain-empty', 'transactional-empty']) {
      const empty = mode.endsWith('-empty');
      writeFileSync(
        input,
        (mode.startsWith('plain') ? h(null) : h(uniqueName('bench'))) + (empty ? '{"end":true}\n' : body),
      );
      const out = uniqueName(`txn-bench-${mode}`);
      const started = Date.now();
      const p = spawn(
        KAPPA,
        ['sink', `kafka://${broker}/${out}`, '--create-topic', '3', '--progress-topic', progress],
        { cwd: ROOT, stdio: [openSync(input, 'r'), 'ignore', 'pipe'] },
      );
      let err = '';
      p.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
      times[mode] = Date.now() - started;
      assert.equal(code, 0, err);
      const admin = kafka.admin();
      await admin.connect();
      const offs = await admin.fetchTopicOffsets(out); // read_committed: the last stable offsets
      await admin.disconnect();
      const end = offs.reduce((s, o) => s + Number(o.high), 0);
      // Transactions add one commit marker per partition per epoch to the log.
      if (!empty) assert.ok(end >= n, `${mode}: ${end} offsets`);
    }
    const rate = (ms: number) => Math.round(n / (ms / 1000));
    const line = `throughput 200k records: plain ${times.plain} ms (${rate(times.plain)}/s), transactional (10 epochs) ${times.transactional} ms (${rate(times.transactional)}/s); start-up and end of an empty input: plain ${times['plain-empty']} ms, transactional ${times['transactional-empty']} ms`;
    t.diagnostic(line);
    console.log(line);
  });
});
