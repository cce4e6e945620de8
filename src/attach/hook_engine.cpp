// HookEngine: attaching and detaching hooks on sites.
//
// Lifetimes. Sites, trampolines, out-of-line stubs, the return trampoline
// and thread states live as long as the process (a thread may be inside any
// of them at any time, or hold a replaced return address); re-attaching an
// address reuses its trampoline, so memory grows with distinct addresses,
// not with attach/detach cycles. Hook lists are immutable and replaced as a
// whole; the old list is freed after a grace period.
//
// Detach guarantee. A thread runs a site's hooks with its epoch odd and
// loads the list after making it odd. detach() publishes the list without
// the hook, then grace_period(): a private expedited membarrier (a full
// barrier on every running thread, so an odd epoch stored before an old
// list was loaded is visible) and a wait until every thread whose epoch was
// odd has moved on. After that no thread can call the detached fn. (A hook
// must not attach or detach: the engine mutex is held during the wait.)
//
// Registers. HookOptions::function_entry lets the trampolines preserve only
// what the SysV ABI says is live at a call's entry and return (LiveRegs in
// trampoline.hpp: xmm0-7 and xmm0-1 instead of xmm0-15, no popfq); a site
// keeps the reduced save only while every hook attached to it asked for it.
//
// Vector state. Trampolines save xmm registers, or whole ymm registers when
// AVX is enabled (see trampoline.hpp for the upper-half handling), or, when
// the OS enables AVX-512 or AMX state, everything with XSAVEC/XRSTOR
// (VectorSave::Xsave): code reached from a hook could otherwise change
// zmm16-31, the upper zmm halves or k0-7 of a probed function (glibc's EVEX
// string functions use ymm16-31). HookEngineOptions::vectors forces a mode
// (tests: Xsave on this AVX2 machine); each site keeps the mode it was
// patched with (settle_vectors).
//
// Threads inside a window. The int3 protocol covers threads that fetch the
// first byte; a thread stopped between two instructions of a window of
// several would resume inside the new jmp. So such a window is written with
// every other thread parked in a signal handler (ParkedThreads) and none
// stopped inside it, as the kernel's optimized kprobes wait for such tasks;
// if that cannot be had the site uses int3.
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "attach/hook_site.hpp"
#include "attach/text_patch.hpp"
#include "attach/trampoline.hpp"
#include "attach/x86_relocate.hpp"

