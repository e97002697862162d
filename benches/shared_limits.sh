#!/usr/bin/env bash
# The cost of the fleet-wide limits (issue 14), against a local redis-server and
# the embedded SCP (pacs-net scp, concurrent associations), side by side:
#   1. one lease, acquire + release (two Redis round trips): p50 / p99 over N leases
#      (examples/shared_lease_latency.rs);
#   2. the store workload, 1,000 × 40 KB (examples/bench_files.rs), --concurrency 8,
#      without shared_limits and with max_shared_associations 8 (the cap never binds:
#      what the leases cost);
#   3. four such processes at once, 250 files each, without a cap and with a fleet cap
#      of 6 (the cap binds: what queueing for the fleet's slots costs).
# Goal: the store workload with the shared limit within 1.1× of without.
#
#   benches/shared_limits.sh     (knobs: see benches/common.sh; FILES=1000, LEASES=10000)
source "$(dirname "$0")/common.sh"
bench_init shared_limits
command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
cargo build --release --quiet --example shared_lease_latency
LEASE_BENCH=$TARGET_DIR/release/examples/shared_lease_latency

FILES=${FILES:-1000}
LEASES=${LEASES:-10000}
SMALL=$WORK/small_${FILES}x40k
log "generating inputs"
"$BENCH_FILES" series "$SMALL" "$FILES" 40960 1 >&2
# Four quarters for the four-process run (the one-process runs take the whole tree).
all_files=$(find "$SMALL" -type f | sort)
for q in 0 1 2 3; do mkdir -p "$SMALL/q$q"; done
i=0
for f in $all_files; do mv "$f" "$SMALL/q$((i % 4))/"; i=$((i + 1)); done

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_listening "$REDIS_PORT" "$REDIS_PID"

SCP_PORT=$(free_port)
"$PACS_NET" scp --port "$SCP_PORT" --storage "$WORK/received" >"$WORK/scp.log" 2>&1 &
SCP_PID=$!
PIDS+=("$SCP_PID")
wait_listening "$SCP_PORT" "$SCP_PID"

node='"ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": '"$SCP_PORT"
shared='"shared_limits": {"redis_url": "redis://127.0.0.1:'"$REDIS_PORT"'/0", "lease_seconds": 30}'
echo '{"nodes": {"PACS": {'"$node"'}}}' >"$WORK/local.json"
echo '{'"$shared"', "nodes": {"PACS": {'"$node"', "max_shared_associations": 8}}}' >"$WORK/shared8.json"
echo '{'"$shared"', "nodes": {"PACS": {'"$node"', "max_shared_associations": 6}}}' >"$WORK/shared6.json"

log "lease acquire + release, $LEASES leases"
lease_line=$("$LEASE_BENCH" "redis://127.0.0.1:$REDIS_PORT/0" "$LEASES")
echo "$lease_line" >&2

for cfg in local shared8; do
  summary=$("$PACS_NET" -c "$WORK/$cfg.json" store PACS "$SMALL" --no-progress --concurrency 8 --stats 2>"$WORK/stats-$cfg.txt")
  echo "$cfg: $summary" >&2
  case $summary in
    "$FILES files: $FILES stored, 0 warnings, 0 failed"*) ;;
    *) die "$cfg did not store every file" ;;
  esac
done
grep -E "shared:" "$WORK/stats-shared8.txt" >&2 || die "no shared figures in --stats"

log "hyperfine: one process"
hf shared-limits-one \
  -n "no shared limit" "$PACS_NET -c $WORK/local.json store PACS $SMALL --no-progress --concurrency 8" \
  -n "shared limit (cap 8)" "$PACS_NET -c $WORK/shared8.json store PACS $SMALL --no-progress --concurrency 8"

four() { # four CONFIG: four processes at once, a quarter of the files each
  printf 'for q in 0 1 2 3; do %s -c %s store PACS %s/q$q --no-progress --concurrency 8 >/dev/null & done; wait' \
    "$PACS_NET" "$WORK/$1.json" "$SMALL"
}
log "hyperfine: four processes"
hyperfine --warmup "$WARMUP" --min-runs "$MIN_RUNS" --max-runs "$MAX_RUNS" \
  --export-json "$OUT/shared-limits-four.json" --export-markdown "$OUT/shared-limits-four.md" \
  -n "4 processes, no cap" "$(four local)" \
  -n "4 processes, fleet cap 6" "$(four shared6)" >&2
stop_pid "$SCP_PID"

l=$(hf_stat shared-limits-one "no shared limit" mean) ls=$(hf_stat shared-limits-one "no shared limit" stddev)
s=$(hf_stat shared-limits-one "shared limit (cap 8)" mean) ss=$(hf_stat shared-limits-one "shared limit (cap 8)" stddev)
f0=$(hf_stat shared-limits-four "4 processes, no cap" mean) f0s=$(hf_stat shared-limits-four "4 processes, no cap" stddev)
f6=$(hf_stat shared-limits-four "4 processes, fleet cap 6" mean) f6s=$(hf_stat shared-limits-four "4 processes, fleet cap 6" stddev)
r=$(calc "$s / $l")
printf '\n%s\n' "$lease_line"
printf '\n| workload | without shared limit | with shared limit | ratio |\n|---|---|---|---|\n'
printf '| 1 process, %s × 40 KB, --concurrency 8 (cap 8) | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$FILES" "$l" "$ls" "$s" "$ss" "$r"
printf '| 4 processes × %s files, --concurrency 8 (fleet cap 6) | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' \
  "$((FILES / 4))" "$f0" "$f0s" "$f6" "$f6s" "$(calc "$f6 / $f0")"
goal "store with shared limit / without (cap not binding)" "$r" "<=" 1.1
goals_summary "shared_limits"
