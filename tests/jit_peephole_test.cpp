// Optimizations across instructions in the JIT, each against the
// interpreter on programs made to hit it and to just miss it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
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

struct Outcome {
  std::string interp, jit;
  size_t code_size = 0;
  bool has_second_accumulator = false;  // the code clears r11 (xor r11d, r11d)
};

// Runs `text` in the interpreter and the JIT (through a JitRunner) on the
// same memory; r0 or the error of each.
Outcome run_both(const std::string& text, const std::vector<uint8_t>& mem) {
  Outcome out;
  auto insns = assemble(text);
  EXPECT_TRUE(insns) << insns.error().message << "\n" << text;
  if (!insns) return out;
  auto prog = decode(*insns);
  EXPECT_TRUE(prog) << prog.error().message;
  if (!prog) return out;
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  EXPECT_TRUE(interp);
  if (!interp) return out;
  JitOptions o;
  o.unsafe_unverified = true;
  auto jit = JitProgram::compile(*interp, o);
  EXPECT_TRUE(jit) << jit.error().message;
  if (!jit) return out;
  auto show = [](const Result<uint64_t>& r) {
    return r ? std::to_string(*r) : "error: " + r.error().message;
  };
  std::vector<uint8_t> m1 = mem, m2 = mem;
  out.interp = show(interp->run(RunInput::memory(m1), fast()));
  JitRunner runner(*jit, fast());
  out.jit = show(runner.run(RunInput::memory(m2)));
  if (m1 != m2) out.jit += " (memory differs)";
  auto code = jit->code();
  out.code_size = code.size();
  const uint8_t xor_r11[] = {0x45, 0x31, 0xdb};
  out.has_second_accumulator =
      std::search(code.begin(), code.end(), std::begin(xor_r11), std::end(xor_r11)) != code.end();
  return out;
}

// Sums over loaded values (find_sum_chains): random groups `ldx rT;
// op rT, imm...; add acc, rT`, with what must break a chain thrown in: a
// jump into the middle, a read of acc, a 32-bit add, rT == acc, a load
// based on acc, a division by an immediate (it needs r11).
TEST(JitPeephole, SumChainsAgreeWithTheInterpreter) {
  std::mt19937_64 rng(0x5c4a1);
  const char* const kSizes[] = {"ldxb", "ldxh", "ldxw", "ldxdw", "ldxsb", "ldxsh", "ldxsw"};
  const char* const kOps[] = {"xor", "add", "and", "or", "lsh", "rsh", "arsh", "mul", "sub"};
  int chained = 0;
  constexpr int kPrograms = 300;
  for (int p = 0; p < kPrograms; ++p) {
    const int acc = static_cast<int>(rng() % 10);
    auto other = [&](int not_this) {
      int r;
      do r = 2 + static_cast<int>(rng() % 8);
      while (r == not_this || r == acc);
      return r;
    };
    std::string t = "mov %r6, %r1\nmov %r" + std::to_string(acc) + ", " + std::to_string(rng() % 1000) + "\n";
    if (acc == 1 || acc == 6) t = "mov %r7, %r1\nmov %r" + std::to_string(acc) + ", 3\n";
    const int base = acc == 1 || acc == 6 ? 7 : 6;
    const int groups = 4 + static_cast<int>(rng() % 30);
    int labels = 0;
    for (int g = 0; g < groups; ++g) {
      const int rt = other(base);
      const std::string r = "%r" + std::to_string(rt), a = "%r" + std::to_string(acc);
      if (rng() % 40 == 0) {  // a jump into the chain
        t += "jeq %r" + std::to_string(base) + ", 0, l" + std::to_string(labels) + "\n";
        t += "l" + std::to_string(labels++) + ":\n";
      }
      t += std::string(kSizes[rng() % 7]) + " " + r + ", [%r" + std::to_string(base) + "+" +
           std::to_string(rng() % 56) + "]\n";
      for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
        const char* op = kOps[rng() % 9];
        int imm = static_cast<int>(rng() % 70) - 5;
        if (std::strcmp(op, "lsh") == 0 || std::strcmp(op, "rsh") == 0 || std::strcmp(op, "arsh") == 0)
          imm = static_cast<int>(rng() % 64);
        t += std::string(op) + (rng() % 4 == 0 ? "32 " : " ") + r + ", " + std::to_string(imm) + "\n";
      }
      switch (rng() % 30) {
        case 0: t += "add32 " + a + ", " + r + "\n"; break;  // not a 64-bit add: ends the chain
        case 1: t += "add " + r + ", " + a + "\n" + "add " + a + ", " + r + "\n"; break;  // reads acc
        case 2: t += "div " + r + ", 3\nadd " + a + ", " + r + "\n"; break;               // needs r11
        case 3: t += "ldxb " + a + ", [%r" + std::to_string(base) + "+1]\nadd " + a + ", " + r + "\n"; break;
        default: t += "add " + a + ", " + r + "\n"; break;
      }
    }
    t += "mov %r0, %r" + std::to_string(acc) + "\nexit\n";
    std::vector<uint8_t> mem(64);
    for (auto& b : mem) b = static_cast<uint8_t>(rng());
    if (rng() % 3 == 0) mem[0] = 0;  // take the jumps into the chains sometimes
    Outcome o = run_both(t, mem);
    EXPECT_EQ(o.jit, o.interp) << t;
    chained += o.has_second_accumulator;
    if (HasFailure()) break;
  }
  std::printf("JIT sum chains: %d of %d programs split a sum\n", chained, kPrograms);
  EXPECT_GT(chained, kPrograms / 3);
}

}  // namespace
}  // namespace ember
