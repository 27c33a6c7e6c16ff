/**
 * `kappa sink` to files and tables, end to end through the real binary, with DuckDB as the oracle.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS, KAPPA, ROOT, sh, tempDir, walkFiles as walk } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-sink-');
const T = tmp.dir;

async function q(sql: string): Promise<unknown[][]> {
  return (await db.runAndReadAll(sql)).getRows();
}

const visibleData = (dir: string) =>
  walk(dir).filter((f) => !f.split('/').some((s) => s.startsWith('_') || s.startsWith('.')));

function logVersions(dir: string): Record<string, unknown>[][] {
  const log = join(dir, '_delta_log');
  if (!existsSync(log)) return [];
  return readdirSync(log)
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort()
    .map((f) =>
      readFileSync(join(log, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
}

const FLIGHTS_SCHEMA =
  '{"kappa":1,"schema":{"date":"timestamp","delay":"int64","distance":"int64","origin":"string","destination":"string"}}';

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
  // Flights as NDJSON with epoch-ms dates: the stream representation of a TIMESTAMP column.
  await db.run(
    `COPY (SELECT epoch_ms(date) AS date, delay, distance, origin, destination FROM '${FLIGHTS}') TO '${T}/flights.ndjson' (FORMAT json)`,
  );
  await db.run(
    `COPY (SELECT epoch_ms(date) AS date, delay, distance, origin, destination FROM '${FLIGHTS}' LIMIT 5000) TO '${T}/small.ndjson' (FORMAT json)`,
  );
});
after(() => tmp.cleanup());

/** Per-day counts of the source, as `YYYY-MM-DD -> n`, computed by DuckDB. */
async function sourceDayCounts(): Promise<Map<string, bigint>> {
  const rows = await q(
    `SELECT strftime(date_trunc('day', date), '%Y-%m-%d'), count(*) FROM '${FLIGHTS}' GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r[0] as string, r[1] as bigint]));
}

async function checkDailyTable(out: string): Promise<void> {
  const parts = readdirSync(out).filter((d) => d.startsWith('dt='));
  assert.equal(parts.length, 182);
  assert.equal(parts.sort()[0], 'dt=2001-01-01');
  assert.equal(parts.sort()[181], 'dt=2001-07-01');
  const expected = await sourceDayCounts();
  const got = await q(
    `SELECT dt::VARCHAR, count(*) FROM read_parquet('${out}/**/*.parquet', hive_partitioning=true) GROUP BY 1`,
  );
  assert.equal(got.length, expected.size);
  for (const [dt, n] of got) assert.equal(n, expected.get(dt as string), `count of ${dt}`);
  const types = new Map(
    (await q(`DESCRIBE SELECT * FROM read_parquet('${out}/**/*.parquet', hive_partitioning=true)`)).map(
      (r) => [r[0], r[1]],
    ),
  );
  assert.equal(types.get('date'), 'TIMESTAMP');
  assert.match(String(types.get('delay')), /^(BIGINT|INTEGER)$/);
  for (const p of parts) assert.ok(existsSync(join(out, p, '_SUCCESS')), `${p}/_SUCCESS`);
  const versions = logVersions(out);
  assert.equal(versions.length, 1);
  const adds = versions[0].filter((a) => a.add);
  assert.equal(adds.length, 182);
}

describe('kappa sink: table directory', () => {
  it('acceptance 1 (NDJSON source with a typed header): 182 daily partitions, counts = DuckDB', async () => {
    const out = join(T, 'daily-ndjson');
    const r = await sh(
      `kappa ingest '${T}/flights.ndjson' --ts-field date --ts-format epoch-ms -q | sed '1s/.*/${FLIGHTS_SCHEMA}/' | kappa sink '${out}' --partition-by 'dt=%Y-%m-%d'`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /182 files in 182 partitions/);
    assert.match(r.stderr, /3,000,000 out/);
    await checkDailyTable(out);
  });

  it('acceptance 1 (Parquet source): ingest flights-3m.parquet --ts-field date | sink --partition-by dt', async () => {
    const out = join(T, 'daily-parquet');
    const r = await sh(
      `kappa ingest '${FLIGHTS}' --ts-field date -q | kappa sink '${out}' --partition-by 'dt=%Y-%m-%d'`,
    );
    assert.equal(r.code, 0, r.stderr);
    await checkDailyTable(out);
  });

  it('acceptance 2 (Parquet table): ingest of the output gives back the same (ts, key, value) multiset', async () => {
    const out = join(T, 'rt-parquet');
    const ing = `--ts-field date --ts-format epoch-ms --key-field origin -q`;
    const r = await sh(
      `kappa ingest '${T}/small.ndjson' ${ing} | sed '1s/.*/${FLIGHTS_SCHEMA}/' | kappa sink '${out}' --partition-by 'dt=%Y-%m-%d/{origin}' -q && kappa ingest '${out}' --ts-field date --key-field origin -q > '${T}/rt-b.txt' && kappa ingest '${T}/small.ndjson' ${ing} > '${T}/rt-a.txt'`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(records(`${T}/rt-b.txt`), records(`${T}/rt-a.txt`));
  });

  it('acceptance 2 (NDJSON table): round trip gives back the same (ts, key, value) multiset', async () => {
    const out = join(T, 'rt-ndjson');
    const ing = `--ts-field date --ts-format epoch-ms --key-field origin -q`;
    const r = await sh(
      `kappa ingest '${T}/small.ndjson' ${ing} | kappa sink '${out}' --format ndjson --partition-by 'dt=%Y-%m-%d/{origin}' -q && kappa ingest '${out}' ${ing} > '${T}/rtn-b.txt' && kappa ingest '${T}/small.ndjson' ${ing} > '${T}/rtn-a.txt'`,
    );
    assert.equal(r.code, 0, r.stderr);
    const a = records(`${T}/rtn-a.txt`);
    assert.equal(a.length, 5000);
    assert.deepEqual(records(`${T}/rtn-b.txt`), a);
    // _SUCCESS sits in the leaf partition directories
    const succ = walk(out).filter((f) => f.endsWith('_SUCCESS'));
    assert.ok(succ.length > 0);
    for (const s of succ) assert.match(s, /^dt=[\d-]+\/origin=[^/]+\/_SUCCESS$/);
  });

  it('rolls by --roll-records, keeps in-progress files hidden until commit', async () => {
    const out = join(T, 'roll');
    const header = '{"kappa":1}';
    const recs = Array.from({ length: 25 }, (_, i) => `{"ts":${i * 1000},"key":null,"value":{"i":${i}}}`);
    // The snapshot is taken when the sink has rolled two files (an observed state), not after a sleep.
    const sink = spawn(KAPPA, ['sink', out, '--roll-records', '10', '-q'], { cwd: ROOT });
    let stderr = '';
    sink.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exit = new Promise<number>((res) => sink.on('close', (code) => res(code ?? -1)));
    sink.stdin.write(`${header}\n${recs.join('\n')}\n`);
    let mid = walk(out);
    for (const t0 = Date.now(); mid.length < 2; mid = walk(out)) {
      assert.ok(Date.now() - t0 < 60_000, `the sink rolled no two files in 60 s: ${mid} ${stderr}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    for (const f of mid)
      assert.ok(
        f
          .slice(out.length + 1)
          .split('/')
          .some((seg) => /^[._]/.test(seg)),
        `only hidden files mid-run (in-progress files, the run marker): ${f}`,
      );
    sink.stdin.end('{"end":true}\n');
    assert.equal(await exit, 0, stderr);
    const files = visibleData(out);
    assert.equal(files.length, 3);
    const n = await q(`SELECT count(*), sum(i) FROM read_parquet('${out}/*.parquet')`);
    assert.deepEqual(n[0], [25n, 300n]);
    const adds = logVersions(out)[0].filter((a) => a.add) as { add: { stats: string } }[];
    assert.deepEqual(adds.map((a) => JSON.parse(a.add.stats).numRecords).sort(), [10, 10, 5]);
  });

  it('a stream cut off without its end line: exit non-zero, no data file, no log version', async () => {
    const out = join(T, 'fail');
    // an existing table with one version
    let r = await sh(
      `printf '%s\\n' '{"kappa":1}' '{"ts":0,"key":null,"value":{"a":1}}' '{"end":true}' | kappa sink '${out}' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const before = walk(out);
    r = await sh(
      `printf '%s\\n' '{"kappa":1}' '{"ts":1,"key":null,"value":{"a":2}}' '{"ts":2,"key":null,"value":{"a":3}}' | kappa sink '${out}' --roll-records 1`,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /without its end-of-stream line/);
    assert.match(r.stderr, /nothing committed/);
    assert.deepEqual(walk(out), before, 'no new file, visible or hidden, and no new log version');
    assert.equal(logVersions(out).length, 1);
  });

  it('writes a Delta log that follows the protocol; appends add a version; --merge-schema adds fields', async () => {
    const out = join(T, 'delta');
    let r = await sh(
      `printf '%s\\n' '{"kappa":1,"schema":{"t":"timestamptz"}}' '{"ts":0,"key":null,"value":{"t":0,"n":1,"s":"a:b"}}' '{"ts":3600000,"key":null,"value":{"t":3600000,"n":2,"s":"x"}}' '{"end":true}' | kappa sink '${out}' --partition-by 'dt=%Y-%m-%d/hr=%H/{s}' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    r = await sh(
      `printf '%s\\n' '{"kappa":1}' '{"ts":7200000,"key":null,"value":{"t":7200000,"n":2,"s":"x","extra":true}}' '{"end":true}' | kappa sink '${out}' --merge-schema -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const [v0, v1] = logVersions(out);
    const proto = v0.find((a) => a.protocol)?.protocol as Record<string, number>;
    assert.deepEqual(proto, { minReaderVersion: 1, minWriterVersion: 2 });
    const md = v0.find((a) => a.metaData)?.metaData as Record<string, unknown>;
    assert.match(md.id as string, /^[0-9a-f-]{36}$/);
    assert.deepEqual(md.format, { provider: 'parquet', options: {} });
    assert.deepEqual(md.partitionColumns, ['dt', 'hr', 's']);
    assert.equal(typeof md.createdTime, 'number');
    const fields = JSON.parse(md.schemaString as string).fields as { name: string; type: string }[];
    assert.deepEqual(
      fields.map((f) => `${f.name}:${f.type}`),
      ['t:timestamp', 'n:long', 's:string', 'dt:string', 'hr:string'],
    );
    const adds = v0.filter((a) => a.add).map((a) => a.add as Record<string, unknown>);
    assert.equal(adds.length, 2);
    const ab = adds.find((a) => (a.partitionValues as Record<string, string>).s === 'a:b')!;
    assert.deepEqual(ab.partitionValues, { dt: '1970-01-01', hr: '00', s: 'a:b' });
    assert.match(ab.path as string, /^dt=1970-01-01\/hr=00\/s=a%253Ab\/part-\d{5}-[0-9a-f]+\.zstd\.parquet$/);
    assert.ok(existsSync(join(out, decodeURIComponent(ab.path as string))));
    assert.equal(ab.dataChange, true);
    assert.equal(typeof ab.modificationTime, 'number');
    const stats = JSON.parse(ab.stats as string);
    assert.deepEqual(stats, {
      numRecords: 1,
      minValues: { t: '1970-01-01T00:00:00.000Z', n: 1, s: 'a:b' },
      maxValues: { t: '1970-01-01T00:00:00.000Z', n: 1, s: 'a:b' },
      nullCount: { t: 0, n: 0, s: 0 },
    });
    for (const a of adds)
      assert.equal(a.size, readFileSync(join(out, decodeURIComponent(a.path as string))).length);
    assert.ok(v0.at(-1)?.commitInfo);
    // version 1: schema with the new column 'extra' and one more file
    const md1 = v1.find((a) => a.metaData)?.metaData as Record<string, unknown>;
    assert.equal(md1.id, md.id);
    const f1 = JSON.parse(md1.schemaString as string).fields as { name: string; type: string }[];
    assert.deepEqual(
      f1.map((f) => `${f.name}:${f.type}`),
      ['t:timestamp', 'n:long', 's:string', 'extra:boolean', 'dt:string', 'hr:string'],
    );
    assert.equal(v1.filter((a) => a.add).length, 1);
    // every time partition got _SUCCESS; DuckDB reads all three rows
    assert.deepEqual(
      walk(out).filter((f) => f.endsWith('_SUCCESS')),
      [
        'dt=1970-01-01/hr=00/s=a%3Ab/_SUCCESS',
        'dt=1970-01-01/hr=01/s=x/_SUCCESS',
        'dt=1970-01-01/hr=02/s=x/_SUCCESS',
      ],
    );
    const rows = await q(
      `SELECT count(*), sum(n)::DOUBLE FROM read_parquet('${out}/**/*.parquet', hive_partitioning=true, union_by_name=true)`,
    );
    assert.deepEqual(rows[0], [3n, 5]);
  });

  it('ingest lists a table through its log: files not in the log are not read', async () => {
    const out = join(T, 'listing');
    const r = await sh(
      `printf '%s\\n' '{"kappa":1}' '{"ts":0,"key":null,"value":{"a":1}}' '{"end":true}' | kappa sink '${out}' --format ndjson -q && echo '{"a":99}' > '${out}/stray.ndjson' && kappa ingest '${out}' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const values = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{"ts"'))
      .map((l) => JSON.parse(l).value);
    assert.deepEqual(values, [{ a: 1 }]);
  });

  it('a type conflict is a bad record: fail exits 3 naming the line; skip counts it and writes the rest', async () => {
    const input = [
      '{"kappa":1,"schema":{"n":"int64"}}',
      '{"ts":0,"key":null,"value":{"n":1}}',
      '{"ts":1,"key":null,"value":{"n":"two"}}',
      '{"ts":2,"key":null,"value":{"n":3}}',
      '{"end":true}',
    ].join('\n');
    const out = join(T, 'conflict');
    let r = await sh(`kappa sink '${out}'`, { input });
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /stdin line 3: schema conflict: field 'n' \(int64\): expected an integer, got "two"/,
    );
    assert.deepEqual(visibleData(out), []);
    r = await sh(`kappa sink '${out}' --on-error dead-letter='${T}/dead.ndjson'`, { input });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /3 in, 2 out, 1 bad/);
    assert.equal(JSON.parse(readFileSync(`${T}/dead.ndjson`, 'utf8')).value.n, 'two');
    assert.deepEqual((await q(`SELECT sum(n) FROM read_parquet('${out}/*.parquet')`))[0], [4n]);
  });

  it('refuses a directory that holds other files but no Delta log', async () => {
    const out = join(T, 'notatable');
    await sh(`mkdir -p '${out}' && echo x > '${out}/data.csv'`);
    const r = await sh(`printf '%s\\n' '{"kappa":1}' '{"end":true}' | kappa sink '${out}'`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no _delta_log/);
  });
});

