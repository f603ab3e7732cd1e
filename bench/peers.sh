#!/usr/bin/env bash
# Benchmarks imgcdn side by side with IPX (Node/sharp) using the shared benchmark lab:
# same source image, same widths, same load, one server after the other (never at the
# same time), all on loopback, every run bounded.
#
#   bench/peers.sh                              # from anywhere; works from the repo root
#   FILE=art-3840x2160.jpg COLD_CONC=2 WARM_CONC= bench/peers.sh
#
# Env:
#   IMGCDN_LAB         lab folder, relative to the repo root (default ../shared/lab)
#   IMGCDN_LAB_STATE   lab state dir (default /tmp/imgcdn-lab; the lab's setup.sh must have run)
#   FILE               corpus file served by the lab origin (default photo-5120x2880.jpg)
#   PORT               imgcdn port on 127.0.0.1 (default 8000)
#   IMGCDN_LOG         imgcdn's log (default /tmp/imgcdn-bench.log)
#   QUIET_WAIT DURATION WARM_DURATION COLD_CONC WARM_CONC ...  passed to the lab's bench.sh
#                      (defaults here: 30, 10, 10, "2 8", 8)
# Output: one markdown table per server (also under $IMGCDN_LAB_STATE/results/peers-<time>/).
# Compare "server CPU ms/req" first; rerun a row whose "others cores" is above ~0.3.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# --- the lab (read-only folder with up.sh / down.sh / bench.sh) ---------------------------
LAB="${IMGCDN_LAB:-../shared/lab}"
if [ ! -x "$LAB/bench/bench.sh" ] || [ ! -x "$LAB/peers/up.sh" ] || [ ! -r "$LAB/lib.sh" ]; then
  echo "peers.sh: benchmark lab not found at '$LAB' (relative to $ROOT)." >&2
  echo "          Set IMGCDN_LAB to the lab folder (the one with peers/up.sh and bench/bench.sh)." >&2
  exit 1
fi
LAB="$(cd "$LAB" && pwd)"
. "$LAB/lib.sh"                      # STATE, RUN, pidfile_pids

FILE="${FILE:-photo-5120x2880.jpg}"
PORT="${PORT:-8000}"
IMGCDN_LOG="${IMGCDN_LOG:-/tmp/imgcdn-bench.log}"
SRC="http://127.0.0.1:9000/public/$FILE"
export QUIET_WAIT="${QUIET_WAIT:-30}" DURATION="${DURATION:-10}" WARM_DURATION="${WARM_DURATION:-10}"
export COLD_CONC="${COLD_CONC-2 8}" WARM_CONC="${WARM_CONC-8}"
RESULTS="$STATE/results/peers-$(date +%Y%m%d-%H%M%S)"

# --- 1. release build (waits for the cargo lock if another build holds it) ----------------
cargo build --release

# --- 2. lab origin + IPX; stop on exit only what this script started ----------------------
to_stop=(imgcdn)
for p in ipx origin; do
  [ -n "$(pidfile_pids "$RUN/$p.pid" 2>/dev/null)" ] || to_stop+=("$p")
done
IMGCDN_PID=
cleanup() {
  "$LAB/peers/down.sh" "${to_stop[@]}" || true
  # belt and braces: the imgcdn we started, by its pid only
  if [ -n "$IMGCDN_PID" ] && kill -0 "$IMGCDN_PID" 2>/dev/null; then kill "$IMGCDN_PID" || true; fi
}
trap cleanup EXIT
"$LAB/peers/up.sh" origin ipx

# --- 3. imgcdn: the binary itself (not cargo run), so bench.sh measures its pid -----------
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "peers.sh: 127.0.0.1:$PORT is already in use" >&2; exit 1
fi
# the origin is on loopback, which imgcdn refuses by default
IMGCDN_SOURCE__ALLOW_NETWORKS='["127.0.0.0/8"]' RUST_LOG="${RUST_LOG:-warn}" \
  ./target/release/imgcdn --listen "127.0.0.1:$PORT" > "$IMGCDN_LOG" 2>&1 &
IMGCDN_PID=$!
echo "$IMGCDN_PID" > "$RUN/imgcdn.pid"
for _ in $(seq 1 50); do
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health" && break; sleep 0.2
done
probe=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 30 \
  "http://127.0.0.1:$PORT/img/w_300,q_80/$SRC" || true)
case "$probe" in "200 image/"*) ;; *) echo "peers.sh: imgcdn probe gave '$probe', see $IMGCDN_LOG" >&2; exit 1;; esac

# --- 4. same pattern for both, one after the other ----------------------------------------
OUT="$RESULTS/imgcdn" timeout 600 "$LAB/bench/bench.sh" imgcdn \
  "http://127.0.0.1:$PORT/img/w_{w},q_80/$SRC" > /dev/null
OUT="$RESULTS/ipx" timeout 600 "$LAB/bench/bench.sh" ipx \
  "http://127.0.0.1:9101/w_{w},q_80/$SRC" > /dev/null

# --- 5. stop everything (trap), then print the tables -------------------------------------
cleanup; trap - EXIT
echo
echo "## $FILE  (DURATION=$DURATION WARM_DURATION=$WARM_DURATION COLD_CONC='$COLD_CONC' WARM_CONC='$WARM_CONC')"
cat "$RESULTS/imgcdn/table.md"
tail -n +3 "$RESULTS/ipx/table.md"
echo
echo "raw results: $RESULTS"
if [ -s "$IMGCDN_LOG" ]; then echo "imgcdn log ($IMGCDN_LOG) is not empty:"; tail -n 5 "$IMGCDN_LOG"; fi
