// The hook engine (src/attach/hooks.hpp) on functions of this test binary:
// inline and int3 entry hooks, return hooks, relocation cases written in
// assembly, recursion, longjmp, C++ exceptions, threads, bytes restored.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <setjmp.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "attach/hook_site.hpp"
#include "attach/hooks.hpp"

using namespace ember::attach;

#if defined(__clang__)
#define HK_FN extern "C" __attribute__((noinline, used))
#else
#define HK_FN extern "C" __attribute__((noipa, used))
#endif

// Functions written in assembly with the prologues the relocation must handle.
asm(R"(
  .data
  .p2align 3
hk_data:
  .quad 1000
  .text
  .p2align 4
  .globl hk_riprel
  .type hk_riprel, @function
hk_riprel:                 # a RIP-relative load in the first 5 bytes
  mov hk_data(%rip), %rax
  add %rdi, %rax
  ret
  .size hk_riprel, .-hk_riprel

  .p2align 4
  .globl hk_shortjcc
  .type hk_shortjcc, @function
hk_shortjcc:               # a short jcc inside the window
  test %edi, %edi
  je 1f
  lea (%rdi,%rdi), %eax
  ret
1:
  mov $42, %eax
  ret
  .size hk_shortjcc, .-hk_shortjcc

  .p2align 4
  .globl hk_callfirst
  .type hk_callfirst, @function
hk_callfirst:              # a call rel32 is the whole window
  call hk_plus7
  add $1, %rax
  ret
  .size hk_callfirst, .-hk_callfirst

  .p2align 4
  .globl hk_plus7
  .type hk_plus7, @function
hk_plus7:
  lea 7(%rdi), %rax
  ret
  .size hk_plus7, .-hk_plus7

  .p2align 4
  .globl hk_tiny
  .type hk_tiny, @function
hk_tiny:                   # 3 bytes: needs int3
  mov %edi, %eax
  ret
  .size hk_tiny, .-hk_tiny

  .p2align 4
  .globl hk_loopback
  .type hk_loopback, @function
hk_loopback:               # a later branch lands inside the first 5 bytes
  xor %eax, %eax
1:
  add %rdi, %rax
  dec %rsi
  jnz 1b
  ret
  .size hk_loopback, .-hk_loopback

  .p2align 4
  .globl hk_work
  .type hk_work, @function
hk_work:                   # x * 3 + 1 behind a 3-instruction window
  push %rbp
  mov %rsp, %rbp
  lea 1(%rdi,%rdi,2), %rax
  pop %rbp
  ret
  .size hk_work, .-hk_work

  .p2align 4
  .globl hk_retaddr_drive
  .type hk_retaddr_drive, @function
hk_retaddr_drive:          # calls hk_retaddr first thing
  call hk_retaddr
  ret
  .size hk_retaddr_drive, .-hk_retaddr_drive

  .p2align 4
  .globl hk_retaddr
  .type hk_retaddr, @function
hk_retaddr:                # the return address it finds on entry
  mov (%rsp), %rax
  nop
  nop
  ret
  .size hk_retaddr, .-hk_retaddr

  .p2align 4
  .globl hk_ymm_hi
  .type hk_ymm_hi, @function
hk_ymm_hi:                 # returns the upper 128-bit lane of ymm0 (low quad)
  vextractf128 $1, %ymm0, %xmm0
  vmovq %xmm0, %rax
  vzeroupper
  ret
  .size hk_ymm_hi, .-hk_ymm_hi

  .p2align 4
  .globl hk_ymm_drive
  .type hk_ymm_drive, @function
hk_ymm_drive:              # ymm0 = all ones, then calls hk_ymm_hi
  push %rbx
  vpcmpeqd %ymm0, %ymm0, %ymm0
  call hk_ymm_hi
  pop %rbx
  ret
  .size hk_ymm_drive, .-hk_ymm_drive
)");

extern "C" long hk_riprel(long);
extern "C" int hk_shortjcc(int);
extern "C" long hk_callfirst(long);
extern "C" long hk_plus7(long);
extern "C" int hk_tiny(int);
extern "C" long hk_loopback(long, long);
extern "C" long hk_work(long);
extern "C" uint64_t hk_retaddr_drive();
extern "C" uint64_t hk_retaddr();
extern "C" uint64_t hk_ymm_hi();
extern "C" uint64_t hk_ymm_drive();

HK_FN long hk_add3(long a, long b, long c) {
  asm volatile("");
  return a * 100 + b * 10 + c;
}

