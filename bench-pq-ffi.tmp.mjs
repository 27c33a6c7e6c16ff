import * as pw from 'parquet-wasm';
import { tableFromIPC } from '@uwdata/flechette';
import fs from 'node:fs';
const path = 'node_modules/vega-datasets/data/flights-3m.parquet';
const buf = fs.readFileSync(path);
const blob = { size: buf.length, slice: (a, b) => ({ arrayBuffer: async () => buf.buffer.slice(buf.byteOffset + a, buf.byteOffset + (b ?? buf.length)) }) };
const pf = await pw.ParquetFile.fromFile(blob);
const G = 11;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
async function run(mode) {
  let tRead = 0, tConv = 0;
  for (let g = 0; g < G; g++) {
    let c0 = cpu();
    const t = await pf.read({ rowGroups: [g], batchSize: 272727 });
    let c1 = cpu(); tRead += c1 - c0;
    if (mode === 'ipc') {
      const tab = tableFromIPC(t.intoIPCStream(), { useBigInt: true });
      for (const f of tab.schema.fields) tab.getChild(f.name).data[0].values;
    } else if (mode === 'ffi') {
      const ffi = t.intoFFI();
      const mem = pw.wasmMemory();
      const dv = new DataView(mem.buffer);
      const arr = ffi.arrayAddr(0);
      const nch = Number(dv.getBigInt64(arr + 32, true));
      const ch = dv.getUint32(arr + 44, true);
      let tot = 0;
      for (let c = 0; c < nch; c++) {
        const a = dv.getUint32(ch + 4 * c, true);
        const nb = Number(dv.getBigInt64(a + 24, true));
        const bufs = dv.getUint32(a + 40, true);
        const len = Number(dv.getBigInt64(a, true));
        for (let b = 0; b < nb; b++) {
          const p = dv.getUint32(bufs + 4 * b, true);
          // size unknown generically; copy len*8 as test
          if (p) tot += new Uint8Array(mem.buffer, p, Math.min(len * 4, mem.buffer.byteLength - p)).slice().length;
        }
      }
      ffi.free?.();
    }
    tConv += cpu() - c1;
    if (mode === "none") t.free();
  }
  return [tRead.toFixed(0), tConv.toFixed(0)];
}
for (let r = 0; r < 3; r++) for (const m of ['ipc', 'ffi', 'none']) console.log(m, ...(await run(m)));
