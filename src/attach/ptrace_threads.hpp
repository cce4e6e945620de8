// Every thread of another process held still under ptrace, for as long as a
// StoppedProcess lives: what a controller needs to call a function in the
// target (remote_call.hpp, inject.hpp) or to patch its code while no thread
// can run a half-written instruction (the hook engine in a controller).
//
// Stopping: PTRACE_SEIZE + PTRACE_INTERRUPT on each thread in
// /proc/PID/task, then /proc/PID/task is read again until no new thread
// appears (a thread may clone between the listing and its stop; once every
// listed thread is stopped none can clone any more). No ptrace options are
// set: PTRACE_O_EXITKILL is deliberately absent, so that a controller that
// dies leaves the target running. Destruction (or detach()) resumes every
// thread with the signal it was about to receive when it stopped.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "attach/pt_regs.hpp"
#include "ember/result.hpp"

namespace ember::attach {

struct StoppedThread {
  pid_t tid = 0;
  // The registers at the stop: all of them (fs_base, gs_base and the segment
  // selectors follow the PtRegs prefix), so that they can be restored exactly.
  user_regs_struct regs{};
  // A signal the thread was about to take when it stopped (a
  // signal-delivery-stop), 0 if none (PTRACE_EVENT_STOP). Delivered on detach.
  int pending_signal = 0;
  // Stopped on the way out of a system call (orig_rax >= 0). If rax is
  // -ERESTARTSYS and kin, the kernel restarts the call when the thread
  // resumes with these registers (see remote_call.hpp).
  bool in_syscall() const { return static_cast<int64_t>(regs.orig_rax) >= 0; }
  PtRegs pt_regs() const;
};

class StoppedProcess {
 public:
  // Stops every thread of process `pid`. Errors: no such process, ptrace not
  // permitted (says why when it can tell: not root, Yama ptrace_scope,
  // another tracer), the process itself, a thread that does not stop within
  // `stop_timeout` (uninterruptible sleep).
  static Result<StoppedProcess> stop(pid_t pid,
                                     std::chrono::milliseconds stop_timeout = std::chrono::seconds(10));

  StoppedProcess(StoppedProcess&& other) noexcept;
  StoppedProcess& operator=(StoppedProcess&& other) noexcept;
  StoppedProcess(const StoppedProcess&) = delete;
  StoppedProcess& operator=(const StoppedProcess&) = delete;
  ~StoppedProcess();  // detach(), errors ignored

  pid_t pid() const { return pid_; }
  // Stopped threads, main thread first when it is alive. regs are those of
  // the stop, not later changes made with set_regs.
  const std::vector<StoppedThread>& threads() const { return threads_; }
  const StoppedThread* find(pid_t tid) const;

  // Registers of a stopped thread now (PTRACE_GETREGS / PTRACE_SETREGS).
  Result<user_regs_struct> get_regs(pid_t tid) const;
  Status set_regs(pid_t tid, const user_regs_struct& regs);

  // Memory of the process through /proc/PID/mem: writes reach read-only
  // text as ptrace's POKETEXT does (the kernel copies the page), without
  // ever making it writable in the target.
  Status read_memory(uintptr_t addr, std::span<uint8_t> out) const;
  Status write_memory(uintptr_t addr, std::span<const uint8_t> bytes);

  // For remote calls. resume_others lets every thread but `tid` run (each
  // takes its pending signal); restop stops them again, and any thread they
  // created meanwhile. poll_others services their stops while they run:
  // signals pass through, stop signals are deferred (see defer_signal),
  // exited threads are dropped.
  Status resume_others(pid_t tid);
  Status restop();
  void poll_others();
  bool others_running() const { return others_running_; }
  // A stop signal (SIGSTOP, SIGTSTP...) seen during a remote call is not
  // delivered then (the group stop would freeze the call); it is sent again
  // to the thread after detach.
  void defer_signal(pid_t tid, int sig) { deferred_.push_back({tid, sig}); }
  // Reaps, without blocking, every traced thread but `except` that has
  // ended (stopped or running): a thread killed by another's exit_group is
  // a zombie that only its tracer can reap, and a thread group leader's own
  // exit is reported only once every other thread is reaped.
  void reap_exited(pid_t except);
  // Waits until every traced thread but `except` has ended and been reaped,
  // or `deadline`; true if they all did (the process is dying: after one
  // thread's exit_group, the kernel kills the others at once).
  bool others_exited(pid_t except, std::chrono::steady_clock::time_point deadline);
  // The process died: nothing is left to detach from. Every thread it had
  // that we traced is reaped (waiting up to a few seconds for the last ones
  // to finish dying), the leader last, so that the process's parent can
  // collect it and no zombie stays attached to us.
  void mark_dead();
  // A thread reported as exited (already reaped by that wait).
  void forget_thread(pid_t tid);

  // Resumes every thread (PTRACE_DETACH with its pending signal), then sends
  // the deferred signals. Idempotent.
  Status detach();

 private:
  StoppedProcess() = default;
  Status stop_new_threads(std::chrono::milliseconds timeout);

  pid_t pid_ = 0;
  int mem_fd_ = -1;
  std::vector<StoppedThread> threads_;
  std::vector<pid_t> running_;  // seized but resumed by resume_others
  std::vector<pid_t> seized_;   // every thread traced and not yet detached or reaped
  std::vector<std::pair<pid_t, int>> deferred_;
  bool others_running_ = false;
};

// Waits for a ptrace stop or the end of one traced thread, polling until
// `deadline`. Exactly one field describes what happened.
struct ThreadEvent {
  bool timed_out = false;
  bool exited = false;  // exited or killed; status in exit_status / term_signal
  int exit_status = 0;
  int term_signal = 0;
  int stop_signal = 0;      // WSTOPSIG
  bool event_stop = false;  // PTRACE_EVENT_STOP (interrupt or group stop)
};
Result<ThreadEvent> wait_thread(pid_t tid, std::chrono::steady_clock::time_point deadline);

// The state letter of a thread ('R', 'S', 'Z'...) from /proc, '?' if unreadable.
char thread_state(pid_t pid, pid_t tid);

}  // namespace ember::attach
