#!/usr/bin/env bash
# Builds ember_bench (Release) and runs it: every program in Ember's
# interpreter (fast and checked), DPDK's librte_bpf and the kernel, five
# repetitions each; the table of medians and ratios comes last.
# Usage: bench/run.sh [extra Google Benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_BENCH=ON -DEMBER_TESTS=OFF >/dev/null
ninja -C "$build" -j "$(nproc)" ember_bench >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, kernel $(uname -r), $(c++ --version | head -1)"
[ "$(id -u)" -eq 0 ] || echo "note: not root, so the kernel peer will be skipped"
exec "$build/bench/ember_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 "$@"
