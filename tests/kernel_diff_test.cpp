// Ember's interpreter against the Linux kernel (BPF_PROG_LOAD +
// BPF_PROG_TEST_RUN, through tests/support/kernel_bpf) on the same bytecode:
// the bpf_conformance programs the kernel verifier accepts, and thousands of
// random ALU/ALU32/JMP/JMP32/stack programs. r0 and memory must agree.
// Skipped, visibly, where bpf() is not allowed or we are not root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <map>
#include <random>
#include <set>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "support/conformance_data.hpp"
#include "support/kernel_bpf.hpp"
#include "test_util.hpp"

namespace ember::testing {
namespace {

// Why the kernel cannot serve as the oracle here, or "".
std::string kernel_oracle_unavailable() {
  if (geteuid() != 0) return "kernel oracle skipped: not root (BPF_PROG_TEST_RUN needs CAP_SYS_ADMIN)";
  std::string why;
  if (!kernel_bpf_available(&why)) return "kernel oracle skipped: " + why;
  return "";
}

RawInsn insn(uint8_t opcode, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return raw(opcode, dst, src, off, imm);
}

std::string hex64(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016" PRIx64, v);
  return b;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Helper calls (src 0); the conformance suite numbers its helpers its own way.
bool calls_helpers(std::span<const RawInsn> insns) {
  for (const RawInsn& r : insns)
    if (r.opcode == 0x85 && r.src() == 0) return true;
  return false;
}

std::string listing(std::span<const RawInsn> insns) {
  auto prog = decode(insns);
  if (prog) return disassemble(*prog);
  std::string s = "(undecodable: " + prog.error().message + ")\n";
  for (const RawInsn& r : insns) {
    char b[48];
    std::snprintf(b, sizeof b, "  %02x %02x %04x %08x\n", r.opcode, r.regs, static_cast<uint16_t>(r.off),
                  static_cast<uint32_t>(r.imm));
    s += b;
  }
  return s;
}

// Where two memories first differ, for messages.
std::string mem_diff(const std::vector<uint8_t>& ember, const std::vector<uint8_t>& kernel) {
  if (ember.size() != kernel.size())
    return "sizes differ: Ember " + std::to_string(ember.size()) + ", kernel " +
           std::to_string(kernel.size());
  for (size_t i = 0; i < ember.size(); ++i)
    if (ember[i] != kernel[i]) {
      char b[96];
      std::snprintf(b, sizeof b, "first difference at byte %zu: Ember 0x%02x, kernel 0x%02x", i, ember[i],
                    kernel[i]);
      return b;
    }
  return "equal";
}

struct EmberRun {
  Result<uint64_t> r0 = Error{"not run"};
  std::vector<uint8_t> mem;
};

// Runs in the interpreter's checked mode, as the conformance tests do, and
// then in its fast mode (superinstructions), which must agree. Only called
// for programs the kernel's verifier accepted, so the fast mode is safe.
EmberRun run_in_ember(std::span<const RawInsn> insns, std::vector<uint8_t> mem, const HelperTable& helpers,
                      const TraceSink& trace = {}) {
  auto prog = decode(insns);
  if (!prog) return {prog.error(), mem};
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return {interp.error(), mem};
  std::vector<uint8_t> fast_mem = mem;
  RunOptions opts;
  opts.checked = true;
  opts.trace = trace;
  opts.random_seed = 1;
  auto r0 = interp->run(RunInput::memory(mem), opts);
  if (!r0) return {std::move(r0), std::move(mem)};
  RunOptions fast;
  fast.checked = false;
  fast.random_seed = 1;
  auto f = interp->run(RunInput::memory(fast_mem), fast);
  if (!f || *f != *r0 || fast_mem != mem)
    return {Error{"the fast mode disagrees with the checked mode: r0 = " + (f ? hex64(*f) : f.error().message) +
                  " instead of " + hex64(*r0) + (fast_mem != mem ? ", memory differs" : "")},
            std::move(mem)};
  return {std::move(r0), std::move(mem)};
}

// Whether the kernel knows the v4 instructions (sdiv, movsx, bswap, gotol,
// sign-extending loads): Linux 6.6 and later.
bool kernel_has_cpu_v4() {
  const RawInsn prog[] = {insn(0xb7, 0, 0, 0, 1), insn(0x37, 0, 0, 1, -1), insn(0x95, 0, 0, 0, 0)};
  return run_in_kernel(prog, {}).ok();
}

// The harness itself: memory goes in and comes back, r0 is 64 bits wide,
// local calls in the body work, and a rejection says why on its first line.
TEST(KernelDiff, HarnessRunsBodiesAndReportsRejections) {
  if (auto why = kernel_oracle_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto prog = assemble(
      "ldxdw %r0, [%r1]\n"
      "add %r0, %r2\n"
      "stxdw [%r1+8], %r0\n"
      "lddw %r3, 0x123456789abcdef0\n"
      "stxdw [%r1], %r3\n"
      "mov %r1, %r0\n"
      "call local twice\n"
      "exit\n"
      "twice:\n"
      "mov %r0, %r1\n"
      "lsh %r0, 1\n"
      "exit\n");
  ASSERT_TRUE(prog) << prog.error().message;
  std::vector<uint8_t> mem = {0x10, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0};
  std::vector<uint8_t> after;
  std::string note = "stale";
  auto k = run_in_kernel(*prog, mem, &note, &after);
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(*k, 0x40ull);  // (0x8000000000000010 + 16) << 1
  EXPECT_EQ(note, "");
  std::vector<uint8_t> want = {0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x20, 0, 0, 0, 0, 0, 0, 0x80};
  EXPECT_EQ(after, want) << mem_diff(after, want);
  auto e = run_in_ember(*prog, mem, default_helper_table());
  ASSERT_TRUE(e.r0) << e.r0.error().message;
  EXPECT_EQ(*e.r0, *k);
  EXPECT_EQ(e.mem, after);

  // One byte past the end of the memory.
  auto bad = assemble("ldxb %r0, [%r1+16]\nexit\n");
  ASSERT_TRUE(bad) << bad.error().message;
  std::string log;
  auto rejected = run_in_kernel(*bad, mem, &log);
  ASSERT_FALSE(rejected);
  EXPECT_TRUE(rejected.error().message.starts_with("kernel rejected")) << rejected.error().message;
  EXPECT_NE(rejected.error().message.find("invalid access to map value"), std::string::npos)
      << rejected.error().message;
  EXPECT_EQ(first_line(rejected.error().message).find("processed"), std::string::npos)
      << rejected.error().message;
  EXPECT_NE(log.find("processed"), std::string::npos) << log;
}

TEST(KernelDiff, ConformanceProgramsAgreeWithTheKernel) {
  if (auto why = kernel_oracle_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto files = conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  HelperTable helpers = conformance_helper_table();
  size_t compared = 0;
  std::vector<std::string> rejected, skipped_helpers, skipped_errors;
  for (const auto& f : files) {
    auto c = read_conformance_case(f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto insns = conformance_program(*c);
    ASSERT_TRUE(insns.ok()) << c->name << ": " << insns.error().message;
    // Expected rejections are the decoder tests' business.
    if (!c->error.empty()) {
      skipped_errors.push_back(c->name);
      continue;
    }
    if (calls_helpers(*insns)) {
      skipped_helpers.push_back(c->name);
      continue;
    }
    std::vector<uint8_t> kmem;
    auto k = run_in_kernel(*insns, c->mem, nullptr, &kmem);
    if (!k) {
      const std::string& m = k.error().message;
      if (!m.starts_with("kernel rejected")) {
        ADD_FAILURE() << c->name << ": the kernel harness failed: " << m;
        continue;
      }
      std::string why = first_line(m);
      why = why.substr(why.find("): ") + 3);
      rejected.push_back(c->name + ": " + why.substr(0, 100));
      continue;
    }
    auto e = run_in_ember(*insns, c->mem, helpers);
    ++compared;
    if (!e.r0) {
      ADD_FAILURE() << c->name << ": the kernel ran it (r0 = " << hex64(*k)
                    << ") but Ember failed: " << e.r0.error().message << "\n"
                    << listing(*insns);
      continue;
    }
    EXPECT_EQ(hex64(*e.r0), hex64(*k)) << c->name << ": r0 differs (Ember, kernel)\n" << listing(*insns);
    EXPECT_EQ(e.mem, kmem) << c->name << ": memory after the run differs: " << mem_diff(e.mem, kmem);
  }
  auto names = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none") : s;
  };
  std::printf(
      "kernel oracle: %zu of %zu conformance programs compared with the kernel, %zu rejected by its "
      "verifier, "
      "%zu skipped (helper calls: %s; expected errors: %s)\n",
      compared, files.size(), rejected.size(), skipped_helpers.size() + skipped_errors.size(),
      names(skipped_helpers).c_str(), names(skipped_errors).c_str());
  for (const auto& r : rejected) std::printf("  kernel rejected %s\n", r.c_str());
  // Linux 6.18 accepts 299 of the 313 (it rejects shifts by out-of-range
  // immediates and callx); kernels before 6.6 lack the v4 instructions.
  size_t at_least = kernel_has_cpu_v4() ? 295 : 150;
  ASSERT_GE(compared, at_least) << "too few conformance programs reached the kernel";
}

// ---------------------------------------------------------------------------
// Random programs. Every register starts with a 64-bit constant (often an
// edge value: 0, -1, INT_MIN...), the 64-byte stack area is initialized;
// then a body of ALU/ALU32 operations of every kind (division and modulo by
// zero, INT_MIN / -1, shift amounts past the width by register, movsx, byte
// swaps, neg), stack stores and loads of every size and signedness, and
// forward jumps (JMP and JMP32, conditional on registers and immediates, ja
// and gotol); finally every register and stack slot folded into r0.

constexpr int kSlots = 8;             // 8-byte stack slots at r10-8 .. r10-64
constexpr int16_t kMemPtrSlot = -72;  // memory programs keep r1 (the memory) here
constexpr size_t kMemSize = 64;

class RandomProgram {
 public:
  // With `memory`, programs also load, store and run atomics on the memory
  // at r1 (mem(), of kMemSize random bytes).
  RandomProgram(uint32_t seed, bool memory) : rng_(seed), memory_(memory) {}

  std::vector<RawInsn> make(int length) {
    out_.clear();
    mem_.clear();
    if (memory_) {
      for (size_t i = 0; i < kMemSize; ++i)
        mem_.push_back(static_cast<uint8_t>(pick(4) == 0 ? 0xff : rng_()));
      emit(0x7b, 10, 1, kMemPtrSlot, 0);  // *(u64 *)(r10 - 72) = r1
    }
    for (uint8_t r = 0; r <= 9; ++r) load_constant(r);
    for (int s = 1; s <= kSlots; ++s) {
      if (pick(2))
        emit(0x7a, 10, 0, static_cast<int16_t>(-8 * s), interesting_imm());  // *(u64 *)(r10 - 8s) = imm
      else
        emit(0x7b, 10, reg(), static_cast<int16_t>(-8 * s), 0);  // *(u64 *)(r10 - 8s) = rN
    }
    body_start_ = out_.size();
    size_t body_end = body_start_ + static_cast<size_t>(length);
    jumps_.clear();
    guarded_.clear();
    while (out_.size() < body_end) step(body_end);
    body_end_ = out_.size();
    land_outside_guarded();
    constexpr int32_t kGolden = static_cast<int32_t>(0x9e3779b1u);
    for (uint8_t r = 1; r <= 9; ++r) {
      emit(0x27, 0, 0, 0, kGolden);  // r0 *= golden ratio (odd: a bijection)
      emit(0xaf, 0, r, 0, 0);        // r0 ^= rN
    }
    for (int s = 1; s <= kSlots; ++s) {
      emit(0x79, 1, 10, static_cast<int16_t>(-8 * s), 0);  // r1 = *(u64 *)(r10 - 8s)
      emit(0x27, 0, 0, 0, kGolden);
      emit(0xaf, 0, 1, 0, 0);
    }
    emit(0x95, 0, 0, 0, 0);
    return out_;
  }
  size_t body_start() const { return body_start_; }
  const std::vector<uint8_t>& mem() const { return mem_; }
  // The body in pieces that can go away one at a time: single instructions,
  // and each memory access whole (without its last instruction, X would
  // leak the pointer's value).
  std::vector<std::pair<size_t, size_t>> units() const {
    std::vector<std::pair<size_t, size_t>> u;
    size_t g = 0;
    for (size_t i = body_start_; i < body_end_;) {
      while (g < guarded_.size() && guarded_[g].second <= i) ++g;
      size_t end = g < guarded_.size() && guarded_[g].first == i ? guarded_[g].second : i + 1;
      u.emplace_back(i, end);
      i = end;
    }
    return u;
  }
  size_t body_end() const { return body_end_; }

 private:
  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  uint8_t reg() { return static_cast<uint8_t>(pick(10)); }

  int32_t interesting_imm() {
    static constexpr int32_t kImms[] = {0,    1,      -1,      2,      -2,        7,         31,
                                        32,   33,     63,      64,     INT32_MIN, INT32_MAX, 0xff,
                                        0x80, 0xffff, -0x8000, 0x8000, 0x7f,      0x7fff};
    return pick(3) == 0 ? static_cast<int32_t>(rng_()) : kImms[pick(std::size(kImms))];
  }

  uint64_t interesting_u64() {
    static constexpr uint64_t kVals[] = {0,
                                         1,
                                         ~0ull,
                                         0x8000000000000000ull,
                                         0x7fffffffffffffffull,
                                         0xffffffffull,
                                         0x80000000ull,
                                         0x7fffffffull,
                                         0xffffffff80000000ull,
                                         0x100000000ull,
                                         0x8000000080000000ull,
                                         0xffffffff00000000ull,
                                         31,
                                         32,
                                         63,
                                         64,
                                         0x80,
                                         0x8000};
    if (pick(2)) return kVals[pick(std::size(kVals))];
    return (static_cast<uint64_t>(rng_()) << 32) | rng_();
  }

  void emit(uint8_t op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    out_.push_back(insn(op, dst, src, off, imm));
  }

  void load_constant(uint8_t r) {
    uint64_t v = interesting_u64();
    emit(0x18, r, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v)));
    emit(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v >> 32)));
  }

