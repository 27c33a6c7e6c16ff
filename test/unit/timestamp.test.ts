/**
 * Event-time parsing (issue 8 item 5): date-only values honour `--tz`, impossible dates are
 * rejected instead of rolling over, and every accepted `ts` is an integer within ±8.64e15 ms.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { makeAssigner } from '../../src/ops/assign.js';
import { type TsFormat, timestampParser } from '../../src/time/timestamp.js';

describe('event time (item 5)', () => {
  it('a date-only value is midnight in --tz, not a UTC offset of -01', () => {
    const berlin = DateTime.fromObject(
      { year: 2024, month: 5, day: 1 },
      { zone: 'Europe/Berlin' },
    ).toMillis();
    assert.equal(timestampParser('auto', 'Europe/Berlin')('2024-05-01'), berlin);
    assert.equal(timestampParser('iso', 'Europe/Berlin')('2024-05-01'), berlin);
    assert.equal(timestampParser('iso', 'America/New_York')('2024-05-01 10:00'), Date.UTC(2024, 4, 1, 14));
    // An explicit offset still wins over --tz.
    assert.equal(timestampParser('iso', 'Europe/Berlin')('2024-05-01T10:00:00-01'), Date.UTC(2024, 4, 1, 11));
    assert.equal(timestampParser('auto')('2024-05-01'), Date.UTC(2024, 4, 1));
  });

  it('impossible calendar dates are unparsable in every zone, not rolled over', () => {
    for (const tz of ['UTC', 'Europe/Berlin'])
      for (const s of [
        '2024-02-30',
        '2023-02-29T00:00:00Z',
        '2024-04-31 12:00:00',
        '2024-13-01',
        '2024-00-10',
      ])
        for (const f of ['auto', 'iso'] as TsFormat[])
          assert.equal(timestampParser(f, tz)(s), undefined, `${s} (${String(f)}, ${tz})`);
    assert.equal(timestampParser('auto')('2024-02-29'), Date.UTC(2024, 1, 29), 'a leap day is valid');
    assert.equal(timestampParser({ strftime: '%Y-%m-%d' })('2024-02-30'), undefined);
  });

  it('ts is always an integer within ±8.64e15 ms, else undefined', () => {
    const cases: [TsFormat, unknown][] = [
      ['auto', 1e300],
      ['auto', -1e300],
      ['auto', '1e300'],
      ['epoch-s', 1e300],
      ['epoch-ms', 8.64e15 + 1],
      ['epoch-ms', 1e300],
      ['epoch-us', 1e300],
      ['epoch-ns', 10n ** 40n],
      ['epoch-s', '99999999999999999999'],
      ['auto', new Date(Number.NaN)],
    ];
    for (const [f, v] of cases) assert.equal(timestampParser(f)(v), undefined, `${String(f)} ${String(v)}`);
    for (const f of ['auto', 'epoch-s', 'epoch-ms', 'epoch-us', 'epoch-ns'] as TsFormat[]) {
      const t = timestampParser(f)(1.7e9 + 0.5);
      assert.ok(t === undefined || Number.isSafeInteger(t), `${String(f)}: ${t}`);
    }
    assert.equal(timestampParser('epoch-ms')(8.64e15), 8.64e15);
    assert.equal(timestampParser('epoch-ms')(12.7), 12);
  });

  it('the assigner reports an out-of-range value as a bad record with the reason', () => {
    const a = makeAssigner({ tsField: 't' });
    const r = a({ t: 1e300 });
    assert.ok('error' in r);
    assert.match(r.error, /'t'.*1e\+300.*range/);
    const ok = a({ t: '2024-05-01' });
    assert.deepEqual(ok, { ts: Date.UTC(2024, 4, 1), key: null });
  });
});
