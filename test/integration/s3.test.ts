/**
 * S3 object store against a real S3-compatible server (S3Proxy, test/servers): the ObjectStore
 * contract (list with pagination, ranged reads, pending files invisible until commit, abort,
 * conditional put), retries on injected 503/500/connection resets through a small HTTP proxy,
 * permanent errors and bad credentials, and `kappa ingest s3://…` end to end.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe } from 'node:test';
import { CreateBucketCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { ConfigError, RuntimeError } from '../../src/errors.js';
import { S3Store, s3Client, s3Config } from '../../src/storage/s3.js';
import { sh } from '../helpers.js';
import { after, before, it, s3Endpoint, s3Env, uniqueName } from './servers.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

type Fault = 'none' | '503' | '500' | 'reset';

/** An HTTP proxy in front of S3Proxy that injects faults for the next `count` requests (or always). */
class FaultProxy {
  server: Server;
  requests = 0;
  injected = 0;
  private mode: Fault = 'none';
  private remaining = 0;
  constructor(target: URL) {
    this.server = createServer((req, res) => {
      this.requests++;
      if (this.mode !== 'none' && this.remaining !== 0) {
        if (this.remaining > 0) this.remaining--;
        this.injected++;
        req.resume();
        if (this.mode === 'reset') {
          req.socket.destroy();
          return;
        }
        const code = this.mode === '503' ? 'SlowDown' : 'InternalError';
        res.writeHead(Number(this.mode), { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`,
        );
        return;
      }
      const up = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  /** Injects `mode` for the next `count` requests (-1: every request). */
  inject(mode: Fault, count: number): void {
    this.mode = mode;
    this.remaining = count;
    this.requests = 0;
    this.injected = 0;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('S3 object store (S3Proxy)', () => {
  const bucket = uniqueName('kappa');
  let store: S3Store;
  const saved = { ...process.env };
  before(async () => {
    Object.assign(process.env, s3Env());
    s3Config.endpoint = s3Endpoint();
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
    store = new S3Store({ listPageSize: 10 });
  });
  after(() => {
    process.env = saved;
    s3Config.endpoint = undefined;
  });

  it('lists with pagination and prefix boundaries, stats, reads ranges and streams', async () => {
    for (let i = 0; i < 25; i++)
      assert.ok(await store.put(`s3://${bucket}/list/p/${String(i).padStart(2, '0')}.txt`, `n${i}`));
    await store.put(`s3://${bucket}/list/pX/other.txt`, 'x');
    await store.put(`s3://${bucket}/list/p.json`, 'the object named p.json');
    const all = await collect(store.list(`s3://${bucket}/list/p`));
    assert.equal(all.length, 25, '25 objects below p/, not pX/ or p.json (3 pages of 10)');
    assert.deepEqual(await collect(store.list(`s3://${bucket}/list/p.json`)), [
      { uri: `s3://${bucket}/list/p.json`, size: 23 },
    ]);
    assert.deepEqual(
      all.map((e) => e.uri),
      [...all.map((e) => e.uri)].sort(),
    );
    assert.ok(all.every((e) => e.uri.includes('/list/p/')));
    assert.deepEqual(await store.stat(`s3://${bucket}/list/p/03.txt`), {
      uri: `s3://${bucket}/list/p/03.txt`,
      size: 2,
    });
    assert.equal(await store.stat(`s3://${bucket}/list/nope`), undefined);
    assert.equal(text(await store.readRange(`s3://${bucket}/list/p.json`, 4, 10)), 'object');
    assert.equal(text(await store.read(`s3://${bucket}/list/p/24.txt`)), 'n24');
    assert.equal(
      Buffer.concat(await collect(store.readStream(`s3://${bucket}/list/p.json`))).toString(),
      'the object named p.json',
    );
    await store.delete(`s3://${bucket}/list/p.json`);
    await store.delete(`s3://${bucket}/list/p.json`);
    assert.equal(await store.stat(`s3://${bucket}/list/p.json`), undefined);
  });

  it('pending files (single PUT and multipart) stay invisible until commit; abort leaves nothing', async () => {
    const small = await store.create(`s3://${bucket}/pend/small.json`);
    await small.write(Buffer.from('{"a":1}'));
    const big = await store.create(`s3://${bucket}/pend/big.bin`);
    const part = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < 4; i++) await big.write(part.fill(i + 1));
    assert.deepEqual(await collect(store.list(`s3://${bucket}/pend`)), [], 'nothing visible before commit');
    await small.commit();
    await big.commit();
    const listed = await collect(store.list(`s3://${bucket}/pend`));
    assert.deepEqual(
      listed.map((e) => [e.uri.split('/').pop(), e.size]),
      [
        ['big.bin', 12 * 1024 * 1024],
        ['small.json', 7],
      ],
    );
    const mid = await store.readRange(
      `s3://${bucket}/pend/big.bin`,
      6 * 1024 * 1024 - 2,
      6 * 1024 * 1024 + 2,
    );
    assert.deepEqual(
      [...mid],
      [2, 2, 3, 3],
      'bytes around the 6 MiB boundary (the writer reused its buffer)',
    );
    assert.deepEqual(
      [...(await store.readRange(`s3://${bucket}/pend/big.bin`, 12 * 1024 * 1024 - 1, 12 * 1024 * 1024))],
      [4],
    );

    const aborted = await store.create(`s3://${bucket}/pend/aborted.bin`);
    for (let i = 0; i < 3; i++) await aborted.write(part);
    await aborted.abort();
    assert.equal(await store.stat(`s3://${bucket}/pend/aborted.bin`), undefined);
    const uploads = await s3Client().send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'pend/' }),
    );
    assert.deepEqual(uploads.Uploads ?? [], [], 'no multipart upload left behind');
  });

