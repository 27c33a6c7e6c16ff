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

/**
 * Runs the fused pipeline. Resolves when every stage finished; rejects with the error of the stage
 * that failed first (later failures are its consequences: a cut-off input, a closed output).
 * @param build makes a fresh `kappa` program holding the named subcommand (each stage parses its
 *   flags with its own)
 */
export async function runPipeline(text: string, build: (only?: string) => Promise<Command>): Promise<void> {
  const stages = splitPipeline(text);
  checkStages(stages);
  const channels = stages.slice(0, -1).map((s, i) => new DirectChannel(`stage ${i + 1} (${s[0]})`));
  let firstFailure: { stage: number; error: unknown } | undefined;
  const runs = stages.map((argv, i) => {
    return runInStage({ input: channels[i - 1], output: channels[i] }, async () => {
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
    .addHelpText(
      'after',
      `
Examples:
  kappa run "ingest flights.parquet --ts-field date | window --key origin --tumbling 1h --agg 'count, avg(dep_delay)' | sink out/ --partition-by 'dt=%Y-%m-%d'"
  kappa run 'ingest kafka://localhost:9092/rides --checkpoint-dir ck/ | transform --filter "r.fare > 0" | sink s3://lake/rides/'
  kappa run -f /etc/kappa/rides.kappa        # the same text in a file (cron)

Each stage behaves exactly as it does in a shell pipeline (same flags, checkpoints, signals, summary
line); only the pipes are gone: records pass from stage to stage as objects in one process. A shell
pipeline uses one core per stage; a fused one uses one core and saves the encoding between stages.
The pipeline text is split as a shell would ($VAR, quotes); redirections, ';', '&&' and unquoted
globs are refused. Exit code: the first stage that failed.
See man kappa-run.`,
    )
    .action(async (pipeline: string | undefined, o: { file?: string }) => {
      if ((pipeline === undefined) === (o.file === undefined))
        throw new UsageError('give the pipeline as an argument or with -f FILE (one of them)');
      return runPipeline(pipeline ?? readPipelineFile(o.file as string), build);
    });
}
