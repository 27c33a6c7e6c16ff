/**
 * Every non-Kafka flag of `kappa ingest`, each at the CLI level on small hand-computed data: each
 * test fails when its flag is ignored (issue 8 item 23). -X is checked against a fake broker (a TCP
 * listener that captures the client's first request: the bytes a real kafkajs client sends);
 * --s3-endpoint by the S3 integration tests against S3Proxy (test/integration/s3*.test.ts, which
 * reach it only through the flag). The other Kafka flags (--group,
 * --from, --until, --partitions, --max-drift) are covered by test/integration/kafka.test.ts (they
 * need the test broker).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sh, tempDir } from '../helpers.js';

type Line = { ts?: number; key?: unknown; value?: Record<string, unknown>; watermark?: number; end?: true };

/** Every line of a kappa stream, parsed. */
const lines = (out: string): Line[] =>
  out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Line);

/** The records of a kappa stream (lines with a `ts`). */
const records = (out: string) => lines(out).filter((l) => l.ts !== undefined);

describe('kappa ingest flags (each fails when ignored)', () => {
  const t = tempDir('kappa-ingest-flags-');
  after(() => t.cleanup());
  const file = (name: string, text: string) => {
    const p = join(t.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const ndjson = file(
    'a.ndjson',
    '{"t":"2020-01-01T00:00:10Z","k":"x","v":1}\n{"t":"2020-01-01T00:00:20Z","k":"y","v":2}\n',
  );
  const T0 = Date.UTC(2020, 0, 1);

  it('-f/--format: a file whose name tells nothing is read in the given format', async () => {
    const p = file('data.txt', 'a,b\n1,x\n2,y\n');
    for (const f of ['--format csv', '-f csv']) {
      const r = await sh(`kappa ingest '${p}' ${f} -q`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        records(r.stdout).map((x) => x.value),
        [
          { a: 1, b: 'x' },
          { a: 2, b: 'y' },
        ],
        f,
      );
    }
  });

  it('--delimiter: splits CSV fields at the given character', async () => {
    const p = file('semi.csv', 'a;b\n1;x\n');
    const r = await sh(`kappa ingest '${p}' --delimiter ';' -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.value),
      [{ a: 1, b: 'x' }],
    );
  });

  it('--ts-field: event time comes from the (dotted) field', async () => {
    const p = file(
      'nested.ndjson',
      '{"p":{"time":"2020-01-01T00:00:10Z"}}\n{"p":{"time":"2020-01-01T00:00:20Z"}}\n',
    );
    const r = await sh(`kappa ingest '${p}' --ts-field p.time -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.ts),
      [T0 + 10_000, T0 + 20_000],
    );
  });

  it('--ts-format: a strftime pattern reads day/month order', async () => {
    const p = file('dm.ndjson', '{"when":"01/02/2020 10:30"}\n{"when":"13/02/2020 00:00"}\n');
    const r = await sh(`kappa ingest '${p}' --ts-field when --ts-format '%d/%m/%Y %H:%M' -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.ts),
      [Date.UTC(2020, 1, 1, 10, 30), Date.UTC(2020, 1, 13)],
    );
    // epoch-ms vs the auto guess (seconds for small numbers): 20000 is 20 s, not 20000 s.
    const e = file('ms.ndjson', '{"t":20000}\n');
    const m = await sh(`kappa ingest '${e}' --ts-field t --ts-format epoch-ms -q`);
    assert.equal(m.code, 0, m.stderr);
    assert.deepEqual(
      records(m.stdout).map((x) => x.ts),
      [20_000],
    );
  });

  it('--tz: zone-less times are read in the given zone', async () => {
    const p = file('local.ndjson', '{"t":"2020-01-01 00:00:00"}\n{"t":"2020-07-01 00:00:00"}\n');
    const r = await sh(`kappa ingest '${p}' --ts-field t --tz America/New_York -q`);
    assert.equal(r.code, 0, r.stderr);
    // New York is UTC-5 in January (EST) and UTC-4 in July (EDT).
    assert.deepEqual(
      records(r.stdout).map((x) => x.ts),
      [Date.UTC(2020, 0, 1, 5), Date.UTC(2020, 6, 1, 4)],
    );
  });

  it('--key-field: the record key is the field value', async () => {
    const r = await sh(`kappa ingest '${ndjson}' --ts-field t --key-field k -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.key),
      ['x', 'y'],
    );
  });

  it('--max-out-of-orderness: a file source emits watermark max - bound - 1 before the end', async () => {
    const r = await sh(`kappa ingest '${ndjson}' --ts-field t --max-out-of-orderness 5s -q`);
    assert.equal(r.code, 0, r.stderr);
    const ls = lines(r.stdout);
    const wms = ls.filter((l) => l.watermark !== undefined).map((l) => l.watermark);
    assert.deepEqual(wms, [T0 + 20_000 - 5_000 - 1]);
    assert.ok(ls.at(-1)?.end, 'the end line comes last');
  });

  it('-q/--quiet: no summary on stderr', async () => {
    const loud = await sh(`kappa ingest '${ndjson}' --ts-field t`);
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stderr, /kappa ingest: done: 2 in, 2 out/);
    for (const q of ['-q', '--quiet']) {
      const r = await sh(`kappa ingest '${ndjson}' --ts-field t ${q}`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', q);
    }
  });

  const bad = file('bad.ndjson', '{"v":1}\nnot json\n{"v":2}\n[3]\n{"v":4}\n');

  it('--on-error: skip drops bad lines, dead-letter=PATH keeps them, the default fails', async () => {
    let r = await sh(`kappa ingest '${bad}' -q`);
    assert.equal(r.code, 3, 'default: fail on the first bad record');
    r = await sh(`kappa ingest '${bad}' --on-error skip -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.value?.v),
      [1, 2, 4],
    );
    const dl = join(t.dir, 'dead.ndjson');
    r = await sh(`kappa ingest '${bad}' --on-error 'dead-letter=${dl}' -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(records(r.stdout).length, 3);
    const dead = readFileSync(dl, 'utf8');
    assert.match(dead, /not json/);
    assert.match(dead, /\[3\]/);
  });

  it('--max-bad: more bad records than N fail the run even under --on-error skip', async () => {
    let r = await sh(`kappa ingest '${bad}' --on-error skip --max-bad 1 -q`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /--max-bad 1/);
    r = await sh(`kappa ingest '${bad}' --on-error skip --max-bad 2 -q`);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--max-line-bytes: a longer NDJSON line is a bad record', async () => {
    const p = file('long.ndjson', `{"v":1}\n{"v":2,"pad":"${'x'.repeat(200)}"}\n{"v":3}\n`);
    const r = await sh(`kappa ingest '${p}' --max-line-bytes 100 --on-error skip -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((x) => x.value?.v),
      [1, 3],
    );
  });

  it('-X key=value: the Kafka client option reaches the broker (client.id in the first request)', async () => {
    // A fake broker: accept one connection, keep the bytes of the first request, then hang up.
    // Every Kafka request header carries the client id (Kafka protocol, "Request Header").
    const seen: Buffer[] = [];
    const server = createServer((sock) => {
      sock.once('data', (d: Buffer) => {
        seen.push(d);
        sock.destroy();
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as { port: number };
    try {
      const probe = 'kappa-x-flag-probe';
      const first = async (flags: string) => {
        seen.length = 0;
        const r = await sh(
          `timeout 60 kappa ingest kafka://127.0.0.1:${port}/t --until latest -q -X retries=0 ${flags}`,
        );
        assert.equal(r.code, 1, `the fake broker fails the read: ${r.stderr}`);
        assert.ok(seen.length > 0, 'kappa connected to the fake broker');
        return Buffer.concat(seen).toString('latin1');
      };
      assert.ok((await first(`-X client.id=${probe}`)).includes(probe), 'the request names -X client.id');
      assert.ok(!(await first('')).includes(probe), 'without -X the default client id');
    } finally {
      server.close();
    }
  });
});
