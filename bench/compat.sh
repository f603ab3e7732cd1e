#!/usr/bin/env bash
# What do the [compat] routes (other servers' URL dialects) cost next to the
# native /img/ route? Two parts, measured in one run against one imgcdn:
#
#   bench/compat.sh                               # from anywhere; runs from the repo root
#   DURATION=5 OUT=/tmp/compat-bench bench/compat.sh
#
# What it does (loopback only, every run bounded, one imgcdn, no peers):
#   1. cargo build --release (BUILD=0 skips it; the binary is ${CARGO_TARGET_DIR:-target}/release/imgcdn);
#      waits until no rustc/cargo process runs (up to 10 min, skip with NO_WAIT=1);
#   2. starts imgcdn on 127.0.0.1:$PORT with a throw-away cache dir and every dialect mounted
#      (IMGCDN_COMPAT__IPX=/_ipx, __IMGPROXY=/imgproxy, __THUMBOR=/thumbor,
#      __NEXTJS=/_next/image, __CLOUDFLARE=/cdn-cgi/image); its log goes to a file;
#   3. verification, one rendition (photo-2560x1600.jpg -> 300 px wide, q 80, WebP): the native
#      URL first (a MISS), then each dialect URL twice with curl: the first answer shows whether
#      it found the native URL's entry (HIT) or rendered its own (MISS), the second must be 200,
#      "X-Cache: HIT memory", with the native URL's bytes. Next.js is f_auto: it is paired with
#      the native f_auto URL, both sent with "Accept: image/webp";
#   4. memory-tier hits: wrk -t2 -c$CONNS --latency per URL (WARMUP s unrecorded first, then
#      DURATION s), native runs interleaved between the dialect runs (native, ipx, native,
#      imgproxy, ..., native-auto, nextjs, native-auto), so each dialect is compared with the
#      mean of the two native runs next to it; each run is checked to still be a memory hit;
#   5. cold renders: N distinct uncached JPEG renditions (q 80) per route, native, IPX and
#      imgproxy, requested one at a time with curl; the server's CPU time (utime+stime of every
#      thread, /proc/<pid>/stat, / CLK_TCK) over each block of N, per job. Widths are
#      interleaved over 321-3N..320 (native 261, 264, ...; IPX 262, ...; imgproxy 263, ...
#      for N=20) so every route gets the same size mix and every target is <= 1/8 of the
#      2560x1600 source: libjpeg-turbo's 1/8 DCT shrink-on-load is used (321 px and up would
#      decode at 1/4). One unrecorded render per route first (widths 257-259). Then the
#      libjpeg-turbo floor: hyperfine --warmup 3 --runs 30 'djpeg -scale 1/8 ...' (mean);
#   6. prints the markdown tables (also $OUT/table.md when OUT is set).
#
# Env:
#   PORT        imgcdn port (default 8012)
#   DURATION    seconds per measured wrk run (default 5, at most 30)
#   WARMUP      seconds of unrecorded wrk before each run (default 1, 0 = none)
#   CONNS       wrk connections (default 64)
#   N           cold renditions per route (default 20, 1..80)
#   NO_WAIT=1   skip the wait for rustc/cargo to finish
#   KEEP_TMP=1  keep the temp dir (imgcdn log, raw wrk and hyperfine output)
#   OUT         also write the table, the tsv files and the raw output there (folder)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- settings ------------------------------------------------------------------------------
PORT="${PORT:-8012}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONNS="${CONNS:-64}"
N="${N:-20}"
NO_WAIT="${NO_WAIT:-0}"
KEEP_TMP="${KEEP_TMP:-0}"
OUT="${OUT:-}"
THREADS=2
SOURCE_FILE=photo-2560x1600.jpg
ACCEPT_WEBP="Accept: image/webp"

for v in DURATION WARMUP CONNS N; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer"
done
[ "$DURATION" -ge 1 ] || die "DURATION must be at least 1 (seconds)"
if [ "$DURATION" -gt 30 ]; then log "DURATION=$DURATION capped at 30 s"; DURATION=30; fi
[ "$CONNS" -ge "$THREADS" ] || die "CONNS must be at least $THREADS"
if [ "$N" -lt 1 ] || [ "$N" -gt 80 ]; then die "N must be 1..80"; fi
for tool in wrk curl hyperfine djpeg jq getconf; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
[ -r "images/$SOURCE_FILE" ] || die "images/$SOURCE_FILE not found"
if port_busy "$PORT"; then die "port $PORT is already in use"; fi

