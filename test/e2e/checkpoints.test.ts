/**
 * Checkpoints end to end (issue 9, issue 10 acceptance 4), with the real binary in shell pipelines
 * and DuckDB as the oracle: stop-with-savepoint by SIGTERM to the source and by SIGINT to the whole
 * process group (as Ctrl-C sends it), the open windows in the savepoint's Parquet files, resuming
 * from the savepoint, `--savepoint-at-end` bootstrap under a new source uid, dedupe state across a
 * savepoint, retention, and the usage errors of the checkpoint flags.
 *
 * Tests marked [needs seek] resume with the SAME input: they need sources that start at the saved
 * position (src/connectors/files.ts `startAt`); without it a resumed file source re-reads its input
 * from the start (the window stage then fails on late records).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { SavepointMetadata } from '../../src/state/savepoint/format.js';
import { parseLines, ROOT, type RunResult, sh, tempDir } from '../helpers.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T0 = Date.UTC(2024, 0, 1);
/** Environment of every run: no checkpoint setting leaks in from the caller's shell. */
const CLEAN = { KAPPA_CHECKPOINT_DIR: '', KAPPA_RESUME: '', KAPPA_FROM_SAVEPOINT: '' };

type Row = Record<string, string | number | boolean | null>;

async function rows(con: DuckDBConnection, sql: string): Promise<Row[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJson() as Row[];
}

/**
 * Writes `n` NDJSON records, one per `stepMs` of event time from `t0`: `{"i","t","k","v"}` with 7
 * keys in turn; `i` is the line number (what a files position counts as rows).
 */
