// Int3 sites (HookMethod::Int3): the SIGTRAP handler only sends the thread
// to the site's int3 trampoline, which runs the hooks on the thread's own
// stack, below the red zone of the code at the site. Shown here: hooks
// run on the thread's stack although the signal arrives on a small
// sigaltstack; a probe program runs at an int3 site on a thread whose
// sigaltstack is 4 KiB; the 128 bytes below rsp survive a hook at a site
// inside a function; every register comes back and PtRegs is the site's.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attach/hooks.hpp"
#include "attach/probe_runner.hpp"
#include "ember/runtime.hpp"
#include "support/regs_asm.hpp"

using namespace ember;
using namespace ember::attach;

extern "C" {
// (seed, rsp_out): stores seed, seed+1, ... in the 16 qwords below rsp,
// passes i3_redzone_site, returns how many of them changed; *rsp_out =
// rsp at the site.
uint64_t i3_redzone(uint64_t seed, uint64_t* rsp_out);
void i3_redzone_site();
// a + b + c; 7 bytes of code before its ret (a site that could go inline).
uint64_t i3_sum3(uint64_t a, uint64_t b, uint64_t c);
// Loads every register from i3_in, passes i3_regs_site, stores them in
// i3_out; i3_site_rsp = rsp at the site.
void i3_regs();
void i3_regs_site();
}

namespace {

// gpr: rax rbx rcx rdx rsi rdi rbp r8 .. r15, then rflags.
struct RegFile {
  uint64_t gpr[16];
  alignas(32) uint8_t ymm[16][32];
};
static_assert(offsetof(RegFile, ymm) == 128);

}  // namespace

extern "C" {
__attribute__((used)) RegFile i3_in;
__attribute__((used)) RegFile i3_out;
__attribute__((used)) uint64_t i3_site_rsp;
}

asm(EMBER_TEST_REGS_ASM R"(
  .text
  .p2align 4
  .globl i3_redzone
  .globl i3_redzone_site
  .type i3_redzone, @function
i3_redzone:
  mov %rsp, (%rsi)
  mov %rdi, %rax
  .irp i,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
  mov %rax, -8*\i(%rsp)
  add $1, %rax
  .endr
i3_redzone_site:             # a leaf's mid-function site, live data in its red zone
  nop
  mov %rdi, %rax
  xor %edx, %edx
  .irp i,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
  cmp %rax, -8*\i(%rsp)
  setne %cl
  movzbl %cl, %ecx
  add %rcx, %rdx
  add $1, %rax
  .endr
  mov %rdx, %rax
  ret
  .size i3_redzone, .-i3_redzone

  .p2align 4
  .globl i3_sum3
  .type i3_sum3, @function
i3_sum3:
  lea (%rdi,%rsi), %rax
  add %rdx, %rax
  ret
  .size i3_sum3, .-i3_sum3

  .p2align 4
  .globl i3_regs
  .globl i3_regs_site
  .type i3_regs, @function
i3_regs:
  EMBER_PUSH_CALLEE_SAVED
  mov %rsp, i3_site_rsp(%rip)
  EMBER_LOAD_REGS i3_in, 128
i3_regs_site:
  nop
  EMBER_STORE_REGS i3_out, 128
  vzeroupper
  EMBER_POP_CALLEE_SAVED
  ret
  .size i3_regs, .-i3_regs
)");

namespace {

template <typename F>
uintptr_t addr(F* f) {
  return reinterpret_cast<uintptr_t>(f);
}

// Calls through a volatile pointer so that the compiler cannot fold them.
template <typename F>
F* opaque(F* f) {
  F* volatile p = f;
  return p;
}

std::unique_ptr<HookEngine> engine() {
  auto e = HookEngine::create();
  if (!e) {
    ADD_FAILURE() << e.error().message;
    return nullptr;
  }
  return std::move(*e);
}

HookOptions int3_opts() {
  HookOptions o;
  o.force_int3 = true;
  return o;
}

struct Range {
  uintptr_t lo = 0, hi = 0;
  bool holds(uintptr_t a) const { return a >= lo && a < hi; }
};

// An anonymous mapping of `size` bytes with a PROT_NONE guard page below
// it, so that running off its bottom faults instead of corrupting memory.
class GuardedMem {
 public:
  explicit GuardedMem(size_t size) : size_(size) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    base_ = static_cast<uint8_t*>(m);
    mprotect(base_, page, PROT_NONE);
    mem_ = base_ + page;
    total_ = size + page;
  }
  ~GuardedMem() {
    if (base_) munmap(base_, total_);
  }
  uint8_t* data() const { return mem_; }
  size_t size() const { return size_; }
  Range range() const {
    return {reinterpret_cast<uintptr_t>(mem_), reinterpret_cast<uintptr_t>(mem_) + size_};
  }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* mem_ = nullptr;
  size_t size_ = 0, total_ = 0;
};

