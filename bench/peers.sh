#!/usr/bin/env bash
# Cold transforms: imgcdn side by side with IPX (Node/sharp) and thumbor through the shared lab.
# Same source, same widths, same load, one server after the other (each started for its own
# runs and stopped after them, never two at a time), all on loopback, every run bounded.
#
#   bench/peers.sh                                    # photo-5120x2880.jpg -> ~300 px JPEG q80
#   JOB=webp1200 SERVERS="imgcdn ipx thumbor2" bench/peers.sh
#   FILE=art-5640x3172.jpg COLD_CONC="8 64" JOB=mixed SERVERS="imgcdn ipx" bench/peers.sh  # RSS storm
#
# Env:
#   FILE        corpus file served by the lab origin (default photo-5120x2880.jpg)
#   JOB         jpeg300  (default): widths 290..310, JPEG q80
#               webp1200 : widths 1190..1210, WebP q80
#               mixed    : widths 200..1199, JPEG q80 (the lab's own cold pattern)
#   SERVERS     any of imgcdn imgcdn-nocache ipx thumbor thumbor2 (default "imgcdn ipx thumbor2");
#               imgcdn-nocache = memory and disk tiers off (cache.memory_mb = disk_mb = 0), the
#               transform work alone like the uncached peers; thumbor2 = THUMBOR_PROCS=2
#               The first one is the reference of the ratio table.
#   COLD_CONC   concurrencies (default "2 8"); DURATION s per run (default 20, at most 30)
#   OUT         results folder (default $STATE/results/peers-<time>); one sub-folder per server
#               with the lab's summary.jsonl, raw wrk output and table.md
#   PORT        imgcdn port (default 8000); BUILD=0 skips cargo build --release
#   QUIET_WAIT  passed to the lab's bench.sh (default here 30 s), and its other knobs
# Every URL is new: the source URL gets "?n=<request number>" (the origin ignores it), so
# imgcdn misses its cache and fetches the origin on every request, as the peers (which do not
# cache in the lab) do. Each server is started afresh for each concurrency (the request
# numbers start again at 0, and memory from an earlier run would count in the next); imgcdn
# runs with its default config and a fresh cache dir.
# Output: the combined table (the lab's columns, "others cores" included: rerun a row above
# ~0.3) and a ratio table against imgcdn, on stdout and in $OUT/table.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILE="${FILE:-photo-5120x2880.jpg}"
JOB="${JOB:-jpeg300}"
SERVERS="${SERVERS:-imgcdn ipx thumbor2}"
PORT="${PORT:-8000}"
OUT="${OUT:-$STATE/results/peers-$(date +%Y%m%d-%H%M%S)}"
export QUIET_WAIT="${QUIET_WAIT:-30}" DURATION="${DURATION:-20}"
export COLD_CONC="${COLD_CONC:-2 8}" WARM_CONC=""   # cold runs only
[ -r "$CORPUS/$FILE" ] || die "corpus file $CORPUS/$FILE not found"

case "$JOB" in
  jpeg300)  export WMIN=290 WMAX=310;  imgcdn_opts="w_{w},q_80";        ipx_opts="w_{w},q_80";        thumbor_filters="quality(80)" ;;
  webp1200) export WMIN=1190 WMAX=1210; imgcdn_opts="w_{w},q_80,f_webp"; ipx_opts="w_{w},q_80,f_webp"; thumbor_filters="quality(80):format(webp)" ;;
  mixed)    export WMIN=200 WMAX=1199; imgcdn_opts="w_{w},q_80";        ipx_opts="w_{w},q_80";        thumbor_filters="quality(80)" ;;
  *) die "JOB must be jpeg300, webp1200 or mixed" ;;
esac
SRC="http://127.0.0.1:9000/public/$FILE?n={n}"
# thumbor: the fit-in form never crops (its plain {w}x0 form crops first for some widths and
# then loses Pillow's JPEG draft mode); the others fit the width by default.
pattern() {
  case "$1" in
    imgcdn|imgcdn-nocache) echo "http://127.0.0.1:$PORT/img/$imgcdn_opts/$SRC" ;;
    ipx) echo "http://127.0.0.1:9101/$ipx_opts/$SRC" ;;
    thumbor|thumbor2) echo "http://127.0.0.1:9102/unsafe/fit-in/{w}x0/filters:$thumbor_filters/$SRC" ;;
  esac
}
label() { case "$1" in thumbor2) echo thumbor-2proc ;; *) echo "$1" ;; esac; }

for s in $SERVERS; do
  case "$s" in imgcdn|imgcdn-nocache|ipx|thumbor|thumbor2) ;; *) die "unknown server '$s' (imgcdn imgcdn-nocache ipx thumbor thumbor2)" ;; esac
done
need_quiet_lab
mkdir -p "$OUT"
case " $SERVERS " in *" imgcdn"*) build_imgcdn ;; esac
lab_up origin

# bench SERVER PIDNAME CONC: the lab's bench.sh for one server at one concurrency, into
# $OUT/<label>/c<CONC>; its summary and table rows are appended to $OUT/<label>/
bench() {
  local s=$1 peer=$2 c=$3 lbl dir; lbl=$(label "$s"); dir="$OUT/$lbl"
  log "$lbl c=$c: $(pattern "$s")  (DURATION=$DURATION)"
  mkdir -p "$dir"
  if LABEL="$lbl" OUT="$dir/c$c" COLD_CONC="$c" timeout 900 "$LAB/bench/bench.sh" "$peer" \
       "$(pattern "$s")" >/dev/null; then
    cat "$dir/c$c/summary.jsonl" >>"$dir/summary.jsonl"
    [ -s "$dir/table.md" ] || head -n 2 "$dir/c$c/table.md" >"$dir/table.md"
    tail -n +3 "$dir/c$c/table.md" >>"$dir/table.md"
  else
    log "$lbl c=$c: bench.sh failed (see $dir/c$c)"
  fi
}
# Every run gets freshly started servers: no cache entry, no memory from an earlier run.
for s in $SERVERS; do
  for c in $COLD_CONC; do
    case "$s" in
      imgcdn) start_imgcdn "$PORT" imgcdn; bench imgcdn imgcdn "$c"; stop_imgcdn ;;
      imgcdn-nocache)
        IMGCDN_CACHE__MEMORY_MB=0 IMGCDN_CACHE__DISK_MB=0 start_imgcdn "$PORT" imgcdn
        bench imgcdn-nocache imgcdn "$c"; stop_imgcdn ;;
      ipx) lab_up ipx; bench ipx ipx "$c"; lab_down ipx ;;
      thumbor) THUMBOR_PROCS=1 lab_up thumbor; bench thumbor thumbor "$c"; lab_down thumbor ;;
      thumbor2) THUMBOR_PROCS=2 lab_up thumbor; bench thumbor2 thumbor "$c"; lab_down thumbor ;;
    esac
  done
done

{
  echo "### $FILE, $JOB (widths $WMIN..$WMAX), cold, DURATION=${DURATION}s, COLD_CONC='$COLD_CONC'"
  echo
  first=1
  for s in $SERVERS; do
    t="$OUT/$(label "$s")/table.md"
    [ -s "$t" ] || { echo "(no table for $(label "$s"))"; continue; }
    if [ $first = 1 ]; then cat "$t"; first=0; else tail -n +3 "$t"; fi
  done
  echo
  python3 "$ROOT/bench/ratios.py" "$OUT" $(for s in $SERVERS; do label "$s"; done)
} | tee "$OUT/table.md"
log "raw results: $OUT"
