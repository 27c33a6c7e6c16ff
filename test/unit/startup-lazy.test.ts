/**
 * Start-up cost (issue 14): a stage loads only the modules its command, connector and format need.
 * Checks (1) which packages a plain `kappa ingest` of NDJSON and a `kappa window` load (a resolve
 * hook records every module of the real binary), (2) that the lazy stand-ins (the Parquet reader
 * in formats/readers.ts, the file and table sinks in connectors/index.ts) agree with the real
 * objects they stand for, and (3) that `--tz` validation without a DateTime accepts and rejects
 * the same zones as luxon's `DateTime#setZone`.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { buildProgram, programNeeds } from '../../src/cli.js';
import { SINK_TARGETS } from '../../src/connectors/index.js';
import { singleFileSink, tableSink } from '../../src/connectors/table.js';
import { parquetReader } from '../../src/formats/parquet/read.js';
import { FORMAT_READERS } from '../../src/formats/readers.js';
import { fmt } from '../../src/stream/progress.js';
import { checkZone } from '../../src/time/timestamp.js';
import { KAPPA, sh, tempDir } from '../helpers.js';

const tmp = tempDir('kappa-startup-');
after(tmp.cleanup);

/** Module URLs that `kappa ARGS` imports, recorded by a module resolve hook. */
async function modulesLoaded(args: string, input = ''): Promise<string[]> {
  const hooks = join(tmp.dir, 'hooks.mjs');
  const reg = join(tmp.dir, 'register.mjs');
  const log = join(tmp.dir, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`,
  );
  writeFileSync(
    reg,
    `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
  );
  const r = await sh(`node --import ${reg} ${KAPPA} ${args}; cat ${log}`, { input });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((u) => /^(file|node):/.test(u));
}

/** Packages (node_modules/NAME) that `kappa ARGS` imports, recorded by a module resolve hook. */
async function packagesLoaded(args: string, input = ''): Promise<Set<string>> {
  const names = new Set<string>();
  for (const u of await modulesLoaded(args, input)) {
    const m = u.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) names.add(m[1]);
  }
  return names;
}

const HEAVY = ['hyparquet', 'hyparquet-writer', 'hyparquet-compressors', '@bokuweb/zstd-wasm', 'tinyglobby'];

describe('start-up: modules loaded per command', { timeout: 60_000 }, () => {
  it('kappa ingest of NDJSON loads no Parquet, zstd or glob package', async () => {
    const loaded = await packagesLoaded('ingest - --format ndjson', '{"a":1}\n');
    assert.ok(loaded.has('commander'), `the hook saw the run: ${[...loaded].join(', ')}`);
    for (const p of [...HEAVY, 'fzstd', 'murmurhash', 'lossless-json'])
      assert.ok(!loaded.has(p), `${p} loaded by kappa ingest: ${[...loaded].join(', ')}`);
  });

  it('kappa transform without --dedupe loads no LevelDB binding; no stage without a bar loads cli-progress', async () => {
    const loaded = await packagesLoaded('transform --select a', '{"kappa":1}\n{"end":true}\n');
    assert.ok(loaded.has('commander'));
    for (const p of [...HEAVY, 'classic-level', 'cli-progress', 'murmurhash', 'lossless-json'])
      assert.ok(!loaded.has(p), `${p} loaded by kappa transform: ${[...loaded].join(', ')}`);
  });

  it('kappa window loads no Parquet or zstd package, no t-digest or hash without a quantile or spill, and no LevelDB binding while its state fits the cache', async () => {
    const input = '{"kappa":1}\n{"ts":1,"key":"a","value":{}}\n{"ts":2,"key":"b","value":{}}\n{"end":true}\n';
    const loaded = await packagesLoaded('window --tumbling 1h --agg count', input);
    assert.ok(loaded.has('commander'));
    for (const p of [...HEAVY, 'classic-level', 'tdigest', 'murmurhash', 'lossless-json'])
      assert.ok(!loaded.has(p), `${p} loaded by kappa window: ${[...loaded].join(', ')}`);
    // State beyond the cache (and the 1024 queued writes of a flush) spills: then the binding
    // loads, and the run still succeeds.
    let many = '{"kappa":1}\n';
    for (let i = 0; i < 2000; i++) many += `{"ts":1,"key":"k${i}","value":{}}\n`;
    const spilled = await packagesLoaded(
      'window --tumbling 1h --agg count --state-cache 1',
      `${many}{"end":true}\n`,
    );
    assert.ok(spilled.has('classic-level'), [...spilled].join(', '));
  });

  it('kappa sink to a table loads no Parquet reader, hyparquet-compressors or fzstd', async () => {
    const dir = join(tmp.dir, 'table');
    const urls = await modulesLoaded(
      `sink ${dir} --partition-by 'dt=%Y-%m-%d'`,
      '{"kappa":1}\n{"ts":1,"key":null,"value":{"a":1}}\n{"end":true}\n',
    );
    assert.ok(
      urls.some((u) => u.includes('/node_modules/hyparquet-writer/')),
      'the hook saw the writer',
    );
    for (const bad of [
      '/src/formats/parquet/read.js',
      '/node_modules/hyparquet-compressors/',
      '/node_modules/fzstd/',
    ])
      assert.ok(!urls.some((u) => u.includes(bad)), `${bad} loaded by kappa sink`);
  });

  it('kappa ingest of a snappy Parquet file loads no hyparquet-compressors', async () => {
    const file = join(tmp.dir, 'x.parquet');
    const w = await sh(`${KAPPA} sink ${file} --compression snappy`, {
      input: '{"kappa":1}\n{"ts":1,"key":null,"value":{"a":1}}\n{"end":true}\n',
    });
    assert.equal(w.code, 0, w.stderr);
    const loaded = await packagesLoaded(`ingest ${file}`);
    assert.ok(loaded.has('hyparquet'), [...loaded].join(', '));
    assert.ok(!loaded.has('hyparquet-compressors'), [...loaded].join(', '));
  });
});

