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

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ember::testing {

inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A private run directory (EMBER_RUN_DIR, dir_), so that other Ember
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
