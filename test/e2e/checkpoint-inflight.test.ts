/**
 * One checkpoint in flight (Flink's max-concurrent-checkpoints 1, kappa-checkpoints(7)): at each
 * `--checkpoint-interval` tick the source starts a checkpoint only when the previous one is complete
 * (its `_metadata.json` exists); else it skips the tick and counts it. A checkpoint that does not
 * complete within `--checkpoint-timeout` is given up, so a pipeline whose last stage never completes
 * still goes on checkpointing. `--min-pause-between-checkpoints` keeps a gap after a completion.
 *
 * The slow downstream stage: a window holding tens of thousands of open windows (a file source
 * sends no watermark before its end, so none fires), whose every part takes far longer to write
 * than the 20 ms interval.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sh, tempDir } from '../helpers.js';

const T0 = Date.UTC(2024, 0, 1);
const HOUR = 3_600_000;
const CLEAN = {
  KAPPA_CHECKPOINT_DIR: '',
  KAPPA_RESUME: '',
  KAPPA_FROM_SAVEPOINT: '',
  KAPPA_CHECKPOINT_THREAD: '',
};
/**
 * The window writes its parts on its own thread (still while it reads on): the part writer's
 * thread runs at nice 19, so on a loaded machine a part can take longer than these short runs.
 */
const STAGE_THREAD = { ...CLEAN, KAPPA_CHECKPOINT_THREAD: '0' };
/** Bound of every stage: a hang fails the test instead of stalling the suite. */
const BOUND = 'timeout --foreground -s KILL 90';

/** `n` records over 6 hours, `keys` distinct keys: `{"t","k","v"}`. */
function writeInput(path: string, n: number, keys: number): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++)
    lines.push(
      JSON.stringify({
        t: new Date(T0 + Math.floor((i / n) * 6 * HOUR)).toISOString(),
        k: `k${i % keys}`,
        v: i % 100,
      }),
    );
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/**
 * A shell command that writes `in.ndjson` to stdout in `chunks` pieces, one every `everyMs`: the
 * run lasts about chunks x everyMs whatever the machine's load, so it spans several checkpoints.
 */
function paced(chunks: number, everyMs: number): string {
  const js = `const l=require('fs').readFileSync('in.ndjson','utf8').split('\\n');const n=Math.ceil(l.length/${chunks});let i=0;const t=setInterval(()=>{const c=l.slice(i,i+n);i+=n;if(c.length)process.stdout.write(c.join('\\n')+(i<l.length?'\\n':''));if(i>=l.length)clearInterval(t)},${everyMs})`;
  return `node -e "${js}"`;
}

interface Chk {
  id: number;
  /** When the source started it (`_parts/_barrier.json` createdAt, epoch ms). */
  started: number;
  /** When the last stage completed it (`_metadata.json` mtime, epoch ms), or undefined. */
  completed: number | undefined;
}

function checkpoints(ck: string): Chk[] {
  return readdirSync(ck)
    .filter((d) => d.startsWith('chk-'))
    .map((d) => {
      const b = JSON.parse(readFileSync(join(ck, d, '_parts', '_barrier.json'), 'utf8')) as {
        id: number;
        createdAt: string;
      };
      const meta = join(ck, d, '_metadata.json');
      return {
        id: b.id,
        started: Date.parse(b.createdAt),
        completed: existsSync(meta) ? Math.floor(statSync(meta).mtimeMs) : undefined,
      };
    })
    .sort((a, b) => a.id - b.id);
}

/** The integer before `label` in a summary line of `stderr` (0 when absent). */
function counter(stderr: string, label: string): number {
  const m = new RegExp(`([\\d,]+) ${label.replace(/[()]/g, '\\$&')}`).exec(stderr);
  return m ? Number(m[1].replace(/,/g, '')) : 0;
}

const INGEST = 'kappa ingest - --ts-field t --checkpoint-dir ck --retain-checkpoints 1000';
const WINDOW = "kappa window --key k --tumbling 1h --agg 'count, sum(v)' --checkpoint-dir ck";