describe('start-up: kappa --version and --help load no command', { timeout: 60_000 }, () => {
  for (const args of ['--version', '-V', '--help', 'help', '']) {
    it(`kappa ${args} loads no command module and no package but commander`, async () => {
      const loaded = await modulesLoaded(args);
      assert.ok(
        loaded.some((u) => u.endsWith('/src/cli.js')),
        `the hook saw the run: ${loaded.join(', ')}`,
      );
      const commands = loaded.filter((u) => u.includes('/src/commands/'));
      assert.deepEqual(commands, [], `command modules loaded by kappa ${args}`);
      assert.deepEqual([...(await packagesLoaded(args))], ['commander']);
    });
  }
});

describe('start-up: lazy stand-ins agree with the real objects', () => {
  it('kappa --help without the commands prints what it prints with them', async () => {
    const stubs = await buildProgram('stubs');
    const real = await buildProgram();
    const names = (p: typeof real) => p.commands.map((c) => c.name());
    assert.deepEqual(names(stubs), names(real));
    assert.ok(names(real).includes('window'));
    assert.equal(stubs.helpInformation(), real.helpInformation());
    assert.deepEqual(
      stubs.commands.map((c) => c.description()),
      real.commands.map((c) => c.description()),
    );
  });

  it('programNeeds: no command for --version, stand-ins for the top-level help, else the command', () => {
    const n = (...a: string[]) => programNeeds(['node', 'kappa', ...a]);
    assert.equal(n('--version'), 'none');
    assert.equal(n('-V'), 'none');
    for (const a of [[], ['--help'], ['-h'], ['help']]) assert.equal(n(...a), 'stubs', a.join(' '));
    assert.equal(n('help', 'window'), 'help');
    assert.equal(n('window', '--help'), 'window');
    assert.equal(n('-h', 'window'), '-h');
  });

  it('the Parquet reader stand-in has parquetReader’s name and extensions', () => {
    const lazy = FORMAT_READERS.find((r) => r.name === 'parquet');
    assert.ok(lazy);
    assert.notEqual(lazy, parquetReader, 'the registry holds the stand-in, not the real reader');
    assert.deepEqual([lazy.name, lazy.extensions], [parquetReader.name, parquetReader.extensions]);
  });

  it('the file and table sink stand-ins have the real names, options, claims and committedEpoch', () => {
    const targets = [
      'out.parquet',
      'out.ndjson',
      'x/out.JSONL',
      'out.csv',
      'dir',
      'dir/',
      's3://b/t',
      's3://b/f.csv',
      '-',
    ];
    for (const real of [singleFileSink, tableSink]) {
      const lazy = SINK_TARGETS.find((t) => t.name === real.name);
      assert.ok(lazy, real.name);
      assert.notEqual(lazy, real);
      assert.deepEqual(lazy.options, real.options, real.name);
      assert.equal(lazy.committedEpoch === undefined, real.committedEpoch === undefined, real.name);
      for (const t of targets)
        assert.equal(lazy.claims(t, {}), real.claims(t, {}), `${real.name} claims ${t}`);
    }
  });
});

describe('start-up: --tz check without a DateTime', () => {
  it('accepts and rejects what DateTime#setZone does', () => {
    for (const tz of [
      'UTC',
      'utc',
      'GMT',
      'Europe/Berlin',
      'America/New_York',
      'UTC+3',
      'Etc/GMT-2',
      'Mars/Base',
      '',
      'local',
    ]) {
      const luxonOk = DateTime.now().setZone(tz).isValid;
      let ours = true;
      try {
        checkZone(tz);
      } catch {
        ours = false;
      }
      assert.equal(ours, luxonOk, `zone '${tz}'`);
    }
  });
});

describe('start-up: summary numbers without Intl', () => {
  it('groups integers as toLocaleString(en-US) does, and leaves other numbers to it', () => {
    const xs = [
      0,
      7,
      999,
      1000,
      -1000,
      12345,
      -999999,
      3_000_000,
      1234567890123,
      Number.MAX_SAFE_INTEGER,
      -0,
      0.5,
      1234.5678,
      1e21,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    for (const x of xs) assert.equal(fmt(x), x.toLocaleString('en-US'), String(x));
  });
});
