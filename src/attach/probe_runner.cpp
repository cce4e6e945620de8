#include "attach/probe_runner.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <utility>
#include <vector>

namespace ember::attach {
namespace {

// Set while this thread runs a probe program. Per-thread state is what a
// probe on a thread needs (a helper that calls malloc while malloc is
// probed must not recurse); initial-exec TLS costs one load, and the agent
// needs one byte of the static TLS glibc keeps for libraries loaded later.
[[gnu::tls_model("initial-exec")]] thread_local bool t_in_probe = false;

// Per thread, a JitRunner for each probe the thread has hit: a JitRunner
// keeps one run's frame and stacks set up (an empty program then costs a
// few ns instead of JitProgram::run's set-up) and serves one thread at a
// time. A hit looks in a small direct-mapped cache (initial-exec TLS, no
// constructor: one load and a compare) keyed by the runner's serial number,
// never reused, so a slot left by a destroyed runner never matches; on a
// miss the thread's list is searched, dropping the entries of runners that
// are gone (each entry shares its runner's `alive` flag), and the runner is
// created on the thread's first hit. The list is freed when the thread
// exits.
struct ThreadRunners {
  struct Entry {
    uint64_t serial;
    std::shared_ptr<const std::atomic<bool>> alive;
    std::unique_ptr<JitRunner> runner;
  };
  std::vector<Entry> entries;
};
[[gnu::tls_model("initial-exec")]] thread_local ThreadRunners* t_runners = nullptr;

constexpr size_t kCacheSlots = 16;
struct CacheSlot {
  uint64_t serial;
  JitRunner* runner;
};
[[gnu::tls_model("initial-exec")]] thread_local CacheSlot t_cache[kCacheSlots] = {};

// The input of this thread's probe runs. Every runner runs on the same
// kind of input (a read-only struct pt_regs, no packet) and a thread runs
// one probe program at a time (t_in_probe), so one per thread serves them
// all: a hit sets ctx and copies nothing.
[[gnu::tls_model("initial-exec")]] constinit thread_local RunInput t_input{
    .ctx = nullptr, .ctx_size = sizeof(PtRegs), .ctx_writable = false, .packet = {}};

// Set once the thread's list is being destroyed (thread exit): freeing its
// JitRunners calls free(), which may itself be probed, and that hit must
// not recreate the list: it is counted as missed.
[[gnu::tls_model("initial-exec")]] thread_local bool t_runners_gone = false;

// Every thread's list, and the pthread key whose destructor frees a list
// when its thread exits. A key, not a thread_local object: glibc keeps a
// library mapped while a live thread has a thread_local destructor of it
// pending, so an injected agent could not be unloaded after a thread that
// is still alive ran a probe; a key is deleted at unload
// (release_thread_lists) and the lists of live threads are freed then.
// Process-wide by nature (per-thread lists of a process-wide TLS slot).
struct ThreadLists {
  std::mutex mu;
  std::vector<ThreadRunners*> all;
  pthread_key_t key{};
  bool has_key = false;
};
// Made on first use (the agent's constructor may run probes before this
// file's dynamic initializers), freed by release_thread_lists.
ThreadLists*& thread_lists() {
  static ThreadLists* lists = new ThreadLists;
  return lists;
}

void drop_list(ThreadRunners* list) {
  {
    ThreadLists& lists = *thread_lists();
    std::lock_guard lock(lists.mu);
    std::erase(lists.all, list);
  }
  delete list;
}

void on_thread_exit(void* list) {
  t_runners_gone = true;
  t_runners = nullptr;
  for (CacheSlot& c : t_cache) c = {};
  drop_list(static_cast<ThreadRunners*>(list));
}

ThreadRunners& thread_runners() {
  if (t_runners) [[likely]]
    return *t_runners;
  ThreadLists* lists = thread_lists();
  assert(lists && "a probe ran after release_thread_lists");
  auto* list = new ThreadRunners;
  std::lock_guard lock(lists->mu);
  if (!lists->has_key) lists->has_key = pthread_key_create(&lists->key, &on_thread_exit) == 0;
  // Without a key (all taken) the list lives until the unload.
  if (lists->has_key) (void)pthread_setspecific(lists->key, list);
  lists->all.push_back(list);
  t_runners = list;
  return *list;
}

// Serial numbers of runners, unique in the process (the only process-wide
// state here: what makes per-thread entries of dead runners unreachable).
std::atomic<uint64_t> g_next_serial{1};

}  // namespace

Result<std::unique_ptr<ProbeRunner>> ProbeRunner::create(const Prog& prog, const ProbeAttachInfo& info,
                                                         Engine engine) {
  if (prog.type() != ProgType::Kprobe)
    return fail("program '", prog.name(), "' (section '", prog.section(), "') is a ",
                prog_type_name(prog.type()),
                " program; probes run kprobe-type programs (uprobe, uretprobe, usdt)");
  auto runner = std::unique_ptr<ProbeRunner>(new ProbeRunner(prog, info, engine));
  RunPlan plan = prog.plan(runner->input_, runner->opts_, engine);
  if (plan.checked || plan.engine != engine)
    return fail("program '", prog.name(), "' cannot run as a probe in the ", engine_name(engine), ": ",
                plan.why);
  runner->jit_ = plan.engine == Engine::Jit ? prog.jit() : nullptr;
  return runner;
}

ProbeRunner::ProbeRunner(const Prog& prog, const ProbeAttachInfo& info, Engine engine)
    : prog_(&prog),
      jit_(nullptr),
      interp_(&prog.interpreter()),
      info_(info),
      engine_(engine),
      serial_(g_next_serial.fetch_add(1, std::memory_order_relaxed)) {
  opts_.checked = false;
  opts_.helper_env = const_cast<Prog*>(&prog);  // helpers take a mutable env; Prog's are const inside
  opts_.attach_cookie = info.cookie;
  opts_.func_ip = info.func_ip;
  input_.ctx_size = sizeof(PtRegs);
  input_.ctx_writable = false;
}

// The hit's fast path, inlined into run(): the thread's cache slot.
inline JitRunner& ProbeRunner::thread_jit_runner() {
  const CacheSlot& slot = t_cache[serial_ % kCacheSlots];
  if (slot.serial == serial_) [[likely]]
    return *slot.runner;
  return thread_jit_runner_slow();
}

JitRunner& ProbeRunner::thread_jit_runner_slow() {
  CacheSlot& slot = t_cache[serial_ % kCacheSlots];
  ThreadRunners& t = thread_runners();
  std::erase_if(t.entries,
                [](const ThreadRunners::Entry& e) { return !e.alive->load(std::memory_order_acquire); });
  for (CacheSlot& c : t_cache)  // slots may name runners just dropped
    if (c.serial && std::none_of(t.entries.begin(), t.entries.end(),
                                 [&](const ThreadRunners::Entry& e) { return e.serial == c.serial; }))
      c = {};
  JitRunner* found = nullptr;
  for (auto& e : t.entries)
    if (e.serial == serial_) found = e.runner.get();
  if (!found) {
    t.entries.push_back({serial_, alive_, std::make_unique<JitRunner>(*jit_, opts_)});
    found = t.entries.back().runner.get();
  }
  slot = {serial_, found};
  return *found;
}

void ProbeRunner::run(PtRegs* regs) noexcept {
  if (!enabled_.load(std::memory_order_relaxed)) [[unlikely]]
    return;
  if (t_in_probe || (jit_ && t_runners_gone)) [[unlikely]] {
    missed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t_in_probe = true;
  hits_.store(hits_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  t_input.ctx = regs;
  try {
    Result<uint64_t> r = jit_ ? thread_jit_runner().run(t_input) : interp_->run(t_input, opts_);
    if (!r) [[unlikely]]
      record_error(r.error());
  } catch (...) {  // out of memory building an error message: nothing may reach the traced code
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  t_in_probe = false;
}

void ProbeRunner::release_thread_lists() {
  ThreadLists* lists = std::exchange(thread_lists(), nullptr);
  if (!lists) return;
  if (lists->has_key) (void)pthread_key_delete(lists->key);
  for (ThreadRunners* list : lists->all) delete list;
  delete lists;
  t_runners = nullptr;
  for (CacheSlot& c : t_cache) c = {};
}

ProbeRunner::~ProbeRunner() { alive_->store(false, std::memory_order_release); }

void ProbeRunner::record_error(const Error& e) noexcept {
  errors_.fetch_add(1, std::memory_order_relaxed);
  try {
    std::lock_guard lock(error_mu_);
    if (first_error_.empty()) first_error_ = e.message;
  } catch (...) {  // the count stays; the message is lost
  }
}

std::string ProbeRunner::first_error() const {
  std::lock_guard lock(error_mu_);
  return first_error_;
}

}  // namespace ember::attach
