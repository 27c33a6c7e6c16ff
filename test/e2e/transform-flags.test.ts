/**
 * Every flag of `kappa transform`, each at the CLI level on small hand-computed data: each test
 * fails when its flag is ignored (issue 8 item 23).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { sh, tempDir } from '../helpers.js';

type In = { ts: number; key?: unknown; v?: unknown } | { wm: number } | { raw: string };
type Line = { ts?: number; key?: unknown; value?: Record<string, unknown>; watermark?: number; end?: true };

/** A kappa stream (header, records, watermarks, raw lines, end line unless `cut`). */
function stream(events: In[], cut = false): string {
  const out = ['{"kappa":1}'];
  for (const e of events)
    out.push(
      'wm' in e
        ? JSON.stringify({ watermark: e.wm })
        : 'raw' in e
          ? e.raw
          : JSON.stringify({ ts: e.ts, key: e.key ?? null, value: e.v ?? {} }),
    );
  if (!cut) out.push('{"end":true}');
  return `${out.join('\n')}\n`;
}

const lines = (out: string): Line[] =>
  out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Line);
const records = (out: string) => lines(out).filter((l) => l.ts !== undefined);

async function tr(flags: string, events: In[], opts: { cut?: boolean; quiet?: boolean } = {}) {
  const r = await sh(`kappa transform ${flags}${opts.quiet === false ? '' : ' -q'}`, {
    input: stream(events, opts.cut),
  });
  return { ...r, recs: records(r.stdout) };
}

const three: In[] = [
  { ts: 1, v: { a: 1, b: 'x', c: true } },
  { ts: 2, v: { a: 2, b: 'y', c: false } },
  { ts: 3, v: { a: 3, b: 'z', c: true } },
];

