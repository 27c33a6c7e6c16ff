/**
 * Standard input as a store (`-`): one object, read once, in order. It lets the files source and
 * the text formats treat stdin like any other input (`store.readStream(uri)`), with no `-` special
 * cases of their own. It has no size, cannot be read at random (Parquet needs a file) and cannot be
 * written.
 */
import { createReadStream, fstatSync, read } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import { UsageError } from '../errors.js';
import type { InProgressFile, ObjectStore, PendingFile, PendingRecord, StoreEntry } from './store.js';

/** The URI of standard input. */
export const STDIN_URI = '-';

function notWritable(): never {
  throw new UsageError("'-' (stdin) is an input; it cannot be written");
}

class StdinStore implements ObjectStore {
  readonly sequential = true;
  private taken = false;

  async *list(root: string): AsyncIterable<StoreEntry> {
    if (root === STDIN_URI) yield { uri: STDIN_URI, size: 0 };
  }

  async stat(uri: string): Promise<StoreEntry | undefined> {
    return uri === STDIN_URI ? { uri, size: 0 } : undefined;
  }

  read(): Promise<Uint8Array> {
    throw new UsageError('stdin cannot be read at random (Parquet needs random access); pass a file path');
  }

  readRange(): Promise<Uint8Array> {
    return this.read();
  }

  /**
   * The bytes of stdin. Stdin can be read once per process.
   * @throws UsageError for another URI, or when stdin was already read (`-` given twice)
   */
  readStream(uri: string): AsyncIterable<Uint8Array> {
    if (uri !== STDIN_URI) throw new UsageError(`stdin store: no object '${uri}'`);
    if (this.taken) throw new UsageError("'-' (stdin) can be read only once; give it once");
    this.taken = true;
    return stdinChunks();
  }

  create(): Promise<PendingFile> {
    return notWritable();
  }
  put(): Promise<boolean> {
    return notWritable();
  }
  delete(): Promise<void> {
    return notWritable();
  }
  publish(_rec: PendingRecord): Promise<void> {
    return notWritable();
  }
  async discard(): Promise<void> {}
  async *listInProgress(): AsyncIterable<InProgressFile> {}
}

/**
 * Stdin's bytes. When stdin is a regular file (`kappa ingest - < file`), it is read as a file in
 * 1 MiB chunks, as a file path is: Node's `process.stdin` reads a file in 64 KiB chunks, one
 * thread-pool round trip each, and the main thread idled about a quarter of the run waiting on
 * them (bench scenario 1b, `kappa run`: 0.8 s idle of 3.2 s). A pipe, terminal or socket keeps
 * `process.stdin`.
 */
function stdinChunks(): AsyncIterable<Uint8Array> {
  let regular = false;
  try {
    regular = fstatSync(0).isFile();
  } catch {
    regular = false;
  }
  if (!regular) return process.stdin as AsyncIterable<Buffer>;
  return createReadStream('', { fd: 0, autoClose: false, highWaterMark: 1 << 20 });
}

/** ArrayBuffers whose memory a stdin reader reuses (`stdinStream`). */
const reused = new WeakSet<ArrayBufferLike>();

/**
 * True when `c` is a view of memory that its reader reuses for the next chunk (`stdinStream`): a
 * consumer that keeps bytes past its next read of the stream must copy them (the version-2 framer
 * does, `IpcFramer.push(c, true)`).
 */
export function isTransientChunk(c: Uint8Array): boolean {
  return reused.has(c.buffer);
}

/**
 * Declares that a reader reuses the memory of `buf` for its next chunk (what `stdinStream` does
 * with its own buffer), so that `isTransientChunk` is true for views of it. For other readers and
 * tests that hand out chunks of a reused buffer.
 */
export function markReused(buf: ArrayBufferLike): void {
  reused.add(buf);
}

/** Read buffer sizes in bytes: a pipe delivers at most its capacity (64 KiB) per read. */
const PIPE_READ_BYTES = 256 << 10;
const FILE_READ_BYTES = 1 << 20;

/**
 * The bytes of the process's stdin for a stage that reads a kappa stream (operators, sinks), read
 * into ONE reusable buffer: each chunk is valid only until the next `next()` of the iterator
 * (`isTransientChunk` tells such chunks apart). A pipe or socket is read through a `net.Socket`
 * with `onread` (Node's user-buffer reads: the socket pauses after each chunk and resumes at the
 * next `next()`); a regular file with `fs.read` in 1 MiB reads; anything else (a terminal) is
 * `process.stdin`. Why: `process.stdin` allocates a new 64 KiB ArrayBuffer per read; V8 counts
 * ArrayBuffer memory allocated since the last mark-compact against the old generation's limit, so
 * the 145 MB of a 3M-row version-2 stream cost about a dozen mark-compact GCs of a 10 MB heap
 * (bench/ANALYSIS.md, "GC on the v2 read side").
 * Consumers: `readStream` (input.ts), whose version-1 reader decodes each chunk at once and whose
 * version-2 framer copies transient chunks.
 * @throws nothing here; read errors surface from `next()` (as Node's errors, e.g. EIO)
 */
export function stdinStream(): AsyncIterable<Buffer> {
  let st: ReturnType<typeof fstatSync> | undefined;
  try {
    st = fstatSync(0);
  } catch {
    st = undefined;
  }
  if (st?.isFile()) return fileChunks();
  if (st?.isFIFO() || st?.isSocket()) return { [Symbol.asyncIterator]: pipeChunks };
  return process.stdin as AsyncIterable<Buffer>;
}

async function* fileChunks(): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafeSlow(FILE_READ_BYTES);
  reused.add(buf.buffer);
  for (;;) {
    const n = await new Promise<number>((resolve, reject) =>
      read(0, buf, 0, buf.length, null, (e, k) => (e ? reject(e) : resolve(k))),
    );
    if (n === 0) return;
    yield buf.subarray(0, n);
  }
}

/** Node's `onread` socket option (net.Socket, since Node 12; not in @types/node's constructor type). */
interface OnReadOpts {
  onread: { buffer: Uint8Array; callback: (bytesWritten: number, buf: Uint8Array) => boolean | undefined };
}

function pipeChunks(): AsyncIterator<Buffer> {
  const buf = Buffer.allocUnsafeSlow(PIPE_READ_BYTES);
  reused.add(buf.buffer);
  let pending: Buffer | undefined;
  let lent = false; // a chunk was handed out: reading is paused until the next next()
  let ended = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const opts: SocketConstructorOpts & OnReadOpts = {
    fd: 0,
    readable: true,
    writable: false,
    onread: {
      buffer: buf,
      callback: (n: number) => {
        pending = buf.subarray(0, n);
        wake?.();
        return false; // pause: the buffer is not read into again before the chunk is released
      },
    },
  };
  const sock = new Socket(opts);
  sock.on('end', () => {
    ended = true;
    wake?.();
  });
  sock.on('error', (e: Error) => {
    failed = e;
    wake?.();
  });
  return {
    async next(): Promise<IteratorResult<Buffer>> {
      if (lent) {
        lent = false;
        sock.resume();
      }
      while (pending === undefined && !ended && failed === undefined)
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      wake = undefined;
      if (pending !== undefined) {
        const c = pending;
        pending = undefined;
        lent = true;
        return { done: false, value: c };
      }
      if (failed) throw failed;
      return { done: true, value: undefined };
    },
    async return(): Promise<IteratorResult<Buffer>> {
      sock.destroy();
      return { done: true, value: undefined };
    },
  };
}

/** The process's stdin store. */
export const stdinStore: ObjectStore = new StdinStore();
