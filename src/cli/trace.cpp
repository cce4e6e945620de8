// `ember trace OBJ [-e PROBE ...] (-- COMMAND [ARGS] | -p PID)`: runs the
// probe programs of an object inside another process. Everything is
// checked first (the object loads and verifies, every probe program is
// bound, every binary and symbol exists) so that bad input leaves the
// target untouched; then the agent (libember_agent.so) is preloaded into a
// new COMMAND or injected into process PID, attaches the probes and
// publishes the maps, which this side opens and streams from.
//
// With -p the process is left as it was found: on Ctrl-C the agent detaches
// every hook, then this side unloads it (attach::unload_agent checks that no
// thread can still reach its code; if one can, e.g. a thread inside a
// uretprobe'd function that has not returned, the agent stays loaded, idle,
// and a warning says why). One session at a time per process: the agent of
// a second `ember trace -p` refuses to start while another has a session
// (two hook engines would patch the same code over each other) and is
// unloaded again. Ctrl-C during the injection takes effect at once: the
// injection stops before dlopen if it can, else the agent is told to detach
// as soon as it says hello and is unloaded.
//
// Processes: the target (its agent says "hello PID 0" first), children it
// forks with --follow-forks ("hello PID PARENT": their maps are the
// parent's), and, with --follow-forks in spawn mode, programs exec'd by any
// of them ("hello PID 0" again, the pid of a process seen before or a new
// one): the agent stayed in their environment and loads the object afresh,
// with maps of their own, which are read and printed per program.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "attach/agent_config.hpp"
#include "attach/agent_probes.hpp"
#include "attach/inject.hpp"
#include "cli/commands.hpp"
#include "cli/trace_output.hpp"
#include "cli/trace_session.hpp"
#include "runtime/registry.hpp"

extern char** environ;

namespace ember::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kAgentTimeoutMs = 30000;  // for the agent to report after the target started
constexpr int kDetachTimeoutMs = 5000;  // for agents to confirm a detach
constexpr int kCommandGraceMs = 2000;   // after Ctrl-C, for the command to end on its own SIGINT
constexpr int kLoopMs = 25;             // the session loop's wait: events print within this

std::atomic<bool> g_interrupted{false};  // set by SIGINT/SIGTERM: the only way a handler can talk
void on_signal(int) { g_interrupted = true; }

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: trace: %s\n", msg.c_str());
  return code;
}

// A process's command name (/proc/PID/comm), "?" if it is gone.
std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm.empty() ? "?" : comm;
}

// "N (COMM)" for messages about a traced process.
std::string process_name(pid_t pid) { return std::to_string(pid) + " (" + comm_of(pid) + ")"; }

// Whether a process whose agent's connection ended (it is close-on-exec)
// exec'd: it still has an address space. One that is exiting has none by
// then (the kernel releases the memory before it closes the files), nor
// has a zombie.
bool process_execd(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  return static_cast<bool>(std::getline(in, line)) && !line.empty();
}

struct TraceArgs {
  std::string object;
  std::vector<std::string> probes, hists, event_types;
  double interval = 0;
  bool follow_forks = false, json = false;
  pid_t pid = 0;
  std::vector<std::string> command;
};

