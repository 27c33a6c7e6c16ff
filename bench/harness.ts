/**
 * kappa's benchmark harness (issues 5 and 14): prepares data, runs each scenario's tools on the same input,
 * alternating tools run by run (one warm-up, then `BENCH_RUNS` timed runs each), checks kappa's
 * output against the peers', stores each scenario's result as JSON under `bench/results/` and
 * renders every stored result into `bench/RESULTS.md`.
 *
 * Measurement: wall time is `performance.now()` in this process around the whole run (one clock
 * for every tool); peak RSS is GNU time's `%M` (max resident set, KiB) of every pipeline stage,
 * summed over the stages (they run at the same time, so the sum bounds what the pipeline held at
 * its peak; the largest single stage is kept too); CPU is GNU time's `%U` + `%S` (user + system
 * seconds, including waited-for children) of every stage, so a pipeline's critical stage shows.
 * A run is killed (its whole process group) after `BENCH_TIMEOUT` seconds. Environment:
 * `BENCH_SCENARIOS=1,3` (groups 1-9; 8: interval join; 9: checkpoint overhead and savepoints), `BENCH_IDS=2,3t` (scenario ids within them), `BENCH_SIZE=full|small`, `BENCH_RUNS=3`,
 * `BENCH_TIMEOUT=600`, `BENCH_TOOLS=regex` (peers to run; kappa always runs),
 * `BENCH_KAPPA=path/to/bin/kappa` (which kappa to measure; default the checkout's `bin/kappa`),
 * `BENCH_PYTHON=path/to/python` (the Python with Polars; default bench/data/py/bin/python).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  prepareFlights,
  prepareFlightsRepeated,
  prepareJoin,
  prepareOpenWindowKeys,
  prepareRides,
} from './data.js';
import { type Canonical, canonicalize, compare } from './normalize.js';
import { renderResults } from './report.js';
import {
  CONSUME_TOPIC,
  PROFILES,
  type Profile,
  type Scenario,
  scenario1,
  scenario2,
  scenario3,
  scenario3table,
  scenario4,
  scenario5consume,
  scenario5produce,
  scenario6,
  scenarioCheckpoint,
  scenarioCsv,
  scenarioJoin,
  scenarioSavepoint,
  type Tool,
} from './scenarios.js';

/** Repository root (this file runs from dist/bench/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BENCH = join(ROOT, 'bench');
const DATA = join(BENCH, 'data');
const RESULTS = join(BENCH, 'results');

/** One timed run of one tool. */
export interface RunSample {
  wallMs: number;
  /** Sum of the stages' peak RSS, KiB. */
  rssKb: number;
  /** Largest single stage's peak RSS, KiB. */
  rssMaxKb: number;
  /**
   * CPU seconds (user + system, GNU time `%U` + `%S`) of each stage, in stage order; absent in
   * results stored before it was measured.
   */
  stageCpuS?: number[];
  extras: Record<string, number>;
}

/** What one tool did in one scenario. */
export interface ToolResult {
  name: string;
  kappa: boolean;
  /** The command line as run (stages joined by pipes). */
  command: string;
  /** The pipeline's stages (absent in results stored before it was kept). */
  stages?: string[];
  status: 'ok' | 'failed' | 'skipped';
  /** For failed/skipped: e.g. "exit 1: error: unknown command 'transform'". */
  reason?: string;
  samples: RunSample[];
  /** Fixed-cost runs by name (Flink: no-op JVM, empty input), wall ms of each timed run. */
  startupMs: Record<string, number[]>;
  /** Equality with the reference tool's output. */
  check?: { equal: boolean; summary: string; against: string };
  note?: string;
}

/** A scenario's stored result. */
export interface ScenarioResult {
  id: string;
  group: number;
  title: string;
  records: number;
  input: string;
  target?: string;
  profile: string;
  runs: number;
  date: string;
  /** Which kappa ran: `bin/kappa at <commit>` or the BENCH_KAPPA path. */
  kappa: string;
  tools: ToolResult[];
}

interface RunOutcome {
  code: number;
  signal: string | null;
  sample: RunSample;
  stderr: string;
  stdout: string;
  timedOut: boolean;
}