function writeInput(path: string, n: number, t0 = T0, stepMs = MINUTE, first = 0): void {
  const lines: string[] = [];
  for (let j = 0; j < n; j++) {
    const i = first + j;
    lines.push(
      JSON.stringify({ i, t: new Date(t0 + j * stepMs).toISOString(), k: `k${i % 7}`, v: (i * 37) % 1000 }),
    );
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** Runs `script` with bash in its own process group; `signal` sends a signal to the whole group. */
function spawnGroup(script: string, env: Record<string, string>, cwd: string) {
  const child = spawn('bash', ['-o', 'pipefail', '-c', script], {
    cwd,
    env: { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`, ...CLEAN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    ),
  );
  return {
    done,
    signalGroup: (sig: NodeJS.Signals) => process.kill(-(child.pid as number), sig),
    kill: () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {}
    },
  };
}

/** Resolves once `cond` holds; throws after `ms`. */
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True once a checkpoint below `ck` is complete. */
function someCheckpointComplete(ck: string): boolean {
  if (!existsSync(ck)) return false;
  return readdirSync(ck).some((d) => d.startsWith('chk-') && existsSync(join(ck, d, '_metadata.json')));
}

/** The Parquet files of a Delta table's current snapshot, from its log (adds minus removes). */
function tableFiles(table: string): string[] {
  const log = join(table, '_delta_log');
  if (!existsSync(log)) return [];
  const live = new Set<string>();
  for (const f of readdirSync(log)
    .filter((x) => /^\d{20}\.json$/.test(x))
    .sort())
    for (const a of parseLines<{ add?: { path: string }; remove?: { path: string } }>(
      readFileSync(join(log, f), 'utf8'),
    )) {
      if (a.add) live.add(a.add.path);
      if (a.remove) live.delete(a.remove.path);
    }
  return [...live].map((p) => join(table, decodeURIComponent(p)));
}

/** Window rows of a table as `key windowStart count sum` lines (DuckDB reads the Parquet files). */
async function tableWindows(con: DuckDBConnection, table: string): Promise<string[]> {
  const files = tableFiles(table);
  if (files.length === 0) return [];
  const list = files.map((f) => `'${f}'`).join(', ');
  const got = await rows(
    con,
    `SELECT k, epoch_ms(window_start) AS ws, count::BIGINT AS n, sum_v::BIGINT AS s FROM read_parquet([${list}])`,
  );
  return got.map((r) => `${r.k} ${r.ws} ${r.n} ${r.s}`).sort();
}

/** DuckDB's hourly windows (key, start, count, sum(v)) of the input records matching `where`. */
async function expectedWindows(con: DuckDBConnection, input: string, where = 'true', having = 'true') {
  const got = await rows(
    con,
    `WITH r AS (SELECT i, k, v, (epoch_ms(t::TIMESTAMP) // ${HOUR}) * ${HOUR} AS ws FROM read_json('${input}'))
     SELECT k, ws, count(*) AS n, sum(v) AS s FROM r WHERE ${where} GROUP BY k, ws HAVING ${having}`,
  );
  return got.map((r) => `${r.k} ${r.ws} ${r.n} ${r.s}`).sort();
}

/**
 * Records of the inputs that a test stops mid-run: enough that the run outlasts the first complete
 * checkpoint (200 ms interval) with room to spare. At 300,000 the whole run took about as long as
 * the first checkpoint on a fast day, and the signal found the source already gone (ESRCH).
 */
const LONG_RUN = 1_000_000;

const INGEST = 'kappa ingest in.ndjson --ts-field t --max-out-of-orderness 0s';
const WINDOW = "kappa window --key k --tumbling 1h --agg 'count, sum(v)'";

describe('checkpoints: stop with savepoint', () => {
  let con: DuckDBConnection;
  before(async () => {
    con = await (await DuckDBInstance.create()).connect();
  });
  after(() => con.closeSync());

  for (const how of ['SIGTERM to the source', 'SIGINT to the process group'] as const) {
    it(`${how}: every stage exits 0, the savepoint is complete, fired windows are in the table, open ones in the savepoint (DuckDB)`, async () => {
      const t = tempDir('kappa-ck-stop-');
      writeInput(join(t.dir, 'in.ndjson'), LONG_RUN); // long enough not to end before the signal
      const p = spawnGroup(
        `{ echo $BASHPID > ingest.pid; exec ${INGEST} --checkpoint-interval 200ms; } | ${WINDOW} | kappa sink out --format parquet`,
        { KAPPA_CHECKPOINT_DIR: join(t.dir, 'ck') },
        t.dir,
      );
      try {
        await waitFor(() => someCheckpointComplete(join(t.dir, 'ck')), 90_000, 'a complete checkpoint');
        if (how === 'SIGTERM to the source')
          process.kill(Number(readFileSync(join(t.dir, 'ingest.pid'), 'utf8')), 'SIGTERM');
        else p.signalGroup('SIGINT');
        const timer = setTimeout(() => p.kill(), 90_000); // a stop that hangs fails below, with stderr
        const r = await p.done;
        clearTimeout(timer);
        assert.equal(r.code, 0, r.stderr);
        const m = /kappa ingest: savepoint (\S+)/.exec(r.stderr);
        assert.ok(m, r.stderr);
        for (const stage of ['ingest', 'window', 'sink'])
          assert.match(r.stderr, new RegExp(`kappa ${stage}: stopped with savepoint`), r.stderr);
        const sp = resolve(t.dir, m[1]);
        const meta = JSON.parse(readFileSync(join(sp, '_metadata.json'), 'utf8')) as SavepointMetadata;
        assert.equal(meta.type, 'savepoint');
        assert.deepEqual(
          meta.operators.map((o) => o.uid),
          ['window-1'],
        );
        const pos = meta.sources[0].positions as { kind: string; file: number; rows: number };
        assert.equal(meta.sources[0].uid, 'ingest-0');
        assert.equal(pos.kind, 'files');
        assert.equal(pos.file, 0, 'stopped mid-file');
        assert.ok(pos.rows > 0 && pos.rows < LONG_RUN, `stopped mid-run at row ${pos.rows}`);
        const wm = meta.operators[0].watermark as number;
        const input = join(t.dir, 'in.ndjson');
        // The windows the watermark closed before the stop are in the table, exactly once; the
        // others did not fire at the stop.
        const fired = await expectedWindows(con, input, `i < ${pos.rows}`, `ws + ${HOUR} - 1 <= ${wm}`);
        assert.ok(fired.length > 0);
        assert.deepEqual(await tableWindows(con, join(t.dir, 'out')), fired);
        // DuckDB reads the open windows from the savepoint's Parquet files: they equal its own
        // aggregation of the records before the stop position.
        const open = await expectedWindows(con, input, `i < ${pos.rows}`, `ws + ${HOUR} - 1 > ${wm}`);
        assert.ok(open.length > 0);
        const saved = await rows(
          con,
          `SELECT json_extract_string(key, '$') AS k, epoch_ms(window_start) AS ws,
                  json_extract(value, '$.acc.count')::BIGINT AS n, json_extract(value, '$.acc.sum_v')::BIGINT AS s
           FROM read_parquet('${sp}/window-1/*.parquet') WHERE state = 'window'`,
        );
        assert.deepEqual(saved.map((x) => `${x.k} ${x.ws} ${x.n} ${x.s}`).sort(), open);
        assert.equal((await sh(`kappa state-edit validate ${sp}`, { env: CLEAN })).code, 0);
      } finally {
        p.kill();
        t.cleanup();
      }
    });
  }

  it('[needs seek] --from-savepoint on the same input gives the table of an uninterrupted run (every window exactly once)', async () => {
    const t = tempDir('kappa-ck-resume-');
    const env = { KAPPA_CHECKPOINT_DIR: join(t.dir, 'ck') };
    // Long enough not to end before the first checkpoint completes: one checkpoint is in flight at
    // a time, so the run is not slowed by checkpoints piling up.
    writeInput(join(t.dir, 'in.ndjson'), LONG_RUN);
    const p = spawnGroup(
      `{ echo $BASHPID > ingest.pid; exec ${INGEST} --checkpoint-interval 200ms; } | ${WINDOW} | kappa sink out --format parquet`,
      env,
      t.dir,
    );
    try {
      await waitFor(() => someCheckpointComplete(join(t.dir, 'ck')), 90_000, 'a complete checkpoint');
      process.kill(Number(readFileSync(join(t.dir, 'ingest.pid'), 'utf8')), 'SIGTERM');
      const timer = setTimeout(() => p.kill(), 90_000); // a stop that hangs fails below, with stderr
      const r = await p.done;
      clearTimeout(timer);
      assert.equal(r.code, 0, r.stderr);
      const sp = /kappa ingest: savepoint (\S+)/.exec(r.stderr)?.[1] ?? '';
      const r2 = await sh(`${INGEST} | ${WINDOW} | kappa sink out --format parquet`, {
        cwd: t.dir,
        env: { ...CLEAN, ...env, KAPPA_FROM_SAVEPOINT: sp },
      });
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual(
        await tableWindows(con, join(t.dir, 'out')),
        await expectedWindows(con, join(t.dir, 'in.ndjson')),
      );
    } finally {
      p.kill();
      t.cleanup();
    }
  });
});

describe('checkpoints: --savepoint-at-end bootstrap and dedupe across a savepoint', () => {
  let con: DuckDBConnection;
  before(async () => {
    con = await (await DuckDBInstance.create()).connect();
  });
  after(() => con.closeSync());

  it('history with --savepoint-at-end, then the live input under a new source uid from it, equals one run over both (issue 10 acceptance 4, DuckDB)', async () => {
    const t = tempDir('kappa-ck-boot-');
    try {
      // January–May, then June; the split falls mid-hour, so the window of that hour holds
      // records of both runs.
      const june = Date.UTC(2024, 5, 1, 0, 30);
      const step = 7 * MINUTE;
      const nHist = Math.ceil((june - T0) / step);
      writeInput(join(t.dir, 'hist.ndjson'), nHist, T0, step);
      writeInput(join(t.dir, 'june.ndjson'), 30 * 24 * 9, T0 + nHist * step, step, nHist);
      writeFileSync(
        join(t.dir, 'all.ndjson'),
        readFileSync(join(t.dir, 'hist.ndjson'), 'utf8') + readFileSync(join(t.dir, 'june.ndjson'), 'utf8'),
      );
      const env = { ...CLEAN, KAPPA_CHECKPOINT_DIR: join(t.dir, 'ck') };
      const ing = (f: string, uid: string) =>
        `kappa ingest ${f} --ts-field t --max-out-of-orderness 0s --uid ${uid}`;
      const h = await sh(
        `${ing('hist.ndjson', 'history')} --savepoint-at-end | ${WINDOW} | kappa sink hist --format parquet`,
        { cwd: t.dir, env },
      );
      assert.equal(h.code, 0, h.stderr);
      const sp = /kappa ingest: savepoint (\S+)/.exec(h.stderr)?.[1] ?? '';
      assert.ok(existsSync(resolve(t.dir, sp, '_metadata.json')), h.stderr);
      const l = await sh(`${ing('june.ndjson', 'live')} | ${WINDOW} | kappa sink live --format parquet`, {
        cwd: t.dir,
        env: { ...env, KAPPA_FROM_SAVEPOINT: sp },
      });
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stderr, /no position for source 'live'/);
      const hist = await tableWindows(con, join(t.dir, 'hist'));
      const live = await tableWindows(con, join(t.dir, 'live'));
      const all = await expectedWindows(con, join(t.dir, 'all.ndjson'));
      assert.deepEqual([...hist, ...live].sort(), all, 'every window exactly once, same values');
      const boundary = Math.floor(june / HOUR) * HOUR;
      assert.ok(
        live.some((x) => x.split(' ')[1] === String(boundary)),
        'the window across the split is in the live table, complete',
      );
    } finally {
      t.cleanup();
    }
  });

  it('transform --dedupe keeps its keys across a savepoint: no duplicate of a record seen before the restore gets through', async () => {
    const t = tempDir('kappa-ck-dedupe-');
    try {
      const a: string[] = [];
      const b: string[] = [];
      for (let i = 0; i < 500; i++)
        a.push(JSON.stringify({ id: `x${i}`, t: new Date(T0 + i * MINUTE).toISOString() }));
      for (let i = 0; i < 500; i++) {
        // every other record repeats an id of the first part within the 1-day horizon
        const id = i % 2 === 0 ? `x${i}` : `y${i}`;
        b.push(JSON.stringify({ id, t: new Date(T0 + (500 + i) * MINUTE).toISOString() }));
      }
      writeFileSync(join(t.dir, 'a.ndjson'), `${a.join('\n')}\n`);
      writeFileSync(join(t.dir, 'b.ndjson'), `${b.join('\n')}\n`);
      const env = { ...CLEAN, KAPPA_CHECKPOINT_DIR: join(t.dir, 'ck') };
      const tr = "kappa transform --dedupe 'r.id' --within 1d";
      const r1 = await sh(`kappa ingest a.ndjson --ts-field t --uid a --savepoint-at-end | ${tr} > out1`, {
        cwd: t.dir,
        env,
      });
      assert.equal(r1.code, 0, r1.stderr);
      const sp = /kappa ingest: savepoint (\S+)/.exec(r1.stderr)?.[1] ?? '';
      const meta = JSON.parse(
        readFileSync(resolve(t.dir, sp, '_metadata.json'), 'utf8'),
      ) as SavepointMetadata;
      assert.deepEqual(
        meta.operators.map((o) => [o.uid, o.kind, o.entries]),
        [['transform-1', 'transform', 500]],
      );
      const r2 = await sh(`kappa ingest b.ndjson --ts-field t --uid b | ${tr} > out2`, {
        cwd: t.dir,
        env: { ...env, KAPPA_FROM_SAVEPOINT: sp },
      });
      assert.equal(r2.code, 0, r2.stderr);
      const ids = (f: string) =>
        parseLines<{ value?: { id: string } }>(readFileSync(join(t.dir, f), 'utf8'))
          .filter((x) => x.value)
          .map((x) => x.value?.id);
      assert.equal(ids('out1').length, 500);
      const got = ids('out2');
      assert.deepEqual(
        got,
        b.map((l) => (JSON.parse(l) as { id: string }).id).filter((id) => id.startsWith('y')),
      );
    } finally {
      t.cleanup();
    }
  });
});

describe('checkpoints: retention and usage errors', () => {
  it('--retain-checkpoints 2 keeps exactly the 2 newest complete checkpoints', async () => {
    const t = tempDir('kappa-ck-retain-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 60_000);
      // Fed in 20 pieces over 2 s to a stateless stage (it completes each checkpoint at once): one
      // checkpoint is in flight at a time, so a run needs to last a while to take several.
      const r = await sh(
        `split -l 3000 in.ndjson piece- && for f in piece-*; do cat $f; sleep 0.1; done | ${INGEST.replace('in.ndjson', '-')} --checkpoint-interval 1ms --retain-checkpoints 2 --checkpoint-dir ck | kappa transform --select k,v --checkpoint-dir ck > /dev/null`,
        { cwd: t.dir, env: CLEAN },
      );
      assert.equal(r.code, 0, r.stderr);
      const chk = readdirSync(join(t.dir, 'ck'))
        .filter((d) => d.startsWith('chk-'))
        .sort();
      assert.equal(chk.length, 2, chk.join(' '));
      const ids = chk.map((d) => Number(d.slice(4)));
      assert.ok(ids[1] >= 3, `more than 2 checkpoints were taken (newest ${ids[1]})`);
      assert.equal(ids[0], ids[1] - 1);
      for (const d of chk) assert.ok(existsSync(join(t.dir, 'ck', d, '_metadata.json')), d);
    } finally {
      t.cleanup();
    }
  });

  it('checkpoint flags that cannot apply are usage errors (exit 2) naming the flag or uid', async () => {
    const t = tempDir('kappa-ck-usage-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 300);
      const run = (script: string) => sh(script, { cwd: t.dir, env: CLEAN });
      const expect2 = async (script: string, re: RegExp) => {
        const r = await run(script);
        assert.equal(r.code, 2, `${script}\n${r.stderr}`);
        assert.match(r.stderr, re, script);
      };
      await expect2(
        `${INGEST} --checkpoint-interval 1s > /dev/null`,
        /--checkpoint-interval needs a checkpoint directory/,
      );
      await expect2(`${INGEST} --resume > /dev/null`, /--resume needs a checkpoint directory/);
      await expect2(
        `${INGEST} | ${WINDOW} --resume > /dev/null`,
        /--resume: the input stream carries no checkpoint context/,
      );
      await expect2(
        `${INGEST} --checkpoint-dir ck | ${WINDOW} --checkpoint-dir other > /dev/null`,
        /the checkpoint dir other is not the source's \(ck\)/,
      );
      await expect2(
        `${INGEST} --checkpoint-dir ck | kappa transform --filter true --uid ingest-0 > /dev/null`,
        /two stages of the pipeline have the uid 'ingest-0'/,
      );
      // A checkpoint to resume from, then a stateful stage that was not told to restore.
      const ok = await run(
        `${INGEST} --checkpoint-dir ck --savepoint-at-end | ${WINDOW} --checkpoint-dir ck > w1`,
      );
      assert.equal(ok.code, 0, ok.stderr);
      const sp = /kappa ingest: savepoint (\S+)/.exec(ok.stderr)?.[1] ?? '';
      await expect2(
        `${INGEST} --checkpoint-dir ck --from-savepoint ${sp} | ${WINDOW} > /dev/null`,
        /this stage was started without --resume or --from-savepoint/,
      );
      // State of a uid no stage claims: the window's uid renamed in an edited savepoint.
      const ren = await run(`kappa state-edit rename-operator ${sp} -o sp2 window-1 window-old`);
      assert.equal(ren.code, 0, ren.stderr);
      await expect2(
        `${INGEST} --checkpoint-dir ck --from-savepoint sp2 | ${WINDOW} --from-savepoint sp2 > /dev/null`,
        /holds state of 'window-old', which no stage of this pipeline claims/,
      );
      mkdirSync(join(t.dir, 'state'));
      writeFileSync(join(t.dir, 'state', 'CURRENT'), 'x');
      await expect2(`${INGEST} | ${WINDOW} --state state > /dev/null`, /--state state is not empty/);
    } finally {
      t.cleanup();
    }
  });
});

describe('checkpoints: savepoint surgery round trip (issue 10 acceptance 1)', () => {
  it('[needs seek] sessions stopped with a savepoint, state-edit delete + migrate + rescale, resumed: equals DuckDB with the edits applied', async () => {
    const t = tempDir('kappa-ck-surgery-');
    const con = await (await DuckDBInstance.create()).connect();
    const GAP = 30 * MINUTE;
    // Bursts of 100 records 3 minutes apart, 31 more minutes between bursts: per key (every 21
    // minutes within a burst) one session per burst, and sessions are open at almost every moment.
    const lines: string[] = [];
    // Long enough (a few seconds) that the source still runs when the first checkpoint completes.
    const n = 240_000;
    for (let i = 0; i < n; i++) {
      const ts = T0 + i * 3 * MINUTE + Math.floor(i / 100) * 31 * MINUTE;
      lines.push(JSON.stringify({ i, t: new Date(ts).toISOString(), k: `k${i % 7}`, v: (i * 37) % 1000 }));
    }
    writeFileSync(join(t.dir, 'in.ndjson'), `${lines.join('\n')}\n`);
    const env = { KAPPA_CHECKPOINT_DIR: join(t.dir, 'ck') };
    const SESSION = "kappa window --key k --session 30m --agg 'count, sum(v)'";
    const p = spawnGroup(
      `{ echo $BASHPID > ingest.pid; exec ${INGEST} --checkpoint-interval 200ms; } | ${SESSION} | kappa sink out --format parquet`,
      env,
      t.dir,
    );
    try {
      await waitFor(() => someCheckpointComplete(join(t.dir, 'ck')), 90_000, 'a complete checkpoint');
      process.kill(Number(readFileSync(join(t.dir, 'ingest.pid'), 'utf8')), 'SIGTERM');
      const r = await p.done;
      assert.equal(r.code, 0, r.stderr);
      const sp = /kappa ingest: savepoint (\S+)/.exec(r.stderr)?.[1] ?? '';
      const meta = JSON.parse(readFileSync(join(sp, '_metadata.json'), 'utf8')) as SavepointMetadata;
      const stop = (meta.sources[0].positions as { rows: number }).rows;
      const wm = meta.operators[0].watermark as number;
      const edit = async (cmd: string) => {
        const e = await sh(`kappa state-edit ${cmd}`, { cwd: t.dir, env: CLEAN });
        assert.equal(e.code, 0, `${cmd}\n${e.stderr}`);
      };
      await edit(`delete ${sp} -o sp1 --operator window-1 --key k3`);
      await edit(
        "migrate sp1 -o sp2 --operator window-1 --map '({...r.value, acc: {...r.value.acc, sum_v: r.value.acc.sum_v + 1000}})'",
      );
      await edit('rescale sp2 -o sp3 --max-key-groups 256');
      const r2 = await sh(`${INGEST} | ${SESSION} --max-key-groups 256 | kappa sink out --format parquet`, {
        cwd: t.dir,
        env: { ...CLEAN, ...env, KAPPA_FROM_SAVEPOINT: join(t.dir, 'sp3') },
      });
      assert.equal(r2.code, 0, r2.stderr);
      // DuckDB: sessions (gap 30 min) per key over the records; a session open at the stop (it has
      // records before the stop and its end - 1 is after the watermark) lost its records before
      // the stop for k3 (deleted state) and got +1000 on its sum for the other keys (migration).
      const base = `WITH r AS (SELECT i, k, v, epoch_ms(t::TIMESTAMP) AS ts FROM read_json('${join(t.dir, 'in.ndjson')}')),
        s AS (SELECT *, sum(CASE WHEN ts - lag_ts >= ${GAP} OR lag_ts IS NULL THEN 1 ELSE 0 END)
                         OVER (PARTITION BY k ORDER BY ts) AS sid
              FROM (SELECT *, lag(ts) OVER (PARTITION BY k ORDER BY ts) AS lag_ts FROM r)),
        g AS (SELECT k, sid, min(ts) AS ws, max(ts) + ${GAP} AS we, min(i) AS first_i FROM s GROUP BY k, sid),
        o AS (SELECT k, sid FROM g WHERE first_i < ${stop} AND we - 1 > ${wm})`;
      const want = await rows(
        con,
        `${base},
         kept AS (SELECT s.* FROM s WHERE NOT (s.k = 'k3' AND s.i < ${stop} AND (s.k, s.sid) IN (SELECT k, sid FROM o))),
         ks AS (SELECT *, sum(CASE WHEN ts - lag_ts >= ${GAP} OR lag_ts IS NULL THEN 1 ELSE 0 END)
                          OVER (PARTITION BY k ORDER BY ts) AS sid2
                FROM (SELECT k, v, ts, sid, lag(ts) OVER (PARTITION BY k ORDER BY ts) AS lag_ts FROM kept))
         SELECT k, min(ts) AS ws, count(*) AS n,
                sum(v) + CASE WHEN k <> 'k3' AND (k, any_value(sid)) IN (SELECT k, sid FROM o) THEN 1000 ELSE 0 END AS s
         FROM ks GROUP BY k, sid2`,
      );
      assert.ok(want.length > 100);
      // The edits matter: sessions of k3 and of other keys were open at the stop.
      const open = await rows(
        con,
        `${base} SELECT count(*) FILTER (WHERE k = 'k3') AS k3, count(*) AS n FROM o`,
      );
      assert.equal(Number(open[0].k3), 1, 'k3 had an open session at the stop');
      assert.match(r2.stderr, new RegExp(`restored ${Number(open[0].n) - 1} state entries of 'window-1'`));
      assert.deepEqual(
        await tableWindows(con, join(t.dir, 'out')),
        want.map((x) => `${x.k} ${x.ws} ${x.n} ${x.s}`).sort(),
      );
    } finally {
      p.kill();
      con.closeSync();
      t.cleanup();
    }
  });
});
