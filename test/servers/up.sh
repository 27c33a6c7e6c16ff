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
mapfile -t ports < <(node "$here/ports.mjs" 3)
kport=${ports[0]} cport=${ports[1]} sport=${ports[2]}

# S3 credentials S3Proxy accepts (aws-v2-or-v4 signing) so tests can also check bad credentials.
S3_ID=kappa-test S3_SECRET=kappa-test-secret

# --- Kafka (KRaft, combined broker+controller) ---
kdir="$RUN_DIR/kafka"
mkdir -p "$kdir"
cat >"$kdir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$kport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$kport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$kdir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
PROPS
KCP="$KAFKA_LIBS/*"
JAVA_OPTS=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=info)
cluster_id="$(java -cp "$KCP" kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/kafka.log" | tail -1)"
java "${JAVA_OPTS[@]}" -cp "$KCP" kafka.tools.StorageTool format -t "$cluster_id" \
  -c "$kdir/server.properties" >"$LOG_DIR/kafka.log" 2>&1
nohup java "${JAVA_OPTS[@]}" -cp "$KCP" kafka.Kafka "$kdir/server.properties" \
  >>"$LOG_DIR/kafka.log" 2>&1 </dev/null &
echo $! >"$RUN_DIR/kafka.pid"

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
    if AWS_ACCESS_KEY_ID=$S3_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET node "$here/ready.mjs" "$@"; then return 0; fi
    sleep 0.5
  done
  echo "up: $name not ready after 60s; log:" >&2
  tail -n 60 "$LOG_DIR/$name.log" >&2
  return 1
}
wait_ready s3proxy "$RUN_DIR/s3proxy.pid" s3 "http://127.0.0.1:$sport"
wait_ready kafka "$RUN_DIR/kafka.pid" kafka "127.0.0.1:$kport"

cat >"$ENV_FILE" <<ENV
export KAPPA_TEST_KAFKA=127.0.0.1:$kport
export KAPPA_TEST_S3=http://127.0.0.1:$sport
export KAPPA_TEST_S3_ACCESS_KEY_ID=$S3_ID
export KAPPA_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET
export KAPPA_TEST_KAFKA_VERSION=$KAFKA_VERSION
ENV
echo "up: Kafka $KAFKA_VERSION on 127.0.0.1:$kport, S3Proxy $S3PROXY_VERSION on http://127.0.0.1:$sport (logs: $LOG_DIR)" >&2
