// `ember trace` and its agent: the log2 histogram it prints on exit (BCC's
// layout); the agent attaching probes inside this process (exact counts,
// arguments, return values, bytes restored on detach); `ember trace` end to
// end on tests/attach/trace_workload.c: counts, return values, ring buffer
// events, bpf_printk, histogram, follow-forks on and off, the command's exit
// status, -p with ptrace injection, Ctrl-C, and bad input that leaves the
// command unstarted.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "attach/agent.hpp"
#include "attach/hooks.hpp"
#include "cli/log2_hist.hpp"

extern "C" __attribute__((noinline)) long ember_trace_test_target(long a, long b, long c, long d, long e,
                                                                  long f) {
  __asm__ volatile("" ::: "memory");
  return a + b + c + d + e + f;
}

namespace ember::cli {
namespace {

TEST(Log2Hist, BccLayout) {
  const uint64_t slots[] = {3, 1, 0, 6};
  EXPECT_EQ(format_log2_hist(slots),
            "     value               : count     distribution\n"
            "         0 -> 1          : 3        |********************                    |\n"
            "         2 -> 3          : 1        |******                                  |\n"
            "         4 -> 7          : 0        |                                        |\n"
            "         8 -> 15         : 6        |****************************************|\n");
  EXPECT_EQ(format_log2_hist(std::vector<uint64_t>{0, 0}), "") << "nothing counted: nothing printed";
  EXPECT_EQ(format_log2_hist(std::vector<uint64_t>{}), "");
  const uint64_t one[] = {0, 2};
  EXPECT_EQ(format_log2_hist(one, "bytes"),
            "     bytes               : count     distribution\n"
            "         0 -> 1          : 0        |                                        |\n"
            "         2 -> 3          : 2        |****************************************|\n");
}

TEST(Log2Hist, WideSlotsWidenTheColumns) {
  std::vector<uint64_t> slots(41);
  slots[40] = 1;
  std::string h = format_log2_hist(slots);
  EXPECT_TRUE(h.starts_with("               value                         : count     distribution\n")) << h;
  EXPECT_NE(h.find("       1099511627776 -> 2199023255551        : 1        |********************|\n"),
            std::string::npos)
      << h;
}

MapPtr make_map(MapType type, uint32_t key_size, uint32_t value_size) {
  MapSpec spec;
  spec.name = "hist";
  spec.type = type;
  spec.key_size = key_size;
  spec.value_size = value_size;
  spec.max_entries = 64;
  auto m = Map::create(spec, MapOptions{.ncpus = 2});
  EXPECT_TRUE(m) << m.error().message;
  return *m;
}

TEST(Log2Hist, SlotsFromHashArrayAndPerCpuMaps) {
  auto hash = make_map(MapType::Hash, 4, 8);
  uint32_t k = 5;
  uint64_t v = 7;
  ASSERT_EQ(hash->update(&k, &v, 0), 0);
  k = 1, v = 2;
  ASSERT_EQ(hash->update(&k, &v, 0), 0);
  auto s = log2_slots(*hash);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, (std::vector<uint64_t>{0, 2, 0, 0, 0, 7}));

  auto arr = make_map(MapType::Array, 4, 4);
  uint32_t c = 9;
  k = 2;
  ASSERT_EQ(arr->update(&k, &c, 0), 0);
  s = log2_slots(*arr);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 64u);
  EXPECT_EQ((*s)[2], 9u);
  EXPECT_EQ((*s)[3], 0u);

  auto pc = make_map(MapType::PercpuArray, 4, 8);
  uint64_t per[2] = {4, 5};
  k = 3;
  ASSERT_EQ(pc->update(&k, per, 0), 0);
  s = log2_slots(*pc);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)[3], 9u) << "per-CPU counts are summed";
}

