#!/usr/bin/env bash
# The benchmark's Kafka broker: a single KRaft node (broker + controller) on 127.0.0.1.
#   bench/kafka/broker.sh start DIR PORT CONTROLLER_PORT   formats DIR, starts, waits until it serves
#   bench/kafka/broker.sh stop DIR                         stops the broker started in DIR
# The classpath comes from bench/kafka/fetch.sh (Maven Central, cached in ~/.m2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:?start|stop}"; dir="${2:?DIR}"
case "$cmd" in
  start)
    port="${3:?PORT}"; cport="${4:?CONTROLLER_PORT}"
    cp="$(cat "$("$here/fetch.sh")")"
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -rf "$dir"; mkdir -p "$dir/logs"
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
    java_log="-Dlog4j.configuration=file:$here/log4j.properties"
    id="$(java -cp "$cp" "$java_log" kafka.tools.StorageTool random-uuid)"
    java -cp "$cp" "$java_log" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" > /dev/null
    setsid nohup java -Xmx1g -cp "$cp" "$java_log" kafka.Kafka "$dir/server.properties" > "$dir/broker.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    for _ in $(seq 1 120); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "kafka: broker on 127.0.0.1:$port" >&2; exit 0; fi
      kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "kafka: broker died, see $dir/broker.log" >&2; tail -5 "$dir/broker.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "kafka: broker did not open 127.0.0.1:$port within 60 s" >&2; exit 1 ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid="$(cat "$dir/pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
    fi ;;
  *) echo "usage: broker.sh start DIR PORT CPORT | stop DIR" >&2; exit 2 ;;
esac
