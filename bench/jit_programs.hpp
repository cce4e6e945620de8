// The JIT benchmark's programs: the interpreter benchmark's (programs.hpp)
// and four with real work of the kinds eBPF programs do: hash-map lookups in
// a loop, LPM-trie lookups, a string search and an XDP-style packet parser
// (on two packets). Each carries its memory, its maps and the r0 a C++
// reference computes; every engine must produce that r0 before it is timed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ember/isa.hpp"
#include "ember/maps.hpp"
#include "programs.hpp"

namespace ember::bench {

// The contents a map starts with: (key, value) pairs, inserted in order.
struct BenchMap {
  MapSpec spec;
  std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries;
};

// Programs name map i with `lddw %rN, kMapPlaceholder + i`; each engine
// patches that ld_imm64 into its own reference (patch_maps).
constexpr uint64_t kMapPlaceholder = 0x4d41500000000000ull;  // "MAP\0..."

struct JitBenchProgram {
  BenchProgram base;
  std::vector<BenchMap> maps;
};

std::vector<JitBenchProgram> jit_bench_programs();

// Rewrites every placeholder ld_imm64 to name maps[i]: a 64-bit value
// (Ember's Map*, pseudo 0) or a kernel map fd (pseudo = BPF_PSEUDO_MAP_FD).
// False if a placeholder names a map that is not there.
bool patch_maps(std::vector<RawInsn>& insns, const std::vector<uint64_t>& refs, uint8_t pseudo);

// A straight-line program of about `slots` instruction slots (ALU of every
// width, stack stores and loads, 64-bit constants, forward branches) that
// ends with r0; for timing the JIT's compiler.
std::string generated_program(size_t slots);

}  // namespace ember::bench
