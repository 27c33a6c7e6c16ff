import fs from 'node:fs';
const W = process.env.W ?? '/work/wt/wincpu';
const { IpcFramer } = await import(W + '/dist/src/stream/arrow-input.js');
const { decodeBatch, headerOfSchema } = await import(W + '/dist/src/stream/arrow.js');
const { WindowOperator } = await import(W + '/dist/src/ops/window/operator.js');
const { parseAggs } = await import(W + '/dist/src/ops/window/aggregate.js');
const { compilePath } = await import(W + '/dist/src/ops/path.js');
const { ArrayCollector } = await import(W + '/dist/src/ops/operator.js');
const fr = new IpcFramer(); fr.push(fs.readFileSync(process.env.IN ?? '/tmp/wincpu/ing.bin'));
let schema, header; const dicts = new Map(); const events = [];
for (;;) { const f = fr.next(); if (!f) break; const m = f.message; if (!m) continue;
  if (m.kind===1) { schema = m.bytes.slice(); header = headerOfSchema(schema); } else if (m.kind===2) dicts.set(m.dictId, [m.bytes.slice()]);
  else { const d = decodeBatch(schema, [...dicts.values()].flat(), m.bytes); if (d.kind === 'records') { d.batch.column('delay').float64(); d.batch.column('origin').dictionary(); } events.push(d); } }
const P = WindowOperator.prototype; const T = {};
for (const k of ['scanTumbling', 'addColumns', 'fireFresh']) { const o = P[k]; T[k] = []; P[k] = function (...a) { const t0 = performance.now(); const r = o.apply(this, a); if (r instanceof Promise) return r.finally(() => { T[k][T[k].length - 1] += performance.now() - t0; }); T[k][T[k].length - 1] += performance.now() - t0; return r; }; }
const R = +(process.env.R ?? 7); const tot = [];
for (let r = 0; r < R; r++) {
  for (const k in T) T[k].push(0);
  const op = new WindowOperator({ window: { kind: 'tumbling', size: 3600000 }, key: { kind: 'field', path: 'origin', get: compilePath('origin') }, aggs: parseAggs('count, avg(delay), max(delay)') });
  await op.open({ kappa: 1, schema: header.schema });
  const out = new ArrayCollector(); const bs = []; out.batch = (b) => bs.push(b);
  const t0 = performance.now();
  for (const e of events) { if (e.kind === 'records') await op.batch(e.batch, out, () => { throw new Error('bad'); }); else if (e.kind === 'watermark') await op.watermark(e.watermark, out); }
  await op.end(out); await op.close(); tot.push(performance.now() - t0);
}
const min = (a) => Math.min(...a.slice(2)).toFixed(0);
console.log(W.slice(-6), 'total', min(tot), Object.entries(T).map(([k, v]) => `${k} ${min(v)}`).join(' '));
