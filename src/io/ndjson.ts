/**
 * NDJSON (JSON Lines) reader: one JSON object per line; empty lines are skipped. A line that is not
 * valid JSON, or not an object, is a bad row that names its line.
 */
import { DEFAULT_MAX_LINE_BYTES, lineBatches } from '../stream/lines.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../stream/protocol.js';
import { type OpenedFile, type ReadOptions, type RowBatch, registerFormatReader } from './format.js';
import type { ObjectStore } from './store.js';

export function ndjsonBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  maxLineBytes = DEFAULT_MAX_LINE_BYTES,
): AsyncIterable<RowBatch> {
  return (async function* () {
    let bytes = 0;
    for await (const { lines, firstLine, oversized } of lineBatches(
      countBytes(input, (n) => (bytes += n)),
      { maxLineBytes },
    )) {
      const rows: (Record<string, unknown> | undefined)[] = [];
      const lineNos: number[] = [];
      const raws: string[] = [];
      let errors: Map<number, string> | undefined;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        const big = line.length === 0 ? oversized?.get(i) : undefined;
        if (big === undefined && (line.length === 0 || (line.length < 4 && line.trim() === ''))) continue;
        let v: unknown;
        let err: string | undefined;
        try {
          if (big) err = `line of ${big.bytes} bytes is longer than --max-line-bytes ${maxLineBytes}`;
          else if (jsonTooDeep(line)) err = `value nested deeper than ${MAX_JSON_DEPTH} levels`;
          else {
            v = JSON.parse(line);
            if (v === null || typeof v !== 'object' || Array.isArray(v)) err = 'not a JSON object';
          }
        } catch (e) {
          err = `not valid JSON (${(e as Error).message})`;
        }
        if (err) {
          errors ??= new Map();
          errors.set(rows.length, err);
          rows.push(undefined);
        } else rows.push(v as Record<string, unknown>);
        lineNos.push(firstLine + i);
        raws.push(big ? big.head : line);
      }
      yield {
        rows,
        errors,
        where: (i) => ({ source, line: lineNos[i] }),
        raw: (i) => raws[i],
        rawIsJson: true,
        bytesDone: bytes,
      };
    }
  })();
}

async function* countBytes(
  input: AsyncIterable<Uint8Array | string>,
  add: (n: number) => void,
): AsyncGenerator<Buffer | string> {
  for await (const c of input) {
    add(typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength);
    yield typeof c === 'string' ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

registerFormatReader({
  name: 'ndjson',
  extensions: ['ndjson', 'jsonl', 'json'],
  async open(store: ObjectStore | undefined, uri: string, opts: ReadOptions): Promise<OpenedFile> {
    const input = uri === '-' || !store ? (process.stdin as AsyncIterable<Buffer>) : store.readStream(uri);
    return { batches: ndjsonBatches(input, uri === '-' ? 'stdin' : uri, opts.maxLineBytes) };
  },
});
