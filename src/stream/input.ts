/**
 * Reads a kappa stream (see protocol.ts) from a byte stream and hands each event to a consumer.
 *
 * Checks that the first line is a header of a version we understand, that every line is a stream
 * line, and that the stream ends with an `end` line. Errors name the line number and say what to do.
 */
import { DataError, RuntimeError } from '../errors.js';
import { lineBatches } from './lines.js';
import {
  type Barrier,
  decodeLine,
  type Header,
  PROTOCOL_VERSION,
  ProtocolError,
  type Rec,
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
  watermark(wm: number): void | Promise<void>;
  barrier(b: Barrier): void | Promise<void>;
  /** Clean end of stream (watermark +infinity). */
  end(): void | Promise<void>;
  /** Called after each input chunk: the place to flush output and honour back-pressure. */
  afterBatch?(): void | Promise<void>;
  /** Return true to stop reading early (e.g. the downstream reader went away). */
  stopped?(): boolean;
}

const WRAP_HINT = 'to process raw JSON lines, wrap them first: `… | kappa ingest - | …`';

/**
 * Pumps `input` into `consumer`. Throws DataError (exit 3) on a line that is not a kappa stream line,
 * and RuntimeError (exit 1) when the stream stops without an `end` line (the upstream stage failed).
 *
 * @param name how error messages name the input, e.g. `stdin`
 */
export async function readStream(
  input: AsyncIterable<Buffer | string>,
  consumer: StreamConsumer,
  name = 'stdin',
): Promise<void> {
  let sawHeader = false;
  let sawEnd = false;
  for await (const { lines, firstLine } of lineBatches(input)) {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.length === 0) continue;
      if (sawEnd) throw new DataError(`${name} line ${firstLine + i}: data after the end-of-stream line`);
      // Fast path: records written by kappa start with {"ts":
      if (sawHeader && line.charCodeAt(1) === 0x22 && line.startsWith('{"ts":')) {
        let r: Rec;
        try {
          r = JSON.parse(line) as Rec;
        } catch {
          throw new DataError(`${name} line ${firstLine + i}: not valid JSON`, WRAP_HINT);
        }
        const p = consumer.record(r, firstLine + i, line);
        if (p) await p;
        continue;
      }
      let ev: StreamEvent;
      try {
        ev = decodeLine(line);
      } catch (e) {
        const why = e instanceof ProtocolError ? e.message : String(e);
        throw new DataError(
          `${name} line ${firstLine + i}: input is not a kappa stream: ${why}: ${preview(line)}`,
          WRAP_HINT,
        );
      }
      if (!sawHeader) {
        if (ev.kind !== 'header')
          throw new DataError(
            `${name} line ${firstLine + i}: input is not a kappa stream: expected a header line {"kappa":${PROTOCOL_VERSION},…}, got ${preview(line)}`,
            WRAP_HINT,
          );
        if (ev.header.kappa > PROTOCOL_VERSION)
          throw new DataError(
            `${name} line ${firstLine + i}: stream protocol version ${ev.header.kappa} is newer than this kappa understands (${PROTOCOL_VERSION})`,
            'upgrade kappa on this side of the pipe',
          );
        sawHeader = true;
        const p = consumer.header(ev.header);
        if (p) await p;
        continue;
      }
      let p: void | Promise<void>;
      switch (ev.kind) {
        case 'header':
          // A second header (e.g. `cat a b |`): allowed only if it does not change the version.
          continue;
        case 'record':
          p = consumer.record(ev.record, firstLine + i, line);
          break;
        case 'watermark':
          p = consumer.watermark(ev.watermark);
          break;
        case 'barrier':
          p = consumer.barrier(ev.barrier);
          break;
        case 'end':
          sawEnd = true;
          p = consumer.end();
          break;
      }
      if (p) await p;
    }
    if (consumer.afterBatch) {
      const p = consumer.afterBatch();
      if (p) await p;
    }
    if (consumer.stopped?.()) return;
  }
  if (!sawHeader)
    throw new RuntimeError(
      `${name}: no input: expected a kappa stream; the upstream stage failed or wrote nothing; nothing was committed`,
      WRAP_HINT,
    );
  if (!sawEnd)
    throw new RuntimeError(
      `${name}: the stream stopped without its end-of-stream line: the upstream stage failed or was killed; nothing was committed`,
      'see the upstream stage’s error above',
    );
}

function preview(line: string): string {
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
