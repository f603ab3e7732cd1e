#!/usr/bin/env bash
# Cache-hit throughput of imgcdn against Debian nginx serving the very same bytes as a static
# file: how close does a memory-tier hit come to the cheapest possible static answer?
#
#   bench/cache-hits.sh                       # from anywhere; runs from the repo root
#   DURATION=20 NO_WAIT=1 bench/cache-hits.sh
#
# What it does (loopback only, every run bounded, one server running at a time):
#   1. cargo build --release (BUILD=0 skips it; the binary is ${CARGO_TARGET_DIR:-target}/release/imgcdn);
#   2. starts imgcdn on 127.0.0.1:$PORT with a throw-away cache dir, serving ./images, and
#      picks a rendered result of 15-25 KB (/img/w_<W>,q_80/photo-2560x1600.jpg, W adjusted
#      from 400), checks that it answers "X-Cache: HIT memory" and saves its bytes; stops it;
#   3. writes an nginx config (2 workers, sendfile, the access log on like imgcdn's unless
#      ACCESS_LOG=0) serving those bytes as /hit.jpg on 127.0.0.1:$NGINX_PORT, every nginx
#      path inside the temp dir;
#   4. waits until no rustc/cargo process runs on the machine (numbers taken during a build
#      are useless; up to 10 min, skip with NO_WAIT=1);
#   5. four rounds, imgcdn, nginx, nginx, imgcdn (the second pair in the opposite order
#      cancels drift); each round starts its server (imgcdn primed until the URL is a memory
#      hit), runs an unrecorded warm-up and then wrk -t2 -c64 --latency, reads the server's
#      peak RSS (VmHWM, workers summed for nginx) and stops it;
#   6. prints a markdown table (also $OUT/table.md when OUT is set), the ratio imgcdn req/s /
#      nginx req/s (mean of both rounds) and imgcdn's p99.
#
# Env:
#   PORT        imgcdn port (default 8010)          NGINX_PORT  nginx port (default 8011)
#   DURATION    seconds per measured run (default 10, at most 30)
#   CONNS       wrk connections (default 64; the issue-5 target); CONNS=8 shows latency below saturation
#   WARMUP      seconds of unrecorded wrk per round before measuring (default 2, 0 = none)
#   NO_WAIT=1   skip the wait for rustc/cargo to finish
#   KEEP_TMP=1  keep the temp dir (logs, raw wrk output) instead of removing it
#   OUT         also write the table, results.tsv and the raw wrk output there (folder)
#   ACCESS_LOG  1 (default): both servers log every request, imgcdn at RUST_LOG=info (its
#               default: one line a request) into its log file, nginx its default combined
#               access log into the temp dir; 0: neither logs requests (RUST_LOG=warn,
#               access_log off)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- settings ------------------------------------------------------------------------------
PORT="${PORT:-8010}"
NGINX_PORT="${NGINX_PORT:-8011}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
NO_WAIT="${NO_WAIT:-0}"
KEEP_TMP="${KEEP_TMP:-0}"
OUT="${OUT:-}"
ACCESS_LOG="${ACCESS_LOG:-1}"
case "$ACCESS_LOG" in
  1) export RUST_LOG=info ;;
  0) export RUST_LOG=warn ;;
  *) echo "ACCESS_LOG must be 0 or 1" >&2; exit 2 ;;
esac
NGINX=/usr/sbin/nginx
SOURCE_FILE=photo-2560x1600.jpg
THREADS=2
CONNS="${CONNS:-64}"

if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 1 ]; then
  die "DURATION must be a positive integer (seconds)"
fi
if [ "$DURATION" -gt 30 ]; then
  log "DURATION=$DURATION capped at 30 s"; DURATION=30
fi
for tool in wrk curl cargo "$NGINX"; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
for p in "$PORT" "$NGINX_PORT"; do
  if port_busy "$p"; then die "port $p is already in use"; fi
done

# --- cleanup: nginx (ours, by pid) and the temp dir; lib.sh stops imgcdn -------------------
TMP="$(mktemp -d -t imgcdn-cache-hits.XXXXXX)"
NGINX_PID=""
cleanup_hits() {
  stop_pid "$NGINX_PID"     # nginx master; it takes its workers down on TERM
  if [ -d "$TMP" ]; then
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
}
BENCH_EXIT_HOOKS+=(cleanup_hits)
chmod 755 "$TMP"                      # nginx workers (user nobody when run as root) read www/
mkdir -p "$TMP/www" "$TMP/nginx-tmp" "$TMP/wrk"

# --- 1-2. build, imgcdn ----------------------------------------------------------------------
build_imgcdn
start_imgcdn "$PORT"

