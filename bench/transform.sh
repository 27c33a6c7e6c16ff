#!/usr/bin/env bash
# Benchmark: `kappa transform --filter … --select …` vs jq and mlr on the same 1M flight records.
# Usage: bench/transform.sh [N]   (needs jq and mlr on PATH; N records, default 1000000)
# kappa reads its stream protocol (made once by `kappa ingest`); jq and mlr read the same records
# as plain NDJSON. Prints records/s for each.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
node --input-type=module -e "
import { DuckDBInstance } from '@duckdb/node-api';
const c = await (await DuckDBInstance.create()).connect();
await c.run(\"COPY (SELECT * FROM 'node_modules/vega-datasets/data/flights-3m.parquet' LIMIT $N) TO '$D/f.ndjson' (FORMAT json)\");
"
bin/kappa ingest "$D/f.ndjson" --ts-field date -q > "$D/f.kappa"
rate() { # name, seconds
  awk -v n="$N" -v s="$2" -v name="$1" 'BEGIN { printf "%-8s %6.2f s  %9.0f records/s\n", name, s, n / s }'
}
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
rate kappa "$(t bash -c "bin/kappa transform -q --filter 'r.delay > 60' --select origin,delay < '$D/f.kappa'")"
rate jq "$(t jq -c 'select(.delay > 60) | {origin, delay}' "$D/f.ndjson")"
if command -v mlr > /dev/null; then
  rate mlr "$(t mlr --ijson --ojsonl filter '$delay > 60' then cut -o -f origin,delay "$D/f.ndjson")"
fi
