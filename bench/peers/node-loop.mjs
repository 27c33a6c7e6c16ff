// The floor a Node tool must beat (scenario 1): readline + JSON.parse + filter + project + JSON.stringify,
// writes buffered in ~64 KiB blocks with back-pressure. Usage:
//   node bench/peers/node-loop.mjs FILE FIELD THRESHOLD FIELD,FIELD,…   (keeps rows with FIELD > THRESHOLD)
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

const [file, field, threshold, select] = process.argv.slice(2);
if (!file || !field || threshold === undefined || !select) {
  process.stderr.write('usage: node-loop.mjs FILE FIELD THRESHOLD FIELD,FIELD,…\n');
  process.exit(2);
}
const limit = Number(threshold);
const fields = select.split(',');
const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
let buf = '';
for await (const line of rl) {
  if (line.length === 0) continue;
  const r = JSON.parse(line);
  if (!(r[field] > limit)) continue;
  const o = {};
  for (const f of fields) o[f] = r[f];
  buf += `${JSON.stringify(o)}\n`;
  if (buf.length > 65536) {
    if (!process.stdout.write(buf)) await new Promise((res) => process.stdout.once('drain', res));
    buf = '';
  }
}
process.stdout.write(buf);