describe('checkpoints: one in flight', () => {
  it('a slow stage makes the source skip ticks; a checkpoint starts only after the previous one completed', async () => {
    const t = tempDir('kappa-ck-inflight-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 120_000, 3000);
      const r = await sh(
        `${paced(60, 100)} | ${BOUND} ${INGEST} --checkpoint-interval 5ms | ${BOUND} ${WINDOW} > /dev/null`,
        { cwd: t.dir, env: STAGE_THREAD },
      );
      assert.equal(r.code, 0, r.stderr);
      const all = checkpoints(join(t.dir, 'ck'));
      // The last one is the end line's final checkpoint, which is taken whatever is in flight.
      const periodic = all.slice(0, -1);
      assert.ok(
        periodic.length >= 2,
        `at least 2 periodic checkpoints (got ${periodic.length})\n${r.stderr}`,
      );
      for (const c of all) assert.ok(c.completed !== undefined, `checkpoint ${c.id} completed`);
      for (let i = 1; i < periodic.length; i++) {
        const prev = periodic[i - 1];
        assert.ok(
          periodic[i].started >= (prev.completed as number),
          `checkpoint ${periodic[i].id} started at ${periodic[i].started}, before ${prev.id} completed at ${prev.completed}: two in flight`,
        );
      }
      const skipped = counter(r.stderr, 'checkpoint ticks skipped (one in flight)');
      assert.ok(skipped > 0, `the source reports skipped ticks\n${r.stderr}`);
      assert.equal(counter(r.stderr, 'checkpoints taken'), all.length, r.stderr);
    } finally {
      t.cleanup();
    }
  });

  it('a checkpoint that never completes (no stage can tell it is last) expires after --checkpoint-timeout and the next one starts', async () => {
    const t = tempDir('kappa-ck-expire-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 30_000, 300);
      // The window's stdout is read by this test through a socket: 'unknown' reader, so the window
      // does not know it is last and nothing completes a checkpoint.
      const r = await sh(
        `${paced(20, 100)} | ${BOUND} ${INGEST} --checkpoint-interval 20ms --checkpoint-timeout 150ms | ${BOUND} ${WINDOW}`,
        { cwd: t.dir, env: CLEAN },
      );
      assert.equal(r.code, 0, r.stderr);
      const all = checkpoints(join(t.dir, 'ck'));
      assert.ok(all.length >= 3, `checkpoints go on after an expired one (got ${all.length})\n${r.stderr}`);
      for (const c of all) assert.equal(c.completed, undefined, `checkpoint ${c.id} is not complete`);
      const periodic = all.slice(0, -1);
      for (let i = 1; i < periodic.length; i++)
        assert.ok(
          periodic[i].started - periodic[i - 1].started >= 150,
          `checkpoint ${periodic[i].id} started ${periodic[i].started - periodic[i - 1].started} ms after ${periodic[i - 1].id}: before the timeout`,
        );
      assert.equal(counter(r.stderr, 'checkpoints expired'), periodic.length - 1, r.stderr);
      assert.match(r.stderr, /checkpoint \d+ did not complete within 150 ms/);
    } finally {
      t.cleanup();
    }
  });

  it('--min-pause-between-checkpoints keeps that gap between a completion and the next start', async () => {
    const t = tempDir('kappa-ck-pause-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 30_000, 100);
      const r = await sh(
        `${paced(40, 100)} | ${BOUND} ${INGEST} --checkpoint-interval 10ms --min-pause-between-checkpoints 250ms | ${BOUND} ${WINDOW} > /dev/null`,
        { cwd: t.dir, env: STAGE_THREAD },
      );
      assert.equal(r.code, 0, r.stderr);
      const periodic = checkpoints(join(t.dir, 'ck')).slice(0, -1);
      assert.ok(
        periodic.length >= 2,
        `at least 2 periodic checkpoints (got ${periodic.length})\n${r.stderr}`,
      );
      for (let i = 1; i < periodic.length; i++) {
        const gap = periodic[i].started - (periodic[i - 1].completed as number);
        assert.ok(
          gap >= 249,
          `checkpoint ${periodic[i].id} started ${gap} ms after ${periodic[i - 1].id} completed`,
        );
      }
    } finally {
      t.cleanup();
    }
  });

  it('the new flags are usage errors where they cannot apply', async () => {
    const t = tempDir('kappa-ck-flags-');
    try {
      writeInput(join(t.dir, 'in.ndjson'), 10, 2);
      for (const [flags, re] of [
        ['--min-pause-between-checkpoints 1s', /needs a checkpoint directory/],
        [
          '--checkpoint-dir ck --checkpoint-interval 1s --checkpoint-timeout 0s',
          /--checkpoint-timeout must be positive/,
        ],
        [
          '--checkpoint-dir ck --checkpoint-interval 1s --min-pause-between-checkpoints soon',
          /--min-pause-between-checkpoints/,
        ],
        [
          '--checkpoint-dir ck --checkpoint-timeout 1m',
          /--checkpoint-timeout applies with --checkpoint-interval/,
        ],
      ] as const) {
        const r = await sh(`kappa ingest in.ndjson --ts-field t ${flags} > /dev/null`, {
          cwd: t.dir,
          env: CLEAN,
        });
        assert.equal(r.code, 2, `${flags}\n${r.stderr}`);
        assert.match(r.stderr, re, flags);
      }
    } finally {
      t.cleanup();
    }
  });
});