namespace ember::attach {
namespace detail {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

struct IdInfo {
  Site* site;
  HookKind kind;
  bool internal;
};

// Process-wide like the sites they point to; under the site table mutex.
std::map<int, IdInfo>& ids() {
  static auto* m = new std::map<int, IdInfo>;
  return *m;
}
int g_next_id = 1;
int g_user_return_hooks = 0;

constexpr size_t kJmpSize = 5;
constexpr size_t kMaxRelocated = 256;  // a window of <= 5 instructions, each <= 34 bytes relocated, + jmp

LiveRegs entry_live(bool abi) { return abi ? LiveRegs::CallEntry : LiveRegs::All; }

// The return trampoline of the site's vector-save mode that a replaced
// return address leads to: through an inline site's landing (Ret), or
// written by the dispatcher at an int3 site (Jmp, saving everything). 0 when
// it cannot be made. Under the site table mutex.
uintptr_t site_return(const Site* site, bool abi, ReturnExit exit) {
  if (!make_return_trampolines(site->vectors)) return 0;
  return return_trampoline(site->vectors, abi, exit);
}

// Makes (or finds) the site's entry trampoline for what site->call_abi asks
// and makes it the one in use; error when the site cannot be patched inline
// (the caller falls back to int3). Must be called while the site's code is
// original (unpatched): the window is relocated from it.
Status make_trampoline(Site* site, size_t readable, TextPatcher& patcher) {
  const bool abi = site->call_abi.load(std::memory_order_relaxed);
  uintptr_t& kept = abi ? site->abi_trampoline : site->full_trampoline;
  if (!kept) {
    const uintptr_t ret = site_return(site, abi, ReturnExit::Ret);  // the landing jumps to it
    if (!ret) return fail("cannot make a return trampoline");
    const size_t prologue = entry_prologue_size(entry_live(abi), site->vectors);
    const size_t size = prologue + kMaxRelocated + entry_landing_size(entry_live(abi));
    auto at = CodeArena::instance().alloc(site->addr, size);
    if (!at) return at.error();
    auto rel = relocate(site->addr, readable, kJmpSize, *at + prologue);
    if (!rel) return rel.error();
    if (auto st = check_no_branch_into(site->addr, readable, rel->window); !st) return st;
    std::vector<uint8_t> code =
        emit_entry_trampoline(*at, site->addr, site, &ember_hook_dispatch_entry, rel->code,
                              site->addr + rel->window, entry_live(abi), ret, site->vectors);
    assert(code.size() <= size);
    if (auto st = patcher.write(*at, code.data(), code.size()); !st) return st;
    site->window = rel->window;
    site->instructions = rel->instructions;
    kept = *at;
  }
  site->trampoline = kept;
  site->trampoline_abi = abi;
  return ok_status();
}

// A site patched with a CallEntry trampoline gets a hook that needs every
// register preserved: its full-save trampoline if it has one, else a new
// one whose tail jumps to the relocated instructions of the CallEntry one
// (which, like every trampoline, stays for the process lifetime); then the
// site's jmp is re-pointed. The site holds one jmp instruction, so the int3
// protocol of poke() covers it.
Status upgrade_to_full_save(Site* site, TextPatcher& patcher) {
  if (!site->full_trampoline) {
    const uintptr_t old = site->abi_trampoline;
    const size_t old_prologue = entry_prologue_size(LiveRegs::CallEntry, site->vectors);
    const uintptr_t ret = site_return(site, false, ReturnExit::Ret);
    if (!ret) return fail("cannot make a return trampoline");
    const size_t prologue = entry_prologue_size(LiveRegs::All, site->vectors);
    const size_t size = prologue + kMaxRelocated + entry_landing_size(LiveRegs::All);
    auto at = CodeArena::instance().alloc(site->addr, size);
    if (!at) return at.error();
    std::vector<uint8_t> tail;
    emit_abs_jmp(tail, old + old_prologue);
    std::vector<uint8_t> code =
        emit_entry_trampoline(*at, site->addr, site, &ember_hook_dispatch_entry, tail,
                              site->addr + site->window, LiveRegs::All, ret, site->vectors);
    assert(code.size() <= size);
    if (auto st = patcher.write(*at, code.data(), code.size()); !st) return st;
    site->full_trampoline = *at;
  }
  const uintptr_t to = site->full_trampoline;
  site->trampoline = to;  // where the temporary int3 sends threads from now on
  site->trampoline_abi = false;
  uint8_t jmp[kJmpSize] = {0xE9};
  int32_t rel = static_cast<int32_t>(to - (site->addr + kJmpSize));
  std::memcpy(jmp + 1, &rel, 4);
  return patcher.poke(site->addr, jmp, kJmpSize);
}

// The out-of-line stub of an int3 site covers the same window as an inline
// patch would (when that relocates), so that a thread still in the SIGTRAP
// handler when the site turns inline resumes after the window, not inside
// the new jmp; otherwise the one displaced instruction.
Status make_stub(Site* site, size_t readable, TextPatcher& patcher) {
  if (site->stub) return ok_status();
  auto at = CodeArena::instance().alloc(site->addr, kMaxRelocated);
  if (!at) return at.error();
  auto rel = relocate(site->addr, readable, kJmpSize, *at);
  if (!rel) rel = relocate(site->addr, readable, 1, *at);
  if (!rel) return fail("cannot hook ", hex(site->addr), " even with int3: ", rel.error().message);
  std::vector<uint8_t> code = std::move(rel->code);
  emit_abs_jmp(code, site->addr + rel->window);
  if (code.size() > kMaxRelocated) return fail("cannot hook ", hex(site->addr), ": displaced code too long");
  if (auto st = patcher.write(*at, code.data(), code.size()); !st) return st;
  site->stub = *at;
  return ok_status();
}

// The trampoline an int3 site's SIGTRAP handler sends threads to: the
// hooks run there, on the thread's stack below its red zone, as they do at
// an inline site (the handler itself may run on a small sigaltstack, and
// would otherwise run the probe programs inside a signal frame); it ends
// with a jmp to the stub. It saves everything (LiveRegs::All): the signal
// costs far more than the saves, and nothing must change when a later hook
// asks for the full save. No landing: the dispatcher is given a
// ReturnExit::Jmp return trampoline to write for return hooks.
Status make_int3_trampoline(Site* site, TextPatcher& patcher) {
  if (site->int3_trampoline && site->int3_vectors == site->vectors) return ok_status();
  assert(site->stub);
  // Its return hooks come back through a Jmp return trampoline of the
  // site's mode that saves everything, whatever call_abi says later.
  const uintptr_t ret = site_return(site, false, ReturnExit::Jmp);
  if (!ret) return fail("cannot make a return trampoline");
  // Position-independent without a landing: `at` (0) places nothing.
  std::vector<uint8_t> code = emit_entry_trampoline(0, site->addr, site, &ember_hook_dispatch_entry, {},
                                                    site->stub, LiveRegs::All, ret, site->vectors, false);
  auto at = CodeArena::instance().alloc(site->addr, code.size());
  if (!at) return at.error();
  if (auto st = patcher.write(*at, code.data(), code.size()); !st) return st;
  site->int3_vectors = site->vectors;
  site->int3_trampoline = *at;
  return ok_status();
}

// Writes the jmp to the trampoline. A window of several instructions is
// written with every other thread parked and none stopped inside it (retried
// for a while); false when that cannot be had (the caller uses int3).
bool write_jmp(Site* site, TextPatcher& patcher) {
  uint8_t jmp[kJmpSize] = {0xE9};
  int32_t rel = static_cast<int32_t>(site->trampoline - (site->addr + kJmpSize));
  std::memcpy(jmp + 1, &rel, 4);
  site->inline_patch.store(true, std::memory_order_release);  // the temporary int3 goes to the trampoline
  if (site->instructions <= 1) return patcher.poke(site->addr, jmp, kJmpSize).ok();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto parked = ParkedThreads::park(site->addr, site->addr + site->window);
    if (!parked) return false;
    if (!(*parked)->someone_inside()) return patcher.poke(site->addr, jmp, kJmpSize).ok();
    parked->reset();
    usleep(100);
  }
  return false;
}

Status patch_site(Site* site, bool force_int3) {
  auto patcher = TextPatcher::instance();
  if (!patcher) return patcher.error();
  auto map = mapping_of(site->addr);
  if (!map) return map.error();
  if (!map->executable || !map->readable)
    return fail("address ", hex(site->addr), " is not in readable executable code");
  const size_t readable = map->end - site->addr;
  if (readable < kJmpSize)
    return fail("address ", hex(site->addr), " is too close to the end of its mapping");
  std::memcpy(site->original, reinterpret_cast<const void*>(site->addr), kJmpSize);
  const bool inline_ok =
      !force_int3 && (*patcher)->can_serialize() && make_trampoline(site, readable, **patcher).ok();
  if (inline_ok && write_jmp(site, **patcher)) {
    site->method = HookMethod::Inline;
  } else {
    if (auto st = make_stub(site, readable, **patcher); !st) return st;
    if (auto st = make_int3_trampoline(site, **patcher); !st) return st;
    site->inline_patch.store(false, std::memory_order_release);
    const uint8_t int3 = 0xCC;
    if (auto st = (*patcher)->poke(site->addr, &int3, 1); !st) return st;
    site->method = HookMethod::Int3;
  }
  site->patched = true;
  return ok_status();
}

Status unpatch_site(Site* site) {
  auto patcher = TextPatcher::instance();
  if (!patcher) return patcher.error();
  size_t n = site->method == HookMethod::Inline ? kJmpSize : 1;
  if (auto st = (*patcher)->poke(site->addr, site->original, n); !st) return st;
  site->patched = false;
  return ok_status();
}

// Publishes `next` in place of the current list and frees the old one once
// no thread can be running it.
void replace_list(std::atomic<const HookList*>& slot, const HookList* next) {
  const HookList* old = slot.exchange(next, std::memory_order_acq_rel);
  if (old) {
    grace_period();
    delete old;
  }
}

std::atomic<const HookList*>& list_of(Site* site, HookKind kind) {
  return kind == HookKind::Entry ? site->entry : site->ret;
}

// How much the site's trampolines preserve: the first hook of an unpatched
// site decides; a later hook can only widen it to everything.
Status settle_live_regs(Site* site, bool function_entry) {
  if (!site->patched) {
    site->call_abi.store(function_entry, std::memory_order_relaxed);
    return ok_status();
  }
  if (function_entry || !site->call_abi.load(std::memory_order_relaxed)) return ok_status();
  site->call_abi.store(false, std::memory_order_relaxed);  // new return hits use the full return trampoline
  if (site->method != HookMethod::Inline || !site->trampoline_abi) return ok_status();
  auto patcher = TextPatcher::instance();
  if (!patcher) return patcher.error();
  return upgrade_to_full_save(site, **patcher);
}

// The vector state the site's trampolines save. An unpatched site takes
// what this hook asks; its kept trampolines, made for another mode, are
// left (threads may be inside) and made again (the int3 one by
// make_int3_trampoline). A patched site saving less
// than asked refuses the hook (remaking trampolines of a live site is not
// worth it: one engine per process, in practice one mode).
Status settle_vectors(Site* site, VectorSave vectors) {
  if (site->patched) {
    if (static_cast<int>(vectors) <= static_cast<int>(site->vectors)) return ok_status();
    return fail("the site is hooked with trampolines that save less vector state than this engine asks");
  }
  if (vectors != site->vectors) {
    site->full_trampoline = site->abi_trampoline = 0;  // site->trampoline stays valid until replaced
    site->vectors = vectors;
  }
  return ok_status();
}

}  // namespace

