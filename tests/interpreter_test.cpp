// The interpreter beyond the conformance suite: the checked mode's traps,
// call frames, legacy packet loads and helper plumbing.
#include <gtest/gtest.h>

#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "test_util.hpp"

namespace ember::testing {
namespace {

struct Ran {
  Result<uint64_t> r0;
  std::string error() const { return r0 ? "" : r0.error().message; }
};

Ran run(std::vector<RawInsn> insns, std::vector<uint8_t> mem = {}, RunOptions opts = {}) {
  auto prog = decode(insns);
  if (!prog) return {prog.error()};
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return {interp.error()};
  return {interp->run(RunInput::memory(mem), opts)};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Interpreter, ReadOutsideMemoryTraps) {
  auto r = run({mov64_imm(1, 64), raw(0x61, 0, 1, 0, 0), exit_insn()});  // r0 = *(u32*)64
  ASSERT_FALSE(r.r0);
  EXPECT_TRUE(contains(r.error(), "instruction 1 (r0 = *(u32 *)(r1 + 0x0)): read of 4 bytes at 0x40")) << r.error();
}

TEST(Interpreter, AccessPastTheEndOfMemoryTraps) {
  auto ok = run({raw(0x61, 0, 1, 4, 0), exit_insn()}, {1, 2, 3, 4, 5, 6, 7, 8});
  ASSERT_TRUE(ok.r0) << ok.error();
  EXPECT_EQ(*ok.r0, 0x08070605u);
  auto bad = run({raw(0x61, 0, 1, 5, 0), exit_insn()}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_TRUE(contains(bad.error(), "read of 4 bytes")) << bad.error();
  auto wr = run({raw(0x62, 1, 0, 8, 7), mov64_imm(0, 0), exit_insn()}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_TRUE(contains(wr.error(), "instruction 0")) << wr.error();
  EXPECT_TRUE(contains(wr.error(), "write of 4 bytes")) << wr.error();
}

TEST(Interpreter, StackBelowTheFrameTraps) {
  auto ok = run({raw(0x7a, 10, 0, -512, 9), raw(0x79, 0, 10, -512, 0), exit_insn()});
  ASSERT_TRUE(ok.r0) << ok.error();
  EXPECT_EQ(*ok.r0, 9u);
  auto bad = run({raw(0x7a, 10, 0, -520, 9), mov64_imm(0, 0), exit_insn()});
  EXPECT_TRUE(contains(bad.error(), "write of 8 bytes")) << bad.error();
  auto above = run({raw(0x79, 0, 10, 0, 0), exit_insn()});
  EXPECT_TRUE(contains(above.error(), "read of 8 bytes")) << above.error();
}

TEST(Interpreter, RunawayLoopStopsAtTheBudget) {
  RunOptions opts;
  opts.insn_budget = 1000;
  auto r = run({mov64_imm(0, 0), raw(0x05, 0, 0, -1, 0)}, {}, opts);
  ASSERT_FALSE(r.r0);
  EXPECT_TRUE(contains(r.error(), "instruction 1 (goto -0x1): instruction budget of 1000 exhausted")) << r.error();
}

TEST(Interpreter, CallDepthIsLimitedToEightFrames) {
  // f: call f (endless recursion)
  auto r = run({raw(0x85, 0, 1, 0, -1), exit_insn()});
  ASSERT_FALSE(r.r0);
  EXPECT_TRUE(contains(r.error(), "call depth exceeds 8 frames")) << r.error();
  // Seven nested calls (eight frames) are fine: each function is
  // "call the next; exit".
  std::vector<RawInsn> chain;
  for (int i = 0; i < 7; ++i) chain.push_back(raw(0x85, 0, 1, 0, 1)), chain.push_back(exit_insn());
  chain.push_back(mov64_imm(0, 42));
  chain.push_back(exit_insn());
  auto ok = run(chain);
  ASSERT_TRUE(ok.r0) << ok.error();
  EXPECT_EQ(*ok.r0, 42u);
}

TEST(Interpreter, EachFrameHasItsOwnStackAndCalleeSavedRegisters) {
  auto r = run({
      mov64_imm(6, 7),              // 0: r6 = 7
      raw(0x7a, 10, 0, -8, 100),    // 1: caller's stack slot = 100
      raw(0x85, 0, 1, 0, 4),        // 2: call 7
      raw(0x79, 1, 10, -8, 0),      // 3: r1 = caller's slot (still 100)
      raw(0x0f, 0, 1),              // 4: r0 += r1
      raw(0x0f, 0, 6), exit_insn(), // 5,6: r0 += r6 (restored to 7)
      raw(0x7a, 10, 0, -8, 1),      // 7 (callee): its own slot = 1
      mov64_imm(6, 1000),           // 8: clobber r6
      raw(0x79, 0, 10, -8, 0),      // 9: r0 = 1
      exit_insn(),
  });
  ASSERT_TRUE(r.r0) << r.error();
  EXPECT_EQ(*r.r0, 1u + 100u + 7u);
}

TEST(Interpreter, FunctionPointersCallThroughCallx) {
  auto r = run({
      raw(0x18, 1, 4, 0, 4), raw(0, 0, 0, 0, 0),  // 0: r1 = &f (index 5)
      raw(0x8d, 1),                               // 2: callx r1
      raw(0x07, 0, 0, 0, 1),                      // 3: r0 += 1
      exit_insn(),                                // 4
      mov64_imm(0, 41), exit_insn(),              // 5: f
  });
  ASSERT_TRUE(r.r0) << r.error();
  EXPECT_EQ(*r.r0, 42u);
  auto bad = run({mov64_imm(1, 123456), raw(0x8d, 1), exit_insn()});
  EXPECT_TRUE(contains(bad.error(), "neither a helper id nor a function")) << bad.error();
}

TEST(Interpreter, HelperPointerArgumentsAreChecked) {
  // bpf_get_current_comm(r1 = 16, 16): not memory the program owns.
  auto r = run({mov64_imm(1, 16), mov64_imm(2, 16), raw(0x85, 0, 0, 0, 16), exit_insn()});
  ASSERT_FALSE(r.r0);
  EXPECT_TRUE(contains(r.error(), "instruction 2 (call 0x10): helper fault")) << r.error();
  // On the stack it works and writes a NUL-terminated name.
  auto ok = run({mov64_reg(1, 10), raw(0x07, 1, 0, 0, -16), mov64_imm(2, 16), raw(0x85, 0, 0, 0, 16),
                 raw(0x71, 0, 10, -16, 0), exit_insn()});
  ASSERT_TRUE(ok.r0) << ok.error();
  EXPECT_NE(*ok.r0, 0u);  // first character of the test binary's name
}

TEST(Interpreter, UnknownHelpersAndMapsAreRejectedAtLoad) {
  auto r = run({raw(0x85, 0, 0, 0, 9999), exit_insn()});
  EXPECT_TRUE(contains(r.error(), "instruction 0 (call 0x270f): unknown helper function id 9999")) << r.error();
  auto m = run({raw(0x18, 1, 1, 0, 3), raw(0), mov64_imm(0, 0), exit_insn()});
  EXPECT_TRUE(contains(m.error(), "refers to a map")) << m.error();
}

TEST(Interpreter, MisalignedAtomicsTrap) {
  auto r = run({mov64_imm(2, 1), raw(0xdb, 1, 2, 1, 0), mov64_imm(0, 0), exit_insn()}, std::vector<uint8_t>(16));
  EXPECT_TRUE(contains(r.error(), "not naturally aligned")) << r.error();
}

TEST(Interpreter, LegacyPacketLoadsAreBigEndianAndBoundsEndTheProgram) {
  std::vector<uint8_t> pkt = {0x12, 0x34, 0x56, 0x78, 0x9a};
  auto h = run({mov64_reg(6, 1), raw(0x28, 0, 0, 0, 1), exit_insn()}, pkt);  // ldabsh 1
  ASSERT_TRUE(h.r0) << h.error();
  EXPECT_EQ(*h.r0, 0x3456u);
  auto w = run({mov64_reg(6, 1), mov64_imm(2, 1), raw(0x40, 0, 2, 0, 0), exit_insn()}, pkt);  // ldindw r2+0
  ASSERT_TRUE(w.r0) << w.error();
  EXPECT_EQ(*w.r0, 0x3456789au);
  // Out of bounds: the program ends with r0 = 0, like the kernel.
  auto oob = run({mov64_reg(6, 1), raw(0x20, 0, 0, 0, 2), mov64_imm(0, 7), exit_insn()}, pkt);
  ASSERT_TRUE(oob.r0) << oob.error();
  EXPECT_EQ(*oob.r0, 0u);
}

TEST(Interpreter, FastAndCheckedModesAgree) {
  std::vector<RawInsn> p = {mov64_imm(0, 0), mov64_imm(2, 100),
                            raw(0x0f, 0, 2), raw(0x07, 2, 0, 0, -1), raw(0x55, 2, 0, -3, 0), exit_insn()};
  RunOptions fast;
  fast.checked = false;
  auto a = run(p, {}, fast), b = run(p);
  ASSERT_TRUE(a.r0 && b.r0);
  EXPECT_EQ(*a.r0, 5050u);
  EXPECT_EQ(*a.r0, *b.r0);
}

TEST(Interpreter, TraceSeesEveryExecutedInstruction) {
  std::vector<size_t> pcs;
  RunOptions opts;
  opts.trace = [&](const TraceStep& s) { pcs.push_back(s.pc); };
  auto r = run({mov64_imm(0, 1), raw(0x05, 0, 0, 1, 0), mov64_imm(0, 2), exit_insn()}, {}, opts);
  ASSERT_TRUE(r.r0) << r.error();
  EXPECT_EQ(pcs, (std::vector<size_t>{0, 1, 3}));
}

TEST(Interpreter, DivisionAndShiftsFollowTheIsa) {
  auto div0 = run({mov64_imm(0, 5), mov64_imm(1, 0), raw(0x3f, 0, 1), exit_insn()});
  EXPECT_EQ(*div0.r0, 0u);
  auto mod0 = run({mov64_imm(0, 5), mov64_imm(1, 0), raw(0x9f, 0, 1), exit_insn()});
  EXPECT_EQ(*mod0.r0, 5u);
  auto mod32 = run({mov64_imm(0, -1), mov64_imm(1, 0), raw(0x9c, 0, 1), exit_insn()});  // w0 %= w1
  EXPECT_EQ(*mod32.r0, 0xffffffffu);  // upper half zeroed
  auto sdivmin = run({raw(0x18, 0, 0, 0, 0), raw(0, 0, 0, 0, INT32_MIN), raw(0x37, 0, 0, 1, -1), exit_insn()});
  EXPECT_EQ(*sdivmin.r0, 0x8000000000000000ull);
  auto shift = run({mov64_imm(0, 1), raw(0x67, 0, 0, 0, 65), exit_insn()});  // masked to 1
  EXPECT_EQ(*shift.r0, 2u);
}

}  // namespace
}  // namespace ember::testing
