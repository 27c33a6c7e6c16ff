/**
 * User expressions (`--filter 'r.delay > 60'`, `--map '({...r, late: r.delay > 15})'`).
 *
 * An expression is a JavaScript expression evaluated per record with these names in scope:
 * `r` (the record's value, i.e. its fields), `key` (record key, string or null), `ts` (event time,
 * epoch ms), `rec` (the whole record `{ts, key, value, …}`), and every named function exported by
 * the `--module FILE`s. It is compiled ONCE per run with `new Function` (so V8 optimises it like any
 * other function), in strict mode. Expressions are trusted code: they run with the user's rights,
 * exactly like the shell command that contains them.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import type { Rec } from '../stream/protocol.js';

/** A compiled expression: `(r, key, ts, rec) => result`. May throw (the record is then bad). */
export type CompiledExpr = (r: unknown, key: string | null | undefined, ts: number, rec: Rec) => unknown;

/** Named functions available to expressions (from `--module` files). */
export type ExprScope = Record<string, (...args: never[]) => unknown>;

const IDENT = /^[A-Za-z_$][\w$]*$/;
const RESERVED = new Set(['r', 'key', 'ts', 'rec']);

/**
 * Compiles an expression once.
 * @param flag the flag it came from, for error messages (e.g. `--filter`)
 * @throws UsageError when the text is not a valid JavaScript expression
 */
export function compileExpr(src: string, scope: ExprScope = {}, flag = 'expression'): CompiledExpr {
  const names = Object.keys(scope).filter((n) => IDENT.test(n) && !RESERVED.has(n));
  let factory: (...fns: unknown[]) => CompiledExpr;
  try {
    // The expression is wrapped in parentheses so that a statement (`a; b`) is rejected and an
    // object literal `{a: 1}` needs no extra parentheses.
    factory = new Function(
      ...names,
      `"use strict";\nreturn function kappaExpr(r, key, ts, rec) {\nreturn (${src}\n);\n};`,
    ) as (...fns: unknown[]) => CompiledExpr;
  } catch (e) {
    throw new UsageError(
      `${flag} '${src}': not a valid JavaScript expression: ${(e as Error).message}`,
      "write one expression over r (the value's fields), key and ts, e.g. --filter 'r.delay > 60'",
    );
  }
  return factory(...names.map((n) => scope[n]));
}

/**
 * Loads named functions from JavaScript modules (ES modules or CommonJS; `.js`, `.mjs`, `.cjs`).
 * Later modules win on name clashes.
 * @throws UsageError when a module cannot be loaded
 */
export async function loadModules(files: string[]): Promise<ExprScope> {
  const scope: ExprScope = {};
  for (const f of files) {
    const abs = isAbsolute(f) ? f : resolve(process.cwd(), f);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`--module ${f}: cannot load: ${(e as Error).message}`);
    }
    const def = mod.default;
    const sources = [mod, def !== null && typeof def === 'object' ? (def as Record<string, unknown>) : {}];
    for (const src of sources)
      for (const [name, v] of Object.entries(src))
        if (typeof v === 'function' && name !== 'default') scope[name] = v as ExprScope[string];
  }
  return scope;
}