Result<int> attach_site_hook(uintptr_t addr, HookKind kind, HookFn fn, void* data, const HookOptions& opts,
                             VectorSave vectors) {
  if (!fn) return fail("attach at ", hex(addr), ": no hook function");
  SiteTable& table = SiteTable::instance();
  std::lock_guard lock(table.mutex());
  if (auto st = install_trap_handler(); !st) return st.error();
  if (kind == HookKind::Return) {
    if (auto st = make_return_trampolines(vectors); !st) return st.error();
    if (auto st = install_unwind_guards(); !st) return st.error();
  }
  Site* site = table.get_or_create(addr);
  if (!site) return fail("attach at ", hex(addr), ": too many hooked addresses");
  // Before the hook is published: it must never run with less saved than it needs.
  if (auto st = settle_vectors(site, vectors); !st)
    return fail("cannot hook ", hex(addr), ": ", st.error().message);
  if (auto st = settle_live_regs(site, opts.function_entry); !st)
    return fail("cannot hook ", hex(addr), ": ", st.error().message);
  const int id = g_next_id++;
  auto& slot = list_of(site, kind);
  auto* next = new HookList;
  if (const HookList* cur = slot.load(std::memory_order_relaxed)) next->hooks = cur->hooks;
  next->hooks.push_back(HookEntry{fn, data, id});
  replace_list(slot, next);
  if (!site->patched) {
    if (auto st = patch_site(site, opts.force_int3); !st) {
      // Back out: the list goes back to what it was.
      auto* prev = new HookList{*next};
      prev->hooks.pop_back();
      replace_list(slot, prev->hooks.empty() ? (delete prev, nullptr) : prev);
      return fail("cannot hook ", hex(addr), ": ", st.error().message);
    }
  }
  ids()[id] = IdInfo{site, kind, false};
  if (kind == HookKind::Return) ++g_user_return_hooks;
  return id;
}

