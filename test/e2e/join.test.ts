/**
 * `kappa join` end to end against DuckDB as the oracle (issue 12, acceptance 1–4): a lookup join of
 * flights with airports (LEFT JOIN), interval joins of generated rides and fares shuffled within a
 * bounded out-of-orderness (inner and full outer), an as-of join of generated trades and quotes
 * (ASOF JOIN), and `join | window` without late results. Plus the late-row policy and flag errors.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { mulberry32 } from '../../bench/gen.js';
import { FLIGHTS, KAPPA, parseLines, sh, tempDir, VEGA } from '../helpers.js';
import { BOUND, HOUR, shuffleWithin, writeNdjson, writeRidesAndFares } from './join-data.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs a query on a fresh DuckDB and returns its rows as JSON-able arrays. */
async function duck(sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(sql);
  const rows = r.getRowsJson() as unknown[][];
  c.closeSync();
  return rows;
}

/** The record values of a kappa stream file (NDJSON encoding). */
function values(path: string): Record<string, unknown>[] {
  return parseLines<Record<string, unknown>>(readFileSync(path, 'utf8'))
    .filter((l) => 'ts' in l && 'value' in l)
    .map((l) => l.value as Record<string, unknown>);
}

const sorted = (xs: string[]) => [...xs].sort();

