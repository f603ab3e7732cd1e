#!/usr/bin/env bash
# A fleet of two: what a shared-store hit costs next to making the rendition, side by side in
# one run, with the libjpeg-turbo floor (djpeg -scale 1/8 of the same file) as the yardstick.
#
#   bench/fleet.sh                  # from anywhere; runs from the repo root
#   BUILD=0 N=30 bench/fleet.sh
#
# What it does (loopback only):
#   1. cargo build --release (BUILD=0 skips it);
#   2. starts s3s-fs (a real S3 server, `cargo install --locked s3s-fs --version 0.14.1
#      --features binary`) on a temp root, and two imgcdn instances A and B with their own
#      empty cache dirs sharing one bucket ([store]), sources from the corpus folder;
#   3. N widths of one photo through A (MISS: render, then upload), then the same through B
#      (HIT store), then B again (HIT memory); wall time per request from curl, CPU per
#      request from each server's /proc/<pid>/stat (utime + stime) over its phase;
#   4. djpeg -scale 1/8 of the same file N times (CPU per run, the floor);
#   5. prints medians and the ratios.
#
# Env: N (default 20), FILE (default photo-2560x1600.jpg in tests/fixtures), PORT_A/PORT_B/PORT_S3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[fleet] $*" >&2; }
die() { echo "fleet: $*" >&2; exit 1; }

N="${N:-20}"
FILE="${FILE:-tests/fixtures/photo-2560x1600.jpg}"
PORT_A="${PORT_A:-8031}"; PORT_B="${PORT_B:-8032}"; PORT_S3="${PORT_S3:-8033}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/imgcdn"
S3S="${S3S_FS_BIN:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}"
[ -x "$S3S" ] || die "s3s-fs not found: cargo install --locked s3s-fs --version 0.14.1 --features binary"
command -v djpeg >/dev/null || die "djpeg not found (apt-get install libjpeg-turbo-progs)"
[ -r "$FILE" ] || die "no $FILE"
if [ "${BUILD:-1}" != 0 ]; then log "cargo build --release"; cargo build --release >&2; fi

TMP="$(mktemp -d -t imgcdn-fleet.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
mkdir -p "$TMP/s3/cache" "$TMP/src"
cp "$FILE" "$TMP/src/photo.jpg"
"$S3S" --host 127.0.0.1 --port "$PORT_S3" --access-key AKBENCH --secret-key bench-secret "$TMP/s3" \
  >"$TMP/s3.log" 2>&1 &
PIDS+=($!)

start() {  # start NAME PORT -> pid in $PID
  IMGCDN_STORE__URL=s3://cache/bench IMGCDN_STORE__ENDPOINT="http://127.0.0.1:$PORT_S3" \
  IMGCDN_STORE__ALLOW_HTTP=true IMGCDN_STORE__ACCESS_KEY_ID=AKBENCH \
  IMGCDN_STORE__SECRET_ACCESS_KEY=bench-secret IMGCDN_SOURCE__BASE="$TMP/src" \
  IMGCDN_CACHE__DIR="$TMP/cache-$1" RUST_LOG=warn \
    "$BIN" --listen "127.0.0.1:$2" >"$TMP/$1.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$2/health" 2>/dev/null && return 0
    sleep 0.2
  done
  cat "$TMP/$1.log" >&2; die "imgcdn $1 did not start"
}
start a "$PORT_A"; PID_A=$PID
start b "$PORT_B"; PID_B=$PID

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
TICK=$(getconf CLK_TCK)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

phase() {  # phase PORT PID EXPECT -> prints "median_ms cpu_ms_per_request"
  local port=$1 pid=$2 expect=$3 c0 c1 w out
  c0=$(cpu "$pid")
  : >"$TMP/times"
  for i in $(seq "$N"); do
    w=$((300 + 10 * i))
    out=$(curl -s -o /dev/null -D "$TMP/h" -w '%{time_total}' "http://127.0.0.1:$port/img/w_$w/photo.jpg")
    grep -qi "^x-cache: $expect" "$TMP/h" || die "w_$w on :$port: expected $expect, got $(grep -i '^x-cache' "$TMP/h")"
    echo "$out" >>"$TMP/times"
  done
  c1=$(cpu "$pid")
  echo "$(median <"$TMP/times" | awk '{printf "%.2f", $1 * 1000}') $(awk -v d=$((c1 - c0)) -v t="$TICK" -v n="$N" 'BEGIN {printf "%.2f", d * 1000 / t / n}')"
}

log "A renders $N widths (MISS)"
read -r miss_ms miss_cpu < <(phase "$PORT_A" "$PID_A" "MISS")
sleep 2   # the uploads, after the responses
log "B reads them from the store (HIT store)"
read -r store_ms store_cpu < <(phase "$PORT_B" "$PID_B" "HIT store")
log "B again (HIT memory)"
read -r mem_ms mem_cpu < <(phase "$PORT_B" "$PID_B" "HIT memory")

# The floor: djpeg -scale 1/8 of the same file, CPU per run (user + sys of the children).
floor_cpu=$(bash -c 'for i in $(seq '"$N"'); do djpeg -scale 1/8 "$0" >/dev/null; done; times' "$FILE" \
  | tail -1 | awk -v n="$N" '{
      split($1, u, "m"); split($2, s, "m");
      printf "%.2f", ((u[1] * 60 + u[2]) + (s[1] * 60 + s[2])) * 1000 / n }')

cpu_model=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')
cat <<EOF

Fleet of two on $(nproc) cores ($cpu_model), $N widths of $(basename "$FILE"), one run:

| answer | median wall ms | CPU ms / request | CPU / floor |
|---|---|---|---|
| A MISS (fetch local file, render, upload after) | $miss_ms | $miss_cpu | $(awk -v a="$miss_cpu" -v f="$floor_cpu" 'BEGIN {printf "%.1f", a / f}') |
| B HIT store (GET from s3s-fs, verify, copy to memory + disk) | $store_ms | $store_cpu | $(awk -v a="$store_cpu" -v f="$floor_cpu" 'BEGIN {printf "%.1f", a / f}') |
| B HIT memory | $mem_ms | $mem_cpu | $(awk -v a="$mem_cpu" -v f="$floor_cpu" 'BEGIN {printf "%.1f", a / f}') |
| djpeg -scale 1/8 (floor) | | $floor_cpu | 1.0 |

store hit / render: wall $(awk -v a="$store_ms" -v b="$miss_ms" 'BEGIN {printf "%.2f", a / b}'), CPU $(awk -v a="$store_cpu" -v b="$miss_cpu" 'BEGIN {printf "%.2f", a / b}')
EOF
