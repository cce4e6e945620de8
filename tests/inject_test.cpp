// Ptrace injection (src/attach/inject.hpp, remote_call.hpp,
// ptrace_threads.hpp) against tests/attach/inject_target.c: the injected
// library's constructor runs once, the target computes exactly what an
// uninjected run computes, blocked system calls carry on, threads survive,
// unloading runs the destructor and unmaps the library, and bad input is a
// clear error that leaves the target running.
#include "attach/inject.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attach/ptrace_threads.hpp"
#include "attach/remote_call.hpp"
#include "attach/target_libc.hpp"

extern char** environ;

namespace ember::attach {
namespace {

using namespace std::chrono_literals;

// A running inject_target whose stdout lines are collected by a thread.
class Target {
 public:
  static std::unique_ptr<Target> start(const char* exe, const char* mode) {
    auto t = std::unique_ptr<Target>(new Target);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return nullptr;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char* argv[] = {const_cast<char*>(exe), const_cast<char*>(mode), nullptr};
    int rc = posix_spawn(&t->pid_, exe, &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    t->in_ = in[1];
    t->out_ = out[0];
    if (rc != 0) return nullptr;
    t->reader_ = std::thread([p = t.get()] { p->read_lines(); });
    return t;
  }

  ~Target() {
    kill(pid_, SIGKILL);
    // Not a blocking waitpid: a thread left a zombie attached to us (never
    // reaped by the tracer) keeps the process from ever being reported, and
    // the test would hang instead of failing.
    EXPECT_TRUE(reaped()) << "process " << pid_ << " never ended: a traced thread of it was not reaped";
    close(in_);
    reader_.join();
    close(out_);
    std::remove(log_path().c_str());
  }

  pid_t pid() const { return pid_; }

  // Waits (30 s at most) until the process has ended and is reaped by us
  // (or was already reaped: by its tracer, when that is this thread too).
  bool reaped() {
    if (reaped_) return true;
    for (int i = 0; i < 3000; ++i) {
      pid_t r = waitpid(pid_, nullptr, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) return reaped_ = true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::string log_path() const { return "/tmp/ember_inject_" + std::to_string(pid_) + ".log"; }

  // Waits (30 s at most: a guard against a hang, not a timing assertion)
  // until pred holds over the lines read so far.
  bool wait_for(const std::function<bool(const std::vector<std::string>&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return pred(lines_) || eof_; }) && pred(lines_);
  }
  bool wait_line(const std::string& line) {
    return wait_for([&](const auto& ls) { return std::find(ls.begin(), ls.end(), line) != ls.end(); });
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return lines_.size();
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  void send(const std::string& s) {
    ASSERT_EQ(write(in_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  bool alive() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string s;
    std::getline(in, s);
    size_t close = s.rfind(')');
    return close != std::string::npos && close + 2 < s.size() && s[close + 2] != 'Z';
  }

 private:
  Target() = default;
  void read_lines() {
    std::string partial;
    char buf[4096];
    for (;;) {
      ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) break;
      partial.append(buf, n);
      size_t nl;
      std::lock_guard lock(mu_);
      while ((nl = partial.find('\n')) != std::string::npos) {
        lines_.push_back(partial.substr(0, nl));
        partial.erase(0, nl + 1);
      }
      cv_.notify_all();
    }
    std::lock_guard lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = 0;
  bool reaped_ = false;
  int in_ = -1, out_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

// "C<id> <n> <hash> <double>" -> (id, n) -> the whole line.
using Sequence = std::map<std::pair<int, long>, std::string>;

Sequence computed(const std::vector<std::string>& lines) {
  Sequence out;
  for (const auto& l : lines) {
    int id;
    long n;
    if (std::sscanf(l.c_str(), "C%d %ld", &id, &n) == 2) out[{id, n}] = l;
  }
  return out;
}

size_t lines_of(const std::vector<std::string>& lines, int id) {
  size_t n = 0;
  for (const auto& [key, l] : computed(lines)) n += key.first == id;
  return n;
}

// What uninjected runs print: C0 from `single`, C1..C4 from `threads`.
const Sequence& reference() {
  static const Sequence ref = [] {
    Sequence r;
    for (const char* mode : {"single", "threads"}) {
      auto t = Target::start(EMBER_INJECT_TARGET, mode);
      bool single = std::string(mode) == "single";
      t->wait_for([&](const auto& ls) {
        if (single) return lines_of(ls, 0) >= 60;
        for (int id = 1; id <= 4; ++id)
          if (lines_of(ls, id) < 60) return false;
        return true;
      });
      r.merge(computed(t->lines()));
    }
    return r;
  }();
  return ref;
}

// Every computed line the target printed is the reference's line.
void expect_same_computation(Target& t) {
  const Sequence& ref = reference();
  size_t compared = 0;
  for (const auto& [key, line] : computed(t.lines())) {
    auto it = ref.find(key);
    if (it == ref.end()) continue;  // beyond the reference's length
    EXPECT_EQ(line, it->second) << "C" << key.first << " block " << key.second;
    ++compared;
  }
  EXPECT_GT(compared, 0u);
}

// Waits until the target printed `more` computed lines of thread `id` past `from`.
bool wait_computed(Target& t, int id, size_t from, size_t more = 5) {
  return t.wait_for([&](const auto& ls) { return lines_of(ls, id) >= from + more; });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count_of(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1)) ++n;
  return n;
}

std::vector<pid_t> tasks(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') out.push_back(std::stoi(e->d_name));
  closedir(d);
  return out;
}

// Waits until some thread of pid blocks in system call `nr` (its
// /proc/PID/task/TID/syscall starts with the number).
bool wait_in_syscall(pid_t pid, int nr) {
  for (int i = 0; i < 3000; ++i) {
    for (pid_t tid : tasks(pid)) {
      std::string s = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
      if (s.rfind(std::to_string(nr) + " ", 0) == 0) return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string lib_path() {
  char buf[4096];
  return realpath(EMBER_INJECT_LIB, buf) ? buf : EMBER_INJECT_LIB;
}

bool maps_list(pid_t pid, const std::string& path) {
  return read_file("/proc/" + std::to_string(pid) + "/maps").find(path) != std::string::npos;
}

// Injects, or skips the test visibly where ptrace is not permitted here.
#define INJECT_OR_SKIP(pid, path)                                               \
  do {                                                                          \
    auto st_ = inject_library((pid), (path));                                   \
    if (!st_ && st_.error().message.find("not permitted") != std::string::npos) \
      GTEST_SKIP() << "ptrace is not permitted here: " << st_.error().message;  \
    ASSERT_TRUE(st_.ok()) << st_.error().message;                               \
  } while (0)

TEST(InjectTest, SingleThreadedTargetLoadsLibraryAndComputesTheSame) {
  auto t = Target::start(EMBER_INJECT_TARGET, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 3));
  size_t before = lines_of(t->lines(), 0);
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(read_file(t->log_path()), "ctor " + std::to_string(t->pid()) + "\n");
  EXPECT_TRUE(maps_list(t->pid(), lib_path()));
  ASSERT_TRUE(wait_computed(*t, 0, before)) << "the target stopped computing";
  expect_same_computation(*t);
  EXPECT_TRUE(t->alive());
}

TEST(InjectTest, FourThreadsAllKeepComputing) {
  auto t = Target::start(EMBER_INJECT_TARGET, "threads");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->wait_for([](const auto& ls) {
    for (int id = 1; id <= 4; ++id)
      if (lines_of(ls, id) < 2) return false;
    return true;
  }));
  auto threads_before = tasks(t->pid());
  ASSERT_EQ(threads_before.size(), 5u);
  auto lines = t->lines();
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  EXPECT_EQ(tasks(t->pid()).size(), 5u);
  for (int id = 1; id <= 4; ++id) EXPECT_TRUE(wait_computed(*t, id, lines_of(lines, id))) << "thread C" << id;
  expect_same_computation(*t);
}

TEST(InjectTest, CallInThreadBlockedInReadRestartsTheRead) {
  auto t = Target::start(EMBER_INJECT_TARGET, "read");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->wait_line("ready"));
  ASSERT_TRUE(wait_in_syscall(t->pid(), SYS_read));
  // The only thread is in read(): dlopen runs on it, and the read resumes.
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  EXPECT_TRUE(wait_in_syscall(t->pid(), SYS_read)) << "the read did not resume";
  t->send("hello\n");
  EXPECT_TRUE(t->wait_line("R 6 0 hello")) << "read() returned something else";
  EXPECT_TRUE(wait_computed(*t, 0, 0));
  expect_same_computation(*t);
}

TEST(InjectTest, CallInThreadInNanosleepLetsTheSleepComplete) {
  auto t = Target::start(EMBER_INJECT_TARGET, "sleep");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->wait_line("ready"));
  ASSERT_TRUE(wait_in_syscall(t->pid(), SYS_clock_nanosleep));
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  // "S 0 0": nanosleep returned 0, not -1 with EINTR.
  EXPECT_TRUE(t->wait_for([](const auto& ls) {
    return std::any_of(ls.begin(), ls.end(), [](const std::string& l) { return l.rfind("S ", 0) == 0; });
  }));
  auto ls = t->lines();
  EXPECT_NE(std::find(ls.begin(), ls.end(), "S 0 0"), ls.end());
  EXPECT_TRUE(wait_computed(*t, 0, 0));
  expect_same_computation(*t);
}

TEST(InjectTest, MixedThreadsBlockedAndComputing) {
  auto t = Target::start(EMBER_INJECT_TARGET, "mixed");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->wait_line("ready"));
  ASSERT_TRUE(wait_in_syscall(t->pid(), SYS_read));
  ASSERT_TRUE(wait_in_syscall(t->pid(), SYS_clock_nanosleep));
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  size_t threads = tasks(t->pid()).size();
  EXPECT_EQ(threads, 4u);
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  EXPECT_EQ(tasks(t->pid()).size(), threads);
  t->send("later\n");
  EXPECT_TRUE(t->wait_line("R 6 0 later"));
  EXPECT_TRUE(t->wait_line("S 0 0"));
  auto lines = t->lines();
  EXPECT_TRUE(wait_computed(*t, 0, lines_of(lines, 0)));
  EXPECT_TRUE(wait_computed(*t, 1, lines_of(lines, 1)));
  expect_same_computation(*t);
}

// A stopped thread holds the loader's lock dlopen needs: after a while the
// other threads run, the lock is released, and dlopen completes (instead of
// waiting until the call's timeout).
TEST(InjectTest, LockHeldByAStoppedThreadDoesNotDeadlock) {
  auto t = Target::start(EMBER_INJECT_TARGET, "dllock");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->wait_line("locking"));
  ASSERT_TRUE(wait_in_syscall(t->pid(), SYS_clock_nanosleep));  // inside dl_iterate_phdr's callback
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  INJECT_OR_SKIP(t->pid(), lib_path());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  EXPECT_EQ(tasks(t->pid()).size(), 2u);
  ASSERT_TRUE(wait_computed(*t, 0, lines_of(t->lines(), 0)));
  expect_same_computation(*t);
}

// The library's constructor calls _exit(7) (exit_group) on the thread
// running dlopen. Every other thread is killed; as their tracer we must reap
// them, or they stay zombies attached to us: the process is never reported
// to its parent (here: this test, whose waitpid hung until ctest's 300 s
// timeout under load before the fix) and, when the caller is the main
// thread, its own exit is never reported either (the call then ran into its
// 60 s timeout). `mode`: "threads" runs the call on a worker (main waits in
// pthread_join), "mixed" on the main thread with three others alive.
void expect_death_reported(const char* mode) {
  auto t = Target::start(EMBER_INJECT_TARGET, mode);
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 1, 0, 2));
  char buf[4096];
  std::string lib = realpath(EMBER_INJECT_EXIT_LIB, buf) ? buf : EMBER_INJECT_EXIT_LIB;
  auto st = inject_library(t->pid(), lib);
  ASSERT_FALSE(st.ok());
  if (st.error().message.find("not permitted") != std::string::npos) GTEST_SKIP() << st.error().message;
  EXPECT_NE(st.error().message.find("the target died during the call (exited with status 7)"),
            std::string::npos)
      << st.error().message;
  EXPECT_FALSE(t->alive());
  // Nothing of it is left attached to us: the parent sees it end.
  EXPECT_TRUE(t->reaped()) << "process " << t->pid() << " never ended: a traced thread of it was not reaped";
}

TEST(InjectTest, TargetDyingDuringInjectionIsReported) { expect_death_reported("threads"); }

TEST(InjectTest, TargetDyingInItsMainThreadDuringInjectionIsReported) { expect_death_reported("mixed"); }

TEST(InjectTest, UnloadRunsDestructorAndUnmaps) {
  auto t = Target::start(EMBER_INJECT_TARGET, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  INJECT_OR_SKIP(t->pid(), lib_path());
  ASSERT_TRUE(maps_list(t->pid(), lib_path()));
  auto st = unload_library(t->pid(), lib_path());
  ASSERT_TRUE(st.ok()) << st.error().message;
  std::string pid = std::to_string(t->pid());
  EXPECT_EQ(read_file(t->log_path()), "ctor " + pid + "\ndtor " + pid + "\n");
  EXPECT_FALSE(maps_list(t->pid(), lib_path()));
  // A second unload is an error, not a dlclose of a reference nobody holds.
  auto again = unload_library(t->pid(), lib_path());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("is not loaded"), std::string::npos) << again.error().message;
  // Loading again after unloading runs the constructor again.
  ASSERT_TRUE(inject_library(t->pid(), lib_path()).ok());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 2);
  ASSERT_TRUE(wait_computed(*t, 0, lines_of(t->lines(), 0)));
  expect_same_computation(*t);
}

TEST(InjectTest, InjectingTwiceRunsConstructorOnce) {
  auto t = Target::start(EMBER_INJECT_TARGET, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  INJECT_OR_SKIP(t->pid(), lib_path());
  ASSERT_TRUE(inject_library(t->pid(), lib_path()).ok());
  EXPECT_EQ(count_of(read_file(t->log_path()), "ctor"), 1);
  // Two references: the first unload leaves one, the second unloads.
  ASSERT_TRUE(unload_library(t->pid(), lib_path()).ok());
  EXPECT_EQ(count_of(read_file(t->log_path()), "dtor"), 0);
  EXPECT_TRUE(maps_list(t->pid(), lib_path()));
  ASSERT_TRUE(unload_library(t->pid(), lib_path()).ok());
  EXPECT_EQ(count_of(read_file(t->log_path()), "dtor"), 1);
  EXPECT_FALSE(maps_list(t->pid(), lib_path()));
}

// The address of a function of a library mapped by pid.
uintptr_t function_address(pid_t pid, const std::string& lib, const char* name) {
  auto off = dynsym_file_offset(lib, name);
  if (!off) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(lib) == std::string::npos) continue;
    unsigned long long start, end, moff;
    char perms[8];
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx", &start, &end, perms, &moff) != 4) continue;
    if (perms[2] == 'x' && *off >= moff && *off < moff + (end - start)) return start + (*off - moff);
  }
  return 0;
}

