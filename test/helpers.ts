/**
 * Test helpers: run the real `kappa` binary (compiled) as a user would, alone or in a shell pipeline.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/…). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const KAPPA = join(ROOT, 'bin', 'kappa');
export const FLIGHTS = join(ROOT, 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
export const VEGA = join(ROOT, 'node_modules', 'vega-datasets', 'data');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bash -o pipefail -c SCRIPT` with `kappa` on PATH; resolves with exit code and output. */
export function sh(
  script: string,
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolveP, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolveP({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    child.stdin.end(opts.input ?? '');
  });
}

/** A fresh temp directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'kappa-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Parses NDJSON text into values. */
export function parseLines<T = unknown>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/** Every file below `dir` as sorted relative paths, hidden ones included ([] when `dir` is missing). */
export function walkFiles(dir: string, rel = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walkFiles(join(dir, e.name), r));
    else out.push(r);
  }
  return out.sort();
}
