// The hook engine: runs a function on a thread of this process when it
// reaches an address (entry hooks, uprobes) or when the function entered at
// an address returns (return hooks, uretprobes). It lives inside the traced
// process (Ember's agent); probe programs run from the HookFn.
//
// Entry hooks patch the first >= 5 bytes of the site with a jmp to a
// generated trampoline (the overwritten instructions are relocated into it);
// where that is impossible (too short, unrelocatable instructions, one-byte
// USDT nops, or HookOptions::force_int3) the site's first byte becomes int3
// and the SIGTRAP handler sends the thread to a trampoline that runs the
// hooks on its own stack (int3_fallback.cpp). Return hooks replace the return
// address with a return trampoline and keep the original on a per-thread
// shadow stack.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "attach/pt_regs.hpp"
#include "attach/trampoline.hpp"
#include "ember/result.hpp"

namespace ember::attach {

enum class HookKind { Entry, Return };
enum class HookMethod { Inline, Int3 };

// Called on the traced thread. For Entry hooks regs are what the function
// sees (rip == the hooked address). For Return hooks rax is the return value
// and rip the address returned to. regs are read-only for hooks, as a
// uprobe program's context is (the trampolines restore the general
// registers from this very frame, but not rip or rsp).
using HookFn = void (*)(void* data, PtRegs* regs);

struct HookOptions {
  bool force_int3 = false;
  // addr is the first instruction of a function called by the SysV x86-64
  // ABI (a symbol's address; not SYMBOL+OFF, not a USDT site, not code with
  // its own conventions such as TLS descriptor resolvers). The trampolines
  // then preserve only the registers the ABI says are live at its entry and
  // at its return, which makes a hit cheaper (see LiveRegs in
  // trampoline.hpp). PtRegs is complete either way. Default: every register
  // is preserved, valid at any instruction boundary. Hooks sharing an
  // address get the full save as soon as one of them did not set this.
  bool function_entry = false;
};

struct HookEngineOptions {
  // The vector state the trampolines of the sites this engine patches save
  // (VectorSave in trampoline.hpp); default: vector_save_mode(), what this
  // CPU and OS need. Tests force Xsave on machines without AVX-512. A site
  // keeps the mode it was patched with: a hook that asks for more than a
  // patched site saves is refused. The return trampolines of int3 sites
  // are the process's (default mode) whatever this says.
  std::optional<VectorSave> vectors;
};

class HookEngine {  // one per process (agent); thread-safe
 public:
  // Fails if opts.vectors cannot run here (vector_save_supported).
  static Result<std::unique_ptr<HookEngine>> create(const HookEngineOptions& opts = {});

  // addr: an instruction boundary of executable code in this process.
  // Entry: fn runs before the instruction at addr (regs->rip == addr).
  // Return: fn runs when the function entered at addr returns (regs->rax =
  // return value, regs->rip = the return address, as kernel uretprobes).
  // Several hooks may share an address (run in attach order).
  Result<int> attach(uintptr_t addr, HookKind kind, HookFn fn, void* data, const HookOptions& opts = {});
  HookMethod method(int id) const;
  // After it returns, fn is never called again for this id once the calls
  // already running finish (see hook_engine.cpp for how that is guaranteed).
  Status detach(int id);
  ~HookEngine();  // detaches everything, restores every byte

  HookEngine(const HookEngine&) = delete;
  HookEngine& operator=(const HookEngine&) = delete;

  struct Impl;

 private:
  explicit HookEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember::attach
