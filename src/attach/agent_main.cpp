// libember_agent.so: Ember's agent inside a traced process. Its constructor
// runs when the library is preloaded (spawn mode: $EMBER_AGENT_CONFIG names
// the config) or injected with dlopen (inject mode: run_dir()/agent-PID.conf),
// connects to the controller (`ember trace`), starts the Agent, reports, and
// leaves one thread waiting for "detach" (or the controller's end). The
// target must compute exactly what it would without us: the agent removes
// itself from the environment its children inherit, installs no signal
// handler, keeps every signal off its own thread and marks its fds
// close-on-exec. The one exception is asked for: with --follow-forks the
// preloaded agent stays in the environment, so that the programs the
// target (and its children) exec load it again and are traced too.
//
// Unloading (`ember trace -p` detaches by dlclose'ing the agent it injected,
// see unload_agent in inject.hpp): ember_agent_prepare_unload, called by the
// controller in a thread of the stopped process once no thread runs or will
// return into the agent's code, frees what the agent made (the runtime and
// its maps, the probe runners, the hook engine) and gives the signals the
// engine handles (SIGTRAP, SIGRTMIN+3) their dispositions from before. A second agent loaded while one
// has a session (a second `ember trace -p`) refuses to start: two hook
// engines would patch the same functions over each other.
#include <dlfcn.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attach/agent.hpp"
#include "attach/agent_config.hpp"
#include "attach/hook_site.hpp"
#include "attach/probe_runner.hpp"
#include "runtime/registry.hpp"

namespace ember::attach {
namespace {

constexpr int kGoTimeoutMs = 10000;  // a controller that never says "go" is gone: the target runs on

// The agent of this process. Global because the process model forces it:
// one preloaded or injected library instance serves the whole process, and
// the fork handlers and the controller thread reach it with no argument.
struct AgentProcess {
  std::mutex mu;
  AgentConfig cfg;
  // Both live until the agent is unloaded (ember_agent_prepare_unload):
  // calls may be returning through the engine, and a thread may still be
  // leaving a runner of a retired (detached) agent.
  std::unique_ptr<HookEngine> engine;
  std::unique_ptr<Agent> agent;
  std::vector<std::unique_ptr<Agent>> retired;
  int sock = -1;
  // Every signal's disposition before the hook engine installed its
  // handlers (SIGTRAP for int3 sites, SIGRTMIN+3 to park threads).
  struct sigaction before[NSIG] = {};
};
AgentProcess* g_process = nullptr;
// Controller threads not yet finished (the unload waits for them), and
// whether a session is being set up right now (the constructor's). Atomic:
// read by ember_agent_* calls on other threads.
std::atomic<int> g_controller_threads{0};
std::atomic<bool> g_starting{false};

void log_error(const std::string& msg) {
  std::fprintf(stderr, "ember agent (pid %d): %s\n", getpid(), msg.c_str());
}

bool send_line(int fd, const std::string& line) {
  std::string s = one_line(line) + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left) {
    ssize_t n = send(fd, p, left, MSG_NOSIGNAL);  // a gone controller must not SIGPIPE the target
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n, left -= static_cast<size_t>(n);
  }
  return true;
}

// One line from the socket ("" at EOF, error or timeout).
std::string read_line(int fd, int timeout_ms) {
  std::string line;
  char c;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return "";
    ssize_t n = recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    if (c == '\n') return line.empty() ? " " : line;
    line += c;
  }
}

int connect_controller(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return close(fd), -1;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return close(fd), -1;
  return fd;
}

const char* method_name(HookMethod m) { return m == HookMethod::Inline ? "inline" : "int3"; }

// What attached; a forked child leaves out what did not (its parent said so).
void report_attached(int fd, const Agent& a, bool with_errors = true) {
  for (const auto& p : a.probes()) {
    char addr[32];
    std::snprintf(addr, sizeof addr, "0x%lx", static_cast<unsigned long>(p.addr));
    send_line(fd, "probe " + p.runner->prog().name() + " " + addr + " " + method_name(p.method));
  }
  if (with_errors)
    for (const auto& e : a.errors()) send_line(fd, "error " + e);
  send_line(fd, "ready " + std::to_string(a.probes().size()));
}

