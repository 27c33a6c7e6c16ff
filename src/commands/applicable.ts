/**
 * "A flag that applies to nothing is an error, not ignored" (DESIGN.md §7, §8).
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

/** One part of a run that consumes options: a source kind, a sink target, a format. */
export interface OptionConsumer {
  /** How the error names it, e.g. `kafka://host:port/topic` or `files (x.ndjson)`. */
  name: string;
  /** Commander attribute names of the options it reads. */
  options: readonly string[];
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
 * Throws UsageError for the first option the user set that nothing consumes.
 *
 * @param cmd the command, after parsing
 * @param always options the command itself consumes whatever its arguments (e.g. `--quiet`)
 * @param chosen the components this run uses
 * @param others components this run does not use, to say where the option would apply
 * @throws UsageError naming the option, the chosen components and, if any, where it applies
 */
export function assertOptionsApply(
  cmd: Command,
  always: readonly string[],
  chosen: readonly OptionConsumer[],
  others: readonly OptionConsumer[] = [],
): void {
  const used = new Set<string>(always);
  for (const c of chosen) for (const o of c.options) used.add(o);
  for (const name of userSetOptions(cmd)) {
    if (used.has(name)) continue;
    const flag = flagName(cmd, name);
    const where = others.filter((c) => c.options.includes(name)).map((c) => c.name);
    const what = chosen.map((c) => c.name).join(', ') || 'nothing';
    throw new UsageError(
      `${flag} does not apply to ${what}`,
      where.length > 0 ? `${flag} applies to ${where.join(', ')} only` : `remove ${flag}`,
    );
  }
}
