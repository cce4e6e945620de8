// The hot path of every hit: per-thread state, the entry dispatcher (entry
// hooks, return address replacement) and the return dispatcher.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "attach/hook_site.hpp"
#include "attach/text_patch.hpp"

namespace ember::attach::detail {
namespace {

// Thread-local by nature (each thread's own hook state), in one struct so
// that a hit reads one cache line. initial-exec: an fs-relative access on
// the hot path, and no lazy allocation (which would call malloc, possibly
// hooked) when the engine lives in a dlopen'ed agent. Constant-initialized,
// so no TLS init wrapper either.
struct HotTls {
  ThreadState* state = nullptr;
  bool busy = false;     // inside a hook: hits are skipped (recursion)
  bool exiting = false;  // after the thread's destructors began
};
[[gnu::tls_model("initial-exec")]] constinit thread_local HotTls tls;

// The registry of every ThreadState ever made: a lock-free list (push only)
// walked by grace_period().
std::atomic<ThreadState*> g_registry{nullptr};

// Releases a thread's state when the thread exits: the destructor of a
// pthread key, not a thread_local object's. glibc keeps a library mapped
// while a live thread has a thread_local destructor of it pending, so an
// injected agent could not be unloaded after a thread that is still alive
// had hit a hook; a key is deleted at unload (release_process_state).
void release_state(void* p) {
  tls.exiting = true;
  auto* state = static_cast<ThreadState*>(p);
  state->depth.store(0, std::memory_order_relaxed);
  state->in_use.store(false, std::memory_order_release);
  tls.state = nullptr;
}

// The key, made on the first hit of any thread (under a function-local
// static's guard). Process-wide by nature, as the registry.
struct StateKey {
  pthread_key_t key{};
  bool made = false;
};
StateKey& state_key() {
  static StateKey k = [] {
    StateKey s;
    s.made = pthread_key_create(&s.key, &release_state) == 0;
    return s;
  }();
  return k;
}

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

// First hit of the thread, recursion or exit: the rare cases of enter().
[[gnu::noinline]] ThreadState* enter_slow() {
  if (tls.busy || tls.exiting) {
    if (tls.busy) stats().recursion_skips.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  tls.busy = true;  // from here a hooked malloc called below is skipped
  ThreadState* t = claim_state();
  if (!t) {
    tls.busy = false;
    return nullptr;
  }
  t->depth.store(0, std::memory_order_relaxed);
  tls.state = t;
  // Without a key (all taken) the state is not reused after the thread.
  if (StateKey& k = state_key(); k.made) (void)pthread_setspecific(k.key, t);  // may malloc: we are busy
  return t;
}

// The calling thread's state with `busy` set, or null when its hooks must
// be skipped; leave() ends it.
inline ThreadState* enter() {
  if (__builtin_expect(tls.busy | tls.exiting | (tls.state == nullptr), 0)) return enter_slow();
  tls.busy = true;
  return tls.state;
}
inline void leave() { tls.busy = false; }

// Runs the hooks of a list with the thread's epoch odd.
inline void run_hooks(ThreadState* t, const std::atomic<const HookList*>& list, PtRegs* regs) {
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

// Replaces the return address at regs->rsp with `mark` (the calling
// trampoline's landing, or a return trampoline: see
// ember_hook_dispatch_entry) and pushes the original on the thread's shadow
// stack (see return_hooks.cpp for longjmp and exceptions). False when the
// shadow stack is full (the return is not hooked).
inline bool push_return(ThreadState* t, Site* site, PtRegs* regs, uint64_t mark) {
  assert(mark != 0);
  auto* slot = reinterpret_cast<uint64_t*>(regs->rsp);
  uint32_t d = t->depth.load(std::memory_order_relaxed);
  while (d > 0 && t->shadow[d - 1].slot <= regs->rsp &&
         *reinterpret_cast<uint64_t*>(t->shadow[d - 1].slot) != t->shadow[d - 1].mark)
    --d;  // left behind by longjmp
  if (__builtin_expect(d == ThreadState::kShadowDepth, 0)) {
    ++t->overflows;
    stats().shadow_overflows.fetch_add(1, std::memory_order_relaxed);
    t->depth.store(d, std::memory_order_relaxed);
    return false;
  }
  t->shadow[d] = ShadowEntry{*slot, regs->rsp, site, mark};
  t->depth.store(d + 1, std::memory_order_relaxed);
  *slot = mark;  // a landing is written again by the trampoline's call
  return true;
}

}  // namespace

HookStats& stats() {
  static HookStats s;
  return s;
}

ThreadState* current_thread_state() { return tls.state; }

extern "C" uint64_t ember_hook_dispatch_entry(void* site_ptr, void* regs_ptr, uint64_t mark) {
  auto* site = static_cast<Site*>(site_ptr);
  auto* regs = static_cast<PtRegs*>(regs_ptr);
  ThreadState* t = enter();
  if (!t) return 0;
  run_hooks(t, site->entry, regs);
  bool replaced = false;
  if (site->ret.load(std::memory_order_acquire)) replaced = push_return(t, site, regs, mark);
  leave();
  return replaced;
}

extern "C" uint64_t ember_hook_dispatch_return(void* regs_ptr) {
  auto* regs = static_cast<PtRegs*>(regs_ptr);
  ThreadState* t = tls.state;
  const uint64_t slot = regs->rsp - 8;
  int i = t ? static_cast<int>(t->depth.load(std::memory_order_relaxed)) - 1 : -1;
  while (i >= 0 && t->shadow[i].slot != slot) --i;
  if (i < 0) lost_return(slot);
  const ShadowEntry e = t->shadow[i];
  t->depth.store(static_cast<uint32_t>(i), std::memory_order_relaxed);
  regs->rip = e.ret;
  if (ThreadState* self = enter()) {
    run_hooks(self, e.site->ret, regs);
    leave();
  }
  return e.ret;
}

void grace_period() {
  auto patcher = TextPatcher::instance();
  if (patcher) (*patcher)->barrier_all_threads();
  ThreadState* self = tls.state;
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    if (s == self) continue;  // detach from inside a hook must not wait for itself
    uint64_t e = s->epoch.load(std::memory_order_acquire);
    if ((e & 1) == 0) continue;
    while (s->epoch.load(std::memory_order_acquire) == e) std::this_thread::yield();
  }
}

namespace {
// The table, for the life of the process (see the header) or until the
// agent that made it is unloaded (SiteTable::release).
SiteTable*& table_ptr() {
  static SiteTable* table = new SiteTable;
  return table;
}
}  // namespace

SiteTable& SiteTable::instance() {
  SiteTable* t = table_ptr();
  assert(t && "the site table is used after release()");
  return *t;
}

void SiteTable::release() {
  SiteTable* t = std::exchange(table_ptr(), nullptr);
  if (!t) return;
  for (auto& slot : t->slots_)
    if (Site* s = slot.load(std::memory_order_relaxed)) {
      delete s->entry.load(std::memory_order_relaxed);
      delete s->ret.load(std::memory_order_relaxed);
      delete s;
    }
  delete t;
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

namespace {

// Stack words of other threads, read and written through process_vm_*v on
// this process: a shadow entry left by longjmp or a switched-away user
// context may name a stack that is gone, and a plain access would fault.
bool read_word(uint64_t addr, uint64_t* out) {
  iovec local{out, 8}, remote{reinterpret_cast<void*>(addr), 8};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 8;
}
bool write_word(uint64_t addr, uint64_t value) {
  iovec local{&value, 8}, remote{reinterpret_cast<void*>(addr), 8};
  return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == 8;
}

}  // namespace

void restore_replaced_returns() {
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next) {
    if (!s->in_use.load(std::memory_order_acquire)) continue;
    // Top-down, as unwind_fixup: the newest entry of a slot wins.
    for (uint32_t i = s->depth.load(std::memory_order_relaxed); i-- > 0;) {
      const ShadowEntry& e = s->shadow[i];
      uint64_t now = 0;
      if (read_word(e.slot, &now) && now == e.mark) (void)write_word(e.slot, e.ret);
    }
    s->depth.store(0, std::memory_order_relaxed);
  }
}

void release_thread_states() {
  if (StateKey& k = state_key(); k.made) {
    (void)pthread_key_delete(k.key);
    k.made = false;
  }
  ThreadState* s = g_registry.exchange(nullptr, std::memory_order_acq_rel);
  while (s) {
    ThreadState* next = s->next;
    s->~ThreadState();
    munmap(s, sizeof(ThreadState));
    s = next;
  }
  tls.state = nullptr;  // other threads' TLS goes with the library
}

bool any_outstanding_returns() {
  for (ThreadState* s = g_registry.load(std::memory_order_acquire); s; s = s->next)
    if (s->in_use.load(std::memory_order_acquire) && s->depth.load(std::memory_order_relaxed) > 0)
      return true;
  return false;
}

}  // namespace ember::attach::detail