# --- 3. a result of 15-25 KB, cached in memory ------------------------------------------
# Size grows roughly with the pixel count (width squared), so rescale the width by
# sqrt(20 KB / size) until the body lands in range (a few tries at most).
fetch() {  # fetch URL into FILE; prints "<status> <bytes> <x-cache>"
  curl -sS -o "$2" -D "$2.h" -w '%{http_code} %{size_download}' "$1"
  printf ' %s\n' "$(tr -d '\r' <"$2.h" | awk -F': ' 'tolower($1)=="x-cache"{print $2}')"
  rm -f "$2.h"
}
WIDTH=400
for try in $(seq 8); do
  URL="http://127.0.0.1:$PORT/img/w_$WIDTH,q_80/$SOURCE_FILE"
  read -r code size xcache < <(fetch "$URL" "$TMP/probe.jpg")
  [ "$code" = 200 ] || die "$URL answered $code"
  log "w_$WIDTH: $size bytes (X-Cache: $xcache)"
  if [ "$size" -ge 15000 ] && [ "$size" -le 25000 ]; then break; fi
  [ "$try" -lt 8 ] || die "no width gives 15-25 KB"
  WIDTH=$(awk -v w="$WIDTH" -v s="$size" 'BEGIN { printf "%d", w * sqrt(20000 / s) }')
done
SIZE=$size
IMGCDN_URL="$URL"
# prime_imgcdn: request the URL until it is a memory hit with the bytes of the first miss
prime_imgcdn() {
  local code size xcache
  for _ in 1 2 3; do
    read -r code size xcache < <(fetch "$IMGCDN_URL" "$TMP/hit-check.jpg")
    [ "$xcache" = "HIT memory" ] && break
  done
  if [ "$code" != 200 ] || [ "$xcache" != "HIT memory" ]; then
    die "imgcdn answered $code, X-Cache '$xcache' (want 200, HIT memory)"
  fi
  cmp -s "$TMP/probe.jpg" "$TMP/hit-check.jpg" || die "hit bytes differ from the miss"
}
prime_imgcdn
cp "$TMP/probe.jpg" "$TMP/www/hit.jpg"
chmod 644 "$TMP/www/hit.jpg"
log "picked $IMGCDN_URL: $SIZE bytes"
stop_imgcdn

# --- 4. nginx serving the same bytes ---------------------------------------------------------
cat >"$TMP/nginx.conf" <<NGINX
# Generated by bench/cache-hits.sh: static baseline on the same 2 cores.
daemon off;
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path       $TMP/nginx-tmp/proxy;
    fastcgi_temp_path     $TMP/nginx-tmp/fastcgi;
    uwsgi_temp_path       $TMP/nginx-tmp/uwsgi;
    scgi_temp_path        $TMP/nginx-tmp/scgi;
    $( [ "$ACCESS_LOG" = 1 ] && echo "access_log $TMP/nginx-access.log;" || echo "access_log off;" )
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/www;
    }
}
NGINX
NGINX_URL="http://127.0.0.1:$NGINX_PORT/hit.jpg"
start_nginx() {
  "$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
  NGINX_PID=$!
  local i
  for i in $(seq 100); do
    if curl -fsS -o "$TMP/nginx-check.jpg" "$NGINX_URL" 2>/dev/null; then break; fi
    if ! kill -0 "$NGINX_PID" 2>/dev/null; then cat "$TMP/nginx-error.log" >&2; die "nginx exited during start-up"; fi
    [ "$i" -lt 100 ] || die "nginx does not answer after 20 s"
    sleep 0.2
  done
  cmp -s "$TMP/nginx-check.jpg" "$TMP/www/hit.jpg" || die "nginx serves other bytes"
}
stop_nginx() { stop_pid "$NGINX_PID"; NGINX_PID=""; }

# --- 5. wait for a quiet machine, then the measured rounds ----------------------------------
wait_for_builds

