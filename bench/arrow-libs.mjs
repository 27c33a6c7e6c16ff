// Compares apache-arrow and @uwdata/flechette on what kappa's binary stream does (issue 14 step 1):
// build a batch from JS columns (Float64Array ts, dictionary strings, int64/float64 with nulls,
// JSON text), IPC-encode, IPC-decode, read columns back as typed arrays, materialise rows.
// Needs both libraries: `npm i --no-save apache-arrow@21.2.0` (kappa depends on flechette only).
// Usage: node bench/arrow-libs.mjs [ROWS=1000000] [BATCH=65536]. Median of 5 after a warm-up.

import * as F from '@uwdata/flechette';
import * as A from 'apache-arrow';

const N = Number(process.argv[2] ?? 1_000_000);
const B = Number(process.argv[3] ?? 65_536);
const ORIG = ['LAS', 'ATL', 'MCI', 'ORD', 'SFO', 'JFK', 'DEN', 'SEA'];
function cols(n, off) {
  const ts = new Float64Array(n);
  const codes = new Int32Array(n);
  const delay = new BigInt64Array(n);
  const dvalid = new Uint8Array(Math.ceil(n / 8)).fill(255);
  const dist = new Float64Array(n);
  const json = new Array(n);
  for (let i = 0; i < n; i++) {
    const k = off + i;
    ts[i] = 978307260000 + k * 1000;
    codes[i] = k % ORIG.length;
    delay[i] = BigInt((k % 200) - 20);
    if (k % 17 === 0) dvalid[i >> 3] &= ~(1 << (i & 7));
    dist[i] = (k * 7) % 3000;
    json[i] = k % 5 === 0 ? null : `{"a":${k}}`;
  }
  return { ts, codes, delay, dvalid, dist, json };
}
const chunks = [];
for (let off = 0; off < N; off += B) chunks.push(cols(Math.min(B, N - off), off));