  void alu() {
    // add sub mul div or and lsh rsh mod xor mov arsh
    static constexpr uint8_t kOps[] = {0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60,
                                       0x70, 0x90, 0xa0, 0xb0, 0xc0, 0x30, 0x90};
    uint8_t op = kOps[pick(std::size(kOps))];
    bool wide = pick(2), by_reg = pick(3) != 0;
    uint8_t cls = wide ? 0x07 : 0x04;
    int32_t imm = interesting_imm();
    bool shift = op == 0x60 || op == 0x70 || op == 0xc0;
    bool div = op == 0x30 || op == 0x90;
    if (shift && !by_reg) imm = static_cast<int32_t>(pick(wide ? 64 : 32));  // the verifier rejects larger
    if (div && !by_reg && (imm == 0 || pick(4) == 0)) imm = -1;  // the verifier rejects division by 0
    int16_t off = div && pick(2) ? 1 : 0;                        // sdiv / smod
    emit(static_cast<uint8_t>(op | cls | (by_reg ? 0x08 : 0)), reg(), by_reg ? reg() : 0, off,
         by_reg ? 0 : imm);
  }

  // An edge value in a register, so that divisions meet INT_MIN / -1 and 0.
  void edge_value() {
    uint8_t r = reg();
    switch (pick(5)) {
      case 0: emit(0xb7, r, 0, 0, -1); break;         // r = -1
      case 1: emit(0xb4, r, 0, 0, INT32_MIN); break;  // w = INT32_MIN
      case 2: emit(0xb7, r, 0, 0, INT32_MIN); break;  // r = (s64)INT32_MIN
      case 3: emit(0xb7, r, 0, 0, 0); break;          // r = 0
      default:                                        // r = INT64_MIN
        emit(0xb7, r, 0, 0, 1);
        emit(0x67, r, 0, 0, 63);
        break;
    }
  }

