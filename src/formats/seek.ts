/**
 * Resuming a file read at a saved position (issue 9, "sources seek to its positions"): the bytes
 * of a text file from a byte offset (a ranged read for plain files; decompress-and-skip for gzip
 * and zstd, which cannot be entered in the middle), chunks cut at line ends so a reader can tell
 * the exact byte offset after each batch, and a generic row skip for readers that cannot seek
 * (JSON arrays).
 */
import { DataError } from '../errors.js';
import { displayName, type ObjectStore } from '../storage/store.js';
import { codecForBytes, decompressed } from './compression.js';
import type { RowBatch } from './format.js';

/** Bytes per ranged read when streaming a plain file from an offset (as the local store's stream). */
const RANGE_CHUNK = 1 << 20;

/**
 * The decompressed bytes of `uri` from offset `byte` on (0: the whole file, as `decompressed`).
 * A plain file is read with ranged reads from `byte` (no byte before it is read); a gzip or zstd
 * file is decompressed from its start and the first `byte` decompressed bytes are dropped.
 * @param byte offset into the decompressed bytes
 * @throws DataError when the file ends before `byte` (it changed since the position was taken)
 */
export async function* bytesFrom(
  store: ObjectStore,
  uri: string,
  byte: number,
): AsyncGenerator<Uint8Array | string> {
  if (byte <= 0) {
    yield* decompressed(store.readStream(uri), uri);
    return;
  }
  const head = await store.readRange(uri, 0, 4);
  if (codecForBytes(head) !== undefined) {
    yield* skipBytes(decompressed(store.readStream(uri), uri), byte, uri);
    return;
  }
  const st = await store.stat(uri);
  const size = st?.size ?? 0;
  if (size < byte) throw shorter(uri, byte, size);
  for (let at = byte; at < size; at += RANGE_CHUNK) {
    const b = await store.readRange(uri, at, Math.min(size, at + RANGE_CHUNK));
    if (b.byteLength === 0) return;
    yield b;
  }
}

function shorter(uri: string, byte: number, size: number): DataError {
  return new DataError(
    `${displayName(uri)}: cannot resume at byte ${byte}: the file has only ${size} bytes (it changed since the checkpoint)`,
    'restore the input as it was, or start without --resume',
  );
}

/** `input` without its first `n` bytes. @throws DataError when it has fewer */
async function* skipBytes(
  input: AsyncIterable<Uint8Array | string>,
  n: number,
  uri: string,
): AsyncGenerator<Uint8Array> {
  let left = n;
  for await (const c of input) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    if (left >= b.byteLength) {
      left -= b.byteLength;
      continue;
    }
    yield left > 0 ? b.subarray(left) : b;
    left = 0;
  }
  if (left > 0) throw shorter(uri, n, n - left);
}

/**
 * Re-chunks a byte stream so that every chunk holding a line feed ends right after its last one;
 * the bytes after it go in front of the next chunk (as a separate, newline-free chunk). A line
 * splitter fed these chunks holds no partial line (and no partial UTF-8 sequence) whenever a
 * chunk with a line feed has been consumed, so the bytes consumed so far are exactly the offset of
 * the next line. Chunks without a line feed (parts of a very long line) pass through as they are.
 */
export async function* lineAligned(input: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const c of input) {
    const b = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    const nl = b.lastIndexOf(0x0a);
    if (nl < 0) {
      if (carry) {
        yield carry;
        carry = undefined;
      }
      yield b;
      continue;
    }
    if (carry) yield carry;
    yield nl === b.byteLength - 1 ? b : b.subarray(0, nl + 1);
    carry = nl === b.byteLength - 1 ? undefined : b.subarray(nl + 1);
  }
  if (carry) yield carry;
}

/**
 * The rows of `batches` after the first `n` (bad rows count as rows): whole batches are dropped,
 * the batch holding row `n` is cut so that its row 0 is the original row `n` (locations, raw text,
 * errors and the other per-row accessors shifted alike).
 */
export async function* skipRows(batches: AsyncIterable<RowBatch>, n: number): AsyncGenerator<RowBatch> {
  let left = n;
  for await (const b of batches) {
    if (left === 0) {
      yield b;
      continue;
    }
    if (left >= b.rows.length) {
      left -= b.rows.length;
      continue;
    }
    yield sliceBatch(b, left);
    left = 0;
  }
}

/** Rows `from …` of a batch, as a batch of its own. */
export function sliceBatch(b: RowBatch, from: number): RowBatch {
  let errors: Map<number, string> | undefined;
  if (b.errors)
    for (const [i, why] of b.errors)
      if (i >= from) {
        errors ??= new Map();
        errors.set(i - from, why);
      }
  const out: RowBatch = {
    ...b,
    rows: b.rows.slice(from),
    errors,
    where: (i) => b.where(i + from),
    raw: (i) => b.raw(i + from),
  };
  const { nativeTs, nativeKey, prov, headers } = b;
  if (nativeTs) out.nativeTs = (i) => nativeTs.call(b, i + from);
  if (nativeKey) out.nativeKey = (i) => nativeKey.call(b, i + from);
  if (prov) out.prov = (i) => prov.call(b, i + from);
  if (headers) out.headers = (i) => headers.call(b, i + from);
  return out;
}
