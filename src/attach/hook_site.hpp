// Internal state of the hook engine shared by the trampolines, the SIGTRAP
// handler and the return trampoline. It is process-wide on purpose: a thread
// may enter a trampoline or return through the return trampoline at any
// time, even after the engine that patched the site is gone, so sites,
// trampolines and per-thread shadow stacks live as long as the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "attach/hooks.hpp"
#include "attach/trampoline.hpp"

namespace ember::attach::detail {

struct HookEntry {
  HookFn fn;
  void* data;
  int id;
};

// Immutable once published; replaced as a whole and freed after a grace
// period (see grace_period()).
struct HookList {
  std::vector<HookEntry> hooks;
};

struct Site {
  uintptr_t addr = 0;
  std::atomic<const HookList*> entry{nullptr};  // null: none
  std::atomic<const HookList*> ret{nullptr};
  // Set under the engine mutex; read by the SIGTRAP handler.
  std::atomic<bool> inline_patch{false};
  // Every hook attached while the site was patched said function_entry
  // (HookOptions): trampolines may preserve only the ABI's live registers.
  // Cleared (never set again while patched) by an attach without it.
  std::atomic<bool> call_abi{false};
  uintptr_t trampoline = 0;     // the entry trampoline in use (inline method), 0 until needed
  bool trampoline_abi = false;  // it preserves only LiveRegs::CallEntry
  // Every trampoline made for the site is kept (threads may be inside);
  // these are reused on re-attach, so a site has at most one of each.
  uintptr_t full_trampoline = 0;  // LiveRegs::All
  uintptr_t abi_trampoline = 0;   // LiveRegs::CallEntry
  uintptr_t stub = 0;             // out-of-line copy of the first instruction + jmp back (int3 method)
  uintptr_t int3_trampoline = 0;  // int3 method: where SIGTRAP sends threads; hooks, then the stub
  size_t window = 0;              // bytes the inline jmp replaces
  size_t instructions = 0;        // instructions in the window
  uint8_t original[16] = {};
  bool patched = false;
  HookMethod method = HookMethod::Inline;
  // The vector state the kept trampolines save (set when the site is
  // patched; they are remade when it is patched again with another).
  VectorSave vectors = VectorSave::Sse;
  // int3_trampoline's, which is replaced, never cleared: a thread that hit
  // the int3 before an unpatch may run the SIGTRAP handler at any time.
  VectorSave int3_vectors = VectorSave::Sse;
};

// Sites by address. Insertion under the engine mutex; lookup lock-free and
// async-signal-safe (the SIGTRAP handler). Entries are never removed.
class SiteTable {
 public:
  static SiteTable& instance();
  // Frees the table, its sites and their hook lists; instance() must not be
  // called again. Only for an agent about to be unloaded (see
  // release_process_state).
  static void release();
  Site* find(uintptr_t addr) const;
  Site* get_or_create(uintptr_t addr);  // null when full
  std::recursive_mutex& mutex() { return mu_; }

