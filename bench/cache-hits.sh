#!/usr/bin/env bash
# Cache-hit throughput of imgcdn against Debian nginx serving the very same bytes as a static
# file: how close does a memory-tier hit come to the cheapest possible static answer?
#
#   bench/cache-hits.sh                       # from anywhere; runs from the repo root
#   DURATION=20 NO_WAIT=1 bench/cache-hits.sh
#
# What it does (loopback only, every run bounded):
#   1. cargo build --release;
#   2. starts ./target/release/imgcdn on 127.0.0.1:$PORT with a throw-away cache dir
#      (mktemp -d), serving ./images, and waits for /health;
#   3. picks a rendered result of 15-25 KB (/img/w_<W>,q_80/photo-2560x1600.jpg, W adjusted
#      from 400), makes sure it answers "X-Cache: HIT memory" and saves its bytes;
#   4. starts nginx (2 workers, sendfile, no access log) on 127.0.0.1:$NGINX_PORT serving
#      those bytes as /hit.jpg, every nginx path inside the temp dir;
#   5. waits until no rustc/cargo process runs on the machine (numbers taken during a
#      build are useless; up to 10 min, skip with NO_WAIT=1), then runs
#      wrk -t2 -c64 --latency against imgcdn, then nginx, then again nginx, then imgcdn
#      (the second round in the opposite order cancels drift); never two at the same time;
#   6. reads imgcdn's peak RSS (VmHWM);
#   7. stops both servers (trap on EXIT), removes the temp dir and prints a markdown table,
#      the ratio imgcdn req/s / nginx req/s (mean of both rounds) and imgcdn's p99.
#
# Env:
#   PORT        imgcdn port (default 8010)          NGINX_PORT  nginx port (default 8011)
#   DURATION    seconds per measured run (default 10, at most 30)
#   WARMUP      seconds of unrecorded wrk per server before round 1 (default 2, 0 = none)
#   NO_WAIT=1   skip the wait for rustc/cargo to finish
#   KEEP_TMP=1  keep the temp dir (logs, raw wrk output) instead of removing it
set -euo pipefail

# --- settings ------------------------------------------------------------------------------
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${PORT:-8010}"
NGINX_PORT="${NGINX_PORT:-8011}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
NO_WAIT="${NO_WAIT:-0}"
KEEP_TMP="${KEEP_TMP:-0}"
NGINX=/usr/sbin/nginx
SOURCE_FILE=photo-2560x1600.jpg
THREADS=2 CONNS=64

if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 1 ]; then
  echo "cache-hits.sh: DURATION must be a positive integer (seconds)" >&2; exit 2
fi
if [ "$DURATION" -gt 30 ]; then
  echo "cache-hits.sh: DURATION=$DURATION capped at 30 s" >&2; DURATION=30
fi
for tool in wrk curl cargo "$NGINX"; do
  command -v "$tool" >/dev/null || { echo "cache-hits.sh: '$tool' not found" >&2; exit 1; }
done

log() { echo "[cache-hits] $*" >&2; }

# Refuse to start on a port something else already listens on.
port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
for p in "$PORT" "$NGINX_PORT"; do
  if port_busy "$p"; then echo "cache-hits.sh: port $p is already in use" >&2; exit 1; fi
done