void report_stats(int fd, const Agent& a) {
  for (const auto& p : a.probes()) {
    const ProbeRunner& r = *p.runner;
    send_line(fd, "stats " + r.prog().name() + " " + std::to_string(r.hits()) + " " +
                      std::to_string(r.errors()) + " " + std::to_string(r.missed()) + " " + r.first_error());
  }
}

// Detaches, reports and retires the agent. Its objects stay allocated: a
// thread may still be leaving a runner that was just turned off.
void detach_and_report(int fd) {
  std::lock_guard lock(g_process->mu);
  Agent* a = g_process->agent.get();
  if (!a) return;
  a->disable();
  auto st = a->detach();
  if (!st) send_line(fd, "error detach: " + st.error().message);
  report_stats(fd, *a);
  unpublish();
  g_process->retired.push_back(std::move(g_process->agent));
  send_line(fd, "detached");
}

// The controller thread: waits for "detach" or the controller's end.
void* controller_thread(void* arg) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  while (true) {
    std::string line = read_line(fd, -1);
    if (line.empty() || split_agent_line(line).word == "detach") break;
  }
  detach_and_report(fd);
  {
    std::lock_guard lock(g_process->mu);
    if (g_process->sock == fd) g_process->sock = -1;
    close(fd);
  }
  g_controller_threads.fetch_sub(1, std::memory_order_release);
  return nullptr;
}

// A thread that never takes a signal meant for the target.
void start_controller_thread(int fd) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  g_controller_threads.fetch_add(1, std::memory_order_acquire);
  if (pthread_create(&t, nullptr, controller_thread, reinterpret_cast<void*>(static_cast<intptr_t>(fd))) ==
      0) {
    pthread_detach(t);
  } else {
    g_controller_threads.fetch_sub(1, std::memory_order_release);
    log_error("cannot start the controller thread: the probes stay attached until the process ends");
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// A forked child: without follow_forks its runners go off and its hooks
// come out of its copy of the text; with it, it reports to the controller
// as an agent of its own (its maps are the parent's shared segments).
void on_fork_child() {
  g_process->mu.unlock();  // held by on_fork_prepare in the parent's forking thread
  g_controller_threads.store(0, std::memory_order_relaxed);  // threads do not survive fork
  Agent* a = g_process->agent.get();
  if (g_process->sock >= 0) close(g_process->sock);  // the parent's connection
  g_process->sock = -1;
  if (!a) return;
  if (!g_process->cfg.follow_forks) {
    a->disable();
    (void)a->detach();
    g_process->retired.push_back(std::move(g_process->agent));
    return;
  }
  int fd = connect_controller(g_process->cfg.socket_path);
  if (fd < 0) {
    a->disable();
    return;
  }
  send_line(fd, "hello " + std::to_string(getpid()) + " " + std::to_string(getppid()));
  report_attached(fd, *a, false);
  g_process->sock = fd;
  start_controller_thread(fd);
}

void on_fork_prepare() { g_process->mu.lock(); }
void on_fork_parent() { g_process->mu.unlock(); }

// The start of this library's mapping (to tell its code from another copy's).
uintptr_t own_base() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_base), &info) == 0) return 0;
  return reinterpret_cast<uintptr_t>(info.dli_fbase);
}

// Another agent of this process with a session (attached, starting or
// detaching), by its file name; "" if none. Each `ember trace -p` of a
// process already holding an agent injects a copy of the library (dlopen
// would not run the constructor of the loaded one again), so other copies
// are found by name and asked through their exported function.
std::string other_active_agent() {
  struct Found {
    uintptr_t self;
    std::vector<std::string> names;
  } found{own_base(), {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* arg) {
        auto* f = static_cast<Found*>(arg);
        if (info->dlpi_name && std::strstr(info->dlpi_name, "libember_agent") && info->dlpi_addr != f->self)
          f->names.emplace_back(info->dlpi_name);
        return 0;
      },
      &found);
  for (const auto& name : found.names) {
    void* h = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (!h) continue;
    auto active = reinterpret_cast<int (*)()>(dlsym(h, "ember_agent_session_active"));
    bool busy = active && active() != 0;
    dlclose(h);
    if (busy) return name;
  }
  return "";
}

