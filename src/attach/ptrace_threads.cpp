#include "attach/ptrace_threads.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace ember::attach {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Thread ids in /proc/PID/task, or an error if the process is gone.
Result<std::vector<pid_t>> list_tids(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fail("process ", pid, ": no such process (", dir, ": ", errno_text(errno), ")");
  std::vector<pid_t> tids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    tids.push_back(static_cast<pid_t>(std::stol(e->d_name)));
  }
  closedir(d);
  return tids;
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      size_t v = line.find_first_not_of(" \t", key.size() + 1);
      return v == std::string::npos ? "" : line.substr(v);
    }
  }
  return "";
}

// Why PTRACE_SEIZE said EPERM, as far as can be told from outside.
std::string permission_reason(pid_t pid) {
  std::string tracer = status_field(pid, "TracerPid");
  if (!tracer.empty() && tracer != "0") return "it is already traced by process " + tracer + " (a debugger?)";
  std::string why;
  std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
  int scope = -1;
  if (yama >> scope) {
    if (scope == 3)
      return "Yama ptrace_scope is 3 (/proc/sys/kernel/yama/ptrace_scope): no process may ptrace";
    if (scope == 2 && geteuid() != 0)
      return "Yama ptrace_scope is 2 (/proc/sys/kernel/yama/ptrace_scope): only root (CAP_SYS_PTRACE) may "
             "ptrace";
    if (scope == 1 && geteuid() != 0)
      why =
          "Yama ptrace_scope is 1 (/proc/sys/kernel/yama/ptrace_scope): only a parent may ptrace its "
          "descendants without CAP_SYS_PTRACE; run as root or set it to 0";
  }
  if (geteuid() != 0) {
    std::string uids = status_field(pid, "Uid");
    std::string prefix = why.empty() ? "" : why + "; ";
    return prefix + "not root (euid " + std::to_string(geteuid()) + ", target Uid: " + uids +
           "): the target must have the same uids and not be setuid/non-dumpable";
  }
  if (!why.empty()) return why;
  return "refused although running as root (a security module, or the process is exiting)";
}

}  // namespace

// The state letter of a thread ('R', 'S', 'Z'...), '?' if unreadable.
char thread_state(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return '?';
  size_t close = line.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos || close + 2 >= line.size()) return '?';
  return line[close + 2];
}

PtRegs StoppedThread::pt_regs() const {
  static_assert(sizeof(user_regs_struct) >= sizeof(PtRegs));
  static_assert(offsetof(user_regs_struct, ss) == offsetof(PtRegs, ss));
  PtRegs out;
  std::memcpy(&out, &regs, sizeof out);
  return out;
}

Result<ThreadEvent> wait_thread(pid_t tid, std::chrono::steady_clock::time_point deadline) {
  // Polling: a blocking waitpid could not time out, and a SIGCHLD-based wait
  // would take over the controller's signal handling.
  auto nap = std::chrono::microseconds(50);
  for (;;) {
    int st = 0;
    pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {  // reaped elsewhere, or no longer our tracee
        ThreadEvent ev;
        ev.exited = true;
        return ev;
      }
      return fail("waitpid(", tid, "): ", errno_text(errno));
    }
    if (r == tid) {
      ThreadEvent ev;
      if (WIFEXITED(st)) {
        ev.exited = true;
        ev.exit_status = WEXITSTATUS(st);
      } else if (WIFSIGNALED(st)) {
        ev.exited = true;
        ev.term_signal = WTERMSIG(st);
      } else if (WIFSTOPPED(st)) {
        ev.stop_signal = WSTOPSIG(st);
        ev.event_stop = (st >> 16) == PTRACE_EVENT_STOP;
      }
      return ev;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ThreadEvent ev;
      ev.timed_out = true;
      return ev;
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(5000));
  }
}