  void special() {
    switch (pick(5)) {
      case 4: edge_value(); break;
      case 0: emit(pick(2) ? 0x87 : 0x84, reg(), 0, 0, 0); break;  // neg, neg32
      case 1: {                                                    // movsx
        static constexpr int16_t kWidths64[] = {8, 16, 32}, kWidths32[] = {8, 16};
        if (pick(2))
          emit(0xbf, reg(), reg(), kWidths64[pick(3)], 0);
        else
          emit(0xbc, reg(), reg(), kWidths32[pick(2)], 0);
        break;
      }
      case 2: {  // le, be, bswap
        static constexpr uint8_t kOps[] = {0xd4, 0xdc, 0xd7};
        static constexpr int32_t kWidths[] = {16, 32, 64};
        emit(kOps[pick(3)], reg(), 0, 0, kWidths[pick(3)]);
        break;
      }
      default: emit(pick(2) ? 0xbf : 0xbc, reg(), reg(), 0, 0); break;  // mov, mov32
    }
  }

  // A naturally aligned access of 1, 2, 4 or 8 bytes inside the stack area.
  int16_t stack_off(int size) {
    int slot = 1 + static_cast<int>(pick(kSlots));
    return static_cast<int16_t>(-8 * slot + size * static_cast<int>(pick(8 / size)));
  }

