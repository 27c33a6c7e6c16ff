/**
 * Column projection across a shell pipe (issue 14): the argv of ingest's stdout reader -> the
 * fields it reads (`readsAfterIngest`, the proof `kappa run` uses too), the reader's argv from
 * /proc (`kappaArgvOf`), and the `KAPPA_PROJECTION` switch.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { buildProgram } from '../../src/cli.js';
import { projectionOff, readsAfterIngest } from '../../src/commands/run.js';
import { UsageError } from '../../src/errors.js';
import { kappaArgvOf, kappaCommandOf } from '../../src/stream/negotiate.js';

const sorted = (a: string[] | undefined) => (a === undefined ? undefined : [...a].sort());
const reads = async (argv: string[], ingest: { tsField?: string; onError?: string } = { tsField: 'date' }) =>
  sorted(await readsAfterIngest(ingest, [argv], buildProgram));

describe('readsAfterIngest (one reader stage, as a piped ingest sees it)', () => {
  it('a window: ingest ts field, key, aggregated fields', async () => {
    const w = [
      'window',
      '--key',
      'origin',
      '--tumbling',
      '1h',
      '--agg',
      'count, avg(delay), max(delay)',
      '-q',
    ];
    assert.deepEqual(await reads(w), ['date', 'delay', 'origin']);
    assert.deepEqual(await reads([...w.slice(0, 5), '--agg=sum(p.q)']), ['date', 'origin', 'p', 'p.q']);
  });

  it('a transform chain closed by --select or --map: the fields its steps read', async () => {
    assert.deepEqual(
      await reads(['transform', '--filter', 'r.delay > 60', '--select', 'date,origin,delay']),
      ['date', 'delay', 'origin'],
    );
    assert.deepEqual(await reads(['transform', '--map', '({o: r.origin})']), ['date', 'origin']);
  });

  it('undefined where it cannot be proven', async () => {
    // not closed: what follows the transform is invisible to a piped ingest
    assert.equal(await reads(['transform', '--filter', 'r.delay > 60']), undefined);
    assert.equal(
      await reads(['transform', '--filter', 'JSON.stringify(r) > ""', '--select', 'a']),
      undefined,
    );
    assert.equal(
      await reads(['window', '--key', 'k', '--tumbling', '1h', '--late-output', 'l.ndjson']),
      undefined,
    );
    assert.equal(
      await reads(['window', '--key', 'k', '--tumbling', '1h', '--on-error', 'dead-letter=d.ndjson']),
      undefined,
    );
    assert.equal(
      await reads(['window', '--key', 'k', '--tumbling', '1h'], { tsField: 't', onError: 'dead-letter=x' }),
      undefined,
    );
    assert.equal(await reads(['sink', 'out/']), undefined);
    assert.equal(await reads(['window', '--no-such-flag']), undefined);
    assert.equal(await reads(['window', '--agg', 'frobnicate(x)', '--tumbling', '1h']), undefined);
  });
});

describe('kappaArgvOf', () => {
  it('is the argv after the kappa program, undefined for another program', async () => {
    const child = spawn(process.execPath, [
      '-e',
      'setTimeout(() => {}, 5000)',
      '/x/bin/kappa',
      'window',
      '--key',
      'a b',
    ]);
    try {
      await new Promise((r) => child.once('spawn', r));
      // The child may still be between fork and exec for a moment: wait for node's argv.
      let argv: ReturnType<typeof kappaArgvOf> = 'not yet';
      for (let i = 0; i < 100 && (argv === 'not yet' || argv === undefined); i++) {
        argv = kappaArgvOf(String(child.pid));
        if (argv === 'not yet' || argv === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(argv, ['window', '--key', 'a b']);
      assert.equal(kappaCommandOf(String(child.pid)), 'window');
    } finally {
      child.kill();
    }
    assert.equal(kappaArgvOf(String(process.pid)), undefined);
  });
});

describe('projectionOff', () => {
  it('reads KAPPA_PROJECTION: off/0/false switch it off; unset, on/1/true keep it; else a usage error', () => {
    assert.equal(projectionOff({}), false);
    for (const v of ['on', '1', 'true', 'ON']) assert.equal(projectionOff({ KAPPA_PROJECTION: v }), false);
    for (const v of ['off', '0', 'false', 'OFF']) assert.equal(projectionOff({ KAPPA_PROJECTION: v }), true);
    assert.throws(() => projectionOff({ KAPPA_PROJECTION: 'maybe' }), UsageError);
  });
});
