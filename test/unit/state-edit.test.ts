/**
 * The pure parts of `kappa state-edit` (src/state/edit/*): argument parsing, entry checks, and the
 * keyed-state edits on hand-made entries.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataError, UsageError } from '../../src/errors.js';
import {
  deleteEntries,
  pruneEntries,
  rekeyEntries,
  rescaleEntries,
  upsertEntries,
} from '../../src/state/edit/keyed.js';
import { parsePositions, parseTime, setPositions, setWatermark } from '../../src/state/edit/metadata.js';
import { checkEntry, collect, entryExpr, lineToEntry, parseKeyArg } from '../../src/state/edit/model.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import type { SavepointEntry, SavepointMetadata, StateDescriptor } from '../../src/state/savepoint/format.js';

const WIN: StateDescriptor = {
  name: 'window',
  kind: 'window',
  schema: { window: { kind: 'tumbling', size: 1000 }, aggs: [{ name: 'count' }] },
};
const VAL: StateDescriptor = { name: 'seen', kind: 'value', schema: null };

function win(key: string, start: number, count: number, kg = 8): SavepointEntry {
  const k = JSON.stringify(key);
  return {
    keyGroup: keyGroupOf(k, kg),
    state: 'window',
    key: k,
    windowStart: start,
    windowEnd: start + 1000,
    timer: start + 999,
    value: { max_ts: start + 1, fired: false, changed: true, next_early: null, acc: { count } },
  };
}

describe('state-edit: arguments', () => {
  it('positions: Kafka partition:offset lists, ISO times, JSON; anything else is a usage error', () => {
    assert.deepEqual(parsePositions('0:1200,1:0980,12:5'), { '0': '1200', '1': '980', '12': '5' });
    assert.deepEqual(parsePositions('2001-06-01T00:00:00Z'), { timestamp: Date.UTC(2001, 5, 1) });
    assert.deepEqual(parsePositions('{"a.csv":{"byte":10,"line":2}}'), { 'a.csv': { byte: 10, line: 2 } });
    assert.throws(() => parsePositions('0:1,0:2'), UsageError);
    assert.throws(() => parsePositions('yesterday'), UsageError);
  });
  it('times: ISO (UTC unless an offset is given), dates and epoch ms', () => {
    assert.equal(parseTime('2001-06-01T00:00:00', 't'), Date.UTC(2001, 5, 1));
    assert.equal(parseTime('2001-06-01', 't'), Date.UTC(2001, 5, 1));
    assert.equal(parseTime('2001-06-01T02:00:00+02:00', 't'), Date.UTC(2001, 5, 1));
    assert.equal(parseTime('991353600000', 't'), 991353600000);
    assert.throws(() => parseTime('soon', 't'), UsageError);
  });
  it('keys: JSON when it parses, else a string', () => {
    assert.equal(parseKeyArg('JFK'), '"JFK"');
    assert.equal(parseKeyArg('42'), '42');
    assert.equal(parseKeyArg('"42"'), '"42"');
    assert.equal(parseKeyArg('{"b":1,"a":2}'), '{"a":2,"b":1}');
  });
});

describe('state-edit: entries against the state schema', () => {
  it('a window value needs its bounds, the window size, and exactly the aggregates', () => {
    assert.equal(checkEntry(win('A', 0, 1), WIN), undefined);
    assert.match(checkEntry({ ...win('A', 0, 1), windowEnd: 500 }, WIN) ?? '', /window size is 1000/);
    assert.match(
      checkEntry(
        { ...win('A', 0, 1), value: { max_ts: 1, fired: false, changed: true, next_early: null, acc: {} } },
        WIN,
      ) ?? '',
      /accumulators \[\], .*\["count"\]/,
    );
    assert.match(checkEntry({ ...win('A', 0, 1), value: 5 }, WIN) ?? '', /JSON object/);
    assert.match(checkEntry({ ...win('A', 0, 1), state: 'seen' }, VAL) ?? '', /no windows/);
  });
  it('lines: the key group comes from the key; a wrong one, an unknown state or a bad value is a data error naming the line', () => {
    const line = {
      state: 'window',
      key: 'A',
      window_start: 0,
      window_end: 1000,
      timer: null,
      value: win('A', 0, 1).value,
    };
    const e = lineToEntry(line, [WIN], 8, 'f line 1');
    assert.equal(e.keyGroup, keyGroupOf('"A"', 8));
    assert.equal(e.key, '"A"');
    assert.throws(
      () => lineToEntry({ ...line, key_group: (e.keyGroup + 1) % 8 }, [WIN], 8, 'f line 2'),
      /f line 2: key "A" is in key group/,
    );
    assert.throws(() => lineToEntry({ ...line, state: 'x' }, [WIN], 8, 'f line 3'), DataError);
    assert.throws(
      () => lineToEntry({ ...line, window_end: 10 }, [WIN], 8, 'f line 4'),
      /f line 4: key "A": window_end/,
    );
  });
});

describe('state-edit: keyed edits', () => {
  const entries = [win('A', 0, 1), win('A', 1000, 2), win('B', 0, 3), win('C', 5000, 4)].sort(
    (x, y) => x.keyGroup - y.keyGroup,
  );
  it('delete by key and by expression', async () => {
    const c = { removed: 0 };
    const left = await collect(deleteEntries(entries, { keys: new Set(['"A"']), operator: 'w' }, c));
    assert.deepEqual(left.map((e) => e.key).sort(), ['"B"', '"C"']);
    assert.equal(c.removed, 2);
    const w = await collect(
      deleteEntries(entries, { where: entryExpr('r.value.acc.count > 2', '--where'), operator: 'w' }),
    );
    assert.deepEqual(w.map((e) => `${e.key}@${e.windowStart}`).sort(), ['"A"@0', '"A"@1000']);
  });
  it('upsert replaces by (state, key, window start), adds the rest, deletes keys; result in key-group order', async () => {
    const counts = { added: 0, replaced: 0, removed: 0 };
    const out = await upsertEntries(
      entries,
      [win('A', 0, 10), win('D', 0, 1)],
      [{ key: '"B"' }, { key: '"A"', windowStart: 1000 }],
      [WIN],
      counts,
    );
    assert.deepEqual(counts, { added: 1, replaced: 1, removed: 2 });
    assert.deepEqual(
      out.map((e) => `${e.key}@${e.windowStart}=${(e.value as { acc: { count: number } }).acc.count}`).sort(),
      ['"A"@0=10', '"C"@5000=4', '"D"@0=1'],
    );
    for (let i = 1; i < out.length; i++) assert.ok(out[i - 1].keyGroup <= out[i].keyGroup);
  });
  it('prune drops entries whose window ended before the cutoff', async () => {
    const c = { removed: 0 };
    const left = await collect(pruneEntries(entries, 2000, c));
    assert.deepEqual(left.map((e) => `${e.key}@${e.windowStart}`).sort(), ['"C"@5000']);
    assert.equal(c.removed, 3);
  });
  it('rescale recomputes every key group for the new count, in order', async () => {
    const out = await rescaleEntries(entries, 256);
    for (const e of out) assert.equal(e.keyGroup, keyGroupOf(e.key, 256));
    for (let i = 1; i < out.length; i++) assert.ok(out[i - 1].keyGroup <= out[i].keyGroup);
    await assert.rejects(rescaleEntries(entries, 0), UsageError);
  });
  it('rekey maps keys (new key groups); two keys onto one window is a data error naming both', async () => {
    const out = await rekeyEntries(entries, entryExpr('key.toLowerCase()', '--key-expr'), [WIN], 8, 'w');
    assert.deepEqual(out.map((e) => e.key).sort(), ['"a"', '"a"', '"b"', '"c"']);
    for (const e of out) assert.equal(e.keyGroup, keyGroupOf(e.key, 8));
    await assert.rejects(
      rekeyEntries(entries, entryExpr('"same"', '--key-expr'), [WIN], 8, 'w'),
      /maps keys "A" and "B" onto "same"|maps keys "B" and "A" onto "same"/,
    );
  });
  it('set-watermark sets operators, window operator state (output = wm - allowed lateness) and sources', () => {
    const m = {
      sources: [{ uid: 's', positions: {}, watermark: 1 }],
      operators: [
        {
          uid: 'w',
          kind: 'window',
          states: [{ ...WIN, schema: { allowedLateness: 100 } }],
          watermark: 1,
          operatorState: { watermark: 1, outputWatermark: 1, late: 0 },
          entries: 0,
          files: [],
        },
      ],
    } as unknown as SavepointMetadata;
    const e = setWatermark(m, 5000);
    assert.deepEqual(e.sources, [{ uid: 's', positions: {}, watermark: 5000 }]);
    assert.deepEqual(e.operators, [
      { uid: 'w', watermark: 5000, operatorState: { watermark: 5000, outputWatermark: 4900, late: 0 } },
    ]);
  });
});

describe('state-edit set-positions', () => {
  const meta = (positions: unknown) =>
    ({
      sources: [
        { uid: 'ingest-0', positions, watermark: 7 },
        { uid: 'other', positions: { kind: 'files', file: 1, uri: null, rows: 0 }, watermark: null },
      ],
      operators: [],
    }) as unknown as SavepointMetadata;

  it("replaces only `next` of a Kafka source's position with a partition map, keeping kind and topic", () => {
    const m = meta({ kind: 'kafka', topic: 'rides', next: { '0': '10', '1': '20' } });
    const e = setPositions(m, 'ingest-0', parsePositions('0:1200,1:980'));
    assert.deepEqual(e.sources, [
      {
        uid: 'ingest-0',
        positions: { kind: 'kafka', topic: 'rides', next: { '0': '1200', '1': '980' } },
        watermark: 7,
      },
      m.sources[1],
    ]);
  });

  it('takes JSON positions (files) as they are, and names the sources when the uid is unknown', () => {
    const m = meta({ kind: 'files', file: 0, uri: 'a.ndjson', rows: 5 });
    const p = { kind: 'files', file: 0, uri: 'a.ndjson', rows: 0 };
    assert.deepEqual(setPositions(m, 'ingest-0', p).sources?.[0].positions, p);
    assert.throws(() => setPositions(m, 'nope', p), /no source 'nope' \(it has: ingest-0, other\)/);
  });
});
