// Return hooks (uretprobes): the entry dispatcher replaces the return address
// with a return trampoline and remembers the original on a per-thread
// shadow stack; the return trampoline runs the return hooks and goes back.
// At an inline site the replaced address is the entry trampoline's landing:
// the trampoline calls the function instead of jumping to it, so that the
// function's ret is predicted (see emit_entry_trampoline); the landing
// jumps to a return trampoline that leaves by ret. int3 sites write a
// return trampoline's address, and it leaves by an indirect jmp.
// This file makes the trampolines and guards unwinding; the per-hit code
// (push_return, ember_hook_dispatch_return) is in hook_runtime.cpp.
//
// longjmp/siglongjmp: frames skipped leave entries behind. An entry is
// matched on return by its stack slot (the topmost entry whose slot is where
// the return address was), entries above it are dead and dropped; a new
// entry drops dead ones on top of it (at or below its slot and no longer
// holding the trampoline address).
// C++ exceptions: the unwinder reads return addresses from the stack and
// would find no unwind info for the trampoline (std::terminate). Entry hooks
// on _Unwind_RaiseException and _Unwind_ForcedUnwind put every replaced
// return address of the throwing thread back and empty its shadow stack, so
// the frames the exception leaves lose their return hook, and so do the
// outer frames it does not leave (we cannot know where it will be caught).
// The kernel's uretprobes hijack the return address the same way and do no
// such fix-up, so an exception thrown through a kernel-uretprobed function
// meets the [uprobes] trampoline in the unwinder.
// Recursion: each call its own entry. Tail calls: a jmp out of the function
// leaves the replaced address; the hook fires once, when the tail-called
// function returns (with its return value). Threads exiting with entries
// outstanding: nothing to restore, the state is reused.
// Alternate stacks (sigaltstack, user-level context switching) keep working
// as long as every frame returns in order; unmatched returns abort (below).
// CET user shadow stacks are not supported (the replaced address would fault).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "attach/hook_site.hpp"
#include "attach/text_patch.hpp"
#include "attach/trampoline.hpp"

namespace ember::attach::detail {

std::atomic<uint64_t> g_return_trampolines[kVectorSaveModes][4] = {};

[[noreturn]] void lost_return(uint64_t slot) {
  char msg[160];
  int n =
      snprintf(msg, sizeof msg,
               "ember: return trampoline reached with no shadow entry for the return address slot 0x%llx; "
               "cannot resume\n",
               static_cast<unsigned long long>(slot));
  if (n > 0) (void)!::write(2, msg, static_cast<size_t>(n));
  abort();
}

namespace {

void unwind_fixup(void*, PtRegs*) {
  ThreadState* t = current_thread_state();
  if (!t) return;
  for (uint32_t i = t->depth.load(std::memory_order_relaxed); i-- > 0;) {
    auto* p = reinterpret_cast<uint64_t*>(t->shadow[i].slot);
    if (*p == t->shadow[i].mark) *p = t->shadow[i].ret;  // top-down: the newest entry of a slot wins
  }
  t->depth.store(0, std::memory_order_relaxed);
}

// Internal hook ids of the unwind guards (under the site table mutex).
int g_guard_ids[2] = {-1, -1};

}  // namespace

Status make_return_trampolines(VectorSave mode) {
  std::atomic<uint64_t>* made = g_return_trampolines[static_cast<int>(mode)];
  if (made[0].load(std::memory_order_relaxed)) return ok_status();
  auto patcher = TextPatcher::instance();
  if (!patcher) return patcher.error();
  const LiveRegs lives[2] = {LiveRegs::All, LiveRegs::CallReturn};  // index: call_abi
  const ReturnExit exits[2] = {ReturnExit::Jmp, ReturnExit::Ret};
  uint64_t at[4] = {};
  for (int i = 0; i < 4; ++i) {  // as return_trampoline() indexes them
    std::vector<uint8_t> code =
        emit_return_trampoline(&ember_hook_dispatch_return, lives[i % 2], exits[i / 2], mode);
    auto a = CodeArena::instance().alloc(0, code.size());
    if (!a) return a.error();
    if (auto st = (*patcher)->write(*a, code.data(), code.size()); !st) return st;
    at[i] = *a;
  }
  for (int i = 3; i >= 0; --i) made[i].store(at[i], std::memory_order_release);  // [0] last: "made"
  return ok_status();
}

Status install_unwind_guards() {
  if (g_guard_ids[0] >= 0 || g_guard_ids[1] >= 0) return ok_status();
  const char* names[2] = {"_Unwind_RaiseException", "_Unwind_ForcedUnwind"};
  for (int i = 0; i < 2; ++i) {
    void* fn = dlsym(RTLD_DEFAULT, names[i]);
    if (!fn) continue;  // no libgcc_s unwinder here: nothing can meet the trampoline through it
    auto id = attach_site_hook(reinterpret_cast<uintptr_t>(fn), HookKind::Entry, &unwind_fixup, nullptr, {});
    if (!id) return fail("cannot guard ", names[i], " against return hooks: ", id.error().message);
    g_guard_ids[i] = *id;
  }
  return ok_status();
}

bool remove_unwind_guards_if_idle() {
  if (any_outstanding_returns()) return false;
  for (int& id : g_guard_ids) {
    if (id >= 0) (void)detach_site_hook(id);
    id = -1;
  }
  return true;
}

}  // namespace ember::attach::detail
