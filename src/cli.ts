/**
 * The `kappa` program: one line per subcommand, plus error handling that maps failures to the exit
 * codes in src/errors.ts (0 ok, 1 runtime, 2 usage, 3 data, 78 config, 130/143 stopped by
 * SIGINT/SIGTERM: see src/stream/signals.ts).
 */
import { Command, CommanderError, Help } from 'commander';
import { ExitCode, KappaError } from './errors.js';
import { InterruptedError, installSignalHandlers, interruptedBy } from './stream/signals.js';

/**
 * One subcommand: its name, its term and description as `kappa --help` lists them (the stand-in
 * that `kappa --help` shows without loading the command: test/unit/startup-lazy.test.ts checks
 * that they agree with the real command), and its loader.
 */
interface CommandEntry {
  readonly name: string;
  /** Commander's `subcommandTerm` of the real command, e.g. `ingest [options] <source...>`. */
  readonly term: string;
  readonly description: string;
  readonly make: () => Promise<Command>;
}

/**
 * The subcommands in `kappa --help` order, each loaded on demand: a stage loads only its own
 * command's modules (`kappa window` does not import the Parquet writer, S3 or Kafka code), which
 * saves 100-200 ms of start-up CPU per stage of a pipeline; `kappa --help` and `kappa --version`
 * load none (stand-ins built from `term` and `description`).
 */
const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'ingest',
    term: 'ingest [options] <source...>',
    description:
      'read files, globs, Hive-partitioned directories, s3:// prefixes, kafka:// topics or stdin and emit a kappa record stream',
    make: async () => (await import('./commands/ingest.js')).ingestCommand(),
  },
  {
    name: 'sink',
    term: 'sink [options] <target>',
    description:
      'write a kappa record stream to stdout (-), a file, a table directory (local or s3://) or kafka://',
    make: async () => (await import('./commands/sink.js')).sinkCommand(),
  },
  {
    name: 'transform',
    term: 'transform [options]',
    description:
      'filter, map, project, re-key, re-time and de-duplicate a kappa record stream (steps run in the order given)',
    make: async () => (await import('./commands/transform.js')).transformCommand(),
  },
  {
    name: 'window',
    term: 'window [options]',
    description: 'event-time tumbling, sliding and session windows with aggregates, on keyed state',
    make: async () => (await import('./commands/window.js')).windowCommand(),
  },
  {
    name: 'compact',
    term: 'compact [options] <table>',
    description: 'merge the small files of a kappa table atomically (Delta commit), and vacuum removed files',
    make: async () => (await import('./commands/compact.js')).compactCommand(),
  },
  {
    name: 'state-edit',
    term: 'state-edit [verb]',
    description: 'savepoint surgery: inspect, read, write, delete, migrate, rescale, rekey, diff, validate',
    make: async () => (await import('./commands/state-edit.js')).stateEditCommand(),
  },
  {
    name: 'join',
    term: 'join [options]',
    description:
      'joins the stream on stdin with a second input: interval, as-of (temporal) or lookup join on event time',
    make: async () => (await import('./commands/join.js')).joinCommand(),
  },
  {
    name: 'replay',
    term: 'replay [options] <source...>',
    description:
      'replay time-partitioned tables (dt=…/hr=…, with or without a Delta log) oldest partition first, all sources in lockstep, with a watermark at each partition end; optionally then continue with a Kafka topic',
    make: async () => (await import('./commands/replay.js')).replayCommand(),
  },
  {
    name: 'run',
    term: 'run [options] [pipeline]',
    description: 'run a pipeline of kappa stages fused in one process (no encoding between stages)',
    make: async () => (await import('./commands/run.js')).runCommand(buildProgram),
  },
];

/**
 * What the program needs for `argv` (argv[2] onwards): `'none'` for `kappa --version`/`-V` (no
 * command at all), `'stubs'` for the top-level help (`kappa`, `kappa --help`/`-h`, `kappa help`:
 * stand-ins that only list the commands), else the name to pass to `buildProgram`.
 */
export function programNeeds(argv: readonly string[]): 'none' | 'stubs' | string | undefined {
  const a = argv[2];
  if (a === '--version' || a === '-V') return 'none';
  if (a === undefined || ((a === '--help' || a === '-h' || a === 'help') && argv.length === 3))
    return 'stubs';
  return a;
}

