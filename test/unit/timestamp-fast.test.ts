/**
 * The arithmetic ISO-8601 fast path of event-time parsing (issue 14, ingest's per-batch costs):
 * on every text it answers it gives what luxon and `Date.parse` give, and it leaves every other
 * text (other shapes, out-of-range fields, impossible dates) to the general path. Random valid and
 * mutated texts from a seeded generator (reproducible).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { isoFastPath, timestampParser } from '../../src/time/timestamp.js';
import { mulberry32 as rng } from '../helpers.js';

const pad = (v: number, w: number) => String(v).padStart(w, '0');

function text(r: () => number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  // Mostly in range, sometimes just out of it (month 0/13, day 0/29–32, hour 24, minute/second 60).
  const y = r() < 0.2 ? int(0, 9999) : int(1960, 2100);
  const mo = r() < 0.05 ? (r() < 0.5 ? 0 : 13) : int(1, 12);
  const d = r() < 0.2 ? int(28, 32) : r() < 0.02 ? 0 : int(1, 28);
  const h = r() < 0.03 ? 24 : int(0, 23);
  const mi = r() < 0.03 ? 60 : int(0, 59);
  const s = r() < 0.03 ? 60 : int(0, 59);
  const sep = r() < 0.2 ? ' ' : r() < 0.02 ? 't' : 'T';
  const fracDigits = [0, 0, 3, 3, 1, 2, 4, 6][int(0, 7)];
  const frac = fracDigits ? `.${pad(int(0, 10 ** fracDigits - 1), fracDigits)}` : '';
  const zone = ['Z', 'Z', 'Z', '', 'z', '+01:00'][int(0, 5)];
  let t = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}${sep}${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${frac}${zone}`;
  if (r() < 0.1) {
    // One character replaced by a digit, a letter or a punctuation mark.
    const i = int(0, t.length - 1);
    t = t.slice(0, i) + '0a-:. '[int(0, 5)] + t.slice(i + 1);
  }
  return t;
}

/** luxon's reading in UTC (zone-less text: UTC), undefined when invalid. */
function luxon(s: string): number | undefined {
  const d = DateTime.fromISO(s.replace(' ', 'T'), { zone: 'UTC' });
  return d.isValid ? d.toMillis() : undefined;
}

describe('ISO-8601 fast path (issue 14)', () => {
  it('answers the common exact shapes', () => {
    assert.equal(isoFastPath('2001-01-01T00:01:00Z', false), Date.UTC(2001, 0, 1, 0, 1));
    assert.equal(isoFastPath('2024-02-29 12:00:00.123Z', false), Date.UTC(2024, 1, 29, 12, 0, 0, 123));
    assert.equal(isoFastPath('1969-12-31T23:59:59.999', true), -1);
    assert.equal(isoFastPath('0000-03-01T00:00:00Z', true), Date.parse('0000-03-01T00:00:00Z'));
    // Zone-less text only when --tz is UTC; other shapes go to the general path.
    assert.ok(Number.isNaN(isoFastPath('1969-12-31T23:59:59.999', false)));
    assert.ok(Number.isNaN(isoFastPath('2001-01-01T00:01:00+01:00', true)));
    assert.ok(Number.isNaN(isoFastPath('2001-02-29T00:01:00Z', true)));
    assert.ok(Number.isNaN(isoFastPath('2001-01-01T24:00:00Z', true)));
  });

  it('equals luxon and Date.parse on every text it answers; the parser is unchanged on the rest', () => {
    const r = rng(14);
    let answered = 0;
    const iso = timestampParser('iso', 'UTC');
    const isoBerlin = timestampParser('iso', 'Europe/Berlin');
    for (let k = 0; k < 50_000; k++) {
      const s = text(r);
      for (const utc of [true, false]) {
        const f = isoFastPath(s, utc);
        if (Number.isNaN(f)) continue;
        answered++;
        const norm = s.replace(' ', 'T');
        assert.equal(f, luxon(s), `${s} (utc ${utc}): luxon`);
        assert.equal(f, Date.parse(/Z$/.test(norm) ? norm : `${norm}Z`), `${s} (utc ${utc}): Date.parse`);
        assert.ok(Number.isInteger(f));
      }
      // The parser as a whole: where luxon reads the text in UTC, the parser gives the same.
      const want = luxon(s);
      const got = iso(s);
      if (want !== undefined && got !== undefined) assert.equal(got, want, s);
      if (/Z$/.test(s)) {
        const b = isoBerlin(s);
        if (want !== undefined && b !== undefined) assert.equal(b, want, `${s} (Berlin)`);
      }
    }
    assert.ok(answered > 10_000, `the fast path answered ${answered} texts`);
  });
});
