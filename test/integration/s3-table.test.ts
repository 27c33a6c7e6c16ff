/**
 * The table sink on S3 (S3Proxy, test/servers): a run killed with SIGKILL leaves no visible object
 * that the Delta log lacks, and its open multipart uploads (in-progress and pending files) are
 * completed or aborted by the next run; a failed run aborts every upload it opened.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { CreateBucketCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { S3Store, s3Client, s3Config } from '../../src/storage/s3.js';
import { readDeltaLog } from '../../src/table/delta.js';
import { sh } from '../helpers.js';
import { after, before, it, s3Endpoint, s3Env, uniqueName } from './servers.js';

/** A kappa stream of `n` records `{i, pad}` (about 100 bytes each as NDJSON). */
function gen(n: number, from = 0, end = true): string {
  const pad = 'x'.repeat(80);
  return `awk 'BEGIN{print "{\\"kappa\\":1}"; for(i=${from};i<${from + n};i++) printf "{\\"ts\\":%d,\\"key\\":null,\\"value\\":{\\"i\\":%d,\\"pad\\":\\"${pad}\\"}}\\n", i, i; ${end ? 'print "{\\"end\\":true}"' : ''}}'`;
}

describe('table sink on S3: crashes and aborts (S3Proxy)', () => {
  const bucket = uniqueName('kappa-table');
  let store: S3Store;
  const saved = { ...process.env };
  before(async () => {
    Object.assign(process.env, s3Env());
    s3Config.endpoint = s3Endpoint();
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
    store = new S3Store();
  });
  after(() => {
    process.env = saved;
    s3Config.endpoint = undefined;
  });

  const sink = (prefix: string, flags = '') =>
    `kappa sink s3://${bucket}/${prefix} --s3-endpoint ${s3Endpoint()} ${flags}`;

  async function openUploads(prefix: string): Promise<string[]> {
    const r = await s3Client().send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }),
    );
    return (r.Uploads ?? []).map((u) => u.Key ?? '');
  }

  /** Visible data objects (no `_` or `.` segment), as a glob reader lists them. */
  async function visible(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const e of store.list(`s3://${bucket}/${prefix}`)) {
      const rel = e.uri.slice(`s3://${bucket}/${prefix}/`.length);
      if (!rel.split('/').some((s) => /^[._]/.test(s))) out.push(rel);
    }
    return out.sort();
  }

  async function logFiles(prefix: string): Promise<string[]> {
    const snap = await readDeltaLog(store, `s3://${bucket}/${prefix}`);
    return [...(snap?.files.keys() ?? [])].sort();
  }

  async function rowsRead(prefix: string): Promise<number> {
    const r = await sh(
      `kappa ingest s3://${bucket}/${prefix} --s3-endpoint ${s3Endpoint()} -q | grep -c '"ts"'`,
      { env: s3Env() },
    );
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.trim());
  }

  it('killed after the log entry: uploads stay open and invisible; the next run completes them', async () => {
    const p = 'after-log';
    let r = await sh(`${gen(100)} | ${sink(p, '-q')}`, { env: s3Env() });
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`${gen(50, 100)} | ${sink(p, '--roll-records 20 -q')}`, {
      env: { ...s3Env(), KAPPA_TEST_CRASH_AT: 'after-log' },
    });
    assert.equal(r.code, 137, r.stderr);
    assert.equal((await openUploads(p)).length, 3, 'three pending files as open multipart uploads');
    assert.equal((await logFiles(p)).length, 4, 'the log has the commit');
    assert.equal((await visible(p)).filter((f) => f.endsWith('.parquet')).length, 1, 'glob sees v0 only');
    r = await sh(`${gen(5, 200)} | ${sink(p)}`, { env: s3Env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /rolled forward 1 commit/);
    assert.deepEqual(await openUploads(p), []);
    assert.deepEqual(
      (await visible(p)).filter((f) => f.endsWith('.parquet')),
      (await logFiles(p)).map(decodeURIComponent),
    );
    assert.equal(await rowsRead(p), 155);
  });

  it('killed before the first commit with a multipart upload in progress: the next run aborts it', async () => {
    const p = 'in-progress';
    // ~15 MB in one NDJSON part file: the first 8 MiB part is uploaded before the commit
    let r = await sh(`${gen(150_000)} | ${sink(p, '--format ndjson -q')}`, {
      env: { ...s3Env(), KAPPA_TEST_CRASH_AT: 'before-commit' },
    });
    assert.equal(r.code, 137, r.stderr);
    assert.equal((await openUploads(p)).length, 1, 'an open upload of the crashed run');
    assert.deepEqual(await visible(p), []);
    r = await sh(`${gen(3)} | ${sink(p, '--format ndjson')}`, { env: s3Env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed 1 in-progress file/);
    assert.deepEqual(await openUploads(p), []);
    assert.equal(await rowsRead(p), 3);
  });

  it('a failed run (stream cut off) aborts every multipart upload it opened', async () => {
    const p = 'abort';
    const r = await sh(`${gen(150_000, 0, false)} | ${sink(p, '--format ndjson')}`, { env: s3Env() });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /nothing committed/);
    assert.deepEqual(await openUploads(p), []);
    assert.deepEqual(await visible(p), []);
  });
});