# --- cleanup: the temp dir; lib.sh stops imgcdn --------------------------------------------
TMP="$(mktemp -d -t imgcdn-compat.XXXXXX)"
cleanup_compat() {
  if [ -d "$TMP" ]; then
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
}
BENCH_EXIT_HOOKS+=(cleanup_compat)
mkdir -p "$TMP/wrk" "$TMP/bodies"

# --- routes ---------------------------------------------------------------------------------
export IMGCDN_COMPAT__IPX=/_ipx IMGCDN_COMPAT__IMGPROXY=/imgproxy IMGCDN_COMPAT__THUMBOR=/thumbor \
  IMGCDN_COMPAT__NEXTJS=/_next/image IMGCDN_COMPAT__CLOUDFLARE=/cdn-cgi/image
declare -A PATHS=(
  [native]="/img/w_300,q_80,f_webp/$SOURCE_FILE"
  [ipx]="/_ipx/w_300&q_80&f_webp/$SOURCE_FILE"
  [imgproxy]="/imgproxy/insecure/f:webp/q:80/w:300/plain/local:///$SOURCE_FILE"
  [thumbor]="/thumbor/unsafe/fit-in/300x0/filters:quality(80):format(webp)/$SOURCE_FILE"
  [cloudflare]="/cdn-cgi/image/w=300,q=80,f=webp/$SOURCE_FILE"
  [native-auto]="/img/w_300,q_80,f_auto/$SOURCE_FILE"
  [nextjs]="/_next/image?url=%2F$SOURCE_FILE&w=300&q=80"
)
# the native URL each route is compared with (same rendition, same request headers)
base_of() { case "$1" in nextjs|native-auto) echo native-auto ;; *) echo native ;; esac; }
# request headers of a route (f_auto routes negotiate WebP from Accept)
accept_of() { case "$1" in nextjs|native-auto) echo "$ACCEPT_WEBP" ;; *) echo "" ;; esac; }
url_of() { echo "http://127.0.0.1:$PORT${PATHS[$1]}"; }
# cold renditions: route WIDTH -> path (JPEG, q 80)
cold_path() {
  case "$1" in
    native) echo "/img/w_$2,q_80,f_jpeg/$SOURCE_FILE" ;;
    ipx) echo "/_ipx/w_$2&q_80&f_jpeg/$SOURCE_FILE" ;;
    imgproxy) echo "/imgproxy/insecure/f:jpeg/q:80/w:$2/plain/local:///$SOURCE_FILE" ;;
    *) die "cold_path: unknown route $1" ;;
  esac
}

# fetch URL FILE [HEADER]: body into FILE; prints "code<TAB>bytes<TAB>x-cache<TAB>content-type
# <TAB>server-timing<TAB>seconds" (empty fields as "-")
fetch() {
  local url=$1 file=$2 hdr=${3:-}
  local args=(-sS -g --path-as-is --max-time 30 -o "$file" -D "$file.h"
    -w '%{http_code}\t%{size_download}\t%{time_total}')
  [ -z "$hdr" ] || args+=(-H "$hdr")
  local w; w=$(curl "${args[@]}" "$url") || w=$'000\t0\t0'
  local code size secs; IFS=$'\t' read -r code size secs <<<"$w"
  local xc ct st
  xc=$(tr -d '\r' <"$file.h" 2>/dev/null | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
  ct=$(tr -d '\r' <"$file.h" 2>/dev/null | awk -F': ' 'tolower($1)=="content-type"{print $2}')
  st=$(tr -d '\r' <"$file.h" 2>/dev/null | awk -F': ' 'tolower($1)=="server-timing"{print $2}')
  rm -f "$file.h"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$code" "$size" "${xc:--}" "${ct:--}" "${st:--}" "$secs"
}

HZ=$(getconf CLK_TCK)
# cpu_ticks -> utime+stime (clock ticks) of imgcdn, all threads
cpu_ticks() { awk '{print $14 + $15}' "/proc/$IMGCDN_PID/stat"; }
# to_ms "1.23ms" / "850.00us" / "1.02s" -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "NaN"; exit }
    printf "%.3f", n * f }'
}

# --- 1. build, wait for a quiet machine -----------------------------------------------------
build_imgcdn
wait_for_builds
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 2. imgcdn with every dialect -------------------------------------------------------------
start_imgcdn "$PORT"

