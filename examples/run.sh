#!/usr/bin/env bash
# The main job: a malloc/free histogram of a running program, traced in user
# space by `ember trace` (probes on libc's malloc and free); then the bundled
# XDP example: assemble, check structurally, run (on an intact and on a
# corrupted frame) and disassemble, and an object built from restricted C.
set -euo pipefail
ember=${1:-build/ember}
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$ember")/examples
mkdir -p "$out"
frame=$(tr -d '\n' < "$here/frame.hex")
corrupt=${frame/40 11 b8 61/40 11 b8 62}
clang=$(command -v clang || command -v clang-14)
arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)

# Probes in user space: uprobes and a uretprobe on libc's malloc and free,
# run JIT-compiled inside alloc_workload (no root). On exit: what the probes
# counted, a histogram of every size asked for, and one of the allocations
# never freed.
echo "== clang -O2 -g -target bpf -c examples/malloc_hist.bpf.c -o $out/malloc_hist.bpf.o"
"$clang" -O2 -g -target bpf -I"/usr/include/$arch" -c "$here/malloc_hist.bpf.c" -o "$out/malloc_hist.bpf.o"
echo "== cc -O2 examples/alloc_workload.c -o $out/alloc_workload -pthread"
cc -O2 "$here/alloc_workload.c" -o "$out/alloc_workload" -pthread
echo "== ember trace $out/malloc_hist.bpf.o --hist sizes --hist live -- $out/alloc_workload"
"$ember" trace "$out/malloc_hist.bpf.o" --hist sizes --hist live -- "$out/alloc_workload"
echo

echo "== ember asm examples/ipv4_checksum.asm -o $out/ipv4_checksum.bin"
"$ember" asm "$here/ipv4_checksum.asm" -o "$out/ipv4_checksum.bin"
echo "== ember check $out/ipv4_checksum.bin"
"$ember" check "$out/ipv4_checksum.bin"
echo "== ember run $out/ipv4_checksum.bin --mem <intact frame>   (0x0: checksum intact)"
"$ember" run "$out/ipv4_checksum.bin" --mem "$frame"
echo "== ember run $out/ipv4_checksum.bin --mem <corrupted frame> (non-zero: corrupted)"
"$ember" run "$out/ipv4_checksum.bin" --mem "$corrupt"
echo "== ember disasm $out/ipv4_checksum.bin"
"$ember" disasm "$out/ipv4_checksum.bin"

# An object built from restricted C, as users write them for libbpf.
echo "== clang -O2 -g -target bpf -c examples/proto_count.bpf.c -o $out/proto_count.bpf.o"
"$clang" -O2 -g -target bpf -I"/usr/include/$arch" -c "$here/proto_count.bpf.c" -o "$out/proto_count.bpf.o"
# The frame's hex as bytes (printf's \x escapes: nothing beyond coreutils).
printf "$(printf '%s' "$frame" | tr -d ' ' | sed 's/../\\x&/g')" > "$out/frame.bin"
echo "== ember run $out/proto_count.bpf.o --ctx-in frame.bin --repeat 3 --dump-maps"
"$ember" run "$out/proto_count.bpf.o" --ctx-in "$out/frame.bin" --repeat 3 --dump-maps
echo "== ember verify $out/proto_count.bpf.o"
"$ember" verify "$out/proto_count.bpf.o"
echo "== ember objdump $out/proto_count.bpf.o --no-bytes"
"$ember" objdump "$out/proto_count.bpf.o" --no-bytes