describe('kappa sink: single files', () => {
  it('writes one Parquet file with real logical types and each codec', async () => {
    const input = [
      '{"kappa":1,"schema":{"t":"timestamp","z":"timestamptz","d":"date","n":"int64","x":"float64","s":"string","b":"boolean","j":"json"}}',
      '{"ts":0,"key":null,"value":{"t":86400000,"z":1000,"d":"2001-02-03","n":-5,"x":1.5,"s":"é","b":true,"j":{"k":[1,2]}}}',
      '{"ts":0,"key":null,"value":{"t":null,"n":7}}',
      '{"end":true}',
    ].join('\n');
    for (const codec of ['zstd', 'snappy', 'gzip', 'brotli', 'none']) {
      const f = join(T, `one-${codec}.parquet`);
      const r = await sh(`kappa sink '${f}' --compression ${codec} -q`, { input });
      assert.equal(r.code, 0, r.stderr);
      const types = (await q(`DESCRIBE SELECT * FROM '${f}'`)).map((x) => `${x[0]}:${x[1]}`);
      assert.deepEqual(types, [
        't:TIMESTAMP',
        'z:TIMESTAMP WITH TIME ZONE',
        'd:DATE',
        'n:BIGINT',
        'x:DOUBLE',
        's:VARCHAR',
        'b:BOOLEAN',
        'j:JSON',
      ]);
      const rows = await q(
        `SELECT t::VARCHAR, epoch_ms(z), d::VARCHAR, n, x, s, b, j::VARCHAR FROM '${f}' ORDER BY n`,
      );
      assert.deepEqual(rows, [
        ['1970-01-02 00:00:00', 1000n, '2001-02-03', -5n, 1.5, 'é', true, '{"k":[1,2]}'],
        [null, null, null, 7n, null, null, null, null],
      ]);
      const codecs = await q(`SELECT DISTINCT compression FROM parquet_metadata('${f}')`);
      assert.deepEqual(codecs, [[codec === 'none' ? 'UNCOMPRESSED' : codec.toUpperCase()]]);
    }
  });

  it('a crashed single-file sink leaves its hidden in-progress file; the next run into the file removes it', async () => {
    const dir = join(T, 'single-crash');
    const f = join(dir, 'out.parquet');
    const input = (n: number) =>
      [
        '{"kappa":1}',
        ...Array.from({ length: n }, (_, i) => JSON.stringify({ ts: i, key: null, value: { i } })),
        '{"end":true}',
      ].join('\n');
    let r = await sh(`mkdir -p '${dir}' && kappa sink '${f}' -q || exit $?`, {
      input: input(100),
      env: { KAPPA_TEST_CRASH_AT: 'before-commit' },
    });
    assert.equal(r.code, 137, `killed by SIGKILL: ${r.stderr}`);
    const hidden = () => readdirSync(dir).filter((e) => e.startsWith('.'));
    assert.ok(
      hidden().some((e) => /^\.out\.parquet\.inprogress-/.test(e)),
      `the crash left an in-progress file: ${hidden()}`,
    );
    assert.ok(!existsSync(f), 'nothing visible after the crash');
    r = await sh(`kappa sink '${f}'`, { input: input(7) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed 1 in-progress file/);
    assert.deepEqual(hidden(), [], 'no in-progress file or run marker remains');
    assert.deepEqual(await q(`SELECT count(*), sum(i) FROM '${f}'`), [[7n, 21n]]);
  });

  it('a single-file sink leaves the in-progress file of a live run into the same file alone', async () => {
    const dir = join(T, 'single-live');
    const f = join(dir, 'out.ndjson');
    // A live run that has written its first 128k rows: its file is in progress while stdin stays open.
    const n = 128 * 1024 + 1;
    let rows = '';
    for (let i = 0; i < n; i++) rows += `{"ts":0,"key":null,"value":{"i":${i}}}\n`;
    const live = spawn(KAPPA, ['sink', f, '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let liveErr = '';
    live.stderr.on('data', (c) => {
      liveErr += c;
    });
    const closed = new Promise<number | null>((res) => live.on('close', res));
    live.stdin.write(`{"kappa":1}\n${rows}`);
    const inProgress = () =>
      existsSync(dir) && readdirSync(dir).some((e) => e.startsWith('.out.ndjson.inprogress-'));
    for (let i = 0; i < 300 && !inProgress(); i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(inProgress(), `the live run has a file in progress: ${liveErr}`);
    const r = await sh(`kappa sink '${f}' -q`, {
      input: '{"kappa":1}\n{"ts":0,"key":null,"value":{"i":-1}}\n{"end":true}\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /another kappa sink .* is writing/);
    assert.ok(inProgress(), 'the live run keeps its in-progress file');
    live.stdin.end('{"end":true}\n');
    assert.equal(await closed, 0, liveErr);
    assert.equal(readFileSync(f, 'utf8').split('\n').filter(Boolean).length, n);
    assert.deepEqual(
      readdirSync(dir).filter((e) => e.startsWith('.')),
      [],
    );
  });

  it('writes CSV by extension with a header row and RFC 4180 quoting', async () => {
    const f = join(T, 'one.csv');
    writeFileSync(join(T, 'csv-in.ndjson'), '{"a":1,"b":"x,y"}\n{"a":2,"b":"q\\"r"}\n');
    const r = await sh(`kappa ingest '${T}/csv-in.ndjson' -q | kappa sink '${f}' -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(f, 'utf8'), 'a,b\r\n1,"x,y"\r\n2,"q""r"\r\n');
  });
});

/** The records of a kappa stream file as sorted JSON of (ts, key, value), provenance left out. */
function records(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"ts"'))
    .map((l) => {
      const r = JSON.parse(l);
      return JSON.stringify([r.ts, r.key, r.value]);
    })
    .sort();
}
