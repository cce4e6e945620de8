#include "attach/inject.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "attach/elf_image.hpp"
#include "attach/ptrace_threads.hpp"
#include "attach/remote_call.hpp"
#include "attach/target_libc.hpp"

namespace ember::attach {
namespace {

// A thread in user code without a pending signal is the least disturbed by
// a call; any thread will do otherwise (remote_call handles the rest).
pid_t pick_thread(const StoppedProcess& proc) {
  for (const auto& t : proc.threads())
    if (!t.in_syscall() && t.pending_signal == 0) return t.tid;
  for (const auto& t : proc.threads())
    if (t.pending_signal == 0) return t.tid;
  return proc.threads().front().tid;
}

Status check_target(pid_t pid) {
  if (pid <= 0) return fail("process ", pid, ": not a valid pid");
  if (access(("/proc/" + std::to_string(pid)).c_str(), F_OK) != 0)
    return fail("process ", pid, ": no such process");
  return ok_status();
}

Status check_library(const std::string& so_path) {
  if (so_path.empty() || so_path[0] != '/')
    return fail("library '", so_path,
                "': not an absolute path (the target resolves paths from its own directory)");
  struct stat st;
  if (stat(so_path.c_str(), &st) != 0) return fail("library ", so_path, ": ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("library ", so_path, ": not a regular file");
  return ok_status();
}

// Everything both operations need, in the order that gives the clearest error.
struct Session {
  TargetLoaderApi api;
  StoppedProcess proc;
  pid_t tid;
};

Result<Session> open_session(pid_t pid) {
  if (auto st = check_target(pid); !st) return st.error();
  // Stop first: a permission problem is reported as such, not as an
  // unreadable /proc/PID/exe.
  auto proc = StoppedProcess::stop(pid);
  if (!proc) return proc.error();
  if (auto st = check_x86_64(pid); !st) return st.error();
  auto api = find_loader_api(pid);
  if (!api) return api.error();
  pid_t tid = pick_thread(*proc);
  return Session{std::move(*api), std::move(*proc), tid};
}

// dlerror() in the target, after a failed call.
std::string remote_dlerror(Session& s) {
  auto msg = remote_call(s.proc, s.tid, s.api.dlerror, {});
  if (!msg) return "(dlerror failed: " + msg.error().message + ")";
  if (*msg == 0) return "(no dlerror message)";
  auto text = read_remote_string(s.proc, *msg);
  return text ? *text : "(dlerror text unreadable: " + text.error().message + ")";
}

Status finish(Session& s, Status st) {
  Status detached = s.proc.detach();
  if (!st) return st;
  return detached;
}

// What unload_agent's thread scan counts as the agent's code: executable
// mappings that are not exactly as they were before the injection.
struct AgentCode {
  std::vector<CodeRange> ranges;  // sorted
  bool contains(uint64_t v) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), v,
                               [](uint64_t x, const CodeRange& r) { return x < r.start; });
    return it != ranges.begin() && v < std::prev(it)->end;
  }
};

constexpr size_t kStackScanBytes = 256 * 1024;

// The signals the hook engine handles: SIGTRAP (int3 sites) and SIGRTMIN+3
// (text_patch.cpp parks threads with it). Pending, they would reach a
// handler that is about to be unmapped.
uint64_t agent_signals() { return (uint64_t{1} << (SIGTRAP - 1)) | (uint64_t{1} << (SIGRTMIN + 3 - 1)); }

bool agent_signal_pending(pid_t pid, const StoppedThread& t) {
  if (t.pending_signal != 0 && ((uint64_t{1} << (t.pending_signal - 1)) & agent_signals())) return true;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(t.tid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0)
      if (std::stoull(line.substr(7), nullptr, 16) & agent_signals()) return true;
  return false;
}

// Why a thread is in the agent's code or about to enter it, "" if not.
std::string thread_in_agent(const StoppedProcess& proc, const StoppedThread& t, const AgentCode& code) {
  std::string who = "thread " + std::to_string(t.tid);
  if (code.contains(t.regs.rip))
    return who + " is running the agent's code (at " + hex_string(t.regs.rip) + ")";
  if (agent_signal_pending(proc.pid(), t)) return who + " has a signal for the agent's handlers pending";
  return "";
}

