/**
 * Reads a version-2 (Arrow IPC) kappa stream (arrow.ts, man/kappa-stream.5) and hands its events
 * to a `StreamConsumer`, with the same rules as the version-1 reader (input.ts): the header first,
 * watermarks passed on only when they advance, barriers of later concatenated parts dropped, a
 * later part's schema checked against the first, and a stream without its end event cut off
 * (RuntimeError, exit 1). A new IPC stream (segment) that follows an end-of-stream marker without
 * an end event continues the same part with new columns (the schema grew).
 */
import { DataError, RuntimeError } from '../errors.js';
import { isTransientChunk } from '../storage/stdin.js';
import { decodeBatch, frameMessage, headerOfSchema, type IpcMessage, MessageKind } from './arrow.js';
import type { StreamConsumer } from './input.js';
import { type Barrier, type Header, PROTOCOL_VERSION, type StopInfo } from './protocol.js';

/**
 * One framed message (`message` null: an end-of-stream marker; `size`: its bytes, continuation
 * included). `own`: its bytes are a copy the framer made (no one else holds them), so a decoder
 * may overwrite them (arrow.ts `decodeBatch`, in-place int64 -> double conversion).
 */
export interface Framed {
  message: IpcMessage | null;
  size: number;
  own?: boolean;
}

/**
 * Frames Arrow IPC messages (arrow.ts `frameMessage`) out of a byte stream that arrives in chunks
 * (64 KiB from a pipe), copying each byte at most once. A message that lies inside one chunk at an
 * 8-byte-aligned address is handed out in place (a view of the chunk); any other message is copied
 * once into a buffer of exactly its size, allocated when the IPC length prefix and the metadata's
 * `bodyLength` say how large it is (its own ArrayBuffer: 8-byte aligned, as flechette's typed-array
 * views over the body buffers need). Until a message is complete, arriving chunks are only queued
 * (no re-concatenation per chunk: the previous reader copied the bytes read so far again on every
 * 64 KiB chunk, about 6 copies of each byte of an 800 KB batch message).
 *
 * A transient chunk (`push(c, true)`: its memory is reused once `push` returns, as the stdin
 * reader's buffer is, storage/stdin.ts `stdinStream`) is never kept: its bytes go at once into the
 * message being assembled (header bytes into a small staging buffer until the size is known), so
 * every message is then a copy of its own and no consumer can see the reused memory. From the
 * first transient chunk on, the framer stays in that mode (chunks queued before are fed through it).
 *
 * Protocol: https://arrow.apache.org/docs/format/Columnar.html#encapsulated-message-format
 * (0xFFFFFFFF, int32 metadata length, flatbuffer `Message`, body of `bodyLength` bytes).
 */
export class IpcFramer {
  private chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in `chunks[0]`. */
  private pos = 0;
  private avail = 0;
  /** Bytes that must be queued before framing is tried again. */
  private need = 8;
  /** Size in bytes of the message being assembled, once known (0: not yet). */
  private size = 0;
  // Copying mode (transient chunks): a small staging buffer for the prefix and metadata, the
  // message being filled once its size is known, and the complete messages not yet taken.
  private copying = false;
  private head = new Uint8Array(1024);
  private headLen = 0;
  /** Bytes the staging buffer must hold before framing is tried (8, then 8 + metadata length). */
  private headNeed = 8;
  private dest: Uint8Array | undefined;
  private destLen = 0;
  private ready: Framed[] = [];
  private readyAt = 0;
  private readyBytes = 0;
  private failure: Error | undefined;

  /**
   * Queues a chunk. `transient` false: kept by reference (the caller must not reuse its memory);
   * true: its bytes are copied before this returns (the caller may then reuse its memory).
   */
  push(c: Uint8Array, transient = false): void {
    if (c.length === 0) return;
    if (!transient && !this.copying) {
      this.chunks.push(c);
      this.avail += c.length;
      return;
    }
    if (!this.copying) {
      this.copying = true;
      const queued = this.chunks;
      const from = this.pos;
      this.chunks = [];
      this.pos = 0;
      this.avail = 0;
      this.size = 0;
      this.need = 8;
      for (let i = 0; i < queued.length; i++) this.feed(i === 0 ? queued[0].subarray(from) : queued[i]);
    }
    this.feed(c);
  }

