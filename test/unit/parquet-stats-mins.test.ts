/**
 * `rowGroupMins` (formats/parquet/read.ts) and `statsEventTime` (stream/source.ts): which
 * row-group statistics and which event-time conversions may give a watermark (Parquet format,
 * Statistics: `min_value` in the column's order, the deprecated `min` signed-only).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileMetaData, SchemaElement, Statistics } from 'hyparquet';
import { rowGroupMins } from '../../src/formats/parquet/read.js';
import { statsEventTime } from '../../src/stream/source.js';

/** A footer with one top-level column `t` and one row group per entry of `groups`. */
function footer(t: Partial<SchemaElement>, groups: { rows: number; stats?: Statistics }[]): FileMetaData {
  const schema: SchemaElement[] = [
    { name: 'root', num_children: 1 },
    { name: 't', repetition_type: 'OPTIONAL', ...t } as SchemaElement,
  ];
  return {
    version: 2,
    schema,
    num_rows: BigInt(groups.reduce((n, g) => n + g.rows, 0)),
    row_groups: groups.map((g) => ({
      columns: [
        {
          file_offset: 0n,
          meta_data: {
            type: t.type ?? 'INT64',
            encodings: [],
            path_in_schema: ['t'],
            codec: 'UNCOMPRESSED',
            num_values: BigInt(g.rows),
            total_uncompressed_size: 0n,
            total_compressed_size: 0n,
            data_page_offset: 0n,
            statistics: g.stats,
          },
        },
      ],
      total_byte_size: 0n,
      num_rows: BigInt(g.rows),
    })),
    metadata_length: 0,
  } as unknown as FileMetaData;
}

describe('rowGroupMins', () => {
  it('takes min_value, else the deprecated min for signed types; NaN without one', () => {
    const m = footer({ type: 'INT64' }, [
      { rows: 5, stats: { min_value: 10n } },
      { rows: 5, stats: { min: -3n } },
      { rows: 5, stats: { null_count: 0n } },
      { rows: 5 },
      { rows: 0 },
      { rows: 4, stats: { null_count: 4n } },
    ]);
    assert.deepEqual(rowGroupMins(m, 't'), [10, -3, Number.NaN, Number.NaN, Infinity, Infinity]);
  });

  it('never the deprecated (signed) min of an unsigned column', () => {
    const m = footer({ type: 'INT64', logical_type: { type: 'INTEGER', bitWidth: 64, isSigned: false } }, [
      { rows: 5, stats: { min: 7n } },
      { rows: 5, stats: { min_value: 8n } },
    ]);
    assert.deepEqual(rowGroupMins(m, 't'), [Number.NaN, 8]);
  });

  it('timestamps (already ms through the reader’s parsers), not strings, dates or INT96', () => {
    const ts = footer(
      { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } },
      [{ rows: 1, stats: { min_value: -1 } }],
    );
    assert.deepEqual(rowGroupMins(ts, 't'), [-1]);
    assert.equal(
      rowGroupMins(footer({ type: 'BYTE_ARRAY', converted_type: 'UTF8' }, [{ rows: 1 }]), 't'),
      undefined,
    );
    assert.equal(
      rowGroupMins(footer({ type: 'INT32', converted_type: 'DATE' }, [{ rows: 1 }]), 't'),
      undefined,
    );
    assert.equal(rowGroupMins(footer({ type: 'INT96' }, [{ rows: 1 }]), 't'), undefined);
    assert.equal(rowGroupMins(ts, 'other'), undefined);
  });

  it('a min beyond 2^53 is unusable (its rounding could be too high)', () => {
    const m = footer({ type: 'INT64' }, [{ rows: 1, stats: { min_value: 2n ** 60n + 1n } }]);
    assert.deepEqual(rowGroupMins(m, 't'), [Number.NaN]);
  });
});

describe('statsEventTime', () => {
  it('monotonic conversions only', () => {
    const tz = { t: 'timestamptz', w: 'timestamp', i: 'int64', s: 'string' } as const;
    assert.equal(statsEventTime('t', 'epoch-ms', 'UTC', tz)?.(5), 5);
    assert.equal(statsEventTime('w', 'wallclock-ms', 'UTC', tz)?.(5), 5);
    assert.equal(statsEventTime('w', 'wallclock-ms', 'Europe/Berlin', tz), undefined);
    assert.equal(statsEventTime('i', 'epoch-s', 'UTC', tz)?.(5), 5000);
    assert.equal(statsEventTime('i', 'epoch-us', 'UTC', tz)?.(-1), -1); // floored
    assert.equal(statsEventTime('i', 'auto', 'UTC', tz), undefined);
    assert.equal(statsEventTime('s', 'epoch-ms', 'UTC', tz), undefined);
    assert.equal(statsEventTime('t.x', 'epoch-ms', 'UTC', tz), undefined);
  });
});
