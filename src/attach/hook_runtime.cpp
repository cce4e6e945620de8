// Per-thread state and the entry dispatcher: the hot path of every hit.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "attach/hook_site.hpp"
#include "attach/text_patch.hpp"

namespace ember::attach::detail {
namespace {

// Thread-local by nature (each thread's own hook state). initial-exec: an
// fs-relative load on the hot path, and no lazy allocation (which would call
// malloc, possibly hooked) when the engine lives in a dlopen'ed agent.
[[gnu::tls_model("initial-exec")]] thread_local ThreadState* tls_state = nullptr;
[[gnu::tls_model("initial-exec")]] thread_local bool tls_busy = false;
[[gnu::tls_model("initial-exec")]] thread_local bool tls_exiting = false;

// The registry of every ThreadState ever made: a lock-free list (push only)
// walked by grace_period().
std::atomic<ThreadState*> g_registry{nullptr};

// Releases the thread's state when it exits (a thread_local destructor).
struct Reaper {
  ThreadState* state = nullptr;
  ~Reaper() {
    tls_exiting = true;
    if (state) {
      state->depth.store(0, std::memory_order_relaxed);
      state->in_use.store(false, std::memory_order_release);
    }
    tls_state = nullptr;
  }
};
thread_local Reaper tls_reaper;

ThreadState* claim_state() {
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    bool expected = false;
    if (s->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return s;
  }
  void* mem = mmap(nullptr, sizeof(ThreadState), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  auto* s = new (mem) ThreadState;
  s->in_use.store(true, std::memory_order_relaxed);
  ThreadState* head = g_registry.load(std::memory_order_relaxed);
  do s->next = head;
  while (!g_registry.compare_exchange_weak(head, s, std::memory_order_release, std::memory_order_relaxed));
  return s;
}

}  // namespace

HookStats& stats() {
  static HookStats s;
  return s;
}

ThreadState* current_thread_state() { return tls_state; }

ThreadState* enter_thread() {
  if (tls_busy || tls_exiting) {
    if (tls_busy) stats().recursion_skips.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  tls_busy = true;  // from here a hooked malloc called below is skipped
  ThreadState* t = tls_state;
  if (__builtin_expect(t == nullptr, 0)) {
    t = claim_state();
    if (!t) {
      tls_busy = false;
      return nullptr;
    }
    t->depth.store(0, std::memory_order_relaxed);
    tls_state = t;
    tls_reaper.state = t;  // registers the destructor (may malloc: we are busy)
  }
  return t;
}

void leave_thread() { tls_busy = false; }

void run_hooks(ThreadState* t, const std::atomic<const HookList*>& list, PtRegs* regs) {
  uint64_t e = t->epoch.load(std::memory_order_relaxed);
  t->epoch.store(e + 1, std::memory_order_relaxed);
  // The odd epoch must be visible before the list is loaded; no fence here:
  // grace_period's membarrier orders it on every running thread (the urcu
  // membarrier scheme), so the hit costs two plain stores.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (const HookList* l = list.load(std::memory_order_acquire))
    for (const HookEntry& h : l->hooks) h.fn(h.data, regs);
  t->epoch.store(e + 2, std::memory_order_release);
}

extern "C" void ember_hook_dispatch_entry(void* site_ptr, void* regs_ptr) {
  auto* site = static_cast<Site*>(site_ptr);
  auto* regs = static_cast<PtRegs*>(regs_ptr);
  ThreadState* t = enter_thread();
  if (!t) return;
  run_hooks(t, site->entry, regs);
  if (site->ret.load(std::memory_order_acquire)) push_return(t, site, regs);
  leave_thread();
}

void grace_period() {
  auto patcher = TextPatcher::instance();
  if (patcher) (*patcher)->barrier_all_threads();
  ThreadState* self = tls_state;
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    if (s == self) continue;  // detach from inside a hook must not wait for itself
    uint64_t e = s->epoch.load(std::memory_order_acquire);
    if ((e & 1) == 0) continue;
    while (s->epoch.load(std::memory_order_acquire) == e) std::this_thread::yield();
  }
}

SiteTable& SiteTable::instance() {
  static SiteTable* table = new SiteTable;  // process lifetime (see the header)
  return *table;
}

Site* SiteTable::find(uintptr_t addr) const {
  size_t h = (addr * 0x9E3779B97F4A7C15ull) >> 52;
  for (size_t i = 0; i < kSlots; ++i) {
    Site* s = slots_[(h + i) % kSlots].load(std::memory_order_acquire);
    if (!s) return nullptr;
    if (s->addr == addr) return s;
  }
  return nullptr;
}

Site* SiteTable::get_or_create(uintptr_t addr) {
  std::lock_guard lock(mu_);
  if (Site* s = find(addr)) return s;
  size_t h = (addr * 0x9E3779B97F4A7C15ull) >> 52;
  for (size_t i = 0; i < kSlots; ++i) {
    auto& slot = slots_[(h + i) % kSlots];
    if (slot.load(std::memory_order_relaxed)) continue;
    auto* s = new Site;
    s->addr = addr;
    slot.store(s, std::memory_order_release);
    return s;
  }
  return nullptr;
}

}  // namespace ember::attach::detail

namespace ember::attach::detail {

bool any_outstanding_returns() {
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next)
    if (s->in_use.load(std::memory_order_acquire) && s->depth.load(std::memory_order_relaxed) > 0)
      return true;
  return false;
}

}  // namespace ember::attach::detail
