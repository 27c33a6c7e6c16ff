/**
 * `kappa run 'A | B | C'`: the stages of a pipeline fused in one process (operator chaining, as
 * Flink chains operators of one task). Glue only: the pipeline text is split like a shell does
 * (shell-quote), each stage is parsed by its own command as if it ran alone, and the stages are
 * connected by in-process channels (src/stream/direct.ts) instead of pipes, so records go from stage
 * to stage as objects, without encoding. Everything else — flags, checkpoints, signals, summaries,
 * exit codes — is the stages' own.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { parse } from 'shell-quote';
import { UsageError } from '../errors.js';
import { fieldsRead } from '../ops/expr.js';
import type { TransformStep } from '../ops/transform.js';
import { parseAggs } from '../ops/window/aggregate.js';
import { DirectChannel, runInStage } from '../stream/direct.js';

/** Commands that may start a fused pipeline (they write a stream without reading one). */
const SOURCES = new Set(['ingest', 'replay']);
/** Commands that read a stream and write one (middle stages). */
const OPERATORS = new Set(['transform', 'window', 'join']);

/**
 * Splits a pipeline text into the argv of each stage, as a POSIX shell would: quotes and
 * backslashes, `$VAR` from the environment, stages separated by `|`.
 * @throws UsageError for anything else a shell would do (redirections, `;`, `&&`, globs,
 *   command substitution) or an empty stage
 */
export function splitPipeline(text: string, env: NodeJS.ProcessEnv = process.env): string[][] {
  const stages: string[][] = [[]];
  for (const t of parse(text, (k: string) => env[k] ?? '')) {
    if (typeof t === 'string') {
      stages[stages.length - 1].push(t);
      continue;
    }
    if ('op' in t && t.op === '|') {
      stages.push([]);
      continue;
    }
    const what = 'op' in t ? (t.op === 'glob' ? `the glob ${t.pattern}` : `'${t.op}'`) : 'a comment';
    throw new UsageError(
      `kappa run: ${what} in the pipeline: only stages separated by '|' can be fused`,
      "quote globs and paths ('logs/*.ndjson' is passed to ingest as is), or run the pipeline in a shell",
    );
  }
  for (let i = 0; i < stages.length; i++) {
    if (stages[i][0] === 'kappa') stages[i].shift();
    if (stages[i].length === 0) throw new UsageError(`kappa run: stage ${i + 1} of the pipeline is empty`);
  }
  return stages;
}

/** Checks the shape of a fused pipeline: a source first, stream operators in the middle. */
function checkStages(stages: string[][]): void {
  if (stages.length < 2)
    throw new UsageError(
      'kappa run: a pipeline needs at least two stages',
      "e.g. kappa run 'ingest a.parquet --ts-field t | sink out/'",
    );
  const [first] = stages[0];
  if (!SOURCES.has(first))
    throw new UsageError(`kappa run: the first stage must be a source (ingest or replay), not '${first}'`);
  for (let i = 1; i < stages.length; i++) {
    const c = stages[i][0];
    const last = i === stages.length - 1;
    if (!(OPERATORS.has(c) || (last && c === 'sink')))
      throw new UsageError(
        `kappa run: stage ${i + 1} is '${c}': after the source come transform, window or join, and sink only last`,
      );
  }
}

/** The flags of an `ingest` and a `window` stage that `windowReads` looks at, as commander parsed them. */
export interface ProjectionFlags {
  ingest: { tsField?: string; keyField?: string; onError?: string };
  window: { key?: string; agg?: string; lateOutput?: string; onError?: string };
}

const FIELD_PATH = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

/**
 * Adds the top-level fields a dotted path can read: its first segment, and the whole path too
 * (ops/path.ts: a key that itself holds the dots, `{"a.b": 1}`, is matched first).
 */
function addPath(fields: Set<string>, path: string): void {
  fields.add(path.split('.')[0]);
  fields.add(path);
}