function has(cmd: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a tool's `available` shell check; true when it exits 0. */
function available(check: string, env: NodeJS.ProcessEnv): boolean {
  return spawnSync('bash', ['-c', check], { env, cwd: ROOT, stdio: 'ignore' }).status === 0;
}

/**
 * Reads one stage's GNU time output (`-f '%M %U %S'`: peak RSS KiB, user s, system s; time may
 * write a "Command exited with non-zero status" line first). A missing or unreadable file (the
 * stage was killed before time wrote it) gives zeros.
 */
export function parseTimeFile(path: string): { rssKb: number; cpuS: number } {
  if (!existsSync(path)) return { rssKb: 0, cpuS: 0 };
  const m = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => /^(\d+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(l.trim()))
    .filter((x): x is RegExpExecArray => x !== null)
    .at(-1);
  return m ? { rssKb: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]) } : { rssKb: 0, cpuS: 0 };
}

/** Runs a bash script with the stages piped, each under GNU time; kills the group on timeout. */
async function runStages(
  stages: string[],
  env: NodeJS.ProcessEnv,
  redirectStdout: boolean,
  workDir: string,
  timeoutS: number,
  extras?: (stdout: string) => Record<string, number>,
): Promise<RunOutcome> {
  const rssDir = join(workDir, 'rss');
  rmSync(rssDir, { recursive: true, force: true });
  mkdirSync(rssDir, { recursive: true });
  const wrapped = stages.map((s, i) => `/usr/bin/time -f '%M %U %S' -o "${rssDir}/${i}" ${s}`);
  const script = `set -o pipefail\n${wrapped.join(' | ')}${redirectStdout ? ' > "$OUT"' : ''}\n`;
  const outFile = join(workDir, 'stdout.log');
  const errFile = join(workDir, 'stderr.log');
  const outFd = openSync(outFile, 'w');
  const errFd = openSync(errFile, 'w');
  const t0 = performance.now();
  const child = spawn('bash', ['-c', script], {
    env,
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', outFd, errFd],
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, timeoutS * 1000);
  const [code, signal] = await new Promise<[number, string | null]>((res) =>
    child.on('close', (c, s) => res([c ?? -1, s])),
  );
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  closeSync(outFd);
  closeSync(errFd);
  const perStage = stages.map((_, i) => parseTimeFile(join(rssDir, String(i))));
  const rss = perStage.map((p) => p.rssKb);
  const stdout = readFileSync(outFile, 'utf8');
  return {
    code,
    signal,
    timedOut,
    stdout,
    stderr: readFileSync(errFile, 'utf8'),
    sample: {
      wallMs,
      rssKb: rss.reduce((a, b) => a + b, 0),
      rssMaxKb: Math.max(0, ...rss),
      stageCpuS: perStage.map((p) => p.cpuS),
      extras: extras ? extras(stdout) : {},
    },
  };
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0 && !l.startsWith('WARNING:')) ?? ''
  ).slice(0, 200);
}

function failure(o: RunOutcome, timeoutS: number): string {
  if (o.timedOut) return `timed out after ${timeoutS} s`;
  const head = o.signal ? `signal ${o.signal}` : `exit ${o.code}`;
  const line = firstLine(o.stderr);
  return line ? `${head}: ${line}` : head;
}

function shell(script: string, env: NodeJS.ProcessEnv): void {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], {
    env,
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (r.status !== 0)
    throw new Error(`${script.slice(0, 120)}: exit ${r.status}: ${firstLine(r.stderr.toString())}`);
}

/** Options of one harness run. */
export interface HarnessOptions {
  profile: Profile;
  runs: number;
  timeoutS: number;
  toolFilter?: RegExp;
  baseEnv: NodeJS.ProcessEnv;
}

