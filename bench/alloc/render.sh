#!/bin/bash
# Interleaved in-process render timing: ROUNDS rounds, each runs every variant once per file.
# Prints: round variant file median_ms min_ms decode_ms others_cores
ROUNDS=${ROUNDS:-3}; N=${N:-15}
B=/work/target-alloc/bins; C=/work/shared/corpus
TUNE="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
VARS="${VARS:-glibc glibc-tuned mimalloc mimalloc-override jemalloc jemalloc-unprefixed}"
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
for r in $(seq 1 $ROUNDS); do
  for f in art-3840x2160.jpg art-5640x3172.jpg photo-5120x2880.jpg; do
    vs=$VARS; [ $((r % 2)) = 0 ] && vs=$(echo $VARS | tr ' ' '\n' | tac | tr '\n' ' ')
    for v in $vs; do
      case $v in glibc-tuned) bin=$B/glibc/render_time; E="GLIBC_TUNABLES=$TUNE";; *) bin=$B/$v/render_time; E="X=1";; esac
      h0=$(busy); t0=$(date +%s.%N)
      out=$(env $E bash -c "$bin $C/$f 300 $N; cat /proc/\$\$/stat >/dev/null" 2>&1)
      # CPU of the render_time child via /proc is gone; use times from bash builtin instead
      t1=$(date +%s.%N); h1=$(busy)
      echo "$r $v $f $out host_cores=$(echo "($h1-$h0)/100/($t1-$t0)" | bc -l | cut -c1-4)"
    done
  done
done