/**
 * What a transform chain reads of its input's value fields, when that is known exactly: the
 * fields read (`fields`) and whether the chain's output value is made only of them (`closed`: a
 * `--select`, or a `--map`/`--flat-map` that builds a new value from named fields). A chain that
 * is not closed passes every other field on (the stage after it decides). Undefined when not
 * provable: an expression step whose `r` is used other than as `r.NAME` (ops/expr.ts
 * `fieldsRead`: `JSON.stringify(r)`, `{...r}`, `rec`), before the chain is closed. Steps after
 * the closing one see only the closed value, so they do not matter. `--rename` adds both names
 * of every pair (a superset: a field reaching a later name passes only through names the renames
 * list); `--drop` adds nothing.
 */
export function transformReads(
  steps: readonly TransformStep[],
): { fields: string[]; closed: boolean } | undefined {
  const fields = new Set<string>();
  for (const s of steps) {
    switch (s.kind) {
      case 'select':
        for (const f of s.fields) addPath(fields, f);
        return { fields: [...fields], closed: true };
      case 'drop':
        break;
      case 'rename':
        for (const [a, b] of s.pairs) fields.add(a).add(b);
        break;
      default: {
        const read = fieldsRead(s.expr);
        if (read === undefined) return undefined;
        for (const f of read) fields.add(f);
        if (s.kind === 'map' || s.kind === 'flat-map') return { fields: [...fields], closed: true };
      }
    }
  }
  return { fields: [...fields], closed: false };
}

/** The flags of a pipeline's stages that `pipelineReads` looks at. */
export interface PipelineFlags {
  ingest: ProjectionFlags['ingest'];
  /** The stages after ingest, in order, up to the first that is neither transform nor window. */
  after: (
    | { command: 'transform'; steps: readonly TransformStep[]; onError?: string }
    | { command: 'window'; flags: ProjectionFlags['window'] }
    | { command: 'other' }
  )[];
}

/**
 * The top-level fields of the source's records that the rest of a pipeline reads, when that set
 * is known exactly (see `sourceProjection`); undefined when it is not. The stages after ingest are
 * walked while each passes the fields it does not read on (a transform chain not `closed`,
 * `transformReads`), up to the stage whose output is made only of fields it read: a closed
 * transform chain, or a window (`windowReads`). Undefined: a stage that lets whole records leave
 * the job (`--on-error dead-letter=…` on ingest or a transform, a window's `--late-output`), a
 * read that is not known, or no such stage before a join, a sink or the end (whole records are
 * written).
 */
export function pipelineReads(f: PipelineFlags): string[] | undefined {
  const { ingest } = f;
  if (ingest.onError?.startsWith('dead-letter')) return undefined;
  const fields = new Set<string>();
  if (ingest.tsField !== undefined) addPath(fields, ingest.tsField);
  if (ingest.keyField !== undefined) addPath(fields, ingest.keyField);
  for (const st of f.after) {
    if (st.command === 'other') return undefined;
    if (st.command === 'window') {
      const w = windowReads({ ingest, window: st.flags });
      if (w === undefined) return undefined;
      for (const x of w) fields.add(x);
      return [...fields];
    }
    if (st.onError?.startsWith('dead-letter')) return undefined;
    const t = transformReads(st.steps);
    if (t === undefined) return undefined;
    for (const x of t.fields) fields.add(x);
    if (t.closed) return [...fields];
  }
  return undefined;
}

/**
 * The top-level fields of the source's records that `ingest … | window …` reads, when that set is
 * known exactly; undefined when it is not (the source then reads every column). A window's output
 * holds only window bounds, its key and its aggregates, so no other input field reaches later
 * stages; the fields read are ingest's `--ts-field` and `--key-field` and window's `--key` (a field
 * path, or an expression whose only use of `r` is `r.NAME`, ops/expr.ts `fieldsRead`) and the
 * aggregated fields (`--agg`). Not provable, so undefined: `--late-output` (late records are written
 * whole), `--on-error dead-letter=…` on either stage (bad records are written whole), an `--agg` or
 * `--key` that does not parse (the stage reports it).
 */
