#include "attach/remote_call.hpp"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace ember::attach {
namespace {

constexpr uint64_t kRedZone = 128;
constexpr uint64_t kDirectionFlag = 1u << 10;
constexpr uint64_t kTrapFlag = 1u << 8;
constexpr uint64_t kSegvBit = uint64_t{1} << (SIGSEGV - 1);

bool is_stop_signal(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

// What the call may change in the thread beyond the general registers.
struct SavedState {
  user_regs_struct regs{};
  std::vector<uint8_t> xstate;  // NT_X86_XSTATE (or NT_PRFPREG's fxsave area)
  unsigned xstate_type = 0;
  uint64_t sigmask = 0;
  bool has_siginfo = false;
  siginfo_t siginfo{};
};

Result<SavedState> save_state(StoppedProcess& proc, const StoppedThread& t) {
  SavedState s;
  auto regs = proc.get_regs(t.tid);
  if (!regs) return regs.error();
  s.regs = *regs;
  // The whole XSAVE area (AVX upper halves, AVX-512, ...): the callee's
  // memcpy and strlen use vector registers the interrupted code may hold.
  for (unsigned type : {unsigned{NT_X86_XSTATE}, unsigned{NT_PRFPREG}}) {
    s.xstate.assign(1 << 16, 0);
    iovec iov{s.xstate.data(), s.xstate.size()};
    if (ptrace(PTRACE_GETREGSET, t.tid, reinterpret_cast<void*>(uintptr_t{type}), &iov) == 0) {
      s.xstate.resize(iov.iov_len);
      s.xstate_type = type;
      break;
    }
  }
  if (s.xstate_type == 0)
    return fail("process ", proc.pid(), ": cannot read the FPU/vector state of thread ", t.tid, ": ",
                std::strerror(errno));
  if (ptrace(PTRACE_GETSIGMASK, t.tid, reinterpret_cast<void*>(sizeof s.sigmask), &s.sigmask) != 0)
    return fail("process ", proc.pid(), ": PTRACE_GETSIGMASK of thread ", t.tid, ": ", std::strerror(errno));
  if (t.pending_signal != 0 && ptrace(PTRACE_GETSIGINFO, t.tid, nullptr, &s.siginfo) == 0)
    s.has_siginfo = true;
  return s;
}

Status restore_state(StoppedProcess& proc, pid_t tid, SavedState& s) {
  std::string errors;
  if (auto st = proc.set_regs(tid, s.regs); !st) errors += st.error().message + "; ";
  iovec iov{s.xstate.data(), s.xstate.size()};
  if (ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(uintptr_t{s.xstate_type}), &iov) != 0)
    errors += "PTRACE_SETREGSET: " + std::string(std::strerror(errno)) + "; ";
  if (ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof s.sigmask), &s.sigmask) != 0)
    errors += "PTRACE_SETSIGMASK: " + std::string(std::strerror(errno)) + "; ";
  // The final stop is a SIGSEGV signal-delivery-stop: give it back the
  // siginfo of the signal the thread had pending, which detach delivers.
  if (s.has_siginfo && ptrace(PTRACE_SETSIGINFO, tid, nullptr, &s.siginfo) != 0)
    errors += "PTRACE_SETSIGINFO: " + std::string(std::strerror(errno)) + "; ";
  if (!errors.empty()) return fail("process ", proc.pid(), ": restoring thread ", tid, ": ", errors);
  return ok_status();
}

bool sigsegv_ignored(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigIgn:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) & kSegvBit) != 0;
  return false;
}

