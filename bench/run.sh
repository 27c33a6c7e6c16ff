#!/usr/bin/env bash
# `npm run bench`: installs the peers (only what is missing), builds kappa and the harness, then runs
# the scenarios and writes bench/RESULTS.md. See bench/README.md.
#   BENCH_SCENARIOS=1,3   which scenarios (1-6; default all)
#   BENCH_SIZE=small      quick smoke test sizes (default full: the issue's sizes)
#   BENCH_RUNS=3          timed runs per tool (after one warm-up)
#   BENCH_TIMEOUT=600     seconds before a run is killed
#   BENCH_TOOLS=regex     peers to run (kappa always runs)
#   BENCH_KAPPA=PATH      the kappa launcher to measure (default bin/kappa of this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
scenarios=",${BENCH_SCENARIOS:-1,2,3,4,5,6},"
want() { [[ "$scenarios" == *",$1,"* ]]; }

# peers from Debian: jq, miller, kcat, GNU time (apt-get update once, only if something is missing)
missing=()
command -v jq > /dev/null || missing+=(jq)
command -v mlr > /dev/null || missing+=(miller)
command -v kcat > /dev/null || missing+=(kcat)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" > /dev/null
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npx --no-install tsc -p tsconfig.json

# Java peers from Maven Central (cached in ~/.m2): the Flink job (scenarios 3, 6), Kafka (scenario 5)
if want 3 || want 6; then bench/flink/run.sh --build; fi
if want 5; then bench/kafka/fetch.sh > /dev/null; fi

node --max-old-space-size=8192 dist/bench/harness.js
# the repository's formatter aligns the tables (and keeps `npm test`'s format check green)
npx --no-install biome format --write bench/RESULTS.md > /dev/null