// Waits (up to 10 s) until process `pid` has `n` threads: the target's
// workers start after its first output, so a stop right after it may find
// fewer (seen in a fresh-clone ctest -j2 run).
size_t wait_for_threads(pid_t pid, size_t n) {
  size_t count = 0;
  for (int i = 0; i < 1000; ++i) {
    count = 0;
    if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++count;
      closedir(d);
    }
    if (count >= n) break;
    usleep(10000);
  }
  return count;
}

TEST(InjectTest, RemoteCallPassesSixArgumentsOnAnAlignedStack) {
  auto t = Target::start(EMBER_INJECT_TARGET, "threads");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 1, 0, 2));
  INJECT_OR_SKIP(t->pid(), lib_path());
  uintptr_t fn = function_address(t->pid(), lib_path(), "ember_inject_sum6");
  ASSERT_NE(fn, 0u);
  auto lines = t->lines();
  ASSERT_EQ(wait_for_threads(t->pid(), 5), 5u);
  {
    auto proc = StoppedProcess::stop(t->pid());
    ASSERT_TRUE(proc.ok()) << proc.error().message;
    // Every thread, main first, and each call on a different thread.
    ASSERT_EQ(proc->threads().size(), 5u);
    EXPECT_EQ(proc->threads().front().tid, t->pid());
    for (const auto& th : proc->threads()) {
      auto r = remote_call(*proc, th.tid, fn,
                           {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{4}, uint64_t{5}, uint64_t{6}});
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(static_cast<int64_t>(*r), 91) << "thread " << th.tid << " (-1: misaligned stack)";
      auto regs = proc->get_regs(th.tid);
      ASSERT_TRUE(regs.ok());
      EXPECT_EQ(regs->rip, th.regs.rip);
      EXPECT_EQ(regs->rsp, th.regs.rsp);
      EXPECT_EQ(regs->rax, th.regs.rax);
    }
    auto bad = remote_call(*proc, 1, fn, {});
    EXPECT_FALSE(bad.ok());
  }
  for (int id = 1; id <= 4; ++id) EXPECT_TRUE(wait_computed(*t, id, lines_of(lines, id)));
  expect_same_computation(*t);
}

