/**
 * S3 object store (`s3://bucket/prefix`), on @aws-sdk/client-s3. See store.ts for the contract.
 *
 * - Credentials and region: the SDK's standard chain (env, shared config/credentials files, SSO,
 *   container/instance metadata). Region falls back to `us-east-1` when none is configured.
 * - Endpoint: `--s3-endpoint URL` (ingest, sink), else `AWS_ENDPOINT_URL_S3`, else
 *   `AWS_ENDPOINT_URL`. A custom endpoint (S3Proxy, MinIO, …) uses path-style addressing and sends
 *   checksums only when an operation requires them (many S3-compatible servers reject the SDK's
 *   default CRC32 trailers).
 * - Retries: the SDK's standard retry strategy (exponential backoff with full jitter, base 100 ms,
 *   cap 20 s) on throttling (503 SlowDown, …), 500/502/503/504, timeouts and connection resets
 *   (ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT), bounded to `KAPPA_S3_MAX_ATTEMPTS` attempts in
 *   all (default 6). A permanent error, or a transient one that outlived its attempts, becomes a
 *   `RuntimeError` (exit 1) naming bucket and key; missing or rejected credentials become a
 *   `ConfigError` (exit 78): retrying cannot fix them, the user's configuration must change.
 * - `create()`: bytes are buffered up to one part (`partSize`, default 8 MiB). A file that stays
 *   below one part is written with one PutObject on commit; a larger one is a multipart upload
 *   (CreateMultipartUpload on the first full part, UploadPart per part, CompleteMultipartUpload on
 *   commit). Either way nothing is visible at the key before `commit()`; `abort()` issues
 *   AbortMultipartUpload so no parts linger.
 * - `put(…, {ifAbsent})`: PutObject with `If-None-Match: *` (S3 conditional writes, 2024), so two
 *   writers of the same Delta log entry cannot both win; 412 Precondition Failed returns false.
 */
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ConfigError, RuntimeError, UsageError } from '../errors.js';
import { s3Config } from './s3-options.js';
import type { InProgressFile, ObjectStore, PendingFile, PendingRecord, StoreEntry } from './store.js';

export { s3Config };

// The SDK warns on stderr about Node < 22 support after 2027; kappa supports Node 20 and keeps
// stderr for its own messages.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** A parsed `s3://bucket/key` URI. */
export interface S3Location {
  bucket: string;
  /** Key without a leading slash; '' for the bucket root. */
  key: string;
}

/** Parses `s3://bucket[/key]`. Throws UsageError when there is no bucket. */
export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(uri);
  if (!m) throw new UsageError(`'${uri}' is not an s3://bucket/key URI`);
  return { bucket: m[1], key: m[2] };
}

/** S3 error codes that mean the credentials are missing, wrong or not allowed. */
const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/**
 * Maps an SDK failure on `s3://bucket/key` to a kappa error: ConfigError for credentials (exit 78),
 * RuntimeError for everything else (exit 1), naming bucket, key, S3 error code and HTTP status.
 */
export function s3Error(what: string, loc: S3Location, e: unknown): Error {
  if (e instanceof RuntimeError || e instanceof ConfigError) return e;
  const err = e as Error & { Code?: string; code?: string; $metadata?: { attempts?: number } };
  const where = `s3://${loc.bucket}/${loc.key}`;
  const code = err?.name ?? err?.Code ?? err?.code ?? 'Error';
  const status = statusOf(e);
  const attempts = err?.$metadata?.attempts;
  if (AUTH_CODES.has(code) || status === 403 || err?.name === 'CredentialsProviderError')
    return new ConfigError(
      `${what} ${where}: S3 rejected the credentials (${code}${status ? ` ${status}` : ''}): ${err?.message ?? ''}`.trim(),
      'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE and the bucket policy; for S3-compatible servers also --s3-endpoint',
    );
  if (code === 'NoSuchBucket')
    return new RuntimeError(`${what} ${where}: bucket '${loc.bucket}' does not exist`);
  const detail = [
    code,
    status ? `HTTP ${status}` : undefined,
    attempts && attempts > 1 ? `after ${attempts} attempts` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return new RuntimeError(`${what} ${where}: ${detail}: ${err?.message ?? String(e)}`);
}

function maxAttempts(): number {
  const v = Number(process.env.KAPPA_S3_MAX_ATTEMPTS ?? 6);
  return Number.isInteger(v) && v >= 1 ? v : 6;
}

const clients = new Map<string, S3Client>();

/** The shared client for the current endpoint setting. */
export function s3Client(): S3Client {
  const endpoint = s3Config.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const cacheKey = endpoint ?? '';
  let c = clients.get(cacheKey);
  if (!c) {
    // The SDK's own region chain (env, profile); us-east-1 when none is configured.
    const probe = new S3Client({});
    const defaultRegion = probe.config.region;
    const region = async (): Promise<string> => {
      try {
        return (await defaultRegion()) || 'us-east-1';
      } catch {
        return 'us-east-1';
      }
    };
    probe.destroy();
    c = new S3Client({
      region,
      endpoint,
      forcePathStyle: endpoint !== undefined,
      maxAttempts: maxAttempts(),
      retryMode: 'standard',
      ...(endpoint !== undefined
        ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
        : {}),
    });
    clients.set(cacheKey, c);
  }
  return c;
}

async function* bodyChunks(body: unknown): AsyncGenerator<Uint8Array> {
  if (body === undefined || body === null) return;
  for await (const chunk of body as Readable) yield chunk as Uint8Array;
}

async function bodyBytes(body: unknown): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of bodyChunks(body)) parts.push(c);
  return Buffer.concat(parts);
}

