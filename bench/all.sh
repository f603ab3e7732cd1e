#!/usr/bin/env bash
# Every issue-5 comparison in sequence, into one markdown report. One server at a time, all
# on loopback, every run bounded (about 20 min with the defaults on a quiet host, 10 min with
# DURATION=10; longer when the host is busy and bench.sh waits for quiet, QUIET_WAIT per run).
#
#   bench/all.sh                                   # everything, DURATION=20
#   DURATION=10 SECTIONS="cold hits" bench/all.sh  # a short run of some sections
#
# Sections (SECTIONS, default all, in this order):
#   djpeg        the libjpeg-turbo floor in this run: hyperfine of `djpeg -scale 1/8` and
#                `-scale 1/4` of each benchmark file (process start included), so every CPU
#                figure below can be read as a ratio of it on this CPU
#   cold         photo-5120x2880.jpg -> ~300 px JPEG q80 and -> 1200 px WebP q80, c=2 and 8:
#                imgcdn vs IPX vs thumbor with two processes            (bench/peers.sh)
#   progressive  art-5640x3172.jpg and art-3840x2160.jpg -> ~300 px, c=2 (PROG_CONC): vs IPX
#   hits         a ~20 KB memory-tier hit, 64 keep-alive connections vs nginx static
#                                                                       (bench/cache-hits.sh)
#   storm        peak RSS, widths 200..1199, c=8 and 64 (STORM_CONC) on photo-5120x2880.jpg
#                and art-5640x3172.jpg: imgcdn (default config, then with its cache tiers
#                off, to tell the cache's memory from the transforms') vs IPX
#   floor        cargo bench --bench pipeline: pipeline vs libjpeg-turbo floor, in-process
# Env: DURATION (s per load run, default 20, at most 30), QUIET_WAIT (s bench.sh may wait for
#      a quiet host before each run, default 60), REPORT_DIR (default
#      $STATE/results/all-<time>), BUILD=0 (skip cargo build --release), CARGO_TARGET_DIR,
#      IMGCDN_* (passed to imgcdn, e.g. IMGCDN_CACHE__MEMORY_MB=64), NO_WAIT=1 (cache-hits.sh
#      does not wait for rustc/cargo to finish), FLOOR_ARGS (criterion arguments, e.g. a
#      name filter: FLOOR_ARGS=photo-5120).
# Output: $REPORT_DIR/report.md (machine, commands, every table, ratios, the targets), and
# one folder per section with the raw results.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECTIONS="${SECTIONS:-djpeg cold progressive hits storm floor}"
export DURATION="${DURATION:-20}" QUIET_WAIT="${QUIET_WAIT:-60}"
PROG_CONC="${PROG_CONC:-2}" STORM_CONC="${STORM_CONC:-8 64}"
REPORT_DIR="${REPORT_DIR:-$STATE/results/all-$(date +%Y%m%d-%H%M%S)}"
REPORT="$REPORT_DIR/report.md"
for s in $SECTIONS; do
  case "$s" in djpeg|cold|progressive|hits|storm|floor) ;; *) die "unknown section '$s'" ;; esac
done
need_quiet_lab
mkdir -p "$REPORT_DIR"
build_imgcdn
export BUILD=0     # the scripts below use this build
case " $SECTIONS " in *" cold "*|*" progressive "*|*" storm "*) lab_up origin ;; esac
START=$(date +%s)

{
  echo "# imgcdn benchmark report ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  machine_md
  echo "- run: \`SECTIONS=\"$SECTIONS\" DURATION=$DURATION QUIET_WAIT=$QUIET_WAIT bench/all.sh\`; raw results in \`$REPORT_DIR\`"
  echo
  echo "Columns of the server tables are the lab's (\`../shared/lab/README.md\`): server CPU ms/req"
  echo "is the steadiest number; **others cores** is the CPU everything else used during the run"
  echo "(wrk, the origin, other sessions): above ~0.3 the row is noisy. Every URL is new"
  echo "(\`?n=<request number>\` on the source), so \"distinct URLs\" (widths only) undercounts."
  echo "Ratios are imgcdn / peer."
  echo
} >"$REPORT"

