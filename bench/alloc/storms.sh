#!/bin/bash
V="glibc glibc-tuned mimalloc mimalloc-override jemalloc-bg jemalloc-unprefixed-bg"
R=$(echo $V | tr ' ' '\n' | tac | tr '\n' ' ')
for v in $V; do QUIET_WAIT=20 timeout 400 python3 /work/target-alloc/exp/storm.py $v 8 60 10; done
for v in $R; do QUIET_WAIT=20 timeout 400 python3 /work/target-alloc/exp/storm.py $v 64 60 10; done
