// `ember run FILE` on raw code (bytecode, hex, assembler text, or one code
// section of an ELF object): r1 = a memory buffer, r2 = its length, as
// bpf_conformance runs programs. Verified first, like everything Ember runs.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cli/io.hpp"

namespace ember::cli {

struct RawRunOptions {
  std::vector<uint8_t> mem;
  uint64_t budget = 100'000'000;  // checked mode only (--unverified, --trace)
  std::optional<uint64_t> seed;
  bool trace = false;       // each instruction; runs in checked mode
  bool interp = false;      // the interpreter's fast mode, not the JIT
  bool unverified = false;  // skip the verifier: checked mode, never the JIT
};

// Prints r0 in hex on stdout; errors on stderr. Returns the exit status.
int run_raw(const LoadedCode& code, const RawRunOptions& o);

}  // namespace ember::cli
