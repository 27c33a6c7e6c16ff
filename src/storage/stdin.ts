/**
 * Standard input as a store (`-`): one object, read once, in order. It lets the files source and
 * the text formats treat stdin like any other input (`store.readStream(uri)`), with no `-` special
 * cases of their own. It has no size, cannot be read at random (Parquet needs a file) and cannot be
 * written.
 */
import { createReadStream, fstatSync } from 'node:fs';
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

/** The process's stdin store. */
export const stdinStore: ObjectStore = new StdinStore();