Status detach_site_hook(int id) {
  SiteTable& table = SiteTable::instance();
  std::lock_guard lock(table.mutex());
  auto it = ids().find(id);
  if (it == ids().end()) return fail("detach: no hook with id ", id);
  const IdInfo info = it->second;
  ids().erase(it);
  Site* site = info.site;
  auto& slot = list_of(site, info.kind);
  const HookList* cur = slot.load(std::memory_order_relaxed);
  HookList* next = nullptr;
  if (cur && cur->hooks.size() > 1) {
    next = new HookList;
    for (const HookEntry& h : cur->hooks)
      if (h.id != id) next->hooks.push_back(h);
  }
  // Unpatch before the grace period so that new hits stop first.
  const bool last = !next && !list_of(site, info.kind == HookKind::Entry ? HookKind::Return : HookKind::Entry)
                                  .load(std::memory_order_relaxed);
  Status unpatched = ok_status();
  if (last && site->patched) unpatched = unpatch_site(site);
  replace_list(slot, next);
  if (info.kind == HookKind::Return && --g_user_return_hooks == 0) remove_unwind_guards_if_idle();
  if (!unpatched) return fail("detach ", id, ": ", unpatched.error().message);
  return ok_status();
}

HookMethod site_method(int id) {
  SiteTable& table = SiteTable::instance();
  std::lock_guard lock(table.mutex());
  auto it = ids().find(id);
  assert(it != ids().end());
  return it->second.site->method;
}

}  // namespace detail

