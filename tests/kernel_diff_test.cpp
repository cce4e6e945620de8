// Ember's interpreter against the Linux kernel (BPF_PROG_TEST_RUN) on the
// same bytecode: the bpf_conformance programs the kernel verifier accepts,
// and thousands of random ALU/JMP programs. r0 and memory must agree.
#include <gtest/gtest.h>

#include <cinttypes>
#include <random>
#include <set>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "support/conformance_data.hpp"
#include "support/kernel_bpf.hpp"

namespace ember::testing {
namespace {

void require_kernel() {
  std::string why;
  if (!kernel_bpf_available(&why)) GTEST_SKIP() << "kernel oracle unavailable: " << why;
}

bool calls_helpers(std::span<const RawInsn> insns) {
  for (const RawInsn& r : insns)
    if (r.opcode == 0x85 && r.src() != 1) return true;
  return false;
}

std::string listing(std::span<const RawInsn> insns) {
  auto prog = decode(insns);
  return prog ? disassemble(*prog) : "(undecodable: " + prog.error().message + ")";
}

struct EmberRun {
  Result<uint64_t> r0;
  std::vector<uint8_t> mem;
};

EmberRun run_in_ember(std::span<const RawInsn> insns, std::vector<uint8_t> mem) {
  auto prog = decode(insns);
  if (!prog) return {prog.error(), mem};
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return {interp.error(), mem};
  auto r0 = interp->run(RunInput::memory(mem));
  return {std::move(r0), std::move(mem)};
}

TEST(KernelDiff, ConformanceProgramsAgreeWithTheKernel) {
  require_kernel();
  auto files = conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  size_t compared = 0, skipped = 0;
  std::vector<std::string> rejected;
  for (const auto& f : files) {
    auto c = read_conformance_case(f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto insns = conformance_program(*c);
    ASSERT_TRUE(insns.ok()) << c->name << ": " << insns.error().message;
    // The suite's helper numbering is its own; expected errors are Ember's
    // own decoder tests' business.
    if (calls_helpers(*insns) || !c->error.empty()) {
      ++skipped;
      continue;
    }
    std::vector<uint8_t> kmem = c->mem;
    auto k = run_in_kernel(*insns, kmem);
    if (!k) {
      rejected.push_back(c->name + ": " + k.error().message.substr(0, 160));
      continue;
    }
    auto e = run_in_ember(*insns, c->mem);
    ASSERT_TRUE(e.r0.ok()) << c->name << ": the kernel ran it but Ember failed: " << e.r0.error().message;
    EXPECT_EQ(*e.r0, *k) << c->name << "\n" << listing(*insns);
    EXPECT_EQ(e.mem, kmem) << c->name << ": memory differs after the run";
    ++compared;
  }
  std::printf(
      "kernel oracle: %zu conformance programs compared, %zu rejected by the kernel verifier, %zu skipped "
      "(helper calls)\n",
      compared, rejected.size(), skipped);
  for (const auto& r : rejected) std::printf("  kernel rejected %s\n", r.c_str());
  EXPECT_GE(compared, 150u);
}

// Random programs: every register initialized, the stack initialized, then
// ALU/ALU32 operations of every kind (division by zero, INT_MIN / -1, large
// shift amounts by register, movsx, byte swaps), stack loads and stores, and
// forward conditional jumps (JMP and JMP32); finally all registers folded
// into r0.
class RandomProgram {
 public:
  explicit RandomProgram(uint32_t seed) : rng_(seed) {}

  std::vector<RawInsn> make(int length) {
    out_.clear();
    for (uint8_t r = 0; r <= 9; ++r) load_constant(r);
    for (int s = 1; s <= 8; ++s) emit(0x7a, 10, 0, static_cast<int16_t>(-8 * s), interesting_imm());
    int body_start = static_cast<int>(out_.size());
    int body_end = body_start + length;
    while (static_cast<int>(out_.size()) < body_end) step(body_end);
    for (uint8_t r = 1; r <= 9; ++r) {
      emit(0x27, 0, 0, 0, static_cast<int32_t>(0x9e3779b1u));  // r0 *= golden ratio
      emit(0xaf, 0, r, 0, 0);                                  // r0 ^= rN
    }
    emit(0x95, 0, 0, 0, 0);
    return out_;
  }

 private:
  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  uint8_t reg() { return static_cast<uint8_t>(pick(10)); }

  int32_t interesting_imm() {
    static constexpr int32_t kImms[] = {0,  1,  -1,        2,         7,    31,     32,
                                        63, 64, INT32_MIN, INT32_MAX, 0xff, 0xffff, -0x8000};
    return pick(3) == 0 ? static_cast<int32_t>(rng_()) : kImms[pick(std::size(kImms))];
  }

  void emit(uint8_t op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    RawInsn r;
    r.opcode = op;
    r.set_regs(dst, src);
    r.off = off;
    r.imm = imm;
    out_.push_back(r);
  }

  void load_constant(uint8_t r) {
    uint64_t v = pick(4) == 0 ? 0x8000000000000000ull : (static_cast<uint64_t>(rng_()) << 32) | rng_();
    emit(0x18, r, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v)));
    emit(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v >> 32)));
  }

  void alu() {
    static constexpr uint8_t kOps[] = {0x00, 0x10, 0x20, 0x30, 0x40, 0x50,
                                       0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0};
    uint8_t op = kOps[pick(std::size(kOps))];
    bool wide = pick(2), by_reg = pick(2);
    uint8_t cls = wide ? 0x07 : 0x04;
    int32_t imm = interesting_imm();
    bool shift = op == 0x60 || op == 0x70 || op == 0xc0;
    if (shift && !by_reg) imm = static_cast<int32_t>(pick(wide ? 64 : 32));  // the verifier rejects larger
    int16_t off = (op == 0x30 || op == 0x90) && pick(2) ? 1 : 0;             // sdiv / smod
    if ((op == 0x30 || op == 0x90) && imm == 0) imm = 3;  // the verifier rejects division by a zero constant
    emit(static_cast<uint8_t>(op | cls | (by_reg ? 0x08 : 0)), reg(), by_reg ? reg() : 0, off,
         by_reg ? 0 : imm);
  }

  void special() {
    switch (pick(5)) {
      case 0: emit(pick(2) ? 0x87 : 0x84, reg(), 0, 0, 0); break;  // neg
      case 1: {                                                    // movsx
        static constexpr int16_t kWidths64[] = {8, 16, 32}, kWidths32[] = {8, 16};
        if (pick(2))
          emit(0xbf, reg(), reg(), kWidths64[pick(3)], 0);
        else
          emit(0xbc, reg(), reg(), kWidths32[pick(2)], 0);
        break;
      }
      case 2: {  // le / be / bswap
        static constexpr uint8_t kOps[] = {0xd4, 0xdc, 0xd7};
        static constexpr int32_t kWidths[] = {16, 32, 64};
        emit(kOps[pick(3)], reg(), 0, 0, kWidths[pick(3)]);
        break;
      }
      case 3: {  // stack store then load, of a random size
        static constexpr uint8_t kStx[] = {0x7b, 0x63, 0x6b, 0x73},
                                 kLdx[] = {0x79, 0x61, 0x69, 0x71, 0x81, 0x89, 0x91};
        int16_t slot = static_cast<int16_t>(-8 * (1 + pick(8)));
        emit(kStx[pick(4)], 10, reg(), slot, 0);
        uint8_t ld = kLdx[pick(std::size(kLdx))];
        emit(ld, reg(), 10, static_cast<int16_t>(-8 * (1 + pick(8))), 0);
        break;
      }
      default: emit(pick(2) ? 0xbf : 0xbc, reg(), reg(), 0, 0); break;  // mov
    }
  }

  void jump(int body_end) {
    static constexpr uint8_t kConds[] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0};
    int room = body_end - static_cast<int>(out_.size()) - 1;
    if (room < 1) return alu();
    bool by_reg = pick(2);
    uint8_t op =
        static_cast<uint8_t>(kConds[pick(std::size(kConds))] | (pick(2) ? 0x05 : 0x06) | (by_reg ? 0x08 : 0));
    emit(op, reg(), by_reg ? reg() : 0, static_cast<int16_t>(pick(static_cast<uint32_t>(std::min(room, 8)))),
         by_reg ? 0 : interesting_imm());
  }

  void step(int body_end) {
    uint32_t k = pick(10);
    if (k < 6)
      alu();
    else if (k < 8)
      special();
    else
      jump(body_end);
  }

  std::mt19937 rng_;
  std::vector<RawInsn> out_;
};

