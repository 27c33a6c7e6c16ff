/**
 * `kappa state-edit validate`: every problem of a savepoint, not only the first: checksums and
 * sizes of the listed files, missing files, orphan files (in the directory, not listed), rows in a
 * key group other than their key's hash gives (src/state/keygroup.ts), rows outside their file's
 * key-group range or of an undeclared state, row counts against `_metadata.json`.
 */
import { createHash } from 'node:crypto';
import { PARTS_DIR } from '../../checkpoint/layout.js';
import { KappaError } from '../../errors.js';
import { joinUri, relativeUri, storeFor } from '../../storage/store.js';
import { keyGroupOf } from '../keygroup.js';
import { METADATA_FILE } from '../savepoint/format.js';
import { openSavepoint, readFileEntries } from '../savepoint/read.js';

/**
 * Checks the savepoint at `uri`.
 * @returns the problems found, each naming the file (and row, key or operator) concerned; empty when
 *   the savepoint is sound
 * @throws RuntimeError when the store cannot be read at all
 */
export async function validateSavepoint(uri: string): Promise<string[]> {
  const problems: string[] = [];
  let sp: Awaited<ReturnType<typeof openSavepoint>>;
  try {
    sp = await openSavepoint(uri, { verify: false });
  } catch (e) {
    if (e instanceof KappaError && e.exitCode === 3) return [e.message];
    throw e;
  }
  const m = sp.metadata;
  const store = storeFor(uri);
  const listed = new Set<string>([METADATA_FILE]);
  const uids = new Set<string>();
  for (const op of m.operators) {
    if (uids.has(op.uid)) problems.push(`operator '${op.uid}' is listed twice in ${METADATA_FILE}`);
    uids.add(op.uid);
    const states = new Set(op.states.map((s) => s.name));
    let total = 0;
    for (const f of op.files) {
      listed.add(f.path);
      const fileUri = joinUri(uri, f.path);
      const st = await store.stat(fileUri);
      if (!st) {
        problems.push(`file ${f.path} (operator '${op.uid}') is missing`);
        continue;
      }
      if (st.size !== f.bytes) {
        problems.push(`file ${f.path}: ${st.size} bytes, ${METADATA_FILE} says ${f.bytes}`);
        continue;
      }
      const h = createHash('sha256');
      for await (const chunk of store.readStream(fileUri)) h.update(chunk);
      const got = h.digest('hex');
      if (got !== f.sha256) {
        problems.push(`file ${f.path}: sha256 ${got} does not match ${f.sha256} in ${METADATA_FILE}`);
        continue;
      }
      let rows = 0;
      let wrong = 0;
      try {
        for await (const e of readFileEntries(store, uri, f)) {
          rows++;
          const g = keyGroupOf(e.key, m.maxKeyGroups);
          if (g !== e.keyGroup && wrong++ < 10)
            problems.push(
              `file ${f.path} row ${rows - 1}: key ${e.key} is in key group ${e.keyGroup}, its hash gives key group ${g} of ${m.maxKeyGroups}`,
            );
          if (!states.has(e.state) && wrong++ < 10)
            problems.push(
              `file ${f.path} row ${rows - 1}: state '${e.state}' is not a state of operator '${op.uid}'`,
            );
        }
      } catch (e) {
        if (!(e instanceof KappaError)) throw e;
        problems.push(e.message);
        continue;
      }
      if (wrong > 10) problems.push(`file ${f.path}: ${wrong - 10} more misplaced rows`);
      if (rows !== f.rows) problems.push(`file ${f.path}: ${rows} rows, ${METADATA_FILE} says ${f.rows}`);
      total += rows;
    }
    if (total !== op.entries && problems.length === 0)
      problems.push(`operator '${op.uid}': ${total} rows in its files, ${METADATA_FILE} says ${op.entries}`);
  }
  for await (const o of store.list(uri)) {
    const rel = relativeUri(uri, o.uri);
    // A checkpoint's `_parts/` holds what its stages wrote before `_metadata.json` assembled it
    // (src/checkpoint/snapshot.ts): part of the checkpoint protocol, not of the savepoint format.
    if (rel.startsWith(`${PARTS_DIR}/`)) continue;
    if (!listed.has(rel)) problems.push(`file ${rel} is not listed in ${METADATA_FILE} (an orphan file)`);
  }
  return problems;
}
