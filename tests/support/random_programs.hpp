// Random, mostly well-formed eBPF programs for soundness testing of the
// verifier: every program it accepts must run in the interpreter's checked
// mode without a fault (no out-of-bounds access, no instruction budget
// overrun). The generator knows a little of what the verifier wants (which
// registers hold what, which stack bytes are written) so that a good share
// of its programs are accepted, and breaks a rule now and then so that the
// rejections exercise the verifier too.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/maps.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"

namespace ember::testing {

struct RandomProgram {
  std::vector<RawInsn> insns;  // as the verifier sees them: maps as map[idx:N] / map_value[idx:N]
  VerifyInput input;           // type, mem_size (>= 0: memory mode) and maps
  uint64_t seed = 0;           // what regenerates it: RandomProgramGenerator::generate(seed)
};

class RandomProgramGenerator {
 public:
  explicit RandomProgramGenerator(uint64_t seed) : rng_(seed) {}
  // The next program.
  RandomProgram next() { return generate(rng_()); }
  // The program of a seed: generate(p.seed) gives p again.
  static RandomProgram generate(uint64_t program_seed);

 private:
  std::mt19937_64 rng_;
};

// Mutates slots of a program at random (bytes, opcodes, registers, offsets,
// immediates; slots dropped, duplicated or swapped): input for the "never
// crashes or hangs" half of the test.
std::vector<RawInsn> mutate(std::vector<RawInsn> insns, std::mt19937_64& rng);
// Slots of random bytes, with opcodes mostly taken from the opcode table so
// that the decoder lets some through.
std::vector<RawInsn> random_slots(std::mt19937_64& rng, size_t max_len);

// Runs an accepted program in the interpreter's checked mode, as the runtime
// would: its maps created (the hash map holding a few keys), map[idx:N]
// replaced with the map's address as Object::prepare does, r1 pointing to
// mem_size random bytes (memory mode) or to a context of the type's size.
struct CheckedRun {
  bool setup_ok = false;  // false: the sandbox could not be built (error says why); not a fault
  bool fault = false;     // a check fired: the verifier accepted something unsafe
  std::string error;      // the interpreter's error (fault) or the setup error
  uint64_t r0 = 0;
};
CheckedRun run_checked(const RandomProgram& p, uint64_t insn_budget, uint64_t data_seed);

// A listing of the program for failure messages.
std::string listing(const std::vector<RawInsn>& insns);

}  // namespace ember::testing
