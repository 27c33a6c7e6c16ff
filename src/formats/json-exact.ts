/**
 * JSON text to JS values without silently rounding big integers (issue 8 "no silent wrong answers",
 * issue 14 int64 rule): an integer literal whose magnitude exceeds 2^53 − 1 (a tweet or snowflake
 * id, a Kafka-produced long) becomes its exact decimal string, the form kappa-stream(5) gives an
 * int64 beyond 2^53 (as the Parquet reader and the CSV reader do). Other numbers, non-integer
 * literals included (`0.1`, `1.5e300`, `1e20`), are the JS numbers `JSON.parse` gives.
 *
 * The hot path stays `JSON.parse`: a line is suspect only when its text holds a run of 16 or more
 * digits (every integer of 15 digits or fewer is exact), and only a suspect line whose parsed
 * value holds an integer number of magnitude ≥ 2^53 (JSON.parse has rounded 9007199254740993 to
 * 2^53) is parsed again, by `lossless-json` (pinned 4.3.3), whose number parser sees each literal's
 * text. Duplicate keys keep the last value, as `JSON.parse` does.
 */
import { isInteger, parse as losslessParse } from 'lossless-json';

/** A run of 16 digits: the text may hold an integer literal beyond ±(2^53 − 1). */
const DIGIT_RUN = /\d{16}/;
/** 2^53: the smallest magnitude at which JSON.parse may have rounded an integer literal. */
const TWO_53 = 2 ** 53;

/** Counts integer literals kept as decimal strings (added to by the parse functions). */
export interface BigIntegerCount {
  n: number;
}

/**
 * True when `text` may hold an integer literal beyond ±(2^53 − 1): it has a run of 16 digits (in
 * a number or in a string: callers then check the parsed value with `hasUnsafeInteger`).
 */
export function mayHoldBigInteger(text: string): boolean {
  return DIGIT_RUN.test(text);
}

/**
 * True when `v` (a parsed JSON value) holds, at any depth, an integer number of magnitude ≥ 2^53,
 * i.e. one that `JSON.parse` may have rounded.
 */
export function hasUnsafeInteger(v: unknown): boolean {
  if (typeof v === 'number') return (v >= TWO_53 || v <= -TWO_53) && Number.isInteger(v);
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (const e of v) if (hasUnsafeInteger(e)) return true;
    return false;
  }
  for (const k in v as Record<string, unknown>)
    if (hasUnsafeInteger((v as Record<string, unknown>)[k])) return true;
  return false;
}

/**
 * Parses `text` with lossless-json: integer literals beyond ±(2^53 − 1) become decimal strings
 * (counted in `count`), every other number is `Number(literal)`; a duplicate key keeps its last
 * value (as JSON.parse).
 * @throws SyntaxError when `text` is not valid JSON
 */
export function parseJsonLossless(text: string, count?: BigIntegerCount): unknown {
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
 * Costs one regular-expression test per call beyond JSON.parse unless the text holds 16-digit runs.
 * @param count incremented by the number of integers kept as strings
 * @throws SyntaxError when `text` is not valid JSON (JSON.parse's message)
 */
export function parseJsonExact(text: string, count?: BigIntegerCount): unknown {
  const v: unknown = JSON.parse(text);
  return mayHoldBigInteger(text) && hasUnsafeInteger(v) ? parseJsonLossless(text, count) : v;
}
