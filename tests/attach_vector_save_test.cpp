// VectorSave::Xsave (src/attach/trampoline.hpp): trampolines that save the
// whole OS-enabled register state with XSAVEC/XRSTOR, chosen automatically
// when XCR0 enables AVX-512 or AMX state and forced here through
// HookEngineOptions (this kind of machine may have AVX2 only). A hook
// clobbers every caller-saved register, ymm0-15 whole and MXCSR; the
// assembly functions load every register from vs_in around the probed
// point and store them to vs_out. Xsave gives back what the Avx mode does
// not: xmm8-15 at a function entry, ymm2-15 after a return, MXCSR.
#include <cpuid.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "attach/hooks.hpp"
#include "attach/trampoline.hpp"
#include "support/regs_asm.hpp"

using namespace ember::attach;

namespace {

// gpr: rax rbx rcx rdx rsi rdi rbp r8 .. r15, then rflags.
struct RegFile {
  uint64_t gpr[16];
  uint64_t mxcsr;
  uint64_t pad[7];
  alignas(32) uint8_t ymm[16][32];
};
static_assert(offsetof(RegFile, mxcsr) == 128);
static_assert(offsetof(RegFile, ymm) == 192);

}  // namespace

extern "C" {
__attribute__((used)) RegFile vs_in;
__attribute__((used)) RegFile vs_out;
void vs_mid();  // loads, probed point vs_mid_site, stores
void vs_mid_site();
void vs_call();       // loads, calls vs_entry (which stores first thing)
void vs_entry();      //
void vs_ret_drive();  // calls vs_ret (which loads and returns), stores
void vs_ret();
}

asm(EMBER_TEST_REGS_ASM R"(
  .data
  .p2align 2
vs_default_mxcsr:
  .long 0x1f80

  .text
  # MXCSR at 128, the ymm registers at 192.
  .macro VS_LOAD
  ldmxcsr vs_in+128(%rip)
  EMBER_LOAD_REGS vs_in, 192
  .endm
  .macro VS_STORE
  EMBER_STORE_REGS vs_out, 192
  stmxcsr vs_out+128(%rip)
  .endm
  .macro VS_PUSH
  EMBER_PUSH_CALLEE_SAVED
  .endm
  .macro VS_POP
  EMBER_POP_CALLEE_SAVED
  vzeroupper
  ldmxcsr vs_default_mxcsr(%rip)
  .endm

  .p2align 4
  .globl vs_mid
  .globl vs_mid_site
  .type vs_mid, @function
vs_mid:
  VS_PUSH
  VS_LOAD
vs_mid_site:
  nopl 0(%rax,%rax,1)
  nopl 0(%rax,%rax,1)
  VS_STORE
  VS_POP
  ret
  .size vs_mid, .-vs_mid

  .p2align 4
  .globl vs_call
  .type vs_call, @function
vs_call:
  VS_PUSH
  sub $8, %rsp
  VS_LOAD
  cld
  call vs_entry
  add $8, %rsp
  VS_POP
  ret
  .size vs_call, .-vs_call

  .p2align 4
  .globl vs_entry
  .type vs_entry, @function
vs_entry:
  nopl 0(%rax,%rax,1)
  VS_STORE
  ret
  .size vs_entry, .-vs_entry

  .p2align 4
  .globl vs_ret_drive
  .type vs_ret_drive, @function
vs_ret_drive:
  VS_PUSH
  sub $8, %rsp
  call vs_ret
  VS_STORE
  add $8, %rsp
  VS_POP
  ret
  .size vs_ret_drive, .-vs_ret_drive

  .p2align 4
  .globl vs_ret
  .type vs_ret, @function
vs_ret:
  nopl 0(%rax,%rax,1)
  VS_LOAD
  cld
  ret
  .size vs_ret, .-vs_ret
)");

