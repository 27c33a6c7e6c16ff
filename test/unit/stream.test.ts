import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../../src/stream/lines.js';
import { decodeLine, encodeRecord, ProtocolError } from '../../src/stream/protocol.js';
import { parseDuration } from '../../src/time/duration.js';
import { strftimeToLuxon, timestampParser } from '../../src/time/timestamp.js';
import { BoundedOutOfOrderness } from '../../src/time/watermark.js';

describe('LineSplitter', () => {
  it('splits across chunk boundaries, strips CR, keeps multi-byte characters whole', () => {
    const sp = new LineSplitter();
    const euro = Buffer.from('€');
    const lines = [
      ...sp.push(Buffer.concat([Buffer.from('a\r\nb'), euro.subarray(0, 1)])),
      ...sp.push(Buffer.concat([euro.subarray(1), Buffer.from('\nc')])),
      ...sp.end(),
    ];
    assert.deepEqual(lines, ['a', 'b€', 'c']);
    assert.equal(sp.lineNo, 3);
  });
});

describe('protocol', () => {
  it('round-trips a record with ts first', () => {
    const line = encodeRecord({
      ts: 5,
      key: 'k',
      value: { a: [1, 'x'] },
      prov: { source: 's', offset: '7' },
    });
    assert.ok(line.startsWith('{"ts":5,'));
    assert.deepEqual(decodeLine(line), {
      kind: 'record',
      record: { ts: 5, key: 'k', value: { a: [1, 'x'] }, prov: { source: 's', offset: '7' } },
    });
  });
  it('classifies control lines and rejects foreign JSON', () => {
    assert.deepEqual(decodeLine('{"watermark":10}'), { kind: 'watermark', watermark: 10 });
    assert.deepEqual(decodeLine('{"end":true}'), { kind: 'end' });
    assert.equal(decodeLine('{"kappa":1,"schema":{"a":"int64"}}').kind, 'header');
    assert.throws(() => decodeLine('{"a":1}'), ProtocolError);
    assert.throws(() => decodeLine('nope'), ProtocolError);
  });
});

describe('time', () => {
  it('parses durations with units and rejects bare numbers', () => {
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('PT1H30M'), 5_400_000);
    assert.throws(() => parseDuration('10'));
  });
  it('parses timestamps by format, zone-less as UTC unless told', () => {
    assert.equal(timestampParser('auto')('2001-01-01 00:01:00'), Date.UTC(2001, 0, 1, 0, 1));
    assert.equal(timestampParser('auto')(978307260), Date.UTC(2001, 0, 1, 0, 1));
    assert.equal(timestampParser('epoch-ns')(978307260000000000n), Date.UTC(2001, 0, 1, 0, 1));
    assert.equal(timestampParser('iso', 'Europe/Berlin')('2001-01-01T01:01:00'), Date.UTC(2001, 0, 1, 0, 1));
    assert.equal(
      timestampParser({ strftime: '%d/%m/%Y %H:%M' })('01/02/2001 03:04'),
      Date.UTC(2001, 1, 1, 3, 4),
    );
    assert.equal(strftimeToLuxon('dt=%Y-%m-%d'), "'dt='yyyy'-'MM'-'dd");
    assert.equal(timestampParser('iso')('not a time'), undefined);
  });
  it('bounded out-of-orderness watermark is max - bound - 1 and only advances', () => {
    const g = new BoundedOutOfOrderness(10);
    g.observe(100);
    assert.equal(g.advance(), 89);
    g.observe(50);
    assert.equal(g.advance(), undefined);
  });
});
