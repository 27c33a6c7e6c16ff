/**
 * Kafka connector against a real KRaft broker (test/servers): acceptance 1 (murmur2 placement
 * checked against the Java client, bounded read exactly once), 3 (watermark alignment) and 4
 * (broker stopped mid-run).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel } from 'kafkajs';
import { partitionForKey } from '../../src/connectors/kafka/partitioner.js';
import { SLICE } from '../../src/connectors/kafka/source.js';
import { FLIGHTS, KAPPA, ROOT, sh, tempDir } from '../helpers.js';
import {
  after,
  before,
  it,
  javaPartitions,
  KAFKA_SH,
  kafkaAddr,
  s3Endpoint,
  s3Env,
  uniqueName,
} from './servers.js';

interface Line {
  ts?: number;
  key?: string | null;
  value?: Record<string, unknown>;
  prov?: { source: string; partition: number; offset: string };
  watermark?: number;
  end?: boolean;
}

function lines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Line);
}

const N_FLIGHTS = 120_000;

/** One key per partition: keys[p] lands in partition p of an n-partition topic. */
function keysForPartitions(n: number): string[] {
  const keys: string[] = new Array(n);
  let found = 0;
  for (let i = 0; found < n; i++) {
    const p = partitionForKey(`k${i}`, n);
    if (keys[p] === undefined) {
      keys[p] = `k${i}`;
      found++;
    }
  }
  return keys;
}

