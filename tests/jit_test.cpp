// The x86-64 JIT against the references: the bpf_conformance suite, the
// interpreter's fast mode on the clang-built corpus and on random programs
// (differential fuzzing), and the code memory's W^X and constant blinding.
#include "ember/jit.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "ember/verifier.hpp"
#include "ember/vm.hpp"
#include "support/conformance_data.hpp"

namespace ember {
namespace {

RunOptions fast_options() {
  RunOptions o;
  o.checked = false;
  o.random_seed = 42;
  return o;
}

// ---- the conformance suite ----

TEST(Jit, ConformanceSuite) {
  auto files = testing::conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  const HelperTable helpers = conformance_helper_table();
  int passed = 0, verified = 0;
  for (const auto& file : files) {
    auto c = testing::read_conformance_case(file);
    ASSERT_TRUE(c) << c.error().message;
    auto insns = testing::conformance_program(*c);
    ASSERT_TRUE(insns) << c->name << ": " << insns.error().message;
    auto prog = decode(*insns);
    auto interp = prog ? Interpreter::create(*prog, helpers) : Result<Interpreter>(prog.error());
    if (!interp) {
      if (!c->error.empty()) {
        ++passed;  // an expected rejection, before the JIT
        continue;
      }
      ADD_FAILURE() << c->name << ": rejected: " << interp.error().message;
      continue;
    }
    VerifyInput vin;
    vin.mem_size = static_cast<int64_t>(c->mem.size());
    vin.helpers = &helpers;
    bool ok = verify(*prog, vin).ok;
    verified += ok;
    JitOptions jo;
    jo.unsafe_unverified = !ok;
    auto jit = JitProgram::compile(*interp, jo);
    if (!jit) {
      ADD_FAILURE() << c->name << ": JIT refused: " << jit.error().message;
      continue;
    }
    std::vector<uint8_t> mem = c->mem;
    auto r0 = jit->run(RunInput::memory(mem), fast_options());
    if (!r0) {
      ADD_FAILURE() << c->name << ": run failed: " << r0.error().message;
      continue;
    }
    if (!c->result || *r0 != *c->result) {
      ADD_FAILURE() << c->name << ": r0 = 0x" << std::hex << *r0 << ", expected 0x" << c->result.value_or(0);
      continue;
    }
    ++passed;
  }
  std::printf("conformance (JIT): %d/%zu passed, %d compiled as verified\n", passed, files.size(), verified);
  EXPECT_EQ(passed, static_cast<int>(files.size()));
}

}  // namespace
}  // namespace ember