export function windowReads(f: ProjectionFlags): string[] | undefined {
  const { ingest, window } = f;
  if (window.lateOutput !== undefined) return undefined;
  if (ingest.onError?.startsWith('dead-letter') || window.onError?.startsWith('dead-letter'))
    return undefined;
  const fields = new Set<string>();
  const top = (path: string) => addPath(fields, path);
  if (ingest.tsField !== undefined) top(ingest.tsField);
  if (ingest.keyField !== undefined) top(ingest.keyField);
  const k = window.key;
  if (k !== undefined) {
    if (FIELD_PATH.test(k)) top(k.startsWith('r.') ? k.slice(2) : k);
    else {
      const read = fieldsRead(k);
      if (read === undefined) return undefined;
      for (const r of read) fields.add(r);
    }
  }
  try {
    for (const a of parseAggs(window.agg ?? 'count')) if (a.field !== undefined) top(a.field);
  } catch {
    return undefined;
  }
  return [...fields];
}

/** The option names of transform's steps (commander emits `option:NAME` per occurrence, in order). */
const STEP_FLAGS = ['filter', 'map', 'flat-map', 'key', 'ts', 'dedupe', 'select', 'drop', 'rename'] as const;

/**
 * Whether column projection is switched off: `KAPPA_PROJECTION=off` (also `0`, `false`) in the
 * environment, for `kappa run` and for a piped ingest alike (`pipedProjection`).
 * @throws UsageError for a value other than on/off/1/0/true/false
 */
export function projectionOff(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.KAPPA_PROJECTION;
  if (v === undefined || v === '' || /^(on|1|true)$/i.test(v)) return false;
  if (/^(off|0|false)$/i.test(v)) return true;
  throw new UsageError(`KAPPA_PROJECTION: expected on or off, got '${v}'`);
}

/**
 * The fields that the stages after an ingest read of its records (`pipelineReads`), each later
 * stage's argv (`['window', '--key', 'k', …]`) parsed by its own command without running it (a
 * transform's steps in command-line order, from commander's `option:NAME` events). Undefined when
 * a stage's flags do not parse, or whenever `pipelineReads` cannot prove the set. Shared by
 * `kappa run` (`sourceProjection`) and by a piped ingest that sees its stdout reader's command
 * line (`pipedProjection`).
 * @param ingest ingest's flags as commander parsed them
 * @param later the stages after ingest, in order (a piped ingest sees only the first)
 * @param build makes a `kappa` program holding the named subcommand (cli.ts `buildProgram`)
 */
export async function readsAfterIngest(
  ingest: ProjectionFlags['ingest'],
  later: readonly (readonly string[])[],
  build: (only?: string) => Promise<Command>,
): Promise<string[] | undefined> {
  const after: PipelineFlags['after'] = [];
  for (const argv of later) {
    if (argv[0] === 'window') {
      const flags = await parseStage(argv, build);
      if (!flags) return undefined;
      after.push({ command: 'window', flags });
      break;
    }
    if (argv[0] !== 'transform') {
      after.push({ command: 'other' });
      break;
    }
    const { parseFieldList, parseRenames } = await import('../ops/transform.js');
    const steps: TransformStep[] = [];
    let bad = false;
    const flags = await parseStage(argv, build, (kind, v) => {
      try {
        if (kind === 'select' || kind === 'drop') steps.push({ kind, fields: parseFieldList(v) });
        else if (kind === 'rename') steps.push({ kind, pairs: parseRenames(v) });
        else steps.push({ kind, expr: v });
      } catch {
        bad = true;
      }
    });
    if (!flags || bad) return undefined;
    after.push({ command: 'transform', steps, onError: flags.onError });
  }
  return pipelineReads({ ingest, after });
}

