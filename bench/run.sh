#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them, five repetitions each; the
# table of medians and ratios comes last.
#   interp: every program in Ember's interpreter (fast and checked), DPDK's
#           librte_bpf and the kernel's JIT (ember_bench)
#   maps:   map lookup/update/delete from the host and from programs, Ember
#           against the kernel's bpf() and BPF_PROG_TEST_RUN (ember_map_bench)
#   jit:    every program (plus hash-map and LPM lookups, a string search and
#           an XDP-style parser) in Ember's JIT, native C++ (-O2), Ember's
#           interpreter, the kernel's JIT and DPDK's JIT; JitProgram::compile
#           times (ember_jit_bench)
#   verifier: verification time and memory per program of tests/bpf and of
#           tests/verifier/accept, Ember's verify() against the kernel's
#           BPF_PROG_LOAD (ember_verifier_bench; its own flags: --runs N,
#           --kernel-runs N, --filter SUBSTR, --objects-only, --fixtures-only)
#   probes: cost per hit of Ember's hooks (entry, return, int3) against the
#           kernel's uprobes/uretprobes on the same function (root) and the
#           unprobed call (ember_probe_bench)
#   prevail: `ember verify` against PREVAIL's check on the verifier suite's
#           objects (bench/peers/prevail.sh; needs PREVAIL_CHECK, else skipped)
# Usage: bench/run.sh [interp|maps|jit|verifier|probes|prevail] [extra flags]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = prevail ] && shift && exec bench/peers/prevail.sh "$@"
build=${BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_BENCH=ON -DEMBER_TESTS=OFF >/dev/null
suite=interp
case "${1:-}" in interp|maps|jit|verifier|probes) suite=$1; shift ;; esac
bin=ember_bench
[ "$suite" = maps ] && bin=ember_map_bench
[ "$suite" = verifier ] && bin=ember_verifier_bench
[ "$suite" = jit ] && bin=ember_jit_bench
[ "$suite" = probes ] && bin=ember_probe_bench
ninja -C "$build" -j "$(nproc)" "$bin" >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, kernel $(uname -r), $(c++ --version | head -1)"
[ "$(id -u)" -eq 0 ] || echo "note: not root, so the kernel peer will be skipped"
[ "$suite" = verifier ] && exec "$build/bench/$bin" "$@"
exec "$build/bench/$bin" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 "$@"