TEST(KernelDiff, RandomProgramsAgreeWithTheKernel) {
  require_kernel();
  constexpr int kPrograms = 5000;
  int compared = 0, rejected = 0;
  std::string first_rejection;
  std::set<uint64_t> distinct;  // guards against a comparison of nothing but zeros
  for (int i = 0; i < kPrograms; ++i) {
    RandomProgram gen(0xeb0f0000u + static_cast<uint32_t>(i));
    auto insns = gen.make(32);
    std::vector<uint8_t> mem;
    auto k = run_in_kernel(insns, mem);
    if (!k) {
      if (first_rejection.empty()) first_rejection = k.error().message + "\n" + listing(insns);
      ++rejected;
      continue;
    }
    auto e = run_in_ember(insns, mem);
    ASSERT_TRUE(e.r0.ok()) << "program " << i << ": " << e.r0.error().message << "\n" << listing(insns);
    ASSERT_EQ(*e.r0, *k) << "program " << i << " (seed 0x" << std::hex << 0xeb0f0000u + i << ")\n"
                         << listing(insns);
    distinct.insert(*k);
    ++compared;
  }
  std::printf("kernel oracle: %d random programs agree, %d rejected by the kernel\n", compared, rejected);
  EXPECT_EQ(rejected, 0) << "first rejection: " << first_rejection;
  EXPECT_EQ(compared, kPrograms);
  EXPECT_GE(distinct.size(), kPrograms * 9 / 10u);
}

}  // namespace
}  // namespace ember::testing
