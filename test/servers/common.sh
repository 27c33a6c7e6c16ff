#!/usr/bin/env bash
# Shared settings for the test-server scripts (sourced, not run).
# KAFKA_VERSION selects the broker (default a pinned 3.9.x; e.g. KAFKA_VERSION=4.1.1 for a 4.x broker).
# S3PROXY_VERSION selects S3Proxy. Everything is fetched from Maven Central only, cached in ~/.m2 and
# copied into test/.servers/ (gitignored).
SERVERS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
S3PROXY_VERSION="${S3PROXY_VERSION:-4.1.0}"
SERVERS_DIR="$SERVERS_ROOT/test/.servers"
KAFKA_LIBS="$SERVERS_DIR/kafka-$KAFKA_VERSION/libs"
S3PROXY_JAR="$SERVERS_DIR/s3proxy-$S3PROXY_VERSION/s3proxy.jar"
RUN_DIR="$SERVERS_DIR/run"
LOG_DIR="$SERVERS_DIR/logs"
ENV_FILE="$SERVERS_DIR/env"
