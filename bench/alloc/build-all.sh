#!/bin/bash
# Build imgcdn + render_time for each allocator variant, copy them aside.
set -e
cd /work/wt-alloc
export CARGO_TARGET_DIR=/work/target-alloc
for v in glibc mimalloc mimalloc-override jemalloc jemalloc-unprefixed; do
  if [ $v = glibc ]; then F=""; else F="--features $v"; fi
  echo "== $v $(date +%T)"
  cargo build --release --bin imgcdn --example render_time $F 2>&1 | tail -2
  mkdir -p /work/target-alloc/bins/$v
  cp /work/target-alloc/release/imgcdn /work/target-alloc/release/examples/render_time /work/target-alloc/bins/$v/
done
echo "== done $(date +%T)"