HK_FN double hk_mixd(double a, double b, long c) {
  asm volatile("");
  return a * b + static_cast<double>(c);
}

extern "C" long hk_fib(long n);
// Through a volatile pointer: GCC would turn one of the two calls into a loop.
long (*volatile hk_fib_ptr)(long) = &hk_fib;
HK_FN long hk_fib(long n) {
  asm volatile("");
  return n < 2 ? n : hk_fib_ptr(n - 1) + hk_fib_ptr(n - 2);
}

HK_FN void hk_jumper(jmp_buf* env, int v) {
  asm volatile("");
  if (v) longjmp(*env, v);
}

HK_FN long hk_outer_jump(long v) {
  asm volatile("");
  jmp_buf env;
  if (setjmp(env) == 0) hk_jumper(&env, static_cast<int>(v));
  return v + 5;
}

extern "C" long hk_depth(long n);
long (*volatile hk_depth_ptr)(long) = &hk_depth;
HK_FN long hk_depth(long n) {
  asm volatile("");
  return n == 0 ? 0 : 1 + hk_depth_ptr(n - 1);
}

HK_FN long hk_thrower(long v) {
  asm volatile("");
  if (v > 0) throw std::runtime_error("boom");
  return -v;
}

HK_FN long hk_middle(long v) {
  asm volatile("");
  long r = hk_thrower(v);
  asm volatile("");
  return r + 1;
}

namespace {

struct Probe {
  std::atomic<int> hits{0};
  std::atomic<int> bad{0};
  PtRegs last{};
};

void count(void* data, PtRegs* regs) {
  auto* p = static_cast<Probe*>(data);
  p->last = *regs;
  p->hits.fetch_add(1);
}

template <class F>
uintptr_t addr_of(F* fn) {
  return reinterpret_cast<uintptr_t>(fn);
}

std::unique_ptr<HookEngine> engine() {
  auto e = HookEngine::create();
  if (!e) {
    ADD_FAILURE() << e.error().message;
    return nullptr;
  }
  return std::move(*e);
}

// The bytes at `addr` as /proc/self/exe has them (PIE: via the mapping's offset).
std::vector<uint8_t> file_bytes(uintptr_t addr, size_t n) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long s, e, off;
    char perms[8], path[512] = "";
    if (sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %511s", &s, &e, perms, &off, path) < 4) continue;
    if (addr < s || addr >= e) continue;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return {};
    std::vector<uint8_t> out(n);
    ssize_t r = pread(fd, out.data(), n, static_cast<off_t>(addr - s + off));
    close(fd);
    if (r != static_cast<ssize_t>(n)) return {};
    return out;
  }
  return {};
}

std::vector<uint8_t> mem_bytes(uintptr_t addr, size_t n) {
  auto* p = reinterpret_cast<const uint8_t*>(addr);
  return std::vector<uint8_t>(p, p + n);
}

// Calls through a volatile pointer so that the compiler cannot see the callee.
template <class F>
F* opaque(F* f) {
  F* volatile p = f;
  return p;
}

}  // namespace

TEST(AttachHooks, PtRegsIsTheKernelLayout) {
  EXPECT_EQ(sizeof(PtRegs), 168u);
  EXPECT_EQ(offsetof(PtRegs, rdi), 112u);  // PT_REGS_PARM1 reads di
  EXPECT_EQ(offsetof(PtRegs, rax), 80u);   // PT_REGS_RC reads ax
  EXPECT_EQ(offsetof(PtRegs, rsp), 152u);
}

TEST(AttachHooks, EntryHookSeesArguments) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe p;
  auto id = eng->attach(addr_of(&hk_add3), HookKind::Entry, count, &p);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(opaque(&hk_add3)(1, 2, 3), 123);
  EXPECT_EQ(p.hits.load(), 1);
  EXPECT_EQ(p.last.rdi, 1u);
  EXPECT_EQ(p.last.rsi, 2u);
  EXPECT_EQ(p.last.rdx, 3u);
  EXPECT_EQ(p.last.rip, addr_of(&hk_add3));
  EXPECT_EQ(p.last.orig_rax, ~0ull);
  EXPECT_EQ(p.last.cs, 0x33u);
  // rsp is the stack pointer at the site: the return address is on top.
  uint64_t ret = *reinterpret_cast<uint64_t*>(p.last.rsp);
  EXPECT_NE(ret, 0u);
  EXPECT_TRUE(eng->detach(*id));
  EXPECT_EQ(opaque(&hk_add3)(4, 5, 6), 456);
  EXPECT_EQ(p.hits.load(), 1);
}