// Builds the call frame on the thread's stack; returns the call's registers
// and sets *ret_slot to where the return address (0) is.
Result<user_regs_struct> build_frame(StoppedProcess& proc, const user_regs_struct& saved, uintptr_t fn,
                                     const std::vector<RemoteArg>& args, uint64_t* ret_slot) {
  if (args.size() > 6) return fail("remote call: ", args.size(), " arguments, at most 6 are supported");
  user_regs_struct r = saved;
  uint64_t sp = (saved.rsp - kRedZone) & ~uint64_t{15};
  uint64_t values[6] = {};
  for (size_t i = 0; i < args.size(); ++i) {
    if (const auto* v = std::get_if<uint64_t>(&args[i])) {
      values[i] = *v;
      continue;
    }
    const std::string& s = std::get<std::string>(args[i]);
    sp = (sp - s.size() - 1) & ~uint64_t{15};
    auto st = proc.write_memory(sp, {reinterpret_cast<const uint8_t*>(s.c_str()), s.size() + 1});
    if (!st) return fail("remote call: copying an argument onto the stack: ", st.error().message);
    values[i] = sp;
  }
  sp -= 8;  // at the callee's first instruction (rsp + 8) % 16 == 0, as after a call
  uint64_t zero = 0;
  if (auto st = proc.write_memory(sp, {reinterpret_cast<const uint8_t*>(&zero), 8}); !st)
    return fail("remote call: writing the return address: ", st.error().message);
  *ret_slot = sp;
  r.rsp = sp;
  r.rip = fn;
  r.rdi = values[0], r.rsi = values[1], r.rdx = values[2], r.rcx = values[3], r.r8 = values[4],
  r.r9 = values[5];
  r.rax = 0;                  // al: no vector arguments, were the callee variadic
  r.orig_rax = ~uint64_t{0};  // no system call to restart (see the header)
  r.eflags &= ~(kDirectionFlag | kTrapFlag);
  return r;
}

// How long the other threads of a process may take to die after one of
// them called exit_group (the kernel kills them at once; they need only to
// be scheduled). A thread that exits alone costs this wait.
constexpr auto kGroupExitWindow = std::chrono::seconds(5);

// Stops the thread after a timeout so that its registers can be restored.
void interrupt_thread(StoppedProcess& proc, pid_t tid) {
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return;
  for (;;) {
    auto ev = wait_thread(tid, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (!ev || ev->timed_out || ev->exited || ev->event_stop) return;
    if (ev->stop_signal != SIGSEGV) proc.defer_signal(tid, ev->stop_signal);
    return;
  }
}

struct CallOutcome {
  bool returned = false;
  std::string error;
};

std::string exit_text(const ThreadEvent& ev) {
  if (ev.term_signal != 0)
    return "killed by signal " + std::to_string(ev.term_signal) + " (" + strsignal(ev.term_signal) + ")";
  return "exited with status " + std::to_string(ev.exit_status);
}

// The calling thread ended (reaped by the wait that saw it). A signal that
// kills kills the whole process; an exit may be the thread's own or the
// whole group's: the group's if every other thread ends too.
CallOutcome thread_ended(StoppedProcess& proc, pid_t tid, const ThreadEvent& ev) {
  proc.forget_thread(tid);
  bool group =
      ev.term_signal != 0 || proc.others_exited(tid, std::chrono::steady_clock::now() + kGroupExitWindow);
  if (!group)
    return {false, "thread " + std::to_string(tid) + " exited during the call (" + exit_text(ev) + ")"};
  proc.mark_dead();
  return {false, "the target died during the call (" + exit_text(ev) + ")"};
}

// A thread group leader that exited is a zombie whose exit is reported only
// once the other threads are reaped: reported now if they end (its
// exit_group killed them), else it exited alone (pthread_exit in main).
bool leader_exited_alone(StoppedProcess& proc, pid_t tid) {
  if (tid != proc.pid() || thread_state(proc.pid(), tid) != 'Z') return false;
  return !proc.others_exited(tid, std::chrono::steady_clock::now() + kGroupExitWindow);
}

// Runs the thread until the call returns to address 0.
CallOutcome run_call(StoppedProcess& proc, pid_t tid, uint64_t ret_slot, const RemoteCallOptions& opts,
                     uint64_t* rax) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto deadline = start + opts.timeout;
  auto others_deadline = start + opts.others_stopped_for;
  long sig_in = 0;
  for (;;) {
    if (ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(sig_in)) != 0)
      return {false, "PTRACE_CONT of thread " + std::to_string(tid) + ": " + std::strerror(errno)};
    sig_in = 0;
    ThreadEvent ev;
    for (;;) {
      auto slice = std::chrono::milliseconds(proc.others_running() ? 5 : 50);
      auto until = std::min(deadline, clock::now() + slice);
      auto r = wait_thread(tid, until);
      if (!r) return {false, r.error().message};
      ev = *r;
      if (!ev.timed_out) break;
      // Other threads that died (an exit_group in the callee kills them)
      // are reaped as they go: the leader's end is not reported before
      // theirs, and only we, their tracer, can reap them.
      proc.reap_exited(tid);
      if (leader_exited_alone(proc, tid)) {
        proc.forget_thread(tid);
        return {false, "the main thread " + std::to_string(tid) +
                           " exited during the call while other threads live on"};
      }
      auto now = clock::now();
      if (now >= deadline) {
        interrupt_thread(proc, tid);
        return {false, "the call did not return within " + std::to_string(opts.timeout.count()) +
                           " ms; the thread was stopped and restored, what the callee had done (a lock it "
                           "took) stays"};
      }
      if (!proc.others_running() && now >= others_deadline) (void)proc.resume_others(tid);
    }
    if (ev.exited) return thread_ended(proc, tid, ev);
    if (ev.event_stop) continue;  // a pending PTRACE_INTERRUPT or a group stop: go on
    if (ev.stop_signal == SIGSEGV) {
      auto regs = proc.get_regs(tid);
      if (!regs) return {false, regs.error().message};
      if (regs->rip == 0 && regs->rsp == ret_slot + 8) {
        *rax = regs->rax;
        return {true, ""};
      }
    }
    if (is_stop_signal(ev.stop_signal)) {
      proc.defer_signal(tid, ev.stop_signal);
      continue;
    }
    sig_in = ev.stop_signal;  // the program's own signal: its handler runs as it would anywhere
  }
}

}  // namespace

