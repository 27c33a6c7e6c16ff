// Last stage of the savepoint scenario (bench/scenarios.ts scenarioSavepoint): reads its stdin to
// the end (the pipeline's output, discarded), then prints how long the newest savepoint under
// DIR/savepoints took, from its files' modification times: `take_ms` from the source's barrier
// part (`_parts/_barrier.json`, written just before the barrier is emitted) to `_metadata.json`
// (written by the last stage after every stage's state was written: the savepoint is complete),
// and `state_mib`, the size of its files.
// Usage: … | node savepoint-timing.mjs DIR
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

process.stdin.resume();
process.stdin.on('end', () => {
  const root = join(process.argv[2], 'savepoints');
  const sp = readdirSync(root).sort().pop();
  if (!sp) throw new Error(`no savepoint in ${root}`);
  const dir = join(root, sp);
  const t = (p) => statSync(join(dir, p)).mtimeMs;
  let bytes = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(join(d, e.name));
      else bytes += statSync(join(d, e.name)).size;
  };
  walk(dir);
  console.log(`take_ms ${Math.round(t('_metadata.json') - t('_parts/_barrier.json'))}`);
  console.log(`state_mib ${(bytes / 1048576).toFixed(1)}`);
});
