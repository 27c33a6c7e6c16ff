#!/usr/bin/env bash
# Stops the test servers started by up.sh (TERM, then KILL after 15 s) and removes their data.
# Logs stay in test/.servers/logs/ for inspection. Safe to run when nothing is running.
set -uo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"
here="$(cd "$(dirname "$0")" && pwd)"
if [ -d "$RUN_DIR/kafka" ]; then
  "$here/kafka.sh" stop "$RUN_DIR/kafka"
  mkdir -p "$LOG_DIR" && cp "$RUN_DIR/kafka/kafka.log" "$LOG_DIR/kafka.log" 2>/dev/null
fi
for name in s3proxy; do
  pidfile="$RUN_DIR/$name.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
done
rm -rf "$RUN_DIR" "$ENV_FILE"
