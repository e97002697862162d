#!/usr/bin/env bash
# Where the time of a C-ECHO goes: `pacs-net echo --count N` against a tuned storescp,
# profiled with `perf record -e cpu-clock` (a software clock: these machines have no
# hardware counters) and counted with `strace -f -c` (system calls per echo), for this
# tree's binary and, side by side, PACS_NET_BASELINE if given. DCMTK's
# `echoscu --repeat N` is counted too, as the anchor.
#
#   PACS_NET_BASELINE=/path/to/old/pacs-net benches/echo_profile.sh    (knobs: N, TOP)
source "$(dirname "$0")/common.sh"
bench_init echo_profile
N=${N:-10000}
TOP=${TOP:-15}
for tool in perf strace; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install linux-perf strace)"
done

start_storescp tuned
bins=("pacs-net:$PACS_NET")
[ -n "${PACS_NET_BASELINE:-}" ] && bins+=("baseline:$PACS_NET_BASELINE")

for entry in "${bins[@]}"; do
  name=${entry%%:*} bin=${entry#*:}
  log "$name: perf record, $N echoes"
  perf record -q -e cpu-clock -F 4000 -g -o "$OUT/$name.perf.data" \
    "$bin" echo "STORESCP@127.0.0.1:$SCP_PORT" --count "$N" >/dev/null
  printf '\n### %s: share of CPU samples by object\n\n```\n' "$name"
  perf report -i "$OUT/$name.perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -n '1,6p'
  printf '```\n\n### %s: top %s symbols\n\n```\n' "$name" "$TOP"
  perf report -i "$OUT/$name.perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -n "1,${TOP}p"
  printf '```\n'
done

# syscalls per echo
per_echo() {
  python3 - "$1" "$N" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] not in ("total",):
        calls = int(f[3]); name = f[-1]
        rows[name] = calls
n = int(sys.argv[2])
top = sorted(rows.items(), key=lambda kv: -kv[1])[:6]
print(", ".join(f"{k} {v / n:.2f}" for k, v in top), f"(all: {sum(rows.values()) / n:.2f})")
EOF
}
printf '\n| program | system calls per echo (strace -f -c, %s echoes) |\n|---|---|\n' "$N"
for entry in "${bins[@]}"; do
  name=${entry%%:*} bin=${entry#*:}
  strace -f -c -o "$OUT/$name.strace" "$bin" echo "STORESCP@127.0.0.1:$SCP_PORT" --count "$N" >/dev/null
  printf '| %s | %s |\n' "$name" "$(per_echo "$OUT/$name.strace")"
done
env TCP_NODELAY=1 strace -f -c -o "$OUT/echoscu.strace" "$ECHOSCU" --repeat "$N" -aec STORESCP 127.0.0.1 "$SCP_PORT"
printf '| echoscu --repeat | %s |\n' "$(per_echo "$OUT/echoscu.strace")"
stop_pid "$SCP_PID"
