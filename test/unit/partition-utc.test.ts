/**
 * Partition paths of UTC time buckets formatted from the UTC fields (no luxon, no Intl at start-up:
 * issue 14's sink start-up), equal to luxon's `toFormat` (the independent oracle) for random times
 * and patterns, and luxon still used for every other directive and zone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { Partitioner, parsePartitionSpec } from '../../src/table/partition.js';
import { strftimeToLuxon } from '../../src/time/timestamp.js';
import { mulberry32 as rng } from '../helpers.js';

/** Counts luxon `toFormat` calls while `body` runs. */
function countFormats(body: () => void): number {
  const proto = DateTime.prototype as unknown as { toFormat: (...a: unknown[]) => string };
  const orig = proto.toFormat;
  let n = 0;
  proto.toFormat = function (this: DateTime, ...a: unknown[]) {
    n++;
    return orig.apply(this, a);
  };
  try {
    body();
  } finally {
    proto.toFormat = orig;
  }
  return n;
}

/** The path luxon gives for `ts` under a spec of time segments only (UTC). */
function luxonPath(spec: string, ts: number): string {
  return spec
    .split('/')
    .map((seg) => {
      const eq = seg.indexOf('=');
      const v = DateTime.fromMillis(ts, { zone: 'UTC' }).toFormat(strftimeToLuxon(seg.slice(eq + 1)));
      return `${seg.slice(0, eq)}=${v.replace(/[%:/=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
    })
    .join('/');
}

describe('UTC partition paths', () => {
  it('formats %Y %m %d %H %M %S from the UTC fields, without luxon', () => {
    const p = new Partitioner(parsePartitionSpec('dt=%Y-%m-%d/hr=%H'));
    const t = Date.UTC(2001, 0, 5, 7, 30);
    const n = countFormats(() => {
      assert.equal(p.partitionOf(t, {}).path, 'dt=2001-01-05/hr=07');
    });
    assert.equal(n, 0);
  });

  it('equals luxon for random times and patterns (years 1000..9999 and around)', () => {
    const r = rng(14);
    const specs = [
      'dt=%Y-%m-%d',
      'dt=%Y-%m-%d/hr=%H',
      'ts=%Y%m%dT%H%M%S',
      'm=%Y-%m',
      'y=%Y',
      'p=100%%/d=%d',
      'x=%Y_%b',
      'h=%I%p',
      'j=%Y-%j',
      'e=%e',
    ];
    for (const spec of specs) {
      const p = new Partitioner(parsePartitionSpec(spec));
      for (let i = 0; i < 300; i++) {
        // Mostly 1970..2100, some anywhere a Date goes (years below 1000, above 9999, negative).
        const ts =
          r() < 0.8 ? Math.floor(r() * 4.1e12) : Math.floor((r() - 0.5) * 2 * 8.64e15) - (r() < 0.5 ? 0 : 1);
        assert.equal(p.partitionOf(ts, {}).path, luxonPath(spec, ts), `${spec} at ${ts}`);
      }
    }
  });

  it('keeps luxon for other zones and for names', () => {
    const t = Date.UTC(2001, 0, 5, 23, 30);
    const berlin = new Partitioner(parsePartitionSpec('dt=%Y-%m-%d'), 'Europe/Berlin');
    assert.equal(berlin.partitionOf(t, {}).path, 'dt=2001-01-06');
    const names = new Partitioner(parsePartitionSpec('mon=%b/dt=%d'));
    assert.equal(names.partitionOf(t, {}).path, 'mon=Jan/dt=05');
  });
});