# --- cleanup: stop exactly the pids this script started, then remove the temp dir ----------
TMP=""
IMGCDN_PID=""
NGINX_PID=""
stop_pid() {  # TERM, then KILL after 5 s; only our own child pids
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$NGINX_PID"     # nginx master; it takes its workers down on TERM
  stop_pid "$IMGCDN_PID"
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build --------------------------------------------------------------------------------
log "cargo build --release"
cargo build --release
BIN="$ROOT/target/release/imgcdn"

# --- 2. imgcdn with a throw-away cache ------------------------------------------------------
TMP="$(mktemp -d -t imgcdn-cache-hits.XXXXXX)"
chmod 755 "$TMP"                      # nginx workers (user nobody when run as root) read www/
mkdir -p "$TMP/cache" "$TMP/www" "$TMP/nginx-tmp" "$TMP/wrk"

log "starting imgcdn on 127.0.0.1:$PORT (cache dir $TMP/cache)"
RUST_LOG=warn IMGCDN_CACHE__DIR="$TMP/cache" \
  "$BIN" --listen "127.0.0.1:$PORT" >"$TMP/imgcdn.log" 2>&1 &
IMGCDN_PID=$!

for i in $(seq 100); do       # up to 20 s
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null; then break; fi
  if ! kill -0 "$IMGCDN_PID" 2>/dev/null; then
    echo "cache-hits.sh: imgcdn exited during start-up:" >&2; cat "$TMP/imgcdn.log" >&2; exit 1
  fi
  [ "$i" -lt 100 ] || { echo "cache-hits.sh: no /health answer after 20 s" >&2; exit 1; }
  sleep 0.2
done
[ "$(curl -fsS "http://127.0.0.1:$PORT/health")" = OK ] || { echo "cache-hits.sh: /health is not OK" >&2; exit 1; }

# --- 3. a result of 15-25 KB, cached in memory ------------------------------------------
# Size grows roughly with the pixel count (width squared), so rescale the width by
# sqrt(20 KB / size) until the body lands in range (a few tries at most).
fetch() {  # fetch URL into FILE; prints "<status> <bytes> <x-cache>"
  curl -sS -o "$2" -D "$2.h" -w '%{http_code} %{size_download}' "$1"
  printf ' %s\n' "$(tr -d '\r' <"$2.h" | awk -F': ' 'tolower($1)=="x-cache"{print $2}')"
}
WIDTH=400
for try in $(seq 8); do
  URL="http://127.0.0.1:$PORT/img/w_$WIDTH,q_80/$SOURCE_FILE"
  read -r code size xcache < <(fetch "$URL" "$TMP/probe.jpg")
  [ "$code" = 200 ] || { echo "cache-hits.sh: $URL answered $code" >&2; exit 1; }
  log "w_$WIDTH: $size bytes (X-Cache: $xcache)"
  if [ "$size" -ge 15000 ] && [ "$size" -le 25000 ]; then break; fi
  [ "$try" -lt 8 ] || { echo "cache-hits.sh: no width gives 15-25 KB" >&2; exit 1; }
  WIDTH=$(awk -v w="$WIDTH" -v s="$size" 'BEGIN { printf "%d", w * sqrt(20000 / s) }')
done
SIZE=$size
# Twice more: the last answer must be a memory hit with the same bytes.
for _ in 1 2; do read -r code size xcache < <(fetch "$URL" "$TMP/www/hit.jpg"); done
rm -f "$TMP/www/hit.jpg.h" "$TMP/probe.jpg.h"
if [ "$code" != 200 ] || [ "$xcache" != "HIT memory" ]; then
  echo "cache-hits.sh: third request answered $code, X-Cache '$xcache' (want 200, HIT memory)" >&2; exit 1
fi
cmp -s "$TMP/probe.jpg" "$TMP/www/hit.jpg" || { echo "cache-hits.sh: hit bytes differ from the miss" >&2; exit 1; }
chmod 644 "$TMP/www/hit.jpg"
log "picked $URL: $SIZE bytes, X-Cache: $xcache"

# --- 4. nginx serving the same bytes ---------------------------------------------------------
cat >"$TMP/nginx.conf" <<EOF
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
    access_log off;
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/www;
    }
}
EOF
log "starting nginx on 127.0.0.1:$NGINX_PORT"
"$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT/hit.jpg"
for i in $(seq 100); do
  if curl -fsS -o "$TMP/nginx-check.jpg" "$NGINX_URL" 2>/dev/null; then break; fi
  if ! kill -0 "$NGINX_PID" 2>/dev/null; then
    echo "cache-hits.sh: nginx exited during start-up:" >&2; cat "$TMP/nginx-error.log" >&2; exit 1
  fi
  [ "$i" -lt 100 ] || { echo "cache-hits.sh: nginx does not answer after 20 s" >&2; exit 1; }
  sleep 0.2
done
cmp -s "$TMP/nginx-check.jpg" "$TMP/www/hit.jpg" || { echo "cache-hits.sh: nginx serves other bytes" >&2; exit 1; }

# --- 5. wait for a quiet machine, then the measured runs -------------------------------------
builds_running() { pgrep -x 'rustc|cargo' >/dev/null 2>&1; }
QUIET=yes
if [ "$NO_WAIT" != 1 ]; then
  waited=0
  while builds_running; do
    if [ "$waited" -ge 600 ]; then
      log "rustc/cargo still running after 10 min; measuring anyway (numbers are suspect)"
      QUIET=no; break
    fi
    [ "$waited" -gt 0 ] || log "a rustc/cargo process is running; waiting (up to 10 min, every 10 s)"
    sleep 10; waited=$((waited + 10))
  done
  [ "$waited" -eq 0 ] || log "waited ${waited} s for builds"