Result<TraceArgs> parse_trace_args(const std::vector<std::string>& argv) {
  TraceArgs t;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argv.size()) return fail("option ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--") {
      t.command.assign(argv.begin() + static_cast<ptrdiff_t>(i) + 1, argv.end());
      if (t.command.empty()) return fail("no COMMAND after --");
      break;
    }
    if (a == "-e" || a == "--hist" || a == "--interval" || a == "-p" || a == "--event-type") {
      auto v = value();
      if (!v) return v.error();
      if (a == "-e") {
        t.probes.push_back(*v);
      } else if (a == "--hist") {
        t.hists.push_back(*v);
      } else if (a == "--event-type") {
        t.event_types.push_back(*v);
      } else if (a == "--interval") {
        char* end = nullptr;
        t.interval = std::strtod(v->c_str(), &end);
        if (!end || *end || !(t.interval > 0))
          return fail("--interval: '", *v, "' is not a number of seconds");
      } else {
        char* end = nullptr;
        long pid = std::strtol(v->c_str(), &end, 10);
        if (!end || *end || pid <= 0) return fail("-p: '", *v, "' is not a process id");
        t.pid = static_cast<pid_t>(pid);
      }
    } else if (a == "--follow-forks") {
      t.follow_forks = true;
    } else if (a == "-j" || a == "--json") {
      t.json = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return fail("unknown option '", a, "'");
    } else if (t.object.empty()) {
      t.object = a;
    } else {
      return fail("unexpected argument '", a, "' (the command goes after --)");
    }
  }
  if (t.object.empty()) return fail("expected an object file");
  if (t.command.empty() == (t.pid == 0)) return fail("give either -- COMMAND [ARGS] or -p PID");
  return t;
}

// The agent library: $EMBER_AGENT, else next to this executable.
Result<std::string> find_agent() {
  if (const char* e = getenv("EMBER_AGENT")) {
    if (access(e, R_OK) != 0) return fail("$EMBER_AGENT names ", e, ", which cannot be read");
    return std::string(e);
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  fs::path lib = self.parent_path() / "libember_agent.so";
  if (ec || access(lib.c_str(), R_OK) != 0)
    return fail("the agent library libember_agent.so is not next to ", self.string(), " (set $EMBER_AGENT)");
  return lib.string();
}

// COMMAND as execvp would find it.
Status check_command(const std::string& cmd) {
  if (cmd.find('/') != std::string::npos) {
    if (access(cmd.c_str(), X_OK) != 0) return fail("cannot run ", cmd, ": ", std::strerror(errno));
    return ok_status();
  }
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string f = (end == start ? "." : dirs.substr(start, end - start)) + "/" + cmd;
    if (access(f.c_str(), X_OK) == 0) return ok_status();
    start = end + 1;
  }
  return fail("no command '", cmd, "' in PATH");
}

// Everything that can be checked before the target is started or touched.
struct Checked {
  std::string object, agent;
  size_t probes = 0;
  EventTypes events;  // the records' types, from the object's BTF
};

// Which struct each ring buffer and perf event array's records are
// (--event-type, or found by name); notes on stderr say what was chosen.
Status check_event_types(Object& o, const TraceArgs& t, EventTypes* events) {
  std::vector<EventMapName> maps;
  for (const MapDef& d : o.map_defs()) {
    const Map* m = o.map(d.name);
    bool event = m && (m->spec().type == MapType::Ringbuf || m->spec().type == MapType::PerfEventArray);
    maps.push_back({d.name, event});
  }
  auto r = resolve_event_types(o.file().btf, maps, t.event_types, t.object);
  if (!r) return r.error();
  for (const auto& n : r->notes) std::fprintf(stderr, "ember: trace: %s\n", n.c_str());
  *events = std::move(*r);
  return ok_status();
}

Result<Checked> check_everything(const TraceArgs& t) {
  Checked c;
  std::error_code ec;
  fs::path obj = fs::absolute(t.object, ec);
  if (ec || !fs::exists(obj)) return fail(t.object, ": no such file");
  c.object = obj.string();
  Runtime rt(RuntimeOptions{.maps = {}, .publish = false, .trace_pipe_bytes = 0});
  auto o = Object::open_file(rt, c.object);
  if (!o) return o.error();
  if (auto st = (*o)->load(); !st) return fail(t.object, ": ", st.error().message);
  auto bound = attach::bind_probes(**o, t.probes, t.pid);
  if (!bound) return bound.error();
  c.probes = bound->size();
  for (const auto& h : t.hists)
    if (!(*o)->map(h)) return fail("--hist ", h, ": ", t.object, " has no map '", h, "'");
  if (t.pid && kill(t.pid, 0) != 0 && errno == ESRCH) return fail("no process ", t.pid);
  if (!t.command.empty())
    if (auto st = check_command(t.command[0]); !st) return st.error();
  auto agent = find_agent();
  if (!agent) return agent.error();
  c.agent = *agent;
  if (auto st = check_event_types(**o, t, &c.events); !st) return st.error();
  return c;
}

