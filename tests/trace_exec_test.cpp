// `ember trace --follow-forks` and exec: the programs a traced command
// execs (in a forked child, or in place of itself) get the agent again and
// are traced with the same object, each with maps of its own; without
// --follow-forks they run untraced. And Ctrl-C while `ember trace -p` is
// injecting its agent takes effect at once and leaves the target as it was.
//
// The commands: tests/attach/exec_workload.c (calls ember_exec_parent(1001..
// 1003) and strtol("7") four times, then forks and execs, or execs, another
// program) running tests/attach/lifecycle_workload.c (`--run B N`:
// ember_workload_target(B..B+N-1), atol twice (glibc's inline strtol),
// prints "run SUM").
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/trace_harness.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ember::testing::read_all;
using ember::testing::sum_of;
using ember::testing::TraceRun;

std::string obj_path(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

// The C library this process uses (the workloads use the same one).
std::string libc_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&strtol), &info) == 0 || !info.dli_fname) return "";
  return std::filesystem::canonical(info.dli_fname).string();
}

// The maps one process's section of the output dumps: "NAME:" then
// "key: .. value: .." lines, as little-endian numbers (first 8 bytes).
std::map<std::string, std::map<uint64_t, uint64_t>> parse_maps(const std::string& text) {
  std::map<std::string, std::map<uint64_t, uint64_t>> maps;
  std::istringstream in(text);
  std::string line, current;
  auto number = [](const std::string& bytes) {
    std::istringstream s(bytes);
    std::string tok;
    uint64_t v = 0;
    for (int i = 0; i < 8 && s >> tok; ++i) v |= uint64_t{std::stoul(tok, nullptr, 16)} << (8 * i);
    return v;
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == ':' && line.find(' ') == std::string::npos) {
      current = line.substr(0, line.size() - 1);
      maps[current];
    } else if (line.starts_with("key: ") && !current.empty()) {
      size_t v = line.find("value: ");
      if (v == std::string::npos) continue;
      maps[current][number(line.substr(5, v - 5))] = number(line.substr(v + 7));
    }
  }
  return maps;
}

// The output split by process: [0] the target's maps, then one section per
// exec'd program ("# process N (COMM), exec'd: its own maps").
std::vector<std::string> sections(const std::string& out) {
  std::vector<std::string> parts;
  const std::string head = "\n# process ";
  size_t at = 0;
  for (;;) {
    size_t next = out.find(head, at);
    parts.push_back(out.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) return parts;
    at = next + 1;
  }
}

// `returns` of tests/bpf/lifecycle.bpf.c: the first 8 bytes of its .bss.
uint64_t returns_counted(const std::map<std::string, std::map<uint64_t, uint64_t>>& maps) {
  for (const auto& [name, entries] : maps)
    if (name.ends_with(".bss") && !entries.empty()) return entries.begin()->second;
  return ~uint64_t{0};
}

class TraceExec : public ember::testing::TraceDirTest {
 protected:
  void SetUp() override {
    TraceDirTest::SetUp();
    if (IsSkipped()) return;
    libc_ = libc_path();
    ASSERT_FALSE(libc_.empty());
  }

  // The probes: a function of the exec_workload (attaches only there), one
  // of lifecycle_workload (only there), and strtol's return in libc (both:
  // their atol calls are glibc's inline strtol(s, NULL, 10)).
  std::vector<std::string> probe_args(bool follow) {
    std::vector<std::string> a{
        obj_path("lifecycle"),
        "-e",
        "uprobe:" + std::string(EMBER_EXEC_WORKLOAD) + ":ember_exec_parent=on_target",
        "-e",
        "uprobe:" + std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_target=on_target",
        "-e",
        "uretprobe:" + libc_ + ":strtol=on_target_ret",
        "--interval",
        "100000"};
    if (follow) a.push_back("--follow-forks");
    return a;
  }

  std::string libc_;
};

// The target's own work is counted in its maps whatever happens after.
void expect_parent_counted(const std::string& part, const std::string& err) {
  auto maps = parse_maps(part);
  const auto& calls = maps["calls"];
  EXPECT_EQ(calls.size(), 3u) << part << err;
  for (uint64_t i = 1001; i <= 1003; ++i) EXPECT_EQ(calls.count(i) ? calls.at(i) : 0, 1u) << i;
  EXPECT_EQ(returns_counted(maps), 4u) << "strtol's returns in the target\n" << part;
}

// The exec'd lifecycle_workload `--run B N`: its N calls and two strtol
// returns, in maps of its own.
void expect_exec_counted(const std::string& part, long first, long n) {
  auto maps = parse_maps(part);
  const auto& calls = maps["calls"];
  EXPECT_EQ(calls.size(), static_cast<size_t>(n)) << part;
  for (long i = first; i < first + n; ++i)
    EXPECT_EQ(calls.count(static_cast<uint64_t>(i)) ? calls.at(static_cast<uint64_t>(i)) : 0, 1u) << i;
  EXPECT_EQ(returns_counted(maps), 2u) << "strtol's returns in the exec'd program\n" << part;
}

