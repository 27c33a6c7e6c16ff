/**
 * `kappa state-edit` on a savepoint of session windows over real flight records (issue 10,
 * acceptance 1, 2, 3 and 5). Pipelines cannot take savepoints yet, so the savepoint is written by
 * the savepoint module from a WindowOperator stopped mid-stream; every edit runs the real binary;
 * results are checked with DuckDB (reading the savepoints' Parquet files, and computing the
 * expected session windows from the input records) and by restoring into a new WindowOperator.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { WindowSpec } from '../../src/ops/window/operator.js';
import { entriesToParquet } from '../../src/state/edit/read.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import type { SavepointEntry, SavepointMetadata } from '../../src/state/savepoint/format.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import type { Rec } from '../../src/stream/protocol.js';
import { parseLines, sh, tempDir } from '../helpers.js';
import {
  type Flight,
  loadFlights,
  type Row,
  resultLine,
  resume,
  rowLine,
  rows,
  savepointAt,
} from './state-edit-data.js';

const GAP = 30 * 60_000;
const SESSION: WindowSpec = { kind: 'session', gap: GAP };
const DROP = 'ORD';

describe('kappa state-edit on a savepoint of session windows over flights', () => {
  let t: { dir: string; cleanup: () => void };
  let con: DuckDBConnection;
  let flights: Flight[];
  let stop: number;
  let before1: Rec[];
  let wm: number;
  let sp: string;
  const files = (p: string) => `read_parquet('${p}/window-1/*.parquet')`;

  before(async () => {
    t = tempDir('kappa-state-edit-');
    con = await (await DuckDBInstance.create()).connect();
    flights = await loadFlights(con, "date < '2001-01-03'");
    stop = Math.floor(flights.length * 0.7);
    sp = join(t.dir, 'sp');
    ({ before: before1, wm } = await savepointAt(sp, SESSION, flights, stop));
  });
  after(() => {
    con.closeSync();
    t.cleanup();
  });

  it('acceptance 1 (without pipeline savepoints): delete an airport, migrate a value, rescale to 256; the restored run equals DuckDB`s expectation', async () => {
    const d = t.dir;
    const run = async (args: string) => {
      const r = await sh(`kappa state-edit ${args}`);
      assert.equal(r.code, 0, r.stderr);
      return r;
    };
    await run(`delete ${sp} -o ${d}/a1 --operator window-1 --key ${DROP}`);
    await run(
      `migrate ${d}/a1 -o ${d}/a2 --operator window-1 --map '({...r.value, acc: {...r.value.acc, sum_delay: r.value.acc.sum_delay + 1000}})'`,
    );
    await run(`rescale ${d}/a2 -o ${d}/a3 --max-key-groups 256`);
    const meta = (await openSavepoint(`${d}/a3`)).metadata;
    assert.equal(meta.maxKeyGroups, 256);
    assert.deepEqual(
      meta.operators[0].states[0].schema &&
        (meta.operators[0].states[0].schema as { migrations: unknown }).migrations,
      [{ map: '({...r.value, acc: {...r.value.acc, sum_delay: r.value.acc.sum_delay + 1000}})' }],
    );
    const after1 = await resume(`${d}/a3`, SESSION, flights, stop);
    const got = [...before1, ...after1].map(resultLine).sort();

    // DuckDB: sessions (gap 30 min) of the records before the savepoint; those still open at the
    // savepoint's watermark are the saved state. The deleted airport loses the records of its open
    // sessions; every other open session carries +1000 in sum(delay) into the session it ends up in.
    const sessions = (src: string, name: string) => `
      ${name}_1 AS (SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w >= ${GAP} THEN 1 ELSE 0 END AS nw
                  FROM ${src} WINDOW w AS (PARTITION BY origin ORDER BY ts, i)),
      ${name}_2 AS (SELECT *, sum(nw) OVER (PARTITION BY origin ORDER BY ts, i ROWS UNBOUNDED PRECEDING) AS sid FROM ${name}_1),
      ${name} AS (SELECT origin, sid, min(ts) AS ws, max(ts) AS mx, count(*) AS n, sum(delay) AS s FROM ${name}_2 GROUP BY origin, sid)`;
    const want = await rows(
      con,
      `WITH pre AS (SELECT * FROM f WHERE i < ${stop}),
       ${sessions('pre', 'ps')},
       open_ps AS (SELECT * FROM ps WHERE mx + ${GAP} - 1 > ${wm}),
       dropped AS (SELECT p.i FROM ps_2 p JOIN open_ps o USING (origin, sid) WHERE origin = '${DROP}'),
       kept AS (SELECT * FROM f WHERE i NOT IN (SELECT i FROM dropped)),
       ${sessions('kept', 'fs')}
       SELECT origin, ws, mx + ${GAP} AS we, n,
              s + 1000 * (SELECT count(*) FROM open_ps o
                          WHERE o.origin = fs.origin AND o.origin <> '${DROP}' AND o.ws BETWEEN fs.ws AND fs.mx) AS s
       FROM fs`,
    );
    assert.ok(want.length > 1000, `sessions: ${want.length}`);
    assert.ok(
      want.some((r) => r.origin === DROP),
      'the deleted airport still has sessions from before and after',
    );
    assert.deepEqual(got, want.map(rowLine).sort());
  });

  it('acceptance 2: read (NDJSON and Parquet, with --key and --where) equals what DuckDB reads from the Parquet files', async () => {
    const r = await sh(`kappa state-edit read ${sp} --operator window-1`);
    assert.equal(r.code, 0, r.stderr);
    const lines = parseLines<Record<string, unknown>>(r.stdout);
    const line = (x: Record<string, unknown>) =>
      JSON.stringify([x.key, x.key_group, x.state, x.window_start, x.window_end, x.timer, x.value]);
    const duckSql = (where = 'true') => `
      SELECT json(key) AS key, key_group, state, epoch_ms(window_start) AS ws, epoch_ms(window_end) AS we,
             epoch_ms(timer) AS timer, value FROM ${files(sp)} WHERE ${where}`;
    const fromDuck = (rs: Row[]) =>
      rs.map((x) =>
        JSON.stringify([
          JSON.parse(String(x.key)),
          Number(x.key_group),
          x.state,
          Number(x.ws),
          Number(x.we),
          x.timer === null ? null : Number(x.timer),
          JSON.parse(String(x.value)),
        ]),
      );
    const want = fromDuck(await rows(con, duckSql()));
    assert.ok(want.length > 100);
    assert.deepEqual(lines.map(line).sort(), want.sort());
    assert.ok(lines.every((l) => l.operator === 'window-1'));

    const k = await sh(
      `kappa state-edit read ${sp} --operator window-1 --key ATL --key DEN --where 'r.value.acc.count >= 2'`,
    );
    assert.equal(k.code, 0, k.stderr);
    const kw = fromDuck(
      await rows(con, duckSql(`key IN ('"ATL"', '"DEN"') AND json_extract(value, '$.acc.count')::INT >= 2`)),
    );
    assert.ok(kw.length > 0);
    assert.deepEqual(parseLines<Record<string, unknown>>(k.stdout).map(line).sort(), kw.sort());

    const pq = join(t.dir, 'read.parquet');
    const p = await sh(`kappa state-edit read ${sp} --operator window-1 --format parquet > ${pq}`);
    assert.equal(p.code, 0, p.stderr);
    const same = await rows(
      con,
      `SELECT count(*) AS n FROM (SELECT * FROM '${pq}' EXCEPT SELECT * FROM ${files(sp)})
       UNION ALL SELECT count(*) FROM (SELECT * FROM ${files(sp)} EXCEPT SELECT * FROM '${pq}')
       UNION ALL SELECT count(*) FROM '${pq}'`,
    );
    assert.deepEqual(
      same.map((x) => Number(x.n)),
      [0, 0, want.length],
    );
  });

  it('acceptance 3: validate finds a flipped byte, a missing file, a key in the wrong key group and an orphan file, each named, exit 3', async () => {
    const ok = await sh(`kappa state-edit validate ${sp}`);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = join(t.dir, 'bad');
    await sh(`cp -r ${sp} ${bad}`);
    const metaPath = join(bad, '_metadata.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as SavepointMetadata;
    const fs = meta.operators[0].files;
    assert.ok(fs.length >= 3, `files: ${fs.length}`);
    // 1. a flipped byte in the first file
    const f0 = join(bad, fs[0].path);
    const b0 = readFileSync(f0);
    b0[Math.floor(b0.length / 2)] ^= 0xff;
    writeFileSync(f0, b0);
    // 2. the second file missing
    rmSync(join(bad, fs[1].path));
    // 3. in the third file, one row's key replaced by a key that hashes to another key group (the
    // file is rewritten with correct checksums, so only the key-group check can find it)
    const entries: SavepointEntry[] = [];
    const sp3 = await openSavepoint(sp);
    for await (const e of sp3.entries('window-1'))
      if (e.keyGroup >= fs[2].keyGroups[0] && e.keyGroup <= fs[2].keyGroups[1]) entries.push(e);
    let alien = 'XYZ0';
    for (let n = 0; keyGroupOf(JSON.stringify(alien), 128) === entries[0].keyGroup; n++) alien = `XYZ${n}`;
    const wrongKey = JSON.stringify(alien);
    entries[0] = { ...entries[0], key: wrongKey };
    const buf = entriesToParquet(entries);
    writeFileSync(join(bad, fs[2].path), buf);
    const { createHash } = await import('node:crypto');
    fs[2].sha256 = createHash('sha256').update(buf).digest('hex');
    fs[2].bytes = buf.length;
    writeFileSync(metaPath, JSON.stringify(meta));
    // 4. an orphan file
    writeFileSync(join(bad, 'window-1', 'stray.parquet'), 'x');

    const r = await sh(`kappa state-edit validate ${bad}`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /4 problems/);
    assert.match(
      r.stderr,
      new RegExp(`file ${fs[0].path}: sha256 [0-9a-f]{64} does not match ${fs[0].sha256}`),
    );
    assert.match(r.stderr, new RegExp(`file ${fs[1].path} \\(operator 'window-1'\\) is missing`));
    assert.match(
      r.stderr,
      new RegExp(
        `file ${fs[2].path} row 0: key "${alien}" is in key group ${entries[0].keyGroup}, its hash gives key group ${keyGroupOf(wrongKey, 128)} of 128`,
      ),
    );
    assert.match(r.stderr, /file window-1\/stray.parquet is not listed in _metadata.json/);
    // The damaged savepoint is also refused by the edit verbs (its checksums fail at open).
    const e = await sh(`kappa state-edit inspect ${bad}`);
    assert.equal(e.code, 3);
  });

  it('acceptance 5: diff of a savepoint and its edited copies lists exactly the edit (exit 1), and nothing for an equal copy (exit 0)', async () => {
    const d = join(t.dir, 'diff');
    const del = await sh(`kappa state-edit delete ${sp} -o ${d}-del --operator window-1 --key ${DROP}`);
    assert.equal(del.code, 0, del.stderr);
    const dropped = await rows(con, `SELECT count(*) AS n FROM ${files(sp)} WHERE key = '"${DROP}"'`);
    const nDrop = Number(dropped[0].n);
    assert.ok(nDrop > 0);
    const r = await sh(`kappa state-edit diff ${sp} ${d}-del --json --limit 1000`);
    assert.equal(r.code, 1, r.stderr);
    const diff = JSON.parse(r.stdout) as {
      equal: boolean;
      metadata: string[];
      operators: {
        uid: string;
        added: number;
        removed: number;
        changed: number;
        firstRemoved: { key: string }[];
      }[];
    };
    assert.equal(diff.equal, false);
    assert.deepEqual(diff.metadata, []);
    assert.equal(diff.operators.length, 1);
    const o = diff.operators[0];
    assert.deepEqual([o.uid, o.added, o.removed, o.changed], ['window-1', 0, nDrop, 0]);
    assert.ok(o.firstRemoved.every((x) => x.key === DROP));

    // One entry changed through write: exactly that one.
    const one = await sh(`kappa state-edit read ${sp} --operator window-1 --key DEN | head -1`);
    const line = JSON.parse(one.stdout) as { value: { acc: { count: number } } };
    line.value.acc.count += 1;
    writeFileSync(`${d}.ndjson`, `${JSON.stringify(line)}\n`);
    const w = await sh(`kappa state-edit write ${sp} -o ${d}-w --operator window-1 --from ${d}.ndjson`);
    assert.equal(w.code, 0, w.stderr);
    const t2 = await sh(`kappa state-edit diff ${sp} ${d}-w`);
    assert.equal(t2.code, 1);
    assert.match(t2.stdout, /^operator window-1: 0 added, 0 removed, 1 changed$/m);
    assert.equal(t2.stdout.split('\n').filter((l) => l.startsWith('  ~')).length, 1);

    // An equal copy (rename there and back): no difference, exit 0.
    assert.equal((await sh(`kappa state-edit rename-operator ${sp} -o ${d}-r1 window-1 w`)).code, 0);
    assert.equal((await sh(`kappa state-edit rename-operator ${d}-r1 -o ${d}-r2 w window-1`)).code, 0);
    const eq = await sh(`kappa state-edit diff ${sp} ${d}-r2`);
    assert.deepEqual([eq.code, eq.stdout], [0, '']);
    const ren = await sh(`kappa state-edit diff ${sp} ${d}-r1`);
    assert.equal(ren.code, 1);
    assert.match(ren.stdout, /operator window-1: only in A/);
    assert.match(ren.stdout, /operator w: only in B/);
  });
});
