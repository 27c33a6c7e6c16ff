/**
 * JSON text to JS values without silently rounding big integers (issue 8 "no silent wrong answers",
 * issue 14 int64 rule): an integer literal whose magnitude exceeds 2^53 − 1 (a tweet or snowflake
 * id, a Kafka-produced long) becomes its exact decimal string, the form kappa-stream(5) gives an
 * int64 beyond 2^53 (as the Parquet reader and the CSV reader do). Other numbers, non-integer
 * literals included (`0.1`, `1.5e300`, `1e20`), are the JS numbers `JSON.parse` gives.
 *
 * The hot path stays `JSON.parse`: only a text whose parsed value holds an integer number of
 * magnitude ≥ 2^53 (JSON.parse has rounded 9007199254740993 to 2^53; a float such as 1.5e300 is
 * one too) is parsed again, by `lossless-json` (pinned 4.3.3), whose number parser sees each
 * literal's text. (A test of the raw text for 16-digit runs instead costs three times the walk.)
 * Duplicate keys keep the last value, as `JSON.parse` does.
 */
import { createRequire } from 'node:module';

type LosslessJson = typeof import('lossless-json');
let losslessJson: LosslessJson | undefined;

/**
 * The lossless-json package, required on first use (its UMD build, one file, through the
 * package's `require` export; the same version as its ES modules): only a text holding an integer
 * beyond 2^53 needs it, so a stage does not load its 10 ES modules at start-up (~6 ms of CPU).
 */
export function lossless(): LosslessJson {
  losslessJson ??= createRequire(import.meta.url)('lossless-json') as LosslessJson;
  return losslessJson;
}

/** 2^53: the smallest magnitude at which JSON.parse may have rounded an integer literal. */
const TWO_53 = 2 ** 53;

/** Counts integer literals kept as decimal strings (added to by the parse functions). */
export interface BigIntegerCount {
  n: number;
}

/** True when `v` is an integer number of magnitude ≥ 2^53 (one JSON.parse may have rounded). */
function unsafeInteger(v: number): boolean {
  return (v >= TWO_53 || v <= -TWO_53) && Number.isInteger(v);
}

/**
 * True when `v` (a parsed JSON value) holds, at any depth, an integer number of magnitude ≥ 2^53,
 * i.e. one that `JSON.parse` may have rounded. Iterative (an explicit stack): any depth JSON.parse
 * accepts is fine. About 35 ns per flat 5-field object (a tenth of its JSON.parse).
 */
export function hasUnsafeInteger(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return typeof v === 'number' && unsafeInteger(v);
  let stack: object[] | undefined;
  let cur: object | undefined = v;
  while (cur !== undefined) {
    if (Array.isArray(cur)) {
      for (const e of cur as unknown[])
        if (typeof e === 'number') {
          if (unsafeInteger(e)) return true;
        } else if (typeof e === 'object' && e !== null) {
          if (stack === undefined) stack = [];
          stack.push(e);
        }
    } else {
      const o = cur as Record<string, unknown>;
      for (const k in o) {
        const e = o[k];
        if (typeof e === 'number') {
          if (unsafeInteger(e)) return true;
        } else if (typeof e === 'object' && e !== null) {
          if (stack === undefined) stack = [];
          stack.push(e);
        }
      }
    }
    cur = stack?.pop();
  }
  return false;
}

/**
 * Parses `text` with lossless-json: integer literals beyond ±(2^53 − 1) become decimal strings
 * (counted in `count`), every other number is `Number(literal)`; a duplicate key keeps its last
 * value (as JSON.parse).
 * @throws SyntaxError when `text` is not valid JSON
 */
export function parseJsonLossless(text: string, count?: BigIntegerCount): unknown {
  const { isInteger, parse: losslessParse } = lossless();
  return losslessParse(text, null, {
    parseNumber: (s: string) => {
      const n = Number(s);
      if (Number.isSafeInteger(n) || !isInteger(s)) return n;
      if (count) count.n++;
      return s;
    },
    onDuplicateKey: ({ newValue }) => newValue,
  });
}

/**
 * `JSON.parse(text)`, except that integer literals beyond ±(2^53 − 1), at any depth, come back as
 * their exact decimal strings (e.g. `{"id":9007199254740993}` gives `{id:"9007199254740993"}`).
 * Costs one walk of the parsed value (`hasUnsafeInteger`) beyond JSON.parse, unless it holds one.
 * @param count incremented by the number of integers kept as strings
 * @throws SyntaxError when `text` is not valid JSON (JSON.parse's message)
 */
export function parseJsonExact(text: string, count?: BigIntegerCount): unknown {
  const v: unknown = JSON.parse(text);
  return hasUnsafeInteger(v) ? parseJsonLossless(text, count) : v;
}
