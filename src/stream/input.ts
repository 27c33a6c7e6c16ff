/**
 * Reads a kappa stream (see protocol.ts and man/kappa-stream.5) from a byte stream and hands each
 * event to a consumer.
 *
 * - The first line must be a header of protocol version 1; anything else is refused (exit 3, or
 *   exit 1 for empty input).
 * - After the header, a line that is not a valid stream line (not JSON, an invalid `ts`, nested
 *   deeper than MAX_JSON_DEPTH, longer than `maxLineBytes`) is a bad record: the consumer's `bad`
 *   callback applies the stage's `--on-error` policy with the line number.
 * - The stream must end with an `end` line or a `stop` line (stop-with-savepoint); EOF without
 *   either, or an incomplete last line, means the upstream stage failed ("stream cut off at line
 *   N", exit 1). Nothing may follow a stop line.
 * - Concatenated streams (`cat a.kappa b.kappa`): an `end` line followed by a header continues the
 *   stream. The first part's end is not forwarded; watermarks are forwarded only when they advance
 *   (so they never go backwards); barriers of the later parts are dropped (a checkpoint belongs to
 *   the run that wrote it); a later header must not declare a field the first header did not, or
 *   with another type.
 */

import { DataError, RuntimeError } from '../errors.js';
import { readArrowStream } from './arrow-input.js';
import type { RecordBatch } from './batch.js';
import { DirectChannel } from './direct.js';
import { DEFAULT_MAX_LINE_BYTES, lineBatches } from './lines.js';
import {
  type Barrier,
  decodeLine,
  type Header,
  lineTooDeep,
  MAX_JSON_DEPTH,
  PROTOCOL_VERSION,
  ProtocolError,
  parseStreamJson,
  type Rec,
  recordProblem,
  type StopInfo,
  type StreamEvent,
} from './protocol.js';

/** Receives stream events in order. A method may return a promise; the reader waits for it. */
export interface StreamConsumer {
  header(h: Header): void | Promise<void>;
  /**
   * @param line 1-based input line number of the record
   * @param raw the record's line text, when the record came from one line (lets a stage re-emit an
   *   unchanged record without re-serialising it)
   */
  record(r: Rec, line: number, raw?: string): void | Promise<void>;
  /**
   * Records of a version-2 (Arrow) stream, a batch at a time, when the consumer takes batches
   * (else they come one by one through `record`). `first` is the line the batch's first record
   * would have in the version-1 encoding of the stream (records follow on consecutive lines).
   */
  batch?(b: RecordBatch, first: number): void | Promise<void>;
  /** A watermark greater than every watermark before it (non-advancing ones are not passed on). */
  watermark(wm: number): void | Promise<void>;
  barrier(b: Barrier): void | Promise<void>;
  /**
   * Clean end of stream (watermark +infinity). `final`: the final checkpoint the end line carries
   * in a checkpointing pipeline (protocol.ts `encodeEnd`).
   */
  end(final?: Barrier): void | Promise<void>;
  /**
   * The stream ended with a stop line (stop-with-savepoint): not a finished input. The consumer
   * forwards it (or, a sink, exits after its savepoint commit) without firing anything.
   */
  stop(s: StopInfo): void | Promise<void>;
  /**
   * A line after the header that is not a valid stream line: apply the `--on-error` policy (throw
   * to fail). `raw` is the line (for an over-long line: its first 1024 characters). Without this
   * method the reader throws DataError (exit 3) naming the line.
   */
  bad?(line: number, reason: string, raw: string): void | Promise<void>;
  /** Called after each input chunk: the place to flush output and honour back-pressure. */
  afterBatch?(): void | Promise<void>;
  /** Return true to stop reading early (e.g. the downstream reader went away). */
  stopped?(): boolean;
}

/** Options of `readStream`. */
export interface ReadStreamOptions {
  /** How error messages name the input (default `stdin`). */
  name?: string;
  /** Longest line in bytes (`--max-line-bytes`, default 64 MiB); longer lines are bad records. */
  maxLineBytes?: number;
}

const WRAP_HINT = 'to process raw JSON lines, wrap them first: `… | kappa ingest - | …`';

