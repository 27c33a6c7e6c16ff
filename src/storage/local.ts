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
import type { InProgressFile, ObjectStore, PendingFile, PendingRecord, StoreEntry } from './store.js';

function toPath(uri: string): string {
  return uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
}

function ioError(what: string, path: string, e: unknown): RuntimeError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT')
    return new RuntimeError(
      `${what} ${path}: no space left on the device (${err.code})`,
      'free space or write to another file system; nothing of this run was committed',
    );
  return new RuntimeError(`${what} ${path}: ${err.message}`);
}

/** Matches a hidden in-progress name `.NAME.inprogress-HEX` and captures NAME. */
const INPROGRESS_RE = /^\.(.+)\.inprogress-[0-9a-f]+$/;

/**
 * Bytes a local pending file may have queued (accepted by `write` but not yet written) before
 * `write` waits for them: the write-behind bound.
 */
export const WRITE_BEHIND_BYTES = 8 << 20;

/**
 * Bytes a local pending file gathers in memory before it hands them to the file system as one
 * write (and at `finish`): a part file of a few row groups and its footer cost one `write(2)` (and
 * one wake-up of a libuv pool thread) instead of one per chunk. Bounds the memory per open file.
 */
export const COALESCE_BYTES = 64 << 10;

/**
 * A hidden in-progress file written behind the caller: `write` queues the chunk after the earlier
 * ones and resolves as soon as it is queued (it waits only while more than WRITE_BEHIND_BYTES are
 * queued), so the caller encodes the next row group while the libuv thread pool writes (and the
 * sink, with many partition files open, never waits for one file's write at a time). The first
 * failed write is kept and thrown by the next `write` and by `finish`, naming the file; nothing
 * after it is written. Chunks are written as given: the caller must not modify a
 * chunk after passing it (every caller hands over a fresh buffer).
 */
