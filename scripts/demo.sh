#!/usr/bin/env bash
# The main job on bundled real data (3M US flights, 2001-01..06, from the vega-datasets package):
# average and worst departure delay per origin airport per hour, as a dt=-partitioned Parquet table.
# Installs and builds first when needed. No Kafka or S3: local files are the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npx --no-install tsc -p tsconfig.json
OUT=${1:-out/delay_by_origin_hourly}
FLIGHTS=node_modules/vega-datasets/data/flights-3m.parquet
rm -rf "$OUT"
echo "kappa demo: $FLIGHTS -> $OUT" >&2
bin/kappa ingest "$FLIGHTS" --ts-field date \
  | bin/kappa transform --filter 'r.delay > 0' --select date,origin,delay \
  | bin/kappa window --key origin --tumbling 1h --agg 'count, avg(delay) as avg_delay, max(delay) as max_delay' \
  | bin/kappa sink "$OUT" --partition-by 'dt=%Y-%m-%d'
echo >&2
echo "kappa demo: done. Hourly delay per origin airport is in $OUT/ (Parquet, one dt= folder per day, Delta log in $OUT/_delta_log)." >&2
echo "kappa demo: the five worst hours:" >&2
bin/kappa ingest "$OUT" --ts-field window_end -q | bin/kappa sink - -q \
  | node -e 'const rows=require("fs").readFileSync(0,"utf8").trim().split("\n").map(JSON.parse);rows.sort((a,b)=>b.max_delay-a.max_delay);for(const r of rows.slice(0,5))console.log(`  ${r.origin}  ${new Date(r.window_start).toISOString().slice(0,16)}Z  flights=${r.count}  avg=${r.avg_delay.toFixed(1)} min  max=${r.max_delay} min`)' >&2
