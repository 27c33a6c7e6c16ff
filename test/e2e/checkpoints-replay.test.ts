/**
 * Checkpoints of the other stages (issues 9, 11, 12): `kappa replay` stopped with a savepoint at a
 * watermark (`--stop-at`) and resumed from it reads every archived record exactly once (DuckDB reads
 * the input as the oracle); a two-input join whose right source does not follow the left source's
 * checkpoints refuses them instead of taking wrong ones.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseLines, sh, tempDir } from '../helpers.js';
import { duck } from './flights-data.js';

const CLEAN = { KAPPA_CHECKPOINT_DIR: '', KAPPA_RESUME: '', KAPPA_FROM_SAVEPOINT: '' };
const T0 = Date.UTC(2024, 2, 1);

describe('checkpoints of replay and join', () => {
  const t = tempDir('kappa-ck-replay-');
  const input = join(t.dir, 'in.ndjson');
  const table = join(t.dir, 'archive');
  before(async () => {
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++)
      lines.push(
        JSON.stringify({ i, t: new Date(T0 + i * 86_400 + (i % 7) * 1000).toISOString(), k: `k${i % 5}` }),
      );
    writeFileSync(input, `${lines.join('\n')}\n`);
    const r = await sh(
      `kappa ingest '${input}' --ts-field t | kappa sink '${table}' --partition-by 'dt=%Y-%m-%d'`,
      {
        env: CLEAN,
      },
    );
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => t.cleanup());

  it('replay --stop-at gives a savepoint; --from-savepoint reads the rest: every record once', async () => {
    const ck = join(t.dir, 'ck');
    const replay = `kappa replay '${table}' --from 2024-03-01 --to 2024-03-05 --ts-field t --checkpoint-dir '${ck}'`;
    const sps = join(t.dir, 'savepoints-here');
    const first = await sh(
      `${replay} --stop-at 2024-03-02T12:00:00Z --savepoint-dir '${sps}' | kappa sink -`,
      {
        env: CLEAN,
      },
    );
    assert.equal(first.code, 0, first.stderr);
    const sp = /kappa replay: savepoint (\S+)/.exec(first.stderr)?.[1];
    assert.ok(sp, first.stderr);
    assert.ok(sp.startsWith(`${sps}/savepoint-`), `the savepoint goes to --savepoint-dir: ${sp}`);
    assert.ok(existsSync(join(sp, '_metadata.json')), 'the savepoint is complete');
    const second = await sh(`${replay} --from-savepoint '${sp}' | kappa sink -`, { env: CLEAN });
    assert.equal(second.code, 0, second.stderr);
    const a = parseLines<{ i: number }>(first.stdout).map((r) => r.i);
    const b = parseLines<{ i: number }>(second.stdout).map((r) => r.i);
    assert.ok(a.length > 0 && b.length > 0, `both runs read something (${a.length}, ${b.length})`);
    const want = (await duck(`SELECT i FROM read_json('${input}') WHERE t < '2024-03-05' ORDER BY i`)).map(
      (r) => Number(r.i),
    );
    assert.deepEqual(
      [...a, ...b].sort((x, y) => x - y),
      want,
    );
  });

  it('a two-input join whose right source has no checkpoint dir while the left checkpoints is a usage error, not a wrong checkpoint', async () => {
    const ck = join(t.dir, 'ck-join');
    const r = await sh(
      `kappa ingest '${input}' --ts-field t --checkpoint-dir '${ck}' | kappa join --right <(kappa ingest '${input}' --ts-field t) --on k --within 1h | kappa sink - > /dev/null; echo "join exit \${PIPESTATUS[1]}"`,
      { env: CLEAN },
    );
    assert.match(r.stdout, /join exit 2/, r.stderr);
    assert.match(r.stderr, /the left input checkpoints .* but --right \S+ does not follow its checkpoints/);
    assert.match(r.stderr, /KAPPA_CHECKPOINT_DIR/);
  });
});
