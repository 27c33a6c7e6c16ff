/**
 * Transparent decompression of text inputs (NDJSON, JSON, CSV, TSV), streamed chunk by chunk as
 * Spark, DuckDB and Vector read compressed files.
 *
 * - gzip (RFC 1952, magic `1f 8b`, `.gz`/`.gzip`): node:zlib's gunzip, concatenated members included.
 * - Zstandard (RFC 8878, magic `28 b5 2f fd`, `.zst`/`.zstd`): fzstd's streaming `Decompress`
 *   (Node 20's zlib has no zstd; @bokuweb/zstd-wasm only decompresses whole buffers).
 *
 * The codec is chosen by the file's magic bytes, so stdin, pipes and misnamed files work too; a
 * `.gz`/`.zst` name whose bytes are not that codec is a data error, as is corrupt or truncated
 * compressed data (exit 3, naming the file).
 */
import { createGunzip } from 'node:zlib';
import { DataError } from '../errors.js';
import { displayName } from '../storage/store.js';

export type Codec = 'gzip' | 'zstd';

const EXTENSIONS: Record<string, Codec> = { gz: 'gzip', gzip: 'gzip', zst: 'zstd', zstd: 'zstd' };

/** The codec a file name's last extension names (`x.ndjson.gz` -> gzip), or undefined. */
export function codecForPath(uri: string): Codec | undefined {
  const base = (uri.split('/').pop() ?? uri).toLowerCase();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? EXTENSIONS[base.slice(dot + 1)] : undefined;
}

/** The codec whose magic number starts `head`, or undefined. */
export function codecForBytes(head: Uint8Array): Codec | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return undefined;
}

const toBytes = (c: Uint8Array | string): Uint8Array => (typeof c === 'string' ? Buffer.from(c) : c);

/**
 * The decompressed bytes of `input` when it starts with a gzip or zstd magic number, else `input`
 * unchanged. Reads ahead at most 4 bytes to decide.
 * @param uri the input's name for messages (`-` for stdin)
 * @throws DataError when the name says `.gz`/`.zst` but the bytes are not, or the data is corrupt
 */
export async function* decompressed(
  input: AsyncIterable<Uint8Array | string>,
  uri: string,
): AsyncGenerator<Uint8Array | string> {
  const name = displayName(uri);
  const it = input[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = toBytes(r.value);
    head.push(b);
    have += b.byteLength;
  }
  const first = Buffer.concat(head);
  const codec = codecForBytes(first);
  const named = codecForPath(uri);
  if (named && codec !== named && first.length > 0)
    throw new DataError(
      `${name}: the name says ${named} but the data is not ${named}-compressed (first bytes ${first.subarray(0, 4).toString('hex')})`,
      'rename the file or recompress it',
    );
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (first.length > 0) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield toBytes(r.value);
    }
  }
  if (codec === undefined) {
    yield* rest();
    return;
  }
  const corrupt = (e: unknown) =>
    new DataError(`${name}: corrupt or truncated ${codec} data: ${(e as Error).message}`);
  if (codec === 'gzip') {
    const gunzip = createGunzip();
    // Feeds the compressed bytes with back-pressure; stops when the consumer stopped (destroyed).
    const feed = (async () => {
      try {
        for await (const b of rest()) {
          if (gunzip.destroyed) return;
          if (!gunzip.write(b))
            await new Promise<void>((r) => {
              const done = () => {
                gunzip.off('drain', done);
                gunzip.off('close', done);
                r();
              };
              gunzip.on('drain', done);
              gunzip.on('close', done);
            });
        }
        if (!gunzip.destroyed) gunzip.end();
      } catch (e) {
        gunzip.destroy(e as Error);
      }
    })();
    try {
      for await (const out of gunzip) yield out as Buffer;
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('Z_')) throw corrupt(e);
      throw e;
    } finally {
      gunzip.destroy();
    }
    await feed;
    return;
  }
  // zstd: fzstd (loaded on the first zstd input) calls back synchronously from push().
  const { Decompress } = await import('fzstd');
  let out: Uint8Array[] = [];
  const z = new Decompress((data) => {
    out.push(data);
  });
  let ended = false;
  try {
    for await (const b of rest()) {
      z.push(b);
      if (out.length > 0) {
        const o = out;
        out = [];
        yield* o;
      }
    }
    z.push(new Uint8Array(0), true);
    ended = true;
  } catch (e) {
    // fzstd's own errors carry a numeric ZstdErrorCode; anything else (I/O) passes through.
    if (ended || typeof (e as { code?: unknown }).code !== 'number') throw e;
    throw corrupt(e);
  }
  yield* out;
}
