import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseLines, sh, tempDir } from '../helpers.js';

// Issue 8 item 15: a dead-letter file among the inputs loops forever; an unwritable one fails late.
describe('--on-error dead-letter=PATH is checked at start', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const logs = join(t.dir, 'logs');
  mkdirSync(logs);
  writeFileSync(join(logs, 'a.ndjson'), '{"n":1}\nnot json\n{"n":2}\n');

  it('refuses a dead-letter file that an input glob matches, before and after it exists', async () => {
    const first = await sh(
      `timeout 20 kappa ingest 'logs/*.ndjson' -q --on-error dead-letter=logs/bad.ndjson`,
      {
        cwd: t.dir,
      },
    );
    assert.equal(first.code, 2, first.stderr);
    assert.match(
      first.stderr,
      /dead-letter=logs\/bad\.ndjson: the dead-letter file is an input \('logs\/\*\.ndjson'/,
    );
    assert.equal(existsSync(join(logs, 'bad.ndjson')), false, 'the check leaves no file behind');
    // The second run of the old behaviour: the file exists (from a run that wrote it) and grows forever.
    writeFileSync(join(logs, 'bad.ndjson'), 'not json\n');
    const second = await sh(
      `timeout 20 kappa ingest 'logs/*.ndjson' -q --on-error dead-letter=logs/bad.ndjson > /dev/null`,
      { cwd: t.dir },
    );
    assert.equal(second.code, 2, second.stderr);
    assert.equal(readFileSync(join(logs, 'bad.ndjson'), 'utf8'), 'not json\n');
  });

  it('refuses the input itself and a file inside an input directory', async () => {
    const self = await sh(
      `timeout 20 kappa ingest logs/a.ndjson -q --on-error dead-letter=./logs/../logs/a.ndjson`,
      {
        cwd: t.dir,
      },
    );
    assert.equal(self.code, 2, self.stderr);
    assert.match(self.stderr, /the dead-letter file is an input \('logs\/a\.ndjson' includes it\)/);
    assert.equal(readFileSync(join(logs, 'a.ndjson'), 'utf8'), '{"n":1}\nnot json\n{"n":2}\n');
    const dir = await sh(
      `timeout 20 kappa ingest logs -q --on-error dead-letter=${join(logs, 'dl.ndjson')}`,
      {
        cwd: t.dir,
      },
    );
    assert.equal(dir.code, 2, dir.stderr);
    assert.match(dir.stderr, /\('logs' includes it\)/);
  });

  it('an unwritable dead-letter path is a usage error at start, for every command', async () => {
    const missing = await sh(
      `kappa ingest - -q --on-error dead-letter=${join(t.dir, 'no', 'such', 'dir.ndjson')}`,
      {
        input: '{"n":1}\nnot json\n',
      },
    );
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /cannot write .*no\/such\/dir\.ndjson/);
    // No bad record at all: still refused, before reading anything.
    const isDir = await sh(
      `kappa ingest - -q | kappa transform -q --filter true --on-error dead-letter=${logs}`,
      {
        input: '{"n":1}\n',
      },
    );
    assert.equal(isDir.code, 2, isDir.stderr);
    assert.match(
      isDir.stderr,
      /kappa transform: error: --on-error dead-letter=.*logs: cannot write .*: it is a directory/,
    );
  });

  it('writes bad records to a dead-letter file outside the inputs, and creates none when nothing is bad', async () => {
    const dl = join(t.dir, 'bad.ndjson');
    const r = await sh(`kappa ingest 'logs/a.ndjson' -q --on-error dead-letter=${dl}`, { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      parseLines<{ value: { n: number } }>(r.stdout)
        .filter((x) => typeof x === 'object' && x !== null && 'value' in x)
        .map((x) => x.value.n),
      [1, 2],
    );
    assert.equal(readFileSync(dl, 'utf8'), 'not json\n');
    const clean = join(t.dir, 'clean.ndjson');
    const ok = await sh(`kappa ingest - -q --on-error dead-letter=${clean} > /dev/null`, {
      input: '{"n":1}\n',
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(existsSync(clean), false);
  });
});
