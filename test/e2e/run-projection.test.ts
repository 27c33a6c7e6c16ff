/**
 * NDJSON column projection under `kappa run` (issue 14): `ingest F | transform --filter … --select …`
 * scans only the fields the transform reads, and gives what jq gives for the same job over the
 * same file, also when unread fields hold what the unprojected scan cannot take (kind changes,
 * big integers, nesting, escapes) and when a line is bad (same location, same --on-error
 * handling). A filter that reads the whole value is not projected (jq gives the same rows).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLIGHTS, sh, tempDir } from '../helpers.js';
import { duck } from './flights-data.js';

describe('kappa run: NDJSON projection', () => {
  const t = tempDir('kappa-ndjproj-');
  const file = join(t.dir, 'f.ndjson');
  const bad = join(t.dir, 'bad.ndjson');
  const ORIGINS = ['LAS', 'ATL', 'MCI', 'SFO', 'JFK'];
  before(() => {
    const lines: string[] = [];
    let x = 11;
    for (let i = 0; i < 40_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const min = Math.floor(i / 7);
      const date = new Date(Date.UTC(2001, 0, 1) + min * 60_000).toISOString().replace('.000Z', 'Z');
      // Unread fields that change kind within a batch, hold integers beyond 2^53, nest or escape.
      const note = i % 3 === 0 ? x % 100 : i % 3 === 1 ? `n\\"${x % 7}` : null;
      const extra = i % 5 === 0 ? ',"big":12345678901234567890,"nested":{"a":[1,2]}' : ',"u":"caf\\u00e9"';
      lines.push(
        `{"date":"${date}","delay":${(x % 200) - 40},"distance":${x % 3000},"origin":"${ORIGINS[x % 5]}","note":${typeof note === 'string' ? `"${note}"` : note}${extra}}`,
      );
    }
    writeFileSync(file, `${lines.join('\n')}\n`);
    const b = lines.slice(0, 20);
    b[6] = b[6].replace(/"distance":\d+/, '"distance":tru');
    writeFileSync(bad, `${b.join('\n')}\n`);
  });
  after(() => t.cleanup());

  it('filter + select gives what jq gives, every row by columns', async () => {
    const r = await sh(
      `kappa run "ingest '${file}' --ts-field date | transform --filter 'r.delay > 60' --select date,origin,delay | sink -"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const jq = await sh(`jq -c 'select(.delay > 60) | {date, origin, delay}' '${file}'`);
    assert.equal(jq.code, 0, jq.stderr);
    assert.ok(jq.stdout.split('\n').length > 5000);
    assert.equal(r.stdout, jq.stdout);
    // Unprojected, the unread fields' kind changes and big integers send every batch to the row path.
    assert.match(r.stderr, /kappa ingest: done: 40,000 in, 40,000 out, 0 bad, 40,000 rows by columns/);
  });

  it('a closed --map chain and a window after a transform read only their fields, as jq computes', async () => {
    const r = await sh(
      `kappa run "ingest '${file}' --ts-field date | transform --filter 'r.delay >= 0 && r.delay < 100 || r.delay === -40' --map '({o: r.origin, late: r.delay > 15})' | sink -"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const jq = await sh(
      `jq -c 'select(.delay >= 0 and .delay < 100 or .delay == -40) | {o: .origin, late: (.delay > 15)}' '${file}'`,
    );
    assert.equal(r.stdout, jq.stdout);
    const w = await sh(
      `kappa run "ingest '${file}' --ts-field date | transform --filter 'r.delay > 0' | window --key origin --tumbling 1h --agg 'count, max(delay)' | sink -" | jq -c '{k: .origin, n: .count, m: .max_delay}' | sort`,
    );
    assert.equal(w.code, 0, w.stderr);
    const want = await sh(
      `jq -c 'select(.delay > 0) | {k: .origin, h: .date[0:13], d: .delay}' '${file}' | jq -sc 'group_by([.k, .h])[] | {k: .[0].k, n: length, m: (map(.d) | max)}' | sort`,
    );
    assert.ok(want.stdout.length > 0);
    assert.equal(w.stdout, want.stdout);
  });

  it('a bad line in an unread field is reported at its line; --on-error skip drops it as jq does', async () => {
    const r = await sh(
      `kappa run "ingest '${bad}' --ts-field date | transform --filter 'r.delay > -100' --select origin | sink -"`,
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`bad record at ${bad.replace(/[.]/g, '\\.')} line 7: not valid JSON`));
    const s = await sh(
      `kappa run "ingest '${bad}' --ts-field date --on-error skip | transform --filter 'r.delay > -100' --select origin | sink -"`,
    );
    assert.equal(s.code, 0, s.stderr);
    const jq = await sh(`jq -cR 'fromjson? | select(.delay > -100) | {origin}' '${bad}'`);
    assert.equal(jq.stdout.split('\n').length, 20);
    assert.equal(s.stdout, jq.stdout);
  });

  it('Parquet: a projected ingest | transform gives DuckDB’s rows and the header schema of the select', async () => {
    const r = await sh(
      `kappa run "ingest '${FLIGHTS}' --ts-field date | transform --filter 'r.delay > 60 && r.distance < 500' --select origin,delay -q"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /"schema":\{"origin":"string","delay":"int64"\}/);
    const got = lines
      .slice(1, -1)
      .filter((l) => l.startsWith('{"ts"')) // watermarks from the file's row-group statistics too
      .map((l) => JSON.stringify((JSON.parse(l) as { value: unknown }).value))
      .sort();
    const want = (
      await duck(`SELECT origin, delay FROM read_parquet('${FLIGHTS}') WHERE delay > 60 AND distance < 500`)
    )
      .map((x) => JSON.stringify({ origin: x.origin, delay: Number(x.delay) }))
      .sort();
    assert.ok(want.length > 1000);
    assert.deepEqual(got, want);
  });

  it('a filter that reads the whole value is not projected (jq keeps the same rows)', async () => {
    const r = await sh(
      `kappa run "ingest '${file}' --ts-field date | transform --filter 'JSON.stringify(r).length > 120' --select origin | sink -"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const jq = await sh(`jq -c 'select((tojson | length) > 120) | {origin}' '${file}'`);
    assert.ok(jq.stdout.split('\n').length > 1000);
    assert.equal(r.stdout, jq.stdout);
  });
});
