// Which registers the hook trampolines give back (LiveRegs in
// src/attach/trampoline.hpp): every register at an offset into a function
// (the default), the SysV ABI's live registers at a function's entry and
// return with HookOptions::function_entry. The hook clobbers every register
// a C++ function may, leaves the ymm upper halves dirty and checks that it
// runs with DF clear. Functions in assembly load every register from hk_in
// and store them to hk_out around the probed point.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "attach/hooks.hpp"
#include "support/regs_asm.hpp"

using namespace ember::attach;

namespace {

// gpr: rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 rflags.
enum Gpr { kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kFlags };
struct RegFile {
  uint64_t gpr[16];
  alignas(32) uint8_t ymm[16][32];
};
static_assert(offsetof(RegFile, ymm) == 128);

}  // namespace

extern "C" {
__attribute__((used)) RegFile hk_in;
__attribute__((used)) RegFile hk_out;
void hk_regs_mid();        // loads, probed point hk_regs_mid_site, stores
void hk_regs_mid_site();   // (a label inside hk_regs_mid)
void hk_regs_call();       // loads, calls hk_regs_entry (which stores first thing)
void hk_regs_entry();      //
void hk_regs_ret_drive();  // calls hk_regs_ret (which loads and returns), stores
void hk_regs_ret();        //
}

asm(EMBER_TEST_REGS_ASM R"(
  .macro HK_LOAD
  EMBER_LOAD_REGS hk_in, 128
  .endm
  .macro HK_STORE
  EMBER_STORE_REGS hk_out, 128
  .endm
  .macro HK_PUSH_CALLEE_SAVED
  EMBER_PUSH_CALLEE_SAVED
  .endm
  .macro HK_POP_CALLEE_SAVED
  EMBER_POP_CALLEE_SAVED
  vzeroupper
  .endm

  .text
  .p2align 4
  .globl hk_regs_mid
  .globl hk_regs_mid_site
  .type hk_regs_mid, @function
hk_regs_mid:
  HK_PUSH_CALLEE_SAVED
  HK_LOAD
hk_regs_mid_site:
  nopl 0(%rax,%rax,1)
  nopl 0(%rax,%rax,1)
  HK_STORE
  HK_POP_CALLEE_SAVED
  ret
  .size hk_regs_mid, .-hk_regs_mid

  .p2align 4
  .globl hk_regs_call
  .type hk_regs_call, @function
hk_regs_call:
  HK_PUSH_CALLEE_SAVED
  sub $8, %rsp
  HK_LOAD
  cld
  call hk_regs_entry
  add $8, %rsp
  HK_POP_CALLEE_SAVED
  ret
  .size hk_regs_call, .-hk_regs_call

  .p2align 4
  .globl hk_regs_entry
  .type hk_regs_entry, @function
hk_regs_entry:
  nopl 0(%rax,%rax,1)
  HK_STORE
  ret
  .size hk_regs_entry, .-hk_regs_entry

  .p2align 4
  .globl hk_regs_ret_drive
  .type hk_regs_ret_drive, @function
hk_regs_ret_drive:
  HK_PUSH_CALLEE_SAVED
  sub $8, %rsp
  call hk_regs_ret
  HK_STORE
  add $8, %rsp
  HK_POP_CALLEE_SAVED
  ret
  .size hk_regs_ret_drive, .-hk_regs_ret_drive

  .p2align 4
  .globl hk_regs_ret
  .type hk_regs_ret, @function
hk_regs_ret:
  nopl 0(%rax,%rax,1)
  HK_LOAD
  cld
  ret
  .size hk_regs_ret, .-hk_regs_ret
)");

