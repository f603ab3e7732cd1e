# Sourced by the bench/ scripts (never run): paths, the imgcdn binary, starting and stopping
# imgcdn and the lab's servers by pid, and the machine description for reports.
#
# What a script gets after `. "$(dirname "$0")/lib.sh"`:
#   ROOT          the repo root (the current directory from then on)
#   LAB, STATE, RUN, CORPUS, pidfile_pids   from the shared lab's lib.sh (IMGCDN_LAB, default
#                 ../shared/lab; state dir IMGCDN_LAB_STATE, default /tmp/imgcdn-lab)
#   BIN           the release binary: ${CARGO_TARGET_DIR:-target}/release/imgcdn
#   build_imgcdn  cargo build --release (skipped when BUILD=0)
#   start_imgcdn PORT [PIDNAME] / stop_imgcdn   one imgcdn with a throw-away cache dir;
#                 its pid goes to $RUN/PIDNAME.pid (for the lab's bench.sh) when PIDNAME is given
#   lab_up NAME... / lab_down NAME...   the lab's up.sh/down.sh; only what this script
#                 started is stopped on exit
#   stop_pid PID, port_busy PORT, need_quiet_lab, machine_md, log
# On exit (trap) everything the script started is stopped, by pid only.
# Every server listens on 127.0.0.1; every load run is bounded by the lab's bench.sh or by
# DURATION caps in the scripts.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_NAME="${BENCH_NAME:-$(basename "$0" .sh)}"
log() { echo "[$BENCH_NAME] $*" >&2; }
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

# --- the lab (read-only folder with peers/up.sh, peers/down.sh, bench/bench.sh) -----------
LAB="${IMGCDN_LAB:-../shared/lab}"
if [ ! -x "$LAB/bench/bench.sh" ] || [ ! -x "$LAB/peers/up.sh" ] || [ ! -r "$LAB/lib.sh" ]; then
  echo "$BENCH_NAME: benchmark lab not found at '$LAB' (relative to $ROOT)." >&2
  echo "   Set IMGCDN_LAB to the lab folder (the one with peers/up.sh and bench/bench.sh)." >&2
  exit 1
fi
LAB="$(cd "$LAB" && pwd)"
. "$LAB/lib.sh"                      # STATE, RUN, CORPUS, pidfile_pids, pid_alive
mkdir -p "$RUN" "$STATE/results"

# --- the imgcdn binary --------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/imgcdn"
build_imgcdn() {   # waits for the cargo lock if another build holds it
  if [ "${BUILD:-1}" = 0 ]; then
    [ -x "$BIN" ] || die "BUILD=0 but $BIN does not exist"
    return 0
  fi
  log "cargo build --release (target dir $TARGET_DIR)"
  cargo build --release >&2
}

builds_running() { pgrep -x 'rustc|cargo' >/dev/null 2>&1; }

