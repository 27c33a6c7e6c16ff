/**
 * The Parquet decode thread (decode-worker.ts) and signals: `kappa ingest` of the 3M-flight file
 * (11 row groups, so the thread is used) interrupted by SIGINT / SIGTERM while the thread decodes
 * ahead ends the stage as without it: exit 130 / 143, no end-of-stream line, within seconds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { FLIGHTS, KAPPA, ROOT } from '../helpers.js';

async function interrupted(
  signal: 'SIGINT' | 'SIGTERM',
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(KAPPA, ['ingest', FLIGHTS, '--ts-field', 'date', '--stream-format', 'ndjson'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KAPPA_PARQUET_WORKER: '1' },
  });
  let out = '';
  let err = '';
  let records = 0;
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    const s = d.toString();
    out = (out + s).slice(-4096);
    records += s.split('"ts":').length - 1;
    // After the first row group's records, while the thread decodes the next ones.
    if (!sent && records > 1000) {
      sent = true;
      child.kill(signal);
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  assert.ok(sent, `the signal was sent (stderr: ${err})`);
  return { code, out, err };
}

describe('Parquet decode thread and signals', () => {
  for (const [signal, exit] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} ends the stage with exit ${exit} and no end line`, async () => {
      const r = await interrupted(signal);
      assert.equal(r.code, exit, r.err);
      assert.doesNotMatch(r.out, /"end":true/);
      assert.match(r.err, new RegExp(`interrupted by ${signal}`));
    });
  }
});