TEST(AttachHooks, FloatingPointArgumentsSurviveAHookThatUsesVectors) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  auto clobber = [](void*, PtRegs*) {
    volatile double x = 3.25;
    char buf[4096], src[4096];
    memset(src, 0x5a, sizeof src);
    memcpy(buf, src, sizeof buf);  // glibc's AVX2 memcpy ends with vzeroupper
    asm volatile("" ::"r"(buf) : "memory");
    x = x * x;
  };
  auto id = eng->attach(addr_of(&hk_mixd), HookKind::Entry, clobber, nullptr);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(opaque(&hk_mixd)(1.5, 4.0, 10), 16.0);
}

TEST(AttachHooks, UpperYmmHalvesSurviveAHook) {
  if (!__builtin_cpu_supports("avx")) GTEST_SKIP() << "no AVX";
  auto eng = engine();
  ASSERT_TRUE(eng);
  auto clobber = [](void*, PtRegs*) { asm volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n vzeroupper" ::: "xmm0"); };
  auto id = eng->attach(addr_of(&hk_ymm_hi), HookKind::Entry, clobber, nullptr);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(eng->method(*id), HookMethod::Inline);
  EXPECT_EQ(hk_ymm_drive(), ~0ull);
}

TEST(AttachHooks, ReturnHookSeesTheReturnValue) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe entry, ret;
  auto e = eng->attach(addr_of(&hk_add3), HookKind::Entry, count, &entry);
  auto r = eng->attach(addr_of(&hk_add3), HookKind::Return, count, &ret);
  ASSERT_TRUE(e && r);
  EXPECT_EQ(opaque(&hk_add3)(7, 8, 9), 789);
  ASSERT_EQ(ret.hits.load(), 1);
  EXPECT_EQ(ret.last.rax, 789u);
  EXPECT_EQ(ret.last.rsp, entry.last.rsp + 8);  // as after the ret
  EXPECT_EQ(ret.last.rip, *reinterpret_cast<uint64_t*>(entry.last.rsp) == 0 ? 1 : ret.last.rip);
  EXPECT_NE(ret.last.rip, 0u);
}

TEST(AttachHooks, ReturnAddressIsTheCaller) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe ret;
  auto r = eng->attach(addr_of(&hk_plus7), HookKind::Return, count, &ret);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(hk_callfirst(1), 9);  // hk_callfirst calls hk_plus7 first thing
  ASSERT_EQ(ret.hits.load(), 1);
  EXPECT_EQ(ret.last.rip, addr_of(&hk_callfirst) + 5);
  EXPECT_EQ(ret.last.rax, 8u);
}

// An inline site calls the function from its entry trampoline, so the
// function returns to the trampoline's landing (predicted), not straight to
// a return trampoline; an int3 site writes the return trampoline that
// leaves by jmp. Either way the hook sees the real return address.
TEST(AttachHooks, AnInlineReturnHookReturnsThroughTheTrampolinesLanding) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  const uint64_t real_return = addr_of(&hk_retaddr_drive) + 5;
  EXPECT_EQ(hk_retaddr_drive(), real_return);
  for (bool int3 : {false, true}) {
    SCOPED_TRACE(int3 ? "int3" : "inline");
    Probe ret;
    HookOptions opts;
    opts.force_int3 = int3;
    auto r = eng->attach(addr_of(&hk_retaddr), HookKind::Return, count, &ret, opts);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(eng->method(*r), int3 ? HookMethod::Int3 : HookMethod::Inline);
    const uint64_t seen = hk_retaddr_drive();
    EXPECT_EQ(ret.hits.load(), 1);
    EXPECT_EQ(ret.last.rip, real_return);
    EXPECT_EQ(detail::current_thread_state()->depth.load(), 0u);
    const detail::Site* site = detail::SiteTable::instance().find(addr_of(&hk_retaddr));
    ASSERT_NE(site, nullptr);
    if (int3) {
      EXPECT_EQ(seen, detail::return_trampoline(site->vectors, false, ReturnExit::Jmp));
    } else {
      EXPECT_GT(seen, site->trampoline) << "the landing is inside the entry trampoline";
      EXPECT_LT(seen, site->trampoline + 1024);
      for (bool abi : {false, true})
        for (ReturnExit exit : {ReturnExit::Jmp, ReturnExit::Ret})
          EXPECT_NE(seen, detail::return_trampoline(site->vectors, abi, exit));
    }
    ASSERT_TRUE(eng->detach(*r));
    EXPECT_EQ(hk_retaddr_drive(), real_return);
  }
}

