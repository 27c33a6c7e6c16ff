#!/usr/bin/env bash
# Fetches the Kafka broker (org.apache.kafka:kafka_2.13 and its runtime dependencies) and S3Proxy
# (org.gaul:s3proxy jar-with-dependencies) from Maven Central with Maven. Idempotent: does nothing
# when test/.servers/ already holds the requested versions. Maven's local repository (~/.m2) caches
# the downloads across clones.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
MVN=(mvn -B -q -ntp)
mkdir -p "$SERVERS_DIR"

if [ ! -f "$KAFKA_LIBS/.complete" ]; then
  echo "fetch: Kafka $KAFKA_VERSION (kafka_2.13 + runtime dependencies) from Maven Central" >&2
  pomdir="$SERVERS_DIR/pom-kafka-$KAFKA_VERSION"
  mkdir -p "$pomdir"
  cat >"$pomdir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kappa.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  # Kafka's artifacts depend on slf4j-api only; a binding makes the broker log to its log file.
  case "$KAFKA_VERSION" in 3.*) slf4j=1.7.36 ;; *) slf4j=2.0.17 ;; esac
  sed -i "s|</dependencies>|<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$slf4j</version></dependency></dependencies>|" "$pomdir/pom.xml"
  rm -rf "$KAFKA_LIBS"
  "${MVN[@]}" -f "$pomdir/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
fi

if [ ! -f "$S3PROXY_JAR" ]; then
  echo "fetch: S3Proxy $S3PROXY_VERSION (jar-with-dependencies) from Maven Central" >&2
  d="$(dirname "$S3PROXY_JAR")"
  mkdir -p "$d"
  "${MVN[@]}" dependency:copy \
    -Dartifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" \
    -DoutputDirectory="$d" -Dmdep.stripVersion=true -Dmdep.stripClassifier=true
  mv "$d/s3proxy.jar" "$S3PROXY_JAR" 2>/dev/null || true
  [ -f "$S3PROXY_JAR" ] || { ls -la "$d" >&2; echo "fetch: S3Proxy jar missing" >&2; exit 1; }
fi