/** A stage's flags as its own command parses them, or undefined when they do not parse. */
async function parseStage(
  argv: readonly string[],
  build: (only?: string) => Promise<Command>,
  onStep?: (kind: (typeof STEP_FLAGS)[number], value: string) => void,
): Promise<Record<string, string | undefined> | undefined> {
  const cmd = (await build(argv[0])).commands.find((c) => c.name() === argv[0]);
  if (!cmd) return undefined;
  // The stage itself reports its bad flags; this parse only tries (no message, no exit).
  cmd.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  if (onStep) for (const k of STEP_FLAGS) cmd.on(`option:${k}`, (v: string) => onStep(k, v));
  try {
    const { unknown } = cmd.parseOptions(argv.slice(1));
    return unknown.length > 0 ? undefined : (cmd.opts() as Record<string, string | undefined>);
  } catch {
    return undefined;
  }
}

/**
 * The column projection of a fused pipeline's source stage (`StageIO.readColumns`): ingest's flags
 * parsed by its command, then `readsAfterIngest` of the later stages. Undefined unless the source
 * is `ingest`, when `KAPPA_PROJECTION=off`, when a stage's flags do not parse, and whenever
 * `pipelineReads` cannot prove the set.
 */
export async function sourceProjection(
  stages: string[][],
  build: (only?: string) => Promise<Command>,
): Promise<string[] | undefined> {
  if (stages[0][0] !== 'ingest' || projectionOff()) return undefined;
  const ingest = await parseStage(stages[0], build);
  if (!ingest) return undefined;
  return readsAfterIngest(ingest, stages.slice(1), build);
}

/**
 * The column projection of an ingest in a shell pipeline (`kappa ingest F | kappa window …`): its
 * stdout reader's command line (stream/negotiate.ts `stdoutKappaReader`, the scan that also picks
 * the encoding) given to `readsAfterIngest` as the one later stage. What comes after that reader is
 * invisible, so only a window or a closed transform chain proves a set. Undefined (every field is
 * read) when `KAPPA_PROJECTION=off`, stdout is not a pipe to a kappa stage (a file, a FIFO, `tee`,
 * jq, no /proc), or the proof fails.
 * @returns the fields and the reader's command, e.g. `{ fields: ['date', 'origin', 'delay'], reader: 'window' }`
 */
export async function pipedProjection(
  ingest: ProjectionFlags['ingest'],
  build: (only?: string) => Promise<Command>,
): Promise<{ fields: string[]; reader: string } | undefined> {
  if (projectionOff()) return undefined;
  const { stdoutKappaReader } = await import('../stream/negotiate.js');
  const argv = stdoutKappaReader();
  if (argv === undefined || (argv[0] !== 'window' && argv[0] !== 'transform')) return undefined;
  const fields = await readsAfterIngest(ingest, [argv], build);
  return fields === undefined ? undefined : { fields, reader: argv[0] };
}

/**
 * Runs the fused pipeline. Resolves when every stage finished; rejects with the error of the stage
 * that failed first (later failures are its consequences: a cut-off input, a closed output).
 * @param build makes a fresh `kappa` program holding the named subcommand (each stage parses its
 *   flags with its own)
 * @param opts.quiet `kappa run -q`: every stage runs with `-q` (no progress bar, no summary line)
 */
export async function runPipeline(
  text: string,
  build: (only?: string) => Promise<Command>,
  opts: { quiet?: boolean } = {},
): Promise<void> {
  const stages = splitPipeline(text);
  checkStages(stages);
  // Right after the command name: before any `--`, and a repeated -q is harmless.
  if (opts.quiet) for (const argv of stages) argv.splice(1, 0, '-q');
  const channels = stages.slice(0, -1).map((s, i) => new DirectChannel(`stage ${i + 1} (${s[0]})`));
  const readColumns = await sourceProjection(stages, build);
  let firstFailure: { stage: number; error: unknown } | undefined;
  const runs = stages.map((argv, i) => {
    const io = {
      input: channels[i - 1],
      output: channels[i],
      readColumns: i === 0 ? readColumns : undefined,
    };
    return runInStage(io, async () => {
      try {
        const program = await build(argv[0]);
        program.exitOverride();
        for (const c of program.commands) c.exitOverride();
        await program.parseAsync(['node', 'kappa', ...argv]);
      } catch (e) {
        firstFailure ??= { stage: i, error: e };
        channels[i]?.fail(e);
        channels[i - 1]?.cancel();
        throw e;
      }
    });
  });
  await Promise.allSettled(runs);
  if (!firstFailure) return;
  const { stage, error } = firstFailure;
  process.stderr.write(`kappa run: stage ${stage + 1} (${stages[stage][0]}) failed\n`);
  if (error instanceof CommanderError && error.code.startsWith('commander.help')) return;
  throw error;
}