TEST_F(TraceExec, AForkedChildsExecdProgramIsTracedOnlyWithFollowForks) {
  for (bool follow : {false, true}) {
    SCOPED_TRACE(follow ? "--follow-forks" : "without --follow-forks");
    auto args = probe_args(follow);
    args.insert(args.end(),
                {"--", EMBER_EXEC_WORKLOAD, "fork", EMBER_LIFECYCLE_WORKLOAD, "--run", "200", "3"});
    TraceRun r = finish(start(args));
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    // The exec'd program ran and computed as it would untraced.
    EXPECT_NE(r.out.find("run " + sum_of(200, 3) + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("child 0\n"), std::string::npos) << r.out;
    auto parts = sections(r.out);
    expect_parent_counted(parts[0], r.err);
    // The probe on the program not mapped in the target is reported, per process.
    EXPECT_NE(r.err.find("probe not attached: uprobe:" + std::string(EMBER_LIFECYCLE_WORKLOAD)),
              std::string::npos)
        << r.err;
    if (!follow) {
      EXPECT_EQ(parts.size(), 1u) << "an exec'd program was traced: " << r.out;
      EXPECT_EQ(r.err.find("exec'd"), std::string::npos) << r.err;
      continue;
    }
    ASSERT_EQ(parts.size(), 2u) << r.out << r.err;
    EXPECT_NE(parts[1].find("(lifecycle_workl), exec'd"), std::string::npos) << parts[1];
    expect_exec_counted(parts[1], 200, 3);
    EXPECT_NE(r.err.find("exec'd)"), std::string::npos)
        << r.err;  // "N probes attached to pid P (..., exec'd)"
    // There, the probe on the parent's executable cannot attach: said, not fatal.
    EXPECT_NE(r.err.find("(lifecycle_workl): probe not attached: uprobe:" + std::string(EMBER_EXEC_WORKLOAD)),
              std::string::npos)
        << r.err;
  }
}

// The target execs itself away (same pid): the session goes on with the new
// program (traced with --follow-forks), and its exit status is ember's.
TEST_F(TraceExec, TheTargetExecingKeepsTheSessionGoing) {
  for (bool follow : {false, true}) {
    SCOPED_TRACE(follow ? "--follow-forks" : "without --follow-forks");
    auto args = probe_args(follow);
    args.insert(args.end(),
                {"--", EMBER_EXEC_WORKLOAD, "exec", EMBER_LIFECYCLE_WORKLOAD, "--run", "300", "2"});
    TraceRun r = finish(start(args));
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("run " + sum_of(300, 2) + "\n"), std::string::npos) << r.out;
    auto parts = sections(r.out);
    expect_parent_counted(parts[0], r.err);
    if (!follow) {
      EXPECT_EQ(parts.size(), 1u) << r.out;
      continue;
    }
    ASSERT_EQ(parts.size(), 2u) << r.out << r.err;
    expect_exec_counted(parts[1], 300, 2);
  }
}

// The exec'd program's exit status reaches the parent unchanged, and an
// exec'd program's output is its own (nothing of the agent's in it).
TEST_F(TraceExec, TheExecdProgramsStatusAndOutputAreUnchanged) {
  auto args = probe_args(true);
  args.insert(args.end(), {"--", EMBER_EXEC_WORKLOAD, "exec", "/bin/sh", "-c", "echo from-sh; exit 7"});
  TraceRun r = finish(start(args));
  EXPECT_EQ(r.status, 7) << r.err << r.out;
  // The output: the shell's line, then the maps (--interval) and nothing else.
  EXPECT_TRUE(r.out.starts_with("from-sh\n")) << r.out;
  EXPECT_NE(r.err.find("exec'd)"), std::string::npos) << "the shell was traced: " << r.err;
}

