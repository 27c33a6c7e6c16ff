/**
 * Asynchronous checkpoint parts (issue 9, checkpoint overhead): a window stage whose state fits its
 * cache copies its snapshot from memory and writes the part in the background while it goes on with
 * the records after the barrier. What must still hold, checked from the outside with the real
 * binary and DuckDB:
 * - the barrier reaches the next stage only once the stage's part (`_parts/<uid>.json`, after its
 *   Parquet files) is written, so no sink can commit an epoch whose state is not durable;
 * - what the stage emits after the barrier (results fired by a later watermark) comes after it;
 * - the part holds the state as of the barrier, not the records that followed it;
 * - `KAPPA_CHECKPOINT_THREAD` takes effect both ways (the window's summary, fed by the part writer
 *   thread's own answers, and /proc: a task at nice 19 exists only with the thread).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { sh, tempDir } from '../helpers.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
const CLEAN = { KAPPA_CHECKPOINT_DIR: '', KAPPA_RESUME: '', KAPPA_FROM_SAVEPOINT: '' };

/** Reads a kappa stream on stdin; on each barrier line notes whether the stage's part exists. */
const READER = `
const { existsSync, writeFileSync } = require('node:fs');
const lines = [];
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const o = JSON.parse(line);
    if (o.barrier) o.partExisted = existsSync(o.barrier.path + '/_parts/window-1.json');
    lines.push(o);
  }
});
process.stdin.on('end', () => writeFileSync(process.argv[1], JSON.stringify(lines)));
`;

/** Writes checkpoint 1's source part under `dir` and returns its path. */
function sourcePart(dir: string, pipeline: string): string {
  const chk = join(dir, 'chk-0000000001');
  mkdirSync(join(chk, '_parts'), { recursive: true });
  writeFileSync(join(dir, '_pipeline.json'), JSON.stringify({ id: pipeline }));
  writeFileSync(
    join(chk, '_parts', '_barrier.json'),
    JSON.stringify({
      id: 1,
      type: 'checkpoint',
      pipeline,
      sources: [],
      createdAt: new Date(T0).toISOString(),
    }),
  );
  return chk;
}