namespace {

constexpr uint64_t kClobber = 0xA5A5A5A5A5A5A5A5ull;
// CF PF AF ZF SF OF, and DF (0x400) where the site allows it, plus bit 1.
constexpr uint64_t kArithFlags = 0x8D5;
constexpr uint64_t kDf = 0x400;
constexpr uint64_t kOf = 0x800;

struct HookSeen {
  int hits = 0;
  bool df_set = false;
};

// Clobbers every register a C++ function may (the caller-saved general
// registers, the flags, all 16 ymm registers whole) and leaves the upper
// halves dirty; records whether DF was set when it ran.
void clobber_all(void* data, PtRegs*) {
  auto* seen = static_cast<HookSeen*>(data);
  uint64_t flags;
  asm volatile("pushfq; pop %0" : "=r"(flags));
  seen->df_set |= (flags & kDf) != 0;
  ++seen->hits;
  asm volatile(
      "mov %0, %%rax; mov %0, %%rcx; mov %0, %%rdx; mov %0, %%rsi; mov %0, %%rdi\n"
      "mov %0, %%r8; mov %0, %%r9; mov %0, %%r10; mov %0, %%r11\n"
      "vmovq %%rax, %%xmm15; vpunpcklqdq %%xmm15, %%xmm15, %%xmm15\n"
      "vinsertf128 $1, %%xmm15, %%ymm15, %%ymm15\n"
      ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n vmovaps %%ymm15, %%ymm\\i\n .endr\n"
      "xor %%eax, %%eax; mov %0, %%rax\n"  // flags: ZF, PF set, CF clear
      :
      : "i"(static_cast<int64_t>(kClobber))
      : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
}

// Distinct values everywhere; upper ymm halves zero when `clean_uppers`
// (the trampolines take another path then).
void fill_inputs(uint64_t flags, bool clean_uppers) {
  for (int i = 0; i < 15; ++i) hk_in.gpr[i] = 0x0101010101010101ull * static_cast<uint64_t>(i + 1) + 0x1000;
  hk_in.gpr[kFlags] = flags | 0x2;
  for (int r = 0; r < 16; ++r)
    for (int b = 0; b < 32; ++b)
      hk_in.ymm[r][b] = (clean_uppers && b >= 16) ? 0 : static_cast<uint8_t>(r * 32 + b + 1);
  std::memset(&hk_out, 0, sizeof hk_out);
}

bool ymm_equal(int r) { return std::memcmp(hk_in.ymm[r], hk_out.ymm[r], 32) == 0; }
bool xmm_clobbered(int r) {
  uint64_t lo;
  std::memcpy(&lo, hk_out.ymm[r], 8);
  return lo == kClobber;
}

const char* const kGprNames[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                 "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

void expect_gprs(std::initializer_list<Gpr> regs) {
  for (Gpr g : regs) EXPECT_EQ(hk_out.gpr[g], hk_in.gpr[g]) << kGprNames[g];
}

void expect_ymms(int n) {
  for (int r = 0; r < n; ++r) EXPECT_TRUE(ymm_equal(r)) << "ymm" << r;
}

bool have_avx() { return __builtin_cpu_supports("avx"); }

std::unique_ptr<HookEngine> engine() {
  auto e = HookEngine::create();
  if (!e) {
    ADD_FAILURE() << e.error().message;
    return nullptr;
  }
  return std::move(*e);
}

constexpr std::initializer_list<Gpr> kAllGprs = {kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kR8,
                                                 kR9,  kR10, kR11, kR12, kR13, kR14, kR15};
constexpr std::initializer_list<Gpr> kCalleeSaved = {kRbx, kRbp, kR12, kR13, kR14, kR15};

}  // namespace

TEST(AttachHookRegs, AnOffsetIntoAFunctionGetsEveryRegisterBack) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen seen;
  auto id = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_mid_site), HookKind::Entry, clobber_all, &seen);
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(eng->method(*id), HookMethod::Inline);
  // DF set takes the popfq path; the others the sahf one (OF separately).
  const uint64_t flag_sets[] = {kArithFlags | kDf, kArithFlags, 0, kOf, 0x1, kArithFlags & ~kOf};
  for (uint64_t flags : flag_sets) {
    for (bool clean : {false, true}) {
      SCOPED_TRACE(testing::Message() << (clean ? "upper halves zero" : "upper halves set") << ", flags 0x"
                                      << std::hex << flags);
      fill_inputs(flags, clean);
      hk_regs_mid();
      expect_gprs(kAllGprs);
      EXPECT_EQ(hk_out.gpr[kFlags] & (kArithFlags | kDf), flags);
      expect_ymms(16);
    }
  }
  EXPECT_EQ(seen.hits, 12);
  EXPECT_FALSE(seen.df_set) << "the hook ran with DF set";
}

TEST(AttachHookRegs, FunctionEntryKeepsTheAbiLiveRegistersAndOnlyThose) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen seen;
  HookOptions opts;
  opts.function_entry = true;
  auto id =
      eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_entry), HookKind::Entry, clobber_all, &seen, opts);
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(eng->method(*id), HookMethod::Inline);
  for (bool clean : {false, true}) {
    SCOPED_TRACE(clean ? "upper halves zero" : "upper halves set");
    fill_inputs(kArithFlags, clean);
    hk_regs_call();
    // Arguments, the varargs count, the static chain, callee-saved.
    expect_gprs({kRdi, kRsi, kRdx, kRcx, kR8, kR9, kRax, kR10});
    expect_gprs(kCalleeSaved);
    expect_ymms(8);  // vector arguments, upper halves included
    // Dead by the ABI and not saved: the hook's values show (this is what
    // makes the hit cheaper; a full save here would fail this).
    for (int r = 8; r < 16; ++r) EXPECT_TRUE(xmm_clobbered(r)) << "xmm" << r;
  }
  EXPECT_EQ(seen.hits, 2);
}

