/**
 * `kappa replay` against the real servers (issue 11 acceptance 3): the archive of a topic written
 * by `ingest kafka://… | sink TABLE`, then `replay TABLE --then kafka://…` yields every record of
 * the topic exactly once, archive first — by the offsets the table's commits record (exact), and
 * by the timestamp fallback with `--offset-fields` de-duplication. And one replay of a table on S3.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { s3Client, s3Config } from '../../src/storage/s3.js';
import { parseLines, sh, tempDir } from '../helpers.js';
import { after, before, it, kafkaAddr, s3Endpoint, s3Env, uniqueName } from './servers.js';

const H = 3_600_000;
const PARTS = 3;

interface Line {
  ts?: number;
  value?: { id: number; p: number; o: number; ts: number };
  prov?: { source?: string; partition?: number; offset?: string };
  end?: boolean;
}

describe('kappa replay --then kafka:// (real broker)', () => {
  let broker: string;
  let tmp: { dir: string; cleanup: () => void };
  const base = Math.floor(Date.now() / H) * H - 6 * H;
  before(() => {
    broker = kafkaAddr();
    tmp = tempDir('kappa-replay-kafka-');
  });
  after(() => tmp?.cleanup());

  /**
   * Produces records `from…from+n-1` round-robin to the partitions, one partition's records in
   * order, so record k of partition p has offset k (a fresh topic): each value carries its own
   * partition `p` and offset `o`, and its Kafka timestamp equals its event time `ts`.
   */
  async function produce(topic: string, from: number, n: number, next: number[]): Promise<void> {
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const p = kafka.producer();
    await p.connect();
    for (let part = 0; part < PARTS; part++) {
      const messages = [];
      for (let id = from; id < from + n; id++) {
        if (id % PARTS !== part) continue;
        const ts = base + id * 20_000;
        messages.push({
          partition: part,
          value: JSON.stringify({ id, p: part, o: next[part]++, ts }),
          timestamp: String(ts),
        });
      }
      await p.send({ topic, messages, acks: -1 });
    }
    await p.disconnect();
  }

  async function topicWithArchive(withOffsets: boolean): Promise<{ topic: string; table: string }> {
    const topic = uniqueName('replay');
    const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTS, configEntries: [{ name: 'retention.ms', value: '-1' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const next = new Array(PARTS).fill(0);
    await produce(topic, 0, 600, next);
    const table = join(tmp.dir, topic);
    const r = await sh(
      `kappa ingest kafka://${broker}/${topic} --until latest --ts-field ts -q | kappa sink ${table} --partition-by 'dt=%Y-%m-%d/hr=%H' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    // `kappa sink` records, per commit, the next offset of each topic partition the commit holds
    // (commitInfo kappa.kafkaOffsets, issue 11). For the fallback path, strip them: a table written
    // by another tool carries none.
    const log = join(table, '_delta_log');
    let recorded = false;
    for (const f of readdirSync(log).filter((x) => x.endsWith('.json'))) {
      const lines = readFileSync(join(log, f), 'utf8').split('\n').filter(Boolean);
      const out = lines.map((l) => {
        const a = JSON.parse(l) as { commitInfo?: Record<string, unknown> };
        if (a.commitInfo?.['kappa.kafkaOffsets']) recorded = true;
        if (a.commitInfo && !withOffsets) delete a.commitInfo['kappa.kafkaOffsets'];
        return JSON.stringify(a);
      });
      writeFileSync(join(log, f), `${out.join('\n')}\n`);
    }
    assert.ok(recorded, 'the sink recorded the Kafka offsets it holds');
    await produce(topic, 600, 450, next);
    return { topic, table };
  }

  function check(stdout: string): void {
    // No record is behind a watermark before it: the archive's newest hour is still open when the
    // topic continues it, and topic partitions hold the watermark back until they deliver.
    let wm = Number.NEGATIVE_INFINITY;
    for (const l of parseLines<Line & { watermark?: number }>(stdout)) {
      if (l.watermark !== undefined) {
        assert.ok(l.watermark > wm);
        wm = l.watermark;
      } else if (l.ts !== undefined)
        assert.ok(l.ts > wm, `record ${l.value?.id} (ts ${l.ts}) behind watermark ${wm}`);
    }
    const recs = parseLines<Line>(stdout).filter((l) => l.value);
    const ids = recs.map((l) => l.value?.id as number);
    assert.equal(new Set(ids).size, ids.length, 'a record came twice');
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      [...Array(1050).keys()],
      'every record of the topic',
    );
    // Archive first: no archive record after the first topic record.
    const firstLive = recs.findIndex((l) => l.prov?.partition !== undefined);
    assert.ok(firstLive > 0);
    assert.ok(recs.slice(firstLive).every((l) => l.prov?.partition !== undefined));
    // Topic records: their own (partition, offset) matches what the value says.
    for (const l of recs.slice(firstLive)) {
      assert.equal(l.prov?.partition, l.value?.p);
      assert.equal(Number(l.prov?.offset), l.value?.o);
      assert.equal(l.ts, l.value?.ts);
    }
  }

  it('hands over exactly at the offsets the table recorded: every record once, archive first', async () => {
    const { topic, table } = await topicWithArchive(true);
    const r = await sh(
      `kappa replay ${table} --ts-field ts --then kafka://${broker}/${topic} --until latest --stream-format ndjson`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /exact hand-over/);
    check(r.stdout);
    const archived = parseLines<Line>(r.stdout).filter((l) => l.value && l.prov?.partition === undefined);
    assert.equal(archived.length, 600);
  });

  it('without recorded offsets: timestamp lookup minus --overlap, de-duplicated on (partition, offset)', async () => {
    const { topic, table } = await topicWithArchive(false);
    const r = await sh(
      `kappa replay ${table} --ts-field ts --then kafka://${broker}/${topic} --until latest --overlap 30m --offset-fields p,o --stream-format ndjson`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not exact/);
    check(r.stdout);
    // The overlap re-read records the archive held, and they were dropped.
    assert.match(r.stderr, /[1-9][\d,]* topic records already archived/);
  });
});