/** Runs one scenario: warm-up + timed runs, alternating tools, then the output checks. */
export async function runScenario(sc: Scenario, o: HarnessOptions): Promise<ScenarioResult> {
  const work = join(DATA, 'out', sc.id);
  rmSync(work, { recursive: true, force: true });
  const tools = sc.tools.filter((t) => t.kappa || !o.toolFilter || o.toolFilter.test(t.name));
  const results = new Map<Tool, ToolResult>();
  const lastEnv = new Map<Tool, NodeJS.ProcessEnv>();
  for (const t of tools) {
    const missing = (t.requires ?? []).filter((c) => !has(c));
    const unavailable =
      missing.length === 0 && t.available !== undefined && !available(t.available, o.baseEnv);
    results.set(t, {
      name: t.name,
      kappa: t.kappa ?? false,
      command: t.stages.join(' | '),
      stages: t.stages,
      status: missing.length || unavailable ? 'skipped' : 'ok',
      reason: missing.length
        ? `not installed: ${missing.join(', ')}`
        : unavailable
          ? (t.availableHint ?? `unavailable: ${t.available}`)
          : undefined,
      samples: [],
      startupMs: {},
      note: t.note,
    });
  }
  for (let run = 0; run <= o.runs; run++) {
    // alternate: rotate the tool order every run so no tool always runs first (cold caches, heat)
    const order = tools.map((_, i) => tools[(i + run) % tools.length]!);
    for (const t of order) {
      const r = results.get(t)!;
      if (r.status !== 'ok') continue;
      const dir = join(work, t.name);
      mkdirSync(dir, { recursive: true });
      const runId = `${sc.id}-${t.name}-${run}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, '_');
      const env: NodeJS.ProcessEnv = {
        ...o.baseEnv,
        IN: sc.input,
        OUT: join(dir, 'out'),
        CHECK: join(dir, 'check'),
        N: String(sc.records),
        RUN_ID: runId,
      };
      rmSync(env.OUT!, { recursive: true, force: true });
      try {
        if (t.setup) shell(t.setup, env);
      } catch (e) {
        r.status = 'failed';
        r.reason = `setup failed: ${(e as Error).message}`;
        continue;
      }
      process.stderr.write(`bench: ${sc.id} ${t.name} ${run === 0 ? 'warm-up' : `run ${run}/${o.runs}`} … `);
      const out = await runStages(t.stages, env, !t.outputIsFile, dir, o.timeoutS, t.extras);
      process.stderr.write(`${(out.sample.wallMs / 1000).toFixed(2)} s${out.code === 0 ? '' : ' FAILED'}\n`);
      if (out.code !== 0 || out.timedOut) {
        r.status = 'failed';
        r.reason = failure(out, o.timeoutS);
        continue;
      }
      if (run > 0) r.samples.push(out.sample);
      for (const [what, stages] of Object.entries(t.startup ?? {})) {
        const s = await runStages(stages, env, false, join(dir, 'startup'), o.timeoutS);
        if (run > 0 && s.code === 0) r.startupMs[what] = [...(r.startupMs[what] ?? []), s.sample.wallMs];
      }
      lastEnv.set(t, env);
    }
  }
  // output checks: every tool against the reference (the first comparable peer that succeeded)
  const canon = new Map<Tool, Canonical>();
  for (const t of tools) {
    const r = results.get(t)!;
    const env = lastEnv.get(t);
    if (r.status !== 'ok' || !t.normalize || !env) continue;
    try {
      if (t.collect) shell(t.collect, env);
      canon.set(t, await canonicalize(t.collect ? env.CHECK! : env.OUT!, t.normalize));
    } catch (e) {
      r.check = { equal: false, summary: `output unreadable: ${(e as Error).message}`, against: '' };
    }
  }
  const ref = tools.find((t) => !t.kappa && canon.has(t));
  if (ref) {
    for (const t of tools) {
      const c = canon.get(t);
      if (!c) continue;
      const r = results.get(t)!;
      r.check =
        t === ref
          ? { equal: true, summary: `reference (${c.lines.length} rows)`, against: ref.name }
          : { ...compare(c, canon.get(ref)!, t.name, ref.name), against: ref.name };
    }
  }
  canon.clear();
  return {
    id: sc.id,
    group: sc.group,
    title: sc.title,
    records: sc.records,
    input: sc.input.startsWith(ROOT) ? sc.input.slice(ROOT.length + 1) : sc.input,
    target: sc.target,
    profile: o.profile.name,
    runs: o.runs,
    date: new Date().toISOString(),
    kappa: kappaLabel(),
    tools: tools.map((t) => results.get(t)!),
  };
}

/** Builds the scenarios of one group (preparing their data) — several for groups 1, 5 and 6. */
async function scenariosOf(group: number, p: Profile): Promise<Scenario[]> {
  switch (group) {
    case 1: {
      const out: Scenario[] = [];
      for (const [i, n] of p.s1.entries())
        out.push(scenario1(await prepareFlights(ROOT, DATA, n), String.fromCharCode(97 + i)));
      return out;
    }
    case 2:
      return [scenario2(await prepareFlights(ROOT, DATA, p.flights))];
    case 3: {
      const d = await prepareFlights(ROOT, DATA, p.flights);
      return [scenario3(d), scenario3table(d)];
    }
    case 4:
      return [scenario4(await prepareFlights(ROOT, DATA, p.flights))];
    case 5: {
      const d = await prepareFlights(ROOT, DATA, p.kafka);
      return [scenario5produce(d), scenario5consume(d)];
    }
    case 6: {
      const out: Scenario[] = [];
      for (const n of p.s6) out.push(scenario6(await prepareRides(DATA, n), n));
      return out;
    }
    case 7:
      return [scenarioCsv(await prepareFlights(ROOT, DATA, p.flights))];
    case 8: {
      const out: Scenario[] = [];
      for (const n of p.s8) out.push(scenarioJoin(await prepareJoin(DATA, n), n));
      return out;
    }
    case 9: {
      const d = await prepareFlights(ROOT, DATA, p.flights);
      const keys = p.name === 'full' ? 1_000_000 : 20_000;
      // the flights twelve times over (36M records): a run long enough for 10 s checkpoints (six
      // times over, 18M, ran in 10 s by 2026-11-30 night, before the first 10 s checkpoint)
      const times = 12;
      const repeated = await prepareFlightsRepeated(DATA, d, times);
      return [
        scenarioCheckpoint(repeated, d.rows * times, times),
        scenarioSavepoint(await prepareOpenWindowKeys(DATA, keys), keys),
      ];
    }
    default:
      throw new Error(`no scenario ${group} (1-9)`);
  }
}

/**
 * Starts the scenario-5 broker and fills the consume topic. The broker is the test suite's
 * (`test/servers/kafka.sh`: single KRaft node, free 127.0.0.1 ports, no time-based retention),
 * started fresh in bench/data; the perf tools come from bench/kafka's classpath.
 */
async function startKafka(env: NodeJS.ProcessEnv, input: string): Promise<() => void> {
  const dir = join(DATA, 'kafka-broker');
  rmSync(dir, { recursive: true, force: true });
  const started = spawnSync(join(ROOT, 'test', 'servers', 'kafka.sh'), ['start', dir], { env, cwd: ROOT });
  if (started.status !== 0)
    throw new Error(
      `starting the Kafka broker: exit ${started.status}: ${firstLine(started.stderr.toString())}`,
    );
  const stop = () => {
    try {
      shell(`"$ROOT/test/servers/kafka.sh" stop "${dir}"`, env);
    } catch (e) {
      process.stderr.write(`bench: stopping the broker: ${(e as Error).message}\n`);
    }
  };
  env.KAFKA = started.stdout.toString().trim();
  try {
    shell(
      `java -cp "$KAFKA_CP" -Dlog4j.configuration="file:$ROOT/bench/kafka/log4j.properties" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA" --create --partitions 4 --replication-factor 1 --topic ${CONSUME_TOPIC} > /dev/null && kcat -P -b "$KAFKA" -t ${CONSUME_TOPIC} -l "${input}"`,
      env,
    );
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}

/** Which kappa is measured: the BENCH_KAPPA launcher, or this checkout's bin/kappa at its commit. */
function kappaLabel(): string {
  if (process.env.BENCH_KAPPA) return `${process.env.BENCH_KAPPA} (BENCH_KAPPA)`;
  const r = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], {
    encoding: 'utf8',
  });
  return `bin/kappa at ${r.stdout.trim() || '?'}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}`;
}

