/**
 * Test helpers: run the real `kappa` binary (compiled) as a user would, alone or in a shell pipeline.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAX_KEY_GROUPS, KEY_GROUP_HASH } from '../src/state/keygroup.js';
import {
  DEFAULT_KEY_GROUPS_PER_FILE,
  METADATA_FILE,
  SAVEPOINT_FORMAT,
  SAVEPOINT_FORMAT_VERSION,
  type SavepointMetadata,
} from '../src/state/savepoint/format.js';

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
    // A command that does not read its stdin may exit before we finish writing it: EPIPE then is
    // not a failure of the test.
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
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

/**
 * Writes a complete, empty snapshot (a `_metadata.json` with no sources and no operators) at `dir`,
 * so that a hand-written stream whose header says "restored from checkpoint `id`" names a real one
 * (the stages open the snapshot they restore from).
 */
export function writeEmptySnapshot(dir: string, pipeline: string, id: number): void {
  mkdirSync(dir, { recursive: true });
  const meta: SavepointMetadata = {
    format: SAVEPOINT_FORMAT,
    formatVersion: SAVEPOINT_FORMAT_VERSION,
    type: 'checkpoint',
    checkpointId: id,
    createdAt: new Date().toISOString(),
    pipeline,
    maxKeyGroups: DEFAULT_MAX_KEY_GROUPS,
    keyGroupHash: KEY_GROUP_HASH,
    keyGroupsPerFile: DEFAULT_KEY_GROUPS_PER_FILE,
    sources: [],
    operators: [],
  };
  writeFileSync(join(dir, METADATA_FILE), `${JSON.stringify(meta)}\n`);
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): a seeded pseudo-random sequence in [0, 1), so a
 * property test's failure replays from its seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
