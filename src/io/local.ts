/**
 * Local file system store (plain paths and `file://`). See store.ts for the contract.
 *
 * Pending files are written as hidden `.NAME.inprogress-RANDOM` siblings (ignored by readers because
 * of the leading dot), fsynced and renamed on commit: rename is atomic within a directory on POSIX.
 * `put(…, {ifAbsent})` writes a temp file and hard-links it into place, which fails with EEXIST if
 * the target exists (the put-if-absent the Delta protocol requires of storage).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RuntimeError } from '../errors.js';
import { type ObjectStore, type PendingFile, registerStore, type StoreEntry } from './store.js';

function toPath(uri: string): string {
  return uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
}

function ioError(what: string, path: string, e: unknown): RuntimeError {
  const err = e as NodeJS.ErrnoException;
  return new RuntimeError(`${what} ${path}: ${err.message}`);
}

class LocalPending implements PendingFile {
  bytes = 0;
  private done = false;
  constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    private readonly target: string,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    await this.fh.write(chunk);
    this.bytes += chunk.byteLength;
  }

  async commit(): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.target);
    this.done = true;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => {});
    await unlink(this.tmp).catch(() => {});
  }
}

export class LocalStore implements ObjectStore {
  async *list(root: string): AsyncIterable<StoreEntry> {
    const base = toPath(root);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(base);
    } catch (e) {
      throw ioError('cannot read', base, e);
    }
    if (st.isFile()) {
      yield { uri: root, size: st.size };
      return;
    }
    // A named pipe, process substitution (`<(zcat x.gz)` is /dev/fd/N) or character device: one
    // stream of unknown size, read once.
    if (!st.isDirectory()) {
      yield { uri: root, size: 0 };
      return;
    }
    const walk = async function* (dir: string, uriDir: string): AsyncGenerator<StoreEntry> {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
        a.name < b.name ? -1 : 1,
      );
      for (const e of entries) {
        const p = join(dir, e.name);
        const u = `${uriDir.replace(/\/+$/, '')}/${e.name}`;
        if (e.isDirectory()) yield* walk(p, u);
        else if (e.isFile() || e.isSymbolicLink()) {
          const s = await stat(p);
          if (s.isFile()) yield { uri: u, size: s.size };
        }
      }
    };
    yield* walk(base, root);
  }

  async stat(uri: string): Promise<StoreEntry | undefined> {
    try {
      const s = await stat(toPath(uri));
      return s.isFile() ? { uri, size: s.size } : undefined;
    } catch {
      return undefined;
    }
  }

  async read(uri: string): Promise<Uint8Array> {
    try {
      return await readFile(toPath(uri));
    } catch (e) {
      throw ioError('cannot read', toPath(uri), e);
    }
  }

  async readRange(uri: string, start: number, end: number): Promise<Uint8Array> {
    const p = toPath(uri);
    let fh: FileHandle | undefined;
    try {
      fh = await open(p, 'r');
      const buf = Buffer.allocUnsafe(end - start);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === buf.length ? buf : buf.subarray(0, off);
    } catch (e) {
      throw ioError('cannot read', p, e);
    } finally {
      await fh?.close();
    }
  }

  readStream(uri: string): AsyncIterable<Uint8Array> {
    return createReadStream(toPath(uri), { highWaterMark: 1 << 20 });
  }

  async create(uri: string): Promise<PendingFile> {
    const target = toPath(uri);
    const dir = dirname(target);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(target)}.inprogress-${randomBytes(6).toString('hex')}`);
    try {
      return new LocalPending(await open(tmp, 'wx'), tmp, target);
    } catch (e) {
      throw ioError('cannot create', tmp, e);
    }
  }

  async put(uri: string, data: Uint8Array | string, opts?: { ifAbsent?: boolean }): Promise<boolean> {
    const target = toPath(uri);
    const dir = dirname(target);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, data, { flush: true });
    try {
      if (opts?.ifAbsent) {
        try {
          await link(tmp, target);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
          throw ioError('cannot write', target, e);
        }
      } else await rename(tmp, target);
      return true;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  async delete(uri: string): Promise<void> {
    await unlink(toPath(uri)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw ioError('cannot delete', toPath(uri), e);
    });
  }
}

const local = new LocalStore();
registerStore('file', () => local);
