/**
 * The verbs of `kappa state-edit` through the real binary, on a savepoint of generated records
 * (a window operator with fired windows kept for their allowed lateness, a value-state operator and
 * a source): usage and data errors, metadata edits, prune, rekey, write, migrate, inspect.
 * Expectations are computed from the generated input by plain arithmetic; edited window state is
 * restored into a new WindowOperator to show it still runs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArrayCollector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator } from '../../src/ops/window/operator.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import type { SavepointEntry } from '../../src/state/savepoint/format.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { writeSavepoint } from '../../src/state/savepoint/write.js';
import { parseLines, sh, tempDir } from '../helpers.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const KEYS = 20;
const MINUTES = 600; // 10 hours, one record a minute, keys K0..K19 in turn
const LATENESS = 24 * HOUR;

function makeOp(maxKeyGroups = 64): WindowOperator {
  return new WindowOperator({
    window: { kind: 'tumbling', size: HOUR },
    allowedLateness: LATENESS,
    key: { kind: 'field', path: 'origin', get: compilePath('origin') },
    aggs: parseAggs('count, sum(delay)'),
    maxKeyGroups,
  });
}

/** Windows by (key, hour) of the generated records: count and sum of delay. */
function expected(keyOf = (k: string) => k): Map<string, { n: number; s: number }> {
  const m = new Map<string, { n: number; s: number }>();
  for (let i = 0; i < MINUTES; i++) {
    const id = `${keyOf(`K${i % KEYS}`)} ${T0 + Math.floor(i / 60) * HOUR}`;
    const w = m.get(id) ?? { n: 0, s: 0 };
    w.n++;
    w.s += i % 7;
    m.set(id, w);
  }
  return m;
}

/** Restores window-1 of a savepoint, ends the input; results as `key start count sum`. */
async function restoreAndEnd(dir: string): Promise<string[]> {
  const sp = await openSavepoint(dir);
  const op = makeOp(sp.metadata.maxKeyGroups);
  await op.open({ kappa: 1 });
  try {
    const meta = sp.operator('window-1')!;
    await op.restore({ ...meta, entries: sp.entries('window-1'), maxKeyGroups: sp.metadata.maxKeyGroups });
    const out = new ArrayCollector();
    await op.end(out);
    return out.records.map((r) => {
      const v = r.value as Record<string, number | string>;
      return `${v.origin} ${v.window_start} ${v.count} ${v.sum_delay}`;
    });
  } finally {
    await op.close();
  }
}

