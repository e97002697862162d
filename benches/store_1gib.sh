#!/usr/bin/env bash
# One 1 GiB multi-frame file (Multi-frame Grayscale Word SC, 2,048 frames of
# 512x512x16 bit, Explicit VR LE; generated streaming by examples/bench_files.rs)
# to a tuned `storescp --ignore` (env TCP_NODELAY=1): pacs-net store vs DCMTK storescu
# (also TCP_NODELAY=1). Wall by hyperfine; peak RSS and wall by /usr/bin/time -v over
# ROUNDS interleaved runs (medians). The file is deleted at the end.
# Goals: pacs-net peak RSS <= 2x storescu's; pacs-net wall <= 1.2x storescu's.
#
#   benches/store_1gib.sh        (knobs: see benches/common.sh; ROUNDS=3, BIG_BYTES)
source "$(dirname "$0")/common.sh"
bench_init store_1gib
ROUNDS=${ROUNDS:-3}
BIG_BYTES=${BIG_BYTES:-1073741824}
if [ "$BIG_BYTES" = 1073741824 ]; then SIZE="1 GiB"; else SIZE="$BIG_BYTES B"; fi
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
need=$((BIG_BYTES / 1024 + 65536))
avail=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
[ "$avail" -gt "$need" ] || die "not enough space in $WORK for the test file"

BIG=$WORK/big/multiframe_1gib.dcm
mkdir -p "$WORK/big"
log "generating $BIG"
"$BENCH_FILES" multiframe "$BIG" "$BIG_BYTES" 3 >&2

start_storescp tuned
target="STORESCP@127.0.0.1:$SCP_PORT"
scu="$(scu_env tuned) $STORESCU -aec STORESCP 127.0.0.1 $SCP_PORT"

log "check runs (also warm the page cache)"
summary=$("$PACS_NET" store "$target" "$BIG" --no-progress)
echo "pacs-net: $summary" >&2
case $summary in "1 files: 1 stored, 0 warnings, 0 failed"*) ;; *) die "pacs-net did not store the file" ;; esac
$scu "$BIG" || die "storescu failed"

log "hyperfine (wall)"
hf store-1gib -n pacs-net "$PACS_NET store $target $BIG --no-progress" -n storescu "$scu $BIG"

log "/usr/bin/time -v, $ROUNDS interleaved rounds (peak RSS)"
: >"$OUT/time-v.tsv"
for round in $(seq "$ROUNDS"); do
  for tool in pacs-net storescu; do
    if [ "$tool" = pacs-net ]; then cmd=("$PACS_NET" store "$target" "$BIG" --no-progress); else cmd=($scu "$BIG"); fi
    /usr/bin/time -v -o "$WORK/time.txt" "${cmd[@]}" >/dev/null 2>"$WORK/stderr.txt" ||
      die "$tool failed: $(cat "$WORK/stderr.txt")"
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$WORK/time.txt" |
      awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    printf '%s\t%s\t%s\t%s\n' "$round" "$tool" "$rss" "$wall" | tee -a "$OUT/time-v.tsv" >&2
  done
done
stop_pid "$SCP_PID"
rm -f "$BIG"

read -r prss pwall srss swall < <(python3 - "$OUT/time-v.tsv" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
def med(tool, col):
    return statistics.median(float(r[col]) for r in rows if r[1] == tool)
print(med("pacs-net", 2), med("pacs-net", 3), med("storescu", 2), med("storescu", 3))
EOF
)
p=$(hf_stat store-1gib pacs-net mean) ps=$(hf_stat store-1gib pacs-net stddev)
s=$(hf_stat store-1gib storescu mean) ss=$(hf_stat store-1gib storescu stddev)
printf '\n| | wall (hyperfine mean ± sd) | wall (time -v, median of %s) | peak RSS (time -v, median of %s) |\n|---|---|---|---|\n' "$ROUNDS" "$ROUNDS"
printf '| pacs-net store | %.3f ± %.3f s | %.2f s | %.1f MB |\n' "$p" "$ps" "$pwall" "$(calc "$prss / 1024")"
printf '| storescu | %.3f ± %.3f s | %.2f s | %.1f MB |\n' "$s" "$ss" "$swall" "$(calc "$srss / 1024")"
printf '| pacs-net / storescu | %.3f× | %.3f× | %.3f× |\n' "$(calc "$p / $s")" "$(calc "$pwall / $swall")" "$(calc "$prss / $srss")"
goal "$SIZE: pacs-net peak RSS / storescu's" "$(calc "$prss / $srss")" "<=" 2
goal "$SIZE: pacs-net wall / storescu's (hyperfine means)" "$(calc "$p / $s")" "<=" 1.2
goals_summary "store_1gib"