// The kernel needs this much of a sigaltstack for a signal frame here
// (AT_MINSIGSTKSZ: more with AVX-512 or AMX state).
size_t min_signal_frame() {
  const unsigned long v = getauxval(AT_MINSIGSTKSZ);
  return v ? v : MINSIGSTKSZ;
}

constexpr size_t kAltStack = 4096;
constexpr size_t kThreadStack = 1 << 20;

// Runs `fn` on a new thread whose stack is `stack` and whose sigaltstack
// is `alt` (kAltStack bytes); false if the thread could not be made.
bool run_on_thread(const GuardedMem& stack, const GuardedMem& alt, std::function<void()> fn) {
  struct Args {
    const GuardedMem* alt;
    std::function<void()>* fn;
  } args{&alt, &fn};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack.data(), stack.size());
  pthread_t t;
  auto body = [](void* p) -> void* {
    auto* a = static_cast<Args*>(p);
    stack_t ss{};
    ss.ss_sp = a->alt->data();
    ss.ss_size = a->alt->size();
    if (sigaltstack(&ss, nullptr) != 0) return reinterpret_cast<void*>(1);
    (*a->fn)();
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    return nullptr;
  };
  const bool made = pthread_create(&t, &attr, body, &args) == 0;
  pthread_attr_destroy(&attr);
  if (!made) return false;
  void* rv = nullptr;
  pthread_join(t, &rv);
  return rv == nullptr;
}

struct StackSeen {
  int hits = 0;
  uintptr_t local = 0;  // the address of a local of the hook
  uintptr_t frame = 0;  // its frame address
  PtRegs regs{};
};

void record_stack(void* data, PtRegs* regs) {
  auto* s = static_cast<StackSeen*>(data);
  volatile char local[16];
  local[0] = 1;
  s->local = reinterpret_cast<uintptr_t>(&local[0]);
  s->frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  s->regs = *regs;
  ++s->hits;
}

}  // namespace

// The hooks of an int3 site (entry and return) run on the stack of the
// thread that hit it, not on the sigaltstack the SIGTRAP arrives on.
TEST(AttachInt3, HooksRunOnTheThreadsStackNotOnTheSigaltstack) {
  if (min_signal_frame() + 1024 > kAltStack)
    GTEST_SKIP() << "a signal frame needs " << min_signal_frame() << " bytes here (AT_MINSIGSTKSZ)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  StackSeen entry, ret;
  auto ie = eng->attach(addr(&i3_sum3), HookKind::Entry, record_stack, &entry, int3_opts());
  auto ir = eng->attach(addr(&i3_sum3), HookKind::Return, record_stack, &ret, int3_opts());
  ASSERT_TRUE(ie) << ie.error().message;
  ASSERT_TRUE(ir) << ir.error().message;
  ASSERT_EQ(eng->method(*ie), HookMethod::Int3);
  GuardedMem stack(kThreadStack), alt(kAltStack);
  ASSERT_TRUE(stack.data() && alt.data());
  uint64_t sum = 0;
  ASSERT_TRUE(run_on_thread(stack, alt, [&] { sum = opaque(&i3_sum3)(1, 20, 300); }));
  EXPECT_EQ(sum, 321u);
  ASSERT_EQ(entry.hits, 1);
  ASSERT_EQ(ret.hits, 1);
  for (const StackSeen* s : {&entry, &ret}) {
    SCOPED_TRACE(s == &entry ? "entry hook" : "return hook");
    EXPECT_TRUE(stack.range().holds(s->local)) << std::hex << "local at 0x" << s->local << ", thread stack 0x"
                                               << stack.range().lo << "-0x" << stack.range().hi;
    EXPECT_FALSE(alt.range().holds(s->local)) << "the hook ran on the sigaltstack";
    EXPECT_TRUE(stack.range().holds(s->frame));
    // Below the probed function's stack pointer and its red zone.
    EXPECT_LT(s->local, s->regs.rsp - 128);
  }
  EXPECT_EQ(entry.regs.rip, addr(&i3_sum3));
  EXPECT_EQ(entry.regs.rdi, 1u);
  EXPECT_EQ(entry.regs.rdx, 300u);
  EXPECT_TRUE(stack.range().holds(entry.regs.rsp));
  EXPECT_EQ(ret.regs.rax, 321u);
  EXPECT_EQ(ret.regs.rsp, entry.regs.rsp + 8);
  ASSERT_TRUE(eng->detach(*ie));
  ASSERT_TRUE(eng->detach(*ir));
}

