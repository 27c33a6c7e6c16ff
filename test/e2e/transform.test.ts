import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseLines, sh, tempDir } from '../helpers.js';
import { duck, ingestFlights } from './flights-data.js';

describe('kappa transform on the flights (acceptance)', () => {
  const t = tempDir();
  let ingest = '';
  before(async () => {
    ingest = await ingestFlights(t.dir);
  });
  after(() => t.cleanup());

  it('filter / map / select equal DuckDB', async () => {
    const r = await sh(
      `${ingest} | kappa transform -q --filter 'r.delay > 60 && r.origin === "SFO"' ` +
        `--map '({...r, hours: r.delay / 60})' --select origin,destination,hours,distance | kappa sink - -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = parseLines<Record<string, unknown>>(r.stdout).map((x) => JSON.stringify(x));
    const want = (
      await duck(`SELECT origin, destination, delay / 60 AS hours, distance FROM flights
        WHERE delay > 60 AND origin = 'SFO'`)
    ).map((x) => JSON.stringify({ ...x, hours: Number(x.hours), distance: Number(x.distance) }));
    assert.ok(want.length > 1000);
    assert.deepEqual(got.sort(), want.sort());
  });

  it('handles a throwing expression by --on-error', async () => {
    const input = '{"a":{"b":1}}\n{"a":null}\n{"a":{"b":2}}\n';
    const fail = await sh(`kappa ingest - -q | kappa transform --map 'r.a.b * 2' > /dev/null`, {
      input,
    });
    assert.equal(fail.code, 3);
    assert.match(fail.stderr, /bad record at stdin line 3: --map 'r\.a\.b \* 2' threw/);
    const skip = await sh(
      `kappa ingest - -q | kappa transform --map 'r.a.b * 2' --on-error skip | kappa sink - -q`,
      {
        input,
      },
    );
    assert.equal(skip.code, 0, skip.stderr);
    assert.equal(skip.stdout, '2\n4\n');
    assert.match(skip.stderr, /3 in, 2 out, 1 bad/);
    const dl = `${t.dir}/bad.ndjson`;
    const dead = await sh(
      `kappa ingest - -q | kappa transform -q --map 'r.a.b * 2' --on-error dead-letter=${dl} | kappa sink - -q`,
      { input },
    );
    assert.equal(dead.code, 0, dead.stderr);
    assert.deepEqual(
      parseLines<{ value: unknown }>(readFileSync(dl, 'utf8')).map((x) => x.value),
      [{ a: null }],
    );
  });

  it('expressions see no process and cannot change records (issue 8 item 31)', async () => {
    const input = '{"delay":1}\n{"delay":2}\n';
    const assign = await sh(`kappa ingest - -q | kappa transform -q --filter 'r.delay = 5'`, {
      input,
    });
    assert.equal(assign.code, 2, assign.stderr);
    assert.match(assign.stderr, /--filter 'r\.delay = 5' tried to change the record/);
    assert.doesNotMatch(assign.stdout, /delay/);
    const secret = await sh(
      `KAPPA_SECRET=hunter2 kappa ingest - -q | KAPPA_SECRET=hunter2 kappa transform -q --map '({s: process.env.KAPPA_SECRET})'`,
      { input },
    );
    assert.equal(secret.code, 2, secret.stderr);
    assert.doesNotMatch(secret.stdout, /hunter2/);
    assert.match(secret.stderr, /process is not defined/);
    const spawn = await sh(
      `kappa ingest - -q | kappa transform -q --map "r.constructor.constructor('return process')().getBuiltinModule('child_process').execSync('echo pwned').toString()"`,
      { input },
    );
    assert.notEqual(spawn.code, 0);
    assert.doesNotMatch(spawn.stdout, /pwned/);
    const asyncMap = await sh(`kappa ingest - -q | kappa transform -q --map 'import("node:fs")'`, {
      input,
    });
    assert.equal(asyncMap.code, 2, asyncMap.stderr);
    assert.match(asyncMap.stderr, /returned a Promise/);
  });
});
