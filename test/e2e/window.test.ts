import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseLines, sh, tempDir } from '../helpers.js';
import { duck, ingestFlights } from './flights-data.js';

interface Row {
  window_start: number;
  window_end: number;
  origin: string;
  count: number;
  avg_delay: number;
  max_delay: number;
}

describe('kappa window on the flights (acceptance)', () => {
  const t = tempDir();
  let stream = '';
  before(async () => {
    // Ingest once into a kappa stream file; every test reads it.
    stream = `${t.dir}/flights.kappa`;
    const r = await sh(`${await ingestFlights(t.dir)} > ${stream}`);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => t.cleanup());

  it('tumbling 1h per origin equals DuckDB GROUP BY origin, time_bucket(1h, date)', async () => {
    const r = await sh(
      `kappa window -q < ${stream} --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' | kappa sink - -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = parseLines<Row>(r.stdout);
    const want = await duck(`SELECT epoch_ms(time_bucket(INTERVAL 1 HOUR, date)) AS s, origin,
        count(*)::BIGINT AS n, avg(delay)::DOUBLE AS a, max(delay)::BIGINT AS mx
      FROM flights GROUP BY ALL`);
    assert.equal(want.length, 424_259);
    assert.equal(got.length, want.length);
    const byKey = new Map(got.map((g) => [`${g.origin}|${g.window_start}`, g]));
    for (const w of want) {
      const g = byKey.get(`${w.origin}|${w.s}`);
      assert.ok(g, `missing window ${w.origin} ${w.s}`);
      assert.equal(g.window_end, Number(w.s) + 3_600_000);
      assert.equal(g.count, Number(w.n));
      assert.equal(g.max_delay, Number(w.mx));
      assert.ok(
        Math.abs(g.avg_delay - Number(w.a)) <= 1e-9 * Math.max(1, Math.abs(Number(w.a))),
        `avg ${g.origin}`,
      );
    }
  });

  it('gives the same result when open state is 10x its cache, with bounded peak RSS', async () => {
    // Tumbling 1 day per (origin, destination): thousands of windows open at once.
    const q = `--key 'r.origin + "-" + r.destination' --tumbling 1d --agg 'count, sum(delay), count_distinct(delay) as d'`;
    const head = `head -150000 ${stream}; echo '{"end":true}'`;
    const big = await sh(`(${head}) | kappa window ${q} --state-cache 1000000 | kappa sink - -q`);
    const small = await sh(
      `(${head}) | kappa window ${q} --state-cache 200 --state ${t.dir}/state | kappa sink - -q`,
    );
    assert.equal(big.code, 0, big.stderr);
    assert.equal(small.code, 0, small.stderr);
    const sort = (s: string) => s.split('\n').sort().join('\n');
    assert.equal(sort(small.stdout), sort(big.stdout));
    const peak = (s: string) => Number(/([\d,]+) peak open windows/.exec(s)![1].replace(/,/g, ''));
    const rss = (s: string) => Number(/([\d.]+) MB peak rss/.exec(s)![1]);
    const spilled = (s: string) => Number(/([\d,]+) state writes/.exec(s)![1].replace(/,/g, ''));
    assert.ok(peak(small.stderr) >= 10 * 200, `open windows ${peak(small.stderr)} not 10x the cache`);
    assert.ok(spilled(small.stderr) > 0, 'the small cache spilled to LevelDB');
    assert.ok(rss(small.stderr) <= rss(big.stderr) * 1.5, `rss ${rss(small.stderr)} vs ${rss(big.stderr)}`);
  });
});

describe('kappa window late output', () => {
  it('writes records behind the allowed lateness to --late-output as a kappa stream and counts them', async () => {
    const t = tempDir();
    try {
      const lines = [
        '{"kappa":1}',
        '{"ts":1000,"key":"a","value":{"v":1}}',
        '{"ts":70000,"key":"a","value":{"v":2}}',
        '{"watermark":130000}',
        '{"ts":5000,"key":"a","value":{"v":3}}',
        '{"ts":65000,"key":"a","value":{"v":4}}',
        '{"end":true}',
      ];
      const late = `${t.dir}/late.kappa`;
      const r = await sh(
        `kappa window --tumbling 1m --allowed-lateness 10s --agg 'count, sum(v)' --late-output ${late} | kappa sink - -q`,
        { input: `${lines.join('\n')}\n` },
      );
      assert.equal(r.code, 0, r.stderr);
      // Window [60s,120s) fired at wm 130s > 119.999s and is kept until 129.999s: purged too.
      assert.deepEqual(parseLines(r.stdout), [
        { window_start: 0, window_end: 60000, key: 'a', count: 1, sum_v: 1 },
        { window_start: 60000, window_end: 120000, key: 'a', count: 1, sum_v: 2 },
      ]);
      assert.match(r.stderr, /2 late/);
      const s = await sh(`kappa sink - -q < ${late}`);
      assert.equal(s.code, 0, s.stderr);
      assert.deepEqual(parseLines(s.stdout), [{ v: 3 }, { v: 4 }]);
    } finally {
      t.cleanup();
    }
  });
});
