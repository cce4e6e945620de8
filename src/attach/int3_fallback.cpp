// The SIGTRAP handler: int3 sites (the permanent int3 of HookMethod::Int3
// and the temporary one of the patching protocol). An int3 at a site of an
// inline hook sends the thread to the site's trampoline; at an int3 site it
// runs the hooks with PtRegs made from the ucontext, then resumes in the
// site's out-of-line stub (the displaced instruction relocated, then a jump
// back). Traps that are not ours go to the previous handler.
#include <signal.h>
#include <ucontext.h>

#include <cstring>
#include <mutex>

#include "attach/hook_site.hpp"

namespace ember::attach::detail {
namespace {

// The SIGTRAP disposition before ours: signal-handler state, process-wide by
// nature, written once before the handler is installed.
struct sigaction g_prev_action;
bool g_installed = false;

void chain(int sig, siginfo_t* si, void* ctx) {
  const struct sigaction& prev = g_prev_action;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) prev.sa_sigaction(sig, si, ctx);
    return;
  }
  if (prev.sa_handler == SIG_IGN) return;
  if (prev.sa_handler == SIG_DFL) {
    // Die as the process would have without us (SA_NODEFER: not blocked).
    signal(SIGTRAP, SIG_DFL);
    raise(SIGTRAP);
    return;
  }
  prev.sa_handler(sig);
}

PtRegs regs_from(const greg_t* g, uintptr_t rip) {
  PtRegs r{};
  r.r15 = g[REG_R15], r.r14 = g[REG_R14], r.r13 = g[REG_R13], r.r12 = g[REG_R12];
  r.rbp = g[REG_RBP], r.rbx = g[REG_RBX], r.r11 = g[REG_R11], r.r10 = g[REG_R10];
  r.r9 = g[REG_R9], r.r8 = g[REG_R8], r.rax = g[REG_RAX], r.rcx = g[REG_RCX];
  r.rdx = g[REG_RDX], r.rsi = g[REG_RSI], r.rdi = g[REG_RDI];
  r.orig_rax = ~0ull;
  r.rip = rip, r.cs = 0x33, r.eflags = g[REG_EFL], r.rsp = g[REG_RSP], r.ss = 0x2b;
  return r;
}

void on_sigtrap(int sig, siginfo_t* si, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  greg_t* g = uc->uc_mcontext.gregs;
  const uintptr_t addr = static_cast<uintptr_t>(g[REG_RIP]) - 1;  // int3 traps after itself
  Site* site = si->si_code == SI_KERNEL ? SiteTable::instance().find(addr) : nullptr;
  if (!site) return chain(sig, si, ctx);
  stats().traps.fetch_add(1, std::memory_order_relaxed);
  if (site->inline_patch.load(std::memory_order_acquire)) {
    g[REG_RIP] = static_cast<greg_t>(site->trampoline);
    return;
  }
  PtRegs regs = regs_from(g, addr);
  (void)ember_hook_dispatch_entry(site, &regs, 0);  // no landing: the return trampoline's address
  g[REG_RIP] = static_cast<greg_t>(site->stub);
}

}  // namespace

Status install_trap_handler() {
  static std::mutex mu;  // one installation per process
  std::lock_guard lock(mu);
  if (g_installed) return ok_status();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_sigtrap;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTRAP, &sa, &g_prev_action) != 0)
    return fail("cannot install the SIGTRAP handler: ", strerror(errno));
  g_installed = true;
  return ok_status();
}

}  // namespace ember::attach::detail