# section TITLE CMD...: run one script into the report (its stdout is the table)
section() {
  local title=$1; shift
  log "== $title"
  { echo "## $title"; echo; echo "\`$*\`"; echo; } >>"$REPORT"
  if ! "$@" >>"$REPORT"; then echo "(this run failed; see the log on stderr)" >>"$REPORT"; fi
  echo >>"$REPORT"
}
peers() {  # peers DIR FILE JOB SERVERS CONC
  env OUT="$REPORT_DIR/$1" FILE="$2" JOB="$3" SERVERS="$4" COLD_CONC="$5" \
    "$ROOT/bench/peers.sh"
}

# djpeg_floor: a markdown table of djpeg's scaled decodes of the benchmark files (hyperfine).
djpeg_floor() {
  local f scale json
  command -v hyperfine >/dev/null || { log "hyperfine not found (apt-get install hyperfine)"; return 1; }
  command -v djpeg >/dev/null || { log "djpeg not found (apt-get install libjpeg-turbo-progs)"; return 1; }
  mkdir -p "$REPORT_DIR/djpeg"
  echo "| file | \`djpeg -scale\` | mean wall ms | user+sys ms |"
  echo "|---|---|---|---|"
  for f in photo-5120x2880.jpg art-5640x3172.jpg art-3840x2160.jpg; do
    if [ ! -r "$CORPUS/$f" ]; then log "skipping $f: not in $CORPUS"; continue; fi
    for scale in 1/8 1/4; do
      json="$REPORT_DIR/djpeg/${f%.jpg}-${scale/\//of}.json"
      hyperfine -N --warmup 3 --runs 30 --export-json "$json" \
        "djpeg -scale $scale -outfile /dev/null $CORPUS/$f" >/dev/null 2>&1 || return 1
      python3 - "$json" "$f" "$scale" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['mean'] * 1e3:.1f} | {(r['user'] + r['system']) * 1e3:.1f} |")
PY
    done
  done
  echo
  echo "libjpeg-turbo $(djpeg -version 2>&1 | head -n1 | sed 's/^libjpeg-turbo version //'); hyperfine --warmup 3 --runs 30, no shell."
}

for s in $SECTIONS; do
  case "$s" in
    djpeg)
      section "Floor: libjpeg-turbo scaled decode (djpeg, this run)" djpeg_floor ;;
    cold)
      section "Cold: photo-5120x2880.jpg -> ~300 px JPEG q80" \
        peers cold-jpeg300 photo-5120x2880.jpg jpeg300 "imgcdn ipx thumbor2" "2 8"
      section "Cold: photo-5120x2880.jpg -> 1200 px WebP q80" \
        peers cold-webp1200 photo-5120x2880.jpg webp1200 "imgcdn ipx thumbor2" "2 8" ;;
    progressive)
      for f in art-5640x3172.jpg art-3840x2160.jpg; do
        section "Progressive: $f -> ~300 px JPEG q80" \
          peers "prog-${f%.jpg}" "$f" jpeg300 "imgcdn ipx" "$PROG_CONC"
      done ;;
    hits)
      section "Cache hits: ~20 KB, 64 connections, keep-alive, vs nginx static" \
        env OUT="$REPORT_DIR/hits" "$ROOT/bench/cache-hits.sh" ;;
    storm)
      for f in photo-5120x2880.jpg art-5640x3172.jpg; do
        section "Cold storm (peak RSS): $f, widths 200..1199" \
          peers "storm-${f%.jpg}" "$f" mixed "imgcdn imgcdn-nocache ipx" "$STORM_CONC"
      done ;;
    floor)
      mkdir -p "$REPORT_DIR/floor"
      floor() {   # criterion's output to a file; the final markdown table to the report
        # shellcheck disable=SC2086  # FLOOR_ARGS: criterion arguments, e.g. a name filter
        cargo bench --bench pipeline -- ${FLOOR_ARGS:-} >"$REPORT_DIR/floor/criterion.txt" 2>&1 || return 1
        sed -n '/^| job |/,$p' "$REPORT_DIR/floor/criterion.txt" | tee "$REPORT_DIR/floor/table.md"
        echo
        echo "In-process, one thread, median of criterion's samples (sample size 10); ms per job."
        echo "Floor = turbojpeg scaled decode at the same shrink + the same encoder on the output size."
      }
      section "Pipeline vs libjpeg-turbo floor (cargo bench)" floor ;;
  esac
done

{
  echo "## Issue-5 targets"
  echo
  python3 "$ROOT/bench/ratios.py" --targets "$REPORT_DIR"
  echo
  echo "Total time: $(( ($(date +%s) - START) / 60 )) min. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} >>"$REPORT"
log "report: $REPORT"
cat "$REPORT"
