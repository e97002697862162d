#!/usr/bin/env bash
# pacs-net get / move vs DCMTK getscu / movescu: a study of 1,000 small CT
# instances (~40 KB, Explicit VR LE, made by `examples/bench_files.rs`) retrieved
# from the same Orthanc, side by side in one hyperfine run per row, with Orthanc
#   stock: as packaged;  tuned: Orthanc with env TCP_NODELAY=1
# (the DCMTK SCUs get the same env as Orthanc). Orthanc knows both move
# destinations (PACSNET and MOVESCU) in its DicomModalities. Two studies:
#   1 series:  the 1,000 instances in one series (the workload of the goals);
#   4 series:  the same size dealt into 4 series of 250 (BENCH_SERIES=4).
# pacs-net runs with --concurrency $CONCURRENCY (default 4): a study of several
# series is retrieved one series per association, up to 4 at once; one series is
# one retrieve, as without the flag.
# Goals: pacs-net <= 0.5x DCMTK's wall in each; peak RSS of pacs-net < 64 MB.
#
# Every run writes into a folder of its own, and nothing is deleted until the
# end (about 40 MB per run; some GB in all). Deleting 1,000 files just before a
# run that creates 1,000 makes each create slower on this machine: its ext4 has
# no journal, so the inode allocator skips recently deleted inodes one by one
# (`recently_deleted` in perf), which costs both tools up to ~1 ms per file and
# measures the file system rather than the SCUs.
#
#   benches/retrieve_vs_dcmtk.sh        (knobs: see benches/common.sh; MODES="tuned"
#                                        runs one setting only; STUDIES="1" or "4"
#                                        one study only; CONCURRENCY)
source "$(dirname "$0")/common.sh"
bench_init retrieve_vs_dcmtk
GETSCU=/usr/bin/getscu
MOVESCU=/usr/bin/movescu
ORTHANC=/usr/sbin/Orthanc
for tool in "$GETSCU" "$MOVESCU" "$ORTHANC" /usr/bin/dcmdump /usr/bin/time; do
  [ -x "$tool" ] || die "$tool not found"
done

CONCURRENCY=${CONCURRENCY:-4}
STUDIES=${STUDIES:-1 4}
log "generating inputs"
declare -A KEY INPUT
for n in $STUDIES; do
  INPUT[$n]=$WORK/study_${n}series_1000x40k
  BENCH_SERIES=$n "$BENCH_FILES" series "${INPUT[$n]}" 1000 40960 $((10 + n)) >&2
  uid=$(/usr/bin/dcmdump +P 0020,000d "${INPUT[$n]}/000001.dcm" | sed -E 's/.*\[([0-9.]+)\].*/\1/')
  [ -n "$uid" ] || die "no Study Instance UID in the inputs"
  KEY[$n]="StudyInstanceUID=$uid"
done

PN_LISTEN=$(free_port)
MOVESCU_PORT=$(free_port)
ORTHANC_DIR=$WORK/orthanc
mkdir -p "$ORTHANC_DIR"

# start_orthanc stock|tuned: Orthanc on free ports over the same storage; sets
# ORTHANC_PORT, ORTHANC_PID.
start_orthanc() {
  local mode=$1 port http pid
  port=$(free_port)
  http=$(free_port)
  cat >"$ORTHANC_DIR/orthanc.json" <<EOF
{"Name": "bench", "StorageDirectory": "$ORTHANC_DIR/storage", "IndexDirectory": "$ORTHANC_DIR/index",
 "DicomAet": "ORTHANC", "DicomPort": $port, "HttpPort": $http, "RemoteAccessAllowed": false,
 "AuthenticationEnabled": false, "DicomAlwaysAllowEcho": true, "DicomAlwaysAllowStore": true,
 "DicomAlwaysAllowFind": true, "DicomAlwaysAllowGet": true, "DicomAlwaysAllowMove": true,
 "Plugins": [], "StableAge": 1,
 "DicomModalities": {"pacsnet": ["PACSNET", "127.0.0.1", $PN_LISTEN],
                     "movescu": ["MOVESCU", "127.0.0.1", $MOVESCU_PORT]}}
EOF
  if [ "$mode" = tuned ]; then
    env TCP_NODELAY=1 "$ORTHANC" "$ORTHANC_DIR/orthanc.json" >"$WORK/orthanc-$mode.log" 2>&1 &
  else
    env -u TCP_NODELAY "$ORTHANC" "$ORTHANC_DIR/orthanc.json" >"$WORK/orthanc-$mode.log" 2>&1 &
  fi
  pid=$!
  PIDS+=("$pid")
  wait_listening "$port" "$pid" || die "Orthanc ($mode) did not start; see $WORK/orthanc-$mode.log"
  ORTHANC_PORT=$port
  ORTHANC_PID=$pid
  log "Orthanc ($mode) pid $pid on 127.0.0.1:$port"
}

