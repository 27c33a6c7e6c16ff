/**
 * The kappa record stream (pipe protocol), version 1. Documented for users in man/kappa-stream.5.
 *
 * One UTF-8 JSON object per line. Line kinds are told apart by their top-level keys:
 *
 * - header     `{"kappa":1,"schema":{"date":"timestamp",…}}`   first line of every stream
 * - record     `{"ts":<epoch ms>,"key":<string|null>,"value":<any>,"prov":{…},"headers":{…}}`
 * - watermark  `{"watermark":<epoch ms>}`   no record with ts <= watermark follows (Flink's meaning)
 * - barrier    `{"barrier":{"id":<n>,"type":"checkpoint","path":…,"sources":[…],"operators":[…]}}`
 *              checkpoint or savepoint marker (aligned checkpoints; see src/checkpoint/)
 * - end        `{"end":true}`   the producer finished cleanly; implies watermark +infinity; in a
 *              checkpointing pipeline `{"end":true,"checkpoint":{…barrier…}}`: the final checkpoint
 * - stop       `{"stop":{"savepoint":<uri>,"checkpoint":<n>}}`   the producer stopped with a savepoint
 *              (stop-with-savepoint): the stream ends here, but NOT as a finished input — windows do
 *              not fire, nothing is published as final; every stage exits 0 after forwarding it
 *
 * A stream that stops without an `end` line was cut off (the upstream process failed): readers
 * treat that as an error and commit nothing, so a crash upstream is never mistaken for a finished batch.
 */
import { hasUnsafeInteger, lossless } from '../formats/json-exact.js';

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

/**
 * Pipeline identity and checkpoint context, carried in the header from stage to stage (written by
 * the source when checkpointing is on, extended by every stage). See src/checkpoint/.
 */
export interface PipelineInfo {
  /** The pipeline's uid (from `<checkpoint-dir>/_pipeline.json`). */
  id: string;
  /** The checkpoint directory (URI) every stage writes its part of each checkpoint under. */
  checkpointDir: string;
  /** 0-based position of the stage that wrote this header (the source is 0). */
  stage: number;
  /** `--uid` of every stage so far, source first. */
  uids: string[];
  /** Complete checkpoints to keep (`--retain-checkpoints` of the source); the last stage prunes. */
  retainCheckpoints?: number;
  /**
   * The snapshot every stage restores from (`--resume`: the newest complete checkpoint;
   * `--from-savepoint`), or absent for a fresh start. `path` is the snapshot directory (URI).
   */
  restore?: { path: string; checkpointId: number | null; type: 'checkpoint' | 'savepoint' };
  /**
   * Set by a source that follows another source's checkpoints (the right input of `kappa join`,
   * src/checkpoint/follow.ts): `run` names this run's trigger file
   * `<checkpointDir>/_follow/<run>.json`, through which the join asks it for barrier N.
   */
  follower?: { run: string };
}

