// Last stage of the checkpoint scenario (bench/scenarios.ts scenarioCheckpoint): reads its stdin to
// the end (the pipeline's output, discarded), then prints how many checkpoints with state the run
// under DIR took: `checkpoints N`, the newest checkpoint id (ids count up from 1 in a fresh
// directory), less the final one at the end of the input when it holds no operator state (the
// windows fired before it). 0 when DIR does not exist (the run without checkpoints).
// Usage: … | node checkpoint-count.mjs DIR
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

process.stdin.resume();
process.stdin.on('end', () => {
  const dir = process.argv[2];
  const ids = existsSync(dir)
    ? readdirSync(dir)
        .filter((d) => /^chk-\d+$/.test(d))
        .sort()
    : [];
  const newest = ids.at(-1);
  let n = 0;
  if (newest) {
    n = Number(newest.slice(4));
    const meta = JSON.parse(readFileSync(join(dir, newest, '_metadata.json'), 'utf8'));
    const files = (meta.operators ?? []).reduce((a, o) => a + (o.files?.length ?? 0), 0);
    if (files === 0) n--;
  }
  console.log(`checkpoints ${n}`);
});
