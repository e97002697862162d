#!/usr/bin/env bash
# pacs-net store (one association, default concurrency 1) vs DCMTK storescu, the same
# files to the same `storescp --ignore`:
#   (a) 1,000 CT files of ~40 KB, (b) 20 CT files of ~5 MB (Explicit VR LE, generated
#   by `examples/bench_files.rs` into a temp dir);
# in two settings:
#   tuned: storescp and storescu with env TCP_NODELAY=1 (Debian's DCMTK then sets
#          TCP_NODELAY); stock: both as packaged (Nagle on). pacs-net is always as is.
# Goals: tuned pacs-net <= 0.8x storescu; stock pacs-net <= 0.1x storescu;
#        pacs-net against the stock peer within 1.5x of pacs-net against the tuned one.
#
#   benches/store_vs_storescu.sh        (knobs: see benches/common.sh)
source "$(dirname "$0")/common.sh"
bench_init store_vs_storescu

SMALL=$WORK/small_1000x40k
LARGE=$WORK/large_20x5m
log "generating inputs"
"$BENCH_FILES" series "$SMALL" 1000 40960 1 >&2
"$BENCH_FILES" series "$LARGE" 20 5242880 2 >&2

declare -A COUNT=([small]=1000 [large]=20)
declare -A DIR=([small]=$SMALL [large]=$LARGE)

for mode in ${MODES:-tuned stock}; do
  start_storescp "$mode"
  target="STORESCP@127.0.0.1:$SCP_PORT"
  scu="$(scu_env "$mode") $STORESCU +sd +r -aec STORESCP 127.0.0.1 $SCP_PORT"
  for set in small large; do
    dir=${DIR[$set]}
    log "$mode / $set: check runs"
    summary=$("$PACS_NET" store "$target" "$dir" --no-progress)
    echo "pacs-net: $summary" >&2
    case $summary in
      "${COUNT[$set]} files: ${COUNT[$set]} stored, 0 warnings, 0 failed"*) ;;
      *) die "pacs-net did not store every file" ;;
    esac
    $scu "$dir" || die "storescu failed"
    echo "storescu: exit 0" >&2
    extra=()
    if [ -n "${PACS_NET_BASELINE:-}" ]; then
      extra=(-n "pacs-net (baseline)" "$PACS_NET_BASELINE store $target $dir --no-progress")
    fi
    log "$mode / $set: hyperfine"
    hf "store-$set-$mode" \
      -n pacs-net "$PACS_NET store $target $dir --no-progress" \
      -n storescu "$scu $dir" "${extra[@]}"
  done
  stop_pid "$SCP_PID"
done

printf '\n| files | peer | pacs-net mean ± sd | storescu mean ± sd | pacs-net / storescu |\n|---|---|---|---|---|\n'
for set in small large; do
  for mode in ${MODES:-tuned stock}; do
    n="store-$set-$mode"
    p=$(hf_stat "$n" pacs-net mean) ps=$(hf_stat "$n" pacs-net stddev)
    s=$(hf_stat "$n" storescu mean) ss=$(hf_stat "$n" storescu stddev)
    r=$(calc "$p / $s")
    printf '| %s | %s | %.3f ± %.3f s | %.3f ± %.3f s | %.3f× |\n' "$set" "$mode" "$p" "$ps" "$s" "$ss" "$r"
    if [ "$mode" = tuned ]; then limit=0.8; else limit=0.1; fi
    goal "$set, $mode peer: pacs-net / storescu" "$r" "<=" "$limit"
  done
  pt=$(hf_stat "store-$set-tuned" pacs-net mean)
  pst=$(hf_stat "store-$set-stock" pacs-net mean)
  goal "$set: pacs-net vs stock peer / pacs-net vs tuned peer" "$(calc "$pst / $pt")" "<=" 1.5
done
goals_summary "store_vs_storescu"
