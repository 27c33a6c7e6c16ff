/**
 * "A flag that applies to nothing is an error, not ignored" (docs/architecture.md, "Connectors").
 *
 * Every source kind, sink target and format declares the options it consumes (commander attribute
 * names, e.g. `maxDrift` for `--max-drift`). After a command has picked the components its
 * arguments need, it calls `assertOptionsApply`: an option the user set (on the command line or
 * through its environment variable; defaults do not count) that neither the command itself nor
 * any chosen component consumes is a usage error (exit 2) naming the option, what was chosen, and
 * where the option would apply.
 */
import type { Command, Option } from 'commander';
import { UsageError } from '../errors.js';

/** One part of a run that consumes options: a source kind or a sink target. */
export interface OptionConsumer {
  /** How the error names it, e.g. `kafka://host:port/topic`. */
  readonly name: string;
  /** Commander attribute names of the options it reads. */
  readonly options: readonly string[];
}

/**
 * Commander attribute names of the options the user set explicitly on `cmd`: on the command line
 * or through an environment variable bound with `Option.env()`. Options left at their default are
 * not included.
 */
export function userSetOptions(cmd: Command): string[] {
  const out: string[] = [];
  for (const o of cmd.options as readonly Option[]) {
    const name = o.attributeName();
    const src = cmd.getOptionValueSource(name);
    if ((src === 'cli' || src === 'env') && !out.includes(name)) out.push(name);
  }
  return out;
}

/** The flag as the user typed it: `--max-drift`, or `-X` for a short-only flag. */
export function flagName(cmd: Command, attribute: string): string {
  const o = (cmd.options as readonly Option[]).find((x) => x.attributeName() === attribute);
  return o?.long ?? o?.short ?? `--${attribute}`;
}

/**
 * Throws UsageError for the first option the user set that nothing in this run consumes. An
 * option that no component of `all` declares belongs to the command itself and always applies;
 * one that some component declares applies only when a component that declares it was chosen.
 *
 * @param cmd the command, after parsing
 * @param chosen the components this run uses (a subset of `all`)
 * @param all every component the command can use (connectors/index.ts)
 * @throws UsageError naming the option, the chosen components and where it would apply
 */
export function assertOptionsApply(
  cmd: Command,
  chosen: readonly OptionConsumer[],
  all: readonly OptionConsumer[],
): void {
  const declared = new Set<string>();
  for (const c of all) for (const o of c.options) declared.add(o);
  const used = new Set<string>();
  for (const c of chosen) for (const o of c.options) used.add(o);
  for (const name of userSetOptions(cmd)) {
    if (!declared.has(name) || used.has(name)) continue;
    const flag = flagName(cmd, name);
    const where = all.filter((c) => !chosen.includes(c) && c.options.includes(name)).map((c) => c.name);
    const what = chosen.map((c) => c.name).join(', ');
    throw new UsageError(`${flag} does not apply to ${what}`, `${flag} applies to ${where.join(', ')} only`);
  }
}

/**
 * Throws UsageError when the user set `option` but not `needs` (e.g. `--tz` without `--ts-field`).
 * @param why what `option` is for, for the message
 */
export function assertNeeds(cmd: Command, option: string, needs: string, why: string): void {
  const set = userSetOptions(cmd);
  if (set.includes(option) && cmd.getOptionValue(needs) === undefined)
    throw new UsageError(`${flagName(cmd, option)} applies only with ${flagName(cmd, needs)} (${why})`);
}