class LocalPending implements PendingFile {
  bytes = 0;
  private done = false;
  private finished = false;
  private error: RuntimeError | undefined;
  /** The last queued write; never rejects (a failure lands in `error`). */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  /** Chunks accepted but not yet queued (at most COALESCE_BYTES together, see COALESCE_BYTES). */
  private gathered: Uint8Array[] = [];
  private gatheredBytes = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    private readonly target: string,
  ) {}

  write(chunk: Uint8Array): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    this.bytes += chunk.byteLength;
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.byteLength;
    if (this.gatheredBytes < COALESCE_BYTES) return Promise.resolve();
    return this.queue();
  }

  /** Queues the gathered chunks as one write; waits while more than WRITE_BEHIND_BYTES are queued. */
  private queue(): Promise<void> {
    const g = this.gathered;
    const chunk = g.length === 1 ? g[0] : Buffer.concat(g, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    const n = chunk.byteLength;
    this.queued += n;
    this.tail = this.tail.then(async () => {
      try {
        // A write may be partial (e.g. the device filled up): write the rest; the next call fails.
        let off = 0;
        while (!this.error && off < n) {
          const { bytesWritten } = await this.fh.write(chunk, off, n - off);
          off += bytesWritten;
        }
      } catch (e) {
        this.error ??= ioError('cannot write', `${this.target} (in-progress file ${this.tmp})`, e);
      } finally {
        this.queued -= n;
      }
    });
    if (this.queued <= WRITE_BEHIND_BYTES) return Promise.resolve();
    return this.tail.then(() => this.check());
  }

  private check(): void {
    if (this.error) throw this.error;
  }

  async finish(): Promise<PendingRecord> {
    if (!this.finished) {
      if (this.gatheredBytes > 0 && !this.error) await this.queue();
      await this.tail;
      this.check();
      try {
        // fsync before close: the bytes are durable before `publish` renames the file into place
        // and before a commit (Delta log, Kafka transaction) names it.
        await this.fh.sync();
        await this.fh.close();
      } catch (e) {
        throw ioError('cannot write', `${this.target} (in-progress file ${this.tmp})`, e);
      }
      this.finished = true;
    }
    return { store: 'file', tmp: this.tmp, target: this.target, bytes: this.bytes };
  }

  async commit(): Promise<void> {
    await localStore.publish(await this.finish());
    this.done = true;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // Stop the queue (writes check `error`), let the queued operation end, then remove the file.
    this.error ??= new RuntimeError(`${this.target}: write after abort`);
    this.gathered = [];
    this.gatheredBytes = 0;
    await this.tail;
    if (!this.finished) await this.fh.close().catch(() => {});
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

  /** Directories this store created or found existing in this process (see `inDir`). */
  private readonly dirs = new Set<string>();

  /**
   * Runs `op`, which creates a file in `dir`, after creating `dir` (with its parents) the first
   * time this process writes into it: one mkdir per partition directory per run, not one per file.
   * A directory removed since (ENOENT from `op`) is created again and `op` run once more.
   */
  private async inDir<T>(dir: string, op: () => Promise<T>): Promise<T> {
    if (!this.dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.dirs.add(dir);
      return op();
    }
    try {
      return await op();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.dirs.delete(dir);
      await mkdir(dir, { recursive: true });
      this.dirs.add(dir);
      return op();
    }
  }

  async create(uri: string): Promise<PendingFile> {
    const target = toPath(uri);
    const dir = dirname(target);
    const tmp = join(dir, `.${basename(target)}.inprogress-${randomBytes(6).toString('hex')}`);
    // The file exists when create returns (a crash leaves an in-progress file recovery removes).
    let fh: FileHandle;
    try {
      fh = await this.inDir(dir, () => open(tmp, 'wx'));
    } catch (e) {
      throw ioError('cannot create', tmp, e);
    }
    return new LocalPending(fh, tmp, target);
  }

  async put(uri: string, data: Uint8Array | string, opts?: { ifAbsent?: boolean }): Promise<boolean> {
    const target = toPath(uri);
    const dir = dirname(target);
    if ((typeof data === 'string' ? data.length : data.byteLength) === 0) {
      // An empty file (a `_SUCCESS` marker) has no bytes to make durable or to see half written:
      // created at its name directly (truncated if it exists), no temp file, write or fsync.
      try {
        await (await this.inDir(dir, () => open(target, opts?.ifAbsent ? 'wx' : 'w'))).close();
      } catch (e) {
        if (opts?.ifAbsent && (e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw ioError('cannot write', target, e);
      }
      return true;
    }
    const tmp = join(dir, `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      // flush: fsync before close, so the content is durable before the rename or link names it
      // (a crash never leaves a committed name on a file of unwritten bytes).
      await this.inDir(dir, () => writeFile(tmp, data, { flush: true }));
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw ioError('cannot write', target, e);
    }
    if (opts?.ifAbsent) {
      // link fails with EEXIST when the target exists (put-if-absent); the temp name goes either way.
      try {
        await link(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw ioError('cannot write', target, e);
      } finally {
        await unlink(tmp).catch(() => {});
      }
      return true;
    }
    try {
      await rename(tmp, target);
    } catch (e) {
      // A successful rename leaves no temp name behind; only a failed one needs the unlink.
      await unlink(tmp).catch(() => {});
      throw ioError('cannot write', target, e);
    }
    return true;
  }

  async delete(uri: string): Promise<void> {
    await unlink(toPath(uri)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw ioError('cannot delete', toPath(uri), e);
    });
  }

  async publish(rec: PendingRecord): Promise<void> {
    if (rec.store !== 'file') throw new RuntimeError(`${rec.uri}: not a local pending file`);
    try {
      await rename(rec.tmp, rec.target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && (await this.stat(rec.target))) return;
      throw ioError('cannot publish', `${rec.tmp} as ${rec.target}`, e);
    }
  }

  async discard(rec: PendingRecord): Promise<void> {
    if (rec.store === 'file') await unlink(rec.tmp).catch(() => {});
  }

  /**
   * Hidden `.NAME.inprogress-HEX` files below `root` (each reported under its final name); when
   * `root` is not a directory (a single file's path), its own in-progress siblings only.
   */
  async *listInProgress(root: string): AsyncIterable<InProgressFile> {
    const base = toPath(root);
    if (
      !(await stat(base).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      let names: string[];
      try {
        names = await readdir(dirname(base));
      } catch {
        return;
      }
      for (const n of names.sort()) {
        if (INPROGRESS_RE.exec(n)?.[1] !== basename(base)) continue;
        const p = join(dirname(base), n);
        const started = await stat(p).then(
          (s) => s.mtimeMs,
          () => undefined,
        );
        yield { uri: base, started, discard: () => unlink(p).catch(() => {}) };
      }
      return;
    }
    const walk = async function* (dir: string): AsyncGenerator<InProgressFile> {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          yield* walk(p);
          continue;
        }
        const m = INPROGRESS_RE.exec(e.name);
        if (!m) continue;
        const started = await stat(p).then(
          (s) => s.mtimeMs,
          () => undefined,
        );
        yield { uri: join(dir, m[1]), started, discard: () => unlink(p).catch(() => {}) };
      }
    };
    yield* walk(base);
  }
}

/** The process's local store (plain paths and file://). */
export const localStore = new LocalStore();
