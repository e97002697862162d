#!/usr/bin/env bash
# Regenerates docs/monitor-healthy.png and docs/monitor-degraded.png: the status
# page of `pacs-net monitor` over a healthy and a degraded hospital, rendered by
# headless Chromium (Debian's `chromium`). Everything runs on loopback: the
# nodes are `pacs-net scp` instances on free ports (one of them slow on purpose),
# and a closed port stands for a scanner that is down.
#
#   docs/screenshots.sh            # both pictures
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "needs $CHROMIUM (apt-get install -y chromium)" >&2; exit 1; }
cargo build --quiet
BIN=$PWD/target/debug/pacs-net
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# start_scp PORT AE [RESPONSE_DELAY_MS]
start_scp() {
  local args=(scp --port "$1" --ae-title "$2")
  [ -n "${3:-}" ] && args+=(--response-delay-ms "$3")
  "$BIN" "${args[@]}" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$1"
}

# shoot CONFIG OUTPUT SECONDS: monitor CONFIG for SECONDS, then screenshot its page.
shoot() {
  local port profile pid
  port=$(free_port)
  profile=$(mktemp -d -p "$WORK")
  "$BIN" -c "$1" -q monitor --listen "127.0.0.1:$port" --interval-seconds 1 >/dev/null 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  sleep "$3"
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$2" --window-size=1400,900 "http://127.0.0.1:$port/" >/dev/null 2>&1
  kill -INT "$pid"
  wait "$pid" || true
  echo "wrote $2"
}

MAIN=$(free_port); CT=$(free_port); MR=$(free_port); CLOUD=$(free_port); DOWN=$(free_port)
start_scp "$MAIN" MAIN_PACS
start_scp "$CT" CT01
start_scp "$CLOUD" CLOUDPACS
# A PACS that answers every DIMSE request after 1.5 s, with a 1 s DIMSE timeout.
start_scp "$MR" MR01 1500

cat > "$WORK/healthy.json" <<JSON
{
  "local_ae_title": "PACSNET",
  "nodes": {
    "MAIN_PACS":  {"ae_title": "MAIN_PACS", "host": "127.0.0.1", "port": $MAIN, "pool": "main_pacs"},
    "CT_SCANNER": {"ae_title": "CT01", "host": "127.0.0.1", "port": $CT, "pool": "modalities"},
    "CLOUD_PACS": {"ae_title": "CLOUDPACS", "host": "127.0.0.1", "port": $CLOUD, "pool": "main_pacs"}
  },
  "network": {"connection_pools": {
    "main_pacs":  {"min_size": 2, "max_size": 8},
    "modalities": {"min_size": 1, "max_size": 4}
  }}
}
JSON

cat > "$WORK/degraded.json" <<JSON
{
  "local_ae_title": "PACSNET",
  "nodes": {
    "MAIN_PACS":  {"ae_title": "MAIN_PACS", "host": "127.0.0.1", "port": $MAIN, "pool": "main_pacs"},
    "CT_SCANNER": {"ae_title": "CT01", "host": "127.0.0.1", "port": $DOWN, "pool": "modalities",
                   "retry": {"max_attempts": 1}, "circuit_breaker": {"failure_threshold": 2, "open_duration_seconds": 2}},
    "MR_SCANNER": {"ae_title": "MR01", "host": "127.0.0.1", "port": $MR, "pool": "modalities",
                   "retry": {"max_attempts": 1}, "timeouts": {"dimse_ms": 1000},
                   "circuit_breaker": {"failure_threshold": 2, "open_duration_seconds": 2}},
    "CLOUD_PACS": {"ae_title": "CLOUDPACS", "host": "127.0.0.1", "port": $CLOUD, "pool": "main_pacs"}
  },
  "network": {"connection_pools": {
    "main_pacs":  {"min_size": 2, "max_size": 8},
    "modalities": {"min_size": 1, "max_size": 4}
  }}
}
JSON

shoot "$WORK/healthy.json" docs/monitor-healthy.png 6
shoot "$WORK/degraded.json" docs/monitor-degraded.png 12
