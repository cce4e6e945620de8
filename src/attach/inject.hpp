// Loading a shared library into a running process (`ember trace -p PID`
// puts Ember's agent there this way) and unloading it again.
//
// Both stop every thread of the process (StoppedProcess), call the dynamic
// loader in one of them (remote_call: a thread not inside a system call and
// without a pending signal when there is one, the main thread first), and
// resume every thread with its registers, vector state and signal mask as
// they were; a thread interrupted in a blocking system call continues it
// (see remote_call.hpp). dlopen runs the library's constructors before it
// returns, so they have run when inject_library returns.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

// dlopen(so_path, RTLD_NOW) in process `pid`. so_path must be an absolute
// path to an existing file (the target resolves it in its own filesystem).
// Loading a library already loaded only raises its reference count (its
// constructors do not run again). Errors name the process and the library:
// no such process, ptrace not permitted (not root, Yama ptrace_scope,
// another tracer), not an x86-64 process, no dlopen in the target (no glibc),
// the library missing, dlopen failed (with dlerror's text), the target died
// during the injection, cancelled.
//
// `cancel` (Ctrl-C in `ember trace -p`): when it is set before the call to
// dlopen starts, the process is let go as it was and the error says
// "cancelled". Once dlopen runs it is let finish (stopping the dynamic
// loader half-way would leave its lock taken in the target): its caller then
// makes the library's constructor return early instead (ember trace tells
// its agent to detach) and unloads it.
Status inject_library(pid_t pid, const std::string& so_path, const std::atomic<bool>* cancel = nullptr);

// Undoes inject_library: dlopen(so_path, RTLD_NOW | RTLD_NOLOAD) finds the
// loaded library (error "not loaded" if it is not, so that a second unload
// is a clear error rather than a dlclose of someone else's reference), then
// dlclose twice: the reference just taken and the one inject_library took.
// The library's destructors run and it is unmapped unless the program holds
// references of its own (or the library is RTLD_NODELETE / has unique symbols).
Status unload_library(pid_t pid, const std::string& so_path);

// Executable ranges of process `pid` (its /proc/PID/maps), to be given to
// unload_agent: what was there before the agent came.
struct CodeRange {
  uintptr_t start = 0, end = 0;
  std::string path;  // the mapped file, "" for anonymous memory
  friend bool operator==(const CodeRange&, const CodeRange&) = default;
};
Result<std::vector<CodeRange>> code_ranges(pid_t pid);

// Undoes the injection of Ember's agent (`ember trace -p` when it detaches),
// once the agent has detached its hooks: the process as it was, without
// the library. Safe only when no thread can ever run the agent's code
// again, so with every thread stopped it checks that none
//  - runs code that appeared since `before` (the agent and the libraries
//    it brought, its trampolines, its JIT-compiled programs: executable
//    mappings of a file not mapped before, of the agent, or anonymous ones
//    not there before), or has a SIGTRAP or SIGRTMIN+3 pending (the agent's
//    handlers go);
// then has the agent write back every return address a uretprobe replaced
// (ember_agent_restore_returns), then checks that no thread has a word
// pointing into that code on its live stack (a probe's helper blocked in
// the C library, a SIGTRAP handler's frame); then asks the agent
// (ember_agent_prepare_unload, in the target) whether its session is over,
// which frees what it made and restores the signal dispositions; then
// dlclose. It retries for about `patience` while any of that says "not
// yet". Errors: it could not be done (the reason; the agent stays loaded,
// idle and harmless), or dlclose left it mapped (something else holds a
// reference to it).
Status unload_agent(pid_t pid, const std::string& so_path, const std::vector<CodeRange>& before,
                    std::chrono::milliseconds patience = std::chrono::seconds(3));

}  // namespace ember::attach
