/**
 * The kappa record stream (pipe protocol), version 1. Documented for users in man/kappa-stream.5.
 *
 * One UTF-8 JSON object per line. Line kinds are told apart by their top-level keys:
 *
 * - header     `{"kappa":1,"schema":{"date":"timestamp",…}}`   first line of every stream
 * - record     `{"ts":<epoch ms>,"key":<string|null>,"value":<any>,"prov":{…},"headers":{…}}`
 * - watermark  `{"watermark":<epoch ms>}`   no record with ts <= watermark follows (Flink's meaning)
 * - barrier    `{"barrier":{"id":<n>,"positions":{…}}}`   checkpoint marker (aligned checkpoints)
 * - end        `{"end":true}`   the producer finished cleanly; implies watermark +infinity
 *
 * A stream that stops without an `end` line was cut off (the upstream process failed): readers
 * treat that as an error and commit nothing, so a crash upstream is never mistaken for a finished batch.
 */

export const PROTOCOL_VERSION = 1;

/**
 * Column types carried in the header schema. Timestamps travel as integer epoch milliseconds:
 * `timestamp` is a zone-less (local) timestamp as Parquet's isAdjustedToUTC=false / SQL TIMESTAMP,
 * `timestamptz` an instant (isAdjustedToUTC=true / TIMESTAMP WITH TIME ZONE). `date` travels as
 * `YYYY-MM-DD`; `decimal` as a JSON number; nested structs and lists as `json`.
 */
export type FieldType =
  | 'string'
  | 'int64'
  | 'float64'
  | 'boolean'
  | 'timestamp'
  | 'timestamptz'
  | 'date'
  | 'decimal'
  | 'binary'
  | 'json';

/** Header schema: top-level value field name -> type. Nested structs and lists are `json`. */
export type Schema = Record<string, FieldType>;

export interface Header {
  kappa: number;
  schema?: Schema;
}

/** Where a record came from. */
export interface Provenance {
  source?: string;
  partition?: number;
  /** Kafka offset as a decimal string (int64), or a row/line number for files. */
  offset?: string | number;
}

/** A data record. `ts` is event time in integer epoch milliseconds. */
export interface Rec {
  ts: number;
  key?: string | null;
  value: unknown;
  prov?: Provenance;
  headers?: Record<string, string>;
}

export interface Barrier {
  id: number;
  positions?: Record<string, unknown>;
}

export type StreamEvent =
  | { kind: 'header'; header: Header }
  | { kind: 'record'; record: Rec }
  | { kind: 'watermark'; watermark: number }
  | { kind: 'barrier'; barrier: Barrier }
  | { kind: 'end' };

/** Serialises a header line (no trailing newline). */
export function encodeHeader(h: Header): string {
  return JSON.stringify(h.schema ? { kappa: h.kappa, schema: h.schema } : { kappa: h.kappa });
}

/**
 * Serialises a record line (no trailing newline). `valueJson`, when given, is the value's exact
 * JSON text (e.g. the unchanged input line), used instead of re-serialising `r.value`. `ts` is always written first so readers can
 * classify a line by its prefix without parsing it. Hot path: keep allocation low.
 */
export function encodeRecord(r: Rec, valueJson?: string): string {
  let s = `{"ts":${r.ts},"key":${r.key == null ? 'null' : JSON.stringify(r.key)},"value":${valueJson ?? JSON.stringify(r.value) ?? 'null'}`;
  if (r.prov !== undefined) s += `,"prov":${JSON.stringify(r.prov)}`;
  if (r.headers !== undefined) s += `,"headers":${JSON.stringify(r.headers)}`;
  return `${s}}`;
}

export function encodeWatermark(wm: number): string {
  return `{"watermark":${wm}}`;
}

export function encodeBarrier(b: Barrier): string {
  return JSON.stringify({ barrier: b });
}

export const END_LINE = '{"end":true}';

/** Why a line could not be decoded. The caller adds the line number. */
export class ProtocolError extends Error {}

/**
 * Classifies and decodes one line. Throws ProtocolError when the line is not a kappa stream line.
 * Records are recognised by the `{"ts":` prefix our writers always emit, falling back to key checks
 * for hand-written lines.
 */
export function decodeLine(line: string): StreamEvent {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw new ProtocolError('not valid JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new ProtocolError('not a JSON object');
  const obj = o as Record<string, unknown>;
  if ('ts' in obj && 'value' in obj) {
    if (typeof obj.ts !== 'number' || !Number.isFinite(obj.ts))
      throw new ProtocolError('"ts" is not a number');
    return { kind: 'record', record: obj as unknown as Rec };
  }
  if ('watermark' in obj && typeof obj.watermark === 'number')
    return { kind: 'watermark', watermark: obj.watermark };
  if ('barrier' in obj && typeof obj.barrier === 'object' && obj.barrier !== null)
    return { kind: 'barrier', barrier: obj.barrier as Barrier };
  if (obj.end === true) return { kind: 'end' };
  if ('kappa' in obj && typeof obj.kappa === 'number')
    return { kind: 'header', header: obj as unknown as Header };
  throw new ProtocolError(
    'not a kappa stream line (no "ts"+"value", "watermark", "barrier", "end" or "kappa" key)',
  );
}