describe('kappa replay from S3 (S3Proxy)', () => {
  const bucket = uniqueName('kappa-replay');
  let tmp: { dir: string; cleanup: () => void };
  const saved = { ...process.env };
  before(async () => {
    Object.assign(process.env, s3Env());
    s3Config.endpoint = s3Endpoint();
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
    tmp = tempDir('kappa-replay-s3-');
  });
  after(() => {
    process.env = saved;
    s3Config.endpoint = undefined;
    tmp?.cleanup();
  });

  it('replays an hourly Delta table on S3 oldest partition first', async () => {
    const t0 = Date.UTC(2024, 0, 1);
    const rows = [];
    for (let i = 0; i < 500; i++) rows.push(JSON.stringify({ id: i, ts: t0 + ((i * 7919) % 500) * 60_000 }));
    writeFileSync(join(tmp.dir, 'in.ndjson'), `${rows.join('\n')}\n`);
    const ep = `--s3-endpoint ${s3Endpoint()}`;
    const w = await sh(
      `kappa ingest ${tmp.dir}/in.ndjson --ts-field ts -q | kappa sink s3://${bucket}/t --partition-by 'dt=%Y-%m-%d/hr=%H' ${ep} -q`,
      { env: s3Env() },
    );
    assert.equal(w.code, 0, w.stderr);
    const r = await sh(`kappa replay s3://${bucket}/t --ts-field ts ${ep} --stream-format ndjson -q`, {
      env: s3Env(),
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = parseLines<Line & { watermark?: number }>(r.stdout);
    const recs = lines.filter((l) => l.value);
    assert.equal(new Set(recs.map((l) => l.value?.id)).size, 500);
    let wm = Number.NEGATIVE_INFINITY;
    let hour = Number.NEGATIVE_INFINITY;
    for (const l of lines) {
      if (l.watermark !== undefined) wm = l.watermark;
      if (l.ts === undefined) continue;
      const h = Math.floor(l.ts / H) * H;
      assert.ok(h >= hour && wm < h);
      hour = h;
    }
    assert.equal(lines.filter((l) => l.watermark !== undefined).length, Math.ceil(500 / 60));
  });
});