// Starts COMMAND with the agent preloaded; its config file says the rest.
Result<pid_t> spawn(const std::vector<std::string>& cmd, const std::string& agent,
                    const std::string& config) {
  std::string preload = agent;
  if (const char* old = getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("LD_PRELOAD=") &&
        !std::string_view(*e).starts_with(std::string(attach::kAgentConfigEnv) + "="))
      env_strings.push_back(*e);
  env_strings.push_back("LD_PRELOAD=" + preload);
  env_strings.push_back(std::string(attach::kAgentConfigEnv) + "=" + config);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = cmd;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return fail("fork: ", std::strerror(errno));
  if (pid == 0) {
    execvpe(argv[0], argv.data(), envp.data());
    std::fprintf(stderr, "ember: trace: cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  return pid;
}

// A copy of the agent under a name of its own when `pid` already maps one
// (a target traced before: dlopen would not run the constructor again).
Result<std::string> agent_for_inject(pid_t pid, const std::string& agent) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  bool loaded = false;
  while (std::getline(maps, line)) loaded |= line.find("libember_agent") != std::string::npos;
  if (!loaded) return agent;
  std::string copy = run_dir() + "/libember_agent-" + std::to_string(pid) + "-" +
                     std::to_string(Clock::now().time_since_epoch().count()) + ".so";
  std::error_code ec;
  fs::copy_file(agent, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return fail("cannot copy the agent to ", copy, ": ", ec.message());
  return copy;
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

class Tracer {
 public:
  Tracer(const TraceArgs& t, TraceServer server) : t_(t), server_(std::move(server)), out_(t.json) {}
  int run(const Checked& c);

 private:
  void on_line(AgentConn& a, const std::string& line);
  void on_ready(AgentConn& a);
  void on_exec_image(AgentConn& a);
  bool wait_for_first_agent(int timeout_ms);
  void stop_injection();
  void detach_all();
  void finish();
  void print_maps();
  bool target_alive();
  void unload_injected();

  const TraceArgs& t_;
  TraceServer server_;
  TraceOutput out_;
  pid_t child_ = 0;        // the spawned command
  int child_status_ = -1;  // its wait status once reaped
  pid_t target_ = 0;       // the first agent's process
  bool first_ready_ = false, failed_ = false, target_gone_ = false;
  std::thread injector_;
  std::string inject_error_;
  std::atomic<bool> inject_done_{false};
  std::atomic<bool> inject_cancel_{false};      // Ctrl-C: inject_library stops before dlopen
  std::string injected_;                        // -p: the agent file injected
  bool injected_copy_ = false;                  // a copy made for this session (to remove)
  std::vector<attach::CodeRange> code_before_;  // -p: the target's code before the agent
  // Programs exec'd with --follow-forks: each loaded the object afresh, so
  // each has maps of its own, read and printed after the target's.
  struct ExecImage {
    std::string who;  // process_name() when it said ready
    std::unique_ptr<TraceOutput> out;
  };
  std::vector<ExecImage> execs_;
  EventTypes events_;  // the object's record types, for exec'd programs' outputs
};

void Tracer::on_line(AgentConn& a, const std::string& line) {
  if (line.empty()) {  // the connection ended: the process exited, exec'd or detached
    if (a.pid == target_ && target_ && !a.detached && !child_) {
      target_gone_ = true;
      if (process_execd(a.pid))
        error("process " + process_name(a.pid) +
              " exec'd: the injected agent went with its old program; the new one runs untraced");
    }
    return;
  }
  auto l = attach::split_agent_line(line);
  if (l.word == "error" && !a.ready) {
    std::fprintf(stderr, "ember: trace: process %s: probe not attached: %s\n", process_name(a.pid).c_str(),
                 l.rest.c_str());
  } else if (l.word == "error") {
    std::fprintf(stderr, "ember: trace: pid %d: %s\n", a.pid, l.rest.c_str());
  } else if (l.word == "fatal") {
    std::fprintf(stderr, "ember: trace: process %s: %s\n", process_name(a.pid).c_str(), l.rest.c_str());
    if (!target_) failed_ = true;
  } else if (l.word == "stats") {
    // "PROG HITS ERRORS MISSED [FIRST_ERROR]"
    char prog[256] = {};
    unsigned long long hits = 0, errors = 0, missed = 0;
    int used = 0;
    if (std::sscanf(l.rest.c_str(), "%255s %llu %llu %llu %n", prog, &hits, &errors, &missed, &used) >= 4) {
      std::fprintf(stderr, "%s (pid %d): %llu hits, %llu errors, %llu missed%s%s\n", prog, a.pid, hits,
                   errors, missed, errors ? ": " : "", errors ? l.rest.c_str() + used : "");
    }
  } else if (l.word == "ready") {
    on_ready(a);
  }
}

// An agent attached what it could. The first is the target's: the session
// fails if nothing attached there (unless --follow-forks, where the
// programs it runs may be what is traced). Later ones are children that
// follow (the target's maps) or exec'd programs (maps of their own).
void Tracer::on_ready(AgentConn& a) {
  if (g_interrupted || inject_cancel_) {  // Ctrl-C came first: nothing is to run
    a.detach_sent = TraceServer::send(a, "detach");
    return;
  }
  if (!target_) {
    if (a.attached == 0 && !t_.follow_forks) {
      error("no probe could be attached to process " + process_name(a.pid));
      failed_ = true;
      a.detach_sent = TraceServer::send(a, "detach");
      return;
    }
    target_ = a.pid;
    if (auto st = out_.open_maps(a.pid); !st)
      std::fprintf(stderr, "ember: trace: %s\n", st.error().message.c_str());
    first_ready_ = true;
    std::fprintf(stderr, "ember: trace: %zu probes attached to pid %d\n", a.attached, a.pid);
  } else if (a.parent) {
    std::fprintf(stderr, "ember: trace: %zu probes attached to pid %d (forked from %d)\n", a.attached, a.pid,
                 a.parent);
  } else {
    on_exec_image(a);
  }
  TraceServer::send(a, "go");
}

// A program exec'd in the target or a followed child (same pid, its old
// connection closed at the exec) or in a process started without fork
// handlers (vfork, posix_spawn: a new pid). Its maps are opened before it
// goes on, so that they outlive it.
void Tracer::on_exec_image(AgentConn& a) {
  ExecImage image{process_name(a.pid), std::make_unique<TraceOutput>(t_.json)};
  image.out->set_event_types(events_);  // the same object: the same record types
  if (auto st = image.out->open_maps(a.pid); !st)
    std::fprintf(stderr, "ember: trace: %s\n", st.error().message.c_str());
  std::fprintf(stderr, "ember: trace: %zu probes attached to pid %d (%s, exec'd)\n", a.attached, a.pid,
               comm_of(a.pid).c_str());
  execs_.push_back(std::move(image));
}

bool Tracer::target_alive() {
  if (child_ && child_status_ < 0) {
    int st;
    if (waitpid(child_, &st, WNOHANG) == child_) child_status_ = st;
  }
  if (child_) return child_status_ < 0;
  return !target_gone_;
}

// Ctrl-C while injecting (-p): inject_library stops before its dlopen if it
// has not started it; if it has, the agent's constructor is told to detach
// as soon as it connects (it then attaches nothing, or detaches at once),
// so that dlopen returns within moments and the agent can be unloaded.
void Tracer::stop_injection() {
  inject_cancel_ = true;
  auto cb = [this](AgentConn& a, const std::string& l) { on_line(a, l); };
  while (!inject_done_) {
    for (auto& a : server_.agents())
      if (!a.detach_sent) a.detach_sent = TraceServer::send(a, "detach");
    server_.poll(20, cb);
  }
}

bool Tracer::wait_for_first_agent(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto cb = [this](AgentConn& a, const std::string& l) { on_line(a, l); };
  while (!first_ready_ && !failed_ && !g_interrupted) {
    server_.poll(100, cb);
    if (first_ready_ || failed_) break;
    if (child_ && !target_alive()) return false;
    if (!child_ && inject_done_ && !inject_error_.empty()) return false;
    if (Clock::now() > deadline) return false;
  }
  return first_ready_;
}

void Tracer::detach_all() {
  auto cb = [this](AgentConn& a, const std::string& l) { on_line(a, l); };
  for (auto& a : server_.agents()) TraceServer::send(a, "detach");
  auto deadline = Clock::now() + std::chrono::milliseconds(kDetachTimeoutMs);
  while (Clock::now() < deadline) {
    bool all = true;
    for (auto& a : server_.agents()) all &= a.detached;
    if (all) break;
    server_.poll(100, cb);
  }
}

// -p: takes the agent out of the target again once it has detached (or
// refused to start); the target is left running either way.
void Tracer::unload_injected() {
  if (injector_.joinable()) injector_.join();
  if (injected_.empty() || !inject_error_.empty() || target_gone_ || kill(t_.pid, 0) != 0) return;
  if (auto st = attach::unload_agent(t_.pid, injected_, code_before_); !st)
    std::fprintf(stderr, "ember: trace: warning: %s\n", st.error().message.c_str());
  if (injected_copy_) unlink(injected_.c_str());  // a mapping that stays keeps its file's data
  injected_.clear();
}

// The target's maps, then those of each program exec'd (headed by which).
void Tracer::print_maps() {
  out_.print_maps(stdout);
  for (auto& image : execs_) {
    std::printf("\n# process %s, exec'd: its own maps\n", image.who.c_str());
    image.out->print_maps(stdout);
  }
}

// Last events, the maps (--interval), then the histograms asked for.
void Tracer::finish() {
  out_.poll(0);
  for (auto& image : execs_) image.out->poll(0);
  if (t_.interval > 0) print_maps();  // where the maps ended, as bpftrace prints its maps at exit
  for (const auto& h : t_.hists) {
    auto text = out_.hist(h);
    if (!text)
      std::fprintf(stderr, "ember: trace: --hist %s: %s\n", h.c_str(), text.error().message.c_str());
    else
      std::printf("\n%s", text->c_str());
    for (auto& image : execs_)
      if (auto more = image.out->hist(h))
        std::printf("\n# process %s, exec'd\n%s", image.who.c_str(), more->c_str());
  }
  std::fflush(stdout);
}

int Tracer::run(const Checked& c) {
  out_.set_event_types(c.events);
  events_ = c.events;
  attach::AgentConfig cfg{.object_path = c.object,
                          .probes = t_.probes,
                          .follow_forks = t_.follow_forks,
                          .socket_path = server_.path()};
  std::string config_path = t_.pid ? attach::inject_config_path(t_.pid)
                                   : run_dir() + "/trace-" + std::to_string(getpid()) + ".conf";
  if (auto st = cfg.write_file(config_path); !st) return error(st.error().message);
  struct RemoveConfig {
    std::string path;
    ~RemoveConfig() { unlink(path.c_str()); }
  } remove_config{config_path};

  if (t_.pid) {
    auto agent = agent_for_inject(t_.pid, c.agent);
    if (!agent) return error(agent.error().message);
    injected_ = *agent;
    injected_copy_ = *agent != c.agent;
    if (auto code = attach::code_ranges(t_.pid)) code_before_ = std::move(*code);  // none: no unload
    injector_ = std::thread([this, so = *agent] {
      auto st = attach::inject_library(t_.pid, so, &inject_cancel_);
      if (!st) inject_error_ = st.error().message;
      inject_done_ = true;
    });
  } else {
    auto pid = spawn(t_.command, c.agent, config_path);
    if (!pid) return error(pid.error().message);
    child_ = *pid;
  }
  bool ready = wait_for_first_agent(kAgentTimeoutMs);
  if (t_.pid && !ready && g_interrupted) {
    stop_injection();
    error("interrupted while injecting into process " + std::to_string(t_.pid));
    unload_injected();  // warns if the agent has to stay
    return 130;
  }
  if (t_.pid && !ready) {
    if (injector_.joinable()) injector_.join();
    std::string why =
        inject_error_.empty() ? "the agent did not report from pid " + std::to_string(t_.pid) : inject_error_;
    if (!failed_ && !g_interrupted) detach_all();  // one that reports later must not stay attached
    unload_injected();
    if (failed_ && inject_error_.empty()) return 1;  // the agent or on_ready said why
    return error(why);
  }
  if (!ready && child_) {
    // The command runs without probes (a static executable ignores
    // LD_PRELOAD; the agent said why if it could): it is let finish.
    if (!failed_ && !g_interrupted)
      error("the agent did not start in " + t_.command[0] + " (a statically linked executable?)");
    int st = 0;
    if (child_status_ < 0) waitpid(child_, &st, 0);
    return 1;
  }

  auto cb = [this](AgentConn& a, const std::string& l) { on_line(a, l); };
  auto next_dump =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t_.interval));
  while (!g_interrupted && target_alive()) {
    // Agents first, waking as soon as one says something: a program
    // exec'd with --follow-forks waits for its "go" before it runs.
    server_.poll(kLoopMs, cb);
    for (auto& image : execs_) image.out->poll(0);
    out_.poll(0);
    if (t_.interval > 0 && Clock::now() >= next_dump) {
      print_maps();
      next_dump += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t_.interval));
    }
  }
  if (g_interrupted) detach_all();
  server_.poll(0, cb);  // stats the agents sent
  if (injector_.joinable()) injector_.join();
  if (!inject_error_.empty()) error(inject_error_);
  if (t_.pid) unload_injected();
  finish();
  if (!child_) return 0;
  if (g_interrupted && child_status_ < 0) {
    // The command got the terminal's SIGINT too; most end on it.
    auto deadline = Clock::now() + std::chrono::milliseconds(kCommandGraceMs);
    while (child_status_ < 0 && Clock::now() < deadline) {
      target_alive();
      ::poll(nullptr, 0, 20);
    }
    if (child_status_ < 0) {
      std::fprintf(stderr, "ember: trace: %s (pid %d) keeps running, without probes\n", t_.command[0].c_str(),
                   child_);
      return 130;
    }
  }
  return exit_status(child_status_);
}

}  // namespace

int cmd_trace(const std::vector<std::string>& argv) {
  for (const auto& a : argv) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") return std::fputs(command_usage("trace"), stdout), 0;
  }
  auto t = parse_trace_args(argv);
  if (!t) return error(t.error().message + "\n" + command_usage("trace"), 2);
  auto checked = check_everything(*t);
  if (!checked) return error(checked.error().message);
  if (auto st = ensure_pin_dir(); !st) return error(st.error().message);
  auto server = TraceServer::listen_at(run_dir() + "/trace-" + std::to_string(getpid()) + ".sock");
  if (!server) return error(server.error().message);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  Tracer tracer(*t, std::move(*server));
  return tracer.run(*checked);
}

}  // namespace ember::cli
