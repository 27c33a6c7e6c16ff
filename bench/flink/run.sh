#!/usr/bin/env bash
# Builds (once) and runs the Flink peer: bench/flink/run.sh INPUT.ndjson OUTPUT.ndjson [WindowJob options]
# `bench/flink/run.sh --build` only builds. The first build downloads Flink from Maven Central into ~/.m2;
# later builds work offline. JVM flags: the --add-opens Flink 1.20 needs on Java 17.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$here/target/classpath.txt" ] || [ "$here/src/main/java/kappa/bench/WindowJob.java" -nt "$here/target/classes/kappa/bench/WindowJob.class" ]; then
  (cd "$here" && { mvn -q -B -o package -DskipTests >/dev/null 2>&1 || mvn -q -B package -DskipTests; }) >&2
fi
[ "${1:-}" = --build ] && exit 0
opens=()
for p in java.lang java.net java.io java.nio sun.nio.ch java.lang.reflect java.text java.time java.util \
  java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks; do
  opens+=("--add-opens=java.base/$p=ALL-UNNAMED")
done
exec java ${FLINK_JAVA_OPTS:--Xmx4g} "${opens[@]}" -cp "$here/target/classes:$(cat "$here/target/classpath.txt")" \
  kappa.bench.WindowJob "$@"