/**
 * Pumps `input` into `consumer`. Throws DataError (exit 3) when the input is not a kappa stream (no
 * header, a protocol version other than 1, data after the end line, an incompatible concatenated
 * part) or when `consumer.bad` is absent and a line is bad; RuntimeError (exit 1) when the stream
 * is cut off (no end line, or an incomplete last line: the upstream stage failed).
 *
 * @param o the input's name for messages and the line length limit
 */
export async function readStream(
  input: AsyncIterable<Buffer | string> | DirectChannel,
  consumer: StreamConsumer,
  o: ReadStreamOptions = {},
): Promise<void> {
  // A stage fused by `kappa run`: the events come from the upstream stage's writer (direct.ts).
  if (input instanceof DirectChannel) return input.attach(consumer);
  const name = o.name ?? 'stdin';
  // The first bytes tell the version: `{` (NDJSON, version 1) or 0xFFFFFFFF (Arrow IPC, version 2).
  const it = input[Symbol.asyncIterator]();
  let head: Buffer | string | undefined;
  for (;;) {
    const n = await it.next();
    if (n.done) break;
    if (n.value.length > 0) {
      head = n.value;
      break;
    }
  }
  if (head !== undefined && typeof head !== 'string' && head[0] === 0xff)
    return readArrowStream(head, it, consumer, name);
  const first0 = head;
  const rest: AsyncIterable<Buffer | string> = {
    async *[Symbol.asyncIterator]() {
      if (first0 !== undefined) yield first0;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    },
  };
  return readNdjsonStream(rest, consumer, o, name);
}

