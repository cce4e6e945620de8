// Freeing what the hook engine keeps for the life of the process, when the
// agent that holds it is about to be unloaded (`ember trace -p` detaching):
// sites, trampolines, per-thread states and the patcher live as long as
// the process because a thread may be inside a trampoline at any time, but
// the controller stops every thread and checks that none is in, or returns
// into, the agent's code before it asks for this (src/attach/inject.cpp).
#include "attach/hook_site.hpp"
#include "attach/text_patch.hpp"

namespace ember::attach::detail {

void release_process_state() {
  release_thread_states();
  SiteTable::release();
  for (auto& mode : g_return_trampolines)
    for (auto& t : mode) t.store(0, std::memory_order_relaxed);
  CodeArena::instance().release();
  if (auto patcher = TextPatcher::instance()) (*patcher)->release();
}

}  // namespace ember::attach::detail