/** A pending S3 object: buffered, then PutObject or a multipart upload completed on commit. */
class S3Pending implements PendingFile {
  bytes = 0;
  private buf: Uint8Array[] = [];
  private bufBytes = 0;
  private uploadId: string | undefined;
  private readonly parts: { ETag: string; PartNumber: number }[] = [];
  private done = false;

  constructor(
    private readonly client: S3Client,
    private readonly loc: S3Location,
    private readonly partSize: number,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done)
      throw new RuntimeError(`s3://${this.loc.bucket}/${this.loc.key}: write after commit/abort`);
    this.buf.push(Buffer.from(chunk)); // a copy: callers may reuse their buffer after write()
    this.bufBytes += chunk.byteLength;
    this.bytes += chunk.byteLength;
    if (this.bufBytes >= this.partSize) await this.uploadPart();
  }

  private takeBuffer(): Buffer {
    const b = Buffer.concat(this.buf);
    this.buf = [];
    this.bufBytes = 0;
    return b;
  }

  private async uploadPart(): Promise<void> {
    const { bucket, key } = this.loc;
    try {
      if (this.uploadId === undefined) {
        const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        this.uploadId = r.UploadId;
      }
      const PartNumber = this.parts.length + 1;
      const r = await this.client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.uploadId,
          PartNumber,
          Body: this.takeBuffer(),
        }),
      );
      this.parts.push({ ETag: r.ETag ?? '', PartNumber });
    } catch (e) {
      throw s3Error('cannot upload', this.loc, e);
    }
  }

  async finish(): Promise<PendingRecord> {
    if (this.done)
      throw new RuntimeError(`s3://${this.loc.bucket}/${this.loc.key}: finish after commit/abort`);
    if (this.uploadId === undefined || this.bufBytes > 0) await this.uploadPart();
    return {
      store: 's3',
      uri: `s3://${this.loc.bucket}/${this.loc.key}`,
      uploadId: this.uploadId!,
      parts: [...this.parts],
      bytes: this.bytes,
    };
  }

  async commit(): Promise<void> {
    const { bucket, key } = this.loc;
    if (this.done) return;
    try {
      if (this.uploadId === undefined) {
        await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: this.takeBuffer() }));
      } else {
        if (this.bufBytes > 0) await this.uploadPart();
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: this.uploadId,
            MultipartUpload: { Parts: this.parts },
          }),
        );
      }
      this.done = true;
    } catch (e) {
      throw s3Error('cannot commit', this.loc, e);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.buf = [];
    if (this.uploadId !== undefined) {
      await this.client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: this.loc.bucket,
            Key: this.loc.key,
            UploadId: this.uploadId,
          }),
        )
        .catch(() => {});
    }
  }
}

export interface S3StoreOptions {
  /** Multipart part size in bytes (S3 minimum 5 MiB except the last part). Default 8 MiB. */
  partSize?: number;
  /** Keys per ListObjectsV2 page (S3 default and maximum 1000). */
  listPageSize?: number;
  /** Client to use instead of the shared one (tests). */
  client?: S3Client;
}

export class S3Store implements ObjectStore {
  private readonly partSize: number;
  constructor(private readonly opts: S3StoreOptions = {}) {
    this.partSize = Math.max(opts.partSize ?? 8 * 1024 * 1024, 5 * 1024 * 1024);
  }

  private get client(): S3Client {
    return this.opts.client ?? s3Client();
  }

