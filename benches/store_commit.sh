#!/usr/bin/env bash
# pacs-net store --commit vs store alone: the 1,000-file workload (CT, ~40 KB each,
# Explicit VR LE, made by `examples/bench_files.rs`) to the same Orthanc, side by
# side in one hyperfine run; and `commit` alone (the files already held). Orthanc's
# storage commitment SCP reports on a new association to our listener (PACSNET in
# its DicomModalities). Every run stores the same 1,000 instances again (Orthanc
# answers success for an instance it holds), so both commands do the same C-STOREs.
# The commitment is 2 N-ACTIONs (batches of 500), not one per file. Orthanc's
# commitment job looks each instance up in its index, one at a time (~4-5 ms each
# here): that, not the protocol, is what a commitment costs against Orthanc. So the
# run also times `commit` of the same 1,000 instances to the pynetdicom commitment
# SCP of the tests (tests/peers/commit_scp.py --hold-all, report on the same
# association): the protocol's own cost, 2 round trips.
# Goals: what --commit adds to store is at most 1.1x what `commit` alone takes (the
# batches' round trips and the PACS's own work, nothing per file on our side);
# commit of 1,000 instances to pynetdicom under 2 s (its own decoding included).
#
#   benches/store_commit.sh        (knobs: see benches/common.sh; MODES="stock tuned"
#                                   also runs Orthanc with env TCP_NODELAY=1)
source "$(dirname "$0")/common.sh"
bench_init store_commit
ORTHANC=/usr/sbin/Orthanc
[ -x "$ORTHANC" ] || die "$ORTHANC not found"

SMALL=$WORK/small_1000x40k
log "generating inputs"
"$BENCH_FILES" series "$SMALL" 1000 40960 5 >&2

PN_LISTEN=$(free_port)
pick_python
PY_PORT=$(free_port)
"$PY" "$BENCH_ROOT/tests/peers/commit_scp.py" "$PY_PORT" --hold-all --report same >"$WORK/pynetdicom.log" 2>&1 &
PY_PID=$!
PIDS+=("$PY_PID")
wait_listening "$PY_PORT" "$PY_PID" || die "the pynetdicom commitment SCP did not start; see $WORK/pynetdicom.log"
commit_py="$PACS_NET commit PYCOMMIT@127.0.0.1:$PY_PORT $SMALL"
ORTHANC_DIR=$WORK/orthanc
mkdir -p "$ORTHANC_DIR"

# start_orthanc stock|tuned: Orthanc on free ports; sets ORTHANC_PORT, ORTHANC_PID.
start_orthanc() {
  local mode=$1 port http pid
  port=$(free_port)
  http=$(free_port)
  cat >"$ORTHANC_DIR/orthanc.json" <<EOF
{"Name": "bench", "StorageDirectory": "$ORTHANC_DIR/storage", "IndexDirectory": "$ORTHANC_DIR/index",
 "DicomAet": "ORTHANC", "DicomPort": $port, "HttpPort": $http, "RemoteAccessAllowed": false,
 "AuthenticationEnabled": false, "DicomAlwaysAllowEcho": true, "DicomAlwaysAllowStore": true,
 "Plugins": [], "StableAge": 1,
 "DicomModalities": {"pacsnet": ["PACSNET", "127.0.0.1", $PN_LISTEN]}}
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

MODES=${MODES:-stock}
for mode in $MODES; do
  start_orthanc "$mode"
  target="ORTHANC@127.0.0.1:$ORTHANC_PORT"
  store="$PACS_NET store $target $SMALL --no-progress"
  store_commit="$PACS_NET store $target $SMALL --no-progress --commit --port $PN_LISTEN"
  commit="$PACS_NET commit $target $SMALL --port $PN_LISTEN"

  log "$mode: check runs"
  out=$($store_commit)
  echo "$out" >&2
  case $out in
    *"1000 files: 1000 stored, 0 warnings, 0 failed"*"1000 committed, 0 failed, 0 unknown (2 requests)"*) ;;
    *) die "store --commit did not store and commit every file" ;;
  esac
  out=$($commit)
  echo "$out" >&2
  case $out in
    *"1000 committed, 0 failed, 0 unknown (2 requests)"*) ;;
    *) die "commit did not commit every instance" ;;
  esac

  log "$mode: hyperfine"
  hf "store-commit-$mode" -n "store" "$store" -n "store --commit" "$store_commit" -n "commit" "$commit" \
    -n "commit (pynetdicom)" "$commit_py"
  stop_pid "$ORTHANC_PID"
done

printf '\n| Orthanc | store mean ± sd | store --commit mean ± sd | commit alone mean ± sd | commit to pynetdicom mean ± sd | store --commit / store | (store --commit - store) / commit |\n|---|---|---|---|---|---|---|\n'
for mode in $MODES; do
  n="store-commit-$mode"
  s=$(hf_stat "$n" "store" mean) ss=$(hf_stat "$n" "store" stddev)
  c=$(hf_stat "$n" "store --commit" mean) cs=$(hf_stat "$n" "store --commit" stddev)
  a=$(hf_stat "$n" "commit" mean) as=$(hf_stat "$n" "commit" stddev)
  y=$(hf_stat "$n" "commit (pynetdicom)" mean) ys=$(hf_stat "$n" "commit (pynetdicom)" stddev)
  r=$(calc "$c / $s")
  added=$(calc "($c - $s) / $a")
  printf '| %s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× | %.3f× |\n' "$mode" "$s" "$ss" "$c" "$cs" "$a" "$as" "$y" "$ys" "$r" "$added"
  goal "Orthanc $mode: (store --commit - store) / commit alone" "$added" "<=" 1.1
  goal "commit of 1,000 to pynetdicom (s)" "$y" "<=" 2
done
goals_summary store_commit