fi

# to_ms "1.23ms" / "850.00us" / "1.02s" -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "NaN"; exit }
    printf "%.3f", n * f }'
}
# cpu_ticks PID -> utime+stime of the process (clock ticks), all threads included
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
nginx_ticks() {  # the master's workers (its children)
  local t=0 c
  for c in $(pgrep -P "$NGINX_PID"); do t=$((t + $(cpu_ticks "$c"))); done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
# host_ticks -> "busy steal" clock ticks of the whole machine (busy = user nice system irq softirq)
host_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $9; exit}' /proc/stat; }
# child_ticks -> CPU ticks of this shell's reaped children (wrk, once waited for)
child_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }  # $$: the main shell, wrk's parent

# run NAME URL ROUND: one bounded wrk run; appends a row to $TMP/results.tsv
run() {
  local name=$1 url=$2 round=$3 out="$TMP/wrk/$1-$3.txt" t0 t1 h0 h1 w0 w1 busy=""
  if [ "$name" = imgcdn ]; then t0=$(cpu_ticks "$IMGCDN_PID"); else t0=$(nginx_ticks); fi
  h0=$(host_ticks); w0=$(child_ticks)
  log "round $round: $name, ${DURATION} s"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1
  h1=$(host_ticks); w1=$(child_ticks)
  if [ "$name" = imgcdn ]; then t1=$(cpu_ticks "$IMGCDN_PID"); else t1=$(nginx_ticks); fi
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
  [ -n "$rps" ] || { echo "cache-hits.sh: wrk gave no result:" >&2; cat "$out" >&2; exit 1; }
  local note="${errors:+socket errors: $errors; }${non2xx:+non-2xx: $non2xx; }${busy}"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p50" "$p99" \
    "$cores" "$wrkc" "$others" "$steal" "$note" >>"$TMP/results.tsv"
}

IMGCDN_URL="$URL"
if [ "$WARMUP" -gt 0 ]; then   # unrecorded, so first-run effects hit neither server
  log "warm-up: ${WARMUP} s each"
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$IMGCDN_URL" >/dev/null 2>&1
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$NGINX_URL" >/dev/null 2>&1
fi
: >"$TMP/results.tsv"
run imgcdn "$IMGCDN_URL" 1
run nginx "$NGINX_URL" 1
run nginx "$NGINX_URL" 2
run imgcdn "$IMGCDN_URL" 2

# Still a hit after the load (and the server still alive)?
read -r code _ xcache < <(fetch "$IMGCDN_URL" "$TMP/after.jpg")
[ "$code" = 200 ] && [ "$xcache" = "HIT memory" ] || log "after the runs: $code, X-Cache '$xcache' (odd)"

# --- 6. imgcdn's peak RSS --------------------------------------------------------------------
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$IMGCDN_PID/status")
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$IMGCDN_PID/status")

# --- 7. report -------------------------------------------------------------------------------
echo
echo "imgcdn cache hits vs nginx static, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, loopback"
echo "body: $SIZE bytes ($IMGCDN_URL, X-Cache: HIT memory); wrk -t$THREADS -c$CONNS -d${DURATION}s --latency"
[ "$QUIET" = yes ] || echo "WARNING: rustc/cargo was still running when the runs started"
echo
echo "| round | server | req/s | p50 ms | p99 ms | server cores | wrk cores | others cores | steal cores | notes |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
awk -F'\t' '{printf "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' \
  "$TMP/results.tsv"
echo
awk -F'\t' -v hwm="$HWM_KB" -v rss="$RSS_KB" '
  { rps[$2] += $3; n[$2]++; if ($2 == "imgcdn") p99[++k] = $5 }
  END {
    i = rps["imgcdn"] / n["imgcdn"]; g = rps["nginx"] / n["nginx"]
    printf "mean req/s: imgcdn %.0f, nginx %.0f\n", i, g
    printf "ratio imgcdn/nginx req/s: %.2f\n", i / g
    printf "imgcdn p99: %.2f ms (round 1), %.2f ms (round 2)\n", p99[1], p99[2]
    printf "imgcdn peak RSS (VmHWM): %.1f MiB (VmRSS now %.1f MiB)\n", hwm / 1024, rss / 1024
  }' "$TMP/results.tsv"
