/**
 * User expressions (`--filter 'r.delay > 60'`, `--map '({...r, late: r.delay > 15})'`).
 *
 * An expression is a JavaScript expression evaluated per record with these names in scope:
 * `r` (the record's value, i.e. its fields), `key` (record key, string or null), `ts` (event time,
 * epoch ms), `rec` (the whole record `{ts, key, value, …}`), every named function exported by the
 * `--module FILE`s, and the standard built-ins of ECMAScript (Math, JSON, Date, Number, String,
 * Array, Object, RegExp, Map, Set, parseInt, …). Nothing of the host is in scope: no `process`,
 * `require`, `import()`, `console`, timers, `fetch`, `Buffer`.
 *
 * How: each expression gets its own node:vm context (a null-prototype global object, code
 * generation from strings and WebAssembly disabled, so `constructor.constructor('…')()` and
 * `eval` throw). The expression is compiled ONCE, inside that context, into a function (V8 then
 * optimises it like any other function); per record, the record is deep-copied into the context's
 * realm and frozen (so no host object, and through it no host `Function`, is reachable, and
 * `r.delay = 5` throws instead of changing anything), then the function is called; an object
 * result is copied back (toHost). Cost, measured on this machine (2 shared cores, noisy) with 1M
 * five-field records: `transform --filter 'r.delay > 60'` 1.40 s CPU with `new Function` in the
 * host realm, 1.87 s in the context (best of 3); in-process, ~300 ns per record for the frozen
 * copy and ~50-100 ns for the call into the context. structuredClone instead of the copy cost
 * ~3.5 us per record.
 *
 * node:vm is NOT a security boundary (Node's documentation says so): this keeps an expression from
 * reaching the process by accident or by the well-known routes, but an expression is code and must
 * not come from untrusted input. `--module` functions are host code: they run with the user's
 * rights; what they return is copied into the context as data (objects, arrays, Dates, Maps, Sets;
 * functions are wrapped), and what they throw arrives as a plain Error.
 *
 * Errors: a syntax error is a UsageError at compile time. At run time, a ReferenceError (a name
 * that is not in scope, e.g. `process`), an attempt to change the record, or a returned Promise or
 * thenable is a UsageError (exit 2: the expression is wrong for every record); anything else the
 * expression throws becomes a plain Error with the expression's message (callers turn it into a
 * bad record). An object result is copied back into the host realm (see toHost).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createContext, Script } from 'node:vm';
import { UsageError } from '../errors.js';
import type { Rec } from '../stream/protocol.js';

/**
 * A compiled expression: `(r, key, ts, rec) => result`. May throw (see the module comment).
 * `fields`, when set, are the only fields of `r` the expression can read (`fieldsRead`): callers
 * may pass an object holding just those (a row built lazily from columns).
 */
export type CompiledExpr = ((r: unknown, key: string | null | undefined, ts: number, rec: Rec) => unknown) & {
  readonly fields?: readonly string[];
};

/** A standalone `r` token: not part of a longer name, not a property (`x.r`; `...r` is a spread). */
const R_TOKEN = /(?<![\w$\\]|(?<!\.)\.)r(?![\w$])/g;
/** `r.NAME` where `r` is the standalone token. */
const R_FIELD = /(?<![\w$\\]|(?<!\.)\.)r\.([A-Za-z_$][\w$]*)(?![\w$])/g;

/**
 * The top-level fields of `r` an expression can read, or undefined when it may see more: it names
 * `r` other than as `r.NAME` (`r[k]`, `{...r}`, `f(r)`, `r?.x`, a parameter named r), or `rec`,
 * `arguments`, a `\u` escape (which could spell `r`), or a NAME that `Object.prototype` has
 * (`r.hasOwnProperty(…)` inspects the whole object). Conservative by construction: strings,
 * comments and regular expressions are scanned as code, so an `r` inside them only turns the
 * optimisation off, and a `r.x` inside them only adds a field.
 * Per record, the expression then gets a frozen copy of only these fields (fields the value lacks
 * stay absent), which it cannot tell from the whole value: measured 3x cheaper to copy for
 * `r.delay > 60` over five-field flights.
 */
export function fieldsRead(src: string): string[] | undefined {
  if (/\\u|\brec\b|\barguments\b/.test(src)) return undefined;
  const fields = new Set<string>();
  let accesses = 0;
  for (const m of src.matchAll(R_FIELD)) {
    if (m[1] in Object.prototype) return undefined;
    fields.add(m[1]);
    accesses++;
  }
  // Every standalone `r` must be one of those accesses.
  return (src.match(R_TOKEN)?.length ?? 0) === accesses ? [...fields] : undefined;
}

/** Named functions available to expressions (from `--module` files). */
export type ExprScope = Record<string, (...args: never[]) => unknown>;

