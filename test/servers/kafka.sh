#!/usr/bin/env bash
# One single-node KRaft Kafka broker (combined broker+controller) in a directory.
#   kafka.sh start DIR   start it (format storage on first start, free 127.0.0.1 ports); prints
#                        the bootstrap address host:port once it answers a Metadata request
#   kafka.sh stop DIR    stop it (TERM, then KILL after 15 s); data stays for a restart
#   kafka.sh kill DIR    kill -9 (tests of broker failure)
# A second `start` of the same DIR restarts the broker on the same ports with its data.
# Log: DIR/kafka.log. Used by up.sh and by the fault tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"
cmd=${1:?usage: kafka.sh start|stop|kill DIR}
dir=${2:?usage: kafka.sh start|stop|kill DIR}
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
log="$dir/kafka.log"
case "$cmd" in
start)
  [ -f "$KAFKA_LIBS/.complete" ] || "$here/fetch.sh"
  if [ ! -f "$dir/server.properties" ]; then
    mapfile -t ports < <(node "$here/ports.mjs" 2)
    kport=${ports[0]} cport=${ports[1]}
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$kport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$kport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# No time-based retention: test records carry event times years in the past (2001 flights,
# 2024 skew data) as their Kafka timestamps, and the default 7-day retention deleted them at the
# next retention check (30 s after start, then every 5 min): the log start offset jumped to the
# end and a later '--from earliest --until latest' read rightly found nothing (the flaky
# "zero records, exit 0" of acceptance 3, and acceptance 2 reading an emptied topic).
log.retention.ms=-1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
PROPS
    cluster_id="$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$log" | tail -1)"
    java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$dir/server.properties" >>"$log" 2>&1
  fi
  kport="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$dir/server.properties")"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >>"$log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "kafka.sh: broker exited during startup; log $log:" >&2
      tail -n 60 "$log" >&2
      exit 1
    fi
    if node "$here/ready.mjs" kafka "127.0.0.1:$kport" 2>/dev/null; then
      echo "127.0.0.1:$kport"
      exit 0
    fi
    sleep 0.5
  done
  echo "kafka.sh: broker not ready after 60 s; log $log:" >&2
  tail -n 60 "$log" >&2
  exit 1
  ;;
stop | kill)
  [ -f "$dir/pid" ] || exit 0
  pid="$(cat "$dir/pid")"
  if [ "$cmd" = kill ]; then
    kill -9 "$pid" 2>/dev/null || true
  elif kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$dir/pid"
  ;;
*)
  echo "usage: kafka.sh start|stop|kill DIR" >&2
  exit 2
  ;;
esac