/**
 * The pipeline text of a `kappa run -f FILE`: lines joined with spaces (a trailing backslash
 * continues a line as in a shell), lines whose first non-blank character is `#` left out.
 * @throws UsageError when the file cannot be read
 */
export function readPipelineFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(
      `kappa run -f ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  return text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .map((l) => l.replace(/\\\s*$/, ''))
    .join(' ');
}

/** `kappa run`. */
export function runCommand(build: (only?: string) => Promise<Command>): Command {
  return new Command('run')
    .description('run a pipeline of kappa stages fused in one process (no encoding between stages)')
    .argument(
      '[pipeline]',
      "the stages, separated by '|', each a kappa command with its flags, quoted as in a shell",
    )
    .option(
      '-f, --file <path>',
      'read the pipeline from a file (for cron: lines joined, # comment lines ignored)',
    )
    .option('-q, --quiet', "every stage quiet: no progress bar and no summary lines (as each stage's -q)")
    .addHelpText(
      'after',
      `
Examples:
  kappa run "ingest flights.parquet --ts-field date | window --key origin --tumbling 1h --agg 'count, avg(dep_delay)' | sink out/ --partition-by 'dt=%Y-%m-%d'"
  kappa run 'ingest kafka://localhost:9092/rides --checkpoint-dir ck/ | transform --filter "r.fare > 0" | sink s3://lake/rides/'
  kappa run -f /etc/kappa/rides.kappa        # the same text in a file (cron)
  kappa run -q -f /etc/kappa/rides.kappa     # no summary lines (errors are still printed)

Each stage behaves exactly as it does in a shell pipeline (same flags, checkpoints, signals, summary
line); only the pipes are gone: records pass from stage to stage as objects in one process. A shell
pipeline uses one core per stage; a fused one runs its stages on one thread (plus the Parquet
decode thread of a local multi-row-group file, see kappa-ingest) and saves the encoding between them.
The pipeline text is split as a shell would ($VAR, quotes); redirections, ';', '&&' and unquoted
globs are refused. Exit code: the first stage that failed.

Column projection: when the stages after ingest provably read only some fields, ingest reads only
those: for 'ingest … | window …' the window's fields (ingest's --ts-field/--key-field, window's
--key and --agg fields), as in the first example (date, origin, dep_delay); for 'ingest … |
transform …' a chain closed by --select (or a --map/--flat-map reading r only as r.NAME) after
steps reading r only as r.NAME, e.g.
  kappa run "ingest - | transform --filter 'r.delay > 60' --select date,origin,delay" < f.ndjson
(transforms that are not closed pass the rest on to the next transform or window). Parquet decodes
only those columns; the NDJSON scanner skips the other keys' values (grammar still checked: bad
lines are reported as without projection); CSV builds only those columns. Not with
--late-output or --on-error dead-letter=…, nor when a join or sink comes first. A shell pipeline
'kappa ingest … | kappa window …' projects the same way (man kappa-ingest); KAPPA_PROJECTION=off
turns projection off in both.
See man kappa-run.`,
    )
    .action(async (pipeline: string | undefined, o: { file?: string; quiet?: boolean }) => {
      if ((pipeline === undefined) === (o.file === undefined))
        throw new UsageError('give the pipeline as an argument or with -f FILE (one of them)');
      return runPipeline(pipeline ?? readPipelineFile(o.file as string), build, { quiet: o.quiet });
    });
}