export interface Header {
  kappa: number;
  schema?: Schema;
  pipeline?: PipelineInfo;
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

/** Position and watermark of one source when it emitted a barrier (as in the savepoint format). */
export interface BarrierSource {
  uid: string;
  /** Opaque per source kind (see connectors/source.ts `SourcePosition`). */
  positions: unknown;
  /** Epoch ms, or null when the source had emitted no watermark. */
  watermark: number | null;
}

/**
 * A checkpoint barrier (aligned checkpoints, as Flink's). Every stage that holds state writes its
 * snapshot for checkpoint `id` under `path` before forwarding the barrier and appends its uid to
 * `operators`; the sink commits epoch `id` (the records since the previous barrier) and the last
 * stage writes `<path>/_metadata.json`, which makes the checkpoint complete.
 */
export interface Barrier {
  /** Checkpoint id N: increasing within a checkpoint directory. */
  id: number;
  /** `checkpoint` (periodic, retained N at a time) or `savepoint` (kept); default checkpoint. */
  type?: 'checkpoint' | 'savepoint';
  /** Snapshot directory (URI) of this checkpoint or savepoint. */
  path?: string;
  /** The sources' positions and watermarks at the barrier. */
  sources?: BarrierSource[];
  /** Uids of the stages upstream that wrote a state snapshot under `path` for this barrier. */
  operators?: string[];
  /** Legacy (no checkpoint dir): the sources' positions, for information only. */
  positions?: Record<string, unknown>;
}

/** Payload of a stop line: where the savepoint taken right before it is. */
export interface StopInfo {
  /** The savepoint directory (URI). */
  savepoint: string;
  /** Its checkpoint id. */
  checkpoint: number;
}

export type StreamEvent =
  | { kind: 'header'; header: Header }
  | { kind: 'record'; record: Rec }
  | { kind: 'watermark'; watermark: number }
  | { kind: 'barrier'; barrier: Barrier }
  | { kind: 'end'; final?: Barrier }
  | { kind: 'stop'; stop: StopInfo };

/** Serialises a header line (no trailing newline). */
export function encodeHeader(h: Header): string {
  const o: Header = { kappa: h.kappa };
  if (h.schema) o.schema = h.schema;
  if (h.pipeline) o.pipeline = h.pipeline;
  return JSON.stringify(o);
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

/**
 * Serialises an end line; `final`, in a checkpointing pipeline, is the final checkpoint (taken
 * after the end of input: positions at the end, no open state), committed by the sink with the
 * rest of the output so that a `--resume` after a finished run has nothing left to do.
 */
export function encodeEnd(final?: Barrier): string {
  return final ? JSON.stringify({ end: true, checkpoint: final }) : END_LINE;
}

/** Serialises a stop line (no trailing newline). */
export function encodeStop(s: StopInfo): string {
  return JSON.stringify({ stop: s });
}

/** Largest |ts| in epoch ms: ±8.64e15, the range of ECMAScript dates (±100,000,000 days). */
export const MAX_TS = 8.64e15;

/**
 * Deepest nesting of JSON arrays and objects a record value may have: 1000 levels (an NDJSON input
 * line is the value; a stream record line, whose envelope adds one level, may nest 1001). A common
 * JSON limit (Python's json and Ruby's JSON stop near 1000; serde_json at 128). Deeper values would
 * overflow the stack of recursive code later (JSON.stringify, projections), so readers turn such a
 * line into a bad record naming its line.
 */
export const MAX_JSON_DEPTH = 1000;

/** MAX_JSON_DEPTH for a whole record line: the value plus the record envelope. */
const MAX_LINE_DEPTH = MAX_JSON_DEPTH + 1;

/**
 * True when the JSON text `text` nests arrays/objects deeper than `max` levels. Cheap: a text
 * shorter than 2*max+2 characters cannot be that deep, so only long lines are scanned (one pass,
 * strings skipped with indexOf). Invalid JSON gives an arbitrary answer (JSON.parse rejects it anyway).
 */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  const n = text.length;
  if (n <= 2 * max + 1) return false;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: find the closing quote that is not escaped (preceded by an even number of backslashes).
      for (;;) {
        const j = text.indexOf('"', i + 1);
        if (j < 0) return false;
        let b = 0;
        while (text.charCodeAt(j - 1 - b) === 0x5c) b++;
        i = j;
        if ((b & 1) === 0) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Checks the fields of a parsed record line; returns why it is not a valid record, or undefined.
 * `ts` must be an integer within ±MAX_TS, `value` present, `key` a string or null when present.
 * Hot path (every record): a few typeof checks.
 */
export function recordProblem(o: Record<string, unknown>): string | undefined {
  const ts = o.ts;
  if (typeof ts !== 'number' || !Number.isInteger(ts) || ts > MAX_TS || ts < -MAX_TS)
    return `"ts" must be an integer epoch-ms time within ±8.64e15, got ${previewJson(ts)}`;
  if (!('value' in o)) return 'a record line needs a "value"';
  const k = o.key;
  if (k !== undefined && k !== null && typeof k !== 'string')
    return `"key" must be a string or null, got ${previewJson(k)}`;
  return undefined;
}

function previewJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Why a line could not be decoded. The caller adds the line number. */
export class ProtocolError extends Error {}

/** True when a stream line nests deeper than a record line may (MAX_JSON_DEPTH + 1). */
export function lineTooDeep(line: string): boolean {
  return jsonTooDeep(line, MAX_LINE_DEPTH);
}

/**
 * `JSON.parse` for the text of version-1 lines, except that an integer literal JSON.parse would
 * round (beyond 2^53 − 1 and not exactly a double, e.g. 9007199254740993 in a line written by
 * another program) keeps its exact decimal string, the form kappa-stream(5) gives an int64 beyond
 * 2^53. A literal that is exactly a double (what kappa's writers print for a float64 such as
 * 2^53 + 2) stays that number, as the binary stream carries it. Only a text whose JSON.parse result
 * holds an integer of magnitude ≥ 2^53 is parsed again (by lossless-json, which sees each literal).
 * @throws SyntaxError when `text` is not valid JSON
 */
export function parseStreamJson(text: string): unknown {
  const v: unknown = JSON.parse(text);
  if (!hasUnsafeInteger(v)) return v;
  const { isInteger, parse: losslessParse } = lossless();
  return losslessParse(text, null, {
    parseNumber: (s: string) => {
      const n = Number(s);
      if (Number.isSafeInteger(n) || !isInteger(s) || !Number.isFinite(n) || BigInt(s) === BigInt(n))
        return n;
      return s;
    },
    onDuplicateKey: ({ newValue }) => newValue,
  });
}

/**
 * Classifies and decodes one line. Throws ProtocolError when the line is not a kappa stream line,
 * or is a record line with an invalid `ts`, `key` or no `value` (see `recordProblem`), or nests
 * deeper than MAX_JSON_DEPTH. Records are recognised by a `ts` key (our writers put it first).
 */
export function decodeLine(line: string): StreamEvent {
  if (jsonTooDeep(line, MAX_LINE_DEPTH))
    throw new ProtocolError(`value nested deeper than ${MAX_JSON_DEPTH} levels`);
  let o: unknown;
  try {
    o = parseStreamJson(line);
  } catch {
    throw new ProtocolError('not valid JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new ProtocolError('not a JSON object');
  const obj = o as Record<string, unknown>;
  if ('ts' in obj) {
    const why = recordProblem(obj);
    if (why !== undefined) throw new ProtocolError(why);
    return { kind: 'record', record: obj as unknown as Rec };
  }
  if ('watermark' in obj && typeof obj.watermark === 'number')
    return { kind: 'watermark', watermark: obj.watermark };
  if ('barrier' in obj && typeof obj.barrier === 'object' && obj.barrier !== null)
    return { kind: 'barrier', barrier: obj.barrier as Barrier };
  if (obj.end === true)
    return typeof obj.checkpoint === 'object' && obj.checkpoint !== null
      ? { kind: 'end', final: obj.checkpoint as Barrier }
      : { kind: 'end' };
  if ('stop' in obj && typeof obj.stop === 'object' && obj.stop !== null)
    return { kind: 'stop', stop: obj.stop as StopInfo };
  if ('kappa' in obj && typeof obj.kappa === 'number')
    return { kind: 'header', header: obj as unknown as Header };
  throw new ProtocolError(
    'not a kappa stream line (no "ts"+"value", "watermark", "barrier", "end", "stop" or "kappa" key)',
  );
}