describe('kappa transform flags (each fails when ignored)', () => {
  const t = tempDir('kappa-transform-flags-');
  after(() => t.cleanup());

  it('--filter: keeps records for which EXPR is truthy', async () => {
    const r = await tr("--filter 'r.a >= 2'", three);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.a),
      [2, 3],
    );
  });

  it("--map: replaces the value by EXPR's result", async () => {
    const r = await tr("--map '({s: r.a * 10})'", three);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value),
      [{ s: 10 }, { s: 20 }, { s: 30 }],
    );
  });

  it('--flat-map: one record per array element, with the time and key of its parent', async () => {
    const r = await tr("--flat-map '[...Array(r.a)].map((_, i) => ({i}))'", three.slice(0, 2));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => [x.ts, x.value]),
      [
        [1, { i: 0 }],
        [2, { i: 0 }],
        [2, { i: 1 }],
      ],
    );
  });

  it('--select: keeps only these fields, in this order', async () => {
    const r = await tr('--select c,a', three.slice(0, 1));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => Object.entries(x.value ?? {})),
      [
        [
          ['c', true],
          ['a', 1],
        ],
      ],
    );
  });

  it('--drop: removes these fields', async () => {
    const r = await tr('--drop a,c', three.slice(0, 1));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value),
      [{ b: 'x' }],
    );
  });

  it('--rename: renames fields old=new', async () => {
    const r = await tr('--rename a=alpha,b=beta', three.slice(0, 1));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value),
      [{ alpha: 1, beta: 'x', c: true }],
    );
  });

  it("--key: sets the record key to EXPR's result", async () => {
    const r = await tr("--key 'r.b + r.a'", three);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.key),
      ['x1', 'y2', 'z3'],
    );
  });

  it('--ts: re-assigns event time; the upstream watermark becomes max new ts - 1', async () => {
    const r = await tr("--ts 'ts + r.a * 1000'", [...three, { wm: 3 }]);
    assert.equal(r.code, 0, r.stderr);
    const ls = lines(r.stdout);
    assert.deepEqual(
      ls.filter((l) => l.ts !== undefined).map((l) => l.ts),
      [1001, 2002, 3003],
    );
    assert.deepEqual(
      ls.filter((l) => l.watermark !== undefined).map((l) => l.watermark),
      [3002],
    );
  });

  it('--max-out-of-orderness: after --ts, the generated watermark lags by the bound', async () => {
    const r = await tr("--ts 'ts + r.a * 1000' --max-out-of-orderness 1s", [...three, { wm: 3 }]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      lines(r.stdout)
        .filter((l) => l.watermark !== undefined)
        .map((l) => l.watermark),
      [3003 - 1000 - 1],
    );
  });

  // id a at 0 s, 5 s, 20 s: --within 10s keeps 0 s and 20 s (5 s is 5 s after the kept 0 s).
  const dups: In[] = [
    { ts: 0, v: { id: 'a', n: 1 } },
    { ts: 5000, v: { id: 'a', n: 2 } },
    { ts: 5000, v: { id: 'b', n: 3 } },
    { ts: 20000, v: { id: 'a', n: 4 } },
  ];

  it('--dedupe EXPR --within DUR: drops a record whose EXPR was seen within DUR', async () => {
    const r = await tr("--dedupe 'r.id' --within 10s", dups);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.n),
      [1, 3, 4],
    );
  });

  it('--within: the horizon decides what counts as a duplicate', async () => {
    let r = await tr("--dedupe 'r.id' --within 1s", dups);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.n),
      [1, 2, 3, 4],
      '1 s: 5 s apart is not a duplicate',
    );
    r = await tr("--dedupe 'r.id' --within 1m", dups);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.n),
      [1, 3],
      '1 min: every later a is a duplicate',
    );
  });

  it('--module FILE: its named functions are usable in expressions (repeatable)', async () => {
    const m1 = join(t.dir, 'm1.mjs');
    const m2 = join(t.dir, 'm2.mjs');
    writeFileSync(m1, 'export function triple(x) { return 3 * x; }\n');
    writeFileSync(m2, 'export const shout = (s) => s.toUpperCase();\n');
    const r = await tr(`--module '${m1}' --module '${m2}' --map '({t: triple(r.a), s: shout(r.b)})'`, three);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value),
      [
        { t: 3, s: 'X' },
        { t: 6, s: 'Y' },
        { t: 9, s: 'Z' },
      ],
    );
  });

  const manyKeys = (n: number): In[] => Array.from({ length: n }, (_, i) => ({ ts: 1, v: { id: `k${i}` } }));

  /** LevelDB keys in `dir` after a dedupe run over a cut-off stream (the state stays on failure). */
  async function spilled(dir: string, flags: string): Promise<number> {
    const r = await tr(`--dedupe 'r.id' --within 1h --state '${dir}' ${flags}`, manyKeys(3000), {
      cut: true,
    });
    assert.equal(r.code, 1, r.stderr);
    const db = new ClassicLevel<string, string>(dir);
    let n = 0;
    for await (const _ of db.keys()) n++;
    await db.close();
    return n;
  }

  it('--state DIR: the dedupe state is a LevelDB database there', async () => {
    const dir = join(t.dir, 'state-a');
    const r = await tr(`--dedupe 'r.id' --within 10s --state '${dir}'`, dups);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'CURRENT')), 'a LevelDB database in --state');
  });

  it('--state-cache N: past N keys, dedupe state spills to LevelDB', async () => {
    const small = await spilled(join(t.dir, 'state-small'), '--state-cache 1');
    assert.ok(small >= 1000, `with --state-cache 1 most of 3000 keys are in LevelDB, got ${small}`);
    assert.equal(await spilled(join(t.dir, 'state-big'), ''), 0, 'default: 100000 keys stay in memory');
  });

  it('dedupe state is spread over key groups by the dedupe key (not one group per dedupe step)', async () => {
    const dir = join(t.dir, 'state-groups');
    assert.ok((await spilled(dir, '--state-cache 1')) >= 1000);
    const db = new ClassicLevel<string, string>(dir);
    const groups = new Set<string>();
    for await (const k of db.keys()) groups.add(k.slice(0, 4));
    await db.close();
    assert.ok(groups.size > 64, `3000 keys land in many of the 128 key groups, got ${groups.size}`);
  });

  it('-q/--quiet: no summary on stderr', async () => {
    const loud = await tr("--filter 'true'", three, { quiet: false });
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stderr, /kappa transform: done: 3 in, 3 out/);
    for (const q of ['-q', '--quiet']) {
      const r = await sh(`kappa transform --filter true ${q}`, { input: stream(three) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', q);
    }
  });

  // Two bad records: a value that is not an object for --select, and an expression that throws.
  const bad: In[] = [
    { ts: 1, v: { a: 1 } },
    { ts: 2, v: [1] },
    { ts: 3, v: { a: 3 } },
    { ts: 4, v: { a: null } },
    { ts: 5, v: { a: 5 } },
  ];
  const throwing = "--map '({a: r.a.toFixed(0)})'";

  it('--on-error: skip drops bad records, dead-letter=PATH keeps them, the default fails', async () => {
    let r = await tr(throwing, bad);
    assert.equal(r.code, 3, 'default: fail on the first bad record');
    r = await tr(`${throwing} --on-error skip`, bad);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.a),
      ['1', '3', '5'],
    );
    const dl = join(t.dir, 'dead.ndjson');
    r = await tr(`${throwing} --on-error 'dead-letter=${dl}'`, bad);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.recs.length, 3);
    const dead = readFileSync(dl, 'utf8').split('\n').filter(Boolean);
    assert.equal(dead.length, 2, dead.join('\n'));
  });

  it('--max-bad: more bad records than N fail the run even under --on-error skip', async () => {
    let r = await tr(`${throwing} --on-error skip --max-bad 1`, bad);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /--max-bad 1/);
    r = await tr(`${throwing} --on-error skip --max-bad 2`, bad);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--max-line-bytes: a longer stream line is a bad record', async () => {
    const long = { raw: JSON.stringify({ ts: 2, key: null, value: { a: 2, pad: 'x'.repeat(200) } }) };
    const r = await tr("--filter 'true' --max-line-bytes 100 --on-error skip", [
      { ts: 1, v: { a: 1 } },
      long,
      { ts: 3, v: { a: 3 } },
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.recs.map((x) => x.value?.a),
      [1, 3],
    );
  });
});
