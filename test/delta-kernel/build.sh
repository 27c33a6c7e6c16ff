#!/usr/bin/env bash
# Builds the independent Delta reader used by the tests (test/delta.ts): compiles
# src/main/java/kappa/test/DeltaRead.java against Delta Kernel for Java and copies its runtime
# dependencies (Kernel, Hadoop client, Parquet, Jackson) from Maven Central into target/lib.
# Output: test/delta-kernel/target/{classes,lib} (gitignored). Run it as
#   java -cp 'test/delta-kernel/target/classes:test/delta-kernel/target/lib/*' kappa.test.DeltaRead DIR
# Idempotent: does nothing when target/.complete records the sha256 of the current pom.xml and
# sources; Maven's local repository (~/.m2) caches the downloads across clones.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="$here/target"
stamp="$(cat "$here/pom.xml" "$here"/src/main/java/kappa/test/*.java | sha256sum | cut -d' ' -f1)"
if [ -f "$target/.complete" ] && [ "$(cat "$target/.complete")" = "$stamp" ]; then exit 0; fi
command -v mvn >/dev/null || { echo "delta-kernel: mvn (Apache Maven) not found; install Maven and a JDK 17" >&2; exit 1; }
echo "delta-kernel: building the Delta Kernel reader (Maven Central; first time only)" >&2
start=$SECONDS
rm -rf "$target"
mvn -B -q -ntp -f "$here/pom.xml" compile dependency:copy-dependencies
echo "$stamp" >"$target/.complete"
echo "delta-kernel: built in $((SECONDS - start)) s" >&2