# to_ms "1.23ms" / "850.00us" / "1.02s" -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "NaN"; exit }
    printf "%.3f", n * f }'
}
# server_pids NAME -> the measured pids: imgcdn, or nginx's workers (the master's children)
server_pids() { if [ "$1" = imgcdn ]; then echo "$IMGCDN_PID"; else pgrep -P "$NGINX_PID" || true; fi; }
# cpu_ticks NAME -> utime+stime (clock ticks) of those pids, all threads
cpu_ticks() {
  local t=0 p
  for p in $(server_pids "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
# hwm_kb NAME -> summed VmHWM (kB) of those pids
hwm_kb() {
  local t=0 p
  for p in $(server_pids "$1"); do t=$((t + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
# host_ticks -> "busy steal" clock ticks of the whole machine (busy = user nice system irq softirq)
host_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $9; exit}' /proc/stat; }
# child_ticks -> CPU ticks of this shell's reaped children (wrk, once waited for)
child_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }  # $$: the main shell, wrk's parent

# run NAME URL ROUND: start the server, warm up, one bounded wrk run, stop; appends a row
run() {
  local name=$1 url=$2 round=$3 out="$TMP/wrk/$1-$3.txt" t0 t1 h0 h1 w0 w1 busy=""
  if [ "$name" = imgcdn ]; then start_imgcdn "$PORT"; prime_imgcdn; else start_nginx; fi
  if [ "$WARMUP" -gt 0 ]; then   # unrecorded: first-run effects (page faults, TCP) excluded
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null 2>&1
  fi
  t0=$(cpu_ticks "$name"); h0=$(host_ticks); w0=$(child_ticks)
  log "round $round: $name, ${DURATION} s"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1
  h1=$(host_ticks); w1=$(child_ticks); t1=$(cpu_ticks "$name")
  local hwm; hwm=$(hwm_kb "$name")
  if [ "$name" = imgcdn ]; then
    local code xcache
    read -r code _ xcache < <(fetch "$url" "$TMP/after.jpg")   # still a hit, still alive?
    [ "$code" = 200 ] && [ "$xcache" = "HIT memory" ] || log "after the run: $code, X-Cache '$xcache' (odd)"
    stop_imgcdn
  else
    stop_nginx
  fi
  builds_running && busy="build running at the end"
  local rps p50 p99 errors non2xx cores wrkc others steal
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  errors=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  # CPU in cores (ticks / HZ / seconds): the server, wrk, everything else busy on the host
  # (other sessions, kernel threads; interrupt time not charged to a task), and steal time
  # (a hypervisor giving the cores to someone else). "others" or "steal" above ~0.1 = noisy.
  read -r cores wrkc others steal < <(awk -v s="$((t1 - t0))" -v w="$((w1 - w0))" \
    -v b0="${h0% *}" -v b1="${h1% *}" -v st0="${h0#* }" -v st1="${h1#* }" -v hz="$HZ" -v d="$DURATION" \
    'BEGIN { f = hz * d; printf "%.2f %.2f %.2f %.2f\n", s / f, w / f, (b1 - b0 - s - w) / f, (st1 - st0) / f }')
  [ -n "$rps" ] || { cat "$out" >&2; die "wrk gave no result"; }
  local note="${errors:+socket errors: $errors; }${non2xx:+non-2xx: $non2xx; }${busy}"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p50" "$p99" \
    "$cores" "$wrkc" "$others" "$steal" "$hwm" "$note" >>"$TMP/results.tsv"
}

: >"$TMP/results.tsv"
run imgcdn "$IMGCDN_URL" 1
run nginx "$NGINX_URL" 1
run nginx "$NGINX_URL" 2
run imgcdn "$IMGCDN_URL" 2

# --- 6. report -------------------------------------------------------------------------------
{
  echo "### Cache hits: imgcdn memory-tier hits vs nginx static, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, loopback"
  echo
  echo "body: $SIZE bytes (${IMGCDN_URL#http://127.0.0.1:"$PORT"}, X-Cache: HIT memory); wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, keep-alive; each round starts its server (imgcdn primed to a memory hit) and warms up ${WARMUP} s first; access logs $( [ "$ACCESS_LOG" = 1 ] && echo "on (imgcdn RUST_LOG=info, nginx combined log to a file)" || echo "off (imgcdn RUST_LOG=warn, nginx access_log off)" )"
  [ "$QUIET" = yes ] || echo "WARNING: rustc/cargo was still running when the runs started"
  echo
  echo "| round | server | req/s | p50 ms | p99 ms | server cores | wrk cores | others cores | steal cores | peak RSS MB (VmHWM) | notes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '{printf "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %.1f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 / 1024, $11}' \
    "$TMP/results.tsv"
  echo
  awk -F'\t' '
    { rps[$2] += $3; n[$2]++; if ($2 == "imgcdn") p99[++k] = $5 }
    END {
      i = rps["imgcdn"] / n["imgcdn"]; g = rps["nginx"] / n["nginx"]
      printf "- mean req/s: imgcdn %.0f, nginx %.0f\n", i, g
      printf "- ratio imgcdn/nginx req/s: **%.2f** (target >= 1.0 with access logs on)\n", i / g
      printf "- imgcdn p99: %.2f ms (round 1), %.2f ms (round 2) (target < 2 ms)\n", p99[1], p99[2]
    }' "$TMP/results.tsv"
} >"$TMP/table.md"
cat "$TMP/table.md"
if [ -n "$OUT" ]; then mkdir -p "$OUT"; cp "$TMP/table.md" "$OUT/table.md"; cp "$TMP"/wrk/*.txt "$TMP/results.tsv" "$OUT/"; fi