const IDENT = /^[A-Za-z_$][\w$]*$/;
const RESERVED = new Set(['r', 'key', 'ts', 'rec']);
/** What an expression sees besides its own names, for error messages. */
export const EXPR_SCOPE_TEXT =
  "r (the value's fields), key, ts (epoch ms), rec, the --module functions and JavaScript's standard built-ins (Math, JSON, Date, …); no process, require, import(), console or timers";

/** The context-side helpers, compiled once per context (plain JavaScript, runs in the context's realm). */
const PRELUDE = `(function () {
  'use strict';
  const isArray = Array.isArray, freeze = Object.freeze, defineProperty = Object.defineProperty;
  const toStr = Object.prototype.toString, getTime = Date.prototype.getTime, apply = Reflect.apply;
  const P = Promise, then = Promise.prototype.then, mapEach = Map.prototype.forEach, setEach = Set.prototype.forEach;
  delete globalThis.console;
  const PROMISE = freeze({});
  const noop = () => {};
  function hostError(e) {
    let m;
    try { m = e !== null && typeof e === 'object' && typeof e.message === 'string' ? e.message : String(e); }
    catch { m = 'a --module function threw'; }
    return new Error(m);
  }
  // Copies a JSON-like value of the host realm into this realm (frozen when frz).
  function copy(v, frz) {
    if (typeof v !== 'object' || v === null) return typeof v === 'function' ? wrap(v) : v;
    let o;
    if (isArray(v)) {
      const n = v.length;
      o = [];
      for (let i = 0; i < n; i++) o.push(copy(v[i], frz));
    } else {
      const tag = toStr.call(v);
      if (tag === '[object Date]') o = new Date(apply(getTime, v, []));
      else if (tag === '[object Map]') { o = new Map(); apply(mapEach, v, [(x, k) => o.set(copy(k, frz), copy(x, frz))]); }
      else if (tag === '[object Set]') { o = new Set(); apply(setEach, v, [(x) => o.add(copy(x, frz))]); }
      else if (tag === '[object Promise]') throw new Error('a --module function returned a Promise; expressions are synchronous');
      else {
        o = {};
        for (const k in v) {
          const x = copy(v[k], frz);
          if (k === '__proto__') defineProperty(o, k, { value: x, enumerable: true, writable: true, configurable: true });
          else o[k] = x;
        }
      }
    }
    return frz ? freeze(o) : o;
  }
  // A host function, callable from the context without exposing it.
  function wrap(f) {
    return function (...args) {
      let res;
      try { res = apply(f, undefined, args); } catch (e) { throw hostError(e); }
      return copy(res, false);
    };
  }
  const hasOwn = Object.prototype.hasOwnProperty;
  // A frozen copy of only the fields the expression reads (fieldsRead); other values whole.
  function pick(v, fields) {
    if (typeof v !== 'object' || v === null || isArray(v)) return copy(v, true);
    const o = {};
    for (let i = 0; i < fields.length; i++) {
      const k = fields[i];
      if (apply(hasOwn, v, [k])) o[k] = copy(v[k], true);
    }
    return freeze(o);
  }
  // Calls a compiled expression on a copy of the record; a Promise or thenable result becomes PROMISE.
  function bind(expr, usesRec, fields) {
    return function (r, key, ts, rec) {
      const v = fields === undefined ? copy(r, true) : pick(r, fields);
      let full;
      if (usesRec) {
        full = {};
        for (const k in rec) full[k] = k === 'value' ? v : copy(rec[k], true);
        freeze(full);
      }
      const res = expr(v, key, ts, full);
      if ((typeof res === 'object' && res !== null) || typeof res === 'function') {
        if (res instanceof P) { apply(then, res, [undefined, noop]); return PROMISE; }
        let t;
        try { t = res.then; } catch { t = undefined; }
        if (typeof t === 'function') return PROMISE;
      }
      return res;
    };
  }
  // Field names of fieldsRead, as an array of this realm.
  function strings(joined) { return freeze(joined.split('\\u0000')); }
  return { wrap, bind, strings, PROMISE };
})()`;

interface Prelude {
  wrap(f: unknown): unknown;
  bind(expr: unknown, usesRec: boolean, fields: readonly string[] | undefined): CompiledExpr;
  strings(joined: string): readonly string[];
  PROMISE: object;
}

/** Reads name and message of anything thrown in a context (its Errors are not host `Error`s). */
function describe(e: unknown): { name: string; message: string } {
  try {
    if (e !== null && typeof e === 'object') {
      const o = e as { name?: unknown; message?: unknown };
      return { name: String(o.name ?? 'Error'), message: String(o.message ?? '') };
    }
    return { name: 'Error', message: String(e) };
  } catch {
    return { name: 'Error', message: 'the expression threw' };
  }
}

const objToString = Object.prototype.toString;
const dateGetTime = Date.prototype.getTime;

/**
 * Copies an expression's result (an object of the context's realm) into the host realm, so that
 * downstream code sees ordinary objects (`instanceof Date`, prototypes, `deepStrictEqual`).
 * Arrays, Dates, Maps and Sets keep their kind, other objects become plain objects of their
 * enumerable properties, functions become undefined (JSON drops them too).
 * @throws RangeError on a cyclic or extremely deep result (the caller makes it a bad record)
 */