describe('kappa join (DuckDB as the oracle)', () => {
  const t = tempDir('kappa-join-');
  const d = t.dir;
  before(() => {
    const rnd = mulberry32(7);
    writeRidesAndFares(d, rnd);

    // Trades and quotes of 20 symbols; quote times distinct per symbol.
    const quotes: { ts: number; sym: string; quote_id: number; bid: number }[] = [];
    const trades: { ts: number; sym: string; trade_id: number; px: number }[] = [];
    const seen = new Set<string>();
    let q = 0;
    for (let i = 0; i < 40_000; i++) {
      const sym = `S${Math.floor(rnd() * 20)}`;
      const qts = Date.UTC(2024, 0, 1) + Math.floor(rnd() * 10 * HOUR);
      if (seen.has(`${sym}/${qts}`)) continue;
      seen.add(`${sym}/${qts}`);
      quotes.push({ ts: qts, sym, quote_id: ++q, bid: Math.round(rnd() * 10000) / 100 });
    }
    for (let i = 1; i <= 40_000; i++) {
      const sym = `S${Math.floor(rnd() * 21)}`; // S20 has no quotes
      trades.push({
        ts: Date.UTC(2024, 0, 1) - 60_000 + Math.floor(rnd() * 10 * HOUR),
        sym,
        trade_id: i,
        px: 1,
      });
    }
    trades.push({ ts: quotes[0].ts, sym: quotes[0].sym, trade_id: 0, px: 2 }); // at a quote's very time
    writeNdjson(`${d}/quotes.ndjson`, shuffleWithin(quotes, BOUND, rnd));
    writeNdjson(`${d}/trades.ndjson`, shuffleWithin(trades, BOUND, rnd));
  });
  after(() => t.cleanup());

  const ingest = (file: string) =>
    `kappa ingest ${d}/${file} --ts-field ts --ts-format epoch-ms --max-out-of-orderness 5m -q`;

  it('1. lookup: 200k flights LEFT JOIN airports on origin = iata equals DuckDB, flights without an airport included', async () => {
    // A 200k-row slice of the 3M flights, and airports without three busy airports (so that some
    // flights have no airport).
    await duck(
      `COPY (SELECT * FROM '${FLIGHTS}' LIMIT 200000) TO '${d}/flights.parquet' (FORMAT parquet);
       COPY (SELECT * FROM read_csv('${VEGA}/airports.csv') WHERE iata NOT IN ('LAS', 'ATL', 'SAV')) TO '${d}/airports.csv' (HEADER)`,
    );
    const r = await sh(
      `kappa ingest ${d}/flights.parquet --ts-field date -q | kappa join --right ${d}/airports.csv --on origin=iata --lookup --type left --stream-format ndjson -q > ${d}/lookup.kappa`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = values(`${d}/lookup.kappa`).map(
      (v) => `${v.date}|${v.origin}|${v.destination}|${v.delay}|${v.name}|${v.city}|${v.latitude}`,
    );
    const want = (
      await duck(
        `SELECT epoch_ms(f.date), f.origin, f.destination, f.delay, a.name, a.city, a.latitude
         FROM '${d}/flights.parquet' f LEFT JOIN '${d}/airports.csv' a ON f.origin = a.iata`,
      )
    ).map((x) => x.map(String).join('|'));
    assert.equal(got.length, 200_000);
    assert.ok(
      got.some((g) => g.includes('|LAS|') && g.endsWith('|null|null|null')),
      'flights from LAS padded',
    );
    assert.deepEqual(sorted(got), sorted(want));
  });

  for (const type of ['inner', 'full'] as const) {
    it(`2. interval: rides ${type} join fares --within 2h, shuffled within 5 min, equals DuckDB; every outer row once`, async () => {
      const r = await sh(
        `${ingest('rides.ndjson')} | kappa join --right <(${ingest('fares.ndjson')}) --on ride_id --within 2h --type ${type} --stream-format ndjson > ${d}/interval-${type}.kappa`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /0 late/);
      const got = values(`${d}/interval-${type}.kappa`).map(
        (v) => `${v.ride_id ?? null}|${v.fare_id ?? null}`,
      );
      const want = (
        await duck(
          `SELECT r.ride_id, f.fare_id FROM '${d}/rides.ndjson' r ${type === 'full' ? 'FULL OUTER' : ''} JOIN '${d}/fares.ndjson' f
           ON r.ride_id = f.ride_id AND f.ts BETWEEN r.ts AND r.ts + ${2 * HOUR}`,
        )
      ).map((x) => x.map(String).join('|'));
      assert.ok(want.length > 25_000);
      if (type === 'full') {
        assert.ok(want.some((w) => w.endsWith('|null')) && want.some((w) => w.startsWith('null|')));
        assert.equal(new Set(got).size, got.length, 'no row twice');
      }
      assert.deepEqual(sorted(got), sorted(want));
    });
  }

  for (const type of ['inner', 'left'] as const) {
    it(`3. as-of: trades ${type} as-of join quotes equals DuckDB's ASOF ${type === 'left' ? 'LEFT ' : ''}JOIN`, async () => {
      const r = await sh(
        `${ingest('trades.ndjson')} | kappa join --right <(${ingest('quotes.ndjson')}) --on sym --as-of --type ${type} --stream-format ndjson > ${d}/asof-${type}.kappa`,
      );
      assert.equal(r.code, 0, r.stderr);
      const out = parseLines<{ ts?: number; value?: Record<string, unknown> }>(
        readFileSync(`${d}/asof-${type}.kappa`, 'utf8'),
      );
      const got = out
        .filter((l) => l.value)
        .map((l) => `${l.value!.trade_id}|${l.value!.quote_id ?? null}|${l.value!.bid ?? null}`);
      const want = (
        await duck(
          `SELECT t.trade_id, q.quote_id, q.bid FROM '${d}/trades.ndjson' t ASOF ${type === 'left' ? 'LEFT' : ''} JOIN '${d}/quotes.ndjson' q
           ON t.sym = q.sym AND t.ts >= q.ts`,
        )
      ).map((x) => x.map(String).join('|'));
      assert.ok(
        want.some((w) => w.startsWith('0|1|')),
        'the trade at a quote time takes that quote',
      );
      assert.deepEqual(sorted(got), sorted(want));
    });
  }

  it('4. join | window: no join result is late downstream; hourly counts equal DuckDB', async () => {
    const r = await sh(
      `${ingest('rides.ndjson')} | kappa join --right <(${ingest('fares.ndjson')}) --on ride_id --within 2h --type full -q | kappa window --tumbling 1h --agg count --stream-format ndjson > ${d}/win.kappa`,
    );
    assert.equal(r.code, 0, r.stderr); // window fails (exit 3) at the first late record
    const got = values(`${d}/win.kappa`).map((v) => `${v.window_start}|${v.count}`);
    const want = (
      await duck(
        `SELECT (greatest(coalesce(r.ts, f.ts), coalesce(f.ts, r.ts)) // ${HOUR}) * ${HOUR} AS w, count(*)
         FROM '${d}/rides.ndjson' r FULL OUTER JOIN '${d}/fares.ndjson' f
         ON r.ride_id = f.ride_id AND f.ts BETWEEN r.ts AND r.ts + ${2 * HOUR} GROUP BY w`,
      )
    ).map((x) => x.map(String).join('|'));
    assert.deepEqual(sorted(got), sorted(want));
  });

  it('late rows: fail (exit 3) naming the input by default, go to --late-output when given', async () => {
    const left = [
      '{"kappa":1}',
      '{"ts":1000,"key":null,"value":{"k":"a"}}',
      '{"watermark":5000}',
      '{"ts":2000,"key":null,"value":{"k":"a","late":true}}',
      '{"end":true}',
    ].join('\n');
    writeFileSync(`${d}/late-left.kappa`, `${left}\n`);
    writeFileSync(
      `${d}/late-right.kappa`,
      '{"kappa":1}\n{"ts":1500,"key":null,"value":{"k":"a"}}\n{"watermark":9000}\n{"end":true}\n',
    );
    const fail = await sh(
      `kappa join --right ${d}/late-right.kappa --on k --within 1s < ${d}/late-left.kappa`,
    );
    assert.equal(fail.code, 3, fail.stderr);
    assert.match(fail.stderr, /late row on stdin \(left\)/);
    const ok = await sh(
      `kappa join --right ${d}/late-right.kappa --on k --within 1s --late-output ${d}/late.kappa --stream-format ndjson < ${d}/late-left.kappa`,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(values(`${d}/late.kappa`).length, 1);
    assert.equal(values(`${d}/late.kappa`)[0].late, true);
    assert.equal(parseLines(ok.stdout).filter((l) => (l as { value?: unknown }).value).length, 1); // the on-time pair
  });

  it('flags: exactly one mode; a flag of another mode, or an outer type an as-of join lacks, is exit 2', async () => {
    for (const args of [
      '--on k',
      '--on k --within 1h --as-of',
      '--on k --within 1h --between 0s,1h',
      '--on k --within 1h --refresh 1m',
      '--on k --lookup --idle-timeout 1s',
      '--on k --as-of --type full',
      '--on k --between 2h,1h',
    ]) {
      const r = await sh(`kappa join --right /dev/null ${args} < /dev/null`);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
    }
    for (const right of ['-', `${d}/no-such-file.kappa`]) {
      const r = await sh(`kappa join --right ${right} --on k --within 1h < /dev/null`);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--right/);
    }
  });
});

describe('kappa join --lookup from a Delta table, --refresh', () => {
  it('reloads the table when its Delta version changed: rows read after the reload join the new rows', async () => {
    const t = tempDir('kappa-join-refresh-');
    try {
      const table = `${t.dir}/dim`;
      const load = async (line: string) => {
        const r = await sh(`echo '${line}' | kappa ingest - -q 2>/dev/null | kappa sink ${table}/ -q`);
        assert.equal(r.code, 0, r.stderr);
      };
      await load('{"k":"a","v":1}');
      const run = async (refresh: boolean, k: string, v: number): Promise<{ out: string; err: string }> => {
        const child = spawn(
          KAPPA,
          [
            'join',
            '--right',
            table,
            '--on',
            'k',
            '--lookup',
            '--type',
            'left',
            '--stream-format',
            'ndjson',
            ...(refresh ? ['--refresh', '100ms'] : []),
          ],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
        });
        child.stderr.on('data', (b: Buffer) => {
          err += b.toString();
        });
        const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
        const write = (s: string) =>
          new Promise<void>((resolve, reject) => child.stdin.write(s, (e) => (e ? reject(e) : resolve())));
        // 256 KiB of non-matching rows: the write completes only once the join reads its input,
        // which it does after loading the table (a pipe holds 64 KiB).
        const filler = `${JSON.stringify({ ts: 1, key: null, value: { k: 'zzz', pad: 'x'.repeat(200) } })}\n`;
        await write(`{"kappa":1}\n${filler.repeat(1200)}`);
        await load(JSON.stringify({ k, v })); // a new Delta version
        await sleep(1500);
        await write(`{"ts":2,"key":null,"value":{"k":"${k}"}}\n{"end":true}\n`);
        child.stdin.end();
        await closed;
        return { out, err };
      };
      const on = await run(true, 'b', 2);
      const matched = (text: string) =>
        parseLines<{ ts?: number; value?: { v?: number | null } }>(text).find((l) => l.ts === 2)?.value?.v;
      assert.equal(matched(on.out), 2, on.err);
      assert.match(on.err, /\b1 table reloads\b/);
      // Without --refresh the table is the one loaded at the start: the new key is not there.
      const off = await run(false, 'c', 3);
      assert.equal(matched(off.out), null, off.err);
    } finally {
      t.cleanup();
    }
  });
});