  /**
   * Lists objects below `root` with ListObjectsV2, following continuation tokens. `s3://b/p` lists
   * the object `p` itself and everything under `p/` (not `pX`), in S3's key order (UTF-8 binary).
   */
  async *list(root: string): AsyncIterable<StoreEntry> {
    const loc = parseS3Uri(root);
    const base = loc.key.replace(/\/+$/, '');
    const prefix = base === '' ? '' : base;
    let token: string | undefined;
    do {
      let r: ListObjectsV2CommandOutput;
      try {
        r = await this.client.send(
          new ListObjectsV2Command({
            Bucket: loc.bucket,
            Prefix: prefix,
            ContinuationToken: token,
            MaxKeys: this.opts.listPageSize,
          }),
        );
      } catch (e) {
        throw s3Error('cannot list', loc, e);
      }
      for (const o of r.Contents ?? []) {
        const k = o.Key ?? '';
        if (prefix !== '' && k !== prefix && !k.startsWith(`${prefix}/`)) continue;
        yield { uri: `s3://${loc.bucket}/${k}`, size: o.Size ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async stat(uri: string): Promise<StoreEntry | undefined> {
    const loc = parseS3Uri(uri);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return { uri, size: r.ContentLength ?? 0 };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw s3Error('cannot stat', loc, e);
    }
  }

  async read(uri: string): Promise<Uint8Array> {
    const loc = parseS3Uri(uri);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return await bodyBytes(r.Body);
    } catch (e) {
      throw s3Error('cannot read', loc, e);
    }
  }

  /** Bytes [start, end) with one ranged GET (`Range: bytes=start-(end-1)`). */
  async readRange(uri: string, start: number, end: number): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    const loc = parseS3Uri(uri);
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, Range: `bytes=${start}-${end - 1}` }),
      );
      return await bodyBytes(r.Body);
    } catch (e) {
      throw s3Error('cannot read', loc, e);
    }
  }

  async *readStream(uri: string): AsyncIterable<Uint8Array> {
    const loc = parseS3Uri(uri);
    let body: unknown;
    try {
      body = (await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }))).Body;
    } catch (e) {
      throw s3Error('cannot read', loc, e);
    }
    try {
      yield* bodyChunks(body);
    } catch (e) {
      throw s3Error('cannot read', loc, e);
    }
  }

  async create(uri: string): Promise<PendingFile> {
    return new S3Pending(this.client, parseS3Uri(uri), this.partSize);
  }

  async put(uri: string, data: Uint8Array | string, opts?: { ifAbsent?: boolean }): Promise<boolean> {
    const loc = parseS3Uri(uri);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: loc.bucket,
          Key: loc.key,
          Body: typeof data === 'string' ? Buffer.from(data) : data,
          IfNoneMatch: opts?.ifAbsent ? '*' : undefined,
        }),
      );
      return true;
    } catch (e) {
      // 412: the object exists. 409 ConditionalRequestConflict: a concurrent conditional write won.
      if (opts?.ifAbsent && (statusOf(e) === 412 || statusOf(e) === 409)) return false;
      throw s3Error('cannot write', loc, e);
    }
  }

  async delete(uri: string): Promise<void> {
    const loc = parseS3Uri(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw s3Error('cannot delete', loc, e);
    }
  }

  /** CompleteMultipartUpload of the record's parts; a no-op if the upload is gone and the object exists. */
  async publish(rec: PendingRecord): Promise<void> {
    if (rec.store !== 's3') throw new RuntimeError(`${rec.target}: not an S3 pending file`);
    const loc = parseS3Uri(rec.uri);
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: loc.bucket,
          Key: loc.key,
          UploadId: rec.uploadId,
          MultipartUpload: { Parts: rec.parts },
        }),
      );
    } catch (e) {
      if ((statusOf(e) === 404 || (e as Error).name === 'NoSuchUpload') && (await this.stat(rec.uri))) return;
      throw s3Error('cannot publish', loc, e);
    }
  }

  async discard(rec: PendingRecord): Promise<void> {
    if (rec.store !== 's3') return;
    const loc = parseS3Uri(rec.uri);
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: loc.bucket, Key: loc.key, UploadId: rec.uploadId }))
      .catch(() => {});
  }

  /**
   * Open multipart uploads below `root`, or of `root` itself when it names a single file
   * (ListMultipartUploads, following markers).
   */
  async *listInProgress(root: string): AsyncIterable<InProgressFile> {
    const loc = parseS3Uri(root);
    const prefix = loc.key.replace(/\/+$/, '');
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let r: ListMultipartUploadsCommandOutput;
      try {
        r = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: loc.bucket,
            // The key itself too: a single file's own upload (its root names the file).
            Prefix: prefix === '' ? undefined : prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (e) {
        throw s3Error('cannot list multipart uploads of', loc, e);
      }
      for (const u of r.Uploads ?? []) {
        const Key = u.Key ?? '';
        const UploadId = u.UploadId ?? '';
        if (prefix !== '' && Key !== prefix && !Key.startsWith(`${prefix}/`)) continue;
        yield {
          uri: `s3://${loc.bucket}/${Key}`,
          started: u.Initiated?.getTime(),
          discard: async () => {
            await this.client
              .send(new AbortMultipartUploadCommand({ Bucket: loc.bucket, Key, UploadId }))
              .catch(() => {});
          },
        };
      }
      if (!r.IsTruncated) return;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
    }
  }
}

/** Re-exported so callers can tell S3 service errors apart without importing the SDK. */
export { S3ServiceException };

/** The process-wide S3 store (one client per endpoint setting). */
export const sharedS3Store = new S3Store();