TEST(InjectTest, StoppedProcessHoldsEveryThreadStill) {
  auto t = Target::start(EMBER_INJECT_TARGET, "threads");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 1, 0, 2));
  {
    auto proc = StoppedProcess::stop(t->pid());
    if (!proc && proc.error().message.find("not permitted") != std::string::npos)
      GTEST_SKIP() << proc.error().message;
    ASSERT_TRUE(proc.ok()) << proc.error().message;
    EXPECT_EQ(proc->threads().size(), tasks(t->pid()).size());
    for (const auto& th : proc->threads()) {
      EXPECT_NE(th.pt_regs().rip, 0u);
      EXPECT_EQ(th.pt_regs().rsp, th.regs.rsp);
    }
    // Nothing runs while it is held: no line appears (the pipe is drained
    // by our reader, so a running thread would print within a few blocks).
    size_t n = t->count();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(t->count(), n);
    uint8_t word[8];
    EXPECT_TRUE(proc->read_memory(proc->threads().front().regs.rip, word).ok());
  }
  auto lines = t->lines();
  for (int id = 1; id <= 4; ++id) EXPECT_TRUE(wait_computed(*t, id, lines_of(lines, id)));
  expect_same_computation(*t);
}

TEST(InjectTest, ErrorsNameWhatWasAsked) {
  std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
  long pid_max = 4194304;
  pid_max_file >> pid_max;
  auto gone = inject_library(static_cast<pid_t>(pid_max + 1), lib_path());
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message.find("no such process"), std::string::npos) << gone.error().message;
  auto zero = inject_library(0, lib_path());
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("not a valid pid"), std::string::npos) << zero.error().message;
  auto self = inject_library(getpid(), lib_path());
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.error().message.find("itself"), std::string::npos) << self.error().message;

  auto t = Target::start(EMBER_INJECT_TARGET, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  auto relative = inject_library(t->pid(), "libember_inject_lib.so");
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.error().message.find("not an absolute path"), std::string::npos);
  auto missing = inject_library(t->pid(), "/nonexistent/libnothing.so");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/libnothing.so: No such file"), std::string::npos)
      << missing.error().message;

  // A file that is not an ELF library: dlopen's own words come back.
  std::string bad = "/tmp/ember_inject_bad_" + std::to_string(getpid()) + ".so";
  {
    std::ofstream out(bad);
    out << "this is not an ELF shared object, it is a text file long enough to have a header\n";
  }
  auto st = inject_library(t->pid(), bad);
  std::remove(bad.c_str());
  if (!st && st.error().message.find("not permitted") != std::string::npos)
    GTEST_SKIP() << st.error().message;
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("dlopen(" + bad + ") failed: "), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("invalid ELF header"), std::string::npos) << st.error().message;
  EXPECT_TRUE(t->alive());
  ASSERT_TRUE(wait_computed(*t, 0, lines_of(t->lines(), 0)));
  expect_same_computation(*t);
  // Nothing left loaded or run.
  EXPECT_EQ(read_file(t->log_path()), "");
}