// Removes the agent from what children inherit: its LD_PRELOAD entry and
// $EMBER_AGENT_CONFIG (spawn mode; the constructor runs before any thread).
// Edits `environ` itself rather than calling unsetenv/setenv: a program
// may define its own (bash does, keeping its variables in its own table),
// and then those calls never reach the array its children inherit. The
// array is compacted in place (main's envp is the same array); a shortened
// LD_PRELOAD gets a new string that lives as long as the process.
void scrub_environment() {
  const std::string config_prefix = std::string(kAgentConfigEnv) + "=";
  size_t w = 0;
  for (size_t r = 0; environ[r]; ++r) {
    char* var = environ[r];
    if (std::strncmp(var, config_prefix.c_str(), config_prefix.size()) == 0) continue;
    if (std::strncmp(var, "LD_PRELOAD=", 11) == 0) {
      std::string kept, item, all = var + 11;
      for (size_t i = 0; i <= all.size(); ++i) {
        if (i < all.size() && all[i] != ':' && all[i] != ' ') {
          item += all[i];
          continue;
        }
        if (!item.empty() && item.find("libember_agent") == std::string::npos)
          kept += (kept.empty() ? "" : ":") + item;
        item.clear();
      }
      if (kept.empty()) continue;
      if (kept != all) var = strdup(("LD_PRELOAD=" + kept).c_str());
      if (!var) continue;
    }
    environ[w++] = var;
  }
  environ[w] = nullptr;
}

// True when the controller has already said "detach" (or gone) before the
// session started: Ctrl-C while `ember trace -p` was injecting us. Nothing
// is attached then, so the controller can unload us at once.
bool cancelled_before_start(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  std::string line = read_line(fd, 0);
  return line.empty() || split_agent_line(line).word == "detach";
}

void run_session(const AgentConfig& cfg) {
  int fd = connect_controller(cfg.socket_path);
  if (fd < 0)
    return log_error("cannot reach the controller at " + cfg.socket_path + ": " + std::strerror(errno));
  send_line(fd, "hello " + std::to_string(getpid()) + " 0");
  if (cancelled_before_start(fd)) {
    send_line(fd, "detached");
    return (void)close(fd);
  }
  if (std::string other = other_active_agent(); !other.empty()) {
    send_line(fd, "fatal process " + std::to_string(getpid()) +
                      " is already traced by another ember trace (its agent " + other +
                      " is attached); one session at a time: end that one first");
    return (void)close(fd);
  }
  g_process = new AgentProcess();  // see AgentProcess; emptied, not freed, by an unload
  g_process->cfg = cfg;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, nullptr, &g_process->before[sig]);
  auto engine = HookEngine::create();
  if (!engine) {
    send_line(fd, "fatal " + engine.error().message);
    return (void)close(fd);
  }
  g_process->engine = std::move(*engine);
  auto agent = Agent::start(cfg, *g_process->engine);
  if (!agent) {
    send_line(fd, "fatal " + agent.error().message);
    return (void)close(fd);
  }
  g_process->agent = std::move(*agent);
  g_process->sock = fd;
  pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
  report_attached(fd, *g_process->agent);
  // The controller opens the published maps before the target goes on, so
  // that they outlive a target that exits at once.
  std::string go = read_line(fd, kGoTimeoutMs);
  if (split_agent_line(go).word != "go") {
    detach_and_report(fd);
    g_process->sock = -1;
    return (void)close(fd);
  }
  start_controller_thread(fd);
}

// Spawn mode's config. The agent leaves the environment its children
// inherit, except with --follow-forks while the session is on: then the
// programs exec'd in the target and in its children load it again. A
// config that is gone means the session is over (this is a program exec'd
// after `ember trace` ended): it runs untraced, silently, and passes the
// agent on no further.
std::optional<AgentConfig> preloaded_config(const char* path) {
  auto cfg = AgentConfig::read_file(path);
  if (!cfg || !cfg->follow_forks) scrub_environment();
  if (cfg) return *cfg;
  if (access(path, F_OK) == 0 || errno != ENOENT) log_error(cfg.error().message);
  return std::nullopt;
}