  void stack() {
    static constexpr int kSizeOf[] = {4, 2, 1, 8};  // by the size field: W H B DW
    uint8_t size_bits = static_cast<uint8_t>(pick(4) << 3);
    int size = kSizeOf[size_bits >> 3];
    switch (pick(3)) {
      case 0: emit(static_cast<uint8_t>(0x63 | size_bits), 10, reg(), stack_off(size), 0); break;  // stx
      case 1: emit(static_cast<uint8_t>(0x62 | size_bits), 10, 0, stack_off(size), interesting_imm()); break;
      default: {  // ldx, or the sign-extending ldsx (not for 8 bytes)
        bool sx = size != 8 && pick(2);
        emit(static_cast<uint8_t>((sx ? 0x81 : 0x61) | size_bits), reg(), 10, stack_off(size), 0);
        break;
      }
    }
  }

  void jump(size_t body_end) {
    // jeq jgt jge jset jne jsgt jsge jlt jle jslt jsle
    static constexpr uint8_t kConds[] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0};
    int room = static_cast<int>(body_end - out_.size()) - 1;  // may land on body_end: the epilogue
    if (room < 1) return alu();
    int16_t off = static_cast<int16_t>(pick(static_cast<uint32_t>(std::min(room, 10)) + 1));
    if (room >= 2 && pick(10) == 0) {
      // ja or gotol over what a conditional jump around it reaches (the
      // verifier rejects unreachable instructions).
      emit(static_cast<uint8_t>(kConds[pick(std::size(kConds))] | (pick(2) ? 0x05 : 0x06)), reg(), 0, 1,
           interesting_imm());
      off = static_cast<int16_t>(pick(static_cast<uint32_t>(std::min(room - 1, 10)) + 1));
      jumps_.push_back(out_.size());
      if (pick(2))
        emit(0x05, 0, 0, off, 0);
      else
        emit(0x06, 0, 0, 0, off);
      return;
    }
    bool by_reg = pick(2);
    uint8_t op =
        static_cast<uint8_t>(kConds[pick(std::size(kConds))] | (pick(2) ? 0x05 : 0x06) | (by_reg ? 0x08 : 0));
    jumps_.push_back(out_.size());
    emit(op, reg(), by_reg ? reg() : 0, off, by_reg ? 0 : interesting_imm());
  }