struct HookEngine::Impl {
  std::set<int> ids;  // under the site table mutex
  VectorSave vectors = VectorSave::Sse;
};

HookEngine::HookEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HookEngine>> HookEngine::create(const HookEngineOptions& opts) {
  const VectorSave vectors = opts.vectors.value_or(vector_save_mode());
  if (!vector_save_supported(vectors))
    return fail("the hook engine cannot save vector state that way on this CPU (no XSAVE or AVX enabled)");
  auto patcher = TextPatcher::instance();
  if (!patcher) return patcher.error();
  if (auto st = detail::install_trap_handler(); !st) return st.error();
  auto impl = std::make_unique<Impl>();
  impl->vectors = vectors;
  return std::unique_ptr<HookEngine>(new HookEngine(std::move(impl)));
}

Result<int> HookEngine::attach(uintptr_t addr, HookKind kind, HookFn fn, void* data,
                               const HookOptions& opts) {
  std::lock_guard lock(detail::SiteTable::instance().mutex());
  auto id = detail::attach_site_hook(addr, kind, fn, data, opts, impl_->vectors);
  if (id) impl_->ids.insert(*id);
  return id;
}

HookMethod HookEngine::method(int id) const {
  std::lock_guard lock(detail::SiteTable::instance().mutex());
  assert(impl_->ids.count(id));
  return detail::site_method(id);
}

Status HookEngine::detach(int id) {
  std::lock_guard lock(detail::SiteTable::instance().mutex());
  if (!impl_->ids.erase(id)) return fail("detach: hook ", id, " is not attached by this engine");
  return detail::detach_site_hook(id);
}

HookEngine::~HookEngine() {
  std::lock_guard lock(detail::SiteTable::instance().mutex());
  for (int id : impl_->ids) (void)detail::detach_site_hook(id);
}

}  // namespace ember::attach