function arrowEncode() {
  const dictType = new A.Dictionary(new A.Utf8(), new A.Int32());
  const dictData = A.makeData({ type: new A.Utf8(), ...utf8Data(ORIG) });
  let writer;
  for (const c of chunks) {
    const n = c.ts.length;
    const ts = A.makeData({ type: new A.Float64(), length: n, data: c.ts });
    const origin = A.makeData({
      type: dictType,
      length: n,
      data: c.codes,
      dictionary: A.makeVector(dictData),
    });
    const delay = A.makeData({ type: new A.Int64(), length: n, data: c.delay, nullBitmap: c.dvalid });
    const dist = A.makeData({ type: new A.Float64(), length: n, data: c.dist });
    const json = A.vectorFromArray(c.json, new A.Utf8()).data[0];
    const fields = [
      new A.Field('ts', ts.type, false),
      new A.Field('origin', dictType, true),
      new A.Field('delay', delay.type, true),
      new A.Field('distance', dist.type, true),
      new A.Field('j', json.type, true),
    ];
    const schema = new A.Schema(fields);
    const data = A.makeData({
      type: new A.Struct(fields),
      length: n,
      children: [ts, origin, delay, dist, json],
    });
    const rb = new A.RecordBatch(schema, data);
    writer ??= new A.RecordBatchStreamWriter();
    writer.write(rb);
  }
  writer.finish();
  return writer.toUint8Array(true);
}
function utf8Data(strs) {
  const enc = Buffer.from(strs.join(''));
  const offsets = new Int32Array(strs.length + 1);
  let o = 0;
  strs.forEach((s, i) => {
    o += Buffer.byteLength(s);
    offsets[i + 1] = o;
  });
  return { length: strs.length, valueOffsets: offsets, data: new Uint8Array(enc) };
}
function arrowDecode(buf) {
  const r = A.RecordBatchReader.from(buf);
  let sum = 0,
    cnt = 0;
  for (const b of r) {
    const ts = b.getChildAt(0).data[0].values;
    const oc = b.getChildAt(1).data[0].values;
    const dl = b.getChildAt(2).data[0].values;
    for (let i = 0; i < b.numRows; i++) {
      sum += ts[i] * 0 + oc[i] + Number(dl[i]);
      cnt++;
    }
  }
  return sum + cnt;
}
function arrowRows(buf) {
  const r = A.RecordBatchReader.from(buf);
  let n = 0;
  for (const b of r) {
    const c = [0, 1, 2, 3, 4].map((k) => b.getChildAt(k));
    const ts = c[0].data[0].values,
      oc = c[1].data[0].values,
      dict = c[1].data[0].dictionary.toArray();
    const dl = c[2].data[0].values,
      dn = c[2].data[0].nullBitmap,
      ds = c[3].data[0].values;
    const jv = c[4];
    for (let i = 0; i < b.numRows; i++) {
      const o = {
        origin: dict[oc[i]],
        delay: (dn[i >> 3] >> (i & 7)) & 1 ? Number(dl[i]) : null,
        distance: ds[i],
        j: jv.get(i),
        ts: ts[i],
      };
      n += o.distance > -1 ? 1 : 0;
    }
  }
  return n;
}
function flEncode() {
  const parts = [];
  for (const c of chunks) {
    const n = c.ts.length;
    const origin = new Array(n);
    for (let i = 0; i < n; i++) origin[i] = ORIG[c.codes[i]];
    const delay = new Array(n);
    for (let i = 0; i < n; i++) delay[i] = (c.dvalid[i >> 3] >> (i & 7)) & 1 ? Number(c.delay[i]) : null;
    const t = F.tableFromArrays(
      { ts: c.ts, origin, delay, distance: c.dist, j: c.json },
      { types: { origin: F.dictionary(F.utf8()), delay: F.int64(), j: F.utf8() } },
    );
    parts.push(F.tableToIPC(t, { format: 'stream' }));
  }
  return parts;
}
function flDecode(parts) {
  let sum = 0,
    cnt = 0;
  for (const p of parts) {
    const t = F.tableFromIPC(p, { useBigInt: false });
    const ts = t.getChild('ts').toArray();
    const oc = t.getChild('origin').data[0].values ?? [];
    const dl = t.getChild('delay').data[0].values;
    for (let i = 0; i < t.numRows; i++) {
      sum += ts[i] * 0 + oc[i] + Number(dl[i]);
      cnt++;
    }
  }
  return sum + cnt;
}
function flRows(parts) {
  let n = 0;
  for (const p of parts) {
    const t = F.tableFromIPC(p, { useBigInt: false });
    const ts = t.getChild('ts').toArray(),
      oc = t.getChild('origin'),
      dl = t.getChild('delay'),
      ds = t.getChild('distance').toArray(),
      jv = t.getChild('j');
    for (let i = 0; i < t.numRows; i++) {
      const o = { origin: oc.at(i), delay: dl.at(i), distance: ds[i], j: jv.at(i), ts: ts[i] };
      n += o.distance > -1 ? 1 : 0;
    }
  }
  return n;
}
function time(name, f) {
  const ms = [];
  let r;
  for (let k = 0; k < 6; k++) {
    const t0 = performance.now();
    r = f();
    if (k) ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const m = ms[2];
  console.log(
    `${name.padEnd(44)} ${m.toFixed(0).padStart(6)} ms ${((m * 1e6) / N).toFixed(0).padStart(5)} ns/row`,
  );
  return r;
}
const t0 = performance.now();
await import('apache-arrow');
const t1 = performance.now();
console.log(`apache-arrow import ${(t1 - t0).toFixed(0)} ms`);
const abuf = time('apache-arrow: build + IPC encode', arrowEncode);
console.log(`  bytes/row ${(abuf.length / N).toFixed(1)}`);
time('apache-arrow: IPC decode + typed arrays', () => arrowDecode(abuf));
time('apache-arrow: IPC decode + rows', () => arrowRows(abuf));
const fparts = time('flechette: build (from arrays) + IPC encode', flEncode);
console.log(`  bytes/row ${(fparts.reduce((s, p) => s + p.length, 0) / N).toFixed(1)}`);
time('flechette: IPC decode + typed arrays', () => flDecode(fparts));
time('flechette: IPC decode + rows (hand-built objects)', () => flRows(fparts));
time('cross: flechette decodes apache-arrow bytes', () => F.tableFromIPC(abuf).numRows);
