#!/usr/bin/env bash
# C-ECHOs on one association, side by side in one hyperfine run per peer:
#   `pacs-net echo --count N` (through the pool, breaker, retry policy, metrics: one association)
#   vs `echoscu --repeat N` (DCMTK, one association)
#   vs one pynetdicom association doing N C-ECHOs (benches/echo_pynetdicom.py; TCP_NODELAY on
#      its client socket),
# against a tuned storescp (env TCP_NODELAY=1; echoscu tuned the same way; N = 10,000) and a
# stock one (storescp and echoscu as packaged; N = 1,000: stock DCMTK waits ~40 ms per echo).
# Wall and CPU (user + system) of each command come from hyperfine's JSON.
# Goal (issue 10): tuned peer, pacs-net <= 0.9x echoscu --repeat's wall.
#
#   benches/echo_vs_echoscu.sh        (knobs: see benches/common.sh; N_TUNED, N_STOCK, PY_N)
source "$(dirname "$0")/common.sh"
bench_init echo_vs_echoscu
pick_python
N_TUNED=${N_TUNED:-10000}
N_STOCK=${N_STOCK:-1000}
# pynetdicom is ~30x slower; it runs a 40th of N (its figure is scaled up; pynetdicom 3.0.4
# lost its association after 300-600 echoes here, RuntimeError "must be established").
PY_DIV=${PY_DIV:-40}

# hf_cpu NAME COMMAND_NAME: mean user + system seconds.
hf_cpu() {
  python3 - "$OUT/$1.json" "$2" <<'EOF'
import json, sys
r = next(r for r in json.load(open(sys.argv[1]))["results"] if r["command"] == sys.argv[2])
print(f"{r['user'] + r['system']:.6f}")
EOF
}

rows=()
for mode in tuned stock; do
  if [ "$mode" = tuned ]; then n=$N_TUNED; else n=$N_STOCK; fi
  py_n=$((n / PY_DIV))
  start_storescp "$mode"
  log "$mode: check runs"
  "$PACS_NET" echo "STORESCP@127.0.0.1:$SCP_PORT" --count 10 >&2 || die "pacs-net echo failed"
  $(scu_env "$mode") "$ECHOSCU" --repeat 10 -aec STORESCP 127.0.0.1 "$SCP_PORT" || die "echoscu failed"
  "$PY" benches/echo_pynetdicom.py 127.0.0.1 "$SCP_PORT" --count 10 >&2 || die "pynetdicom echo failed"
  extra=()
  if [ -n "${PACS_NET_BASELINE:-}" ]; then
    extra=(-n "pacs-net (baseline)" "$PACS_NET_BASELINE echo STORESCP@127.0.0.1:$SCP_PORT --count $n")
  fi
  log "$mode: hyperfine, $n echoes"
  hf "echo-$mode" \
    -n pacs-net "$PACS_NET echo STORESCP@127.0.0.1:$SCP_PORT --count $n" \
    -n "echoscu --repeat" "$(scu_env "$mode") $ECHOSCU --repeat $n -aec STORESCP 127.0.0.1 $SCP_PORT" \
    "${extra[@]}"
  # pynetdicom outside hyperfine: one run, its own wall clock, n/a if its association
  # was lost (it was, now and then, after a few hundred echoes on this machine).
  y=n/a
  if py_line=$("$PY" benches/echo_pynetdicom.py 127.0.0.1 "$SCP_PORT" --count "$py_n" 2>/dev/null | tail -1); then
    y=$(python3 -c "import re,sys; m=re.search(r'in ([0-9.]+) s', sys.argv[1]); print(f'{float(m.group(1)) * $PY_DIV:.3f}')" "$py_line")
  fi
  stop_pid "$SCP_PID"
  name="echo-$mode"
  p=$(hf_stat "$name" pacs-net mean) ps=$(hf_stat "$name" pacs-net stddev) pc=$(hf_cpu "$name" pacs-net)
  e=$(hf_stat "$name" "echoscu --repeat" mean) es=$(hf_stat "$name" "echoscu --repeat" stddev)
  ec=$(hf_cpu "$name" "echoscu --repeat")
  rw=$(calc "$p / $e") rc=$(calc "$pc / $ec") ry=n/a
  [ "$y" != n/a ] && ry=$(calc "$p / $y")
  b="-"
  if [ -n "${PACS_NET_BASELINE:-}" ]; then
    b=$(printf '%.3f s (%.2f×)' "$(hf_stat "$name" "pacs-net (baseline)" mean)" \
      "$(calc "$p / $(hf_stat "$name" "pacs-net (baseline)" mean)")")
  fi
  rows+=("$(printf '| %s | %s | %.3f ± %.3f s (CPU %.3f s) | %.3f ± %.3f s (CPU %.3f s) | %s s | **%.2f×** | %.2f× | %s | %s |' \
    "$mode" "$n" "$p" "$ps" "$pc" "$e" "$es" "$ec" "$y" "$rw" "$rc" "$ry" "$b")")
  if [ "$mode" = tuned ]; then
    goal "tuned peer: pacs-net / echoscu --repeat, wall" "$rw" "<=" 0.9
  fi
done

printf '\n| peer | echoes | pacs-net | echoscu --repeat | pynetdicom (1/%s of the echoes, scaled, one run) | pacs-net / echoscu, wall | CPU | pacs-net / pynetdicom | pacs-net baseline |\n|---|---|---|---|---|---|---|---|---|\n' "$PY_DIV"
printf '%s\n' "${rows[@]}"
goals_summary "echo_vs_echoscu"
