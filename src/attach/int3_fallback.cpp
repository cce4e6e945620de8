// The SIGTRAP handler: int3 sites (the permanent int3 of HookMethod::Int3
// and the temporary one of the patching protocol). It only redirects: the
// thread returns from the signal into a trampoline, the site's inline entry
// trampoline or, at an int3 site, its int3 trampoline (hook_engine.cpp),
// which runs the hooks on the thread's own stack below its red zone and
// then resumes in the site's out-of-line stub (the displaced instruction
// relocated, then a jump back). So hooks never run on the signal's stack
// (a sigaltstack may be a few KiB: Go's, Rust's) nor inside a signal frame,
// and every method shares one code path. Traps that are not ours go to the
// previous handler.
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

void on_sigtrap(int sig, siginfo_t* si, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  greg_t* g = uc->uc_mcontext.gregs;
  const uintptr_t addr = static_cast<uintptr_t>(g[REG_RIP]) - 1;  // int3 traps after itself
  Site* site = si->si_code == SI_KERNEL ? SiteTable::instance().find(addr) : nullptr;
  if (!site) return chain(sig, si, ctx);
  stats().traps.fetch_add(1, std::memory_order_relaxed);
  // Every register but rip is as the site had it: the trampoline sees the
  // thread exactly as an inline jmp would have brought it there.
  const bool inline_patch = site->inline_patch.load(std::memory_order_acquire);
  g[REG_RIP] = static_cast<greg_t>(inline_patch ? site->trampoline : site->int3_trampoline);
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
