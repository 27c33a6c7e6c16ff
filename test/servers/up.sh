#!/usr/bin/env bash
# Starts a single-node KRaft Kafka broker and S3Proxy on free 127.0.0.1 ports for the integration
# tests, waits until both answer a real request (Kafka Metadata, S3 ListBuckets), and writes their
# addresses to test/.servers/env (read by env.sh). Fetches the artifacts first if needed.
# Logs: test/.servers/logs/{kafka,s3proxy}.log (printed when a server does not come up).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"
"$here/fetch.sh"
"$here/down.sh" >/dev/null 2>&1 || true
mkdir -p "$RUN_DIR" "$LOG_DIR"
rm -f "$ENV_FILE"
sport="$(node "$here/ports.mjs" 1)"

# S3 credentials S3Proxy accepts (aws-v2-or-v4 signing) so tests can also check bad credentials.
S3_ID=kappa-test S3_SECRET=kappa-test-secret

# --- S3Proxy (filesystem backend under the run dir) ---
sdir="$RUN_DIR/s3proxy"
mkdir -p "$sdir/data"
cat >"$sdir/s3proxy.conf" <<PROPS
s3proxy.endpoint=http://127.0.0.1:$sport
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$S3_ID
s3proxy.credential=$S3_SECRET
jclouds.provider=filesystem
jclouds.filesystem.basedir=$sdir/data
jclouds.identity=$S3_ID
jclouds.credential=$S3_SECRET
PROPS
nohup java -Xmx512m -jar "$S3PROXY_JAR" --properties "$sdir/s3proxy.conf" \
  >"$LOG_DIR/s3proxy.log" 2>&1 </dev/null &
echo $! >"$RUN_DIR/s3proxy.pid"

wait_ready() { # name pidfile probe-args…
  local name=$1 pidfile=$2
  shift 2
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "up: $name exited during startup; log:" >&2
      tail -n 60 "$LOG_DIR/$name.log" >&2
      return 1
    fi
    if AWS_ACCESS_KEY_ID=$S3_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET node "$here/ready.mjs" "$@" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "up: $name not ready after 60s; log:" >&2
  tail -n 60 "$LOG_DIR/$name.log" >&2
  return 1
}
# --- Kafka (KRaft, single node) while S3Proxy starts ---
kaddr="$("$here/kafka.sh" start "$RUN_DIR/kafka")"
cp "$RUN_DIR/kafka/kafka.log" "$LOG_DIR/kafka.log" 2>/dev/null || true
wait_ready s3proxy "$RUN_DIR/s3proxy.pid" s3 "http://127.0.0.1:$sport"

cat >"$ENV_FILE" <<ENV
export KAPPA_TEST_KAFKA=$kaddr
export KAPPA_TEST_S3=http://127.0.0.1:$sport
export KAPPA_TEST_S3_ACCESS_KEY_ID=$S3_ID
export KAPPA_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET
export KAPPA_TEST_KAFKA_VERSION=$KAFKA_VERSION
export KAPPA_TEST_KAFKA_LIBS=$KAFKA_LIBS
ENV
echo "up: Kafka $KAFKA_VERSION on $kaddr, S3Proxy $S3PROXY_VERSION on http://127.0.0.1:$sport (logs: $LOG_DIR)" >&2
