#!/usr/bin/env bash
# The main job on the bundled example: assemble, check structurally, run
# (on an intact and on a corrupted frame) and disassemble.
set -euo pipefail
ember=${1:-build/ember}
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$ember")/examples
mkdir -p "$out"
frame=$(tr -d '\n' < "$here/frame.hex")
corrupt=${frame/40 11 b8 61/40 11 b8 62}

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
