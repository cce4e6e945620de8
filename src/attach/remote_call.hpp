// Calling a function inside another (stopped) process, on one of its
// threads, and leaving that thread exactly as it was.
//
// The call: the thread's registers, extended (x87/SSE/AVX) state, signal
// mask and pending siginfo are saved; string arguments are copied onto its
// stack below the 128-byte red zone; rsp is set so that the callee sees a
// 16-byte aligned frame with a return address of 0; rip = the function,
// rdi..r9 = the arguments, orig_rax = -1. The thread runs until it returns
// to 0: the fault at address 0 is seen as a SIGSEGV signal-delivery-stop
// with rip == 0 and rsp just above the return address, which the program's
// own code cannot produce by accident. The signal is never delivered.
//
// System calls: a thread stopped inside a blocking call (read, nanosleep...)
// stops on the way out with rax = -ERESTARTSYS (or -ERESTARTNOHAND,
// -ERESTART_RESTARTBLOCK) and orig_rax = the call number; the kernel decides
// whether to restart only when the thread leaves that stop
// (arch_do_signal_or_restart: orig_rax >= 0 and rax one of those codes ->
// rip -= 2, rax = orig_rax). Resuming it with a new rip would have the kernel
// move rip back by 2 into the callee, so, as gdb does for its inferior calls,
// orig_rax is set to -1 for the call. Afterwards the saved registers
// (orig_rax and rax included) are written back at the final stop, which is
// again a stop inside the kernel's signal path: when the thread is detached
// the kernel sees the interrupted call exactly as before and restarts it (a
// read() keeps waiting, nanosleep() sleeps the rest of its time through
// restart_syscall); the program never sees EINTR.
//
// Other threads stay stopped during the call. One of them may hold a lock
// the callee needs (malloc's, the dynamic loader's): after
// `others_stopped_for` they are let run until the call returns, then stopped
// again (threads they created included). Signals that reach the calling
// thread during the call are delivered to it then (its handlers run on top
// of the call, as they could at any instruction), except stop signals, which
// are sent again after detach. SIGSEGV is unblocked in the thread during the
// call (the kernel would otherwise reset its handler to SIG_DFL when forcing
// the fault); a target that ignores SIGSEGV is refused for the same reason.
//
// A dying target. While the call runs, every other traced thread that ends
// is reaped at once: when the callee calls exit_group the kernel kills the
// other threads, which stay zombies until their tracer (we) reaps them, and
// a thread group leader's own end is reported only after theirs. The
// calling thread's end is the whole process's when a signal killed it or
// every other thread ends within a few seconds (then everything left of it
// is reaped, so that its parent sees it end), else that thread alone
// exited. The call's timeout is the last resort.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "attach/ptrace_threads.hpp"
#include "ember/result.hpp"

namespace ember::attach {

// An integer or pointer argument, or a string copied (NUL-terminated) onto
// the calling thread's stack and passed as its address.
using RemoteArg = std::variant<uint64_t, std::string>;

struct RemoteCallOptions {
  std::chrono::milliseconds others_stopped_for{1000};
  // The call gives up after this (the thread is stopped and restored; the
  // callee's half-done work, a lock it held, stays as it was).
  std::chrono::milliseconds timeout{60000};
};

// fn(args...) on thread `tid` of `proc` (SysV x86-64 ABI, at most 6 integer
// arguments); returns rax. Errors: unknown thread, the target died during
// the call (its exit status or signal), timeout, ptrace failures.
Result<uint64_t> remote_call(StoppedProcess& proc, pid_t tid, uintptr_t fn,
                             const std::vector<RemoteArg>& args, const RemoteCallOptions& opts = {});

// A NUL-terminated string at `addr` in the process, at most `max` bytes.
Result<std::string> read_remote_string(const StoppedProcess& proc, uintptr_t addr, size_t max = 4096);

}  // namespace ember::attach