Result<uint64_t> remote_call(StoppedProcess& proc, pid_t tid, uintptr_t fn,
                             const std::vector<RemoteArg>& args, const RemoteCallOptions& opts) {
  const StoppedThread* t = proc.find(tid);
  if (t == nullptr) return fail("process ", proc.pid(), ": thread ", tid, " is not a stopped thread of it");
  if (sigsegv_ignored(proc.pid()))
    return fail("process ", proc.pid(),
                ": it ignores SIGSEGV; a remote call returns through a fault at address 0, which would reset "
                "that disposition");
  auto saved = save_state(proc, *t);
  if (!saved) return saved.error();
  uint64_t ret_slot = 0;
  auto call_regs = build_frame(proc, saved->regs, fn, args, &ret_slot);
  if (!call_regs) return call_regs.error();
  if (auto st = proc.set_regs(tid, *call_regs); !st) return st.error();
  uint64_t mask = saved->sigmask & ~kSegvBit;
  if (ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof mask), &mask) != 0) {
    (void)restore_state(proc, tid, *saved);
    return fail("process ", proc.pid(), ": PTRACE_SETSIGMASK of thread ", tid, ": ", std::strerror(errno));
  }
  uint64_t rax = 0;
  CallOutcome out = run_call(proc, tid, ret_slot, opts, &rax);
  Status restored = ok_status();
  if (proc.find(tid) != nullptr) restored = restore_state(proc, tid, *saved);
  Status restopped = proc.others_running() ? proc.restop() : ok_status();
  if (!out.returned) return fail("process ", proc.pid(), ": remote call on thread ", tid, ": ", out.error);
  if (!restored) return restored.error();
  if (!restopped) return restopped.error();
  return rax;
}

Result<std::string> read_remote_string(const StoppedProcess& proc, uintptr_t addr, size_t max) {
  std::string out;
  uint8_t chunk[256];
  while (out.size() < max) {
    // Never read across a page boundary in one go: the next page may be unmapped.
    size_t n = std::min<size_t>(sizeof chunk, 4096 - ((addr + out.size()) & 4095));
    auto st = proc.read_memory(addr + out.size(), {chunk, n});
    if (!st) return st.error();
    for (size_t i = 0; i < n; ++i) {
      if (chunk[i] == 0) return out;
      out.push_back(static_cast<char>(chunk[i]));
    }
  }
  return out;
}

}  // namespace ember::attach