  // One access to the memory through a register X that holds the pointer
  // (filled from the stack) only for this access: X = ptr; op; X = imm.
  void memory_access() {
    static constexpr int kSizeOf[] = {4, 2, 1, 8};
    uint8_t x = static_cast<uint8_t>(1 + pick(9)), y;  // X is never r0, which cmpxchg writes
    do y = reg();
    while (y == x);  // the pointer must not leak into memory
    uint8_t size_bits = static_cast<uint8_t>(pick(4) << 3);
    int size = kSizeOf[size_bits >> 3];
    int16_t off = static_cast<int16_t>(size * static_cast<int>(pick(static_cast<uint32_t>(kMemSize) / size)));
    size_t first = out_.size();
    emit(0x79, x, 10, kMemPtrSlot, 0);
    bool overwrite = true;
    switch (pick(4)) {
      case 0: emit(static_cast<uint8_t>(0x63 | size_bits), x, y, off, 0); break;                  // stx
      case 1: emit(static_cast<uint8_t>(0x62 | size_bits), x, 0, off, interesting_imm()); break;  // st
      case 2: {  // ldx, ldsx; into X itself sometimes
        bool sx = size != 8 && pick(2);
        uint8_t dst = pick(4) == 0 ? x : y;
        overwrite = dst != x;
        emit(static_cast<uint8_t>((sx ? 0x81 : 0x61) | size_bits), dst, x, off, 0);
        break;
      }
      default: {  // atomics: 4 or 8 bytes, aligned
        static constexpr int32_t kAtomics[] = {0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1};
        bool wide = pick(2);
        off = static_cast<int16_t>((wide ? 8 : 4) * static_cast<int>(pick(kMemSize / (wide ? 8 : 4))));
        emit(wide ? 0xdb : 0xc3, x, y, off, kAtomics[pick(std::size(kAtomics))]);
        break;
      }
    }
    if (overwrite) emit(0xb7, x, 0, 0, interesting_imm());
    guarded_.emplace_back(first, out_.size());
  }

