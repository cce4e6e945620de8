// Superinstructions: every family fuses where it should, and the fast mode
// (fused) agrees with the checked mode (never fused) on random inputs.
#include "vm/superinstructions.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/vm.hpp"

namespace ember::testing {
namespace {

constexpr const char* kEveryFamily = R"(
  ldxdw %r2, [%r1+0]
  xor %r2, 0x1
  ldxw %r3, [%r1+8]
  add %r2, %r3
  mov %r0, %r2
  lsh %r0, 3
  stb [%r1+16], 7
  sth [%r1+18], 0x1234
  ldxb %r4, [%r1+20]
  jgt %r0, %r4, +1
  mov %r0, 0
  mov %r5, 0
loop:
  add %r5, 1
  jlt %r5, 10, loop
  add %r0, %r5
  ldxb %r6, [%r1+21]
  jeq %r6, 1, one
  jeq %r6, 2, two
  ja done
one:
  add %r0, 100
two:
  add %r0, 200
done:
  exit
)";

std::vector<ExecInsn> plain(const Program& p) {
  std::vector<ExecInsn> code;
  for (const Inst& in : p.insts)
    code.push_back({static_cast<uint16_t>(in.op), in.dst, in.src, in.off, 0, in.imm, in.target});
  return code;
}

TEST(Superinstructions, EveryFamilyFuses) {
  auto insns = assemble(kEveryFamily);
  ASSERT_TRUE(insns.ok()) << insns.error().message;
  auto prog = decode(*insns);
  ASSERT_TRUE(prog.ok()) << prog.error().message;
  auto code = plain(*prog);
  fused::fuse(code);
  std::set<uint16_t> families;
  for (const ExecInsn& x : code) {
    if (x.op < kNumOps) continue;
    uint16_t f = x.op >= fused::kFirstStorePair    ? fused::kFirstStorePair
                 : x.op >= fused::kJeqChain        ? fused::kJeqChain
                 : x.op >= fused::kFirstAddJump    ? fused::kFirstAddJump
                 : x.op >= fused::kFirstLoadJump   ? fused::kFirstLoadJump
                 : x.op >= fused::kFirstLoadAluImm ? fused::kFirstLoadAluImm
                 : x.op >= fused::kFirstLoadAlu    ? fused::kFirstLoadAlu
                                                   : fused::kFirstAluPair;
    families.insert(f);
  }
  EXPECT_EQ(families.size(), 7u);
}

TEST(Superinstructions, FastModeAgreesWithCheckedMode) {
  auto insns = assemble(kEveryFamily);
  ASSERT_TRUE(insns.ok());
  auto prog = decode(*insns);
  ASSERT_TRUE(prog.ok());
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  ASSERT_TRUE(interp.ok());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> mem(24);
    for (auto& b : mem) b = static_cast<uint8_t>(rng());
    mem[21] = static_cast<uint8_t>(trial % 4);  // each way through the compare chain
    std::vector<uint8_t> fast_mem = mem;
    RunOptions checked, fast;
    fast.checked = false;
    auto a = interp->run(RunInput::memory(mem), checked);
    auto b = interp->run(RunInput::memory(fast_mem), fast);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(*a, *b) << "trial " << trial;
    ASSERT_EQ(mem, fast_mem) << "trial " << trial;
  }
}

}  // namespace
}  // namespace ember::testing