/**
 * Makes the `kappa` program.
 * @param only a subcommand name: add just that command (what a stage needs to parse its argv);
 *   `'none'`: no command (`kappa --version`); `'stubs'`: a stand-in per command that only lists it
 *   (`kappa --help`: same text, no command module loaded); undefined or an unknown name: every
 *   command (commander's "unknown command" and its suggestions)
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('kappa')
    .description(
      'Batch and stream processing as one toolkit: Kafka topics and time-partitioned Parquet, in shell pipelines',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Commands read and write the kappa record stream (man kappa-stream) on stdin/stdout:
  kappa ingest flights.parquet --ts-field date | kappa sink out/ --partition-by 'dt=%Y-%m-%d'

Progress: on a terminal only the first stage of a pipeline (the source) draws a progress bar;
every stage prints a one-line summary on stderr when it ends (-q: none).

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 data error, 78 configuration error,
130/143 stopped by SIGINT/SIGTERM (no end-of-stream line: downstream commits nothing).`,
    );
  if (only === 'none') return program;
  if (only === 'stubs') {
    const terms = new Map(COMMANDS.map((c) => [c.name, c.term]));
    program.configureHelp({
      subcommandTerm(c) {
        return terms.get(c.name()) ?? Help.prototype.subcommandTerm.call(this, c);
      },
    });
    for (const c of COMMANDS) program.command(c.name).description(c.description);
    return program;
  }
  const chosen = COMMANDS.filter((c) => c.name === only);
  for (const c of chosen.length > 0 ? chosen : COMMANDS) program.addCommand(await c.make());
  return program;
}

/** Entry point used by bin/kappa. Never throws: prints the error and sets the exit code. */
export async function main(argv: string[]): Promise<void> {
  // `kappa … --help | head`: a closed stdout is normal use, not a crash (LineWriter stops on it too).
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  const command = argv[2] && !argv[2].startsWith('-') ? `kappa ${argv[2]}` : 'kappa';
  installSignalHandlers(command);
  const program = await buildProgram(programNeeds(argv));
  program.exitOverride();
  for (const c of program.commands)
    c.exitOverride().showHelpAfterError(
      `usage: kappa ${c.name()} ${c.usage()}\n(run 'kappa ${c.name()} --help' for details)`,
    );
  // A run whose work is still pending when Node's event loop runs dry (a stage waiting on an event
  // that will never come) must not look like success: Node would exit 0 with nothing written.
  let settled = false;
  process.once('beforeExit', () => {
    if (settled) return;
    process.stderr.write(
      `${command}: internal error: the run stalled before its end (no pending I/O or timer left); nothing more will be written\n`,
    );
    process.exitCode = ExitCode.runtime;
  });
  try {
    await program.parseAsync(argv);
    const late = interruptedBy();
    // The signal came after the run had written its end (and committed): the output is complete.
    if (late)
      process.stderr.write(`${command}: ${late} arrived after the run completed; its output is complete\n`);
  } catch (e) {
    // After a signal, whatever failed on the way out (a pipe closed by the stop) is the signal's doing.
    const sig = interruptedBy();
    process.exitCode = reportError(
      sig && !(e instanceof InterruptedError) ? new InterruptedError(sig) : e,
      argv[2],
    );
    // A stopped run exits now (a source may still hold stdin or a FIFO open), once what it already
    // wrote to stdout reached the pipe: exiting with a write in flight would cut a line in two.
    if (sig) {
      await settleStdout(2000);
      process.exit(process.exitCode);
    }
  } finally {
    settled = true;
  }
}

/** Waits until stdout has handed every pending write to the OS, or `ms` passed (a stalled reader). */
function settleStdout(ms: number): Promise<void> {
  if (process.stdout.writableLength === 0 || process.stdout.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    process.stdout.write('', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function reportError(e: unknown, command: string | undefined): number {
  const who = command && !command.startsWith('-') ? `kappa ${command}` : 'kappa';
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
      return ExitCode.ok;
    return ExitCode.usage; // commander already printed the message and the usage hint
  }
  if (e instanceof InterruptedError) {
    process.stderr.write(`${who}: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof KappaError) {
    process.stderr.write(`${who}: error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`${who}: hint: ${e.hint}\n`);
    if (process.env.KAPPA_DEBUG) process.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'EPIPE') return ExitCode.ok;
  process.stderr.write(`${who}: error: ${err?.message ?? String(e)}\n`);
  if (process.env.KAPPA_DEBUG) process.stderr.write(`${err?.stack}\n`);
  return ExitCode.runtime;
}