Result<StoppedProcess> StoppedProcess::stop(pid_t pid, std::chrono::milliseconds stop_timeout) {
  if (pid <= 0) return fail("process ", pid, ": not a valid pid");
  if (pid == getpid()) return fail("process ", pid, ": is this process; a process cannot ptrace itself");
  auto tids = list_tids(pid);
  if (!tids) return tids.error();
  StoppedProcess p;
  p.pid_ = pid;
  if (auto st = p.stop_new_threads(stop_timeout); !st) return st.error();  // p's destructor detaches
  if (p.threads_.empty()) return fail("process ", pid, ": no such process (it exited while being stopped)");
  std::string mem = "/proc/" + std::to_string(pid) + "/mem";
  p.mem_fd_ = open(mem.c_str(), O_RDWR | O_CLOEXEC);
  if (p.mem_fd_ < 0) return fail("process ", pid, ": cannot open ", mem, ": ", errno_text(errno));
  // Main thread first: callers that pick "the first thread" get the one
  // that most programs expect to run their code.
  std::stable_partition(p.threads_.begin(), p.threads_.end(),
                        [pid](const StoppedThread& t) { return t.tid == pid; });
  return p;
}

// Seizes and stops every thread in /proc/PID/task not yet known, and the
// threads in running_, until a listing shows nothing new.
Status StoppedProcess::stop_new_threads(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::set<pid_t> known;
  for (const auto& t : threads_) known.insert(t.tid);
  std::vector<pid_t> to_wait = running_;
  for (pid_t tid : running_) {
    known.insert(tid);
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 && errno != ESRCH)
      return fail("process ", pid_, ": PTRACE_INTERRUPT of thread ", tid, ": ", errno_text(errno));
  }
  running_.clear();
  others_running_ = false;
  for (;;) {
    for (pid_t tid : to_wait) {
      auto ev = wait_thread(tid, deadline);
      if (!ev) return ev.error();
      if (ev->timed_out) {
        running_.push_back(tid);  // still seized: detach() will find it not stopped and interrupt it
        return fail("process ", pid_, ": thread ", tid, " did not stop within ", timeout.count(),
                    " ms (state ", std::string(1, thread_state(pid_, tid)), ": uninterruptible sleep?)");
      }
      if (ev->exited) {
        std::erase(seized_, tid);
        continue;
      }
      StoppedThread t;
      t.tid = tid;
      t.pending_signal = ev->event_stop ? 0 : ev->stop_signal;
      if (ptrace(PTRACE_GETREGS, tid, nullptr, &t.regs) != 0) {
        if (errno == ESRCH) continue;  // dying just now: reaped by detach() or mark_dead()
        return fail("process ", pid_, ": PTRACE_GETREGS of thread ", tid, ": ", errno_text(errno));
      }
      threads_.push_back(t);
    }
    to_wait.clear();
    auto tids = list_tids(pid_);
    if (!tids) {
      if (threads_.empty()) return tids.error();
      break;  // the last threads exited as we looked
    }
    for (pid_t tid : *tids) {
      if (!known.insert(tid).second) continue;
      char state = thread_state(pid_, tid);
      if (state == 'Z' || state == 'X') continue;  // an exited thread group leader never stops
      if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        if (errno == ESRCH) continue;  // exited since the listing
        if (errno == EPERM)
          return fail("process ", pid_, ": ptrace not permitted (PTRACE_SEIZE of thread ", tid,
                      "): ", permission_reason(pid_));
        return fail("process ", pid_, ": PTRACE_SEIZE of thread ", tid, ": ", errno_text(errno));
      }
      seized_.push_back(tid);
      if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 && errno != ESRCH)
        return fail("process ", pid_, ": PTRACE_INTERRUPT of thread ", tid, ": ", errno_text(errno));
      to_wait.push_back(tid);
    }
    if (to_wait.empty()) break;
  }
  return ok_status();
}

StoppedProcess::StoppedProcess(StoppedProcess&& o) noexcept { *this = std::move(o); }