// Past the shadow stack's depth the dispatcher replaces nothing and the
// inline trampoline takes its plain path: those returns are not hooked, the
// outer ones still are, and every call returns where it should.
TEST(AttachHooks, AFullShadowStackLeavesTheDeepestReturnsUnhooked) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe ret;
  auto r = eng->attach(addr_of(&hk_depth), HookKind::Return, count, &ret);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(eng->method(*r), HookMethod::Inline);
  const uint64_t overflows = detail::stats().shadow_overflows.load();
  const long calls = detail::ThreadState::kShadowDepth + 100;  // hk_depth(n) makes n + 1 calls
  EXPECT_EQ(opaque(&hk_depth)(calls - 1), calls - 1);
  EXPECT_EQ(ret.hits.load(), static_cast<int>(detail::ThreadState::kShadowDepth));
  EXPECT_EQ(detail::stats().shadow_overflows.load() - overflows, 100u);
  EXPECT_EQ(ret.last.rax, static_cast<uint64_t>(calls - 1)) << "the outermost return is the last";
  EXPECT_EQ(detail::current_thread_state()->depth.load(), 0u);
  EXPECT_EQ(opaque(&hk_depth)(3), 3);
  EXPECT_EQ(ret.hits.load(), static_cast<int>(detail::ThreadState::kShadowDepth) + 4);
}

TEST(AttachHooks, RelocatesRipRelativeShortJccAndCall) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe a, b, c;
  auto ia = eng->attach(addr_of(&hk_riprel), HookKind::Entry, count, &a);
  auto ib = eng->attach(addr_of(&hk_shortjcc), HookKind::Entry, count, &b);
  auto ic = eng->attach(addr_of(&hk_callfirst), HookKind::Entry, count, &c);
  ASSERT_TRUE(ia && ib && ic);
  EXPECT_EQ(eng->method(*ia), HookMethod::Inline);
  EXPECT_EQ(eng->method(*ib), HookMethod::Inline);
  EXPECT_EQ(eng->method(*ic), HookMethod::Inline);
  EXPECT_EQ(hk_riprel(5), 1005);
  EXPECT_EQ(hk_shortjcc(0), 42);
  EXPECT_EQ(hk_shortjcc(21), 42);
  EXPECT_EQ(hk_shortjcc(5), 10);
  EXPECT_EQ(hk_callfirst(10), 18);
  EXPECT_EQ(a.hits.load(), 1);
  EXPECT_EQ(b.hits.load(), 3);
  EXPECT_EQ(c.hits.load(), 1);
  EXPECT_EQ(b.last.rdi, 5u);
}

TEST(AttachHooks, TooShortOrBranchedIntoFallsBackToInt3) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe t, l;
  auto it = eng->attach(addr_of(&hk_tiny), HookKind::Entry, count, &t);
  auto il = eng->attach(addr_of(&hk_loopback), HookKind::Entry, count, &l);
  ASSERT_TRUE(it) << it.error().message;
  ASSERT_TRUE(il) << il.error().message;
  EXPECT_EQ(eng->method(*it), HookMethod::Int3);
  EXPECT_EQ(eng->method(*il), HookMethod::Int3);
  EXPECT_EQ(hk_tiny(77), 77);
  EXPECT_EQ(hk_loopback(3, 4), 12);
  EXPECT_EQ(t.hits.load(), 1);
  EXPECT_EQ(t.last.rdi, 77u);
  EXPECT_EQ(t.last.rip, addr_of(&hk_tiny));
  EXPECT_EQ(l.hits.load(), 1);  // the loop jumps to +2, not to the site
}

TEST(AttachHooks, ForcedInt3EntryAndReturn) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe e, r;
  HookOptions opts;
  opts.force_int3 = true;
  auto ie = eng->attach(addr_of(&hk_add3), HookKind::Entry, count, &e, opts);
  auto ir = eng->attach(addr_of(&hk_add3), HookKind::Return, count, &r, opts);
  ASSERT_TRUE(ie && ir);
  EXPECT_EQ(eng->method(*ie), HookMethod::Int3);
  EXPECT_EQ(*reinterpret_cast<const uint8_t*>(addr_of(&hk_add3)), 0xCC);
  EXPECT_EQ(opaque(&hk_add3)(3, 2, 1), 321);
  EXPECT_EQ(e.hits.load(), 1);
  EXPECT_EQ(e.last.rsi, 2u);
  EXPECT_EQ(r.hits.load(), 1);
  EXPECT_EQ(r.last.rax, 321u);
  EXPECT_EQ(r.last.rsp, e.last.rsp + 8);
}