// Why a thread's stack could lead back into the agent's code, "" if not.
// Its live stack, from rsp up (to the end of its mapping, at most 256 KiB):
// any word pointing into the agent's code may be a return address (a
// helper of a probe program blocked in the C library, say).
std::string stack_into_agent(const StoppedProcess& proc, const StoppedThread& t, const AgentCode& code,
                             const std::vector<Mapping>& maps) {
  for (const auto& m : maps) {
    if (t.regs.rsp < m.start || t.regs.rsp >= m.end) continue;
    size_t n = std::min<uint64_t>(m.end - t.regs.rsp, kStackScanBytes) & ~size_t{7};
    std::vector<uint64_t> words(n / 8);
    if (!proc.read_memory(t.regs.rsp, {reinterpret_cast<uint8_t*>(words.data()), n})) break;
    for (size_t i = 0; i < words.size(); ++i)
      if (code.contains(words[i]))
        return "thread " + std::to_string(t.tid) +
               " has an address in the agent's code on its stack (at rsp+" + std::to_string(i * 8) +
               ": a probe's helper that has not returned?)";
    break;
  }
  return "";
}

// Code that came with the agent: the agent's own mappings, those of a file
// not mapped before (libraries it brought), and anonymous ones not there
// before (trampolines, JIT code). A file mapped before stays the program's
// even if its mapping changed shape.
bool is_new_code(const Mapping& m, const std::vector<CodeRange>& before, const std::string& so_path) {
  if (m.path == so_path) return true;
  if (!m.path.empty() && m.path[0] == '/')
    return std::none_of(before.begin(), before.end(), [&](const CodeRange& r) { return r.path == m.path; });
  return std::find(before.begin(), before.end(), CodeRange{m.start, m.end, m.path}) == before.end();
}

enum class UnloadStep { Done, Retry };

// One attempt with every thread stopped; `why` says what was in the way.
Result<UnloadStep> try_unload(pid_t pid, const std::string& so_path, const std::vector<CodeRange>& before,
                              std::string* why) {
  auto s = open_session(pid);
  if (!s) return s.error();
  auto maps = process_mappings(pid);
  if (!maps) return maps.error();
  AgentCode code;
  for (const auto& m : *maps)
    if (m.executable() && is_new_code(m, before, so_path)) code.ranges.push_back({m.start, m.end, m.path});
  for (const auto& t : s->proc.threads())
    if (std::string w = thread_in_agent(s->proc, t, code); !w.empty()) {
      *why = w;
      return UnloadStep::Retry;
    }
  // Return addresses replaced by return probes lead into trampolines: the
  // agent writes them back (every thread is stopped) before the scan.
  auto restore = remote_function(pid, so_path, "ember_agent_restore_returns");
  if (!restore) return finish(*s, restore.error()).error();
  auto restored = remote_call(s->proc, s->tid, *restore, {});
  if (!restored) return finish(*s, restored.error()).error();
  if (static_cast<int>(*restored) != 0) {
    *why = "its session is not over (another ember trace attached to it?)";
    return UnloadStep::Retry;
  }
  for (const auto& t : s->proc.threads())
    if (std::string w = stack_into_agent(s->proc, t, code, *maps); !w.empty()) {
      *why = w;
      return UnloadStep::Retry;
    }
  auto prepare = remote_function(pid, so_path, "ember_agent_prepare_unload");
  if (!prepare) return finish(*s, prepare.error()).error();
  auto rc = remote_call(s->proc, s->tid, *prepare, {});
  if (!rc) return finish(*s, rc.error()).error();
  if (static_cast<int>(*rc) != 0) {
    *why = static_cast<int>(*rc) == 1 ? "its session is not over (another ember trace attached to it?)"
                                      : "a thread is inside a function probed by a uretprobe that has not "
                                        "returned (its return address leads into the agent)";
    return UnloadStep::Retry;
  }
  auto handle = remote_call(s->proc, s->tid, s->api.dlopen, {so_path, uint64_t{RTLD_NOW | RTLD_NOLOAD}});
  if (!handle) return finish(*s, handle.error()).error();
  if (*handle == 0) return finish(*s, fail("process ", pid, ": ", so_path, " is not loaded")).error();
  for (int i = 0; i < 2; ++i) {
    auto closed = remote_call(s->proc, s->tid, s->api.dlclose, {*handle});
    if (!closed) return finish(*s, closed.error()).error();
    if (static_cast<int>(*closed) != 0)
      return finish(*s, fail("process ", pid, ": dlclose(", so_path, ") failed: ", remote_dlerror(*s)))
          .error();
  }
  if (auto st = finish(*s, ok_status()); !st) return st.error();
  return UnloadStep::Done;
}

}  // namespace

