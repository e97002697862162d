#!/usr/bin/env bash
# Memory of `pacs-net monitor` over a long run at a short interval: RSS and the
# history length of each node, every STEP seconds for DURATION seconds. At 0.05 s
# the ring (3,600 samples) fills after about 3 minutes; RSS must level off there.
#
#   benches/monitor_memory.sh                 # DURATION=300 STEP=30 INTERVAL=0.05
#   PACS_NET=target/release/pacs-net DURATION=600 benches/monitor_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-300}
STEP=${STEP:-30}
INTERVAL=${INTERVAL:-0.05}
if [ -z "${PACS_NET:-}" ]; then
  cargo build --quiet --bin pacs-net
  PACS_NET=$PWD/target/debug/pacs-net
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2; exit 1
}
SCP=$(free_port); DOWN=$(free_port); HTTP=$(free_port)
"$PACS_NET" scp --port "$SCP" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SCP"
cat > "$WORK/h.json" <<JSON
{"nodes": {"MAIN_PACS": {"ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": $SCP},
           "CT": {"ae_title": "CT01", "host": "127.0.0.1", "port": $DOWN, "retry": {"max_attempts": 1}}}}
JSON
"$PACS_NET" -c "$WORK/h.json" -q monitor --listen "127.0.0.1:$HTTP" --interval-seconds "$INTERVAL" >/dev/null 2>&1 &
MON=$!
PIDS+=("$MON")
wait_port "$HTTP"
echo "pacs-net monitor --interval-seconds $INTERVAL, two nodes (one up, one a closed port)"
for ((t = 0; t <= DURATION; t += STEP)); do
  [ "$t" -gt 0 ] && sleep "$STEP"
  rss=$(awk '/VmRSS/{print $2}' "/proc/$MON/status")
  lens=$(python3 -c '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1]))
print(" ".join(k + "=" + str(len(v["history"])) for k, v in sorted(d["nodes"].items())))' "http://127.0.0.1:$HTTP/status")
  echo "t=${t}s rss_kb=$rss history: $lens"
done
