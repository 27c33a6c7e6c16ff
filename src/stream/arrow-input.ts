/**
 * Reads a version-2 (Arrow IPC) kappa stream (arrow.ts, man/kappa-stream.5) and hands its events
 * to a `StreamConsumer`, with the same rules as the version-1 reader (input.ts): the header first,
 * watermarks passed on only when they advance, barriers of later concatenated parts dropped, a
 * later part's schema checked against the first, and a stream without its end event cut off
 * (RuntimeError, exit 1). A new IPC stream (segment) that follows an end-of-stream marker without
 * an end event continues the same part with new columns (the schema grew).
 */
import { DataError, RuntimeError } from '../errors.js';
import { decodeBatch, frameMessage, headerOfSchema, MessageKind } from './arrow.js';
import type { StreamConsumer } from './input.js';
import { type Barrier, type Header, PROTOCOL_VERSION, type StopInfo } from './protocol.js';

/** Accumulates byte chunks; concatenates only what a message needs. */
class Chunks {
  private parts: Uint8Array[] = [];
  private total = 0;
  private head: Uint8Array = new Uint8Array(0);
  push(c: Uint8Array): void {
    this.parts.push(c);
    this.total += c.length;
  }
  get length(): number {
    return this.head.length + this.total;
  }
  /** The first `n` bytes (or all) as one contiguous array. */
  contiguous(n: number): Uint8Array {
    if (this.head.length < n && this.parts.length > 0) {
      this.head = Buffer.concat([this.head, ...this.parts]);
      this.parts = [];
      this.total = 0;
    }
    return this.head;
  }
  drop(n: number): void {
    this.contiguous(n);
    this.head = this.head.subarray(n);
  }
}

/**
 * Pumps a version-2 stream into `consumer`. `first` is the first chunk already read (it starts
 * with the continuation marker). Records go to `consumer.batch` when the consumer takes batches,
 * else one by one to `consumer.record` (with the line the record would have in the version-1 encoding of the same stream, so that
 * bad-record messages name the same place whatever the encoding).
 * @throws DataError (exit 3) for a malformed stream, another protocol version, data after the end
 *   event, an incompatible concatenated part; RuntimeError (exit 1) when the stream is cut off
 */
export async function readArrowStream(
  first: Uint8Array,
  rest: AsyncIterator<Buffer | string>,
  consumer: StreamConsumer,
  name: string,
): Promise<void> {
  const buf = new Chunks();
  buf.push(first);
  let header: Header | undefined;
  let schemaMsg: Uint8Array | undefined;
  const dicts = new Map<number, Uint8Array>();
  let ended = false; // an end event was read (acted on at EOF unless another part follows)
  let stopped: StopInfo | undefined; // a stop event was read: nothing may follow
  let final: Barrier | undefined; // the final checkpoint the first part's end event carries
  let part = 1;
  let lastWm = Number.NEGATIVE_INFINITY;
  let recNo = 0;
  let line = 0; // the line the last event would have in the version-1 encoding of the stream
  let offset = 0; // stream byte offset of the buffer's start (for messages)
  const bad = (why: string) => new DataError(`${name} byte ${offset}: ${why}`);
  const run = async (p: void | Promise<void>) => {
    if (p) await p;
  };
  for (;;) {
    let need = 8;
    for (;;) {
      if (buf.length < need) break;
      const bytes = buf.contiguous(need);
      let f: ReturnType<typeof frameMessage>;
      try {
        f = frameMessage(bytes, 0);
      } catch (e) {
        throw bad(`${(e as Error).message}; a version-2 stream is an Arrow IPC stream`);
      }
      if ('need' in f) {
        need = f.need;
        continue;
      }
      const m = f.message;
      if (m === null) {
        schemaMsg = undefined; // end of a segment
        dicts.clear();
      } else if (m.kind === MessageKind.Schema) {
        if (schemaMsg !== undefined) throw bad('a second Arrow schema inside one IPC stream');
        let h: Header;
        try {
          h = headerOfSchema(m.bytes);
        } catch (e) {
          throw bad((e as Error).message);
        }
        if (h.kappa !== 2)
          throw bad(`stream protocol version ${JSON.stringify(h.kappa)} in an Arrow stream (expected 2)`);
        schemaMsg = m.bytes.slice();
        if (header === undefined || ended) line++;
        if (header === undefined) {
          header = { kappa: PROTOCOL_VERSION };
          if (h.schema) header.schema = h.schema;
          if (h.pipeline) header.pipeline = h.pipeline;
          await run(consumer.header(header));
        } else if (ended) {
          checkSchema(header, h, bad);
          ended = false;
          part++;
        }
      } else if (m.kind === MessageKind.DictionaryBatch) {
        dicts.set(m.dictId ?? 0, m.bytes.slice());
      } else if (m.kind === MessageKind.RecordBatch) {
        if (schemaMsg === undefined) throw bad('an Arrow record batch before its schema');
        if (ended) throw bad('data after the end-of-stream event without a new stream part');
        if (stopped) throw bad('data after the stop event');
        let d: ReturnType<typeof decodeBatch>;
        try {
          d = decodeBatch(schemaMsg, dicts.values(), m.bytes);
        } catch (e) {
          throw bad((e as Error).message);
        }
        if (d.kind !== 'records') line++;
        switch (d.kind) {
          case 'records':
            if (consumer.batch) await run(consumer.batch(d.batch, line + 1));
            else
              for (let i = 0; i < d.batch.length; i++)
                await run(consumer.record(d.batch.rec(i), line + i + 1));
            recNo += d.batch.length;
            line += d.batch.length;
            break;
          case 'watermark':
            if (d.watermark > lastWm) {
              lastWm = d.watermark;
              await run(consumer.watermark(d.watermark));
            }
            break;
          case 'barrier':
            if (part === 1) await run(consumer.barrier(d.barrier));
            break;
          case 'end':
            ended = true;
            if (part === 1) final = d.final;
            break;
          case 'stop':
            stopped = d.stop;
            ended = true;
            break;
        }
      }
      buf.drop(f.size);
      offset += f.size;
      need = 8;
    }
    if (consumer.afterBatch) await run(consumer.afterBatch());
    if (consumer.stopped?.()) return;
    const next = await rest.next();
    if (next.done) break;
    const c = next.value;
    buf.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  }
  if (buf.length > 0 || !ended)
    throw new RuntimeError(
      `${name}: stream cut off after ${recNo} records (byte ${offset}): ${buf.length > 0 ? 'its last Arrow message is incomplete' : 'it stopped without its end-of-stream event'}; the upstream stage failed or was killed; nothing was committed`,
      'see the upstream stage’s error above',
    );
  if (stopped) await run(consumer.stop(stopped));
  else await run(consumer.end(final));
}

function checkSchema(first: Header, next: Header, bad: (why: string) => DataError): void {
  const a = first.schema ?? {};
  for (const [f, t] of Object.entries(next.schema ?? {}))
    if (a[f] !== t)
      throw bad(
        `concatenated stream part declares field '${f}' as ${t}, but the first part ${a[f] === undefined ? 'does not declare it' : `declares it as ${a[f]}`}`,
      );
}