TEST(Log2Hist, RefusesMapsThatAreNoHistogram) {
  auto odd = make_map(MapType::Hash, 16, 8);
  auto s = log2_slots(*odd);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("'hist'"), std::string::npos) << s.error().message;
  auto big = make_map(MapType::Hash, 4, 8);
  uint32_t k = 1000;
  uint64_t v = 1;
  ASSERT_EQ(big->update(&k, &v, 0), 0);
  s = log2_slots(*big);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("1000"), std::string::npos) << s.error().message;
}

// ---- the agent in this process ----

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }
std::string obj_path(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

struct RegsGlobals {
  uint64_t args[6], ret, cookie, func_ip, sp, ip, entries, returns;
};

TEST(Agent, AttachesInThisProcessAndRestoresEveryByte) {
  auto engine = attach::HookEngine::create();
  ASSERT_TRUE(engine) << engine.error().message;
  auto fn = reinterpret_cast<const uint8_t*>(&ember_trace_test_target);
  std::vector<uint8_t> before(fn, fn + 16);
  std::string exe = self_exe();
  attach::AgentConfig cfg{.object_path = obj_path("uprobe_regs"),
                          .probes = {"uprobe:" + exe + ":ember_trace_test_target=on_entry",
                                     "uretprobe:" + exe + ":ember_trace_test_target=on_return"},
                          .socket_path = "/nonexistent"};
  auto a = attach::Agent::start(cfg, **engine, /*publish=*/false);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ((*a)->errors().size(), 0u) << (*a)->errors()[0];
  ASSERT_EQ((*a)->probes().size(), 2u);
  volatile long sink = 0;
  for (long i = 1; i <= 3; ++i) sink = sink + ember_trace_test_target(i, 2, 3, 4, 5, 6);
  RegsGlobals g;
  std::memcpy(&g, (*a)->object().global_data(".bss")->data(), sizeof g);
  EXPECT_EQ(g.entries, 3u);
  EXPECT_EQ(g.returns, 3u);
  EXPECT_EQ(g.args[0], 3u);
  EXPECT_EQ(g.args[1], 2u);
  EXPECT_EQ(g.args[5], 6u);
  EXPECT_EQ(g.ret, 23u);
  EXPECT_EQ(g.func_ip, reinterpret_cast<uint64_t>(&ember_trace_test_target));
  EXPECT_EQ(g.ip, reinterpret_cast<uint64_t>(&ember_trace_test_target));
  EXPECT_EQ(g.cookie, 0u);
  EXPECT_EQ((*a)->probes()[0].runner->hits(), 3u);
  ASSERT_TRUE((*a)->detach());
  EXPECT_EQ(std::vector<uint8_t>(fn, fn + 16), before) << "the function's bytes are back";
  sink = sink + ember_trace_test_target(9, 0, 0, 0, 0, 0);
  std::memcpy(&g, (*a)->object().global_data(".bss")->data(), sizeof g);
  EXPECT_EQ(g.entries, 3u) << "no run after detach";
  EXPECT_EQ(sink, 3 * 20 + 1 + 2 + 3 + 9);
}

TEST(Agent, BindingErrorsNameWhatWasAsked) {
  Runtime rt(RuntimeOptions{.maps = {}, .publish = false, .trace_pipe_bytes = 0});
  auto o = Object::open_file(rt, obj_path("uprobe_regs"));
  ASSERT_TRUE(o);
  ASSERT_TRUE((*o)->load());
  std::string exe = self_exe();
  auto unbound = attach::bind_probes(**o, {});
  ASSERT_FALSE(unbound);
  EXPECT_NE(unbound.error().message.find("on_entry"), std::string::npos) << unbound.error().message;
  EXPECT_NE(unbound.error().message.find("-e"), std::string::npos) << unbound.error().message;
  auto nosuch = attach::bind_probes(**o, {"uprobe:" + exe + ":no_such_function_xyz=on_entry",
                                          "uretprobe:" + exe + ":ember_trace_test_target=on_return"});
  ASSERT_FALSE(nosuch);
  EXPECT_NE(nosuch.error().message.find("no_such_function_xyz"), std::string::npos) << nosuch.error().message;
  auto nolib = attach::bind_probes(**o, {"uprobe:libno_such_lib.so.9:f=on_entry",
                                         "uretprobe:" + exe + ":ember_trace_test_target=on_return"});
  ASSERT_FALSE(nolib);
  EXPECT_NE(nolib.error().message.find("libno_such_lib.so.9"), std::string::npos) << nolib.error().message;
  auto noprog = attach::bind_probes(**o, {"uprobe:" + exe + ":ember_trace_test_target=nosuchprog"});
  ASSERT_FALSE(noprog);
  EXPECT_NE(noprog.error().message.find("nosuchprog"), std::string::npos) << noprog.error().message;

  auto plain = Object::open_file(rt, obj_path("hash_counter"));
  ASSERT_TRUE(plain);
  ASSERT_TRUE((*plain)->load());
  auto none = attach::bind_probes(**plain, {});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no probe programs"), std::string::npos) << none.error().message;
}

// ---- `ember trace` end to end ----

struct TraceRun {
  int status = -1;
  std::string out, err;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A private run directory, so that other Ember processes' maps never mix in.
class TraceE2E : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef EMBER_SANITIZED
    // The sanitizer build's agent carries ASan's runtime, which must be the
    // first library of a process and replaces its malloc: it cannot be
    // preloaded or injected into the traced commands. These tests run in
    // the release build.
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
    std::filesystem::remove_all(dir_);
  }

  // Starts `ember trace ARGS` with stdout and stderr in files and stdin
  // from a pipe (the command inherits it).
  pid_t start(const std::vector<std::string>& args, int* stdin_fd = nullptr) {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(p[0], 0);
      close(p[1]);
      int out = open((dir_ + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = open((dir_ + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
  TraceRun finish(pid_t pid) {
    TraceRun r;
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_all(dir_ + "/out");
    r.err = read_all(dir_ + "/err");
    return r;
  }
  TraceRun trace(const std::vector<std::string>& args) { return finish(start(args)); }
  // Waits (without a time limit of its own: the test's timeout is the limit)
  // until `ember trace`'s stderr holds `what`.
  bool wait_for_err(const std::string& what, pid_t ember) {
    while (read_all(dir_ + "/err").find(what) == std::string::npos) {
      if (waitpid(ember, nullptr, WNOHANG) == ember) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  std::string dir_;
};

const std::string kWorkload = EMBER_TRACE_WORKLOAD;
std::string target_probe(const std::string& kind, const std::string& prog) {
  return kind + ":" + kWorkload + ":ember_workload_target=" + prog;
}

// `key: 01 00 ..  value: 05 00 ..` lines of the map dump after "NAME:".
std::map<uint64_t, std::vector<uint8_t>> dumped(const std::string& out, const std::string& map) {
  std::map<uint64_t, std::vector<uint8_t>> m;
  size_t at = out.find("\n" + map + ":\n");
  if (at == std::string::npos) return m;
  std::istringstream in(out.substr(at + map.size() + 3));
  std::string line;
  while (std::getline(in, line) && line.starts_with("key: ")) {
    size_t v = line.find("value: ");
    std::istringstream ks(line.substr(5, v - 5)), vs(line.substr(v + 7));
    std::vector<uint8_t> key, value;
    std::string tok;
    while (ks >> tok) key.push_back(static_cast<uint8_t>(std::stoul(tok, nullptr, 16)));
    while (vs >> tok) value.push_back(static_cast<uint8_t>(std::stoul(tok, nullptr, 16)));
    uint64_t k = 0;
    std::memcpy(&k, key.data(), std::min<size_t>(8, key.size()));
    m[k] = value;
  }
  return m;
}

uint64_t u64_at(const std::vector<uint8_t>& v, size_t off) {
  uint64_t x = 0;
  if (v.size() >= off + 8) std::memcpy(&x, v.data() + off, 8);
  return x;
}

TEST_F(TraceE2E, CountsReturnsEventsPrintkAndHistogram) {
  TraceRun r = trace({obj_path("uprobe_workload"),
                      "-e",
                      target_probe("uprobe", "on_target"),
                      "-e",
                      target_probe("uretprobe", "on_target_ret"),
                      "--hist",
                      "sizes",
                      "--interval",
                      "100000",
                      "--",
                      kWorkload,
                      "--calls",
                      "5",
                      "--threads",
                      "3",
                      "--malloc",
                      "70000",
                      "5",
                      "--exit",
                      "7"});
  ASSERT_EQ(r.status, 7) << r.err << r.out;
  EXPECT_NE(r.err.find("3 probes attached"), std::string::npos) << r.err;
  auto calls = dumped(r.out, "calls");
  ASSERT_EQ(calls.size(), 20u) << r.out;
  for (uint64_t base : {0, 100, 200, 300})
    for (uint64_t i = 1; i <= 5; ++i) EXPECT_EQ(u64_at(calls[base + i], 0), 1u) << base + i;
  // .bss: returns, return_sum; every call returns a + 20.
  std::string bss_name;
  for (const char* n : {"uprobe_w.bss", ".bss"})
    if (r.out.find(std::string("\n") + n + ":\n") != std::string::npos) bss_name = n;
  auto bss = dumped(r.out, bss_name);
  ASSERT_EQ(bss.size(), 1u) << r.out;
  EXPECT_EQ(u64_at(bss[0], 0), 20u);
  // a = 1..5 in main, 100t+1..100t+5 in threads t = 1..3.
  EXPECT_EQ(u64_at(bss[0], 8), 15 * 4 + 500 * (1 + 2 + 3) + 20u * 20);
  for (int a = 1; a <= 3; ++a) {
    char line[128];
    std::snprintf(line, sizeof line, "events: %02x 00 00 00 00 00 00 00 14 00 00 00 00 00 00 00\n", a);
    EXPECT_NE(r.out.find(line), std::string::npos) << line << r.out;
  }
  EXPECT_NE(r.out.find("target called with a=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sizes:\n     value               : count     distribution\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("     65536 -> 131071     : 5        |"), std::string::npos) << r.out;
}

TEST_F(TraceE2E, JsonEventsAndTheCommandsExitStatus) {
  TraceRun r = trace({obj_path("uprobe_workload"), "-j", "-e", target_probe("uprobe", "on_target"), "-e",
                      target_probe("uretprobe", "on_target_ret"), "--", kWorkload, "--calls", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("{\"map\":\"events\",\"size\":16,\"data\":\"02000000000000001400000000000000\"}"),
            std::string::npos)
      << r.out;
}

TEST_F(TraceE2E, ForkedChildrenAreTracedOnlyWithFollowForks) {
  for (bool follow : {false, true}) {
    std::vector<std::string> args{obj_path("uprobe_workload"),
                                  "-e",
                                  target_probe("uprobe", "on_target"),
                                  "-e",
                                  target_probe("uretprobe", "on_target_ret"),
                                  "--interval",
                                  "100000"};
    if (follow) args.push_back("--follow-forks");
    for (const char* a : {"--", EMBER_TRACE_WORKLOAD, "--calls", "3", "--fork"}) args.push_back(a);
    TraceRun r = trace(args);
    ASSERT_EQ(r.status, 0) << r.err;
    auto calls = dumped(r.out, "calls");
    for (uint64_t i = 1; i <= 3; ++i) EXPECT_EQ(u64_at(calls[i], 0), 1u);
    for (uint64_t i = 1001; i <= 1003; ++i)
      EXPECT_EQ(calls.count(i), follow ? 1u : 0u) << "follow " << follow << " key " << i << "\n"
                                                  << r.out << r.err;
  }
}

TEST_F(TraceE2E, BadInputIsAnErrorAndTheCommandNeverStarts) {
  std::string marker = dir_ + "/started";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<Case> cases = {
      {{obj_path("uprobe_workload"), "-e", target_probe("uprobe", "on_target") + "x", "-e",
        "uprobe:" + kWorkload + ":no_such_fn=on_target_ret"},
       "no_such_fn"},
      {{obj_path("uprobe_workload"), "-e", "uprobe:libno_such_lib.so.3:f=on_target", "-e",
        target_probe("uretprobe", "on_target_ret")},
       "libno_such_lib.so.3"},
      {{obj_path("hash_counter")}, "no probe programs"},
      {{obj_path("uprobe_workload"), "-e", "bogus", "-e", target_probe("uretprobe", "on_target_ret")},
       "bogus"},
      {{obj_path("uprobe_workload")}, "on_target"},
      {{dir_ + "/no_such.bpf.o"}, "no_such.bpf.o"},
  };
  for (auto& c : cases) {
    c.args.insert(c.args.end(), {"--", "/usr/bin/touch", marker});
    TraceRun r = trace(c.args);
    EXPECT_EQ(r.status, 1) << c.says << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(marker)) << "the command ran: " << c.says;
  }
  TraceRun usage = trace({obj_path("uprobe_workload")});
  EXPECT_EQ(usage.status, 2) << usage.err;
  TraceRun gone =
      trace({obj_path("uprobe_workload"), "-e", target_probe("uprobe", "on_target"), "-p", "999999999"});
  EXPECT_EQ(gone.status, 1) << gone.err;
}

TEST_F(TraceE2E, CtrlCDetachesAndTheCommandGoesOnUnprobed) {
  int in = -1;
  pid_t ember = start({obj_path("uprobe_workload"), "-e", target_probe("uprobe", "on_target"), "-e",
                       target_probe("uretprobe", "on_target_ret"), "--", kWorkload, "--wait", "--calls", "4"},
                      &in);
  ASSERT_TRUE(wait_for_err("probes attached", ember)) << read_all(dir_ + "/err");
  kill(ember, SIGINT);
  // The command is not in a terminal's process group here: it did not get
  // the SIGINT, so it outlives `ember trace`, which says so.
  TraceRun r = finish(ember);
  EXPECT_EQ(r.status, 130) << r.err;
  EXPECT_NE(r.err.find("keeps running"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("on_target (pid"), std::string::npos) << "the detach reported its stats: " << r.err;
  // Unprobed now, the command runs its calls and exits normally.
  ASSERT_EQ(write(in, "x", 1), 1);
  close(in);
}

TEST_F(TraceE2E, AttachesToARunningProcessWithPtrace) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t target = fork();
  if (target == 0) {
    dup2(p[0], 0);
    close(p[1]);
    execl(EMBER_TRACE_WORKLOAD, EMBER_TRACE_WORKLOAD, "--wait", "--calls", "6", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[0]);
  pid_t ember = start({obj_path("uprobe_workload"), "-e", target_probe("uprobe", "on_target"), "-e",
                       target_probe("uretprobe", "on_target_ret"), "--interval", "100000", "-p",
                       std::to_string(target)});
  bool attached = wait_for_err("probes attached", ember);
  if (!attached) {
    TraceRun r = finish(ember);
    kill(target, SIGKILL);
    waitpid(target, nullptr, 0);
    if (r.err.find("ptrace") != std::string::npos || r.err.find("permission") != std::string::npos ||
        r.err.find("not permitted") != std::string::npos)
      GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    FAIL() << r.err;
  }
  ASSERT_EQ(write(p[1], "x", 1), 1);
  close(p[1]);
  int st = 0;
  waitpid(target, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  TraceRun r = finish(ember);
  EXPECT_EQ(r.status, 0) << r.err;
  auto calls = dumped(r.out, "calls");
  EXPECT_EQ(calls.size(), 6u) << r.out << r.err;
  for (uint64_t i = 1; i <= 6; ++i) EXPECT_EQ(u64_at(calls[i], 0), 1u);
}

}  // namespace
}  // namespace ember::cli