describe('asynchronous checkpoint parts', () => {
  it('the barrier is forwarded after the part is written, output after it stays after it, the part is the state at the barrier', async () => {
    const t = tempDir();
    try {
      const dir = join(t.dir, 'ck');
      const pipeline = 'p-async';
      const chk = sourcePart(dir, pipeline);
      // Before the barrier: 4000 keys x 10 hours, so the part takes a while to write; after it: more
      // records for hour 0 (must not be in the part), a watermark that fires hours 0..4, hour 20.
      const lines: string[] = [
        JSON.stringify({
          kappa: 1,
          pipeline: { id: pipeline, checkpointDir: dir, stage: 0, uids: ['ingest-0'] },
        }),
      ];
      const rec = (ts: number, k: string, v: number) => JSON.stringify({ ts, key: null, value: { k, v } });
      for (let h = 0; h < 10; h++)
        for (let k = 0; k < 4000; k++) lines.push(rec(T0 + h * HOUR + k, `k${k}`, 1));
      lines.push(
        JSON.stringify({
          barrier: { id: 1, type: 'checkpoint', path: chk, sources: [], operators: [] },
        }),
      );
      for (let k = 0; k < 4000; k++) lines.push(rec(T0 + 1000 + k, `k${k}`, 100));
      lines.push(JSON.stringify({ watermark: T0 + 5 * HOUR - 1 }));
      lines.push(rec(T0 + 20 * HOUR, 'k0', 7));
      lines.push(JSON.stringify({ end: true }));
      const input = join(t.dir, 'in.ndjson');
      writeFileSync(input, `${lines.join('\n')}\n`);
      const seen = join(t.dir, 'seen.json');
      const r = await sh(
        `kappa window --key k --tumbling 1h --agg 'count, sum(v)' --state-cache 100000 < '${input}' | node -e "$READER" '${seen}'`,
        { env: { ...CLEAN, READER }, cwd: t.dir },
      );
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(readFileSync(seen, 'utf8')) as Record<string, unknown>[];
      const at = out.findIndex((o) => o.barrier !== undefined);
      assert.ok(at > 0, 'the barrier was forwarded');
      assert.equal(out[at].partExisted, true, 'the part was written before the barrier was forwarded');
      assert.deepEqual((out[at].barrier as { operators: string[] }).operators, ['window-1']);
      const results = out.filter((o) => o.value !== undefined);
      assert.equal(results.length, 5 * 4000 + 5 * 4000 + 1, 'every window fires once');
      // The watermark after the barrier fired hours 0..4: every one of those results is after it.
      const before = out.slice(0, at).filter((o) => o.value !== undefined);
      assert.equal(before.length, 0, 'nothing fired before the barrier');
      // The part: DuckDB reads the state as of the barrier (hour 0 count 1, sum 1: not the 100s).
      const con = await (await DuckDBInstance.create(':memory:')).connect();
      try {
        const rows = (
          await con.runAndReadAll(
            `SELECT count(*) AS n, sum(CAST(json_extract(value, '$.acc.count') AS BIGINT)) AS c,
                    sum(CAST(json_extract(value, '$.acc.sum_v') AS BIGINT)) AS s
             FROM read_parquet('${chk}/window-1/*.parquet')`,
          )
        ).getRowObjectsJson()[0];
        assert.deepEqual(rows, { n: '40000', c: '40000', s: '40000' });
      } finally {
        con.closeSync();
      }
      const meta = JSON.parse(readFileSync(join(chk, '_metadata.json'), 'utf8')) as {
        operators: { uid: string; entries: number }[];
      };
      assert.deepEqual(
        meta.operators.map((o) => [o.uid, o.entries]),
        [['window-1', 40000]],
      );
    } finally {
      t.cleanup();
    }
  });

  it('windows held as typed arrays (binary stream) go to the part writer thread and give the same files as the stage thread', async () => {
    const t = tempDir();
    try {
      const pipeline = 'p-thread';
      const lines: string[] = [];
      const rec = (ts: number, k: string, v: number) => JSON.stringify({ ts, key: null, value: { k, v } });
      for (let h = 0; h < 6; h++)
        for (let k = 0; k < 3000; k++) lines.push(rec(T0 + h * HOUR + k, `k${k % 997}`, k));
      const body = (dir: string, chk: string) =>
        [
          JSON.stringify({
            kappa: 1,
            pipeline: { id: pipeline, checkpointDir: dir, stage: 0, uids: ['ingest-0'] },
          }),
          ...lines,
          JSON.stringify({ barrier: { id: 1, type: 'checkpoint', path: chk, sources: [], operators: [] } }),
          rec(T0 + 10, 'k1', 1000),
          JSON.stringify({ end: true }),
        ].join('\n');
      const parts: Record<string, Buffer[]> = {};
      for (const mode of ['thread', 'stage']) {
        const dir = join(t.dir, `ck-${mode}`);
        const chk = sourcePart(dir, pipeline);
        const input = join(t.dir, `in-${mode}.ndjson`);
        writeFileSync(input, `${body(dir, chk)}\n`);
        // transform re-encodes the stream as Arrow (version 2), so the window takes its batch path
        // and holds its windows in the slot table.
        const r = await sh(
          `kappa transform --select k,v --stream-format arrow < '${input}' | kappa window --key k --tumbling 1h --agg 'count, avg(v), max(v)' > /dev/null`,
          { env: { ...CLEAN, KAPPA_CHECKPOINT_THREAD: mode === 'thread' ? '' : '0' }, cwd: t.dir },
        );
        assert.equal(r.code, 0, r.stderr);
        // Where the part was written, as the window's summary reports it (the part writer's count
        // comes from that thread's answer): the switch takes effect.
        assert.match(
          r.stderr,
          mode === 'thread'
            ? /kappa window: done:.* 1 checkpoint parts by the part-writer thread/
            : /kappa window: done:.* 1 checkpoint parts on the stage thread/,
          r.stderr,
        );
        assert.doesNotMatch(
          r.stderr,
          mode === 'thread' ? /on the stage thread/ : /by the part-writer thread/,
          r.stderr,
        );
        const files = readdirSync(join(chk, 'window-2')).sort();
        assert.ok(files.length > 0, `${mode}: the part has files`);
        parts[mode] = files.map((f) => readFileSync(join(chk, 'window-2', f)));
        // DuckDB: every (key, hour) window as of the barrier, with its count, sum and max.
        const con = await (await DuckDBInstance.create(':memory:')).connect();
        try {
          const rows = (
            await con.runAndReadAll(
              `SELECT count(*) AS n, sum(CAST(json_extract(value, '$.acc.count') AS BIGINT)) AS c,
                      sum(CAST(json_extract(value, '$.acc.avg_v[0]') AS BIGINT)) AS s,
                      max(CAST(json_extract(value, '$.acc.max_v') AS BIGINT)) AS m,
                      bool_and(CAST(json_extract(value, '$.changed') AS BOOLEAN)) AS changed
               FROM read_parquet('${chk}/window-2/*.parquet')`,
            )
          ).getRowObjectsJson()[0];
          assert.deepEqual(rows, {
            n: String(6 * 997),
            c: '18000',
            s: String(6 * ((2999 * 3000) / 2)),
            m: '2999',
            changed: true,
          });
        } finally {
          con.closeSync();
        }
      }
      assert.equal(parts.thread.length, parts.stage.length);
      for (let i = 0; i < parts.thread.length; i++)
        assert.ok(parts.thread[i].equals(parts.stage[i]), `file ${i} differs`);
    } finally {
      t.cleanup();
    }
  });
  it('the part writer thread runs at nice 19 while a part is written; KAPPA_CHECKPOINT_THREAD=0 starts no such thread', async (tc) => {
    if (process.platform !== 'linux' || !existsSync('/proc/thread-self')) return tc.skip('needs Linux /proc');
    const probe = spawnSync(process.execPath, [
      '-e',
      "const {readlinkSync}=require('fs');require('os').setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()),19)",
    ]);
    if (probe.status !== 0) return tc.skip('setpriority is refused here');
    const t = tempDir();
    try {
      const pipeline = 'p-nice';
      const rec = (ts: number, k: string, v: number) => JSON.stringify({ ts, key: null, value: { k, v } });
      const lines: string[] = [];
      for (let h = 0; h < 6; h++)
        for (let k = 0; k < 5000; k++) lines.push(rec(T0 + h * HOUR + k, `k${k}`, k));
      for (const mode of ['thread', 'stage']) {
        const dir = join(t.dir, `ck-${mode}`);
        const chk = sourcePart(dir, pipeline);
        const head = [
          JSON.stringify({
            kappa: 1,
            pipeline: { id: pipeline, checkpointDir: dir, stage: 0, uids: ['ingest-0'] },
          }),
          ...lines,
          JSON.stringify({ barrier: { id: 1, type: 'checkpoint', path: chk, sources: [], operators: [] } }),
        ];
        writeFileSync(join(t.dir, `a-${mode}.ndjson`), `${head.join('\n')}\n`);
        writeFileSync(
          join(t.dir, `b-${mode}.ndjson`),
          `${rec(T0 + 10, 'k1', 1)}\n${JSON.stringify({ end: true })}\n`,
        );
        const pidFile = join(t.dir, `window-${mode}.pid`);
        // The input stays open 1.5 s after the barrier, so the window lives on after its part.
        const run = sh(
          `{ cat a-${mode}.ndjson; sleep 1.5; cat b-${mode}.ndjson; } | timeout --foreground -s KILL 90 kappa transform --select k,v --stream-format arrow | { echo $BASHPID > '${pidFile}'; exec timeout --foreground -s KILL 90 kappa window --key k --tumbling 1h --agg 'count, sum(v)'; } > /dev/null`,
          { env: { ...CLEAN, KAPPA_CHECKPOINT_THREAD: mode === 'thread' ? '' : '0' }, cwd: t.dir },
        );
        let finished = false;
        void run.then(() => {
          finished = true;
        });
        // Every task's nice value (field 19 of /proc/PID/task/TID/stat) seen while the window runs.
        const nice = new Set<number>();
        let mainNice: number | undefined;
        while (!finished) {
          const pid = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '';
          // (bash execs timeout, which forks kappa: the window is timeout's child)
          const child = pid ? childOf(pid) : undefined;
          if (child)
            for (const tid of safeList(`/proc/${child}/task`)) {
              const n = niceOf(`/proc/${child}/task/${tid}/stat`);
              if (n === undefined) continue;
              if (tid === child) mainNice ??= n;
              else nice.add(n);
            }
          await new Promise((r) => setTimeout(r, 5));
        }
        const r = await run;
        assert.equal(r.code, 0, r.stderr);
        assert.ok(existsSync(join(chk, '_parts', 'window-2.json')), `${mode}: the part was written`);
        assert.ok(
          mainNice !== undefined && mainNice < 19,
          `${mode}: the window's main thread was seen (nice ${mainNice})`,
        );
        if (mode === 'thread')
          assert.ok(nice.has(19), `thread: a task at nice 19 (seen: ${[...nice].join(', ')})`);
        else assert.ok(!nice.has(19), `stage: no task at nice 19 (seen: ${[...nice].join(', ')})`);
      }
    } finally {
      t.cleanup();
    }
  });
});

/** The entries of a /proc directory, [] once the process is gone. */
function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Field 19 (nice) of a /proc stat file, or undefined when it is gone. */
function niceOf(statFile: string): number | undefined {
  try {
    const s = readFileSync(statFile, 'latin1');
    // pid (comm) state …: comm may hold spaces and parentheses, so split after the last ')'.
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return undefined;
  }
}

/** The pid of the first child of `pid` (from /proc/PID/task/PID/children), if any. */
function childOf(pid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ')[0] || undefined;
  } catch {
    return undefined;
  }
}