TEST(AttachHookRegs, FunctionReturnKeepsTheResultAndCalleeSavedRegisters) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen seen;
  HookOptions opts;
  opts.function_entry = true;
  auto id =
      eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_ret), HookKind::Return, clobber_all, &seen, opts);
  ASSERT_TRUE(id) << id.error().message;
  for (bool clean : {false, true}) {
    SCOPED_TRACE(clean ? "upper halves zero" : "upper halves set");
    fill_inputs(kArithFlags, clean);
    hk_regs_ret_drive();
    expect_gprs({kRax, kRdx});
    expect_gprs(kCalleeSaved);
    expect_ymms(2);  // xmm0-1 results, ymm0 for __m256
    for (int r = 2; r < 16; ++r) EXPECT_TRUE(xmm_clobbered(r)) << "xmm" << r;
  }
  EXPECT_EQ(seen.hits, 2);
}

TEST(AttachHookRegs, ReturnHooksWithoutFunctionEntryGiveEveryRegisterBack) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen seen;
  auto id = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_ret), HookKind::Return, clobber_all, &seen);
  ASSERT_TRUE(id) << id.error().message;
  for (uint64_t flags : {kArithFlags, kOf, uint64_t{0}}) {
    for (bool clean : {false, true}) {
      SCOPED_TRACE(testing::Message() << (clean ? "upper halves zero" : "upper halves set") << ", flags 0x"
                                      << std::hex << flags);
      fill_inputs(flags, clean);
      hk_regs_ret_drive();
      expect_gprs(kAllGprs);
      EXPECT_EQ(hk_out.gpr[kFlags] & kArithFlags, flags);
      expect_ymms(16);
    }
  }
  EXPECT_EQ(seen.hits, 6);
}

TEST(AttachHookRegs, AHookWithoutFunctionEntryWidensASharedSite) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen a, b;
  HookOptions entry;
  entry.function_entry = true;
  auto ia = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_entry), HookKind::Entry, clobber_all, &a, entry);
  ASSERT_TRUE(ia) << ia.error().message;
  fill_inputs(kArithFlags, false);
  hk_regs_call();
  EXPECT_TRUE(xmm_clobbered(15));
  // The site is patched with the reduced save; this hook needs everything.
  auto ib = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_entry), HookKind::Entry, clobber_all, &b);
  ASSERT_TRUE(ib) << ib.error().message;
  for (bool clean : {false, true}) {
    fill_inputs(kArithFlags, clean);
    hk_regs_call();
    expect_gprs(kAllGprs);
    EXPECT_EQ(hk_out.gpr[kFlags] & kArithFlags, kArithFlags);
    expect_ymms(16);
  }
  EXPECT_EQ(a.hits, 3);
  EXPECT_EQ(b.hits, 2);
  EXPECT_TRUE(eng->detach(*ib));
  EXPECT_TRUE(eng->detach(*ia));
  hk_regs_call();
  EXPECT_EQ(a.hits + b.hits, 5);
}

TEST(AttachHookRegs, AReturnHookWithoutFunctionEntryWidensASharedSite) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen a, b;
  HookOptions entry;
  entry.function_entry = true;
  auto ia = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_ret), HookKind::Return, clobber_all, &a, entry);
  ASSERT_TRUE(ia) << ia.error().message;
  fill_inputs(kArithFlags, false);
  hk_regs_ret_drive();
  EXPECT_TRUE(xmm_clobbered(15));
  auto ib = eng->attach(reinterpret_cast<uintptr_t>(&hk_regs_ret), HookKind::Return, clobber_all, &b);
  ASSERT_TRUE(ib) << ib.error().message;
  fill_inputs(kArithFlags, false);
  hk_regs_ret_drive();
  expect_gprs(kAllGprs);
  expect_ymms(16);
  EXPECT_EQ(a.hits, 2);
  EXPECT_EQ(b.hits, 1);
}

TEST(AttachHookRegs, ReattachingPicksTheSaveTheNewHookNeeds) {
  if (!have_avx()) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  HookSeen seen;
  HookOptions entry;
  entry.function_entry = true;
  const auto site = reinterpret_cast<uintptr_t>(&hk_regs_entry);
  // Both orders, twice: each attach finds the site unpatched with both
  // kinds of trampoline possibly left from before.
  for (int round = 0; round < 2; ++round) {
    for (bool abi : {true, false, true}) {
      SCOPED_TRACE(testing::Message() << "round " << round << (abi ? ", function_entry" : ", full save"));
      auto id = eng->attach(site, HookKind::Entry, clobber_all, &seen, abi ? entry : HookOptions{});
      ASSERT_TRUE(id) << id.error().message;
      fill_inputs(kArithFlags, false);
      hk_regs_call();
      if (abi) {
        expect_gprs({kRdi, kRsi, kRdx, kRcx, kR8, kR9, kRax, kR10});
        expect_ymms(8);
        EXPECT_TRUE(xmm_clobbered(15));
      } else {
        expect_gprs(kAllGprs);
        EXPECT_EQ(hk_out.gpr[kFlags] & kArithFlags, kArithFlags);
        expect_ymms(16);
      }
      EXPECT_TRUE(eng->detach(*id));
    }
  }
  EXPECT_EQ(seen.hits, 6);
}