TEST(AttachHooks, ChainedHooksRunInAttachOrderAndDetachOne) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  static std::vector<int> order;
  order.clear();
  auto first = [](void*, PtRegs*) { order.push_back(1); };
  auto second = [](void*, PtRegs*) { order.push_back(2); };
  auto i1 = eng->attach(addr_of(&hk_work), HookKind::Entry, first, nullptr);
  auto i2 = eng->attach(addr_of(&hk_work), HookKind::Entry, second, nullptr);
  ASSERT_TRUE(i1 && i2);
  EXPECT_EQ(opaque(&hk_work)(1), 4);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_TRUE(eng->detach(*i1));
  EXPECT_EQ(opaque(&hk_work)(1), 4);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 2}));
  EXPECT_FALSE(eng->detach(*i1));  // already detached
  EXPECT_TRUE(eng->detach(*i2));
  // Re-attach after a full detach.
  auto i3 = eng->attach(addr_of(&hk_work), HookKind::Entry, first, nullptr);
  ASSERT_TRUE(i3);
  EXPECT_EQ(opaque(&hk_work)(2), 7);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 2, 1}));
}

TEST(AttachHooks, RecursionCountsEveryEntryAndReturn) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe e, r;
  static std::atomic<long> sum{0};
  sum = 0;
  auto add_rc = [](void* d, PtRegs* regs) {
    sum += static_cast<long>(regs->rax);
    count(d, regs);
  };
  ASSERT_TRUE(eng->attach(addr_of(&hk_fib), HookKind::Entry, count, &e));
  ASSERT_TRUE(eng->attach(addr_of(&hk_fib), HookKind::Return, add_rc, &r));
  EXPECT_EQ(opaque(&hk_fib)(15), 610);
  // fib(15) makes 1973 calls; the results of all calls add up to the
  // sum over every call tree node, checked against a plain count.
  EXPECT_EQ(e.hits.load(), 1973);
  EXPECT_EQ(r.hits.load(), 1973);
  long expect = 0;
  auto walk = [&](auto&& self, long n) -> long {
    long v = n < 2 ? n : self(self, n - 1) + self(self, n - 2);
    expect += v;
    return v;
  };
  walk(walk, 15);
  EXPECT_EQ(sum.load(), expect);
  EXPECT_EQ(detail::current_thread_state()->depth.load(), 0u);
}

TEST(AttachHooks, LongjmpOutOfAReturnHookedFunction) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe jr, outer;
  ASSERT_TRUE(eng->attach(addr_of(&hk_jumper), HookKind::Return, count, &jr));
  ASSERT_TRUE(eng->attach(addr_of(&hk_outer_jump), HookKind::Return, count, &outer));
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(opaque(&hk_outer_jump)(i), i + 5);
  EXPECT_EQ(jr.hits.load(), 0);  // every hk_jumper call left by longjmp
  EXPECT_EQ(outer.hits.load(), 5);
  EXPECT_EQ(outer.last.rax, 10u);
  EXPECT_EQ(opaque(&hk_outer_jump)(0), 5);  // no longjmp: both return
  EXPECT_EQ(jr.hits.load(), 1);
  EXPECT_EQ(outer.hits.load(), 6);
  EXPECT_EQ(detail::current_thread_state()->depth.load(), 0u);
}

TEST(AttachHooks, ExceptionThroughAReturnHookedFunction) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  Probe mid, thr;
  ASSERT_TRUE(eng->attach(addr_of(&hk_middle), HookKind::Return, count, &mid));
  ASSERT_TRUE(eng->attach(addr_of(&hk_thrower), HookKind::Return, count, &thr));
  for (int i = 0; i < 3; ++i) {
    bool caught = false;
    try {
      opaque (&hk_middle)(1);
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "boom";
    }
    EXPECT_TRUE(caught);
  }
  EXPECT_EQ(mid.hits.load(), 0);
  EXPECT_EQ(thr.hits.load(), 0);
  EXPECT_EQ(opaque(&hk_middle)(-4), 5);  // still hooked afterwards
  EXPECT_EQ(mid.hits.load(), 1);
  EXPECT_EQ(thr.hits.load(), 1);
  EXPECT_EQ(mid.last.rax, 5u);
  EXPECT_EQ(thr.last.rax, 4u);
}