// Runs from the library's constructor (agent_init, agent_start.cpp).
void ember_agent_init() {
  std::optional<AgentConfig> cfg;
  if (const char* p = getenv(kAgentConfigEnv)) {
    cfg = preloaded_config(p);
  } else {
    std::string path = inject_config_path(getpid());
    if (access(path.c_str(), R_OK) != 0) return;  // loaded for another reason: stay idle
    auto read = AgentConfig::read_file(path);
    if (!read) return log_error(read.error().message);
    cfg = *read;
  }
  if (!cfg) return;
  g_starting.store(true);
  run_session(*cfg);
  g_starting.store(false);
}

// Gives each signal whose handler is in this library (the hook engine's)
// its disposition from before the agent.
void restore_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction cur {};
    if (sigaction(sig, nullptr, &cur) != 0) continue;
    Dl_info info{};
    auto handler = (cur.sa_flags & SA_SIGINFO) ? reinterpret_cast<void*>(cur.sa_sigaction)
                                               : reinterpret_cast<void*>(cur.sa_handler);
    if (handler != reinterpret_cast<void*>(SIG_DFL) && handler != reinterpret_cast<void*>(SIG_IGN) &&
        dladdr(handler, &info) != 0 && reinterpret_cast<uintptr_t>(info.dli_fbase) == own_base())
      sigaction(sig, &g_process->before[sig], nullptr);
  }
}

// Whether this agent's session is over: none starting, no controller
// thread left, no agent attached. When it is and the agent ever had one,
// `lock` holds the process lock on return (the exported calls below then
// work on g_process under it); a lock held elsewhere means "not over".
bool session_over(std::unique_lock<std::mutex>& lock) {
  if (g_starting.load() || g_controller_threads.load(std::memory_order_acquire) > 0) return false;
  if (!g_process) return true;
  lock = std::unique_lock(g_process->mu, std::try_to_lock);
  return lock.owns_lock() && !g_process->agent;
}

}  // namespace

void agent_init() { ember_agent_init(); }

}  // namespace ember::attach

// For other copies of the agent (other_active_agent): 1 while this one has
// a session (starting, attached, or its controller thread still running).
extern "C" __attribute__((visibility("default"))) int ember_agent_session_active() {
  std::unique_lock<std::mutex> lock;
  return ember::attach::session_over(lock) ? 0 : 1;
}

// Called by `ember trace -p` (unload_agent) in one thread of the stopped
// process, once no thread runs the agent's code or trampolines: every
// return address a return probe replaced is written back (those calls
// return straight to their callers; their return probes are lost, as the
// session is over), so that the controller's scan of the stacks then finds
// no way back into the agent. Returns 0, or 1 while a session is on (then
// nothing is touched).
extern "C" __attribute__((visibility("default"))) int ember_agent_restore_returns() {
  using namespace ember::attach;
  std::unique_lock<std::mutex> lock;
  if (!session_over(lock)) return 1;
  if (g_process) detail::restore_replaced_returns();
  return 0;
}

// Called by `ember trace -p` (unload_agent) in one thread of the stopped
// process before it dlclose's the agent, once it has seen that no thread
// runs in, or has a frame returning into, the agent's code or trampolines.
// Returns 0 after freeing everything the agent made (the runtime and its
// maps, the probe runners and every thread's runner list, the hook engine's
// sites, trampolines and thread states) and restoring the signal
// dispositions, or why not: 1, a session is still on; 2, a thread still has
// a return address replaced by a return probe (it would come back through a
// trampoline into this library). Per-thread cleanup goes through pthread
// keys, deleted here: glibc would keep the library mapped for a thread_local
// destructor of a thread that is still alive.
extern "C" __attribute__((visibility("default"))) int ember_agent_prepare_unload() {
  using namespace ember::attach;
  std::unique_lock<std::mutex> lock;
  if (!session_over(lock)) return 1;
  if (!g_process) return 0;  // never had a session: nothing to undo
  if (detail::any_outstanding_returns() || !detail::remove_unwind_guards_if_idle()) return 2;
  g_process->retired.clear();  // runtimes (their maps and JIT code), runners
  g_process->engine.reset();
  // The handlers go first: the SIGTRAP one looks sites up in the table
  // released below.
  restore_signals();
  ProbeRunner::release_thread_lists();
  detail::release_process_state();
  return 0;
}
