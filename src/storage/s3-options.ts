/**
 * The light half of the S3 connector: `--s3-endpoint`, the shared settings, and the `s3` store
 * registration. The AWS SDK (about 70 ms of start-up) is imported only when an `s3://` URI is
 * actually used, so commands that never touch S3 do not pay for it.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { InProgressFile, ObjectStore, PendingFile, PendingRecord, StoreEntry } from './store.js';

/** Settings shared by every S3 store in the process (set from flags before the command runs). */
export const s3Config: { endpoint?: string } = {};

/**
 * Adds `--s3-endpoint URL` to a command and applies it before the action runs. Used by the
 * commands that read or write object stores (ingest, sink).
 */
export function withS3Options(cmd: Command): Command {
  return cmd
    .option(
      '--s3-endpoint <url>',
      'S3-compatible endpoint for s3:// URIs (path-style), e.g. http://127.0.0.1:9000; default: $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS',
    )
    .hook('preAction', (c) => {
      const e = c.opts().s3Endpoint as string | undefined;
      if (e !== undefined) {
        if (!/^https?:\/\/[^/]+/.test(e))
          throw new UsageError(`--s3-endpoint: expected http(s)://host[:port], got '${e}'`);
        s3Config.endpoint = e;
      }
    });
}

/** Delegates every call to the real store in s3.ts, imported on first use. */
class LazyS3Store implements ObjectStore {
  private real: Promise<ObjectStore> | undefined;
  private store(): Promise<ObjectStore> {
    this.real ??= import('./s3.js').then((m) => m.sharedS3Store);
    return this.real;
  }
  async *list(root: string): AsyncIterable<StoreEntry> {
    yield* (await this.store()).list(root);
  }
  async stat(uri: string): Promise<StoreEntry | undefined> {
    return (await this.store()).stat(uri);
  }
  async read(uri: string): Promise<Uint8Array> {
    return (await this.store()).read(uri);
  }
  async readRange(uri: string, start: number, end: number): Promise<Uint8Array> {
    return (await this.store()).readRange(uri, start, end);
  }
  async *readStream(uri: string): AsyncIterable<Uint8Array> {
    yield* (await this.store()).readStream(uri);
  }
  async create(uri: string): Promise<PendingFile> {
    return (await this.store()).create(uri);
  }
  async put(uri: string, data: Uint8Array | string, opts?: { ifAbsent?: boolean }): Promise<boolean> {
    return (await this.store()).put(uri, data, opts);
  }
  async delete(uri: string): Promise<void> {
    return (await this.store()).delete(uri);
  }
  async publish(rec: PendingRecord): Promise<void> {
    return (await this.store()).publish(rec);
  }
  async discard(rec: PendingRecord): Promise<void> {
    return (await this.store()).discard(rec);
  }
  async *listInProgress(root: string): AsyncIterable<InProgressFile> {
    yield* (await this.store()).listInProgress(root);
  }
}

/** The process's s3:// store; the AWS SDK loads on its first use. */
export const s3Store: ObjectStore = new LazyS3Store();