/** The version-1 (NDJSON) reader of `readStream`. */
async function readNdjsonStream(
  input: AsyncIterable<Buffer | string>,
  consumer: StreamConsumer,
  o: ReadStreamOptions,
  name: string,
): Promise<void> {
  let first: Header | undefined; // the first header (undefined: none seen yet)
  let part = 1; // 1-based part of a concatenated stream
  let endLine = 0; // line of the last end line not yet acted on (0: none pending)
  let stopped: { line: number; stop: StopInfo } | undefined; // the stop line, once seen
  let final: Barrier | undefined; // the final checkpoint of the first part's end line
  let lastWm = Number.NEGATIVE_INFINITY;
  let lastLine = 0;
  const bad = async (line: number, reason: string, raw: string): Promise<void> => {
    if (!consumer.bad) throw new DataError(`${name} line ${line}: ${reason}: ${preview(raw)}`);
    const p = consumer.bad(line, reason, raw);
    if (p) await p;
  };
  for await (const batch of lineBatches(input, { maxLineBytes: o.maxLineBytes })) {
    const { lines, firstLine } = batch;
    lastLine = firstLine + lines.length - 1;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const no = firstLine + i;
      if (line.length === 0) {
        const big = batch.oversized?.get(i);
        if (big === undefined) continue;
        if (first === undefined)
          throw new DataError(
            `${name} line ${no}: input is not a kappa stream: its first line is longer than --max-line-bytes ${o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES} (${big.bytes} bytes)`,
            WRAP_HINT,
          );
        await bad(
          no,
          `line of ${big.bytes} bytes is longer than --max-line-bytes ${o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES}`,
          big.head,
        );
        continue;
      }
      if (stopped)
        throw new DataError(
          `${name} line ${no}: data after the stop line (line ${stopped.line}): ${preview(line)}`,
          'a stream that stopped with a savepoint ends with its stop line',
        );
      if (batch.unterminated && i === lines.length - 1 && !isEndLine(line))
        throw cutOff(name, no, 'its last line is incomplete (no newline)');
      // Fast path: records written by kappa start with {"ts":
      if (endLine === 0 && first !== undefined && line.charCodeAt(1) === 0x22 && line.startsWith('{"ts":')) {
        if (lineTooDeep(line)) {
          await bad(no, `value nested deeper than ${MAX_JSON_DEPTH} levels`, line);
          continue;
        }
        let r: Rec | undefined = parseRecordLine(line);
        if (r === undefined)
          try {
            r = parseStreamJson(line) as Rec;
          } catch {
            await bad(no, 'not valid JSON', line);
            continue;
          }
        const why = recordProblem(r as unknown as Record<string, unknown>);
        if (why !== undefined) {
          await bad(no, why, line);
          continue;
        }
        const p = consumer.record(r, no, line);
        if (p) await p;
        continue;
      }
      let ev: StreamEvent;
      try {
        ev = decodeLine(line);
      } catch (e) {
        const why = e instanceof ProtocolError ? e.message : String(e);
        if (first === undefined)
          throw new DataError(
            `${name} line ${no}: input is not a kappa stream: ${why}: ${preview(line)}`,
            WRAP_HINT,
          );
        if (endLine !== 0)
          throw new DataError(
            `${name} line ${no}: data after the end-of-stream line (line ${endLine}): ${why}: ${preview(line)}`,
          );
        await bad(no, why, line);
        continue;
      }
      if (first === undefined) {
        if (ev.kind !== 'header')
          throw new DataError(
            `${name} line ${no}: input is not a kappa stream: expected a header line {"kappa":${PROTOCOL_VERSION},…}, got ${preview(line)}`,
            WRAP_HINT,
          );
        checkVersion(ev.header, name, no);
        first = ev.header;
        const p = consumer.header(ev.header);
        if (p) await p;
        continue;
      }
      if (endLine !== 0) {
        // After an end line only a header may follow: the next part of a concatenated stream.
        if (ev.kind !== 'header')
          throw new DataError(
            `${name} line ${no}: data after the end-of-stream line (line ${endLine}) without a new header: ${preview(line)}`,
            'a stream ends with its end line; to concatenate streams, each part must start with its header',
          );
        checkVersion(ev.header, name, no);
        checkSchema(first, ev.header, name, no);
        endLine = 0;
        part++;
        continue;
      }
      let p: void | Promise<void>;
      switch (ev.kind) {
        case 'header':
          throw new DataError(
            `${name} line ${no}: a header line in the middle of a stream (not after an end line): ${preview(line)}`,
            'to concatenate streams, keep each part whole: its header first, its end line last',
          );
        case 'record':
          p = consumer.record(ev.record, no, line);
          break;
        case 'watermark':
          if (ev.watermark <= lastWm) continue;
          lastWm = ev.watermark;
          p = consumer.watermark(ev.watermark);
          break;
        case 'barrier':
          if (part > 1) continue;
          p = consumer.barrier(ev.barrier);
          break;
        case 'end':
          // Acted on at EOF, unless a header follows (concatenation).
          endLine = no;
          if (part === 1) final = ev.final;
          continue;
        case 'stop':
          stopped = { line: no, stop: ev.stop };
          continue;
      }
      if (p) await p;
    }
    if (consumer.afterBatch) {
      const p = consumer.afterBatch();
      if (p) await p;
    }
    if (consumer.stopped?.()) return;
  }
  if (first === undefined)
    throw new RuntimeError(
      `${name}: no input: expected a kappa stream; the upstream stage failed or wrote nothing; nothing was committed`,
      WRAP_HINT,
    );
  if (stopped) {
    const p = consumer.stop(stopped.stop);
    if (p) await p;
    return;
  }
  if (endLine === 0) throw cutOff(name, lastLine, 'it stopped without its end-of-stream line');
  const p = consumer.end(final);
  if (p) await p;
}

/** True for an end line (a writer's last line; hand-written streams may lack its newline). */
function isEndLine(line: string): boolean {
  try {
    const k = decodeLine(line).kind;
    return k === 'end' || k === 'stop';
  } catch {
    return false;
  }
}

function cutOff(name: string, line: number, why: string): RuntimeError {
  return new RuntimeError(
    `${name}: stream cut off at line ${line}: ${why}; the upstream stage failed or was killed; nothing was committed`,
    'see the upstream stage’s error above',
  );
}

function checkVersion(h: Header, name: string, line: number): void {
  if (h.kappa === PROTOCOL_VERSION) return;
  if (typeof h.kappa === 'number' && Number.isInteger(h.kappa) && h.kappa > PROTOCOL_VERSION)
    throw new DataError(
      `${name} line ${line}: stream protocol version ${h.kappa} is newer than this kappa understands (${PROTOCOL_VERSION})`,
      'upgrade kappa on this side of the pipe',
    );
  throw new DataError(
    `${name} line ${line}: unknown stream protocol version ${JSON.stringify(h.kappa)} (this kappa reads version ${PROTOCOL_VERSION})`,
  );
}

