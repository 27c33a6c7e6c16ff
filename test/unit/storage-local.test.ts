/**
 * The local store's per-file system calls (issue 14, the table sink's cost per part file): one
 * mkdir per directory per process, one write per small pending file, no unlink after a successful
 * rename; and what keeps that safe: a directory removed meanwhile is created again, the bytes reach
 * the file at `finish`, put-if-absent still refuses an existing target.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { COALESCE_BYTES, LocalStore } from '../../src/storage/local.js';
import { tempDir } from '../helpers.js';

type FsPromises = typeof import('node:fs/promises');
const fsp = createRequire(import.meta.url)('node:fs/promises') as FsPromises;

/**
 * Counts the calls of `names` of node:fs/promises while `body` runs (the builtin's ESM exports
 * follow its CommonJS object after `syncBuiltinESMExports`, so the store's named imports see it).
 */
async function counting(
  names: ('mkdir' | 'unlink' | 'open')[],
  body: () => Promise<void>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const saved = new Map<string, unknown>();
  const table = fsp as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of names) {
    counts[name] = 0;
    const orig = table[name];
    saved.set(name, orig);
    table[name] = (...a: unknown[]) => {
      counts[name]++;
      return orig(...a);
    };
  }
  syncBuiltinESMExports();
  try {
    await body();
  } finally {
    for (const [name, orig] of saved) table[name] = orig as (...a: unknown[]) => unknown;
    syncBuiltinESMExports();
  }
  return counts;
}

const tmp = tempDir('kappa-local-');
after(() => tmp.cleanup());

describe('local store system calls', () => {
  it('creates each directory once per process, for pending files and puts alike', async () => {
    const store = new LocalStore();
    const root = join(tmp.dir, 'a');
    const counts = await counting(['mkdir'], async () => {
      for (let i = 0; i < 5; i++) {
        const p = await store.create(join(root, 'dt=1', `part-${i}.parquet`));
        await p.write(new Uint8Array([i]));
        await p.commit();
        await store.put(join(root, 'dt=1', `_SUCCESS${i}`), '');
      }
    });
    assert.equal(counts.mkdir, 1);
    assert.deepEqual(readdirSync(join(root, 'dt=1')).sort(), [
      '_SUCCESS0',
      '_SUCCESS1',
      '_SUCCESS2',
      '_SUCCESS3',
      '_SUCCESS4',
      'part-0.parquet',
      'part-1.parquet',
      'part-2.parquet',
      'part-3.parquet',
      'part-4.parquet',
    ]);
  });

  it('creates a directory again when it was removed after its first use', async () => {
    const store = new LocalStore();
    const dir = join(tmp.dir, 'b', 'dt=1');
    await store.put(join(dir, 'x'), 'one');
    rmSync(join(tmp.dir, 'b'), { recursive: true });
    await store.put(join(dir, 'y'), 'two');
    assert.equal(readFileSync(join(dir, 'y'), 'utf8'), 'two');
    rmSync(join(tmp.dir, 'b'), { recursive: true });
    const p = await store.create(join(dir, 'z'));
    await p.write(Buffer.from('three'));
    await p.commit();
    assert.equal(readFileSync(join(dir, 'z'), 'utf8'), 'three');
  });

  it('does not unlink the temporary name of a put that renamed it; put-if-absent still refuses', async () => {
    const store = new LocalStore();
    const dir = join(tmp.dir, 'c');
    const counts = await counting(['unlink'], async () => {
      assert.equal(await store.put(join(dir, 'f'), 'a'), true);
      assert.equal(await store.put(join(dir, 'f'), 'b'), true);
    });
    assert.equal(counts.unlink, 0);
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'b');
    assert.equal(await store.put(join(dir, 'f'), 'c', { ifAbsent: true }), false);
    assert.equal(await store.put(join(dir, 'g'), 'd', { ifAbsent: true }), true);
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'b');
    assert.equal(readFileSync(join(dir, 'g'), 'utf8'), 'd');
    assert.deepEqual(readdirSync(dir).sort(), ['f', 'g']);
  });

  it('gathers small chunks and writes them at finish; large ones as they come', async () => {
    const store = new LocalStore();
    const target = join(tmp.dir, 'd', 'part.parquet');
    const p = await store.create(target);
    const tmpName = readdirSync(join(tmp.dir, 'd'))[0];
    await p.write(Buffer.from('PAR1'));
    await p.write(Buffer.from('body'));
    await new Promise((r) => setTimeout(r, 20));
    // Nothing written yet: both chunks wait for more or for finish.
    assert.equal(readFileSync(join(tmp.dir, 'd', tmpName)).length, 0);
    const big = Buffer.alloc(COALESCE_BYTES, 7);
    await p.write(big);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(readFileSync(join(tmp.dir, 'd', tmpName)).length, 8 + COALESCE_BYTES);
    await p.write(Buffer.from('PAR1'));
    assert.equal(p.bytes, 12 + COALESCE_BYTES);
    await p.commit();
    const got = readFileSync(target);
    assert.equal(got.length, 12 + COALESCE_BYTES);
    assert.equal(got.subarray(0, 8).toString(), 'PAR1body');
    assert.equal(got.subarray(got.length - 4).toString(), 'PAR1');
    assert.equal(existsSync(join(tmp.dir, 'd', tmpName)), false);
  });

  it('an aborted file leaves nothing, gathered chunks included', async () => {
    const store = new LocalStore();
    const p = await store.create(join(tmp.dir, 'e', 'part.parquet'));
    await p.write(Buffer.from('PAR1'));
    await p.abort();
    assert.deepEqual(readdirSync(join(tmp.dir, 'e')), []);
  });
});

describe('local store empty puts', () => {
  it('creates an empty file at its name: two calls (open, close), put-if-absent kept', async () => {
    const store = new LocalStore();
    const dir = join(tmp.dir, 'f');
    await store.put(join(dir, 'seed'), 'x');
    const counts = await counting(['open'], async () => {
      assert.equal(await store.put(join(dir, '_SUCCESS'), ''), true);
      assert.equal(await store.put(join(dir, '_SUCCESS'), new Uint8Array(0)), true);
    });
    assert.equal(counts.open, 2);
    assert.deepEqual(readdirSync(dir).sort(), ['_SUCCESS', 'seed']);
    assert.equal(readFileSync(join(dir, '_SUCCESS')).length, 0);
    assert.equal(await store.put(join(dir, '_SUCCESS'), '', { ifAbsent: true }), false);
    assert.equal(await store.put(join(dir, 'seed'), '', { ifAbsent: true }), false);
    assert.equal(readFileSync(join(dir, 'seed'), 'utf8'), 'x');
    assert.equal(await store.put(join(dir, 'new'), '', { ifAbsent: true }), true);
    // Replacing a non-empty file with an empty one truncates it.
    assert.equal(await store.put(join(dir, 'seed'), ''), true);
    assert.equal(readFileSync(join(dir, 'seed')).length, 0);
  });
});
