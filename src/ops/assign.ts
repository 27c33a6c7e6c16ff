/**
 * Event-time and key assignment at the source (docs/architecture.md, "Runtimes"): reads `--ts-field` and
 * `--key-field` from a decoded row and returns the record's `ts` (epoch ms) and `key`.
 */
import { type TsFormat, timestampParser } from '../time/timestamp.js';
import { toRecordKey } from './keys.js';
import { compilePath } from './path.js';

export interface AssignOptions {
  /** Dotted path of the event-time field; without it, event time is the ingestion (wall-clock) time. */
  tsField?: string;
  tsFormat?: TsFormat;
  /** IANA zone for zone-less times (default UTC). */
  tz?: string;
  /** Dotted path of the key field; without it, records have key null. */
  keyField?: string;
  /** Clock for ingestion time (ms); injectable for tests. */
  now?: () => number;
}

/**
 * The record key from `--key-field` (dotted path), as the stream carries keys: strings as they are,
 * objects as JSON, other values via String, missing as null.
 */
export function makeKeyGetter(keyField: string): (row: Record<string, unknown>) => string | null {
  const get = compilePath(keyField);
  return (row) => toRecordKey(get(row));
}

export type Assigned = { ts: number; key: string | null } | { error: string };

/** Builds the per-row assigner. Pure apart from the clock used when no `tsField` is given. */
export function makeAssigner(o: AssignOptions): (row: Record<string, unknown>) => Assigned {
  const getTs = o.tsField ? compilePath(o.tsField) : undefined;
  const parseTs = timestampParser(o.tsFormat ?? 'auto', o.tz ?? 'UTC');
  const getKey = o.keyField ? makeKeyGetter(o.keyField) : undefined;
  const now = o.now ?? Date.now;
  const tsField = o.tsField;
  const f = o.tsFormat ?? 'auto';
  const fmtName = typeof f === 'object' ? `'${f.strftime}'` : f;
  return (row) => {
    let ts: number;
    if (getTs) {
      const raw = getTs(row);
      if (raw === undefined || raw === null) return { error: `event-time field '${tsField}' is missing` };
      const t = parseTs(raw);
      if (t === undefined)
        return {
          error: `event-time field '${tsField}' has value ${JSON.stringify(String(raw))}, which is not a valid time in --ts-format ${fmtName} (no impossible dates such as 2024-02-30) or is out of range (±8.64e15 ms, years −271821 to 275760)`,
        };
      ts = t;
    } else ts = now();
    return { ts, key: getKey ? getKey(row) : null };
  };
}