/** A later part of a concatenated stream may not declare a field the first did not, or with another type. */
function checkSchema(first: Header, next: Header, name: string, line: number): void {
  const a = first.schema ?? {};
  for (const [f, t] of Object.entries(next.schema ?? {}))
    if (a[f] !== t)
      throw new DataError(
        `${name} line ${line}: concatenated stream part declares field '${f}' as ${t}, but the first part ${a[f] === undefined ? 'does not declare it' : `declares it as ${a[f]}`}`,
        'concatenate only streams with the same schema (e.g. the same pipeline over different inputs)',
      );
}

function preview(line: string): string {
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/**
 * A record line of the exact shape kappa's writers give it (`encodeRecord` without prov and
 * headers): `{"ts":<integer>,"key":<null or a string without escapes>,"value":<JSON>}`, decoded with
 * one `JSON.parse` of the value's text only (the envelope parse measured 0.35 of 1.0 µs per
 * flight line). Gives exactly what `JSON.parse(line)` gives, or undefined when the line has any
 * other shape (whitespace, escapes in the key, other fields, not JSON): the caller then parses it
 * whole. The value text is one complete JSON value (JSON.parse rejects trailing text), so a line
 * this accepts is valid JSON with those three keys. Property-tested against JSON.parse in
 * test/unit/ndjson-edge.test.ts.
 * @param line a line that starts with `{"ts":`
 */
export function parseRecordLine(line: string): Rec | undefined {
  const n = line.length;
  if (line.charCodeAt(n - 1) !== 0x7d) return undefined;
  let j = 6;
  const neg = line.charCodeAt(j) === 0x2d;
  if (neg) j++;
  const d0 = j;
  let ts = 0;
  for (; j < n; j++) {
    const c = line.charCodeAt(j) - 0x30;
    if (c < 0 || c > 9) break;
    ts = ts * 10 + c;
  }
  const digits = j - d0;
  // JSON integers: no leading zero; at most 16 digits (|ts| <= 8.64e15 is checked later). Up to
  // 15 digits the sum is exact; a 16th digit may pass 2^53: read as Number() rounds it.
  if (digits === 0 || digits > 16 || (digits > 1 && line.charCodeAt(d0) === 0x30)) return undefined;
  if (digits === 16) ts = Number(line.slice(d0, j));
  if (neg) ts = -ts;
  // ,"key":
  if (
    line.charCodeAt(j) !== 0x2c ||
    line.charCodeAt(j + 1) !== 0x22 ||
    line.charCodeAt(j + 2) !== 0x6b ||
    line.charCodeAt(j + 3) !== 0x65 ||
    line.charCodeAt(j + 4) !== 0x79 ||
    line.charCodeAt(j + 5) !== 0x22 ||
    line.charCodeAt(j + 6) !== 0x3a
  )
    return undefined;
  j += 7;
  let key: string | null;
  const k0 = line.charCodeAt(j);
  if (k0 === 0x6e) {
    if (line.charCodeAt(j + 1) !== 0x75 || line.charCodeAt(j + 2) !== 0x6c || line.charCodeAt(j + 3) !== 0x6c)
      return undefined;
    key = null;
    j += 4;
  } else if (k0 === 0x22) {
    const q = line.indexOf('"', j + 1);
    if (q < 0) return undefined;
    for (let k = j + 1; k < q; k++) {
      const c = line.charCodeAt(k);
      if (c < 0x20 || c === 0x5c) return undefined;
    }
    key = line.slice(j + 1, q);
    j = q + 1;
  } else return undefined;
  if (!line.startsWith(',"value":', j)) return undefined;
  let value: unknown;
  try {
    // JSON.parse, except a bare integer it would round keeps its exact decimal string.
    value = parseStreamJson(line.slice(j + 9, n - 1));
  } catch {
    return undefined;
  }
  return { ts, key, value };
}
