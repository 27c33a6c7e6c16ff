#!/usr/bin/env bash
# Resolves the Kafka broker + perf tools from Maven Central (cached in ~/.m2) and writes
# bench/kafka/target/classpath.txt. Idempotent; works offline once fetched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cp="$here/target/classpath.txt"
if [ ! -s "$cp" ] || [ "$here/pom.xml" -nt "$cp" ]; then
  mkdir -p "$here/target"
  (cd "$here" && { mvn -q -B -o dependency:build-classpath -Dmdep.outputFile="$cp" >/dev/null 2>&1 ||
    mvn -q -B dependency:build-classpath -Dmdep.outputFile="$cp"; }) >&2
fi
echo "$cp"