namespace {

constexpr uint64_t kClobber = 0xA5A5A5A5A5A5A5A5ull;
constexpr uint64_t kArithFlags = 0x8D5;  // CF PF AF ZF SF OF
constexpr uint32_t kSiteMxcsr = 0x3F80;  // exceptions masked, round down
constexpr uint32_t kHookMxcsr = 0x7F80;  // ... and flush-to-zero
enum { kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kFlags };
const char* const kNames[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                              "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

int g_hits = 0;  // the hook's, on the test's thread

// Clobbers what a C++ function may (caller-saved registers, flags, ymm0-15
// whole with dirty upper halves) and MXCSR, which a C++ function must not
// but a careless helper might; only Xsave gives MXCSR back.
void clobber(void*, PtRegs*) {
  ++g_hits;
  const uint32_t mxcsr = kHookMxcsr;
  asm volatile(
      "ldmxcsr %1\n"
      "mov %0, %%rax; mov %0, %%rcx; mov %0, %%rdx; mov %0, %%rsi; mov %0, %%rdi\n"
      "mov %0, %%r8; mov %0, %%r9; mov %0, %%r10; mov %0, %%r11\n"
      "vmovq %%rax, %%xmm15; vpunpcklqdq %%xmm15, %%xmm15, %%xmm15\n"
      "vinsertf128 $1, %%xmm15, %%ymm15, %%ymm15\n"
      ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n vmovaps %%ymm15, %%ymm\\i\n .endr\n"
      "xor %%eax, %%eax\n"
      :
      : "i"(static_cast<int64_t>(kClobber)), "m"(mxcsr)
      : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
}

void fill_inputs(bool clean_uppers) {
  for (int i = 0; i < 15; ++i) vs_in.gpr[i] = 0x0101010101010101ull * static_cast<uint64_t>(i + 9) + 0x55;
  vs_in.gpr[kFlags] = kArithFlags | 0x2;
  vs_in.mxcsr = kSiteMxcsr;
  for (int r = 0; r < 16; ++r)
    for (int b = 0; b < 32; ++b)
      vs_in.ymm[r][b] = (clean_uppers && b >= 16) ? 0 : static_cast<uint8_t>(r * 32 + b + 3);
  std::memset(&vs_out, 0, sizeof vs_out);
}

void expect_gprs(std::initializer_list<int> regs) {
  for (int g : regs) EXPECT_EQ(vs_out.gpr[g], vs_in.gpr[g]) << kNames[g];
}

void expect_vectors_and_mxcsr() {
  for (int r = 0; r < 16; ++r) EXPECT_EQ(std::memcmp(vs_in.ymm[r], vs_out.ymm[r], 32), 0) << "ymm" << r;
  EXPECT_EQ(vs_out.mxcsr & 0xFFFF, kSiteMxcsr) << std::hex << "MXCSR 0x" << vs_out.mxcsr;
}

bool can_run() { return __builtin_cpu_supports("avx") && vector_save_supported(VectorSave::Xsave); }

std::unique_ptr<HookEngine> engine(std::optional<VectorSave> vectors) {
  HookEngineOptions o;
  o.vectors = vectors;
  auto e = HookEngine::create(o);
  if (!e) {
    ADD_FAILURE() << e.error().message;
    return nullptr;
  }
  return std::move(*e);
}

uint64_t xcr0() {
  unsigned lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

template <typename F>
uintptr_t addr(F* f) {
  return reinterpret_cast<uintptr_t>(f);
}

}  // namespace

// The default follows XCR0: Xsave with AVX-512 or AMX state enabled, Avx
// with AVX, else Sse.
TEST(AttachVectorSave, TheDefaultModeFollowsXcr0) {
  unsigned a, b, c, d;
  const bool osxsave = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE);
  if (!osxsave) {
    EXPECT_EQ(vector_save_mode(), VectorSave::Sse);
    return;
  }
  const uint64_t x = xcr0();
  if (x & 0x600E0)
    EXPECT_EQ(vector_save_mode(), VectorSave::Xsave);
  else if ((c & bit_AVX) && (x & 6) == 6)
    EXPECT_EQ(vector_save_mode(), VectorSave::Avx);
  else
    EXPECT_EQ(vector_save_mode(), VectorSave::Sse);
}

// Inline and int3 sites in the middle of a function.
TEST(AttachVectorSave, XsaveGivesBackEveryRegisterAndMxcsrMidFunction) {
  if (!can_run()) GTEST_SKIP() << "no AVX or XSAVE here";
  auto eng = engine(VectorSave::Xsave);
  ASSERT_TRUE(eng);
  for (bool int3 : {false, true}) {
    HookOptions opts;
    opts.force_int3 = int3;
    auto id = eng->attach(addr(&vs_mid_site), HookKind::Entry, clobber, nullptr, opts);
    ASSERT_TRUE(id) << id.error().message;
    ASSERT_EQ(eng->method(*id), int3 ? HookMethod::Int3 : HookMethod::Inline);
    for (bool clean : {false, true}) {
      SCOPED_TRACE(testing::Message() << (int3 ? "int3" : "inline") << (clean ? ", clean" : ", dirty"));
      g_hits = 0;
      fill_inputs(clean);
      vs_mid();
      EXPECT_EQ(g_hits, 1);
      expect_gprs({kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15});
      EXPECT_EQ(vs_out.gpr[kFlags] & kArithFlags, kArithFlags);
      expect_vectors_and_mxcsr();
    }
    ASSERT_TRUE(eng->detach(*id));
  }
}

// At a function entry the Avx mode saves only the argument registers
// (xmm8-15 are dead by the ABI; AttachHookRegs shows them clobbered); Xsave
// saves everything whatever LiveRegs says.
TEST(AttachVectorSave, XsaveSavesEverythingAtAFunctionEntry) {
  if (!can_run()) GTEST_SKIP() << "no AVX or XSAVE here";
  auto eng = engine(VectorSave::Xsave);
  ASSERT_TRUE(eng);
  HookOptions opts;
  opts.function_entry = true;
  auto id = eng->attach(addr(&vs_entry), HookKind::Entry, clobber, nullptr, opts);
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(eng->method(*id), HookMethod::Inline);
  for (bool clean : {false, true}) {
    SCOPED_TRACE(clean ? "clean" : "dirty");
    g_hits = 0;
    fill_inputs(clean);
    vs_call();
    EXPECT_EQ(g_hits, 1);
    expect_gprs({kRdi, kRsi, kRdx, kRcx, kR8, kR9, kRax, kR10, kRbx, kRbp, kR12, kR13, kR14, kR15});
    expect_vectors_and_mxcsr();
  }
  ASSERT_TRUE(eng->detach(*id));
}

// A return hook at an inline function-entry site returns through the
// entry trampoline's landing to a return trampoline of the site's mode:
// with Xsave every ymm comes back (the Avx CallReturn one keeps xmm0-1).
// At an int3 site the dispatcher writes the return trampoline its int3
// trampoline gives it: of the site's mode too (it was the process's default
// mode's, which keeps no MXCSR).
TEST(AttachVectorSave, XsaveReturnHooksGiveBackEveryVectorRegister) {
  if (!can_run()) GTEST_SKIP() << "no AVX or XSAVE here";
  auto eng = engine(VectorSave::Xsave);
  ASSERT_TRUE(eng);
  for (bool int3 : {false, true}) {
    HookOptions opts;
    opts.function_entry = true;
    opts.force_int3 = int3;
    auto id = eng->attach(addr(&vs_ret), HookKind::Return, clobber, nullptr, opts);
    ASSERT_TRUE(id) << id.error().message;
    ASSERT_EQ(eng->method(*id), int3 ? HookMethod::Int3 : HookMethod::Inline);
    for (bool clean : {false, true}) {
      SCOPED_TRACE(testing::Message() << (int3 ? "int3" : "inline") << (clean ? ", clean" : ", dirty"));
      g_hits = 0;
      fill_inputs(clean);
      vs_ret_drive();
      EXPECT_EQ(g_hits, 1);
      expect_gprs({kRax, kRdx, kRbx, kRbp, kR12, kR13, kR14, kR15});
      expect_vectors_and_mxcsr();
    }
    ASSERT_TRUE(eng->detach(*id));
  }
}

// A site keeps the mode it was patched with: an engine asking for more is
// refused while it is patched, and gets its own trampolines once the site
// is free again; one asking for less shares the site.
TEST(AttachVectorSave, APatchedSiteRefusesAnEngineAskingForMoreVectorState) {
  if (!can_run()) GTEST_SKIP() << "no AVX or XSAVE here";
  if (vector_save_mode() == VectorSave::Xsave) GTEST_SKIP() << "Xsave is this machine's default";
  auto plain = engine(std::nullopt);
  auto full = engine(VectorSave::Xsave);
  ASSERT_TRUE(plain && full);
  HookOptions opts;
  opts.function_entry = true;
  auto p = plain->attach(addr(&vs_entry), HookKind::Entry, clobber, nullptr, opts);
  ASSERT_TRUE(p) << p.error().message;
  auto refused = full->attach(addr(&vs_entry), HookKind::Entry, clobber, nullptr, opts);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("less vector state"), std::string::npos) << refused.error().message;
  ASSERT_TRUE(plain->detach(*p));

  auto f = full->attach(addr(&vs_entry), HookKind::Entry, clobber, nullptr, opts);
  ASSERT_TRUE(f) << f.error().message;
  auto shared = plain->attach(addr(&vs_entry), HookKind::Entry, clobber, nullptr, opts);
  ASSERT_TRUE(shared) << shared.error().message;
  g_hits = 0;
  fill_inputs(false);
  vs_call();
  EXPECT_EQ(g_hits, 2);
  expect_vectors_and_mxcsr();  // the site's new trampoline is an Xsave one
  ASSERT_TRUE(plain->detach(*shared));
  ASSERT_TRUE(full->detach(*f));

  // The same at an int3 site: its trampoline is replaced with one of the
  // new mode (MXCSR shows which one ran).
  HookOptions int3;
  int3.force_int3 = true;
  for (HookEngine* eng : {plain.get(), full.get(), plain.get()}) {
    const bool xsave = eng == full.get();
    SCOPED_TRACE(xsave ? "int3, Xsave" : "int3, default");
    auto id = eng->attach(addr(&vs_mid_site), HookKind::Entry, clobber, nullptr, int3);
    ASSERT_TRUE(id) << id.error().message;
    ASSERT_EQ(eng->method(*id), HookMethod::Int3);
    g_hits = 0;
    fill_inputs(false);
    vs_mid();
    EXPECT_EQ(g_hits, 1);
    if (xsave)
      expect_vectors_and_mxcsr();
    else
      EXPECT_EQ(vs_out.mxcsr & 0xFFFF, kHookMxcsr) << "the default mode does not keep MXCSR";
    ASSERT_TRUE(eng->detach(*id));
  }
}