Result<std::vector<CodeRange>> code_ranges(pid_t pid) {
  auto maps = process_mappings(pid);
  if (!maps) return maps.error();
  std::vector<CodeRange> out;
  for (const auto& m : *maps)
    if (m.executable()) out.push_back({m.start, m.end, m.path});
  return out;
}

Status unload_agent(pid_t pid, const std::string& so_path, const std::vector<CodeRange>& before,
                    std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  std::string why;
  for (;;) {
    auto step = try_unload(pid, so_path, before, &why);
    if (!step) return fail("unloading the agent from process ", pid, ": ", step.error().message);
    if (*step == UnloadStep::Done) break;
    if (std::chrono::steady_clock::now() >= deadline)
      return fail("the agent stays loaded in process ", pid, " (detached, idle): ", why);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto maps = process_mappings(pid);
  if (!maps) return maps.error();
  for (const auto& m : *maps)
    if (m.path == so_path)
      return fail("process ", pid, ": ", so_path,
                  " stays mapped (detached, idle) after dlclose: something else holds a reference to it");
  return ok_status();
}

Status inject_library(pid_t pid, const std::string& so_path, const std::atomic<bool>* cancel) {
  auto cancelled = [&] { return cancel && cancel->load(); };
  if (auto st = check_library(so_path); !st) return st.error();
  if (cancelled()) return fail("injecting ", so_path, " into process ", pid, ": cancelled");
  auto s = open_session(pid);
  if (!s) return fail("injecting ", so_path, ": ", s.error().message);
  // The last moment the process can be let go untouched.
  if (cancelled()) return finish(*s, fail("injecting ", so_path, " into process ", pid, ": cancelled"));
  auto handle = remote_call(s->proc, s->tid, s->api.dlopen, {so_path, uint64_t{RTLD_NOW}});
  if (!handle) return finish(*s, fail("injecting ", so_path, ": ", handle.error().message));
  if (*handle == 0)
    return finish(*s, fail("process ", pid, ": dlopen(", so_path, ") failed: ", remote_dlerror(*s)));
  return finish(*s, ok_status());
}

Status unload_library(pid_t pid, const std::string& so_path) {
  if (so_path.empty() || so_path[0] != '/') return fail("library '", so_path, "': not an absolute path");
  auto s = open_session(pid);
  if (!s) return fail("unloading ", so_path, ": ", s.error().message);
  auto handle = remote_call(s->proc, s->tid, s->api.dlopen, {so_path, uint64_t{RTLD_NOW | RTLD_NOLOAD}});
  if (!handle) return finish(*s, fail("unloading ", so_path, ": ", handle.error().message));
  if (*handle == 0) {
    (void)remote_dlerror(*s);  // clear the target's error state
    return finish(*s, fail("process ", pid, ": ", so_path, " is not loaded"));
  }
  for (int i = 0; i < 2; ++i) {
    auto rc = remote_call(s->proc, s->tid, s->api.dlclose, {*handle});
    if (!rc) return finish(*s, fail("unloading ", so_path, ": ", rc.error().message));
    if (static_cast<int>(*rc) != 0)
      return finish(*s, fail("process ", pid, ": dlclose(", so_path, ") failed: ", remote_dlerror(*s)));
  }
  return finish(*s, ok_status());
}

}  // namespace ember::attach
