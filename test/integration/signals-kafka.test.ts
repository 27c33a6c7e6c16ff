/**
 * Issue 8 item 8 against the real broker: a Kafka ingest stopped by SIGTERM (an unbounded read, and
 * a bounded `--until latest` read still waiting for records) writes no end-of-stream line, commits
 * no `--group` offsets and exits 143, so the downstream table sink commits nothing. Before the fix
 * the Kafka source ended its batches on the signal and ingest wrote the end line: exit 0 and a
 * committed partial table.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { KAPPA, ROOT, tempDir } from '../helpers.js';
import { after, before, it, kafkaAddr, uniqueName } from './servers.js';

describe('SIGTERM of a Kafka ingest (real broker)', () => {
  let tmp: { dir: string; cleanup: () => void };
  let broker: string;
  let topic: string;
  before(async () => {
    broker = kafkaAddr();
    tmp = tempDir('kappa-sig-');
    topic = uniqueName('sigterm');
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();
    const p = kafka.producer();
    await p.connect();
    const messages = Array.from({ length: 5000 }, (_, i) => ({
      key: `k${i % 7}`,
      value: JSON.stringify({ i, t: 1_700_000_000_000 + i * 1000 }),
    }));
    await p.send({ topic, messages });
    await p.disconnect();
  });
  after(() => tmp?.cleanup());

  for (const bounded of [false, true]) {
    it(`${bounded ? 'bounded' : 'unbounded'} read: exit 143, no end line, the table sink commits nothing`, async () => {
      const table = join(tmp.dir, `t-${bounded}`);
      const args = ['ingest', `kafka://${broker}/${topic}`, '--from', 'earliest', '--group', `g-${bounded}`];
      // A bounded read whose stop offset lies beyond what was written waits like an unbounded one.
      if (bounded) args.push('--until', '0:1000000,1:1000000');
      const ingest = spawn(KAPPA, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const sink = spawn(KAPPA, ['sink', table], { cwd: ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
      sink.stdin.on('error', () => {});
      let ingestErr = '';
      ingest.stderr.on('data', (d: Buffer) => {
        ingestErr += d.toString();
      });
      sink.stderr.resume();
      let out = '';
      ingest.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        sink.stdin.write(d);
      });
      ingest.stdout.on('end', () => sink.stdin.end());
      const ingestExit = new Promise<number | null>((r) => ingest.on('close', (c) => r(c)));
      const sinkExit = new Promise<number | null>((r) => sink.on('close', (c) => r(c)));
      const t0 = Date.now();
      while ((out.match(/"ts":/g) ?? []).length < 5000 && Date.now() - t0 < 60_000)
        await new Promise((r) => setTimeout(r, 100));
      ingest.kill('SIGTERM');
      const ic = await ingestExit;
      const sc = await sinkExit;
      assert.equal(ic, 143, ingestErr);
      assert.match(ingestErr, /SIGTERM/);
      assert.ok(!out.includes('"end":true'), 'no end-of-stream line after a signal');
      assert.equal(sc, 1, 'the sink sees a stream without its end line');
      const log = join(table, '_delta_log');
      assert.deepEqual(
        existsSync(log) ? readdirSync(log).filter((f) => f.endsWith('.json')) : [],
        [],
        'no Delta version',
      );
      // No offsets were committed for the group: a stopped run is not a clean end.
      const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const offs = await admin.fetchOffsets({ groupId: `g-${bounded}`, topics: [topic] });
        for (const t of offs)
          for (const p of t.partitions) assert.equal(p.offset, '-1', JSON.stringify(offs));
      } finally {
        await admin.disconnect();
      }
    });
  }
});
