/**
 * `kappa state-edit VERB SAVEPOINT …`: savepoint surgery without code (issue 10; man
 * kappa-state-edit(1)). Glue only: each verb opens the savepoint (verified: sizes and SHA-256),
 * applies the pure edit of src/state/edit/* and, for verbs that change something, writes a NEW
 * savepoint to `-o` (which must not exist) with fresh checksums; the source is never modified.
 *
 * Exit codes: 0 ok; 1 `diff` found differences (like diff(1)), or a runtime failure; 2 usage;
 * 3 data (a damaged savepoint, a value that does not fit its state's schema, `validate` problems).
 */
import { createReadStream, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { DataError, UsageError } from '../errors.js';
import { toStateKey } from '../ops/keys.js';
import { diffSavepoints, formatDiff } from '../state/edit/diff.js';
import { formatInspect, inspectSavepoint } from '../state/edit/inspect.js';
import {
  deleteEntries,
  migrateEntries,
  pruneEntries,
  rekeyEntries,
  rescaleEntries,
  upsertEntries,
} from '../state/edit/keyed.js';
import {
  dropOperator,
  parsePositions,
  parseTime,
  renameOperator,
  setPositions,
  setWatermark,
} from '../state/edit/metadata.js';
import { collect, entryExpr, entryToLine, lineToEntry, parseKeyArg } from '../state/edit/model.js';
import { entriesToParquet, selectEntries } from '../state/edit/read.js';
import { checkNewOutput, type SavepointEdit, writeEdited } from '../state/edit/rewrite.js';
import { validateSavepoint } from '../state/edit/validate.js';
import type { OperatorMetadata, SavepointEntry, StateDescriptor } from '../state/savepoint/format.js';
import { openSavepoint, type Savepoint } from '../state/savepoint/read.js';
import { parseDuration } from '../time/duration.js';
import { isoUtc } from '../time/timestamp.js';

interface Out {
  output?: string;
  quiet?: boolean;
}

const say = (o: Out, msg: string) => {
  if (!o.quiet) process.stderr.write(`kappa state-edit: ${msg}\n`);
};

function operatorOf(sp: Savepoint, uid: string | undefined): OperatorMetadata {
  if (!uid) throw new UsageError('--operator UID is required');
  const op = sp.operator(uid);
  if (!op)
    throw new UsageError(
      `savepoint ${sp.uri} has no operator '${uid}' (it has: ${sp.metadata.operators.map((x) => x.uid).join(', ') || 'none'})`,
    );
  return op;
}

function checkState(op: OperatorMetadata, state: string | undefined): void {
  if (state !== undefined && !op.states.some((s) => s.name === state))
    throw new UsageError(
      `operator '${op.uid}' has no state '${state}' (it has: ${op.states.map((s) => s.name).join(', ')})`,
    );
}

/** An edit of one operator's entries, the rest copied. */
function withEntries(
  sp: Savepoint,
  uid: string,
  change: Partial<Omit<OperatorMetadata, 'uid' | 'files' | 'entries'>> & {
    entries: AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;
  },
): SavepointEdit {
  return {
    operators: sp.metadata.operators.map((o) => (o.uid === uid ? { uid, ...change } : { uid: o.uid })),
  };
}

/** Lines of an NDJSON file (`-` for stdin) as parsed values with their place. */
async function* ndjsonLines(file: string): AsyncGenerator<{ value: unknown; where: string }> {
  const rl = createInterface({
    input: file === '-' ? process.stdin : createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      if (line.trim() === '') continue;
      const where = `${file === '-' ? 'stdin' : file} line ${n}`;
      try {
        yield { value: JSON.parse(line), where };
      } catch (e) {
        if (e instanceof SyntaxError) throw new DataError(`${where}: not JSON: ${e.message}`);
        throw e;
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(`cannot read ${file}: no such file`);
    throw e;
  }
}

async function finish(o: Out, verb: string, sp: Savepoint, edit: SavepointEdit, what: string): Promise<void> {
  const out = await checkNewOutput(o.output, verb);
  const m = await writeEdited(sp, out, edit);
  const n = m.operators.reduce((a, x) => a + x.entries, 0);
  say(
    o,
    `${verb}: ${what}; wrote ${out} (${m.operators.length} operators, ${n} entries, ${m.maxKeyGroups} key groups)`,
  );
}

function verb(name: string, desc: string): Command {
  return new Command(name)
    .description(desc)
    .argument('<savepoint>', 'savepoint directory (local path or s3://bucket/prefix)')
    .option('-q, --quiet', 'no summary on stderr')
    .exitOverride();
}

const withOut = (c: Command) =>
  c.requiredOption('-o, --output <new-savepoint>', 'where to write the new savepoint (must not exist)');

/**
 * The `state-edit` command with one subcommand per verb (the module comment lists the exit codes).
 * Every verb takes the savepoint first; changing verbs require `-o NEW_SAVEPOINT`.
 */
export function stateEditCommand(): Command {
  const cmd = new Command('state-edit')
    .description('savepoint surgery: inspect, read, write, delete, migrate, rescale, rekey, diff, validate')
    .usage('VERB SAVEPOINT [args] [-o NEW_SAVEPOINT]')
    .addHelpText(
      'after',
      `
Every verb that changes something writes a NEW savepoint to -o (never in place; -o must not exist)
with fresh checksums. Exit codes: 0 ok, 1 diff found differences, 2 usage, 3 data (damaged savepoint,
value not fitting its state's schema, validate found problems). See man kappa-state-edit.

Examples:
  kappa state-edit inspect sp/
  kappa state-edit read sp/ --operator window-1 --key JFK | jq .value.acc
  kappa state-edit delete sp/ -o sp2/ --operator window-1 --key JFK --key LGA
  kappa state-edit rescale sp2/ -o sp3/ --max-key-groups 256
  kappa state-edit diff sp/ sp3/`,
    );

  cmd.addCommand(
    verb(
      'inspect',
      'operators, states and schemas, entries per key group (skew), sizes, positions, watermarks',
    )
      .option('--json', 'print the report as one JSON object')
      .action(async (uri: string, o: { json?: boolean }) => {
        const r = await inspectSavepoint(await openSavepoint(uri));
        process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : formatInspect(r));
      }),
  );

  cmd.addCommand(
    verb('read', "an operator's entries: one NDJSON line per entry (or one Parquet file)")
      .option('--operator <uid>', 'the operator (required)')
      .option('--state <name>', 'only this state')
      .option('--key <key...>', 'only these keys (JSON, or a plain string: JFK)')
      .option(
        '--where <expr>',
        'only entries for which this JS expression over r (the line), key, ts is truthy',
      )
      .option('--format <fmt>', 'ndjson | parquet', 'ndjson')
      .option('-o, --output <file>', 'write to this file instead of stdout')
      .action(
        async (
          uri: string,
          o: {
            operator?: string;
            state?: string;
            key?: string[];
            where?: string;
            format: string;
            output?: string;
          },
        ) => {
          if (o.format !== 'ndjson' && o.format !== 'parquet')
            throw new UsageError(`--format: expected ndjson or parquet, got '${o.format}'`);
          const sp = await openSavepoint(uri);
          const op = operatorOf(sp, o.operator);
          checkState(op, o.state);
          const sel = selectEntries(sp.entries(op.uid), {
            operator: op.uid,
            state: o.state,
            keys: o.key ? new Set(o.key.map(parseKeyArg)) : undefined,
            where: o.where === undefined ? undefined : entryExpr(o.where, '--where'),
          });
          if (o.format === 'parquet') {
            const bytes = entriesToParquet(await collect(sel));
            if (o.output) writeFileSync(o.output, bytes);
            else process.stdout.write(bytes);
            return;
          }
          const lines: string[] = [];
          const flush = async () => {
            const text = lines.join('');
            lines.length = 0;
            if (o.output) writeFileSync(o.output, text, { flag: 'a' });
            else if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
          };
          if (o.output) writeFileSync(o.output, '');
          for await (const e of sel) {
            lines.push(`${JSON.stringify(entryToLine(e, op.uid))}\n`);
            if (lines.length >= 1024) await flush();
          }
          await flush();
        },
      ),
  );

  cmd.addCommand(
    withOut(verb('write', "upsert entries given in read's shape (--from) and delete keys (--delete-from)"))
      .option('--operator <uid>', 'the operator (required)')
      .option(
        '--from <file>',
        'NDJSON entries to upsert (- for stdin); values are checked against the state schema',
      )
      .option('--delete-from <file>', 'NDJSON lines {key[, state, window_start]} whose entries are deleted')
      .action(async (uri: string, o: Out & { operator?: string; from?: string; deleteFrom?: string }) => {
        if (!o.from && !o.deleteFrom)
          throw new UsageError('write: give --from FILE and/or --delete-from FILE');
        await checkNewOutput(o.output, 'write');
        const sp = await openSavepoint(uri);
        const op = operatorOf(sp, o.operator);
        const kg = sp.metadata.maxKeyGroups;
        const ups: SavepointEntry[] = [];
        if (o.from)
          for await (const l of ndjsonLines(o.from)) ups.push(lineToEntry(l.value, op.states, kg, l.where));
        const dels: { state?: string; key: string; windowStart?: number | null }[] = [];
        if (o.deleteFrom)
          for await (const l of ndjsonLines(o.deleteFrom)) {
            const v = l.value as { key?: unknown; state?: string; window_start?: number | null };
            if (v === null || typeof v !== 'object' || v.key === undefined)
              throw new DataError(`${l.where}: expected {"key": …} (optionally state and window_start)`);
            dels.push({ state: v.state, key: toStateKey(v.key), windowStart: v.window_start });
          }
        const counts = { added: 0, replaced: 0, removed: 0 };
        const entries = await upsertEntries(sp.entries(op.uid), ups, dels, op.states, counts);
        await finish(
          o,
          'write',
          sp,
          withEntries(sp, op.uid, { entries }),
          `${counts.added} entries added, ${counts.replaced} replaced, ${counts.removed} deleted`,
        );
      }),
  );

  cmd.addCommand(
    withOut(verb('delete', 'delete the entries of some keys, or those an expression selects'))
      .option('--operator <uid>', 'the operator (required)')
      .option('--state <name>', 'only in this state')
      .option('--key <key...>', 'keys to delete (JSON, or a plain string: JFK)')
      .option(
        '--where <expr>',
        'delete entries for which this JS expression over r (the line), key, ts is truthy',
      )
      .action(
        async (
          uri: string,
          o: Out & { operator?: string; state?: string; key?: string[]; where?: string },
        ) => {
          if (!o.key === !o.where)
            throw new UsageError('delete: give --key K… or --where EXPR (one of them)');
          await checkNewOutput(o.output, 'delete');
          const sp = await openSavepoint(uri);
          const op = operatorOf(sp, o.operator);
          checkState(op, o.state);
          const counter = { removed: 0 };
          const entries = deleteEntries(
            sp.entries(op.uid),
            {
              keys: o.key ? new Set(o.key.map(parseKeyArg)) : undefined,
              where: o.where === undefined ? undefined : entryExpr(o.where, '--where'),
              operator: op.uid,
              state: o.state,
            },
            counter,
          );
          await finish(o, 'delete', sp, withEntries(sp, op.uid, { entries }), 'deleting entries');
          say(o, `delete: ${counter.removed} entries removed`);
        },
      ),
  );

  cmd.addCommand(
    withOut(verb('migrate', 'rewrite each value with an expression; the migration is recorded in the schema'))
      .option('--operator <uid>', 'the operator (required)')
      .option('--state <name>', 'only this state')
      .requiredOption(
        '--map <expr>',
        "the new value: a JS expression over r (the line: r.value, r.key, …), e.g. '({...r.value, x: 1})'",
      )
      .action(async (uri: string, o: Out & { operator?: string; state?: string; map: string }) => {
        await checkNewOutput(o.output, 'migrate');
        const sp = await openSavepoint(uri);
        const op = operatorOf(sp, o.operator);
        checkState(op, o.state);
        const map = entryExpr(o.map, '--map');
        const states = op.states.map(
          (s): StateDescriptor =>
            o.state !== undefined && s.name !== o.state
              ? s
              : {
                  ...s,
                  schema:
                    s.schema !== null && typeof s.schema === 'object' && !Array.isArray(s.schema)
                      ? {
                          ...s.schema,
                          migrations: [
                            ...(Array.isArray(s.schema.migrations) ? s.schema.migrations : []),
                            { map: o.map },
                          ],
                        }
                      : { previous: s.schema ?? null, migrations: [{ map: o.map }] },
                },
        );
        const counter = { changed: 0 };
        const entries = migrateEntries(
          sp.entries(op.uid),
          map,
          op.states,
          { operator: op.uid, state: o.state },
          counter,
        );
        await finish(o, 'migrate', sp, withEntries(sp, op.uid, { states, entries }), 'migrating values');
        say(o, `migrate: ${counter.changed} values changed`);
      }),
  );

  cmd.addCommand(
    withOut(verb('drop-operator', "remove an operator's state (state no stage of an edited pipeline claims)"))
      .argument('<uid>', 'the operator to drop')
      .action(async (uri: string, uid: string, o: Out) => {
        await checkNewOutput(o.output, 'drop-operator');
        const sp = await openSavepoint(uri);
        await finish(o, 'drop-operator', sp, dropOperator(sp.metadata, uid), `dropped operator '${uid}'`);
      }),
  );

  cmd.addCommand(
    withOut(verb('rename-operator', 'give an operator a new uid'))
      .argument('<old>', 'the operator uid in the savepoint')
      .argument('<new>', 'its new uid')
      .action(async (uri: string, from: string, to: string, o: Out) => {
        await checkNewOutput(o.output, 'rename-operator');
        const sp = await openSavepoint(uri);
        await finish(
          o,
          'rename-operator',
          sp,
          renameOperator(sp.metadata, from, to),
          `renamed '${from}' to '${to}'`,
        );
      }),
  );

  cmd.addCommand(
    withOut(verb('set-positions', "replace a source's positions"))
      .requiredOption('--source <uid>', 'the source')
      .argument(
        '<positions>',
        "Kafka 'PARTITION:OFFSET,…' (next offsets), an ISO time, or file positions as JSON",
      )
      .action(async (uri: string, positions: string, o: Out & { source: string }) => {
        const p = parsePositions(positions);
        await checkNewOutput(o.output, 'set-positions');
        const sp = await openSavepoint(uri);
        await finish(
          o,
          'set-positions',
          sp,
          setPositions(sp.metadata, o.source, p),
          `source '${o.source}' positions ${JSON.stringify(p)}`,
        );
      }),
  );

  cmd.addCommand(
    withOut(verb('set-watermark', 'set the watermark of every operator and source (or of --operator)'))
      .argument('<time>', 'ISO 8601 time (UTC unless an offset is given) or epoch ms')
      .option('--operator <uid...>', 'only these operators (sources keep theirs)')
      .action(async (uri: string, time: string, o: Out & { operator?: string[] }) => {
        const wm = parseTime(time, 'set-watermark');
        await checkNewOutput(o.output, 'set-watermark');
        const sp = await openSavepoint(uri);
        await finish(
          o,
          'set-watermark',
          sp,
          setWatermark(sp.metadata, wm, o.operator),
          `watermark ${isoUtc(wm)}`,
        );
      }),
  );

  cmd.addCommand(
    withOut(verb('prune', "drop entries older than the savepoint's watermark minus DUR"))
      .requiredOption('--older-than <dur>', 'e.g. 7d: drop windows that ended before watermark - 7d')
      .option('--operator <uid...>', 'only these operators (default: all)')
      .action(async (uri: string, o: Out & { olderThan: string; operator?: string[] }) => {
        const dur = parseDuration(o.olderThan, '--older-than');
        await checkNewOutput(o.output, 'prune');
        const sp = await openSavepoint(uri);
        for (const u of o.operator ?? []) operatorOf(sp, u);
        const srcWms = sp.metadata.sources.map((s) => s.watermark).filter((w): w is number => w !== null);
        const counter = { removed: 0 };
        const edit: SavepointEdit = {
          operators: sp.metadata.operators.map((op) => {
            if (o.operator && !o.operator.includes(op.uid)) return { uid: op.uid };
            const wm = op.watermark ?? (srcWms.length > 0 ? Math.min(...srcWms) : null);
            if (wm === null)
              throw new DataError(
                `prune: operator '${op.uid}' has no watermark, and the savepoint's sources have none`,
                'set one first with state-edit set-watermark',
              );
            return { uid: op.uid, entries: pruneEntries(sp.entries(op.uid), wm - dur, counter) };
          }),
        };
        await finish(o, 'prune', sp, edit, `pruning entries older than watermark - ${o.olderThan}`);
        say(o, `prune: ${counter.removed} entries removed`);
      }),
  );

  cmd.addCommand(
    withOut(verb('rescale', 're-split all keyed state into N key groups'))
      .requiredOption('--max-key-groups <n>', 'the new number of key groups (1..65536)')
      .action(async (uri: string, o: Out & { maxKeyGroups: string }) => {
        if (!/^\d+$/.test(o.maxKeyGroups))
          throw new UsageError(`--max-key-groups: expected an integer, got '${o.maxKeyGroups}'`);
        const n = Number(o.maxKeyGroups);
        await checkNewOutput(o.output, 'rescale');
        const sp = await openSavepoint(uri);
        const edit: SavepointEdit = { maxKeyGroups: n, operators: [] };
        for (const op of sp.metadata.operators)
          edit.operators!.push({ uid: op.uid, entries: await rescaleEntries(sp.entries(op.uid), n) });
        await finish(o, 'rescale', sp, edit, `${sp.metadata.maxKeyGroups} -> ${n} key groups`);
      }),
  );

  cmd.addCommand(
    withOut(verb('rekey', "re-key an operator's state with an expression"))
      .option('--operator <uid>', 'the operator (required)')
      .requiredOption(
        '--key-expr <expr>',
        'the new key: a JS expression over r (the line), key (the old key), ts',
      )
      .action(async (uri: string, o: Out & { operator?: string; keyExpr: string }) => {
        await checkNewOutput(o.output, 'rekey');
        const sp = await openSavepoint(uri);
        const op = operatorOf(sp, o.operator);
        const entries = await rekeyEntries(
          sp.entries(op.uid),
          entryExpr(o.keyExpr, '--key-expr'),
          op.states,
          sp.metadata.maxKeyGroups,
          op.uid,
        );
        const states = op.states.map(
          (s): StateDescriptor => ({
            ...s,
            schema:
              s.schema !== null && typeof s.schema === 'object' && !Array.isArray(s.schema)
                ? {
                    ...s.schema,
                    rekeyed: [...(Array.isArray(s.schema.rekeyed) ? s.schema.rekeyed : []), o.keyExpr],
                  }
                : s.schema,
          }),
        );
        await finish(o, 'rekey', sp, withEntries(sp, op.uid, { states, entries }), `re-keyed '${op.uid}'`);
      }),
  );

  cmd.addCommand(
    verb('diff', 'entries added, removed and changed per operator; exit 0 when equal, 1 when different')
      .argument('<other>', 'the savepoint to compare with')
      .option('--json', 'print the differences as one JSON object')
      .option('--limit <n>', 'entries listed per kind of difference and operator', '5')
      .action(async (a: string, b: string, o: { json?: boolean; limit: string }) => {
        if (!/^\d+$/.test(o.limit)) throw new UsageError(`--limit: expected an integer, got '${o.limit}'`);
        const d = await diffSavepoints(await openSavepoint(a), await openSavepoint(b), Number(o.limit));
        process.stdout.write(o.json ? `${JSON.stringify(d)}\n` : formatDiff(d));
        if (!d.equal) process.exitCode = 1;
      }),
  );

  cmd.addCommand(
    verb('validate', 'checksums, files, key groups; exit 0, or 3 naming each problem').action(
      async (uri: string, o: Out) => {
        const problems = await validateSavepoint(uri);
        if (problems.length > 0)
          throw new DataError(
            `savepoint ${uri}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`,
          );
        say(o, `validate: ${uri} is sound`);
      },
    ),
  );
  // No verb, or one that is not a verb: a usage error (exit 2), not the help text with exit 0.
  cmd
    .argument('[verb]')
    .allowExcessArguments(true)
    .action((v: string | undefined, _o: unknown, self: Command) => {
      if (v === 'help') {
        const sub = cmd.commands.find((c) => c.name() === self.args[1]);
        (sub ?? cmd).outputHelp();
        return;
      }
      throw new UsageError(
        v === undefined ? 'state-edit: give a VERB' : `state-edit: '${v}' is not a verb`,
        `verbs: ${cmd.commands.map((c) => c.name()).join(', ')}; run 'kappa state-edit --help'`,
      );
    });
  return cmd;
}