StoppedProcess& StoppedProcess::operator=(StoppedProcess&& o) noexcept {
  if (this == &o) return *this;
  (void)detach();
  pid_ = o.pid_;
  mem_fd_ = std::exchange(o.mem_fd_, -1);
  threads_ = std::move(o.threads_);
  running_ = std::move(o.running_);
  seized_ = std::move(o.seized_);
  deferred_ = std::move(o.deferred_);
  others_running_ = std::exchange(o.others_running_, false);
  o.threads_.clear();
  o.running_.clear();
  o.seized_.clear();
  o.deferred_.clear();
  return *this;
}

StoppedProcess::~StoppedProcess() { (void)detach(); }

const StoppedThread* StoppedProcess::find(pid_t tid) const {
  for (const auto& t : threads_)
    if (t.tid == tid) return &t;
  return nullptr;
}

namespace {

// One non-blocking look at a traced thread: true once it has ended and is
// reaped (or is no longer ours to reap). A stop it reports (a dying thread
// can still be caught in one) is let go so that it can finish dying.
bool reaped_now(pid_t tid) {
  int st = 0;
  pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
  if (r < 0) return errno != EINTR;  // ECHILD: reaped already, or not traced by us
  if (r == 0) return false;
  if (WIFEXITED(st) || WIFSIGNALED(st)) return true;
  if (WIFSTOPPED(st)) ptrace(PTRACE_CONT, tid, nullptr, nullptr);
  return false;
}

}  // namespace

void StoppedProcess::reap_exited(pid_t except) {
  auto gone = [&](pid_t tid) {
    if (tid == except || !reaped_now(tid)) return false;
    std::erase(seized_, tid);
    return true;
  };
  std::erase_if(threads_, [&](const StoppedThread& t) { return gone(t.tid); });
  // running_ threads are polled (their stops serviced) by poll_others.
  if (others_running_) poll_others();
}

bool StoppedProcess::others_exited(pid_t except, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    reap_exited(except);
    bool none = running_.empty() && std::all_of(threads_.begin(), threads_.end(),
                                                [&](const StoppedThread& t) { return t.tid == except; });
    if (none) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void StoppedProcess::mark_dead() {
  // The leader last: its exit is reported only after every other thread's.
  std::stable_partition(seized_.begin(), seized_.end(), [this](pid_t tid) { return tid != pid_; });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!seized_.empty() && std::chrono::steady_clock::now() < deadline) {
    std::erase_if(seized_, reaped_now);
    if (!seized_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  seized_.clear();  // what is left is not dying: nothing more can be done from here
  threads_.clear();
  running_.clear();
  deferred_.clear();
  others_running_ = false;
}

void StoppedProcess::forget_thread(pid_t tid) {
  std::erase_if(threads_, [tid](const StoppedThread& t) { return t.tid == tid; });
  std::erase(running_, tid);
  std::erase(seized_, tid);
}

Result<user_regs_struct> StoppedProcess::get_regs(pid_t tid) const {
  user_regs_struct regs{};
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0)
    return fail("process ", pid_, ": PTRACE_GETREGS of thread ", tid, ": ", errno_text(errno));
  return regs;
}

Status StoppedProcess::set_regs(pid_t tid, const user_regs_struct& regs) {
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0)
    return fail("process ", pid_, ": PTRACE_SETREGS of thread ", tid, ": ", errno_text(errno));
  return ok_status();
}

Status StoppedProcess::read_memory(uintptr_t addr, std::span<uint8_t> out) const {
  ssize_t n = pread(mem_fd_, out.data(), out.size(), static_cast<off_t>(addr));
  if (n != static_cast<ssize_t>(out.size()))
    return fail("process ", pid_, ": cannot read ", out.size(), " bytes at ", hex(addr), ": ",
                n < 0 ? errno_text(errno) : "short read");
  return ok_status();
}