TEST(AttachHooks, DetachWaitsForHooksInFlight) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  static std::atomic<int> stage{0};
  stage = 0;
  auto slow = [](void*, PtRegs*) {
    stage = 1;
    while (stage.load() != 2) std::this_thread::yield();
    stage = 3;
  };
  auto id = eng->attach(addr_of(&hk_work), HookKind::Entry, slow, nullptr);
  ASSERT_TRUE(id);
  std::thread caller([] { EXPECT_EQ(opaque(&hk_work)(5), 16); });
  while (stage.load() != 1) std::this_thread::yield();
  std::atomic<bool> detached{false};
  std::thread detacher([&] {
    EXPECT_TRUE(eng->detach(*id));
    detached = true;
    EXPECT_EQ(stage.load(), 3);  // the hook had finished
  });
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_FALSE(detached.load());
  stage = 2;
  detacher.join();
  caller.join();
  EXPECT_TRUE(detached.load());
}

TEST(AttachHooks, ThreadsHammerWhileAttachingAndDetaching) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  static Probe e, r;
  e.hits = 0, e.bad = 0, r.hits = 0, r.bad = 0;
  auto check_entry = [](void*, PtRegs* regs) {
    if (regs->rdi >= 1000000) e.bad++;
    e.hits++;
  };
  auto check_ret = [](void*, PtRegs* regs) {
    if (regs->rax % 3 != 1) r.bad++;
    r.hits++;
  };
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      auto fn = opaque(&hk_work);
      for (long i = t; !stop.load(std::memory_order_relaxed); i = (i + 7) % 1000000) {
        if (fn(i) != i * 3 + 1) wrong++;
        calls++;
      }
    });
  for (int round = 0; round < 200; ++round) {
    HookOptions opts;
    opts.force_int3 = round % 4 == 3;
    auto ie = eng->attach(addr_of(&hk_work), HookKind::Entry, check_entry, nullptr, opts);
    auto ir = eng->attach(addr_of(&hk_work), HookKind::Return, check_ret, nullptr, opts);
    ASSERT_TRUE(ie && ir);
    std::this_thread::yield();
    ASSERT_TRUE(eng->detach(*ie));
    ASSERT_TRUE(eng->detach(*ir));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(e.bad.load(), 0);
  EXPECT_EQ(r.bad.load(), 0);
  EXPECT_EQ(mem_bytes(addr_of(&hk_work), 16), file_bytes(addr_of(&hk_work), 16));
}

TEST(AttachHooks, DestroyingTheEngineRestoresEveryByte) {
  const uintptr_t fns[] = {addr_of(&hk_add3), addr_of(&hk_riprel), addr_of(&hk_shortjcc),
                           addr_of(&hk_tiny), addr_of(&hk_fib),    addr_of(&hk_callfirst)};
  for (uintptr_t a : fns) ASSERT_EQ(mem_bytes(a, 16), file_bytes(a, 16));
  {
    auto eng = engine();
    ASSERT_TRUE(eng);
    Probe p;
    bool changed = false;
    for (uintptr_t a : fns) {
      ASSERT_TRUE(eng->attach(a, HookKind::Entry, count, &p));
      ASSERT_TRUE(eng->attach(a, HookKind::Return, count, &p));
      changed |= mem_bytes(a, 16) != file_bytes(a, 16);
    }
    EXPECT_TRUE(changed);
    EXPECT_EQ(opaque(&hk_fib)(10), 55);
  }
  for (uintptr_t a : fns) EXPECT_EQ(mem_bytes(a, 16), file_bytes(a, 16));
}

TEST(AttachHooks, BadAddressesAreErrors) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  static long not_code = 0;
  auto a = eng->attach(reinterpret_cast<uintptr_t>(&not_code), HookKind::Entry, count, nullptr);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("not in readable executable code"), std::string::npos)
      << a.error().message;
  auto b = eng->attach(8, HookKind::Entry, count, nullptr);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("not mapped"), std::string::npos) << b.error().message;
  EXPECT_FALSE(eng->detach(12345678));
}

TEST(AttachHooks, ForeignSigtrapStillReachesThePreviousHandler) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  ASSERT_TRUE(eng->attach(addr_of(&hk_tiny), HookKind::Entry, count, nullptr));
  // A breakpoint we did not place: the default action kills the process.
  EXPECT_EXIT(
      {
        asm volatile("int3");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGTRAP), "");
}