/** Machine facts for the report header. */
export function machine(): Record<string, string> {
  const ver = (cmd: string) => {
    const r = spawnSync('bash', ['-c', `${cmd} 2>&1 | head -1`], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : 'n/a';
  };
  return {
    cores: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    java: ver('java -version'),
    jq: ver('jq --version'),
    mlr: ver('mlr --version'),
    kcat: ver("kcat -V | grep -o 'kcat - .*\\|Version [^ ]*' | head -1; kcat -V | grep -o 'Version [0-9.]*'"),
    duckdb: ver(
      `node -e "console.log(require('${ROOT}/node_modules/@duckdb/node-api/package.json').version)"`,
    ),
    polars: ver(
      `"${process.env.BENCH_PYTHON ?? join(DATA, 'py', 'bin', 'python')}" -c "import polars, pyarrow; print(polars.__version__, '(pyarrow', pyarrow.__version__ + ')')"`,
    ),
    flink: '1.20.1 (bench/flink/pom.xml)',
    kafka: '3.9.1 (bench/kafka/pom.xml)',
    kappa: kappaLabel(),
  };
}

async function main(): Promise<void> {
  const profile = PROFILES[process.env.BENCH_SIZE ?? 'full'];
  if (!profile) throw new Error(`BENCH_SIZE must be one of ${Object.keys(PROFILES).join(', ')}`);
  const groups = (process.env.BENCH_SCENARIOS ?? '1,2,3,4,5,6,7,8,9')
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const o: HarnessOptions = {
    profile,
    runs: Number(process.env.BENCH_RUNS ?? 3),
    timeoutS: Number(process.env.BENCH_TIMEOUT ?? 600),
    toolFilter: process.env.BENCH_TOOLS ? new RegExp(process.env.BENCH_TOOLS) : undefined,
    baseEnv: {
      ...process.env,
      // BENCH_KAPPA: another kappa launcher to measure (e.g. a merged build elsewhere); default bin/kappa
      PATH: `${process.env.BENCH_KAPPA ? dirname(resolve(process.env.BENCH_KAPPA)) : join(ROOT, 'bin')}:${process.env.PATH}`,
      ROOT,
      BENCH_JS: join(ROOT, 'dist', 'bench'),
      BENCH_PYTHON: process.env.BENCH_PYTHON ?? join(DATA, 'py', 'bin', 'python'),
      KAFKA_CP: existsSync(join(BENCH, 'kafka', 'target', 'classpath.txt'))
        ? readFileSync(join(BENCH, 'kafka', 'target', 'classpath.txt'), 'utf8').trim()
        : '',
    },
  };
  // BENCH_IDS=2,3t: only these scenarios of the chosen groups (e.g. 3t without 3).
  const ids = process.env.BENCH_IDS?.split(',').map((x) => x.trim());
  mkdirSync(RESULTS, { recursive: true });
  for (const g of groups) {
    const scenarios = await scenariosOf(g, profile);
    let stop: (() => void) | undefined;
    if (g === 5) stop = await startKafka(o.baseEnv, scenarios[0]!.input);
    try {
      for (const sc of scenarios) {
        if (ids && !ids.includes(sc.id)) continue;
        const res = await runScenario(sc, o);
        writeFileSync(join(RESULTS, `${sc.id}.json`), `${JSON.stringify(res, null, 2)}\n`);
      }
    } finally {
      stop?.();
    }
  }
  const all: ScenarioResult[] = readdirSync(RESULTS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(RESULTS, f), 'utf8')) as ScenarioResult);
  const analysisFile = join(BENCH, 'ANALYSIS.md');
  const md = renderResults(
    all,
    machine(),
    existsSync(analysisFile) ? readFileSync(analysisFile, 'utf8') : undefined,
  );
  writeFileSync(join(BENCH, 'RESULTS.md'), md);
  process.stderr.write(`bench: wrote ${join(BENCH, 'RESULTS.md')}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