function toHost(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return typeof v === 'function' ? undefined : v;
  if (Array.isArray(v)) {
    const n = v.length;
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; i++) a[i] = toHost(v[i]);
    return a;
  }
  const tag = objToString.call(v);
  if (tag === '[object Date]') return new Date(dateGetTime.call(v));
  if (tag === '[object Map]') {
    const m = new Map<unknown, unknown>();
    for (const [k, x] of v as Map<unknown, unknown>) m.set(toHost(k), toHost(x));
    return m;
  }
  if (tag === '[object Set]') {
    const m = new Set<unknown>();
    for (const x of v as Set<unknown>) m.add(toHost(x));
    return m;
  }
  const o: Record<string, unknown> = {};
  const src = v as Record<string, unknown>;
  for (const k in src) {
    const x = toHost(src[k]);
    if (k === '__proto__')
      Object.defineProperty(o, k, { value: x, enumerable: true, writable: true, configurable: true });
    else o[k] = x;
  }
  return o;
}

const CHANGE =
  /^Cannot (assign to read only property|add property|delete property|define property|redefine property)|object is not extensible/;

/**
 * Compiles an expression once, in a fresh vm context (see the module comment for what it sees).
 * @param src the expression text
 * @param scope named host functions put in scope (from `--module` files)
 * @param flag the flag it came from, for error messages (e.g. `--filter`)
 * @returns a function of `(r, key, ts, rec)`; it throws UsageError when the expression names
 *   something not in scope, tries to change the record, or returns a Promise/thenable, and a plain
 *   Error carrying the expression's message for anything else it throws
 * @throws UsageError when the text is not a valid JavaScript expression
 */
export function compileExpr(src: string, scope: ExprScope = {}, flag = 'expression'): CompiledExpr {
  const names = Object.keys(scope).filter((n) => IDENT.test(n) && !RESERVED.has(n));
  const ctx = createContext(Object.create(null), {
    name: `kappa ${flag}`,
    codeGeneration: { strings: false, wasm: false },
  });
  const prelude = new Script(PRELUDE, { filename: 'kappa-expr-prelude.js' }).runInContext(ctx) as Prelude;
  let factory: (...fns: unknown[]) => unknown;
  try {
    // The expression is wrapped in parentheses so that a statement (`a; b`) is rejected and an
    // object literal `{a: 1}` needs no extra parentheses.
    factory = new Script(
      `(function (${names.join(', ')}) {\n"use strict";\nreturn function kappaExpr(r, key, ts, rec) {\nreturn (${src}\n);\n};\n})`,
      { filename: `${flag} expression` },
    ).runInContext(ctx) as (...fns: unknown[]) => unknown;
  } catch (e) {
    throw new UsageError(
      `${flag} '${src}': not a valid JavaScript expression: ${describe(e).message}`,
      "write one expression over r (the value's fields), key and ts, e.g. --filter 'r.delay > 60'",
    );
  }
  const fields = fieldsRead(src);
  const inner = prelude.bind(
    factory(...names.map((n) => prelude.wrap(scope[n]))),
    /\brec\b/.test(src),
    fields === undefined ? undefined : copyIntoContext(prelude, fields),
  );
  const PROMISE = prelude.PROMISE;
  const run = (r: unknown, key: string | null | undefined, ts: number, rec: Rec): unknown => {
    let res: unknown;
    try {
      res = inner(r, key, ts, rec);
    } catch (e) {
      const { name, message } = describe(e);
      if (name === 'ReferenceError')
        throw new UsageError(`${flag} '${src}': ${message}`, `an expression sees only ${EXPR_SCOPE_TEXT}`);
      if (name === 'TypeError' && CHANGE.test(message))
        throw new UsageError(
          `${flag} '${src}' tried to change the record (${message})`,
          "expressions cannot modify r or rec: build a new value with --map '({...r, delay: 5})', and compare with === rather than =",
        );
      throw new Error(message);
    }
    if (res === PROMISE)
      throw new UsageError(
        `${flag} '${src}' returned a Promise (or thenable)`,
        'expressions are synchronous: no async functions, await or import()',
      );
    if (typeof res !== 'object' || res === null) return res;
    try {
      return toHost(res);
    } catch (e) {
      throw new Error(`its result cannot be copied out: ${describe(e).message}`);
    }
  };
  return fields === undefined ? run : Object.assign(run, { fields: Object.freeze(fields) });
}

/** The field names as an array of the context's realm (frozen), so the prelude reads no host array. */
function copyIntoContext(prelude: Prelude, fields: readonly string[]): readonly string[] {
  return prelude.strings(fields.join('\u0000'));
}

/**
 * Loads named functions from JavaScript modules (ES modules or CommonJS; `.js`, `.mjs`, `.cjs`).
 * Later modules win on name clashes. The functions run as host code (with the user's rights).
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
