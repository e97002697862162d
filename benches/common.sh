# Shared by benches/*.sh (sourced, not run): build, temp dir, free ports, DCMTK peers
# started and killed by their own PIDs, hyperfine summaries and goal checks.
#
# Environment knobs (all optional):
#   PACS_NET           pacs-net binary to measure (default: this tree's release build)
#   PACS_NET_BASELINE  a second pacs-net binary, measured side by side as "pacs-net (baseline)"
#   BENCH_OUT          where hyperfine's JSON/markdown go (default: <target>/bench-results/<bench>)
#   WARMUP, MIN_RUNS, MAX_RUNS   hyperfine --warmup / --min-runs / --max-runs (1 / 3 / 10)
#   PYTHON             a python3 with pynetdicom (default: python3 if it has it, else a venv
#                      under ~/.cache/pacs-net-bench/venv, created with `pip install pynetdicom`)
# DCMTK is always called by absolute path (pynetdicom installs its own storescu/echoscu).

set -euo pipefail

STORESCP=/usr/bin/storescp
STORESCU=/usr/bin/storescu
ECHOSCU=/usr/bin/echoscu
WARMUP=${WARMUP:-1}
MIN_RUNS=${MIN_RUNS:-3}
MAX_RUNS=${MAX_RUNS:-10}
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIDS=()
GOALS=()

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# bench_init NAME: check tools, build, make the temp dir, set the cleanup trap.
bench_init() {
  local name=$1 tool
  for tool in "$STORESCP" "$STORESCU" "$ECHOSCU"; do
    [ -x "$tool" ] || die "$tool not found (apt-get install dcmtk)"
  done
  for tool in hyperfine python3 ss cargo; do
    command -v "$tool" >/dev/null || die "$tool not found"
  done
  cd "$BENCH_ROOT"
  log "building (release): pacs-net and the bench_files example"
  cargo build --release --quiet --bin pacs-net --example bench_files
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  PACS_NET=${PACS_NET:-$TARGET_DIR/release/pacs-net}
  BENCH_FILES=$TARGET_DIR/release/examples/bench_files
  [ -x "$PACS_NET" ] || die "no pacs-net binary at $PACS_NET"
  OUT=${BENCH_OUT:-$TARGET_DIR/bench-results/$name}
  mkdir -p "$OUT"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/pacs-net-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  printf 'machine: %s cores, %s; %s; %s\n' "$(nproc)" "$(uname -sr)" \
    "$("$STORESCU" --version 2>/dev/null | head -1 | tr -d '$')" "$(hyperfine --version)" >&2
  printf 'pacs-net: %s (git %s)\nresults: %s\n' "$PACS_NET" \
    "$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$OUT" >&2
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening PORT PID: up to 5 s for PID to listen on PORT.
wait_listening() {
  local port=$1 pid=$2 i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if ss -Hltn "sport = :$port" | grep -q .; then return 0; fi
    sleep 0.05
  done
  return 1
}

# start_storescp tuned|stock: storescp --ignore on a free port; sets SCP_PORT, SCP_PID.
# tuned = env TCP_NODELAY=1 (Debian's DCMTK then disables Nagle); stock = as packaged.
start_storescp() {
  local mode=$1 attempt port pid
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if [ "$mode" = tuned ]; then
      env TCP_NODELAY=1 "$STORESCP" --ignore --aetitle STORESCP "$port" >"$WORK/storescp-$mode.log" 2>&1 &
    else
      env -u TCP_NODELAY "$STORESCP" --ignore --aetitle STORESCP "$port" >"$WORK/storescp-$mode.log" 2>&1 &
    fi
    pid=$!
    PIDS+=("$pid")
    if wait_listening "$port" "$pid"; then
      SCP_PORT=$port
      SCP_PID=$pid
      log "storescp ($mode) pid $pid on 127.0.0.1:$port"
      return 0
    fi
    stop_pid "$pid"
  done
  die "storescp ($mode) did not start; see $WORK/storescp-$mode.log"
}

# stop_pid PID: kill one process we started, by its PID.
stop_pid() {
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# scu_env tuned|stock: the env prefix for a DCMTK SCU in that setting.
scu_env() {
  if [ "$1" = tuned ]; then echo "env TCP_NODELAY=1"; else echo "env -u TCP_NODELAY"; fi
}

# hf NAME [hyperfine args...]: hyperfine without a shell, exporting NAME.json / NAME.md.
hf() {
  local name=$1
  shift
  hyperfine -N --style basic --warmup "$WARMUP" --min-runs "$MIN_RUNS" --max-runs "$MAX_RUNS" \
    --export-json "$OUT/$name.json" --export-markdown "$OUT/$name.md" "$@" >&2
}

# hf_stat NAME COMMAND_NAME FIELD: a field (mean, stddev, median, min, max) in seconds.
hf_stat() {
  python3 - "$OUT/$1.json" "$2" "$3" <<'EOF'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
r = next(r for r in res if r["command"] == sys.argv[2])
v = r[sys.argv[3]]
print(f"{v:.6f}" if v is not None else "0")
EOF
}

# calc EXPR: floating-point arithmetic.
calc() { python3 -c "print(f'{($1):.4f}')"; }

# goal LABEL VALUE OP LIMIT: record and print whether VALUE OP LIMIT holds (OP: <= or >=).
goal() {
  local label=$1 value=$2 op=$3 limit=$4 verdict
  if python3 -c "import sys; sys.exit(0 if $value $op $limit else 1)"; then verdict=met; else verdict=MISSED; fi
  GOALS+=("$(printf '%-62s %10s  (goal %s %s)  %s' "$label" "$value" "$op" "$limit" "$verdict")")
  printf 'goal: %s = %s (%s %s): %s\n' "$label" "$value" "$op" "$limit" "$verdict" >&2
}

goals_summary() {
  local g
  printf '\n%s goals\n' "$1"
  for g in "${GOALS[@]}"; do printf '  %s\n' "$g"; done
}

# pick_python: a python3 with pynetdicom, in PY.
pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
  elif python3 -c 'import pynetdicom' 2>/dev/null; then
    PY=python3
  else
    local venv=${XDG_CACHE_HOME:-$HOME/.cache}/pacs-net-bench/venv
    if ! "$venv/bin/python" -c 'import pynetdicom' 2>/dev/null; then
      log "installing pynetdicom into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet pynetdicom
    fi
    PY=$venv/bin/python
  fi
  "$PY" -c 'import pynetdicom, sys; print("pynetdicom", pynetdicom.__version__, "python", sys.version.split()[0])' >&2
}
