#!/usr/bin/env bash
# pacs-net store --concurrency 4 vs --concurrency 1 to a stock DCMTK storescp started
# without --fork, which serves one association at a time (the next connection waits
# in its listen backlog until the first association ends). The same 1,000 CT files
# of ~40 KB (examples/bench_files.rs), side by side in one hyperfine run.
# Goal (issue 15): --concurrency 4 within 1.2x of --concurrency 1 (on main: 16.0 s vs
# 0.18 s, the extra associations timing out in ACSE and being retried).
#
#   benches/store_one_association.sh     (knobs: see benches/common.sh; FILES=1000)
source "$(dirname "$0")/common.sh"
bench_init store_one_association

FILES=${FILES:-1000}
SMALL=$WORK/small_${FILES}x40k
log "generating inputs"
"$BENCH_FILES" series "$SMALL" "$FILES" 40960 1 >&2

start_storescp stock
target="STORESCP@127.0.0.1:$SCP_PORT"
for c in 1 4; do
  log "check run, --concurrency $c"
  summary=$("$PACS_NET" store "$target" "$SMALL" --no-progress --concurrency "$c" --stats 2>"$WORK/stats-c$c.txt")
  echo "pacs-net --concurrency $c: $summary" >&2
  grep -E "health|retries|created" "$WORK/stats-c$c.txt" >&2 || true
  case $summary in
    "$FILES files: $FILES stored, 0 warnings, 0 failed"*) ;;
    *) die "pacs-net --concurrency $c did not store every file" ;;
  esac
done
extra=()
if [ -n "${PACS_NET_BASELINE:-}" ]; then
  extra=(-n "baseline concurrency 4" "$PACS_NET_BASELINE store $target $SMALL --no-progress --concurrency 4")
fi
log "hyperfine"
hf store-one-association \
  -n "concurrency 1" "$PACS_NET store $target $SMALL --no-progress --concurrency 1" \
  -n "concurrency 4" "$PACS_NET store $target $SMALL --no-progress --concurrency 4" "${extra[@]}"
stop_pid "$SCP_PID"

c1=$(hf_stat store-one-association "concurrency 1" mean) s1=$(hf_stat store-one-association "concurrency 1" stddev)
c4=$(hf_stat store-one-association "concurrency 4" mean) s4=$(hf_stat store-one-association "concurrency 4" stddev)
r=$(calc "$c4 / $c1")
printf '\n| files | peer | --concurrency 1 mean ± sd | --concurrency 4 mean ± sd | c4 / c1 |\n|---|---|---|---|---|\n'
printf '| %s × 40 KB | storescp (no --fork) | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$FILES" "$c1" "$s1" "$c4" "$s4" "$r"
goal "--concurrency 4 / --concurrency 1, one-association storescp" "$r" "<=" 1.2
goals_summary "store_one_association"
