// The `ember trace` examples (examples/, README "Examples") end to end
// through the real `ember trace` and its agent, with exact numbers: the
// malloc/free histograms and outstanding count on alloc_workload, the lines
// typed into an interactive bash (through a pseudo-terminal), and the USDT
// counts and semaphore of usdt_app. CMake builds the objects and programs
// (examples/CMakeLists.txt).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attach/symbols.hpp"
#include "support/trace_harness.hpp"

namespace ember {
namespace {

const std::string kOut = EMBER_EXAMPLES_OUT;

using testing::read_all;

struct Outcome {
  int status = -1;
  std::string out, err;
};

int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

// The examples run in a private run directory (TraceDirTest).
class Examples : public testing::TraceDirTest {
 protected:
  // Runs ARGS (ARGS[0] a path) with stdin from /dev/null and stdout and
  // stderr in files.
  Outcome run(std::vector<std::string> args) {
    pid_t pid = fork();
    if (pid == 0) {
      int in = open("/dev/null", O_RDONLY);
      int out = open((dir_ + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = open((dir_ + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(in, 0), dup2(out, 1), dup2(err, 2);
      execv(args[0].c_str(), argv_of(args).data());
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return {exit_status(st), read_all(dir_ + "/out"), read_all(dir_ + "/err")};
  }
  Outcome trace(std::vector<std::string> args) {
    args.insert(args.begin(), {EMBER_BIN, "trace"});
    return run(std::move(args));
  }
};

// The block of a --hist MAP print: from "MAP:" to the next blank line.
std::string hist_block(const std::string& out, const std::string& map) {
  size_t at = out.find("\n" + map + ":\n");
  if (at == std::string::npos) return "";
  size_t end = out.find("\n\n", at + 1);
  return out.substr(at + 1, end == std::string::npos ? std::string::npos : end - at);
}

// BCC's log2 rows for slots 0..last with the given counts (tests/trace_test
// checks the layout itself; here the counts matter).
std::string rows(const std::string& map, std::vector<std::pair<int, std::string>> nonzero, int last) {
  static const char* kRows[] = {
      "         0 -> 1          : ", "         2 -> 3          : ", "         4 -> 7          : ",
      "         8 -> 15         : ", "        16 -> 31         : ", "        32 -> 63         : ",
      "        64 -> 127        : ", "       128 -> 255        : ", "       256 -> 511        : ",
      "       512 -> 1023       : ", "      1024 -> 2047       : ", "      2048 -> 4095       : ",
      "      4096 -> 8191       : ", "      8192 -> 16383      : ", "     16384 -> 32767      : ",
      "     32768 -> 65535      : ", "     65536 -> 131071     : ", "    131072 -> 262143     : ",
      "    262144 -> 524287     : ", "    524288 -> 1048575    : ", "   1048576 -> 2097151    : ",
  };
  std::string s = map + ":\n     value               : count     distribution\n";
  for (int slot = 0; slot <= last; ++slot) {
    std::string tail = "0        |                                        |";
    for (auto& [sl, t] : nonzero)
      if (sl == slot) tail = t;
    s += kRows[slot] + tail + "\n";
  }
  return s;
}

TEST_F(Examples, MallocHistogramAndOutstandingAllocations) {
  Outcome r =
      trace({kOut + "/malloc_hist.bpf.o", "--hist", "sizes", "--hist", "live", "--", EMBER_ALLOC_WORKLOAD});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_NE(r.err.find("4 probes attached"), std::string::npos) << r.err;
  // alloc_workload's table: 100 x 16, 50 x 100, 20 x 1000, 10 x 5000,
  // 4 x 100000, 2 x 1 MiB; 10, 5, 4, 2, 0 and 1 of them left outstanding.
  EXPECT_NE(r.out.find("alloc_workload: expect 186 mallocs, 22 outstanding (1063236 bytes)\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("bpf_trace_printk: 186 mallocs, 22 outstanding (1063236 bytes)\n"), std::string::npos)
      << "what the probes counted at exit()\n"
      << r.out;
  EXPECT_EQ(hist_block(r.out, "sizes"), rows("sizes",
                                             {{4, "100      |****************************************|"},
                                              {6, "50       |********************                    |"},
                                              {9, "20       |********                                |"},
                                              {12, "10       |****                                    |"},
                                              {16, "4        |*                                       |"},
                                              {20, "2        |                                        |"}},
                                             20))
      << r.out;
  EXPECT_EQ(hist_block(r.out, "live"), rows("live",
                                            {{4, "10       |****************************************|"},
                                             {6, "5        |********************                    |"},
                                             {9, "4        |****************                        |"},
                                             {12, "2        |********                                |"},
                                             {20, "1        |****                                    |"}},
                                            20))
      << r.out;
}

// ---- bashreadline: an interactive bash in a pseudo-terminal ----

struct PtyRun {
  int status = -1;
  std::string output;  // ember's stdout and stderr and bash's terminal, mixed
};

// Runs ARGS on a new pseudo-terminal, types `input` into it, and collects
// everything until the terminal closes. The deadline only keeps a broken
// run from hanging the suite: nothing is measured.
PtyRun run_on_pty(std::vector<std::string> args, const std::string& input) {
  PtyRun r;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return r;
  if (pid == 0) {
    execv(args[0].c_str(), argv_of(args).data());
    _exit(127);
  }
  size_t typed = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, static_cast<short>(POLLIN | (typed < input.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 200) < 0 && errno != EINTR) break;
    if (p.revents & POLLIN) {
      char buf[4096];
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO: every process of the terminal is gone
      r.output.append(buf, static_cast<size_t>(n));
    } else if (p.revents & POLLOUT) {
      ssize_t n = write(master, input.data() + typed, input.size() - typed);
      if (n > 0) typed += static_cast<size_t>(n);
    } else if (p.revents & (POLLHUP | POLLERR)) {
      break;
    }
  }
  int st = 0;
  if (waitpid(pid, &st, WNOHANG) != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    r.output += "\n[killed after the deadline]\n";
  }
  close(master);
  r.status = exit_status(st);
  return r;
}

// bashreadline's events: "events: " then the pid (4 bytes) and the line
// with its NUL, in hex.
std::vector<std::pair<uint32_t, std::string>> readline_events(const std::string& out) {
  std::vector<std::pair<uint32_t, std::string>> ev;
  for (size_t at = out.find("events: "); at != std::string::npos; at = out.find("events: ", at + 1)) {
    size_t eol = out.find_first_of("\r\n", at);
    std::istringstream hex(out.substr(at + 8, eol == std::string::npos ? std::string::npos : eol - at - 8));
    std::vector<uint8_t> bytes;
    std::string tok;
    while (hex >> tok) bytes.push_back(static_cast<uint8_t>(std::stoul(tok, nullptr, 16)));
    if (bytes.size() < 5 || bytes.back() != 0) continue;
    uint32_t pid = 0;
    std::memcpy(&pid, bytes.data(), 4);
    ev.emplace_back(pid, std::string(bytes.begin() + 4, bytes.end() - 1));
  }
  return ev;
}

class BashReadline : public Examples {
 protected:
  void SetUp() override {
    Examples::SetUp();
    if (IsSkipped()) return;
    if (!std::filesystem::exists("/bin/bash")) GTEST_SKIP() << "no /bin/bash";
    auto sym = attach::symbol_file_offset("/bin/bash", "readline");
    if (!sym) GTEST_SKIP() << "/bin/bash has no readline symbol to probe: " << sym.error().message;
  }
  // `ember trace bashreadline.bpf.o -- bash -i`, typing `lines`; returns
  // the events and bash's pid as `ember trace` reported it.
  std::vector<std::pair<uint32_t, std::string>> type_into_bash(const std::string& lines, uint32_t* bash_pid,
                                                               std::string* output) {
    // No startup files, and a history file of the test's own: an
    // interactive bash writes its history at exit.
    setenv("HISTFILE", (dir_ + "/history").c_str(), 1);
    setenv("PS1", "$ ", 1);
    PtyRun r = run_on_pty(
        {EMBER_BIN, "trace", kOut + "/bashreadline.bpf.o", "--", "/bin/bash", "--norc", "--noprofile", "-i"},
        lines);
    unsetenv("HISTFILE");
    unsetenv("PS1");
    *output = r.output;
    EXPECT_EQ(r.status, 0) << r.output;
    size_t at = r.output.find("1 probes attached to pid ");
    EXPECT_NE(at, std::string::npos) << r.output;
    *bash_pid = at == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(r.output.substr(at + 25)));
    return readline_events(r.output);
  }
};

TEST_F(BashReadline, PrintsEachLineTypedIntoBash) {
  uint32_t pid = 0;
  std::string out;
  auto ev = type_into_bash("echo ember first line\necho 'second: ok'\nexit\n", &pid, &out);
  ASSERT_EQ(ev.size(), 3u) << out;
  EXPECT_EQ(ev[0].second, "echo ember first line");
  EXPECT_EQ(ev[1].second, "echo 'second: ok'");
  EXPECT_EQ(ev[2].second, "exit");
  for (auto& e : ev) EXPECT_EQ(e.first, pid) << "the pid is bash's";
  EXPECT_NE(out.find("ember first line\r\n"), std::string::npos) << "bash ran the line: " << out;
}

// A command that makes bash fork (any external program) must not take the
// probe out of bash itself: the forked child restores its copy of the text
// through its own /proc/self/mem, not the descriptor it inherited.
TEST_F(BashReadline, KeepsPrintingAfterACommandThatForks) {
  uint32_t pid = 0;
  std::string out;
  auto ev = type_into_bash("/bin/true\necho after\nexit\n", &pid, &out);
  ASSERT_EQ(ev.size(), 3u) << out;
  EXPECT_EQ(ev[0].second, "/bin/true");
  EXPECT_EQ(ev[1].second, "echo after");
  EXPECT_EQ(ev[2].second, "exit");
}

// ---- USDT: usdt_app's probes through libbpf's usdt.bpf.h ----

TEST_F(Examples, UsdtCountsAndTheSemaphore) {
#ifndef EMBER_USDT_APP
  GTEST_SKIP() << "usdt_app was not built: no <sys/sdt.h> (Debian: systemtap-sdt-dev)";
#else
  const std::string app = EMBER_USDT_APP;
  Outcome plain = run({app});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out,
            "usdt_app: 50 requests, 49960 bytes; the done probe's semaphore was zero (not traced)\n");

  Outcome r = trace({kOut + "/usdt_count.bpf.o", "--hist", "sizes", "-e",
                     "usdt:" + app + ":usdt_app:request=on_request", "-e",
                     "usdt:" + app + ":usdt_app:done=on_done", "--", app});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_NE(r.err.find("2 probes attached"), std::string::npos) << r.err;
  EXPECT_NE(
      r.out.find("usdt_app: 50 requests, 49960 bytes; the done probe's semaphore was raised (traced)\n"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("bpf_trace_printk: usdt_app says 50 requests, 49960 bytes\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("bpf_trace_printk: usdt_count saw 50 requests, 49960 bytes\n"), std::string::npos)
      << r.out;
  // 30 x 100, 10 x 600, 10 x 4096 bytes.
  EXPECT_EQ(hist_block(r.out, "sizes"), rows("sizes",
                                             {{6, "30       |****************************************|"},
                                              {9, "10       |*************                           |"},
                                              {12, "10       |*************                           |"}},
                                             12))
      << r.out;
#endif
}

}  // namespace
}  // namespace ember