# wait_for_builds: wait (up to 10 min, every 10 s; not with NO_WAIT=1) until no rustc/cargo
# runs, since numbers taken during a build are useless. Sets QUIET=yes, or no when it gave up.
wait_for_builds() {
  local waited=0
  QUIET=yes
  [ "${NO_WAIT:-0}" != 1 ] || return 0
  while builds_running; do
    if [ "$waited" -ge 600 ]; then
      log "rustc/cargo still running after 10 min; measuring anyway (numbers are suspect)"
      QUIET=no; return 0
    fi
    [ "$waited" -gt 0 ] || log "a rustc/cargo process is running; waiting (up to 10 min, every 10 s)"
    sleep 10; waited=$((waited + 10))
  done
  [ "$waited" -eq 0 ] || log "waited ${waited} s for builds"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_pid() {  # TERM, then KILL after 5 s; only pids this script started
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# --- imgcdn -------------------------------------------------------------------------------
IMGCDN_PID=""; IMGCDN_PIDNAME=""; IMGCDN_TMP=""; IMGCDN_LOG=""
# start_imgcdn PORT [PIDNAME]: the binary itself (not cargo run, so its pid is the server's),
# default config except a fresh cache dir, loopback origins on any port allowed. IMGCDN_* variables of
# the caller's environment pass through (e.g. IMGCDN_CACHE__MEMORY_MB=64).
start_imgcdn() {
  local port=$1 name=${2:-}
  [ -z "$IMGCDN_PID" ] || die "start_imgcdn: one imgcdn is already running (pid $IMGCDN_PID)"
  port_busy "$port" && die "127.0.0.1:$port is already in use"
  IMGCDN_TMP="$(mktemp -d -t imgcdn-bench.XXXXXX)"
  IMGCDN_LOG="$IMGCDN_TMP/imgcdn.log"
  IMGCDN_SOURCE__ALLOW_NETWORKS="${IMGCDN_SOURCE__ALLOW_NETWORKS:-[\"127.0.0.0/8\"]}" \
  IMGCDN_SOURCE__ALLOW_PORTS="${IMGCDN_SOURCE__ALLOW_PORTS:-[]}" \
  IMGCDN_CACHE__DIR="$IMGCDN_TMP/cache" RUST_LOG="${RUST_LOG:-warn}" \
    "$BIN" --listen "127.0.0.1:$port" >"$IMGCDN_LOG" 2>&1 &
  IMGCDN_PID=$!
  if [ -n "$name" ]; then IMGCDN_PIDNAME=$name; echo "$IMGCDN_PID" >"$RUN/$name.pid"; fi
  local i
  for i in $(seq 100); do       # up to 20 s
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null && break
    if ! kill -0 "$IMGCDN_PID" 2>/dev/null; then
      cat "$IMGCDN_LOG" >&2; IMGCDN_PID=""; die "imgcdn exited during start-up"
    fi
    [ "$i" -lt 100 ] || die "imgcdn: no /health answer after 20 s (log $IMGCDN_LOG)"
    sleep 0.2
  done
  log "imgcdn pid $IMGCDN_PID on 127.0.0.1:$port (cache $IMGCDN_TMP/cache)"
}
stop_imgcdn() {
  [ -n "$IMGCDN_PID" ] || return 0
  stop_pid "$IMGCDN_PID"
  if [ -s "$IMGCDN_LOG" ]; then log "imgcdn log (last lines):"; tail -n 5 "$IMGCDN_LOG" >&2; fi
  [ -z "$IMGCDN_PIDNAME" ] || rm -f "$RUN/$IMGCDN_PIDNAME.pid"
  [ -z "$IMGCDN_TMP" ] || rm -rf "$IMGCDN_TMP"
  IMGCDN_PID=""; IMGCDN_PIDNAME=""; IMGCDN_TMP=""; IMGCDN_LOG=""
}

# --- the lab's servers --------------------------------------------------------------------
LAB_STARTED=()
lab_running() { [ -n "$(pidfile_pids "$RUN/$1.pid" 2>/dev/null)" ]; }
# lab_up NAME...: start lab servers that are not running yet and remember them. A peer that
# is already running was started by someone else: refuse, since two servers would share the
# cores (the origin is shared and left alone).
lab_up() {
  local n
  for n in "$@"; do
    if lab_running "$n"; then
      [ "$n" = origin ] && continue
      die "lab server '$n' is already running (pid file $RUN/$n.pid); stop it first ($LAB/peers/down.sh $n)"
    fi
    "$LAB/peers/up.sh" "$n" >&2 || die "$LAB/peers/up.sh $n failed"
    LAB_STARTED+=("$n")
  done
}
lab_down() {
  local n keep=() s
  for n in "$@"; do "$LAB/peers/down.sh" "$n" >&2 || true; done
  for s in "${LAB_STARTED[@]}"; do
    case " $* " in *" $s "*) ;; *) keep+=("$s") ;; esac
  done
  LAB_STARTED=("${keep[@]}")
}

# need_quiet_lab: refuse to run while lab peers started by someone else are up
need_quiet_lab() {
  local n
  for n in ipx thumbor imagefilter; do
    lab_running "$n" && die "lab peer '$n' is running (someone else's?); stop it first ($LAB/peers/down.sh $n)"
  done
  return 0
}

BENCH_EXIT_HOOKS=()
bench_cleanup() {
  local rc=$? h
  trap - EXIT INT TERM
  for h in "${BENCH_EXIT_HOOKS[@]}"; do "$h" || true; done
  stop_imgcdn || true
  # reverse order: peers before the origin
  local i
  for ((i = ${#LAB_STARTED[@]} - 1; i >= 0; i--)); do
    "$LAB/peers/down.sh" "${LAB_STARTED[$i]}" >&2 || true
  done
  exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- for reports ----------------------------------------------------------------------------
machine_md() {   # markdown bullet list describing this machine and the versions measured
  local cpu mem os commit dirty
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
  os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=""
  if git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
    dirty=" (with uncommitted changes)"
  fi
  echo "- machine: $(nproc) cores ($cpu), $mem RAM, $os, kernel $(uname -r)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
  echo "- imgcdn: commit $commit$dirty, $(rustc --version 2>/dev/null), release profile, $BIN"
  echo "- peers (shared lab): nginx $(nginx -v 2>&1 | sed 's#.*/##'), IPX $(jq -r .version "$STATE/ipx/node_modules/ipx/package.json" 2>/dev/null) (sharp $(jq -r .version "$STATE/ipx/node_modules/sharp/package.json" 2>/dev/null), node $(node --version 2>/dev/null)), thumbor $("$STATE/venv-thumbor/bin/python" -c 'import thumbor; print(thumbor.__version__)' 2>/dev/null)"
  echo "- load generator: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
}
