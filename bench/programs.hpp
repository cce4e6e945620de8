// The benchmark programs, generated as assembler text, each with the memory
// it runs on and the result a C++ reference computes for it. Every engine
// must produce that result before it is timed.
//
// DPDK's librte_bpf validator rejects every backward jump ("loops
// detected"), so the programs all engines run are straight-line (unrolled)
// code with forward branches only; the `loop` variants run in Ember and the
// kernel alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember::bench {

struct BenchProgram {
  std::string name;
  std::string text;          // conformance assembler syntax; r1 = memory
  std::vector<uint8_t> mem;  // the memory at the start of every run
  uint64_t expected;         // r0, from the C++ reference
  bool loops;                // has backward jumps (DPDK cannot load it)
};

std::vector<BenchProgram> bench_programs();

}  // namespace ember::bench
