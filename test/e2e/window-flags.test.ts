/**
 * Every flag of `kappa window`, each at the CLI level on small hand-computed data: each test fails
 * when its flag is ignored (or, for --sliding, when SIZE and SLIDE are swapped).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ClassicLevel } from 'classic-level';
import { sh, tempDir } from '../helpers.js';

const S = 1000;
const M = 60 * S;

type In = { ts: number; key?: string | null; v?: Record<string, unknown> } | { wm: number };

/** A kappa stream (header, records, watermarks, end line unless `cut`). */
function stream(events: In[], cut = false): string {
  const lines = ['{"kappa":1}'];
  for (const e of events)
    lines.push(
      'wm' in e
        ? JSON.stringify({ watermark: e.wm })
        : JSON.stringify({ ts: e.ts, key: e.key ?? null, value: e.v ?? {} }),
    );
  if (!cut) lines.push('{"end":true}');
  return `${lines.join('\n')}\n`;
}

/** Result values of a kappa stream (the window's stdout). */
function results(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{"ts":'))
    .map((l) => (JSON.parse(l) as { value: Record<string, unknown> }).value);
}

async function win(flags: string, events: In[], opts: { cut?: boolean; quiet?: boolean } = {}) {
  const r = await sh(`kappa window ${flags}${opts.quiet === false ? '' : ' -q'}`, {
    input: stream(events, opts.cut),
  });
  return { ...r, rows: results(r.stdout) };
}

/** [window_start, window_end, count] of each result, in output order. */
const spans = (rows: Record<string, unknown>[]) => rows.map((r) => [r.window_start, r.window_end, r.count]);

describe('kappa window flags (each fails when ignored)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('--tumbling SIZE: windows [k*SIZE, (k+1)*SIZE)', async () => {
    const r = await win('--tumbling 1m', [{ ts: 0 }, { ts: 30 * S }, { ts: 61 * S }, { ts: 119 * S }]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spans(r.rows), [
      [0, M, 2],
      [M, 2 * M, 2],
    ]);
  });

  it('--sliding SIZE,SLIDE: a record is in SIZE/SLIDE windows of SIZE (swapped is refused)', async () => {
    const r = await win('--sliding 3m,1m', [{ ts: 30 * S }]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      spans(r.rows).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [-2 * M, M, 1],
        [-M, 2 * M, 1],
        [0, 3 * M, 1],
      ],
    );
  });

  it('--session GAP: a gap of inactivity closes a session', async () => {
    const r = await win('--session 1m', [{ ts: 0 }, { ts: 30 * S }, { ts: 100 * S }, { ts: 300 * S }]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spans(r.rows), [
      [0, 90 * S, 2],
      [100 * S, 160 * S, 1],
      [300 * S, 360 * S, 1],
    ]);
  });

  it('--max-session DUR: a session never spans more than DUR', async () => {
    const evs = [0, 20, 40, 60, 80].map((s) => ({ ts: s * S }));
    const r = await win('--session 30s --max-session 1m', evs);
    assert.equal(r.code, 0, r.stderr);
    // 0,20,40 -> [0, min(40+30, 0+60)); 60 cannot join [0,60s) -> [60, min(80+30, 60+60)).
    assert.deepEqual(spans(r.rows), [
      [0, 60 * S, 3],
      [60 * S, 110 * S, 2],
    ]);
  });

  it('--offset DUR: shifts the alignment from the epoch', async () => {
    const r = await win('--tumbling 1h --offset 30m', [{ ts: 0 }, { ts: 29 * M }, { ts: 31 * M }]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spans(r.rows), [
      [-30 * M, 30 * M, 2],
      [30 * M, 90 * M, 1],
    ]);
  });

  const keyed: In[] = [
    { ts: 1, key: 'x', v: { origin: 'SFO' } },
    { ts: 2, key: 'x', v: { origin: 'LAX' } },
    { ts: 3, key: 'y', v: { origin: 'SFO' } },
  ];

  it('--key FIELD (and r.FIELD, the syntax transform uses): groups by that field', async () => {
    for (const k of ['origin', 'r.origin']) {
      const r = await win(`--tumbling 1m --key ${k}`, keyed);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        r.rows.map((x) => [x.origin, x.count]),
        [
          ['SFO', 2],
          ['LAX', 1],
        ],
        `--key ${k}`,
      );
    }
    const byRecordKey = await win('--tumbling 1m', keyed);
    assert.deepEqual(
      byRecordKey.rows.map((x) => [x.key, x.count]),
      [
        ['x', 2],
        ['y', 1],
      ],
    );
  });

  it('--key with a field no record has: usage error naming the field and the fields seen', async () => {
    const r = await win('--tumbling 1m --key orign', keyed);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--key 'orign'/);
    assert.match(r.stderr, /fields seen: origin/);
    // Missing in some records only: those are bad records under --on-error.
    const some = await win('--tumbling 1m --key origin --on-error skip', [
      ...keyed,
      { ts: 4, v: { dest: 'JFK' } },
    ]);
    assert.equal(some.code, 0, some.stderr);
    assert.equal(some.rows.length, 2);
    const fail = await win('--tumbling 1m --key origin', [...keyed, { ts: 4, v: { dest: 'JFK' } }]);
    assert.equal(fail.code, 3, fail.stderr);
    assert.match(fail.stderr, /--key field 'origin' is missing/);
  });

  it('a numeric key keeps its type: window --key delay | sink TABLE reads back as integers', async () => {
    const dir = `${t.dir}/bydelay`;
    const input = stream([
      { ts: 1, v: { delay: 5 } },
      { ts: 2, v: { delay: 5 } },
      { ts: 3, v: { delay: 7 } },
    ]);
    const r = await sh(`kappa window -q --tumbling 1d --key delay | kappa sink -q ${dir}`, { input });
    assert.equal(r.code, 0, r.stderr);
    const con = await (await DuckDBInstance.create()).connect();
    try {
      const rows = (
        await con.runAndReadAll(
          `SELECT typeof(delay) t, delay::BIGINT d, count::BIGINT n FROM read_parquet('${dir}/**/*.parquet') ORDER BY d`,
        )
      ).getRowObjectsJson();
      assert.deepEqual(
        rows.map((x) => [x.t, Number(x.d), Number(x.n)]),
        [
          ['BIGINT', 5, 2],
          ['BIGINT', 7, 1],
        ],
      );
    } finally {
      con.closeSync();
    }
  });

  it('--agg LIST: the aggregates asked for, with DuckDB quantile definitions', async () => {
    const vs = [29, 29, 218, 5];
    const r = await win(
      `--tumbling 1m --agg 'count, sum(v), median(v), quantile_disc(v, 0.9) as q9, p50(v), min(v) as lo'`,
      vs.map((v, i) => ({ ts: i, v: { v } })),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.rows, [
      {
        window_start: 0,
        window_end: M,
        key: null,
        count: 4,
        sum_v: 281,
        median_v: 29,
        q9: 218,
        p50_v: 29,
        lo: 5,
      },
    ]);
  });

  const lateEvents: In[] = [
    { ts: 10 * S },
    { wm: 70 * S },
    { ts: 20 * S, v: { late: true } },
    { ts: 80 * S },
  ];

  it('default: a late record fails the run (exit 3) naming the count and the flags that fix it', async () => {
    const r = await win('--tumbling 1m', lateEvents, { quiet: false });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /late record/);
    assert.match(r.stderr, /1 late record/);
    assert.match(r.stderr, /--late-output/);
    assert.match(r.stderr, /--on-late drop/);
  });

  it('--on-late drop: late records are dropped and counted, exit 0', async () => {
    const r = await win('--tumbling 1m --on-late drop', lateEvents, { quiet: false });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spans(r.rows), [
      [0, M, 1],
      [M, 2 * M, 1],
    ]);
    assert.match(r.stderr, /, 1 late,/);
    const bad = await win('--tumbling 1m --on-late keep', lateEvents);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it('--allowed-lateness DUR: a record within it updates the fired window', async () => {
    const r = await win('--tumbling 1m --allowed-lateness 30s', lateEvents);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(spans(r.rows), [
      [0, M, 1],
      [0, M, 2],
      [M, 2 * M, 1],
    ]);
  });

  it('--late-output PATH: late records go to a kappa stream file, exit 0', async () => {
    const late = `${t.dir}/late.kappa`;
    const r = await win(`--tumbling 1m --late-output ${late}`, lateEvents);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.rows.length, 2);
    const s = await sh(`kappa sink - -q < ${late}`);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(s.stdout.trim().split('\n'), ['{"late":true}']);
    const both = await win(`--tumbling 1m --late-output ${late} --on-late drop`, lateEvents);
    assert.equal(both.code, 2, 'both flags: --on-late applies to nothing');
  });

  it('--emit early:DUR: provisional results before the final one', async () => {
    const r = await win('--tumbling 1m --emit early:20s', [
      { ts: 5 * S },
      { wm: 25 * S },
      { ts: 30 * S },
      { wm: 45 * S },
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.rows.map((x) => x.count),
      [1, 2, 2],
    );
  });

  it('--state DIR: the LevelDB state lives there', async () => {
    const dir = `${t.dir}/state-a`;
    const r = await win(`--tumbling 1m --state ${dir}`, [{ ts: 1 }]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(`${dir}/CURRENT`), 'a LevelDB database in --state');
  });

  const manyKeys = (n: number): In[] => Array.from({ length: n }, (_, i) => ({ ts: 1, key: `k${i}` }));

  it('--state-cache N: past N entries, state spills to LevelDB', async () => {
    const small = await win('--tumbling 1m --state-cache 1', manyKeys(50), { quiet: false });
    assert.equal(small.code, 0, small.stderr);
    assert.equal(small.rows.length, 50);
    const writes = (e: string) =>
      Number(/([\d,]+) state writes/.exec(e)?.[1].replace(/,/g, '') ?? Number.NaN);
    assert.ok(writes(small.stderr) >= 49, small.stderr);
    const big = await win('--tumbling 1m', manyKeys(50), { quiet: false });
    assert.equal(writes(big.stderr), 0, big.stderr);
  });

  it('--max-key-groups N: every state key is prefixed with its key group, < N', async () => {
    // A cut-off stream (no end line) fails before firing, so the spilled state stays in --state.
    const prefixes = async (flag: string) => {
      const dir = `${t.dir}/state-kg${flag.replace(/\W/g, '')}`;
      const r = await win(`--tumbling 1m --state-cache 1 --state ${dir} ${flag}`, manyKeys(1500), {
        cut: true,
      });
      assert.equal(r.code, 1, r.stderr);
      const db = new ClassicLevel<string, string>(dir);
      const seen = new Set<string>();
      for await (const k of db.keys()) seen.add(k.slice(0, 4));
      await db.close();
      return [...seen].sort();
    };
    assert.deepEqual(await prefixes('--max-key-groups 2'), ['0000', '0001']);
    assert.deepEqual(await prefixes('--max-key-groups 1'), ['0000']);
    assert.ok((await prefixes('')).length > 2, 'default: 128 key groups');
  });

  it('--stats-every DUR: periodic counters on stderr', async () => {
    const evs = Array.from(
      { length: 20_000 },
      (_, i): In => ({ ts: i, key: `k${i % 10}`, v: { pad: 'x'.repeat(40) } }),
    );
    const r = await win('--tumbling 1m --stats-every 1ms', evs);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kappa window: [\d,]+ in, open windows \d+/);
    const quiet = await win('--tumbling 1m', evs);
    assert.doesNotMatch(quiet.stderr, /open windows/);
  });
});
