// The JIT's entries (Codegen::emit_lean_entry, emit_trampoline): registers
// read before written start at 0 as in the interpreter, r1 and r2 arrive as
// the interpreter sets them, the caller's callee-saved registers survive
// every kind of exit (normal, from a nested call, the error exit), and a
// JitRunner runs again after an error.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ember/asm.hpp"
#include "ember/jit.hpp"
#include "ember/vm.hpp"

namespace ember {
namespace {

RunOptions fast() {
  RunOptions o;
  o.checked = false;
  o.random_seed = 7;
  return o;
}

struct Compiled {
  Program prog;
  HelperTable helpers = default_helper_table();
  std::unique_ptr<Interpreter> interp;
  std::unique_ptr<JitProgram> jit;
};

std::unique_ptr<Compiled> compile(const std::string& text, const JitOptions& base = {}) {
  auto insns = assemble(text);
  EXPECT_TRUE(insns) << insns.error().message;
  if (!insns) return nullptr;
  auto c = std::make_unique<Compiled>();
  auto prog = decode(*insns);
  EXPECT_TRUE(prog) << prog.error().message;
  if (!prog) return nullptr;
  c->prog = std::move(*prog);
  auto interp = Interpreter::create(c->prog, c->helpers);
  EXPECT_TRUE(interp) << interp.error().message;
  if (!interp) return nullptr;
  c->interp = std::make_unique<Interpreter>(std::move(*interp));
  JitOptions o = base;
  o.unsafe_unverified = true;  // some read registers they never wrote
  auto jit = JitProgram::compile(*c->interp, o);
  EXPECT_TRUE(jit) << text << ": " << jit.error().message;
  if (!jit) return nullptr;
  c->jit = std::make_unique<JitProgram>(std::move(*jit));
  return c;
}

std::string show(const Result<uint64_t>& r) { return r ? std::to_string(*r) : "error: " + r.error().message; }

// Runs through a JitRunner with sentinels in the callee-saved registers the
// compiler lets a program pin (rbp may be the frame pointer); returns which
// of rbx, r12-r15 came back changed, as a string ("" if none).
[[gnu::noinline]] std::string run_checking_registers(JitRunner& runner, const RunInput& in,
                                                     Result<uint64_t>* out) {
  register uint64_t b asm("rbx") = 0x1111111111111111;
  register uint64_t x12 asm("r12") = 0x1212121212121212;
  register uint64_t x13 asm("r13") = 0x1313131313131313;
  register uint64_t x14 asm("r14") = 0x1414141414141414;
  register uint64_t x15 asm("r15") = 0x1515151515151515;
  asm volatile("" : "+r"(b), "+r"(x12), "+r"(x13), "+r"(x14), "+r"(x15));
  *out = runner.run(in);
  asm volatile("" : "+r"(b), "+r"(x12), "+r"(x13), "+r"(x14), "+r"(x15));
  std::string changed;
  if (b != 0x1111111111111111) changed += " rbx";
  if (x12 != 0x1212121212121212) changed += " r12";
  if (x13 != 0x1313131313131313) changed += " r13";
  if (x14 != 0x1414141414141414) changed += " r14";
  if (x15 != 0x1515151515151515) changed += " r15";
  return changed;
}

// Every program against the interpreter, through JitProgram::run and
// through a JitRunner (twice), on two contexts.
void expect_agreement(const std::string& text, const JitOptions& opts = {}) {
  auto c = compile(text, opts);
  ASSERT_TRUE(c);
  JitRunner runner(*c->jit, fast());
  for (uint64_t first : {uint64_t{0}, uint64_t{1}}) {
    std::vector<uint8_t> m1(16, 0), m2(16, 0), m3(16, 0);
    m1[0] = m2[0] = m3[0] = static_cast<uint8_t>(first);
    auto want = c->interp->run(RunInput::memory(m1), fast());
    auto got = c->jit->run(RunInput::memory(m2), fast());
    EXPECT_EQ(show(got), show(want)) << text;
    for (int round = 0; round < 2; ++round) {
      std::vector<uint8_t> m = m3;
      Result<uint64_t> r = 0;
      EXPECT_EQ(run_checking_registers(runner, RunInput::memory(m), &r), "") << text;
      EXPECT_EQ(show(r), show(want)) << text << " (JitRunner, round " << round << ")";
      EXPECT_EQ(m, m1) << text;
    }
  }
}

TEST(JitEntry, RegistersReadBeforeWrittenAreZero) {
  // Straight reads of every register the entry might skip.
  for (int r : {0, 3, 4, 5, 6, 7, 8, 9}) {
    std::string reg = "%r" + std::to_string(r);
    expect_agreement("mov %r1, 0\nadd " + reg + ", 5\nmov %r0, " + reg + "\nexit\n");
  }
  // Read on one path only, written on the other.
  expect_agreement(
      "ldxb %r2, [%r1+0]\njeq %r2, 0, skip\nmov %r7, 40\nskip:\nmov %r0, %r7\nadd %r0, %r4\nexit\n");
  // Read in a loop's second iteration only after the write; r8 read in the first.
  expect_agreement("mov %r6, 0\nloop:\nadd %r0, %r8\nmov %r8, 3\nadd %r6, 1\njlt %r6, 4, loop\nexit\n");
  // r2 is the context's size, as in the interpreter.
  expect_agreement("mov %r0, %r2\nexit\n");
}

TEST(JitEntry, CalleeSavedRegistersSurviveEveryExit) {
  // Writes r6-r9 and the stack, then exits normally.
  expect_agreement(
      "mov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nstxdw [%r10-8], %r9\nldxdw %r0, [%r10-8]\n"
      "add %r0, %r6\nadd %r0, %r7\nadd %r0, %r8\nexit\n");
  // A helper call (the frame in r12) and a local call (r10 moves).
  expect_agreement(
      "mov %r6, 5\ncall 14\nmov %r7, %r0\nmov %r1, %r6\ncall local f\nadd %r0, %r6\nexit\n"
      "f:\nmov %r6, 9\nmov %r0, %r1\nadd %r0, %r6\nexit\n");
  // The error exit from two frames deep (the ninth frame is refused),
  // after writing every callee-saved home.
  expect_agreement(
      "mov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nldxb %r2, [%r1+0]\njeq %r2, 0, fine\n"
      "call local f\nexit\nfine:\nmov %r0, 11\nexit\nf:\nmov %r6, 7\ncall local f\nexit\n");
}

TEST(JitEntry, SharedExitsAndDeadTargets) {
  // A function jumps to the main function's exit (unverifiable, but the
  // interpreter runs it): that exit must return from both.
  expect_agreement("mov %r0, 1\ncall local f\nadd %r0, 1\nja out\nf:\nmov %r0, 5\nout:\nexit\n");
  // A jump to an instruction the hints call dead: an error on one context,
  // r0 on the other, through the entry that falls into the code.
  const std::string text =
      "mov %r6, 3\nldxb %r2, [%r1+0]\njeq %r2, 0, fine\nmov %r0, 1\nexit\n"
      "fine:\nmov %r0, %r6\nexit\n";
  auto c = compile(text);
  ASSERT_TRUE(c);
  JitOptions o;
  o.unsafe_unverified = true;
  o.hints.resize(c->prog.insts.size());
  o.hints[3].dead = o.hints[4].dead = true;
  auto jit = JitProgram::compile(*c->interp, o);
  ASSERT_TRUE(jit) << jit.error().message;
  {
    // (A jump whose fall-through is dead was once emitted as no jump at all.)
    std::vector<uint8_t> good(16, 0);
    auto r = jit->run(RunInput::memory(good), fast());
    EXPECT_TRUE(r) << "JitProgram::run: " << show(r);
  }
  JitRunner runner(*jit, fast());
  for (int round = 0; round < 3; ++round) {
    std::vector<uint8_t> bad(16, 1), good(16, 0);
    Result<uint64_t> r = 0;
    EXPECT_EQ(run_checking_registers(runner, RunInput::memory(bad), &r), "");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("instruction 3"), std::string::npos) << r.error().message;
    EXPECT_EQ(run_checking_registers(runner, RunInput::memory(good), &r), "");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, 3u);
  }
}

TEST(JitEntry, BlindedProgramsAgree) {
  JitOptions blind;
  blind.blind_constants = true;
  expect_agreement(
      "mov %r6, 5\ncall 14\nmov %r7, %r0\nmov %r1, %r6\ncall local f\nadd %r0, %r6\nexit\n"
      "f:\nmov %r6, 9\nmov %r0, %r1\nadd %r0, %r6\nexit\n",
      blind);
  expect_agreement("mov %r0, %r9\nadd %r0, 77\nexit\n", blind);
}

}  // namespace
}  // namespace ember
