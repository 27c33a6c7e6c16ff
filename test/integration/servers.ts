/**
 * Access to the real test servers started by test/servers/up.sh (via `npm test`): a Kafka broker
 * (KAPPA_TEST_KAFKA) and S3Proxy (KAPPA_TEST_S3). With KAPPA_SKIP_SERVERS=1 the integration tests
 * are skipped with a visible reason; without the variables and without the skip flag they fail,
 * so a broken server setup is never mistaken for a pass.
 *
 * Integration files take `it`, `before` and `after` from here instead of node:test: each test is
 * then skipped on its own (and counted in the runner's `skipped` total; a skipped describe() is
 * not counted at all), and the hooks that would need the servers do not run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after as nodeAfter, before as nodeBefore, it as nodeIt, type TestContext } from 'node:test';
import { ROOT } from '../helpers.js';

/** Reason to skip server tests, or false. */
export const SKIP: string | false =
  process.env.KAPPA_SKIP_SERVERS === '1' ? 'KAPPA_SKIP_SERVERS=1: Kafka/S3 integration tests not run' : false;

/** node:test's `it`, skipped (and counted as skipped) under KAPPA_SKIP_SERVERS=1. */
export function it(name: string, fn: (t: TestContext) => void | Promise<void>): void {
  nodeIt(name, { skip: SKIP }, fn);
}

/** node:test's `before`, not run under KAPPA_SKIP_SERVERS=1. */
export function before(fn: () => void | Promise<void>): void {
  if (!SKIP) nodeBefore(fn);
}

/** node:test's `after`, not run under KAPPA_SKIP_SERVERS=1. */
export function after(fn: () => void | Promise<void>): void {
  if (!SKIP) nodeAfter(fn);
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite with 'npm test' (it starts the test servers)`);
  return v;
}

export const kafkaAddr = (): string => need('KAPPA_TEST_KAFKA');
export const s3Endpoint = (): string => need('KAPPA_TEST_S3');

/** Environment for kappa processes talking to the test S3Proxy. */
export function s3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: need('KAPPA_TEST_S3_ACCESS_KEY_ID'),
    AWS_SECRET_ACCESS_KEY: need('KAPPA_TEST_S3_SECRET_ACCESS_KEY'),
    AWS_REGION: 'us-east-1',
  };
}

/** A fresh topic or bucket name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export const KAFKA_SH = join(ROOT, 'test', 'servers', 'kafka.sh');

/**
 * Partitions the real Java client assigns to `keys` for a topic of `n` partitions: runs
 * org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey from the
 * kafka-clients jar the broker was fetched with (the reference implementation itself).
 */
export function javaPartitions(keys: string[], n: number): Map<string, number> {
  const libs = need('KAPPA_TEST_KAFKA_LIBS');
  const dir = mkdtempSync(join(tmpdir(), 'kappa-java-'));
  const src = join(dir, 'Ref.java');
  writeFileSync(
    src,
    `import java.io.*;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
public class Ref {
  public static void main(String[] a) throws IOException {
    int n = Integer.parseInt(a[0]);
    BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    for (String line; (line = r.readLine()) != null; )
      out.println(BuiltInPartitioner.partitionForKey(line.getBytes(StandardCharsets.UTF_8), n));
  }
}
`,
  );
  const res = spawnSync('java', ['-cp', `${libs}/*`, src, String(n)], {
    input: keys.join('\n'),
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`java reference partitioner failed: ${res.stderr}`);
  const parts = res.stdout.trim().split('\n').map(Number);
  return new Map(keys.map((k, i) => [k, parts[i]]));
}