  // A jump into a memory access would find X not holding the pointer: such
  // jumps land on the access's first instruction instead.
  void land_outside_guarded() {
    for (size_t j : jumps_) {
      RawInsn& r = out_[j];
      bool ja32 = r.opcode == 0x06;
      size_t target = j + 1 + static_cast<size_t>(ja32 ? r.imm : r.off);
      for (auto [first, end] : guarded_)
        if (first < target && target < end) target = first;
      int delta = static_cast<int>(target - j - 1);
      if (ja32)
        r.imm = delta;
      else
        r.off = static_cast<int16_t>(delta);
    }
  }

  void step(size_t body_end) {
    if (memory_ && pick(4) == 0) return memory_access();
    uint32_t k = pick(20);
    if (k < 10)
      alu();
    else if (k < 13)
      special();
    else if (k < 15)
      stack();
    else
      jump(body_end);
  }

  std::mt19937 rng_;
  bool memory_;
  std::vector<RawInsn> out_;
  std::vector<size_t> jumps_;                       // indices of the body's jumps
  std::vector<std::pair<size_t, size_t>> guarded_;  // memory accesses: no jump lands inside
  std::vector<uint8_t> mem_;
  size_t body_start_ = 0, body_end_ = 0;
};

// What the random programs exercised, seen through Ember's trace: every
// instruction kind executed, the edge cases of division and shifts met, each
// conditional jump both taken and not.
class Coverage {
 public:
  TraceSink sink(const Program& prog) {
    prog_ = &prog;
    pending_jump_ = -1;
    return [this](const TraceStep& s) { step(s); };
  }

  void expect_complete() const {
    std::vector<std::string> missing;
    for (const OpInfo& info : op_table()) {
      switch (info.form) {
        case Form::AluImm:
        case Form::AluReg:
        case Form::AluUnary:
        case Form::Endian:
        case Form::Ja:
        case Form::Ja32:
        case Form::St:
        case Form::Stx:
        case Form::Ldx:
        case Form::Atomic:
          if (!executed_.count(info.op)) missing.push_back(std::string("executed ") + info.name);
          break;
        case Form::JmpImm:
        case Form::JmpReg: {
          auto it = branches_.find(info.op);
          if (it == branches_.end() || it->second[0] == 0)
            missing.push_back(std::string("not taken ") + info.name);
          if (it == branches_.end() || it->second[1] == 0)
            missing.push_back(std::string("taken ") + info.name);
          break;
        }
        default: break;
      }
    }
    for (Op op : {Op::DIV64_REG, Op::DIV32_REG, Op::MOD64_REG, Op::MOD32_REG, Op::SDIV64_REG, Op::SDIV32_REG,
                  Op::SMOD64_REG, Op::SMOD32_REG})
      if (!by_zero_.count(op)) missing.push_back(std::string("by zero ") + op_info(op).name);
    for (Op op : {Op::SDIV64_REG, Op::SDIV32_REG, Op::SMOD64_REG, Op::SMOD32_REG, Op::SDIV64_IMM,
                  Op::SDIV32_IMM, Op::SMOD64_IMM, Op::SMOD32_IMM})
      if (!min_by_minus1_.count(op)) missing.push_back(std::string("INT_MIN / -1 ") + op_info(op).name);
    for (Op op : {Op::LSH64_REG, Op::LSH32_REG, Op::RSH64_REG, Op::RSH32_REG, Op::ARSH64_REG, Op::ARSH32_REG})
      if (!wide_shift_.count(op)) missing.push_back(std::string("shift past the width ") + op_info(op).name);
    std::string all;
    for (const auto& m : missing) all += "\n  " + m;
    EXPECT_TRUE(missing.empty()) << "the random programs never exercised:" << all;
  }

  std::string summary() const {
    uint64_t n = 0;
    for (const auto& [op, count] : executed_) n += count;
    uint64_t zero = 0, minus1 = 0, shifts = 0;
    for (const auto& [op, count] : by_zero_) zero += count;
    for (const auto& [op, count] : min_by_minus1_) minus1 += count;
    for (const auto& [op, count] : wide_shift_) shifts += count;
    char b[256];
    std::snprintf(b, sizeof b,
                  "%" PRIu64 " instructions of %zu kinds executed; %" PRIu64 " divisions by zero, %" PRIu64
                  " INT_MIN / -1, %" PRIu64 " shifts past the width; %zu conditional jumps both ways",
                  n, executed_.size(), zero, minus1, shifts, both_ways());
    return b;
  }

 private:
  size_t both_ways() const {
    size_t n = 0;
    for (const auto& [op, tn] : branches_) n += tn[0] && tn[1];
    return n;
  }

