/**
 * The source runtime, signals and progress end to end (issue 8 items 1, 8, 13, 29, 32): batch
 * semantics for bounded file sources (DuckDB is the oracle), SIGTERM of `ingest` and of `sink`
 * (exit 143, one line on stderr, nothing committed, no in-progress file), the ingestion-time
 * warning, and one progress bar per pipeline on a terminal.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { mulberry32 as rng } from '../../bench/gen.js';
import { KAPPA, parseLines, ROOT, sh, tempDir } from '../helpers.js';

const HOUR = 3_600_000;

/** Every file under `dir`, recursively (relative paths). */
function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

/** Every child spawned, killed after the tests so a failed assertion leaves no process behind. */
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Spawns the real binary; resolves on exit with its code and stderr. */
function kappa(args: string[]): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(KAPPA, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  // The test inspects exit codes; a closed pipe is not the test's failure.
  child.stdin?.on('error', () => {});
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exit };
}

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bounded unsorted file through window (item 1)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('50,000 records shuffled over 5 days give exactly DuckDB’s counts per hour, exit 0', async () => {
    const next = rng(42);
    const t0 = Date.UTC(2024, 4, 1);
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) lines.push(`{"id":${i},"t":${t0 + Math.floor(next() * 5 * 24 * HOUR)}}`);
    const file = join(t.dir, 'shuffled.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await sh(
      `kappa ingest '${file}' --ts-field t --ts-format epoch-ms -q | kappa window --tumbling 1h | kappa sink - -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /[1-9][\d,]* late/, r.stderr);
    const got = parseLines<{ window_start: number; count: number }>(r.stdout);
    const con = await (await DuckDBInstance.create(':memory:')).connect();
    const want = (
      await con.runAndReadAll(
        `SELECT (t // ${HOUR}) * ${HOUR} AS s, count(*)::INTEGER AS n
         FROM read_json('${file}', columns = {id: 'BIGINT', t: 'BIGINT'}) GROUP BY 1 ORDER BY 1`,
      )
    ).getRowObjectsJS();
    assert.equal(want.length, 120);
    assert.deepEqual(
      got.map((g) => [g.window_start, g.count]).sort((a, b) => a[0] - b[0]),
      want.map((w) => [Number(w.s), Number(w.n)]),
    );
  });

  it('a bounded file source without --max-out-of-orderness emits no watermark before its end', async () => {
    const r = await sh('kappa ingest - --ts-field t --ts-format epoch-ms -q', {
      input: '{"t":5000}\n{"t":1000}\n{"t":9000}\n',
    });
    assert.equal(r.code, 0, r.stderr);
    const out = parseLines<{ watermark?: number; end?: boolean }>(r.stdout);
    assert.equal(out.filter((l) => l.watermark !== undefined).length, 0, r.stdout);
    assert.deepEqual(out.at(-1), { end: true });
    // An explicit bound still gives watermarks (0ms: Flink's forMonotonousTimestamps).
    const b = await sh('kappa ingest - --ts-field t --ts-format epoch-ms -q --max-out-of-orderness 0ms', {
      input: '{"t":5000}\n{"t":9000}\n',
    });
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(
      parseLines<{ watermark?: number }>(b.stdout)
        .filter((l) => l.watermark !== undefined)
        .map((l) => l.watermark),
      [8999],
    );
  });
});

describe('ingestion time is said once (item 29)', () => {
  it('a file source without --ts-field warns once on stderr; with --ts-field it does not', async () => {
    const input = Array.from({ length: 3000 }, (_, i) => `{"i":${i}}`).join('\n');
    const r = await sh('kappa ingest - -q > /dev/null', { input });
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.split('\n').filter((l) => /ingestion time/.test(l));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0], /--ts-field/);
    const w = await sh('kappa ingest - -q --ts-field i --ts-format epoch-ms > /dev/null', { input });
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stderr, '');
  });
});

describe('SIGTERM (items 8 and 13)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('a killed ingest writes no end line and exits 143; the downstream table sink commits nothing', async () => {
    const table = join(t.dir, 'ingest-killed');
    const ingest = kappa(['ingest', '-', '--ts-field', 't', '--ts-format', 'epoch-ms']);
    const sink = kappa(['sink', table]);
    let forwarded = 0;
    let sawEnd = false;
    ingest.child.stdout?.on('data', (d: Buffer) => {
      forwarded += d.length;
      if (d.includes('"end":true')) sawEnd = true;
      sink.child.stdin?.write(d);
    });
    ingest.child.stdout?.on('end', () => sink.child.stdin?.end());
    // Records, then stdin stays open: a source that has not reached its end.
    const rows = Array.from({ length: 20_000 }, (_, i) => `{"t":${1_700_000_000_000 + i * 1000},"i":${i}}`);
    ingest.child.stdin?.write(`${rows.join('\n')}\n`);
    await until(() => forwarded > 100_000, 'ingest output');
    ingest.child.kill('SIGTERM');
    const ie = await ingest.exit;
    const se = await sink.exit;
    ingest.child.stdin?.destroy();
    assert.equal(ie.code, 143, `ingest: ${ie.code} ${ie.signal} ${ie.stderr}`);
    assert.equal(sawEnd, false, 'no end-of-stream line after a signal');
    const lines = ie.stderr.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 1, ie.stderr);
    assert.match(lines[0], /^kappa ingest: .*SIGTERM/);
    assert.equal(se.code, 1, se.stderr);
    const files = walk(table);
    assert.deepEqual(
      files.filter((f) => f.startsWith('_delta_log/') && f.endsWith('.json')),
      [],
      'no Delta version',
    );
    assert.deepEqual(
      files.filter((f) => f.includes('.inprogress')),
      [],
    );
  });

  it('a killed sink removes its in-progress files, commits nothing and exits 143 with one line', async () => {
    const table = join(t.dir, 'sink-killed');
    const sink = kappa(['sink', table, '--partition-by', 'dt=%Y-%m-%d', '--roll-records', '1000']);
    const recs = Array.from(
      { length: 50_000 },
      (_, i) => `{"ts":${1_700_000_000_000 + i * 60_000},"key":null,"value":{"i":${i},"s":"x${i}"}}`,
    );
    sink.child.stdin?.write(`{"kappa":1}\n${recs.join('\n')}\n`);
    // Stdin stays open (no end line): wait until the sink holds in-progress part files.
    await until(() => walk(table).some((f) => f.includes('.inprogress')), 'an in-progress file');
    sink.child.kill('SIGTERM');
    const se = await sink.exit;
    sink.child.stdin?.destroy();
    assert.equal(se.code, 143, `sink: ${se.code} ${se.signal} ${se.stderr}`);
    const lines = se.stderr.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 1, se.stderr);
    assert.match(lines[0], /^kappa sink: .*SIGTERM.*nothing committed/);
    const files = walk(table);
    assert.deepEqual(
      files.filter((f) => f.includes('.inprogress')),
      [],
    );
    assert.deepEqual(
      files.filter((f) => f.startsWith('_delta_log/') && f.endsWith('.json')),
      [],
    );
  });

  it('on a terminal, a killed sink restores the cursor and line wrap (pty via script(1))', async () => {
    const table = join(t.dir, 'sink-tty');
    const inner = [
      `kappa sink '${table}' --partition-by 'dt=%Y-%m-%d' --roll-records 5 < /dev/tty > /dev/null & p=$!`,
      `for i in $(seq 300); do find '${table}' -name '*inprogress*' 2>/dev/null | grep -q . && break; sleep 0.1; done`,
      'kill -TERM $p; wait $p; echo EXIT=$?',
    ].join('; ');
    const child = spawn('script', ['-qefc', inner, '/dev/null'], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH}` },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    child.stdin.on('error', () => {});
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const done = new Promise<void>((r) => child.on('close', () => r()));
    // Typed into the terminal (the sink's stdin); script's stdin stays open until the end.
    const recs = Array.from(
      { length: 200 },
      (_, i) => `{"ts":${1_700_000_000_000 + i * HOUR},"key":null,"value":{"i":${i}}}`,
    );
    child.stdin.write(`{"kappa":1}\n${recs.join('\n')}\n`);
    await done;
    child.stdin.destroy();
    assert.match(out, /EXIT=143/, out);
    assert.match(out, /kappa sink: interrupted by SIGTERM.*nothing committed/);
    for (const [hide, show] of [
      ['\x1b[?25l', '\x1b[?25h'],
      ['\x1b[?7l', '\x1b[?7h'],
    ]) {
      assert.ok(out.includes(hide), 'the bar was drawn');
      assert.ok(out.lastIndexOf(show) > out.lastIndexOf(hide), `terminal restored (${JSON.stringify(show)})`);
    }
    const files = walk(table);
    assert.deepEqual(
      files.filter((f) => f.includes('.inprogress') || f.startsWith('_delta_log/')),
      [],
    );
  });

  it('SIGINT gives exit 130', async () => {
    const ing = kappa(['ingest', '-', '-q']);
    let out = '';
    ing.child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    ing.child.stdin?.write('{"a":1}\n');
    // A record on a live stdin goes out after the linger time, not at 64 KiB; then SIGINT.
    await until(() => out.includes('"a":1'), 'the record of a live stdin');
    ing.child.kill('SIGINT');
    const e = await ing.exit;
    ing.child.stdin?.destroy();
    assert.equal(e.code, 130, `${e.code} ${e.signal} ${e.stderr}`);
    assert.match(e.stderr, /SIGINT/);
  });
});

describe('one progress bar per pipeline (item 32)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('on a terminal only the first stage draws a bar; later stages print their summary only', async () => {
    const file = join(t.dir, 'in.ndjson');
    writeFileSync(
      file,
      `${Array.from({ length: 200_000 }, (_, i) => `{"t":${1_700_000_000_000 + i},"i":${i}}`).join('\n')}\n`,
    );
    const pipeline = `kappa ingest '${file}' --ts-field t --ts-format epoch-ms | kappa transform --filter 'true' | kappa sink - > /dev/null`;
    const r = await sh(`script -qefc ${JSON.stringify(pipeline)} /dev/null`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // script puts the terminal's output (stderr of every stage) on its stdout.
    assert.match(r.stdout, /kappa ingest (\[|\|)/, 'the first stage draws its bar');
    assert.doesNotMatch(r.stdout, /kappa transform (\[|\|)/, 'transform draws no bar');
    assert.doesNotMatch(r.stdout, /kappa sink (\[|\|)/, 'sink draws no bar');
    assert.match(r.stdout, /kappa transform: done/);
    assert.match(r.stdout, /kappa sink: done/);
  });
});