 private:
  static constexpr size_t kSlots = 4096;
  std::atomic<Site*> slots_[kSlots] = {};
  std::recursive_mutex mu_;
};

struct ShadowEntry {
  uint64_t ret;   // the original return address
  uint64_t slot;  // where it was on the stack (rsp at function entry)
  Site* site;
  // What the slot holds while the return is replaced: an entry
  // trampoline's landing, or a ReturnExit::Jmp return trampoline (int3
  // sites). A slot that holds something else was left (longjmp).
  uint64_t mark;
};

// One per thread that has hit a hook; allocated with mmap (never malloc: a
// hook on malloc would recurse) and reused after the thread exits.
struct ThreadState {
  static constexpr uint32_t kShadowDepth = 1024;
  std::atomic<uint64_t> epoch{0};  // odd while the thread runs hooks of a site
  std::atomic<bool> in_use{false};
  std::atomic<uint32_t> depth{0};  // shadow entries; written by the owner only
  uint64_t overflows = 0;          // return hooks skipped because the shadow stack was full
  ThreadState* next = nullptr;     // registry list, never unlinked
  ShadowEntry shadow[kShadowDepth];
};

// The calling thread's state (null before its first hit and while exiting).
ThreadState* current_thread_state();

// Runs the entry hooks of `site` and, if it has return hooks, replaces the
// return address at regs->rsp with `mark`, which the calling trampoline
// gives: an inline trampoline's landing (it then calls the function, see
// emit_entry_trampoline), or at an int3 site a ReturnExit::Jmp return
// trampoline of the site's vector-save mode. Returns non-zero when it
// replaced it. Called by the entry trampolines only.
extern "C" uint64_t ember_hook_dispatch_entry(void* site, void* regs, uint64_t mark);
// Called by the return trampolines: runs the return hooks of the frame that
// returned and gives the original return address.
extern "C" uint64_t ember_hook_dispatch_return(void* regs);

// Waits until no thread still runs hooks from a list it loaded before this
// call (epoch scheme: every thread's epoch is even or has moved on).
void grace_period();

// Return hooks (return_hooks.cpp). The return trampolines, made once per
// vector-save mode by make_return_trampolines(), one per LiveRegs (All, or
// the SysV return set CallReturn for sites with call_abi) and ReturnExit
// (Jmp for int3 sites, Ret for returns through an entry trampoline's
// landing). A site's trampolines give the dispatcher the address to write
// over a replaced return address, so the hit never looks them up.
constexpr int kVectorSaveModes = 3;
extern std::atomic<uint64_t> g_return_trampolines[kVectorSaveModes][4];
inline uint64_t return_trampoline(VectorSave mode, bool call_abi, ReturnExit exit) {
  const int i = (exit == ReturnExit::Ret ? 2 : 0) + (call_abi ? 1 : 0);
  return g_return_trampolines[static_cast<int>(mode)][i].load(std::memory_order_acquire);
}
// A return trampoline reached with no shadow entry: cannot go on.
[[noreturn]] void lost_return(uint64_t slot);
// Makes the four return trampolines of a mode once (before any entry
// trampoline of that mode: their landings jump to them). Under the site
// table mutex.
Status make_return_trampolines(VectorSave mode);
// Keeps the C++ unwinder from ever seeing the return trampoline (hooks on
// _Unwind_RaiseException and _Unwind_ForcedUnwind); idempotent.
Status install_unwind_guards();
// Removes them when no thread has an outstanding return; true if removed.
bool remove_unwind_guards_if_idle();

// SIGTRAP handler (int3_fallback.cpp), installed once.
Status install_trap_handler();

// Counters for tests and the agent's statistics.
struct HookStats {
  std::atomic<uint64_t> recursion_skips{0};
  std::atomic<uint64_t> shadow_overflows{0};
  std::atomic<uint64_t> traps{0};
};
HookStats& stats();

}  // namespace ember::attach::detail

namespace ember::attach::detail {

// The process-wide core behind HookEngine (hook_engine.cpp); ids are unique
// in the process.
// vectors: what the site's trampolines must save (HookEngineOptions).
Result<int> attach_site_hook(uintptr_t addr, HookKind kind, HookFn fn, void* data, const HookOptions& opts,
                             VectorSave vectors = vector_save_mode());
Status detach_site_hook(int id);
HookMethod site_method(int id);
// True when some thread has a return address replaced right now.
bool any_outstanding_returns();

// Unloading the agent (ember_agent_prepare_unload): these run in one thread
// while every other thread of the process is stopped (ptrace) outside the
// agent's code and trampolines.
// Writes every replaced return address back (those calls return straight
// to their callers, without their return hooks) and empties every shadow
// stack; slots that no longer hold the mark (longjmp) are left alone.
void restore_replaced_returns();
// Deletes the thread-exit key and unmaps every thread's state.
void release_thread_states();
// Frees everything the engine keeps for the life of the process: thread
// states, sites, trampolines (return trampolines included), the patcher's
// fd. Only after the last HookEngine is gone; nothing of the engine may run
// afterwards (the library is about to be unmapped).
void release_process_state();

}  // namespace ember::attach::detail