namespace {

struct Loaded {
  explicit Loaded(RuntimeOptions o) : rt(o) {}
  Runtime rt;
  std::unique_ptr<Object> obj;
};

std::unique_ptr<Loaded> load(const std::string& name, RuntimeOptions ro = {}) {
  auto l = std::make_unique<Loaded>(ro);
  auto obj = Object::open_file(l->rt, std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o");
  EXPECT_TRUE(obj) << (obj ? "" : obj.error().message);
  if (!obj) return nullptr;
  l->obj = std::move(*obj);
  auto st = l->obj->load({});
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  return st ? std::move(l) : nullptr;
}

// uprobe_regs.bpf.c's global data, in declaration order.
struct Globals {
  uint64_t args[6], ret, cookie, func_ip, sp, ip, entries, returns;
};

Globals globals(const Loaded& l) {
  Globals g{};
  auto bss = l.obj->global_data(".bss");
  if (bss && bss->size() >= sizeof g) std::memcpy(&g, bss->data(), sizeof g);
  return g;
}

}  // namespace

// Probe programs at an int3 function entry, entry and return, on a thread
// whose sigaltstack is 4 KiB: uprobe_regs.bpf.c's (arguments, sp, ip,
// cookie, return value), uprobe_workload.bpf.c's on_target (a hash map, a
// ring buffer record, bpf_printk's formatting) and stack_ids.bpf.c's
// (bpf_get_stackid and bpf_get_stack walk the thread's stack), each with
// the first-hit set-up of its runner on that thread. Run in a child
// process, so that a stack overflow shows as its death rather than the
// test binary's.
TEST(AttachInt3, ProgramsRunAtAnInt3SiteOnAThreadWithA4KiBSigaltstack) {
  if (min_signal_frame() + 1024 > kAltStack)
    GTEST_SKIP() << "a signal frame needs " << min_signal_frame() << " bytes here (AT_MINSIGSTKSZ)";
  const RuntimeOptions quiet{.maps = {}, .publish = false, .trace_pipe_bytes = 0};
  auto regs_obj = load("uprobe_regs", quiet);
  auto work_obj = load("uprobe_workload");  // bpf_printk goes to its trace pipe
  auto stack_obj = load("stack_ids", quiet);
  ASSERT_TRUE(regs_obj && work_obj && stack_obj);
  const uintptr_t fn = addr(&i3_sum3);
  std::unique_ptr<ProbeRunner> runners[4];
  const std::pair<Loaded*, const char*> progs[4] = {{regs_obj.get(), "on_entry"},
                                                    {regs_obj.get(), "on_return"},
                                                    {work_obj.get(), "on_target"},
                                                    {stack_obj.get(), "where"}};
  for (int i = 0; i < 4; ++i) {
    const Prog* p = progs[i].first->obj->prog(progs[i].second);
    ASSERT_NE(p, nullptr) << progs[i].second;
    auto r = ProbeRunner::create(*p, {.cookie = 7, .func_ip = fn});
    ASSERT_TRUE(r) << progs[i].second << ": " << r.error().message;
    runners[i] = std::move(*r);
  }
  auto eng = engine();
  ASSERT_TRUE(eng);
  std::vector<int> ids;
  for (int i = 0; i < 4; ++i) {
    const HookKind kind = i == 1 ? HookKind::Return : HookKind::Entry;
    auto id = eng->attach(fn, kind, &ProbeRunner::hook, runners[i].get(), int3_opts());
    ASSERT_TRUE(id) << id.error().message;
    ASSERT_EQ(eng->method(*id), HookMethod::Int3);
    ids.push_back(*id);
  }

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: exit codes say what went wrong (no gtest assertions here).
    GuardedMem stack(kThreadStack), alt(kAltStack);
    if (!stack.data() || !alt.data()) _exit(10);
    uint64_t sum = 0;
    if (!run_on_thread(stack, alt, [&] {
          for (uint64_t i = 0; i < 3; ++i) sum += opaque(&i3_sum3)(i, 10, 100);
        }))
      _exit(11);
    if (sum != 333) _exit(12);
    const Globals g = globals(*regs_obj);
    if (g.entries != 3 || g.returns != 3) _exit(13);
    if (g.args[0] != 2 || g.args[2] != 100 || g.ret != 112) _exit(14);
    if (g.ip != fn || g.func_ip != fn || g.cookie != 7) _exit(15);
    if (!stack.range().holds(g.sp)) _exit(16);
    for (const auto& r : runners)
      if (r->hits() != 3 || r->errors() != 0) _exit(17);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(WIFSIGNALED(status)) << "the child died of signal " << WTERMSIG(status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10-11: set-up, 12: wrong sums, 13: hit counts, 14: arguments or "
                                       "return value, 15: ip/func_ip/cookie, 16: sp not on the thread's "
                                       "stack, 17: a runner's hits or errors";
  for (int id : ids) ASSERT_TRUE(eng->detach(id));
}

namespace {

// Pushes far more than 128 bytes on its own stack, then makes sure it was
// really written (a hook writing where the probed code's red zone is would
// show).
void stack_hungry(void* data, PtRegs* regs) {
  auto* s = static_cast<StackSeen*>(data);
  volatile uint8_t big[2048];
  for (size_t i = 0; i < sizeof big; ++i) big[i] = static_cast<uint8_t>(0xEE ^ i);
  s->local = reinterpret_cast<uintptr_t>(&big[0]);
  s->regs = *regs;
  ++s->hits;
}

}  // namespace

// System V's red zone: i3_redzone keeps 128 bytes of data below rsp across
// its int3 site (as compiled code may across a USDT site); they survive a
// hook that uses a lot of stack, and PtRegs.rsp is rsp at the site.
TEST(AttachInt3, TheRedZoneBelowAMidFunctionSiteSurvives) {
  auto eng = engine();
  ASSERT_TRUE(eng);
  StackSeen seen;
  auto id = eng->attach(addr(&i3_redzone_site), HookKind::Entry, stack_hungry, &seen, int3_opts());
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(eng->method(*id), HookMethod::Int3);
  for (uint64_t seed : {0x1000ull, 0xABCDEF0123ull}) {
    uint64_t rsp = 0;
    EXPECT_EQ(opaque(&i3_redzone)(seed, &rsp), 0u) << "qwords of the red zone changed";
    EXPECT_EQ(seen.regs.rsp, rsp);
    EXPECT_EQ(seen.regs.rip, addr(&i3_redzone_site));
    EXPECT_EQ(seen.regs.rdi, seed);
    EXPECT_EQ(seen.regs.rax, seed + 16);
    EXPECT_LT(seen.local + 2048, rsp - 128) << "the hook's stack overlaps the red zone";
  }
  EXPECT_EQ(seen.hits, 2);
  ASSERT_TRUE(eng->detach(*id));
  uint64_t rsp = 0;
  EXPECT_EQ(opaque(&i3_redzone)(5, &rsp), 0u);
  EXPECT_EQ(seen.hits, 2);
}

namespace {

constexpr uint64_t kClobber = 0xA5A5A5A5A5A5A5A5ull;
constexpr uint64_t kArithFlags = 0x8D5;  // CF PF AF ZF SF OF
constexpr uint64_t kDf = 0x400;
enum { kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kFlags };

// Clobbers what a C++ function may (caller-saved registers, flags, ymm0-15
// whole, upper halves left dirty) after recording the PtRegs it got.
void clobber(void* data, PtRegs* regs) {
  auto* s = static_cast<StackSeen*>(data);
  s->regs = *regs;
  ++s->hits;
  asm volatile(
      "mov %0, %%rax; mov %0, %%rcx; mov %0, %%rdx; mov %0, %%rsi; mov %0, %%rdi\n"
      "mov %0, %%r8; mov %0, %%r9; mov %0, %%r10; mov %0, %%r11\n"
      "vmovq %%rax, %%xmm15; vpunpcklqdq %%xmm15, %%xmm15, %%xmm15\n"
      "vinsertf128 $1, %%xmm15, %%ymm15, %%ymm15\n"
      ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n vmovaps %%ymm15, %%ymm\\i\n .endr\n"
      "xor %%eax, %%eax\n"
      :
      : "i"(static_cast<int64_t>(kClobber))
      : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
}

void fill_inputs(uint64_t flags, bool clean_uppers) {
  for (int i = 0; i < 15; ++i) i3_in.gpr[i] = 0x0101010101010101ull * static_cast<uint64_t>(i + 3) + 0x77;
  i3_in.gpr[kFlags] = flags | 0x2;
  for (int r = 0; r < 16; ++r)
    for (int b = 0; b < 32; ++b)
      i3_in.ymm[r][b] = (clean_uppers && b >= 16) ? 0 : static_cast<uint8_t>(r * 32 + b + 5);
  std::memset(&i3_out, 0, sizeof i3_out);
}

}  // namespace

// Every general register, the flags (DF included) and ymm0-15 come back
// from a hook at an int3 site that clobbers them, and the hook's PtRegs
// holds the values at the site.
TEST(AttachInt3, EveryRegisterComesBackAndPtRegsIsTheSites) {
  if (!__builtin_cpu_supports("avx")) GTEST_SKIP() << "the assembly uses ymm registers (no AVX here)";
  auto eng = engine();
  ASSERT_TRUE(eng);
  StackSeen seen;
  auto id = eng->attach(addr(&i3_regs_site), HookKind::Entry, clobber, &seen, int3_opts());
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(eng->method(*id), HookMethod::Int3);
  static const char* const names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                      "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  int runs = 0;
  for (uint64_t flags : {kArithFlags | kDf, kArithFlags, uint64_t{0}}) {
    for (bool clean : {false, true}) {
      SCOPED_TRACE(testing::Message() << "flags 0x" << std::hex << flags << (clean ? ", clean" : ", dirty"));
      fill_inputs(flags, clean);
      i3_regs();
      ++runs;
      for (int g = 0; g < 15; ++g) EXPECT_EQ(i3_out.gpr[g], i3_in.gpr[g]) << names[g];
      EXPECT_EQ(i3_out.gpr[kFlags] & (kArithFlags | kDf), flags);
      for (int r = 0; r < 16; ++r) EXPECT_EQ(std::memcmp(i3_in.ymm[r], i3_out.ymm[r], 32), 0) << "ymm" << r;
      const PtRegs& p = seen.regs;
      const uint64_t want[15] = {p.rax, p.rbx, p.rcx, p.rdx, p.rsi, p.rdi, p.rbp, p.r8,
                                 p.r9,  p.r10, p.r11, p.r12, p.r13, p.r14, p.r15};
      for (int g = 0; g < 15; ++g) EXPECT_EQ(want[g], i3_in.gpr[g]) << "PtRegs." << names[g];
      EXPECT_EQ(p.eflags & (kArithFlags | kDf), flags);
      EXPECT_EQ(p.rip, addr(&i3_regs_site));
      EXPECT_EQ(p.rsp, i3_site_rsp);
      EXPECT_EQ(p.cs, 0x33u);
      EXPECT_EQ(p.ss, 0x2bu);
      EXPECT_EQ(p.orig_rax, ~0ull);
    }
  }
  EXPECT_EQ(seen.hits, runs);
  ASSERT_TRUE(eng->detach(*id));
}
