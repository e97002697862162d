#!/usr/bin/env bash
# Issue 8's figures, side by side in one run:
#   (a) 1,000 CT files of ~40 KB in Implicit VR Little Endian: pacs-net store vs DCMTK
#       storescu, to a tuned `storescp --ignore` (the file goes out as Implicit VR, no
#       conversion) - hyperfine, goal <= 0.6x storescu's wall;
#   (b) one ~300 MB Implicit VR LE multi-frame file, same peer - goals: wall <= 1.0x
#       storescu's (hyperfine means), peak RSS <= 2x storescu's (/usr/bin/time -v,
#       median of ROUNDS interleaved runs);
#   (c) the same file to a pynetdicom SCP announcing maximum PDU length 0 ("no limit"),
#       at send caps (max_send_pdu_length) of 64 KiB, 256 KiB (default) and 1 MiB -
#       goal: peak RSS <= 64 MB at the default cap.
#
#   benches/store_fidelity.sh        (knobs: see benches/common.sh; ROUNDS=3, BIG_BYTES)
source "$(dirname "$0")/common.sh"
bench_init store_fidelity
ROUNDS=${ROUNDS:-3}
BIG_BYTES=${BIG_BYTES:-314572800}
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
pick_python

SMALL=$WORK/implicit_1000x40k
BIG=$WORK/big/implicit_300m.dcm
mkdir -p "$WORK/big"
log "generating inputs (Implicit VR Little Endian)"
BENCH_TS=implicit "$BENCH_FILES" series "$SMALL" 1000 40960 5 >&2
BENCH_TS=implicit "$BENCH_FILES" multiframe "$BIG" "$BIG_BYTES" 6 >&2

# peak_rss_and_wall LABEL CMD...: one /usr/bin/time -v run, appended to time-v.tsv.
peak_rss_and_wall() {
  local label=$1 round=$2
  shift 2
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" ||
    die "$label failed: $(cat "$WORK/stderr.txt")"
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$WORK/time.txt" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  printf '%s\t%s\t%s\t%s\n' "$round" "$label" "$rss" "$wall" | tee -a "$OUT/time-v.tsv" >&2
}

median() {
  python3 - "$OUT/time-v.tsv" "$1" "$2" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
print(statistics.median(float(r[int(sys.argv[3])]) for r in rows if r[1] == sys.argv[2]))
PY
}
: >"$OUT/time-v.tsv"

start_storescp tuned
target="STORESCP@127.0.0.1:$SCP_PORT"
scu="$(scu_env tuned) $STORESCU +sd +r -aec STORESCP 127.0.0.1 $SCP_PORT"

log "(a) check run"
summary=$("$PACS_NET" -v store "$target" "$SMALL" --no-progress 2>"$WORK/v.log")
echo "pacs-net: $summary" >&2
case $summary in "1000 files: 1000 stored, 0 warnings, 0 failed"*) ;; *) die "pacs-net did not store every file" ;; esac
grep -q "accepted context.*CT Image Storage.*Implicit VR Little Endian" "$WORK/v.log" ||
  die "storescp did not accept CT in Implicit VR: the files would be converted"
$scu "$SMALL" || die "storescu failed"
log "(a) hyperfine"
hf implicit-small -n pacs-net "$PACS_NET store $target $SMALL --no-progress" -n storescu "$scu $SMALL"

log "(b) check run"
"$PACS_NET" store "$target" "$BIG" --no-progress >&2 || die "pacs-net failed"
$scu "$BIG" || die "storescu failed"
log "(b) hyperfine"
hf implicit-300m -n pacs-net "$PACS_NET store $target $BIG --no-progress" -n storescu "$scu $BIG"
log "(b) /usr/bin/time -v, $ROUNDS interleaved rounds"
for round in $(seq "$ROUNDS"); do
  peak_rss_and_wall pacs-net-300m "$round" "$PACS_NET" store "$target" "$BIG" --no-progress
  peak_rss_and_wall storescu-300m "$round" $scu "$BIG"
done
stop_pid "$SCP_PID"

log "(c) pynetdicom SCP announcing max PDU 0"
PYPORT=$(free_port)
"$PY" "$BENCH_ROOT/tests/peers/store_scp.py" "$PYPORT" "$WORK/py" --max-pdu 0 --no-write >"$WORK/pyscp.log" 2>&1 &
PYPID=$!
PIDS+=("$PYPID")
wait_listening "$PYPORT" "$PYPID" || die "pynetdicom SCP did not start: $(cat "$WORK/pyscp.log")"
for cap in 65536 262144 1048576; do
  cat >"$WORK/cap-$cap.json" <<JSON
{"nodes": {"PY": {"ae_title": "PYSTORE", "host": "127.0.0.1", "port": $PYPORT, "max_send_pdu_length": $cap}}}
JSON
done
for round in $(seq "$ROUNDS"); do
  for cap in 65536 262144 1048576; do
    peak_rss_and_wall "pdu0-cap-$cap" "$round" "$PACS_NET" -c "$WORK/cap-$cap.json" store PY "$BIG" --no-progress
  done
done
stop_pid "$PYPID"
rm -f "$BIG"

p=$(hf_stat implicit-small pacs-net mean) ps=$(hf_stat implicit-small pacs-net stddev)
s=$(hf_stat implicit-small storescu mean) ss=$(hf_stat implicit-small storescu stddev)
pb=$(hf_stat implicit-300m pacs-net mean) pbs=$(hf_stat implicit-300m pacs-net stddev)
sb=$(hf_stat implicit-300m storescu mean) sbs=$(hf_stat implicit-300m storescu stddev)
prss=$(median pacs-net-300m 2) srss=$(median storescu-300m 2)
printf '\n| workload (Implicit VR LE, tuned storescp --ignore) | pacs-net | storescu | pacs-net / storescu |\n|---|---|---|---|\n'
printf '| 1,000 x 40 KB, wall (hyperfine mean ± sd) | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$p" "$ps" "$s" "$ss" "$(calc "$p / $s")"
printf '| %s B file, wall (hyperfine mean ± sd) | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$BIG_BYTES" "$pb" "$pbs" "$sb" "$sbs" "$(calc "$pb / $sb")"
printf '| %s B file, peak RSS (median of %s) | %.1f MB | %.1f MB | %.3f× |\n' "$BIG_BYTES" "$ROUNDS" "$(calc "$prss / 1024")" "$(calc "$srss / 1024")" "$(calc "$prss / $srss")"
printf '\n| send cap (peer announces max PDU 0) | peak RSS (median of %s) | wall (median) |\n|---|---|---|\n' "$ROUNDS"
for cap in 65536 262144 1048576; do
  printf '| %s | %.1f MB | %.2f s |\n' "$cap" "$(calc "$(median "pdu0-cap-$cap" 2) / 1024")" "$(median "pdu0-cap-$cap" 3)"
done
goal "1,000 x 40 KB Implicit VR: pacs-net / storescu wall" "$(calc "$p / $s")" "<=" 0.6
goal "$BIG_BYTES B Implicit VR: pacs-net / storescu wall" "$(calc "$pb / $sb")" "<=" 1.0
goal "$BIG_BYTES B Implicit VR: pacs-net / storescu peak RSS" "$(calc "$prss / $srss")" "<=" 2
goal "$BIG_BYTES B to a max-PDU-0 peer, default cap: peak RSS (MB)" "$(calc "$(median pdu0-cap-262144 2) / 1024")" "<=" 64
goals_summary "store_fidelity"