  /** Copying mode: takes every byte of `c` into the staging buffer or the message being filled. */
  private feed(c: Uint8Array): void {
    let p = 0;
    while (p < c.length && this.failure === undefined) {
      const dest = this.dest;
      if (dest !== undefined) {
        const k = Math.min(dest.length - this.destLen, c.length - p);
        dest.set(c.subarray(p, p + k), this.destLen);
        this.destLen += k;
        p += k;
        if (this.destLen === dest.length) this.complete(dest);
        continue;
      }
      const k = Math.min(this.headNeed - this.headLen, c.length - p);
      if (this.head.length < this.headNeed) {
        const h = new Uint8Array(Math.max(this.headNeed, 2 * this.head.length));
        h.set(this.head.subarray(0, this.headLen));
        this.head = h;
      }
      this.head.set(c.subarray(p, p + k), this.headLen);
      this.headLen += k;
      p += k;
      if (this.headLen < this.headNeed) break;
      let f: ReturnType<typeof frameMessage>;
      try {
        f = frameMessage(this.head.subarray(0, this.headLen), 0);
      } catch (e) {
        this.failure = e as Error;
        break;
      }
      if ('need' in f && this.headNeed === 8) {
        this.headNeed = f.need; // 8 + the metadata length
        continue;
      }
      if (!('need' in f) && f.message === null) {
        this.ready.push({ message: null, size: 8 });
        this.readyBytes += 8;
        this.headLen = 0;
        continue;
      }
      // The whole prefix and metadata are here: the message's size is known.
      const size = 'need' in f ? f.need : f.size;
      const d = Buffer.allocUnsafeSlow(size);
      d.set(this.head.subarray(0, this.headLen));
      this.destLen = this.headLen;
      this.headLen = 0;
      this.headNeed = 8;
      if (this.destLen === size) this.complete(d);
      else this.dest = d;
    }
  }

  private complete(d: Uint8Array): void {
    const f = frameMessage(d, 0);
    if ('need' in f) throw new Error('internal: an IPC message shorter than its declared size');
    this.ready.push({ message: f.message, size: f.size, own: true });
    this.readyBytes += f.size;
    this.dest = undefined;
    this.destLen = 0;
  }

  /** Bytes queued and not yet framed. */
  get length(): number {
    return this.copying ? this.readyBytes + this.headLen + this.destLen : this.avail;
  }

  /**
   * The next complete message (`message` null: an end-of-stream marker; `size`: its bytes,
   * continuation included), or undefined when more bytes are needed.
   * @throws Error when the bytes are not an IPC message (arrow.ts `frameMessage`)
   */
  next(): Framed | undefined {
    if (this.copying) {
      if (this.readyAt < this.ready.length) {
        const r = this.ready[this.readyAt];
        this.readyBytes -= r.size;
        if (++this.readyAt === this.ready.length) {
          this.ready.length = 0;
          this.readyAt = 0;
        }
        return r;
      }
      if (this.failure) throw this.failure;
      return undefined;
    }
    if (this.avail < this.need) return undefined;
    if (this.size === 0) {
      const prefix = this.peek(8);
      const f8 = frameMessage(prefix, 0); // throws without the continuation marker
      if (!('need' in f8)) {
        if (f8.message === null) {
          this.skip(8);
          return f8;
        }
        this.size = f8.size;
      } else if (this.avail < f8.need) {
        this.need = f8.need;
        return undefined;
      } else {
        const f = frameMessage(this.peek(f8.need), 0);
        this.size = 'need' in f ? f.need : f.size;
      }
      this.need = this.size;
      if (this.avail < this.size) return undefined;
    }
    const own = !this.inPlace(this.size);
    const bytes = this.take(this.size);
    const f = frameMessage(bytes, 0);
    this.size = 0;
    this.need = 8;
    if ('need' in f) throw new Error('internal: an IPC message shorter than its declared size');
    return { message: f.message, size: f.size, own };
  }

  /** The first `n` (queued) bytes, contiguous: a view when they lie in one chunk, else a copy. */
  private peek(n: number): Uint8Array {
    const c = this.chunks[0];
    if (c.length - this.pos >= n) return c.subarray(this.pos, this.pos + n);
    const out = new Uint8Array(n);
    this.copyTo(out, false);
    return out;
  }