describe('kappa state-edit verbs', () => {
  let t: { dir: string; cleanup: () => void };
  let sp: string;
  let wm: number;
  const ks = (s: string) => sh(`kappa state-edit ${s}`);

  before(async () => {
    t = tempDir('kappa-state-verbs-');
    sp = join(t.dir, 'sp');
    const op = makeOp();
    await op.open({ kappa: 1 });
    const out = new ArrayCollector();
    for (let i = 0; i < MINUTES; i++)
      await op.record(
        { ts: T0 + i * 60_000, key: null, value: { origin: `K${i % KEYS}`, delay: i % 7 } },
        out,
      );
    wm = T0 + MINUTES * 60_000 - 2; // the last hour's windows are not fired yet
    await op.watermark(wm, out);
    const seen: SavepointEntry[] = [];
    for (let u = 0; u < 50; u++) {
      const key = JSON.stringify(`u${u}`);
      seen.push({
        keyGroup: keyGroupOf(key, 64),
        state: 'seen',
        key,
        windowStart: null,
        windowEnd: null,
        timer: wm - u * 600_000,
        value: { first: T0 + u },
      });
    }
    seen.sort((a, b) => a.keyGroup - b.keyGroup);
    await writeSavepoint(sp, {
      metadata: {
        pipeline: 'gen',
        maxKeyGroups: 64,
        sources: [{ uid: 'ingest-1', positions: { '0': '600' }, watermark: wm }],
      },
      operators: [
        { uid: 'window-1', ...(await op.snapshot()) },
        {
          uid: 'dedupe-1',
          kind: 'dedupe',
          states: [{ name: 'seen', kind: 'value', schema: { first: 'epoch ms' } }],
          watermark: wm,
          entries: seen,
        },
      ],
    });
    await op.close();
  });
  after(() => t.cleanup());

  it('usage errors exit 2: an existing or missing -o, an unknown verb, operator or state, a sandboxed name', async () => {
    const d = t.dir;
    mkdirSync(join(d, 'exists'));
    const e1 = await ks(`delete ${sp} -o ${d}/exists --operator window-1 --key K1`);
    assert.equal(e1.code, 2);
    assert.match(e1.stderr, /already exists/);
    assert.equal((await ks(`delete ${sp} --operator window-1 --key K1`)).code, 2);
    const e2 = await ks(`delete ${sp} -o ${sp} --operator window-1 --key K1`);
    assert.equal(e2.code, 2, 'never in place');
    const nv = await ks(`frobnicate ${sp}`);
    assert.equal(nv.code, 2);
    assert.match(nv.stderr, /'frobnicate' is not a verb/);
    assert.equal((await ks('')).code, 2, 'no verb');
    const e3 = await ks(`read ${sp} --operator nope`);
    assert.equal(e3.code, 2);
    assert.match(e3.stderr, /no operator 'nope' \(it has: window-1, dedupe-1\)/);
    assert.equal((await ks(`read ${sp} --operator window-1 --state nope`)).code, 2);
    const e4 = await ks(`read ${sp} --operator window-1 --where 'process.exit(0)'`);
    assert.equal(e4.code, 2);
    assert.match(e4.stderr, /process is not defined/);
    assert.equal(
      (await ks(`delete ${sp} -o ${d}/x --operator window-1`)).code,
      2,
      'neither --key nor --where',
    );
  });

  it('inspect: operators, states, entries per key group (summing to the entries), sources; text and --json', async () => {
    const r = await ks(`inspect ${sp} --json`);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      maxKeyGroups: number;
      formatVersion: number;
      sources: { uid: string; watermark: number }[];
      operators: {
        uid: string;
        entries: number;
        keys: Record<string, number>;
        entriesPerKeyGroup: Record<string, number>;
        skew: number;
      }[];
    };
    assert.equal(j.formatVersion, 1);
    assert.equal(j.maxKeyGroups, 64);
    assert.deepEqual(
      j.sources.map((s) => [s.uid, s.watermark]),
      [['ingest-1', wm]],
    );
    const [w, dd] = j.operators;
    assert.deepEqual([w.uid, w.entries, w.keys], ['window-1', expected().size, { window: KEYS }]);
    assert.deepEqual([dd.uid, dd.entries, dd.keys], ['dedupe-1', 50, { seen: 50 }]);
    const groups = new Map<string, number>();
    for (const k of [...expected().keys()].map((x) => x.split(' ')[0])) {
      const g = String(keyGroupOf(JSON.stringify(k), 64));
      groups.set(g, (groups.get(g) ?? 0) + 1);
    }
    assert.deepEqual(
      w.entriesPerKeyGroup,
      Object.fromEntries([...groups].sort((a, b) => Number(a[0]) - Number(b[0]))),
    );
    assert.equal(w.skew, Math.round((Math.max(...groups.values()) / (w.entries / 64)) * 100) / 100);
    const text = await ks(`inspect ${sp}`);
    assert.match(text.stdout, /window-1 \(window\): 200 entries/);
    assert.match(text.stdout, /dedupe-1 \(dedupe\): 50 entries/);
  });

  it('set-positions, set-watermark, rename-operator and drop-operator change only metadata; new checksums verify', async () => {
    const d = t.dir;
    assert.equal((await ks(`set-positions ${sp} -o ${d}/p1 --source ingest-1 0:700,1:12`)).code, 0);
    const p1 = (await openSavepoint(`${d}/p1`)).metadata;
    assert.deepEqual(p1.sources[0].positions, { '0': '700', '1': '12' });
    assert.equal((await ks(`set-positions ${sp} -o ${d}/p2 --source nope 0:1`)).code, 2);
    const w = await ks(`set-watermark ${d}/p1 -o ${d}/p3 2026-01-01T12:00:00Z`);
    assert.equal(w.code, 0, w.stderr);
    const p3 = (await openSavepoint(`${d}/p3`)).metadata;
    const noon = Date.UTC(2026, 0, 1, 12);
    assert.deepEqual(
      p3.operators.map((o) => o.watermark),
      [noon, noon],
    );
    assert.equal(
      (p3.operators[0].operatorState as { outputWatermark: number }).outputWatermark,
      noon - LATENESS,
    );
    assert.equal(p3.sources[0].watermark, noon);
    const diff = await ks(`diff ${sp} ${d}/p3`);
    assert.equal(diff.code, 1);
    assert.match(diff.stdout, /source ingest-1 positions: \{"0":"600"\} -> \{"0":"700","1":"12"\}/);
    assert.match(diff.stdout, /operator window-1: 0 added, 0 removed, 0 changed/);
    const dr = await ks(`drop-operator ${sp} -o ${d}/p4 dedupe-1`);
    assert.equal(dr.code, 0, dr.stderr);
    const p4 = await openSavepoint(`${d}/p4`);
    assert.deepEqual(
      p4.metadata.operators.map((o) => o.uid),
      ['window-1'],
    );
    assert.equal((await ks(`validate ${d}/p4`)).code, 0);
    assert.equal(
      (await sh(`ls ${d}/p4`)).stdout.trim().split('\n').sort().join(','),
      '_metadata.json,window-1',
    );
    assert.equal((await ks(`drop-operator ${sp} -o ${d}/p5 nope`)).code, 2);
  });

  it('prune --older-than drops the windows that ended (and value entries whose timer is) before watermark - DUR', async () => {
    const d = t.dir;
    const r = await ks(`prune ${sp} -o ${d}/pr --older-than 3h`);
    assert.equal(r.code, 0, r.stderr);
    const cutoff = wm - 3 * HOUR;
    const want = [...expected()]
      .filter(([id]) => Number(id.split(' ')[1]) + HOUR - 1 >= cutoff)
      .map(([id, w]) => `${id} ${w.n} ${w.s}`);
    assert.ok(want.length > 0 && want.length < expected().size);
    const read = parseLines<{
      key: string;
      window_start: number;
      value: { acc: { count: number; sum_delay: number } };
    }>((await ks(`read ${d}/pr --operator window-1`)).stdout);
    assert.deepEqual(
      read.map((l) => `${l.key} ${l.window_start} ${l.value.acc.count} ${l.value.acc.sum_delay}`).sort(),
      want.sort(),
    );
    // Value state (no window): its timer is its event time; timers wm - u·10min, u = 0..49.
    const seen = parseLines<{ key: string }>((await ks(`read ${d}/pr --operator dedupe-1`)).stdout);
    assert.deepEqual(seen.map((l) => l.key).sort(), Array.from({ length: 19 }, (_, u) => `u${u}`).sort());
  });

  it('rekey --key-expr: state under the new keys, in their key groups; restored windows fire with the new keys', async () => {
    const d = t.dir;
    // Only open (unfired) windows fire at the end: the last hour's.
    const r = await ks(`rekey ${sp} -o ${d}/rk --operator window-1 --key-expr 'key.toLowerCase()'`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ks(`validate ${d}/rk`)).code, 0);
    const got = await restoreAndEnd(`${d}/rk`);
    const last = T0 + 9 * HOUR;
    const want = [...expected((k) => k.toLowerCase())]
      .filter(([id]) => Number(id.split(' ')[1]) === last)
      .map(([id, w]) => `${id} ${w.n} ${w.s}`);
    assert.equal(want.length, KEYS);
    assert.deepEqual(got.sort(), want.sort());
    const c = await ks(`rekey ${sp} -o ${d}/rk2 --operator window-1 --key-expr '"one"'`);
    assert.equal(c.code, 3);
    assert.match(c.stderr, /maps keys "K\d+" and "K\d+" onto "one"/);
  });

  it('write checks values against the schema (exit 3 naming the line); upserts and --delete-from apply', async () => {
    const d = t.dir;
    const line = JSON.parse(
      (await ks(`read ${sp} --operator window-1 --key K3 --where 'r.window_start === ${T0}'`)).stdout,
    ) as Record<string, unknown>;
    const badValue = { ...line, value: { ...(line.value as object), acc: { count: 1 } } };
    writeFileSync(join(d, 'bad.ndjson'), `${JSON.stringify(line)}\n${JSON.stringify(badValue)}\n`);
    const b = await ks(`write ${sp} -o ${d}/w1 --operator window-1 --from ${d}/bad.ndjson`);
    assert.equal(b.code, 3);
    assert.match(b.stderr, /bad.ndjson line 2: key "K3": value.acc has accumulators \["count"\]/);
    const fresh = {
      ...line,
      key: 'NEW',
      key_group: undefined,
      value: { ...(line.value as object), acc: { count: 5, sum_delay: 7 } },
    };
    writeFileSync(join(d, 'up.ndjson'), `${JSON.stringify(fresh)}\n`);
    writeFileSync(join(d, 'del.ndjson'), `${JSON.stringify({ key: 'K4' })}\n`);
    const w = await ks(
      `write ${sp} -o ${d}/w2 --operator window-1 --from ${d}/up.ndjson --delete-from ${d}/del.ndjson`,
    );
    assert.equal(w.code, 0, w.stderr);
    const diff = JSON.parse((await ks(`diff ${sp} ${d}/w2 --json`)).stdout) as {
      operators: { added: number; removed: number; changed: number }[];
    };
    assert.deepEqual(
      diff.operators.map((o) => [o.added, o.removed, o.changed]),
      [[1, 10, 0]],
    );
    const nw = parseLines<{ key_group: number }>(
      (await ks(`read ${d}/w2 --operator window-1 --key NEW`)).stdout,
    );
    assert.deepEqual(
      nw.map((l) => l.key_group),
      [keyGroupOf('"NEW"', 64)],
    );
  });

  it('migrate: a value that no longer fits window state is refused (exit 3); value state takes any JSON', async () => {
    const d = t.dir;
    // Fails at a key of the second file (key groups 32..63), after the first file was written.
    const keys = Array.from({ length: KEYS }, (_, k) => `K${k}`);
    const late = keys.find((k) => keyGroupOf(JSON.stringify(k), 64) >= 32);
    assert.ok(late && keys.some((k) => keyGroupOf(JSON.stringify(k), 64) < 32));
    const m = await ks(
      `migrate ${sp} -o ${d}/m1 --operator window-1 --map 'key === "${late}" ? ({...r.value, acc: {n: 1}}) : r.value'`,
    );
    assert.equal(m.code, 3);
    assert.match(m.stderr, /does not fit state 'window'/);
    assert.equal(existsSync(`${d}/m1`), false, 'a failed edit leaves no partial savepoint behind');
    const v = await ks(
      `migrate ${sp} -o ${d}/m2 --operator dedupe-1 --map '({first_seen: r.value.first, v: 2})'`,
    );
    assert.equal(v.code, 0, v.stderr);
    const lines = parseLines<{ key: string; value: { first_seen: number; v: number } }>(
      (await ks(`read ${d}/m2 --operator dedupe-1`)).stdout,
    );
    assert.equal(lines.length, 50);
    for (const l of lines) assert.deepEqual(l.value, { first_seen: T0 + Number(l.key.slice(1)), v: 2 });
    const meta = (await openSavepoint(`${d}/m2`)).operator('dedupe-1')!;
    assert.deepEqual(meta.states[0].schema, {
      first: 'epoch ms',
      migrations: [{ map: '({first_seen: r.value.first, v: 2})' }],
    });
  });
});