# --- 3. verification ------------------------------------------------------------------------
# verify.tsv: route, first code, first x-cache, second code, second x-cache, content-type,
# bytes, compared with, same bytes, verdict
ORDER=(native ipx imgproxy thumbor cloudflare native-auto nextjs)
declare -A OK=()
: >"$TMP/verify.tsv"
for r in "${ORDER[@]}"; do
  url=$(url_of "$r"); hdr=$(accept_of "$r"); b=$(base_of "$r")
  IFS=$'\t' read -r c1 _ x1 _ _ _ < <(fetch "$url" "$TMP/bodies/$r-1" "$hdr")
  IFS=$'\t' read -r c2 size2 x2 ct2 _ _ < <(fetch "$url" "$TMP/bodies/$r" "$hdr")
  verdict=ok; same=-; with=-
  if [ "$r" != native ]; then
    with=$b
    [ "$r" = native-auto ] && with=native    # f_auto + Accept webp vs f_webp: reported, not required
    if cmp -s "$TMP/bodies/$r" "$TMP/bodies/$with"; then same=yes; else same=no; fi
  fi
  [ "$c1" = 200 ] && [ "$c2" = 200 ] || verdict="FAILED (status $c1/$c2)"
  if [ "$verdict" = ok ] && [ "$x2" != "HIT memory" ]; then verdict="second request not a memory hit"; fi
  if [ "$verdict" = ok ] && [ "$ct2" != image/webp ]; then verdict="content-type $ct2"; fi
  if [ "$verdict" = ok ] && [ "$same" = no ] && [ "$r" != native-auto ]; then verdict="bytes differ from $with"; fi
  if [ "$verdict" = ok ] && [ "$r" != native ] && [ "$r" != native-auto ] && [ "$x1" != "HIT memory" ]; then
    verdict="own entry (first request $x1, not the $b entry)"
  fi
  case "$verdict" in ok|own*) OK[$r]=1 ;; esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c1" "$x1" "$c2" "$x2" "$ct2" "$size2" \
    "$with" "$same" "$verdict" >>"$TMP/verify.tsv"
  log "verify $r: $c1 $x1, then $c2 $x2, $ct2, $size2 bytes, same as $with: $same ($verdict)"
done
[ -n "${OK[native]:-}" ] || die "the native URL fails; nothing to compare with"

# --- 4. memory-tier hits, interleaved -------------------------------------------------------
SEQ=(native)
for r in ipx imgproxy thumbor cloudflare; do
  if [ -n "${OK[$r]:-}" ]; then SEQ+=("$r" native); else log "skipping $r in the load runs (verification failed)"; fi
done
if [ -n "${OK[native-auto]:-}" ]; then
  SEQ+=(native-auto)
  if [ -n "${OK[nextjs]:-}" ]; then SEQ+=(nextjs native-auto); else log "skipping nextjs in the load runs"; fi
fi

