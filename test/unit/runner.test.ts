import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers.js';

// Issue 8 item 36: tests that do not run are counted as skipped, and no test skips itself waiting
// for a merge that already happened.
describe('test runner hygiene', () => {
  it('with KAPPA_SKIP_SERVERS=1 every integration test is counted as skipped', () => {
    const dir = join(ROOT, 'dist', 'test', 'integration');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.test.js'))
      .map((f) => join(dir, f));
    const declared = files
      .map((f) => readFileSync(f, 'utf8').match(/^\s*it\(/gm)?.length ?? 0)
      .reduce((a, b) => a + b, 0);
    assert.ok(declared > 10, `integration tests found: ${declared}`);
    // A nested runner must not see the outer one's NODE_TEST_CONTEXT (it would report to it).
    const { NODE_TEST_CONTEXT: _outer, ...env } = process.env;
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files], {
      cwd: ROOT,
      env: { ...env, KAPPA_SKIP_SERVERS: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const total = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(r.stdout)?.[1]);
    // At least one per `it(` line (a test declared in a loop counts once here, more than once there).
    assert.ok(total('skipped') >= declared, `skipped total ${total('skipped')} >= ${declared} declared`);
    assert.equal(total('pass'), 0);
    assert.equal(total('fail'), 0);
  });

  it('no test skips itself until another branch is merged', () => {
    const stale = new RegExp(['runs once', 'merged|after merge\\)|not on this', 'branch yet'].join(' '));
    for (const sub of ['unit', 'e2e', 'integration']) {
      const dir = join(ROOT, 'test', sub);
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts')))
        assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), stale, `${sub}/${f}`);
    }
  });
});
