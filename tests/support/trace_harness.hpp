// What the `ember trace` end-to-end tests share (trace_test.cpp,
// trace_exec_test.cpp, examples_test.cpp): reading a file whole, a private
// run directory per test, and tests/attach/lifecycle_workload.c driven over
// pipes.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ember::testing {

inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// How one `ember trace` run ended.
struct TraceRun {
  int status = -1;
  std::string out, err;
};

// Runs `ember trace` (EMBER_BIN) in a private run directory (EMBER_RUN_DIR,
// dir_), so that other Ember
// processes' maps never mix in. Skipped in the sanitizer build: its agent
// carries ASan's runtime, which must be the first library of a process and
// replaces its malloc, so it cannot be preloaded or injected into the
// traced commands; these tests run in the release build.
class TraceDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef EMBER_SANITIZED
    GTEST_SKIP() << "sanitizer build: its agent (with ASan's runtime) cannot be loaded into the traced "
                    "commands; ember trace is tested end to end in the release build";
#endif
    dir_ = ::testing::TempDir() + "ember-trace-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    setenv("EMBER_RUN_DIR", (dir_ + "/run").c_str(), 1);
  }
  void TearDown() override {
    unsetenv("EMBER_RUN_DIR");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts `ember trace ARGS` with stdout and stderr in files (named with
  // `tag`, for runs at the same time) and stdin from a pipe (the command
  // inherits it).
  pid_t start(const std::vector<std::string>& args, int* stdin_fd = nullptr, const std::string& tag = "") {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(p[0], 0);
      close(p[1]);
      int out = open((dir_ + "/out" + tag).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = open((dir_ + "/err" + tag).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<std::string> all{EMBER_BIN, "trace"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(EMBER_BIN, argv.data());
      _exit(127);
    }
    close(p[0]);
    if (stdin_fd)
      *stdin_fd = p[1];
    else
      close(p[1]);
    return pid;
  }
  TraceRun finish(pid_t pid, const std::string& tag = "") {
    TraceRun r;
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_all(dir_ + "/out" + tag);
    r.err = read_all(dir_ + "/err" + tag);
    return r;
  }
  TraceRun trace(const std::vector<std::string>& args) { return finish(start(args)); }
  // Waits (without a time limit of its own: the test's timeout is the limit)
  // until `ember trace`'s stderr holds `what`.
  bool wait_for_err(const std::string& what, pid_t ember, const std::string& tag = "") {
    while (read_all(dir_ + "/err" + tag).find(what) == std::string::npos) {
      if (waitpid(ember, nullptr, WNOHANG) == ember) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  std::string dir_;
};

// A running tests/attach/lifecycle_workload (EMBER_LIFECYCLE_WORKLOAD):
// commands in, answer lines out (see the workload for the commands).
class LifecycleWorkload {
 public:
  LifecycleWorkload() {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execl(EMBER_LIFECYCLE_WORKLOAD, EMBER_LIFECYCLE_WORKLOAD, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~LifecycleWorkload() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(in_);
    close(out_);
  }
  LifecycleWorkload(const LifecycleWorkload&) = delete;
  LifecycleWorkload& operator=(const LifecycleWorkload&) = delete;

  pid_t pid() const { return pid_; }
  // Sends one command; its answer line ("" if none came within 30 s: a
  // guard against a hang, not a timing assertion).
  std::string ask(const std::string& cmd) {
    std::string c = cmd + "\n", line;
    if (write(in_, c.data(), c.size()) != static_cast<ssize_t>(c.size())) return "";
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 30000) <= 0) return "";
      char ch;
      if (read(out_, &ch, 1) != 1) return "";
      if (ch == '\n') return line;
      line += ch;
    }
  }
  // Ends it; its wait status.
  int quit() {
    ask("quit");
    int st = -1;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
};

// What the workload's ember_workload_target(i, 2, 3, 4, 5, 6) returns,
// summed over i = a..a+n-1.
inline std::string sum_of(long a, long n) { return std::to_string(n * a + n * (n - 1) / 2 + 20 * n); }

}  // namespace ember::testing
