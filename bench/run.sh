#!/usr/bin/env bash
# `npm run bench`: installs the peers (only what is missing), builds kappa and the harness, then runs
# the scenarios and writes bench/RESULTS.md. See bench/README.md.
#   BENCH_SCENARIOS=1,3   which scenarios (1-8; default all)
#   BENCH_SIZE=small      quick smoke test sizes (default full: the issue's sizes)
#   BENCH_RUNS=3          timed runs per tool (after one warm-up)
#   BENCH_TIMEOUT=600     seconds before a run is killed
#   BENCH_TOOLS=regex     peers to run (kappa always runs); peers it excludes are not installed either
#   BENCH_PYTHON=PATH     a Python that has polars and pyarrow (default: the virtualenv made here)
#   BENCH_KAPPA=PATH      the kappa launcher to measure (default bin/kappa of this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
scenarios=",${BENCH_SCENARIOS:-1,2,3,4,5,6,7,8},"
want() { [[ "$scenarios" == *",$1,"* ]]; }
# a peer is wanted unless BENCH_TOOLS (the harness's filter of peer names) excludes it
tool() { [ -z "${BENCH_TOOLS:-}" ] || [[ "$1" =~ ${BENCH_TOOLS} ]]; }

# peers from Debian: jq, miller, kcat, GNU time (apt-get update once, only if something is missing)
missing=()
if want 1 && tool jq; then command -v jq > /dev/null || missing+=(jq); fi
if { want 1 || want 3; } && tool mlr; then command -v mlr > /dev/null || missing+=(miller); fi
if want 5 && tool kcat; then command -v kcat > /dev/null || missing+=(kcat); fi
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" > /dev/null
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npx --no-install tsc -p tsconfig.json

# Polars (scenarios 2, 3, 4, 6, 7): pinned wheels from the machine's configured Python package index, into a
# virtualenv under bench/data/ (gitignored), once; the harness runs it as $BENCH_PYTHON. DuckDB's
# Python package comes along for ad-hoc checks from Python (the harness uses @duckdb/node-api).
POLARS_PINS=(polars==1.44.2 pyarrow==25.0.1 duckdb==1.5.6)
if { want 2 || want 3 || want 4 || want 6 || want 7; } && tool polars && [ -z "${BENCH_PYTHON:-}" ]; then
  py=bench/data/py/bin/python
  if ! "$py" -c 'import polars, pyarrow' 2> /dev/null; then
    echo "bench: installing ${POLARS_PINS[*]} into bench/data/py" >&2
    mkdir -p bench/data
    [ -x "$py" ] || python3 -m venv bench/data/py
    # only the configured local indexes answer here: pip's retries of the default one are noise
    bench/data/py/bin/pip install -q --retries 0 "${POLARS_PINS[@]}" 2>&1 |
      grep -v -e 'Retrying' -e 'NewConnectionError' -e 'is ignored' >&2 || true
    "$py" -c 'import polars, pyarrow' || echo "bench: polars unavailable; its runs are reported as skipped" >&2
  fi
  export BENCH_PYTHON="$PWD/$py"
fi

# Java peers from Maven Central (cached in ~/.m2): the Flink job (scenarios 3, 6), Kafka (scenario 5)
if { want 3 || want 6; } && tool flink; then bench/flink/run.sh --build; fi
if want 5; then bench/kafka/fetch.sh > /dev/null; fi

node --max-old-space-size=8192 dist/bench/harness.js
# the repository's formatter aligns the tables (and keeps `npm test`'s format check green)
npx --no-install biome format --write bench/RESULTS.md > /dev/null
