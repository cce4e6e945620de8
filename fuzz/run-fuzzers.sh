#!/usr/bin/env bash
# fuzz/run-fuzzers.sh [SECONDS]: builds the libFuzzer targets in build-fuzz
# (clang, ASan + UBSan) and runs each for SECONDS seconds (default 5). Exits
# non-zero if any of them finds a crash, a leak or a timeout; the input that
# did it is left in build-fuzz/artifacts/. Without clang or libFuzzer it says
# "fuzz: SKIPPED: ..." and exits 0.
#
# Seed corpora are made here, from the repository, on every run: the objects
# clang builds from tests/bpf/*.bpf.c (ELF target; BTF target with their
# raw .BTF sections), their code sections (decoder target), the "-- asm"
# parts of ../shared/conformance/*.data and examples/*.asm (assembler
# target) and those assembled (decoder target).
# What libFuzzer finds on top is kept in build-fuzz/corpus/ between runs.
#
# fuzz_verifier is the long soundness run on demand: whatever the verifier
# accepts runs in checked mode and must not fault. Its seeds are the decoder
# seeds behind a 2-byte header (program type, memory size). For a long run,
# give it more time, e.g. an hour each: fuzz/run-fuzzers.sh 3600 (the
# generator-driven counterpart: EMBER_SOUNDNESS_PROGRAMS=1000000 ember_tests
# --gtest_filter='VerifierSoundness*').
set -euo pipefail

seconds=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_FUZZ_BUILD:-$root/build-fuzz}
jobs=${EMBER_FUZZ_JOBS:-2}
conformance=${EMBER_CONFORMANCE_DIR:-$root/../shared/conformance}
targets=(decoder assembler elf btf verifier usdt)

skip() {
  echo "fuzz: SKIPPED: $*"
  exit 0
}

case $seconds in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

cc=$(command -v clang || command -v clang-14 || true)
cxx=$(command -v clang++ || command -v clang++-14 || true)
[[ -n $cc ]] || skip "clang is not installed (apt-get install clang)"
[[ -n $cxx ]] || skip "clang++ is not installed (apt-get install clang)"

mkdir -p "$build"
# libFuzzer ships separately from clang on Debian (libclang-rt-14-dev): see
# whether a fuzzer links before building anything.
probe=$build/libfuzzer-probe
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
  "$cxx" -x c++ -fsanitize=fuzzer,address,undefined - -o "$probe" 2>"$probe.log"; then
  skip "libFuzzer is missing: $cxx -fsanitize=fuzzer does not link (apt-get install libclang-rt-14-dev)"
fi

echo "fuzz: building the fuzzers in $build (clang: $cxx)"
# Tests are not needed here (and need GoogleTest); the fuzzers and the ember
# command (to assemble seeds) are.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DEMBER_FUZZ=ON -DEMBER_TESTS=OFF >"$build/configure.log" ||
  { cat "$build/configure.log"; exit 1; }
ninja -C "$build" -j "$jobs" "${targets[@]/#/fuzz_}" ember >"$build/build.log" 2>&1 ||
  { tail -n 60 "$build/build.log"; echo "fuzz: FAILED: the fuzzers do not build (log: $build/build.log)"; exit 1; }

# ---- seed corpora, rebuilt on every run from what the repository holds ----
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "${targets[@]/#/$seeds/}" "$build/bpf"

# The command's own ASan would report the harmless leaks of a short-lived
# process as errors; seeds are best effort, so it runs without leak checks.
ember() { ASAN_OPTIONS=detect_leaks=0 "$build/ember" "$@"; }

for src in "$root"/tests/bpf/*.bpf.c; do
  [[ -e $src ]] || continue
  stem=$(basename "$src" .bpf.c)
  obj=$build/bpf/$stem.bpf.o
  # Debian keeps <asm/types.h> in the multiarch directory, which clang does
  # not search for -target bpf.
  "$cc" -O2 -g -target bpf -mcpu=v3 -I"/usr/include/$(uname -m)-linux-gnu" -c "$src" -o "$obj" 2>/dev/null || continue
  cp "$obj" "$seeds/elf/"
  cp "$obj" "$seeds/btf/"
  objcopy=$(command -v llvm-objcopy-14 || command -v llvm-objcopy || true)
  [[ -n $objcopy ]] || continue
  # .BTF is not allocated, so -O binary would write nothing: dump it instead.
  "$objcopy" --dump-section=.BTF="$seeds/btf/$stem.btf" "$obj" "$build/bpf/$stem.discard.o" 2>/dev/null || true
  for sec in .text socket; do
    "$objcopy" -O binary --only-section="$sec" "$obj" "$seeds/decoder/$stem-${sec#.}.bin" 2>/dev/null || true
  done
done

n=0
for data in "$conformance"/*.data; do
  [[ -e $data ]] || continue
  n=$((n + 1))
  awk '/^-- /{on = ($0 == "-- asm"); next} on' "$data" >"$seeds/assembler/conf-$n.asm"
done
for asm in "$root"/examples/*.asm; do
  [[ -e $asm ]] && cp "$asm" "$seeds/assembler/"
done
for asm in "$seeds"/assembler/*; do
  [[ -e $asm ]] || continue
  ember asm "$asm" -o "$seeds/decoder/$(basename "$asm").bin" >/dev/null 2>&1 || true
done
# Verifier seeds: each decoder seed behind a header (type syscall, 64 bytes
# of memory).
for bin in "$seeds"/decoder/*; do
  [[ -s $bin ]] || continue
  { printf '\000\100'; cat "$bin"; } >"$seeds/verifier/$(basename "$bin")"
done
# USDT seeds (fuzz_usdt: the first byte picks the input's kind): programs
# with USDT probes built from tests/attach (0), argument strings (1),
# section names (2) and -e probes (3).
sdt=/usr/include/$(uname -m)-linux-gnu
for kind in pie:-fPIE\ -pie so:-fPIC\ -shared\ -DEMBER_USDT_LIBRARY; do
  out=$build/bpf/usdt_${kind%%:*}
  # shellcheck disable=SC2086
  "$cc" -O2 -I"$sdt" ${kind#*:} "$root"/tests/attach/usdt_target*.c -o "$out" 2>/dev/null || continue
  { printf '\000'; cat "$out"; } >"$seeds/usdt/${kind%%:*}.elf"
done
n=0
for s in '\001-4@%edi 8@-8(%rbp) 4@$5 -8@%rax 2@(%rsp) -1@big(%rip)' '\0012@8(%rsp,%rdx,4) 1@%r15b' \
  '\002uprobe//lib/libc.so.6:malloc+0x10' '\002uretprobe/a:b:f' '\002usdt/./app:prov:name' \
  '\003uprobe:libc:free=prog' '\003usdt:app:p:n=h'; do
  n=$((n + 1))
  printf '%b' "$s" >"$seeds/usdt/text-$n"
done
find "$seeds" -type f -empty -delete
for t in "${targets[@]}"; do
  echo "fuzz: fuzz_$t: $(find "$seeds/$t" -type f | wc -l) seeds"
done

# ---- run each target ----
failed=()
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  log=$build/fuzz_$t.log
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: running fuzz_$t for ${seconds}s"
  if "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds/$t" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -n 1 | sed "s/^/fuzz: fuzz_$t: /" || true
  else
    tail -n 40 "$log"
    echo "fuzz: fuzz_$t FAILED (log: $log; failing input in $artifacts/)"
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: OK: ${targets[*]} (${seconds}s each, no crash, leak or timeout)"