// Nothing attaches in the target itself (a probe only on the program it
// execs): without --follow-forks that is an error (exit 1; the command runs
// on unprobed); with it the session goes on and the exec'd program is traced.
TEST_F(TraceExec, NothingAttachedInTheTargetFailsOnlyWithoutFollowForks) {
  for (bool follow : {false, true}) {
    SCOPED_TRACE(follow ? "--follow-forks" : "without --follow-forks");
    std::vector<std::string> args{
        obj_path("lifecycle"),
        "-e",
        "uprobe:" + std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_target=on_target",
        "-e",
        "uretprobe:" + std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_target=on_target_ret",
        "--interval",
        "100000"};
    if (follow) args.push_back("--follow-forks");
    args.insert(args.end(),
                {"--", EMBER_EXEC_WORKLOAD, "fork", EMBER_LIFECYCLE_WORKLOAD, "--run", "400", "2"});
    TraceRun r = finish(start(args));
    EXPECT_NE(r.out.find("run " + sum_of(400, 2) + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("child 0\n"), std::string::npos) << r.out;
    if (!follow) {
      EXPECT_EQ(r.status, 1) << r.err;
      EXPECT_NE(r.err.find("no probe could be attached to process"), std::string::npos) << r.err;
      continue;
    }
    EXPECT_EQ(r.status, 0) << r.err;
    auto parts = sections(r.out);
    ASSERT_EQ(parts.size(), 2u) << r.out << r.err;
    auto calls = parse_maps(parts[1])["calls"];
    EXPECT_EQ(calls.size(), 2u) << parts[1];
    EXPECT_EQ(calls[400], 1u) << parts[1];
  }
}

// `ember trace -p` on a process that then execs: the injected agent goes
// with the old program (an injected process's environment is its own, so
// the new program runs untraced, even with --follow-forks); the session
// ends saying so, and the new program computes as it would. (The exec'd
// program is a lifecycle_workload reading the same stdin: it still runs
// when ember sees the connection end.)
TEST_F(TraceExec, AnInjectedProcessThatExecsEndsTheSession) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t target = fork();
  if (target == 0) {
    int out = open((dir_ + "/target-out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(p[0], 0);
    dup2(out, 1);
    close(p[1]);
    execl(EMBER_EXEC_WORKLOAD, EMBER_EXEC_WORKLOAD, "wait-exec", EMBER_LIFECYCLE_WORKLOAD,
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[0]);
  auto args = probe_args(true);
  args.insert(args.end(), {"-p", std::to_string(target)});
  pid_t ember = start(args);
  while (read_all(dir_ + "/err").find("probes attached") == std::string::npos) {
    if (waitpid(ember, nullptr, WNOHANG) == ember) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(write(p[1], "x", 1), 1);
  TraceRun r = finish(ember);  // ends by itself once the target exec'd
  std::string cmds = "main 1 2\nquit\n";
  ASSERT_EQ(write(p[1], cmds.data(), cmds.size()), static_cast<ssize_t>(cmds.size()));
  close(p[1]);
  int st = 0;
  waitpid(target, &st, 0);
  if (r.err.find("not permitted") != std::string::npos || r.err.find("ptrace_scope") != std::string::npos)
    GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(read_all(dir_ + "/target-out"), "main " + sum_of(1, 2) + "\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("exec'd: the injected agent went with its old program"), std::string::npos) << r.err;
  auto parts = sections(r.out);
  EXPECT_EQ(parts.size(), 1u) << r.out;
  expect_parent_counted(parts[0], r.err);
}

// ---- Ctrl-C while `ember trace -p` injects ----

// A lifecycle_workload waiting for commands on a pipe.
using Target = ember::testing::LifecycleWorkload;

bool maps_agent(pid_t pid) {
  return read_all("/proc/" + std::to_string(pid) + "/maps").find("libember_agent") != std::string::npos;
}

// SIGINT right away, after 10, 20, 50 and 200 ms of `ember trace -p` (an
// injection takes ~30 ms here: the early ones land in it, the later ones in
// the session): it ends within a few seconds (before, an agent whose
// controller had stopped listening waited 10 s for a "go" that never came),
// the target still runs and answers right, and the agent is not in it any
// more. A session that got as far as attaching detaches and unloads as on
// any Ctrl-C.
TEST_F(TraceExec, CtrlCWhileInjectingEndsPromptlyAndLeavesTheTargetAsItWas) {
  for (int delay_ms : {0, 10, 20, 50, 200}) {
    SCOPED_TRACE("SIGINT after " + std::to_string(delay_ms) + " ms");
    Target t;
    ASSERT_EQ(t.ask("main 1 2"), "main " + sum_of(1, 2));
    std::string tag = std::to_string(delay_ms);
    const std::string fn = std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_target";
    std::vector<std::string> args{obj_path("lifecycle"),
                                  "-e",
                                  "uprobe:" + fn + "=on_target",
                                  "-e",
                                  "uretprobe:" + fn + "=on_target_ret",
                                  "-p",
                                  std::to_string(t.pid())};
    pid_t ember = start(args, nullptr, tag);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    auto sent = Clock::now();
    kill(ember, SIGINT);
    TraceRun r = finish(ember, tag);
    double took = std::chrono::duration<double>(Clock::now() - sent).count();
    if (r.err.find("not permitted") != std::string::npos || r.err.find("ptrace_scope") != std::string::npos)
      GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    EXPECT_LT(took, 5.0) << "ember trace took " << took << " s to end after SIGINT\n" << r.err;
    EXPECT_TRUE(r.status == 130 || r.status == 0) << r.status << " " << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    // The target computes as before, unprobed, and the agent is gone.
    EXPECT_EQ(t.ask("main 3 4"), "main " + sum_of(3, 4));
    EXPECT_FALSE(maps_agent(t.pid())) << r.err;
  }
}

}  // namespace