describe('kafka connector (real broker)', () => {
  let tmp: { dir: string; cleanup: () => void };
  let flights: string;
  let broker: string;
  before(async () => {
    broker = kafkaAddr();
    tmp = tempDir('kappa-kafka-');
    flights = join(tmp.dir, 'flights.ndjson');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    await c.run(
      `COPY (SELECT row_number() OVER () AS id, epoch_ms(date) AS date_ms, delay, distance, origin, destination
             FROM '${FLIGHTS}' LIMIT ${N_FLIGHTS}) TO '${flights}' (FORMAT JSON)`,
    );
    c.closeSync();
  });
  after(() => tmp?.cleanup());

  it('the test broker keeps records with old timestamps (no time-based retention)', async () => {
    // Test data has event times years in the past; with Kafka's default 7-day retention the broker
    // deletes it at its next retention check, and reads made after that find empty topics.
    const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        resources: [{ type: 4 /* BROKER */, name: '1', configNames: ['log.retention.ms'] }],
        includeSynonyms: false,
      });
      const v = resources[0].configEntries.find((e) => e.configName === 'log.retention.ms')?.configValue;
      assert.equal(v, '-1', 'test/servers/kafka.sh must set log.retention.ms=-1');
    } finally {
      await admin.disconnect();
    }
  });

  let flightsTopic = '';
  it('acceptance 1: sink places keys as the Java partitioner does; bounded ingest reads every record once', async () => {
    const topic = uniqueName('flights');
    flightsTopic = topic;
    const uri = `kafka://${broker}/${topic}`;
    const w = await sh(
      `kappa ingest ${flights} --ts-field date_ms --ts-format epoch-ms --key-field origin -q | kappa sink ${uri} --create-topic 4 -q`,
    );
    assert.equal(w.code, 0, w.stderr);
    const r = await sh(`kappa ingest ${uri} --from earliest --until latest -q > ${tmp.dir}/out.ndjson`);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(readFileSync(join(tmp.dir, 'out.ndjson'), 'utf8'));
    assert.deepEqual(out[0], { kappa: 1 });
    assert.deepEqual(out[out.length - 1], { end: true });
    const recs = out.filter((l) => l.value !== undefined);
    assert.equal(recs.length, N_FLIGHTS);
    const ids = new Set(recs.map((x) => x.value?.id));
    assert.equal(ids.size, N_FLIGHTS, 'every record exactly once');
    const keys = [...new Set(recs.map((x) => x.key as string))];
    assert.ok(keys.length > 50, `many distinct origins (${keys.length})`);
    const java = javaPartitions(keys, 4);
    const partitionsUsed = new Set<number>();
    for (const x of recs) {
      assert.equal(x.key, x.value?.origin);
      assert.equal(x.ts, x.value?.date_ms, 'Kafka record timestamp = event time');
      assert.equal(x.prov?.partition, java.get(x.key as string), `key ${x.key}`);
      partitionsUsed.add(x.prov?.partition as number);
    }
    assert.equal(partitionsUsed.size, 4);
    // Offsets are dense and unique per partition.
    const perPartition = new Map<number, Set<string>>();
    for (const x of recs) {
      const p = x.prov?.partition as number;
      if (!perPartition.has(p)) perPartition.set(p, new Set());
      perPartition.get(p)?.add(x.prov?.offset as string);
    }
    for (const [p, offs] of perPartition)
      for (let o = 0; o < offs.size; o++) assert.ok(offs.has(String(o)), `partition ${p} offset ${o}`);
  });

  it('our murmur2 agrees with the Java client on arbitrary keys', () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'Zürich', '東京', '🚀 rocket', 'k\ttab'];
    for (let i = 0; i < 300; i++) keys.push(`key-${i}-${'y'.repeat(i % 11)}`);
    for (const n of [1, 3, 4, 12]) {
      const java = javaPartitions(keys, n);
      for (const k of keys) assert.equal(partitionForKey(k, n), java.get(k), `${JSON.stringify(k)} mod ${n}`);
    }
  });

  it('reads positions: --partitions, --from offsets, --until time, --group commits only at a clean end', async () => {
    const topic = uniqueName('pos');
    const uri = `kafka://${broker}/${topic}`;
    const base = Date.UTC(2024, 0, 1);
    const [kEven, kOdd] = keysForPartitions(2);
    const input = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ i, k: i % 2 === 0 ? kEven : kOdd, t: base + i * 60_000 }),
    ).join('\n');
    const w = await sh(
      `kappa ingest - --ts-field t --key-field k -q | kappa sink ${uri} --create-topic 2 -q`,
      {
        input: `${input}\n`,
      },
    );
    assert.equal(w.code, 0, w.stderr);
    const pEven = 0;
    const one = await sh(`kappa ingest ${uri} --partitions ${pEven} --from ${pEven}:5 --until latest -q`);
    assert.equal(one.code, 0, one.stderr);
    const evens = lines(one.stdout).filter((l) => l.value);
    assert.deepEqual(
      evens.map((l) => l.value?.i),
      Array.from({ length: 15 }, (_, j) => 10 + 2 * j),
    );
    const until = new Date(base + 10 * 60_000).toISOString();
    const t = await sh(`kappa ingest ${uri} --from earliest --until ${until} -q`);
    assert.equal(t.code, 0, t.stderr);
    const early = lines(t.stdout)
      .filter((l) => l.value)
      .map((l) => l.value?.i as number)
      .sort((a, b) => a - b);
    assert.deepEqual(
      early,
      Array.from({ length: 10 }, (_, j) => j),
      '--until time is exclusive',
    );
    const group = uniqueName('g');
    const g1 = await sh(`kappa ingest ${uri} --group ${group} --until ${until} -q`);
    assert.equal(g1.code, 0, g1.stderr);
    assert.equal(lines(g1.stdout).filter((l) => l.value).length, 10);
    const g2 = await sh(`kappa ingest ${uri} --group ${group} --until latest -q`);
    assert.equal(g2.code, 0, g2.stderr);
    const rest = lines(g2.stdout)
      .filter((l) => l.value)
      .map((l) => l.value?.i as number)
      .sort((a, b) => a - b);
    assert.deepEqual(
      rest,
      Array.from({ length: 30 }, (_, j) => 10 + j),
      'resumes at the committed offsets',
    );
    const bad = await sh(`kappa ingest ${uri} --until latest --partitions 7 -q`);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no partition 7/);
  });

  it('non-JSON values are bad records naming partition and offset', async () => {
    const topic = uniqueName('bad');
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const p = kafka.producer();
    await p.connect();
    await p.send({ topic, messages: [{ value: '{"a":1}' }, { value: 'not json' }, { value: '{"a":3}' }] });
    await p.disconnect();
    const uri = `kafka://${broker}/${topic}`;
    const fail = await sh(`kappa ingest ${uri} --until latest -q`);
    assert.equal(fail.code, 3, fail.stderr);
    assert.match(fail.stderr, /partition 0 offset 1/);
    const skip = await sh(`kappa ingest ${uri} --until latest --on-error skip -q`);
    assert.equal(skip.code, 0, skip.stderr);
    assert.deepEqual(
      lines(skip.stdout)
        .filter((l) => l.value)
        .map((l) => l.value?.a),
      [1, 3],
    );
  });

  it('sink: no topic auto-creation, unsupported compression is a usage error, gzip works', async () => {
    const topic = uniqueName('nocreate');
    const rec = '{"kappa":1}\n{"ts":1,"key":"a","value":{"x":1}}\n{"end":true}\n';
    const r = await sh(`kappa sink kafka://${broker}/${topic} -q`, { input: rec });
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /does not exist.*\n.*--create-topic/);
    const kafka = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    assert.ok(!(await admin.listTopics()).includes(topic), 'topic not created');
    await admin.disconnect();
    const z = await sh(`kappa sink kafka://${broker}/${topic} --compression zstd -q`, { input: rec });
    assert.equal(z.code, 2);
    const g = await sh(
      `kappa sink kafka://${broker}/${topic} --compression gzip --create-topic 1 -q && kappa ingest kafka://${broker}/${topic} --until latest -q`,
      { input: rec },
    );
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(
      lines(g.stdout).find((l) => l.value),
      {
        ts: 1,
        key: 'a',
        value: { x: 1 },
        prov: { source: `kafka://${broker}/${topic}`, partition: 0, offset: '0' },
      },
    );
  });

  it('acceptance 3: --max-drift keeps a partition hours ahead from running away; same records', async () => {
    const topic = uniqueName('skew');
    const uri = `kafka://${broker}/${topic}`;
    // Two keys, one per partition: "slow" starts at base, "fast" 3 hours later; 1 record per second.
    const [kSlow, kFast] = keysForPartitions(2);
    const base = Date.UTC(2024, 0, 1);
    const n = 6000;
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      rows.push(JSON.stringify({ k: kFast, t: base + 3 * 3600_000 + i * 1000, i }));
      rows.push(JSON.stringify({ k: kSlow, t: base + i * 1000, i }));
    }
    writeFileSync(join(tmp.dir, 'skew.ndjson'), `${rows.join('\n')}\n`);
    const w = await sh(
      `kappa ingest ${tmp.dir}/skew.ndjson --ts-field t --key-field k -q | kappa sink ${uri} --create-topic 2 -q`,
    );
    assert.equal(w.code, 0, w.stderr);

    const analyse = (text: string) => {
      let wm = Number.NEGATIVE_INFINITY;
      let maxLead = 0;
      let late = 0;
      const recs: string[] = [];
      for (const l of lines(text)) {
        if (l.watermark !== undefined) {
          assert.ok(l.watermark > wm, 'watermarks strictly increase');
          wm = l.watermark;
        } else if (l.value) {
          recs.push(`${l.key}/${l.value.i}`);
          if (l.ts !== undefined && l.ts <= wm) late++;
          if (Number.isFinite(wm) && l.ts !== undefined) maxLead = Math.max(maxLead, l.ts - wm);
        }
      }
      return { maxLead, late, recs: recs.sort() };
    };
    const aligned = await sh(`kappa ingest ${uri} --from earliest --until latest --max-drift 10m -q`);
    assert.equal(aligned.code, 0, aligned.stderr);
    const free = await sh(`kappa ingest ${uri} --from earliest --until latest -q`);
    assert.equal(free.code, 0, free.stderr);
    const a = analyse(aligned.stdout);
    const f = analyse(free.stdout);
    // Both reads are complete streams with every record (a read once returned none and exited 0;
    // the source's end-of-read check now fails such a run instead).
    for (const [name, r, x] of [
      ['aligned', aligned, a],
      ['free', free, f],
    ] as const) {
      const ls = lines(r.stdout);
      assert.deepEqual(ls[ls.length - 1], { end: true }, `${name}: end line (stderr: ${r.stderr})`);
      assert.equal(x.recs.length, 2 * n, `${name}: every record (stderr: ${r.stderr})`);
    }
    assert.deepEqual(a.recs, f.recs, 'alignment changes pacing, not results');
    assert.equal(a.late, 0, 'no record behind the emitted watermark');
    // Lead over the emitted watermark: the drift plus at most one delivery slice (1 record/s).
    const bound = 10 * 60_000 + (SLICE + 1) * 1000;
    assert.ok(a.maxLead <= bound, `max lead ${a.maxLead} ms <= ${bound} ms`);
  });

  it('issue 8 item 9: a bounded read with --max-drift finishes when partitions run at different event-time rates', async () => {
    // Real flights, one partition per key: partition p holds every (p+1)-th of the first
    // 50,000*(p+1) flights, so all four hold 50,000 records but cover 1x..4x as much event time;
    // they finish at different event times, and the fast ones must be paused for the slow one.
    const topic = uniqueName('rates');
    const uri = `kafka://${broker}/${topic}`;
    const keys = keysForPartitions(4);
    const file = join(tmp.dir, 'rates.ndjson');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    await c.run(
      `CREATE TABLE f AS SELECT row_number() OVER () AS id, epoch_ms(date) AS ts, delay, origin
       FROM '${FLIGHTS}' LIMIT 200000`,
    );
    const parts = keys
      .map((k, p) => `SELECT *, '${k}' AS pk FROM f WHERE id <= ${50_000 * (p + 1)} AND id % ${p + 1} = 0`)
      .join(' UNION ALL ');
    await c.run(`CREATE TABLE r AS ${parts}`);
    await c.run(`COPY (SELECT * FROM r ORDER BY ts, id) TO '${file}' (FORMAT JSON)`);
    // The oracle: records per key, and the widest event-time span of SLICE+1 consecutive records of
    // one partition (a delivered slice may overshoot the drift by at most that).
    const expected = new Map<string, { n: number; ids: number }>();
    for (const row of (
      await c.runAndReadAll('SELECT pk, count(*)::INTEGER, sum(id)::DOUBLE FROM r GROUP BY pk')
    ).getRows())
      expected.set(String(row[0]), { n: Number(row[1]), ids: Number(row[2]) });
    const span = Number(
      (
        await c.runAndReadAll(
          `SELECT max(nx - ts)::DOUBLE FROM (SELECT ts, lead(ts, ${SLICE}) OVER (PARTITION BY pk ORDER BY ts, id) AS nx FROM r)`,
        )
      ).getRows()[0][0],
    );
    c.closeSync();
    const w = await sh(
      `kappa ingest ${file} --ts-field ts --key-field pk -q | kappa sink ${uri} --create-topic 4 -q`,
    );
    assert.equal(w.code, 0, w.stderr);
    const drift = 10 * 60_000;
    // The command, and the same with large fetches: the old source discarded the rest of a
    // fetch at every pause and fetched it again (82,688 of 200,000 records in 60 s here).
    for (const extra of ['', '-X max.partition.fetch.bytes=16777216']) {
      const t0 = Date.now();
      const r = await sh(
        `timeout 60 kappa ingest ${uri} --from earliest --until latest --ts-field ts --max-drift 10m ${extra} -q`,
      );
      const name = `--max-drift 10m ${extra}`;
      assert.equal(
        r.code,
        0,
        `${name}: exit ${r.code} after ${Date.now() - t0} ms (124: timed out) ${r.stderr}`,
      );
      const ls = lines(r.stdout);
      assert.deepEqual(ls.at(-1), { end: true }, `${name}: end line`);
      const got = new Map<string, { n: number; ids: number }>();
      const seen = new Set<number>();
      let wm = Number.NEGATIVE_INFINITY;
      let maxLead = 0;
      for (const l of ls) {
        if (l.watermark !== undefined) wm = l.watermark;
        if (!l.value) continue;
        const g = got.get(l.key as string) ?? { n: 0, ids: 0 };
        g.n++;
        g.ids += l.value.id as number;
        got.set(l.key as string, g);
        seen.add((l.value.id as number) + 1e6 * keys.indexOf(l.key as string));
        if (Number.isFinite(wm) && l.ts !== undefined) maxLead = Math.max(maxLead, l.ts - wm);
      }
      assert.deepEqual(got, expected, `${name}: every record of every partition (DuckDB counts and id sums)`);
      assert.equal(seen.size, 200_000, `${name}: no record twice`);
      assert.ok(
        maxLead <= drift + span + 1,
        `${name}: lead ${maxLead} ms <= drift + one slice (${drift + span + 1} ms)`,
      );
    }
  });

  it('issue 8 item 8: SIGTERM stops a bounded read without an end line, a table commit or a --group commit', async (t) => {
    const topic = uniqueName('term');
    const uri = `kafka://${broker}/${topic}`;
    const w = await sh(
      `kappa ingest ${flights} --ts-field date_ms --ts-format epoch-ms --key-field origin -q | kappa sink ${uri} --create-topic 4 -q && ` +
        `kappa ingest ${flights} --ts-field date_ms --ts-format epoch-ms --key-field origin -q | kappa sink ${uri} -q`,
    );
    assert.equal(w.code, 0, w.stderr);
    const group = uniqueName('termg');
    const table = join(tmp.dir, 'term-table');
    // ingest | sink TABLE, with the ingest's output kept; SIGTERM once the first records flowed.
    const ingest = spawn(
      KAPPA,
      ['ingest', uri, '--from', 'earliest', '--until', 'latest', '--group', group, '-q'],
      {
        cwd: ROOT,
      },
    );
    const sink = spawn(KAPPA, ['sink', table, '-q'], { cwd: ROOT });
    let text = '';
    let errs = '';
    ingest.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      sink.stdin.write(d);
    });
    ingest.stderr.on('data', (d: Buffer) => {
      errs += d.toString();
    });
    sink.stdin.on('error', () => {});
    const ingestDone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      ingest.on('close', (code, signal) => {
        sink.stdin.end();
        res({ code, signal });
      }),
    );
    const sinkDone = new Promise<number | null>((res) => sink.on('close', (code) => res(code)));
    for (let waited = 0; !text.includes('"value"'); waited += 50) {
      assert.ok(waited < 60_000, `ingest produced no record in 60 s: ${errs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    ingest.kill('SIGTERM');
    const ended = await ingestDone;
    const took = Date.now() - t0;
    const sinkCode = await sinkDone;
    assert.ok(
      ended.code === 143 || (ended.code === null && ended.signal === 'SIGTERM'),
      `ingest stopped by SIGTERM: exit 143 (got ${ended.code} ${ended.signal}; stderr: ${errs})`,
    );
    assert.ok(took < 5_000, `ingest ends promptly after SIGTERM (${took} ms)`);
    assert.ok(!text.includes('{"end":true}'), 'no end line');
    assert.notEqual(sinkCode, 0, 'the sink of a stream without end line fails');
    assert.ok(
      !existsSync(join(table, '_delta_log')) ||
        readdirSync(join(table, '_delta_log')).every((f) => !f.endsWith('.json')),
      'the table has no commit',
    );
    const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      for (const p of offsets[0].partitions)
        assert.equal(p.offset, '-1', `partition ${p.partition}: no --group commit on a signal stop`);
    } finally {
      await admin.disconnect();
    }
    t.diagnostic(`ingest ended ${took} ms after SIGTERM`);
  });

  it('acceptance 3: window state stays bounded under --max-drift, same results', async () => {
    const topic = uniqueName('skeww');
    const uri = `kafka://${broker}/${topic}`;
    const [kSlow, kFast] = keysForPartitions(2);
    const base = Date.UTC(2024, 0, 1);
    const rows: string[] = [];
    for (let i = 0; i < 4000; i++) {
      rows.push(JSON.stringify({ k: kFast, t: base + 3 * 3600_000 + i * 1000 }));
      rows.push(JSON.stringify({ k: kSlow, t: base + i * 1000 }));
    }
    const w = await sh(
      `kappa ingest - --ts-field t --key-field k -q | kappa sink ${uri} --create-topic 2 -q`,
      {
        input: `${rows.join('\n')}\n`,
      },
    );
    assert.equal(w.code, 0, w.stderr);
    const run = (drift: string) =>
      sh(
        `kappa ingest ${uri} --from earliest --until latest ${drift} -q | kappa window --key k --tumbling 1m --agg count | kappa sink - -q | sort`,
      );
    const a = await run('--max-drift 10m');
    const f = await run('');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(a.stdout, f.stdout, 'same window results with and without alignment');
    assert.equal(a.stdout.trim().split('\n').length, 2 * 67, '67 one-minute windows per key');
    const peak = (stderr: string) =>
      Number(/([\d,]+) peak open windows/.exec(stderr)?.[1].replace(/,/g, '') ?? Number.NaN);
    // 10 minutes of drift plus one 256-record slice (about 4 minutes) of one-minute windows, plus the slow key's.
    assert.ok(peak(a.stderr) <= 20, `aligned peak open windows ${peak(a.stderr)}`);
  });

  it('acceptance 2: kafka -> window -> s3 table -> ingest equals the all-file pipeline', async () => {
    assert.ok(flightsTopic, 'acceptance 1 filled the topic');
    const s3 = s3Endpoint();
    const env = s3Env();
    const bucket = uniqueName('acc2');
    const mk = await sh(
      `node -e "
      const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
      new S3Client({ endpoint: '${s3}', region: 'us-east-1', forcePathStyle: true })
        .send(new CreateBucketCommand({ Bucket: '${bucket}' })).catch((e) => { console.error(e); process.exit(1); });"`,
      {
        env,
      },
    );
    assert.equal(mk.code, 0, mk.stderr);
    const win = `kappa window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' -q`;
    const viaKafka = await sh(
      `kappa ingest kafka://${broker}/${flightsTopic} --from earliest --until latest -q | ${win} | kappa sink s3://${bucket}/hourly --s3-endpoint ${s3} -q && kappa ingest s3://${bucket}/hourly/ --s3-endpoint ${s3} -q | kappa sink - -q`,
      { env },
    );
    assert.equal(viaKafka.code, 0, viaKafka.stderr);
    const viaFiles = await sh(
      `kappa ingest ${flights} --ts-field date_ms --ts-format epoch-ms --key-field origin -q | ${win} | kappa sink - -q`,
    );
    assert.equal(viaFiles.code, 0, viaFiles.stderr);
    type W = { origin: string; window_start: number; count: number; avg_delay: number; max_delay: number };
    const norm = (text: string) =>
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as W)
        .map(
          (w) =>
            `${w.origin}|${Number(w.window_start)}|${Number(w.count)}|${Number(w.avg_delay).toFixed(9)}|${Number(w.max_delay)}`,
        )
        .sort();
    const k = norm(viaKafka.stdout);
    assert.ok(k.length > 1000);
    assert.deepEqual(k, norm(viaFiles.stdout));
  });

  it('--create-topic applies --topic-config (e.g. no time retention for historical event times)', async () => {
    const topic = uniqueName('cfg');
    const w = await sh(
      `kappa ingest - --ts-field t -q | kappa sink kafka://${broker}/${topic} --create-topic 3 --topic-config retention.ms=-1 --topic-config cleanup.policy=delete -q`,
      { input: '{"t":978307200000}\n' },
    );
    assert.equal(w.code, 0, w.stderr);
    const kafka = new Kafka({ brokers: [broker], clientId: 'kappa-test-cfg', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const d = await admin.describeConfigs({
        resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }],
        includeSynonyms: false,
      });
      assert.equal(
        d.resources[0].configEntries.find((e) => e.configName === 'retention.ms')?.configValue,
        '-1',
      );
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.equal(meta.topics[0].partitions.length, 3);
    } finally {
      await admin.disconnect();
    }
    const bad = await sh(`kappa sink kafka://${broker}/${topic} --topic-config retention.ms=-1 -q`, {
      input: '{"kappa":1}\n{"end":true}\n',
    });
    assert.equal(bad.code, 2, 'only with --create-topic');
  });

  it('--key-field applies with the Kafka record timestamp as event time (no --ts-field)', async () => {
    const topic = uniqueName('kf');
    const w = await sh(
      `kappa ingest - --ts-field t --key-field mk -q | kappa sink kafka://${broker}/${topic} --create-topic 1 -q`,
      { input: '{"t":1700000000000,"mk":"message-key","k":"field-key"}\n' },
    );
    assert.equal(w.code, 0, w.stderr);
    const read = (flags: string) =>
      sh(`kappa ingest kafka://${broker}/${topic} --from earliest --until latest ${flags} -q`);
    const byField = lines((await read('--key-field k')).stdout).find((l) => l.value);
    assert.equal(byField?.key, 'field-key');
    assert.equal(byField?.ts, 1700000000000, 'event time is still the Kafka record timestamp');
    const native = lines((await read('')).stdout).find((l) => l.value);
    assert.equal(native?.key, 'message-key');
  });

  it('a bounded read of a transactional topic ends at a commit marker and skips aborted records', async () => {
    const topic = uniqueName('tx');
    const kafka = new Kafka({ brokers: [broker], clientId: 'kappa-test-tx', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({
      transactionalId: `${topic}-tx`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const send = async (from: number, commit: boolean) => {
      const tx = await producer.transaction();
      await tx.send({
        topic,
        messages: Array.from({ length: 5 }, (_, k) => ({ value: JSON.stringify({ i: from + k }) })),
      });
      await (commit ? tx.commit() : tx.abort());
    };
    await send(0, true);
    await send(100, false); // aborted: never visible to read_committed readers
    await send(5, true); // the log now ends with a commit marker
    await producer.disconnect();
    await admin.disconnect();
    const r = await sh(
      `timeout 60 kappa ingest kafka://${broker}/${topic} --from earliest --until latest -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = lines(r.stdout)
      .filter((l) => l.value)
      .map((l) => l.value?.i);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(lines(r.stdout).at(-1)?.end, 'the read ended cleanly');
  });

  it('acceptance 4: broker stopped mid-run -> clear error, non-zero exit, nothing committed', async () => {
    const bdir = join(tmp.dir, 'broker2');
    const start = spawnSync(KAFKA_SH, ['start', bdir], { encoding: 'utf8' });
    assert.equal(start.status, 0, start.stderr);
    // Issue 8 item 36: an unquoted heredoc ran the backticks of a comment as a command.
    assert.doesNotMatch(start.stderr, /command not found/, 'kafka.sh start prints no shell errors');
    const addr = start.stdout.trim();
    const children: { kill(): boolean }[] = [];
    try {
      const topic = 'faults';
      const uri = `kafka://${addr}/${topic}`;
      const w = await sh(
        `head -n 20000 ${flights} | kappa ingest - --ts-field date_ms --key-field origin -q | kappa sink ${uri} --create-topic 2 -q`,
      );
      assert.equal(w.code, 0, w.stderr);
      const group = 'faultgroup';
      const fast = [
        '-X',
        'retries=2',
        '-X',
        'retry.backoff.ms=200',
        '-X',
        'socket.connection.setup.timeout.ms=1000',
      ];
      // An unbounded ingest with a group, and a sink fed slowly, both running when the broker dies.
      const ingest = spawn(KAPPA, ['ingest', uri, '--group', group, '-q', ...fast], { cwd: ROOT });
      children.push(ingest);
      const sink = spawn(
        KAPPA,
        ['sink', `kafka://${addr}/slow`, '--create-topic', '1', '--linger', '0ms', '-q', ...fast],
        {
          cwd: ROOT,
        },
      );
      let out = '';
      let ingestErr = '';
      let sinkErr = '';
      ingest.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      ingest.stderr.on('data', (d: Buffer) => {
        ingestErr += d.toString();
      });
      sink.stderr.on('data', (d: Buffer) => {
        sinkErr += d.toString();
      });
      children.push(sink);
      sink.stdin.on('error', () => {});
      sink.stdin.write('{"kappa":1}\n');
      let i = 0;
      const feeder = setInterval(() => {
        if (!sink.stdin.destroyed) sink.stdin.write(`{"ts":${i},"key":"k","value":{"i":${i++}}}\n`);
      }, 20);
      children.push({
        kill: () => {
          clearInterval(feeder);
          return true;
        },
      });
      const exited = (p: typeof ingest) =>
        new Promise<number>((res) => p.on('close', (code) => res(code ?? -1)));
      const ingestDone = exited(ingest);
      const sinkDone = exited(sink);
      for (let waited = 0; (out.match(/"value"/g)?.length ?? 0) < 20000 || i < 30; waited += 100) {
        assert.ok(waited < 60_000, `ingest did not read the topic: ${ingestErr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(spawnSync(KAFKA_SH, ['kill', bdir]).status, 0);
      const [ci, cs] = await Promise.all([ingestDone, sinkDone]);
      clearInterval(feeder);
      assert.equal(ci, 1, `ingest exit code (stderr: ${ingestErr})`);
      assert.match(ingestErr, new RegExp(`kafka://${addr}/${topic}`));
      assert.ok(!out.includes('{"end":true}'), 'no end line: downstream commits nothing');
      assert.equal(cs, 1, `sink exit code (stderr: ${sinkErr})`);
      assert.match(sinkErr, /kafka:\/\/.*\/slow/);
      // Restart the broker with its data: the group has no committed offsets.
      const again = spawnSync(KAFKA_SH, ['start', bdir], { encoding: 'utf8' });
      assert.equal(again.status, 0, again.stderr);
      const admin = new Kafka({ brokers: [addr], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      await admin.disconnect();
      for (const p of offsets[0].partitions)
        assert.equal(p.offset, '-1', `partition ${p.partition} not committed`);
    } finally {
      // A failed assertion must not leave an unbounded ingest running (it kept the runner alive).
      for (const c of children) c.kill();
      spawnSync(KAFKA_SH, ['stop', bdir]);
    }
  });
});