  it('put ifAbsent is a mutual exclusion (If-None-Match: *)', async () => {
    const uri = `s3://${bucket}/_delta_log/00000000000000000000.json`;
    const results = await Promise.all(
      [1, 2, 3].map((i) => store.put(uri, `{"writer":${i}}`, { ifAbsent: true })),
    );
    assert.equal(results.filter(Boolean).length, 1, 'exactly one writer wins');
    const winner = results.indexOf(true) + 1;
    assert.equal(text(await store.read(uri)), `{"writer":${winner}}`);
    assert.equal(await store.put(uri, 'x', { ifAbsent: true }), false);
    assert.equal(await store.put(uri, 'y'), true, 'plain put overwrites');
  });

  it('retries 503 SlowDown, 500 and connection resets; gives up with a clear error', async () => {
    const proxy = new FaultProxy(new URL(s3Endpoint()));
    const url = await proxy.listen();
    const before = process.env.KAPPA_S3_MAX_ATTEMPTS;
    process.env.KAPPA_S3_MAX_ATTEMPTS = '4';
    s3Config.endpoint = url;
    try {
      const viaProxy = new S3Store();
      proxy.inject('503', 2);
      assert.equal(await viaProxy.put(`s3://${bucket}/retry/a.txt`, 'hello'), true);
      assert.equal(proxy.injected, 2);
      assert.equal(proxy.requests, 3, 'two 503 SlowDown, then success');
      proxy.inject('reset', 1);
      assert.equal(text(await viaProxy.read(`s3://${bucket}/retry/a.txt`)), 'hello');
      assert.equal(proxy.requests, 2, 'connection reset, then success');
      proxy.inject('500', 1);
      assert.equal(text(await viaProxy.readRange(`s3://${bucket}/retry/a.txt`, 1, 3)), 'el');
      proxy.inject('503', -1);
      await assert.rejects(viaProxy.put(`s3://${bucket}/retry/b.txt`, 'x'), (e: Error) => {
        assert.ok(e instanceof RuntimeError, String(e));
        assert.match(e.message, new RegExp(`s3://${bucket}/retry/b.txt`));
        assert.match(e.message, /SlowDown.*503.*after 4 attempts/);
        return true;
      });
      assert.equal(proxy.requests, 4, 'bounded attempts');
      proxy.inject('none', 0);
      await assert.rejects(viaProxy.read(`s3://no-such-bucket-${bucket}/k`), (e: Error) => {
        assert.ok(e instanceof RuntimeError);
        assert.match(e.message, /bucket 'no-such-bucket-.*' does not exist/);
        return true;
      });
      assert.equal(proxy.requests, 1, 'a permanent error is not retried');
    } finally {
      s3Config.endpoint = s3Endpoint();
      if (before === undefined) delete process.env.KAPPA_S3_MAX_ATTEMPTS;
      else process.env.KAPPA_S3_MAX_ATTEMPTS = before;
      await proxy.close();
    }
  });

  it('bad credentials are a configuration error (exit 78) naming bucket and key', async () => {
    const bad = new S3Store({
      client: new (s3Client().constructor as typeof import('@aws-sdk/client-s3').S3Client)({
        endpoint: s3Endpoint(),
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'kappa-test', secretAccessKey: 'wrong' },
      }),
    });
    await assert.rejects(bad.read(`s3://${bucket}/retry/a.txt`), (e: Error) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, new RegExp(`s3://${bucket}/retry/a.txt: S3 rejected the credentials`));
      return true;
    });
    await store.put(`s3://${bucket}/cli/x.ndjson`, '{"t":1}\n');
    const r = await sh(`kappa ingest s3://${bucket}/cli/ --s3-endpoint ${s3Endpoint()} -q`, {
      env: { ...s3Env(), AWS_SECRET_ACCESS_KEY: 'wrong' },
    });
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /rejected the credentials/);
    assert.match(r.stderr, /hint: check AWS_ACCESS_KEY_ID/);
  });

  it('kappa ingest s3://… streams NDJSON with hive partitions and hidden files ignored', async () => {
    await store.put(
      `s3://${bucket}/events/dt=2024-01-01/a.ndjson`,
      '{"t":1000,"v":"a"}\n{"t":2000,"v":"b"}\n',
    );
    await store.put(`s3://${bucket}/events/dt=2024-01-02/b.ndjson`, '{"t":3000,"v":"c"}\n');
    await store.put(`s3://${bucket}/events/dt=2024-01-02/_SUCCESS`, '');
    await store.put(`s3://${bucket}/events/_tmp/c.ndjson`, '{"t":9,"v":"hidden"}\n');
    const r = await sh(
      `kappa ingest s3://${bucket}/events/ --s3-endpoint ${s3Endpoint()} --ts-field t --ts-format epoch-ms -q | kappa sink -`,
      { env: s3Env() },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
      [
        { t: 1000, v: 'a', dt: '2024-01-01' },
        { t: 2000, v: 'b', dt: '2024-01-01' },
        { t: 3000, v: 'c', dt: '2024-01-02' },
      ],
    );
    const env = await sh(`kappa ingest s3://${bucket}/events/dt=2024-01-02/ -q | kappa sink -`, {
      env: { ...s3Env(), AWS_ENDPOINT_URL: s3Endpoint() },
    });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout, '{"t":3000,"v":"c"}\n', 'AWS_ENDPOINT_URL works too');
  });
});