# The SCUs write through these links; each run points them at a new folder.
OUT_PN=$WORK/out-pacs-net
OUT_DCMTK=$WORK/out-dcmtk
RUNS=$WORK/runs
mkdir -p "$RUNS"
fresh_outputs() {
  ln -sfn "$(mktemp -d "$RUNS/XXXXXXXX")" "$OUT_PN"
  ln -sfn "$(mktemp -d "$RUNS/XXXXXXXX")" "$OUT_DCMTK"
}
RSS=()
CPU=()
# CPU seconds (user + system) a process has used so far.
proc_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}
MODES=${MODES:-stock tuned}
loaded=
for mode in $MODES; do
  start_orthanc "$mode"
  target="ORTHANC@127.0.0.1:$ORTHANC_PORT"
  if [ -z "$loaded" ]; then
    loaded=1
    for n in $STUDIES; do
      log "loading the $n-series study into Orthanc"
      "$PACS_NET" store "$target" "${INPUT[$n]}" --no-progress >&2
    done
  fi
  env=$(scu_env "$mode")
  prep="bash -c 'ln -sfn \$(mktemp -d $RUNS/XXXXXXXX) $OUT_PN && ln -sfn \$(mktemp -d $RUNS/XXXXXXXX) $OUT_DCMTK'"
  for n in $STUDIES; do
    key=${KEY[$n]}
    pn_get="$PACS_NET get $target -k $key --out $OUT_PN --concurrency $CONCURRENCY --no-progress"
    pn_move="$PACS_NET move $target -k $key --out $OUT_PN --port $PN_LISTEN --concurrency $CONCURRENCY --no-progress"
    dcmtk_get="$env $GETSCU -S -aet GETSCU -aec ORTHANC -k QueryRetrieveLevel=STUDY -k $key -od $OUT_DCMTK 127.0.0.1 $ORTHANC_PORT"
    dcmtk_move="$env $MOVESCU -S -aet MOVESCU -aec ORTHANC -aem MOVESCU --port $MOVESCU_PORT -k QueryRetrieveLevel=STUDY -k $key -od $OUT_DCMTK 127.0.0.1 $ORTHANC_PORT"

    log "$mode, $n series: check runs"
    for op in get move; do
      fresh_outputs
      if [ $op = get ]; then cmd=$pn_get dcmtk=$dcmtk_get; else cmd=$pn_move dcmtk=$dcmtk_move; fi
      orthanc_before=$(proc_cpu "$ORTHANC_PID")
      summary=$(/usr/bin/time -v -o "$WORK/time-$op-$mode-$n.txt" $cmd)
      orthanc_cpu=$(calc "$(proc_cpu "$ORTHANC_PID") - $orthanc_before")
      t="$WORK/time-$op-$mode-$n.txt"
      wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$t")
      pn_cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.3f", s}' "$t")
      CPU+=("$op $mode $n $wall $pn_cpu $orthanc_cpu")
      echo "pacs-net $op: $summary" >&2
      case $summary in
        "1000 completed, 0 warning, 0 failed, 0 remaining"*) ;;
        *) die "pacs-net $op did not retrieve every instance" ;;
      esac
      got=$(find "$OUT_PN/" -name '*.dcm' | wc -l)
      [ "$got" = 1000 ] || die "pacs-net $op wrote $got files"
      rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$t")
      RSS+=("$op $mode $n $rss")
      orthanc_before=$(proc_cpu "$ORTHANC_PID")
      start=$(date +%s.%N)
      $dcmtk >/dev/null 2>&1 || die "DCMTK $op failed"
      CPU+=("dcmtk-$op $mode $n $(calc "$(date +%s.%N) - $start") - $(calc "$(proc_cpu "$ORTHANC_PID") - $orthanc_before")")
      got=$(find "$OUT_DCMTK/" -type f | wc -l)
      [ "$got" = 1000 ] || die "DCMTK $op wrote $got files"
    done

    log "$mode, $n series: hyperfine"
    hf "get-$mode-$n" --prepare "$prep" -n "pacs-net get" "$pn_get" -n getscu "$dcmtk_get"
    hf "move-$mode-$n" --prepare "$prep" -n "pacs-net move" "$pn_move" -n movescu "$dcmtk_move"
  done
  stop_pid "$ORTHANC_PID"
done

printf '\n| op | Orthanc | study | pacs-net mean ± sd | DCMTK mean ± sd | pacs-net / DCMTK |\n|---|---|---|---|---|---|\n'
for op in get move; do
  if [ $op = get ]; then d=getscu; else d=movescu; fi
  for mode in $MODES; do
    for n in $STUDIES; do
      name="$op-$mode-$n"
      p=$(hf_stat "$name" "pacs-net $op" mean) ps=$(hf_stat "$name" "pacs-net $op" stddev)
      s=$(hf_stat "$name" "$d" mean) ss=$(hf_stat "$name" "$d" stddev)
      r=$(calc "$p / $s")
      printf '| %s | %s | %s series | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$op" "$mode" "$n" "$p" "$ps" "$s" "$ss" "$r"
      goal "$op, Orthanc $mode, $n series: pacs-net / $d" "$r" "<=" 0.5
    done
  done
done
# Where the wall of a check run goes: Orthanc sends one sub-operation at a time
# on an association and waits for its response, so its own CPU time on one
# association is a floor no SCU can go under.
printf '\ncheck runs: wall, pacs-net CPU (user + sys), Orthanc CPU over the same run:\n'
for line in "${CPU[@]}"; do
  set -- $line
  if [ "$5" = - ]; then
    printf '  %s, Orthanc %s, %s series: wall %.3f s, Orthanc CPU %.3f s\n' "$1" "$2" "$3" "$4" "$6"
  else
    printf '  %s, Orthanc %s, %s series: wall %.3f s, pacs-net CPU %.3f s, Orthanc CPU %.3f s\n' "$1" "$2" "$3" "$4" "$5" "$6"
  fi
done
printf '\npeak RSS of pacs-net (/usr/bin/time -v):\n'
for line in "${RSS[@]}"; do
  set -- $line
  printf '  %s, Orthanc %s, %s series: %s KB\n' "$1" "$2" "$3" "$4"
  goal "peak RSS, $1, Orthanc $2, $3 series (KB)" "$4" "<=" 65536
done
goals_summary retrieve_vs_dcmtk