  void step(const TraceStep& s) {
    if (pending_jump_ >= 0) {
      const Inst& j = prog_->insts[static_cast<size_t>(pending_jump_)];
      ++branches_[j.op][s.pc == j.target ? 1 : 0];
      pending_jump_ = -1;
    }
    const Inst& in = prog_->insts[s.pc];
    ++executed_[in.op];
    const OpInfo& info = in.info();
    if ((info.form == Form::JmpImm || info.form == Form::JmpReg) && in.target != s.pc + 1)
      pending_jump_ = static_cast<int64_t>(s.pc);
    bool wide = (info.opcode & 0x07) == 0x07;
    uint64_t mask = wide ? ~0ull : 0xffffffffull;
    uint64_t int_min = wide ? 0x8000000000000000ull : 0x80000000ull;
    uint64_t dst = s.regs[in.dst] & mask;
    uint64_t src = info.form == Form::AluReg ? s.regs[in.src] & mask : in.imm64 & mask;
    switch (in.op) {
      case Op::DIV64_REG:
      case Op::DIV32_REG:
      case Op::MOD64_REG:
      case Op::MOD32_REG:
        if (src == 0) ++by_zero_[in.op];
        break;
      case Op::SDIV64_REG:
      case Op::SDIV32_REG:
      case Op::SMOD64_REG:
      case Op::SMOD32_REG:
      case Op::SDIV64_IMM:
      case Op::SDIV32_IMM:
      case Op::SMOD64_IMM:
      case Op::SMOD32_IMM:
        if (src == 0) ++by_zero_[in.op];
        if (dst == int_min && src == mask) ++min_by_minus1_[in.op];
        break;
      case Op::LSH64_REG:
      case Op::RSH64_REG:
      case Op::ARSH64_REG:
        if (s.regs[in.src] >= 64) ++wide_shift_[in.op];
        break;
      case Op::LSH32_REG:
      case Op::RSH32_REG:
      case Op::ARSH32_REG:
        if (s.regs[in.src] >= 32) ++wide_shift_[in.op];
        break;
      default: break;
    }
  }

  const Program* prog_ = nullptr;
  int64_t pending_jump_ = -1;
  std::map<Op, uint64_t> executed_, by_zero_, min_by_minus1_, wide_shift_;
  std::map<Op, std::array<uint64_t, 2>> branches_;  // [not taken, taken]
};

struct Outcome {
  Result<uint64_t> kernel = Error{"not run"};
  Result<uint64_t> ember = Error{"not run"};
  std::vector<uint8_t> kernel_mem, ember_mem;
  bool mismatch() const {
    return kernel.ok() && (!ember.ok() || *ember != *kernel || ember_mem != kernel_mem);
  }
};

Outcome run_both(std::span<const RawInsn> insns, const std::vector<uint8_t>& mem, const HelperTable& helpers,
                 const TraceSink& trace = {}) {
  Outcome o;
  o.kernel = run_in_kernel(insns, mem, nullptr, &o.kernel_mem);
  if (!o.kernel) return o;
  EmberRun e = run_in_ember(insns, mem, helpers, trace);
  o.ember = std::move(e.r0);
  o.ember_mem = std::move(e.mem);
  return o;
}

// Shrinks a mismatching program by turning pieces of its body into
// `goto +0` while the mismatch stays, so that a report shows what matters.
std::vector<RawInsn> minimize(std::vector<RawInsn> insns, const std::vector<std::pair<size_t, size_t>>& units,
                              const std::vector<uint8_t>& mem, const HelperTable& helpers) {
  for (auto [first, end] : units) {
    std::vector<RawInsn> keep(insns.begin() + static_cast<ptrdiff_t>(first),
                              insns.begin() + static_cast<ptrdiff_t>(end));
    for (size_t i = first; i < end; ++i) insns[i] = insn(0x05, 0, 0, 0, 0);
    if (!run_both(insns, mem, helpers).mismatch()) std::copy(keep.begin(), keep.end(), insns.begin() + first);
  }
  return insns;
}

std::string result_text(const Result<uint64_t>& r) { return r ? hex64(*r) : "error: " + r.error().message; }

