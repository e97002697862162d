#!/usr/bin/env bash
# Two pacs-net builds, A and B, storing the same 1,000 × 40 KB files to one stock
# storescp (Nagle on, as packaged), interleaved round by round (A, B, A, B, ...), so
# that the drift of a shared machine falls on both alike. hyperfine runs each
# command's runs back to back, which on these machines can differ by 2x between the
# first and the last command of one invocation.
#
#   PACS_NET_BASELINE=/path/to/other/pacs-net [ROUNDS=10] benches/store_ab_stock.sh
source "$(dirname "$0")/common.sh"
bench_init store_ab_stock
[ -n "${PACS_NET_BASELINE:-}" ] || die "set PACS_NET_BASELINE to the other pacs-net binary"
ROUNDS=${ROUNDS:-10}
SMALL=$WORK/small_1000x40k
"$BENCH_FILES" series "$SMALL" 1000 40960 3 >&2
port=$(free_port)
env -u TCP_NODELAY /usr/bin/storescp --ignore "$port" >"$WORK/storescp.log" 2>&1 &
pid=$!
PIDS+=("$pid")
wait_listening "$port" "$pid" || die "storescp did not start"
declare -a A B
for ((i = 1; i <= ROUNDS; i++)); do
  for side in A B; do
    if [ $side = A ]; then bin=$PACS_NET; else bin=$PACS_NET_BASELINE; fi
    start=$(date +%s.%N)
    "$bin" store "STORESCP@127.0.0.1:$port" "$SMALL" --no-progress >/dev/null || die "$side failed"
    t=$(calc "$(date +%s.%N) - $start")
    if [ $side = A ]; then A+=("$t"); else B+=("$t"); fi
  done
done
stop_pid "$pid"
python3 - "${A[*]}" "${B[*]}" <<'PY'
import statistics as s, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print(f"| build | median | mean ± sd | rounds |\n|---|---|---|---|")
for name, v in (("pacs-net (this tree)", a), ("pacs-net (baseline)", b)):
    print(f"| {name} | {s.median(v):.3f} s | {s.mean(v):.3f} ± {s.stdev(v):.3f} s | {len(v)} |")
print(f"this tree / baseline, medians: {s.median(a) / s.median(b):.3f}x")
PY
