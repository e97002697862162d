#!/usr/bin/env bash
# 1,000 C-ECHOs: `pacs-net echo --count 1000` (through the pool: one association)
#   vs 1,000 runs of DCMTK echoscu (one association each; 100 are timed and the
#      figure is scaled by 10)
#   vs one pynetdicom association doing 1,000 C-ECHOs with TCP_NODELAY on its client
#      socket (benches/echo_pynetdicom.py),
# against a tuned storescp (env TCP_NODELAY=1; echoscu tuned the same way) and a stock
# one (storescp and echoscu as packaged).
# Goals: pacs-net >= 30x faster than 1,000 echoscu; pacs-net <= 0.25x pynetdicom.
#
#   benches/echo_vs_echoscu.sh        (knobs: see benches/common.sh; ECHOSCU_RUNS=100)
source "$(dirname "$0")/common.sh"
bench_init echo_vs_echoscu
pick_python
ECHOSCU_RUNS=${ECHOSCU_RUNS:-100}
SCALE=$(python3 -c "print(f'{1000 / $ECHOSCU_RUNS:g}')")

for mode in tuned stock; do
  start_storescp "$mode"
  # A bounded loop of echoscu runs; stops at the first failure.
  cat >"$WORK/echoscu-$mode.sh" <<EOF
for i in \$(seq $ECHOSCU_RUNS); do
  $(scu_env "$mode") $ECHOSCU -aec STORESCP 127.0.0.1 $SCP_PORT || exit 1
done
EOF
  log "$mode: check runs"
  "$PACS_NET" echo "STORESCP@127.0.0.1:$SCP_PORT" --count 1000 >&2 || die "pacs-net echo failed"
  $(scu_env "$mode") "$ECHOSCU" -aec STORESCP 127.0.0.1 "$SCP_PORT" || die "echoscu failed"
  "$PY" benches/echo_pynetdicom.py 127.0.0.1 "$SCP_PORT" --count 10 >&2 || die "pynetdicom echo failed"
  extra=()
  if [ -n "${PACS_NET_BASELINE:-}" ]; then
    extra=(-n "pacs-net (baseline)" "$PACS_NET_BASELINE echo STORESCP@127.0.0.1:$SCP_PORT --count 1000")
  fi
  log "$mode: hyperfine"
  hf "echo-$mode" \
    -n pacs-net "$PACS_NET echo STORESCP@127.0.0.1:$SCP_PORT --count 1000" \
    -n "echoscu x$ECHOSCU_RUNS" "bash $WORK/echoscu-$mode.sh" \
    -n pynetdicom "$PY benches/echo_pynetdicom.py 127.0.0.1 $SCP_PORT --count 1000" "${extra[@]}"
  stop_pid "$SCP_PID"
done

printf '\n| peer | pacs-net, 1,000 echoes | echoscu, %s runs (x%s = per 1,000) | pynetdicom, 1,000 echoes | echoscu-1000 / pacs-net | pacs-net / pynetdicom |\n|---|---|---|---|---|---|\n' "$ECHOSCU_RUNS" "$SCALE"
for mode in tuned stock; do
  n="echo-$mode"
  p=$(hf_stat "$n" pacs-net mean) ps=$(hf_stat "$n" pacs-net stddev)
  e=$(hf_stat "$n" "echoscu x$ECHOSCU_RUNS" mean) es=$(hf_stat "$n" "echoscu x$ECHOSCU_RUNS" stddev)
  y=$(hf_stat "$n" pynetdicom mean) ys=$(hf_stat "$n" pynetdicom stddev)
  speedup=$(calc "$e * $SCALE / $p")
  ry=$(calc "$p / $y")
  printf '| %s | %.3f ± %.3f s | %.2f ± %.2f s (%.1f s) | %.3f ± %.3f s | %.0f× | %.3f× |\n' \
    "$mode" "$p" "$ps" "$e" "$es" "$(calc "$e * $SCALE")" "$y" "$ys" "$speedup" "$ry"
  goal "$mode peer: 1,000 echoscu / pacs-net (speed-up)" "$speedup" ">=" 30
  goal "$mode peer: pacs-net / pynetdicom" "$ry" "<=" 0.25
done
goals_summary "echo_vs_echoscu"