// Which registers and stack slots differ at the end of the body: the body
// followed by `r0 = rN; exit` or `r0 = *(u64 *)(r10 - 8s); exit`.
std::string state_diff(std::span<const RawInsn> insns, size_t body_end, const std::vector<uint8_t>& mem,
                       const HelperTable& helpers) {
  std::string out;
  for (int n = 0; n <= 9 + kSlots; ++n) {
    std::vector<RawInsn> probe(insns.begin(), insns.begin() + static_cast<ptrdiff_t>(body_end));
    if (n <= 9)
      probe.push_back(insn(0xbf, 0, static_cast<uint8_t>(n), 0, 0));
    else
      probe.push_back(insn(0x79, 0, 10, static_cast<int16_t>(-8 * (n - 9)), 0));
    probe.push_back(insn(0x95, 0, 0, 0, 0));
    Outcome o = run_both(probe, mem, helpers);
    if (!o.kernel || (o.ember && *o.ember == *o.kernel)) continue;
    std::string where =
        n <= 9 ? "r" + std::to_string(n) : "*(u64 *)(r10 - " + std::to_string(8 * (n - 9)) + ")";
    out += "  " + where + ": Ember " + result_text(o.ember) + ", kernel " + result_text(o.kernel) + "\n";
  }
  Outcome whole = run_both(insns, mem, helpers);
  if (whole.ember_mem != whole.kernel_mem)
    out += "  memory after the run: " + mem_diff(whole.ember_mem, whole.kernel_mem) + "\n";
  return out.empty() ? "  (no single register, slot or memory byte differs)\n" : out;
}

TEST(KernelDiff, RandomProgramsAgreeWithTheKernel) {
  if (auto why = kernel_oracle_unavailable(); !why.empty()) GTEST_SKIP() << why;
  if (!kernel_has_cpu_v4()) GTEST_SKIP() << "this kernel lacks the v4 instructions (sdiv, movsx, bswap...)";
  // Even programs: registers and stack only; odd ones: also the memory at r1
  // (loads, stores, atomics), which must agree after the run too.
  constexpr int kPrograms = 10000;
  constexpr uint32_t kSeed = 0xeb0f0000u;
  HelperTable helpers = default_helper_table();
  Coverage coverage;
  int compared = 0, rejected = 0, mismatches = 0, memory_programs = 0, memory_changed = 0;
  std::string first_rejection;
  std::set<uint64_t> distinct;  // guards against comparing nothing but constants
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kPrograms; ++i) {
    uint32_t seed = kSeed + static_cast<uint32_t>(i);
    RandomProgram gen(seed, i % 2 == 1);
    auto insns = gen.make(8 + i % 57);  // bodies of 8 to 64 instructions
    auto prog = decode(insns);
    ASSERT_TRUE(prog) << "program " << i << ": " << prog.error().message;
    Outcome o = run_both(insns, gen.mem(), helpers, coverage.sink(*prog));
    if (!o.kernel) {
      if (first_rejection.empty()) first_rejection = o.kernel.error().message + "\n" + listing(insns);
      ++rejected;
      continue;
    }
    ++compared;
    if (i % 2 == 1) {
      ++memory_programs;
      memory_changed += o.kernel_mem != gen.mem();
    }
    if (!o.mismatch()) {
      distinct.insert(*o.kernel);
      continue;
    }
    if (++mismatches > 5) continue;  // the first five are reported in full
    auto small = minimize(insns, gen.units(), gen.mem(), helpers);
    Outcome m = run_both(small, gen.mem(), helpers);
    ADD_FAILURE() << "program " << i << " (seed 0x" << std::hex << seed << std::dec << "): Ember "
                  << result_text(o.ember) << ", kernel " << hex64(*o.kernel)
                  << "; memory after: " << mem_diff(o.ember_mem, o.kernel_mem) << "\n"
                  << listing(insns) << "minimized (Ember " << result_text(m.ember) << ", kernel "
                  << result_text(m.kernel) << "):\n"
                  << listing(small) << "at the end of the minimized body:\n"
                  << state_diff(small, gen.body_end(), gen.mem(), helpers);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "kernel oracle: %d random programs compared (%d agree, %d differ), %d rejected by the kernel, "
      "in %.1f s; %d of the %d with memory changed it\n  coverage: %s\n",
      compared, compared - mismatches, mismatches, rejected, seconds, memory_changed, memory_programs,
      coverage.summary().c_str());
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(rejected, 0) << "first rejection: " << first_rejection;
  EXPECT_EQ(compared, kPrograms);
  EXPECT_GE(distinct.size(), static_cast<size_t>(compared - mismatches) * 9 / 10);
  EXPECT_GE(memory_changed, memory_programs * 3 / 4);
  coverage.expect_complete();
}

}  // namespace
}  // namespace ember::testing