# run_hit INDEX ROUTE: warm-up, one bounded wrk run; appends to hits.tsv
: >"$TMP/hits.tsv"
run_hit() {
  local i=$1 r=$2 url hdr out="$TMP/wrk/$1-$2.txt" t0 t1 wargs=()
  url=$(url_of "$r"); hdr=$(accept_of "$r")
  [ -z "$hdr" ] || wargs=(-H "$hdr")
  if [ "$WARMUP" -gt 0 ]; then
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${wargs[@]}" "$url" >/dev/null 2>&1
  fi
  log "run $i: $r, ${DURATION} s"
  t0=$(cpu_ticks)
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${wargs[@]}" "$url" >"$out" 2>&1
  t1=$(cpu_ticks)
  local code xc note=""
  IFS=$'\t' read -r code _ xc _ _ _ < <(fetch "$url" "$TMP/after" "$hdr")
  [ "$code" = 200 ] && [ "$xc" = "HIT memory" ] || note="after the run: $code, X-Cache '$xc'; "
  local rps reqs p50 p99 errors non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  [ -n "$rps" ] || { cat "$out" >&2; die "wrk gave no result for $r"; }
  reqs=$(awk '/requests in/ {print $1; exit}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  errors=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  builds_running && note+="build running at the end; "
  note+="${errors:+socket errors: $errors; }${non2xx:+non-2xx: $non2xx; }"
  # server CPU: cores busy, and microseconds per request
  local cores us
  read -r cores us < <(awk -v t="$((t1 - t0))" -v hz="$HZ" -v d="$DURATION" -v n="$reqs" \
    'BEGIN { printf "%.2f %.1f\n", t / hz / d, (n > 0 ? t / hz * 1e6 / n : 0) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$r" "$rps" "$p50" "$p99" "$cores" "$us" \
    "$(base_of "$r")" "${note%; }" >>"$TMP/hits.tsv"
}
for i in "${!SEQ[@]}"; do run_hit "$((i + 1))" "${SEQ[$i]}"; done

# --- 5. cold renders: server CPU per job, and the libjpeg-turbo floor -----------------------
COLD=(native ipx imgproxy)
W0=$((321 - 3 * N))
: >"$TMP/cold.tsv"
for j in "${!COLD[@]}"; do     # one unrecorded render per route (first-use costs)
  r=${COLD[$j]}
  IFS=$'\t' read -r code _ xc _ _ _ < <(fetch "http://127.0.0.1:$PORT$(cold_path "$r" $((W0 - 4 + j)))" "$TMP/cold-warm")
  [ "$code" = 200 ] || die "cold warm-up of $r answered $code"
done
for j in "${!COLD[@]}"; do
  r=${COLD[$j]}
  : >"$TMP/cold-$r.tsv"
  sleep 0.5                    # let earlier background work (cache writes) finish
  t0=$(cpu_ticks)
  for ((k = 0; k < N; k++)); do
    w=$((W0 + 3 * k + j))
    fetch "http://127.0.0.1:$PORT$(cold_path "$r" "$w")" "$TMP/cold-body" >>"$TMP/cold-$r.tsv"
  done
  sleep 0.5                    # the last job's cache write, after the response
  t1=$(cpu_ticks)
  # code, bytes, x-cache, content-type, server-timing, seconds -> one row per route
  awk -F'\t' -v r="$r" -v t="$((t1 - t0))" -v hz="$HZ" -v n="$N" -v ex="$(cold_path "$r" "$((W0 + j))")" '
    function dur(s, name,   m) { return match(s, name ";dur=[0-9.]+") ? substr(s, RSTART + length(name) + 5, RLENGTH - length(name) - 5) + 0 : 0 }
    { ok += ($1 == 200); miss += ($3 == "MISS"); jpeg += ($4 == "image/jpeg"); wall += $6
      de += dur($5, "decode"); rs += dur($5, "resize"); en += dur($5, "encode") }
    END { printf "%s\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", r, ex, n, ok, miss, jpeg,
            t / hz * 1000 / n, wall * 1000 / n, de / n, rs / n, en / n }' "$TMP/cold-$r.tsv" >>"$TMP/cold.tsv"
  log "cold $r: $(tail -n1 "$TMP/cold.tsv" | cut -f3-)"
done
log "hyperfine: djpeg -scale 1/8 (libjpeg-turbo floor)"
DJPEG_CMD="djpeg -scale 1/8 -outfile /dev/null images/$SOURCE_FILE"
hyperfine --warmup 3 --runs 30 --export-json "$TMP/djpeg.json" "$DJPEG_CMD" >"$TMP/hyperfine.txt" 2>&1 \
  || { cat "$TMP/hyperfine.txt" >&2; die "hyperfine failed"; }
read -r DJ_MEAN DJ_SD DJ_CPU < <(jq -r '.results[0] | "\(.mean * 1000) \(.stddev * 1000) \((.user + .system) * 1000)"' "$TMP/djpeg.json")
DJ_VERSION=$(djpeg -version 2>&1 | head -n1)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 6. report -------------------------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
  echo "### Compat routes vs native /img/, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($CPU_MODEL), loopback"
  echo
  machine_md | grep -v '^- peers'
  echo "- load average at the end: $LOAD_END (at the start of the measurements: $LOAD_START)"
  [ "$QUIET" = yes ] || echo "- WARNING: rustc/cargo was still running when the runs started"
  echo
  echo "#### Same rendition in every dialect ($SOURCE_FILE -> 300 px wide, q 80, WebP)"
  echo
  echo "Fresh cache; each URL requested twice with curl, in this order. \"first\" shows whether a dialect found the native URL's entry (HIT memory) or rendered its own (MISS)."
  echo
  echo "| route | URL | first | second | content-type | bytes | same bytes as | verdict |"
  echo "|---|---|---|---|---|---:|---|---|"
  while IFS=$'\t' read -r r c1 x1 c2 x2 ct size with same verdict; do
    hdr=$(accept_of "$r")
    printf '| %s | `%s`%s | %s %s | %s %s | %s | %s | %s | %s |\n' "$r" "${PATHS[$r]}" \
      "${hdr:+ + $hdr}" "$c1" "$x1" "$c2" "$x2" "$ct" "$size" \
      "$([ "$with" = - ] && echo - || echo "$with: $same")" "$verdict"
  done <"$TMP/verify.tsv"
  echo
  echo "#### Memory-tier hits: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, keep-alive, ${WARMUP} s unrecorded warm-up per run, one server, runs in this order"
  echo
  echo "| run | route | req/s | p50 ms | p99 ms | server cores | server CPU us/req | notes |"
  echo "|---:|---|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '{printf "| %s | %s | %.0f | %.3f | %.3f | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $9}' "$TMP/hits.tsv"
  echo
  echo "Each dialect against the mean of the native runs just before and after it (Next.js against native f_auto, both with \`$ACCEPT_WEBP\`):"
  echo
  echo "| dialect | compared with | req/s | native req/s (mean of neighbours) | **req/s ratio** | p99 ms | native p99 ms | p99 ratio | CPU us/req | native CPU us/req |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '
    { idx[NR] = $1; route[NR] = $2; rps[NR] = $3; p99[NR] = $5; us[NR] = $7; base[NR] = $8 }
    END {
      for (i = 1; i <= NR; i++) {
        if (route[i] == base[i]) continue
        n = 0; sr = 0; sp = 0; su = 0
        for (j = i - 1; j >= 1; j--) if (route[j] == base[i]) { sr += rps[j]; sp += p99[j]; su += us[j]; n++; break }
        for (j = i + 1; j <= NR; j++) if (route[j] == base[i]) { sr += rps[j]; sp += p99[j]; su += us[j]; n++; break }
        if (n == 0) continue
        printf "| %s | %s (runs %d) | %.0f | %.0f | **%.3f** | %.3f | %.3f | %.2f | %.1f | %.1f |\n",
          route[i], base[i], n, rps[i], sr / n, rps[i] / (sr / n), p99[i], sp / n, p99[i] / (sp / n), us[i], su / n
      }
    }' "$TMP/hits.tsv"
  awk -F'\t' '$2 == "native" { s += $3; n++; if (min == "" || $3 < min) min = $3; if ($3 > max) max = $3 }
    END { if (n > 1) printf "\nnative runs: %d, req/s %.0f..%.0f (spread %.1f%% of the mean: the run-to-run noise)\n", n, min, max, (max - min) * 100 / (s / n) }' "$TMP/hits.tsv"
  echo
  echo "#### Cold renders: server CPU per job (JPEG q 80, widths $W0..320 interleaved across routes, all <= 1/8 of 2560 px: 1/8 shrink-on-load)"
  echo
  echo "$N distinct uncached renditions per route, one request at a time with curl; CPU = utime+stime of the imgcdn process (all threads, /proc/$IMGCDN_PID/stat, CLK_TCK=$HZ) over the block of $N, / $N. Decode/resize/encode are the Server-Timing stage wall times (means). Floor: \`$DJPEG_CMD\` ($DJ_VERSION), hyperfine --warmup 3 --runs 30, mean wall time $(printf '%.3f' "$DJ_MEAN") ms (sd $(printf '%.3f' "$DJ_SD") ms; user+sys $(printf '%.3f' "$DJ_CPU") ms), process start-up included."
  echo
  echo "| route | first URL | jobs | 200 | MISS | image/jpeg | **server CPU ms/job** | **x djpeg floor** | wall ms/request | decode ms | resize ms | encode ms |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' -v f="$DJ_MEAN" '{printf "| %s | `%s` | %d | %d | %d | %d | **%.2f** | **%.2f** | %.2f | %.2f | %.2f | %.2f |\n", $1, $2, $3, $4, $5, $6, $7, $7 / f, $8, $9, $10, $11}' "$TMP/cold.tsv"
  printf '| djpeg -scale 1/8 (floor) | - | 30 | - | - | - | %.3f (wall mean) | 1.00 | - | - | - | - |\n' "$DJ_MEAN"
  echo
  awk -F'\t' 'NR == 1 { n = $7 } NR > 1 && n > 0 { printf "- %s/native CPU per job: %.3f\n", $1, $7 / n }' "$TMP/cold.tsv"
} >"$TMP/table.md"
cat "$TMP/table.md"
if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  cp "$TMP/table.md" "$TMP/verify.tsv" "$TMP/hits.tsv" "$TMP/cold.tsv" "$TMP"/cold-*.tsv \
    "$TMP/djpeg.json" "$TMP/hyperfine.txt" "$OUT/"
  mkdir -p "$OUT/wrk"; cp "$TMP"/wrk/*.txt "$OUT/wrk/"
  cp "$IMGCDN_LOG" "$OUT/imgcdn.log" 2>/dev/null || true
  log "results in $OUT"
fi
