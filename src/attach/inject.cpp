#include "attach/inject.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

}  // namespace

Status inject_library(pid_t pid, const std::string& so_path) {
  if (auto st = check_library(so_path); !st) return st.error();
  auto s = open_session(pid);
  if (!s) return fail("injecting ", so_path, ": ", s.error().message);
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
