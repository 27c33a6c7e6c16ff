// Prints N free TCP ports on 127.0.0.1, one per line (asks the kernel for port 0, N times at once).
import { createServer } from 'node:net';

const n = Number(process.argv[2] ?? 1);
const servers = await Promise.all(
  Array.from(
    { length: n },
    () =>
      new Promise((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
  ),
);
for (const s of servers) console.log(s.address().port);
await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