Status StoppedProcess::write_memory(uintptr_t addr, std::span<const uint8_t> bytes) {
  ssize_t n = pwrite(mem_fd_, bytes.data(), bytes.size(), static_cast<off_t>(addr));
  if (n != static_cast<ssize_t>(bytes.size()))
    return fail("process ", pid_, ": cannot write ", bytes.size(), " bytes at ", hex(addr), ": ",
                n < 0 ? errno_text(errno) : "short write");
  return ok_status();
}

Status StoppedProcess::resume_others(pid_t tid) {
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->tid == tid) {
      ++it;
      continue;
    }
    if (ptrace(PTRACE_CONT, it->tid, nullptr, reinterpret_cast<void*>(intptr_t{it->pending_signal})) == 0)
      running_.push_back(it->tid);
    it = threads_.erase(it);
  }
  others_running_ = true;
  return ok_status();
}

void StoppedProcess::poll_others() {
  for (auto it = running_.begin(); it != running_.end();) {
    int st = 0;
    pid_t r = waitpid(*it, &st, __WALL | WNOHANG);
    if ((r == *it && (WIFEXITED(st) || WIFSIGNALED(st))) || (r < 0 && errno == ECHILD)) {
      std::erase(seized_, *it);
      it = running_.erase(it);
      continue;
    }
    if (r == *it && WIFSTOPPED(st)) {
      int sig = WSTOPSIG(st);
      bool event = (st >> 16) == PTRACE_EVENT_STOP;
      if (!event && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) {
        defer_signal(*it, sig);
        sig = 0;
      }
      ptrace(PTRACE_CONT, *it, nullptr, reinterpret_cast<void*>(intptr_t{event ? 0 : sig}));
    }
    ++it;
  }
}

Status StoppedProcess::restop() { return stop_new_threads(std::chrono::seconds(10)); }

Status StoppedProcess::detach() {
  std::string errors;
  for (pid_t tid : running_) {  // seized but running: PTRACE_DETACH needs a stopped tracee
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) continue;
    auto ev = wait_thread(tid, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (ev && !ev->timed_out && !ev->exited &&
        ptrace(PTRACE_DETACH, tid, nullptr,
               reinterpret_cast<void*>(intptr_t{ev->event_stop ? 0 : ev->stop_signal})) == 0)
      std::erase(seized_, tid);
    else if (ev && ev->exited)
      std::erase(seized_, tid);
  }
  running_.clear();
  for (const auto& t : threads_) {
    if (ptrace(PTRACE_DETACH, t.tid, nullptr, reinterpret_cast<void*>(intptr_t{t.pending_signal})) == 0)
      std::erase(seized_, t.tid);
    else if (errno != ESRCH)
      errors += " thread " + std::to_string(t.tid) + ": " + errno_text(errno) + ";";
  }
  threads_.clear();
  // ESRCH: a stopped thread that is no longer stopped is dying (killed by
  // an exit_group or SIGKILL); as its tracer we must reap it, or it stays a
  // zombie and the process's parent never sees the process end. A leader
  // whose exit waits for threads that live on cannot be reaped yet: after a
  // short wait it is left (it is released when those threads end or we do).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::stable_partition(seized_.begin(), seized_.end(), [this](pid_t tid) { return tid != pid_; });
  while (!seized_.empty() && std::chrono::steady_clock::now() < deadline) {
    std::erase_if(seized_, reaped_now);
    if (!seized_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  seized_.clear();
  for (auto [tid, sig] : deferred_) syscall(SYS_tgkill, pid_, tid, sig);
  deferred_.clear();
  others_running_ = false;
  if (mem_fd_ >= 0) close(std::exchange(mem_fd_, -1));
  if (!errors.empty()) return fail("process ", pid_, ": PTRACE_DETACH failed:", errors);
  return ok_status();
}

}  // namespace ember::attach