TEST(InjectTest, StaticTargetHasNoDlopen) {
  auto t = Target::start(EMBER_INJECT_TARGET_STATIC, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  auto st = inject_library(t->pid(), lib_path());
  ASSERT_FALSE(st.ok());
  if (st.error().message.find("not permitted") != std::string::npos) GTEST_SKIP() << st.error().message;
  EXPECT_NE(st.error().message.find("no dlopen found"), std::string::npos) << st.error().message;
  EXPECT_TRUE(wait_computed(*t, 0, lines_of(t->lines(), 0)));
}

TEST(InjectTest, AlreadyTracedTargetIsAPermissionErrorSayingWhy) {
  auto t = Target::start(EMBER_INJECT_TARGET, "single");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_computed(*t, 0, 0, 2));
  if (ptrace(PTRACE_SEIZE, t->pid(), nullptr, nullptr) != 0) GTEST_SKIP() << "ptrace not permitted here";
  auto st = inject_library(t->pid(), lib_path());
  // Let go of it again: PTRACE_DETACH wants a stopped tracee.
  ptrace(PTRACE_INTERRUPT, t->pid(), nullptr, nullptr);
  waitpid(t->pid(), nullptr, __WALL);
  ptrace(PTRACE_DETACH, t->pid(), nullptr, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("ptrace not permitted"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("already traced by process " + std::to_string(getpid())),
            std::string::npos)
      << st.error().message;
  EXPECT_TRUE(wait_computed(*t, 0, lines_of(t->lines(), 0)));
}

}  // namespace
}  // namespace ember::attach
