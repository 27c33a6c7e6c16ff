/**
 * Issue 8 item 22: an option the user set that no chosen source, target or format reads is a usage
 * error (exit 2) naming the option and where it applies; defaults never count.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sh, tempDir } from '../helpers.js';

describe('flags that apply to nothing are usage errors (issue 8 item 22)', () => {
  const t = tempDir();
  let x = '';
  before(() => {
    x = `${t.dir}/x.ndjson`;
    writeFileSync(x, '{"a":1,"t":"2024-01-01T00:00:00Z"}\n');
  });
  after(() => t.cleanup());

  const refused: [string, string, RegExp][] = [
    [
      'ingest: Kafka flags on a file',
      `kappa ingest ${'$X'} --group g --from latest --max-drift 1m`,
      /--group does not apply to files.*\n.*kafka:\/\//,
    ],
    ['ingest: -X on a file', `kappa ingest ${'$X'} -X client.id=foo`, /-X does not apply to files/],
    [
      'ingest: --delimiter on NDJSON',
      `kappa ingest ${'$X'} --delimiter ';'`,
      /--delimiter applies to CSV and TSV/,
    ],
    [
      'ingest: --tz without --ts-field',
      `kappa ingest ${'$X'} --tz Europe/Berlin`,
      /--tz applies only with --ts-field/,
    ],
    [
      'ingest: --ts-format without --ts-field',
      `kappa ingest ${'$X'} --ts-format epoch-s`,
      /--ts-format applies only with --ts-field/,
    ],
    [
      'sink: Kafka flags on a file',
      `kappa ingest ${'$X'} --ts-field t -q | kappa sink ${'$T'}/out.ndjson --create-topic 3`,
      /--create-topic does not apply to file/,
    ],
    [
      'sink: --format and --tz on stdout',
      `kappa ingest ${'$X'} --ts-field t -q | kappa sink - --format csv --tz Mars/X`,
      /--format does not apply to '-' \(stdout\)/,
    ],
    [
      'sink: --partition-by on a single file',
      `kappa ingest ${'$X'} --ts-field t -q | kappa sink ${'$T'}/out.parquet --partition-by 'dt=%Y'`,
      /--partition-by does not apply to file/,
    ],
    [
      'sink: --tz without --partition-by',
      `kappa ingest ${'$X'} --ts-field t -q | kappa sink ${'$T'}/tbl --tz Europe/Berlin`,
      /--tz applies only with --partition-by/,
    ],
  ];
  for (const [name, cmd, msg] of refused)
    it(`${name}: exit 2 naming the flag`, async () => {
      const r = await sh(cmd.replaceAll('$X', x).replaceAll('$T', t.dir));
      assert.equal(r.code, 2, `${cmd}\n${r.stderr}`);
      assert.match(r.stderr, msg);
    });

  it('the same flags where they apply, and defaults, are accepted', async () => {
    const r = await sh(
      `kappa ingest ${x} --ts-field t --tz Europe/Berlin --ts-format iso -q | kappa sink ${t.dir}/ok --partition-by 'dt=%Y-%m-%d' --tz Europe/Berlin --roll-records 10 -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const s = await sh(`kappa ingest ${x} --ts-field t -q | kappa sink - -q`);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).a, 1);
  });
});
