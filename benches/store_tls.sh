#!/usr/bin/env bash
# DICOM TLS: pacs-net store over TLS vs DCMTK storescu +tls vs pacs-net over plain TCP,
# the same files to storescp --ignore (tuned: env TCP_NODELAY=1), side by side:
#   (a) 1,000 CT files of ~40 KB, (b) 20 CT files of ~5 MB (examples/bench_files.rs);
# and 1,000 C-ECHOs over TLS through the pool (one association, one handshake) vs
# 1,000 runs of echoscu +tls (one handshake each; ECHOSCU_RUNS are timed and scaled).
# Certificates (RSA 2048; a test CA, a server certificate for 127.0.0.1) are made
# with the openssl CLI in the temp dir.
# Goals: TLS pacs-net <= 0.8x storescu +tls; TLS pacs-net <= 1.3x plain pacs-net.
#
#   benches/store_tls.sh        (knobs: see benches/common.sh; ECHOSCU_RUNS=100)
source "$(dirname "$0")/common.sh"
bench_init store_tls
command -v openssl >/dev/null || die "openssl not found"
ECHOSCU_RUNS=${ECHOSCU_RUNS:-100}
SCALE=$(python3 -c "print(f'{1000 / $ECHOSCU_RUNS:g}')")

log "certificates"
C=$WORK/certs
mkdir -p "$C"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout "$C/ca.key" -out "$C/ca.pem" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$C/server.key" -out "$C/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$C/ext.cnf"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
  -days 2 -extfile "$C/ext.cnf" -out "$C/server.pem" 2>/dev/null

SMALL=$WORK/small_1000x40k
LARGE=$WORK/large_20x5m
log "generating inputs"
"$BENCH_FILES" series "$SMALL" 1000 40960 1 >&2
"$BENCH_FILES" series "$LARGE" 20 5242880 2 >&2
declare -A COUNT=([small]=1000 [large]=20)
declare -A DIR=([small]=$SMALL [large]=$LARGE)

# storescp +tls --ignore (tuned), no client certificate asked for.
start_tls_storescp() {
  local attempt port pid
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    env TCP_NODELAY=1 "$STORESCP" --ignore --aetitle STORESCP +tls "$C/server.key" "$C/server.pem" -pw -ic \
      "$port" >"$WORK/storescp-tls.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if wait_listening "$port" "$pid"; then
      TLS_PORT=$port
      TLS_PID=$pid
      log "storescp +tls pid $pid on 127.0.0.1:$port"
      return 0
    fi
    stop_pid "$pid"
  done
  die "storescp +tls did not start; see $WORK/storescp-tls.log"
}

start_tls_storescp
start_storescp tuned
TLS_TARGET="STORESCP@127.0.0.1:$TLS_PORT"
PLAIN_TARGET="STORESCP@127.0.0.1:$SCP_PORT"
TLS_SCU="env TCP_NODELAY=1 $STORESCU +tla +cf $C/ca.pem +sd +r -aec STORESCP 127.0.0.1 $TLS_PORT"

for set in small large; do
  dir=${DIR[$set]}
  log "$set: check runs"
  for t in "$TLS_TARGET --tls-ca $C/ca.pem" "$PLAIN_TARGET"; do
    # shellcheck disable=SC2086
    summary=$("$PACS_NET" store $t "$dir" --no-progress)
    echo "pacs-net: $summary" >&2
    case $summary in
      "${COUNT[$set]} files: ${COUNT[$set]} stored, 0 warnings, 0 failed"*) ;;
      *) die "pacs-net did not store every file ($t)" ;;
    esac
  done
  $TLS_SCU "$dir" || die "storescu +tls failed"
  log "$set: hyperfine"
  hf "store-tls-$set" \
    -n "pacs-net tls" "$PACS_NET store $TLS_TARGET $dir --no-progress --tls-ca $C/ca.pem" \
    -n "storescu tls" "$TLS_SCU $dir" \
    -n "pacs-net plain" "$PACS_NET store $PLAIN_TARGET $dir --no-progress"
done

cat >"$WORK/echoscu-tls.sh" <<EOF
for i in \$(seq $ECHOSCU_RUNS); do
  env TCP_NODELAY=1 $ECHOSCU +tla +cf $C/ca.pem -aec STORESCP 127.0.0.1 $TLS_PORT || exit 1
done
EOF
log "echo: check runs"
"$PACS_NET" echo "$TLS_TARGET" --count 1000 --tls-ca "$C/ca.pem" >&2 || die "pacs-net echo over TLS failed"
bash "$WORK/echoscu-tls.sh" || die "echoscu +tls failed"
log "echo: hyperfine"
hf "echo-tls" \
  -n "pacs-net tls" "$PACS_NET echo $TLS_TARGET --count 1000 --tls-ca $C/ca.pem" \
  -n "pacs-net plain" "$PACS_NET echo $PLAIN_TARGET --count 1000" \
  -n "echoscu tls x$ECHOSCU_RUNS" "bash $WORK/echoscu-tls.sh"
stop_pid "$TLS_PID"
stop_pid "$SCP_PID"

printf '\n| files | pacs-net TLS | storescu +tls | pacs-net plain TCP | TLS / storescu +tls | TLS / plain |\n|---|---|---|---|---|---|\n'
for set in small large; do
  n="store-tls-$set"
  t=$(hf_stat "$n" "pacs-net tls" mean) ts=$(hf_stat "$n" "pacs-net tls" stddev)
  s=$(hf_stat "$n" "storescu tls" mean) ss=$(hf_stat "$n" "storescu tls" stddev)
  p=$(hf_stat "$n" "pacs-net plain" mean) ps=$(hf_stat "$n" "pacs-net plain" stddev)
  printf '| %s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× | %.3f× |\n' \
    "$set" "$t" "$ts" "$s" "$ss" "$p" "$ps" "$(calc "$t / $s")" "$(calc "$t / $p")"
  goal "$set: pacs-net TLS / storescu +tls" "$(calc "$t / $s")" "<=" 0.8
  goal "$set: pacs-net TLS / pacs-net plain" "$(calc "$t / $p")" "<=" 1.3
done
t=$(hf_stat echo-tls "pacs-net tls" mean) p=$(hf_stat echo-tls "pacs-net plain" mean)
e=$(hf_stat echo-tls "echoscu tls x$ECHOSCU_RUNS" mean)
printf '\n| 1,000 C-ECHOs | pacs-net TLS (pool, 1 handshake) | pacs-net plain | echoscu +tls x%s (x%s = per 1,000) | echoscu-1000 / pacs-net TLS |\n|---|---|---|---|---|\n' "$ECHOSCU_RUNS" "$SCALE"
printf '| tuned storescp | %.3f s | %.3f s | %.2f s (%.1f s) | %.0f× |\n' "$t" "$p" "$e" "$(calc "$e * $SCALE")" "$(calc "$e * $SCALE / $t")"
goals_summary "store_tls"