  /** True when the first `n` (queued) bytes lie in one chunk at an aligned address (`take` gives a view). */
  private inPlace(n: number): boolean {
    const c = this.chunks[0];
    return c.length - this.pos >= n && (c.byteOffset + this.pos) % 8 === 0;
  }

  /** Removes the first `n` (queued) bytes; returns them contiguous and 8-byte aligned. */
  private take(n: number): Uint8Array {
    const c = this.chunks[0];
    if (this.inPlace(n)) {
      const v = c.subarray(this.pos, this.pos + n);
      this.skip(n);
      return v;
    }
    // Not zero-filled (every byte is copied over) and never from Node's shared pool: its own
    // ArrayBuffer, so the message starts 8-byte aligned.
    const out = Buffer.allocUnsafeSlow(n);
    this.copyTo(out, true);
    return out;
  }

  /** Fills `out` from the queue front; `consume`: remove those bytes from the queue. */
  private copyTo(out: Uint8Array, consume: boolean): void {
    let at = 0;
    let i = 0;
    let pos = this.pos;
    while (at < out.length) {
      const c = this.chunks[i];
      const k = Math.min(c.length - pos, out.length - at);
      out.set(c.subarray(pos, pos + k), at);
      at += k;
      pos += k;
      if (pos === c.length) {
        i++;
        pos = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, i);
      this.pos = pos;
      this.avail -= out.length;
    }
  }

  private skip(n: number): void {
    this.avail -= n;
    let pos = this.pos + n;
    let i = 0;
    while (i < this.chunks.length && pos >= this.chunks[i].length) {
      pos -= this.chunks[i].length;
      i++;
    }
    if (i > 0) this.chunks.splice(0, i);
    this.pos = pos;
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
  const buf = new IpcFramer();
  buf.push(first, isTransientChunk(first));
  let header: Header | undefined;
  let schemaMsg: Uint8Array | undefined;
  // The dictionary messages in force, per dictionary id: the last replacement and its deltas.
  const dicts = new Map<number, Uint8Array[]>();
  let ended = false; // an end event was read (acted on at EOF unless another part follows)
  let stopped: StopInfo | undefined; // a stop event was read: nothing may follow
  let final: Barrier | undefined; // the final checkpoint the first part's end event carries
  let part = 1;
  let lastWm = Number.NEGATIVE_INFINITY;
  let recNo = 0;
  let line = 0; // the line the last event would have in the version-1 encoding of the stream
  let offset = 0; // stream byte offset of the next message (for messages)
  const bad = (why: string) => new DataError(`${name} byte ${offset}: ${why}`);
  const run = async (p: void | Promise<void>) => {
    if (p) await p;
  };
  for (;;) {
    for (;;) {
      let f: ReturnType<IpcFramer['next']>;
      try {
        f = buf.next();
      } catch (e) {
        throw bad(`${(e as Error).message}; a version-2 stream is an Arrow IPC stream`);
      }
      if (f === undefined) break;
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
        // A delta (isDelta) appends to the dictionary in force; any other replaces it.
        const id = m.dictId ?? 0;
        const own = m.bytes.slice();
        const prev = dicts.get(id);
        if (m.isDelta && prev) prev.push(own);
        else dicts.set(id, [own]);
      } else if (m.kind === MessageKind.RecordBatch) {
        if (schemaMsg === undefined) throw bad('an Arrow record batch before its schema');
        if (ended) throw bad('data after the end-of-stream event without a new stream part');
        if (stopped) throw bad('data after the stop event');
        let d: ReturnType<typeof decodeBatch>;
        try {
          d = decodeBatch(schemaMsg, [...dicts.values()].flat(), m.bytes, f.own === true);
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
      offset += f.size;
    }
    if (consumer.afterBatch) await run(consumer.afterBatch());
    if (consumer.stopped?.()) return;
    const next = await rest.next();
    if (next.done) break;
    const c = next.value;
    if (typeof c === 'string') buf.push(Buffer.from(c, 'latin1'));
    else buf.push(c, isTransientChunk(c));
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
