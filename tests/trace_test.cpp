// `ember trace` and its agent: the log2 histogram it prints on exit (BCC's
// layout); the agent attaching probes inside this process (exact counts,
// arguments, return values, bytes restored on detach); `ember trace` end to
// end on tests/attach/trace_workload.c: counts, return values, ring buffer
// events, bpf_printk, histogram, follow-forks on and off, the command's exit
// status, -p with ptrace injection, Ctrl-C, and bad input that leaves the
// command unstarted.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "attach/agent.hpp"
#include "attach/hooks.hpp"
#include "attach/symbols.hpp"
#include "cli/log2_hist.hpp"
#include "support/trace_harness.hpp"

extern "C" __attribute__((noinline)) long ember_trace_test_target(long a, long b, long c, long d, long e,
                                                                  long f) {
  __asm__ volatile("" ::: "memory");
  return a + b + c + d + e + f;
}

namespace ember::cli {
namespace {

using testing::read_all;
using testing::TraceRun;

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

// strlen is an IFUNC in glibc: its symbol is the resolver's, which runs
// once at relocation. The probe goes on the implementation calls reach
// (what dlsym resolves here), so it fires on every call; an offset into an
// IFUNC is refused.
TEST(Agent, AProbeOnAnIfuncHitsTheSelectedImplementation) {
  auto libc = attach::resolve_binary("libc.so.6");
  ASSERT_TRUE(libc) << libc.error().message;
  auto sym = attach::lookup_symbol(*libc, "strlen");
  ASSERT_TRUE(sym) << sym.error().message;
  if (!sym->ifunc) GTEST_SKIP() << *libc << ": strlen is not an IFUNC here";
  auto engine = attach::HookEngine::create();
  ASSERT_TRUE(engine) << engine.error().message;
  attach::AgentConfig cfg{
      .object_path = obj_path("uprobe_regs"),
      .probes = {"uprobe:libc.so.6:strlen=on_entry", "uretprobe:libc.so.6:strlen=on_return"},
      .socket_path = "/nonexistent"};
  auto a = attach::Agent::start(cfg, **engine, /*publish=*/false);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ((*a)->errors().size(), 0u) << (*a)->errors()[0];
  // libc's own strlen, resolved: in the sanitizer build RTLD_DEFAULT would
  // find ASan's interceptor in the executable, which calls libc's.
  void* libc_handle = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc_handle, nullptr);
  auto impl = reinterpret_cast<uintptr_t>(dlsym(libc_handle, "strlen"));
  dlclose(libc_handle);
  ASSERT_EQ((*a)->probes().size(), 2u);
  EXPECT_EQ((*a)->probes()[0].addr, impl) << "on the implementation, not on the resolver";
  size_t (*volatile call)(const char*) = &strlen;
  static const char text[] = "seventeen letters";
  RegsGlobals before, after;
  const void* bss = (*a)->object().global_data(".bss")->data();  // (its lookup calls strlen(".bss"))
  std::memcpy(&before, bss, sizeof before);
  size_t n = call(text);
  std::memcpy(&after, bss, sizeof after);
  ASSERT_TRUE((*a)->detach());
  EXPECT_EQ(n, 17u);
  EXPECT_GE(after.entries, before.entries + 1);
  EXPECT_GE(after.returns, before.returns + 1);
  EXPECT_EQ(after.args[0], reinterpret_cast<uint64_t>(text));
  EXPECT_EQ(after.ret, 17u);
  EXPECT_EQ(after.func_ip, impl);

  Runtime rt(RuntimeOptions{.maps = {}, .publish = false, .trace_pipe_bytes = 0});
  auto o = Object::open_file(rt, obj_path("uprobe_regs"));
  ASSERT_TRUE(o);
  ASSERT_TRUE((*o)->load());
  auto off = attach::bind_probes(
      **o, {"uprobe:libc.so.6:strlen+4=on_entry", "uretprobe:libc.so.6:strlen=on_return"});
  ASSERT_FALSE(off);
  EXPECT_NE(off.error().message.find("IFUNC"), std::string::npos) << off.error().message;
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

// `ember trace` runs in a private run directory (TraceDirTest).
class TraceE2E : public testing::TraceDirTest {};

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

// ---- events typed by BTF (tests/bpf/trace_events.bpf.c: struct event) ----

// The fields of struct event for the call ember_workload_target(a, 2, 3, 4, 5, 6).
std::string event_fields(int a) {
  char b[256];
  std::snprintf(b, sizeof b,
                "neg_a=%d sum=20 comm=\"trace_workload\" args={b=2 c=3} rest=[4,5,6] first=%s kind=%s low=%d "
                "high=%d where=0x1234",
                -a, a == 1 ? "true" : "false", a == 1 ? "KIND_FIRST" : "KIND_OTHER", a, a + 16);
  return b;
}

std::string event_json(int a) {
  char b[256];
  std::snprintf(
      b, sizeof b,
      "\"event\":{\"neg_a\":%d,\"sum\":20,\"comm\":\"trace_workload\",\"args\":{\"b\":2,\"c\":3},"
      "\"rest\":[4,5,6],\"first\":%s,\"kind\":\"%s\",\"low\":%d,\"high\":%d,\"where\":\"0x1234\"}}\n",
      -a, a == 1 ? "true" : "false", a == 1 ? "KIND_FIRST" : "KIND_OTHER", a, a + 16);
  return b;
}

// Where `line` (the text after "perf_events cpu N") is in out, for any N.
bool has_perf_line(const std::string& out, const std::string& rest) {
  for (size_t at = out.find("perf_events cpu "); at != std::string::npos;
       at = out.find("perf_events cpu ", at + 1)) {
    size_t colon = out.find(':', at);
    if (colon != std::string::npos && out.compare(colon, rest.size(), rest) == 0) return true;
  }
  return false;
}

TEST_F(TraceE2E, EventsPrintAsTypedRecords) {
  TraceRun r = trace(
      {obj_path("trace_events"), "-e", target_probe("uprobe", "on_call"), "--", kWorkload, "--calls", "5"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_NE(r.err.find("are printed as struct event"), std::string::npos) << r.err;
  for (int a = 1; a <= 3; ++a) {
    EXPECT_NE(("\n" + r.out).find("\nevents: " + event_fields(a) + "\n"), std::string::npos) << a << "\n"
                                                                                             << r.out;
    EXPECT_TRUE(has_perf_line(r.out, ": " + event_fields(a) + "\n")) << a << "\n" << r.out;
    char hex[128];
    std::snprintf(hex, sizeof hex,
                  "short_events: (short record: 8 bytes, struct event has 64) %02x 00 00 00 00 00 00 00\n",
                  a);
    EXPECT_NE(r.out.find(hex), std::string::npos) << hex << r.out;
  }
  EXPECT_EQ(r.out.find("neg_a=-4"), std::string::npos) << "only a <= 3 sends: " << r.out;

  // MAP=STRUCT for one map; the others keep struct event.
  TraceRun x = trace({obj_path("trace_events"), "--event-type", "events=args", "-e",
                      target_probe("uprobe", "on_call"), "--", kWorkload, "--calls", "1"});
  ASSERT_EQ(x.status, 0) << x.err << x.out;
  EXPECT_NE(("\n" + x.out).find("\nevents: b=4294967295 c=0\n"), std::string::npos)
      << "neg_a = -1, then padding\n"
      << x.out;
  EXPECT_TRUE(has_perf_line(x.out, ": " + event_fields(1) + "\n")) << x.out;
}

TEST_F(TraceE2E, EventsAsJson) {
  TraceRun r = trace({obj_path("trace_events"), "-j", "-e", target_probe("uprobe", "on_call"), "--",
                      kWorkload, "--calls", "2"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  for (int a = 1; a <= 2; ++a) {
    EXPECT_NE(r.out.find("{\"map\":\"events\"," + event_json(a)), std::string::npos) << a << "\n" << r.out;
    bool perf = false;
    for (size_t at = r.out.find("{\"map\":\"perf_events\",\"cpu\":"); at != std::string::npos && !perf;
         at = r.out.find("{\"map\":\"perf_events\",\"cpu\":", at + 1)) {
      size_t comma = r.out.find(',', at + 28);  // after "cpu":N
      perf = comma != std::string::npos && r.out.compare(comma + 1, event_json(a).size(), event_json(a)) == 0;
    }
    EXPECT_TRUE(perf) << a << "\n" << r.out;
    char hex[192];
    std::snprintf(hex, sizeof hex,
                  "{\"map\":\"short_events\",\"size\":8,\"data\":\"%02x00000000000000\",\"error\":\"short "
                  "record: 8 bytes, struct event has 64\"}\n",
                  a);
    EXPECT_NE(r.out.find(hex), std::string::npos) << hex << r.out;
  }
}

TEST_F(TraceE2E, EventTypeErrorsNameWhatWasAsked) {
  std::string marker = dir_ + "/started";
  struct Case {
    std::string option, says;
  };
  for (const Case& c : std::vector<Case>{
           {"no_such_struct", "--event-type no_such_struct: no struct or union 'no_such_struct'"},
           {"no_such_map=event",
            "--event-type no_such_map=event: " + obj_path("trace_events") + " has no map 'no_such_map'"},
           {"events=no_such_struct", "no struct or union 'no_such_struct'"},
       }) {
    TraceRun r = trace({obj_path("trace_events"), "--event-type", c.option, "-e",
                        target_probe("uprobe", "on_call"), "--", "/usr/bin/touch", marker});
    EXPECT_EQ(r.status, 1) << c.option << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(marker)) << "the command ran: " << c.option;
  }
  TraceRun usage = trace({obj_path("trace_events"), "--event-type"});
  EXPECT_EQ(usage.status, 2) << usage.err;
  EXPECT_NE(usage.err.find("--event-type needs a value"), std::string::npos) << usage.err;
}

// ---- lifecycle: detach, unload, attach again, a second session, fork and exec ----

using Workload = testing::LifecycleWorkload;
using testing::sum_of;

std::string lifecycle_probe(const std::string& kind, const std::string& prog) {
  return kind + ":" + std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_target=" + prog;
}

std::vector<std::string> lifecycle_args(pid_t pid) {
  return {obj_path("lifecycle"),
          "-e",
          lifecycle_probe("uprobe", "on_target"),
          "-e",
          lifecycle_probe("uretprobe", "on_target_ret"),
          "--interval",
          "100000",
          "-p",
          std::to_string(pid)};
}

// Lines of /proc/PID/maps naming an agent library (the agent or a copy).
std::vector<std::string> agent_mappings(pid_t pid) {
  std::istringstream maps(read_all("/proc/" + std::to_string(pid) + "/maps"));
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);)
    if (line.find("libember_agent") != std::string::npos) out.push_back(line);
  return out;
}

bool ptrace_refused(const std::string& err) {
  return err.find("ptrace") != std::string::npos || err.find("permission") != std::string::npos ||
         err.find("not permitted") != std::string::npos;
}

class TraceLifecycle : public TraceE2E {
 protected:
  // One `ember trace -p` session on w: attaches, runs `during`, Ctrl-C.
  // Sets skipped_ when ptrace is not permitted here. Each session needs a
  // tag of its own: a new run's output files are truncated only once it
  // started, and the last run's "probes attached" must not be read as its.
  TraceRun session(Workload& w, const std::function<void()>& during, const std::string& tag) {
    pid_t ember = start(lifecycle_args(w.pid()), nullptr, tag);
    if (!wait_for_err("probes attached", ember, tag)) {
      TraceRun r = finish(ember, tag);
      skipped_ = ptrace_refused(r.err);
      if (!skipped_) ADD_FAILURE() << "did not attach: " << r.err;
      return r;
    }
    during();
    kill(ember, SIGINT);
    return finish(ember, tag);
  }
  bool skipped_ = false;
};

// Each call counted once, under its first argument: keys a..a+n-1 and no other.
void expect_counted(const TraceRun& r, long a, long n) {
  auto calls = dumped("\n" + r.out, "calls");
  EXPECT_EQ(calls.size(), static_cast<size_t>(n)) << r.out << r.err;
  for (long i = a; i < a + n; ++i) EXPECT_EQ(u64_at(calls[static_cast<uint64_t>(i)], 0), 1u) << i;
}

// Probes hit only by threads that have ended: on detach the agent is
// unloaded (its hooks detached, its memory freed, dlclose'd), the target
// computes as before, and a second session starts afresh and counts right.
TEST_F(TraceLifecycle, DetachUnloadsTheAgentAndAttachingAgainCountsAfresh) {
  Workload w;
  ASSERT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
  for (long first : {10, 20}) {
    TraceRun r = session(
        w, [&] { EXPECT_EQ(w.ask("thread " + std::to_string(first) + " 5"), "thread " + sum_of(first, 5)); },
        std::to_string(first));
    if (skipped_) GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    EXPECT_EQ(r.status, 0) << r.err;
    expect_counted(r, first, 5);
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    EXPECT_TRUE(agent_mappings(w.pid()).empty()) << "session " << first << ": the agent is still mapped\n"
                                                 << r.err;
    // Unprobed again, it computes what it computed before.
    EXPECT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
    EXPECT_EQ(w.ask("thread 3 4"), "thread " + sum_of(3, 4));
  }
  int st = w.quit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// Executable mappings of pid, as "start-end perms path" lines: after a
// detach they must be those from before the first session (no agent, no
// trampolines, no JIT code left behind).
std::vector<std::string> code_mappings(pid_t pid) {
  std::istringstream maps(read_all("/proc/" + std::to_string(pid) + "/maps"));
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);) {
    std::istringstream f(line);
    std::string range, perms, offset, dev, inode, path;
    f >> range >> perms >> offset >> dev >> inode >> path;
    if (perms.size() > 2 && perms[2] == 'x') out.push_back(range + " " + perms + " " + path);
  }
  return out;
}

// The main thread ran the probes and lives on. Its per-thread state (hook
// engine, probe runners) is freed through pthread keys the agent deletes at
// unload, not thread_local destructors (for which glibc would keep the
// library mapped): the agent is unloaded, nothing of it stays mapped, the
// next session counts afresh and the target computes the same.
TEST_F(TraceLifecycle, AThreadThatRanAProbeLivesOnAndTheAgentIsUnloaded) {
  Workload w;
  ASSERT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
  const auto code_before = code_mappings(w.pid());
  for (long first : {50, 60}) {
    TraceRun r = session(
        w, [&] { EXPECT_EQ(w.ask("main " + std::to_string(first) + " 3"), "main " + sum_of(first, 3)); },
        std::to_string(first));
    if (skipped_) GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    EXPECT_EQ(r.status, 0) << r.err;
    expect_counted(r, first, 3);
    EXPECT_EQ(r.err.find("stays"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    EXPECT_TRUE(agent_mappings(w.pid()).empty()) << "session " << first << ": the agent is still mapped\n"
                                                 << r.err;
    EXPECT_EQ(code_mappings(w.pid()), code_before) << "session " << first << ": code left behind";
    EXPECT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
    EXPECT_EQ(w.ask("thread 3 4"), "thread " + sum_of(3, 4));
    // fork runs no handler of the unloaded agent (dlclose unregistered its
    // pthread_atfork handlers); the child and the exec'd image run.
    EXPECT_EQ(w.ask("forkexec 5 2 9"), "run " + sum_of(9, 2));
    EXPECT_EQ(w.ask(""), "child 0");
  }
  int st = w.quit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// A thread is inside a uretprobed function when the session ends: its
// return address leads through a trampoline into the agent. With every
// thread stopped the agent writes the original return address back, so
// the call returns straight to its caller (its return probe is lost with
// the session) and the agent is unloaded; the function returns its own
// value afterwards.
TEST_F(TraceLifecycle, AThreadInsideAUretprobedFunctionReturnsUnhookedAfterTheUnload) {
  Workload w;
  ASSERT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));  // running its own image
  const auto code_before = code_mappings(w.pid());
  pid_t ember =
      start({obj_path("lifecycle"), "-e", lifecycle_probe("uprobe", "on_target"), "-e",
             "uretprobe:" + std::string(EMBER_LIFECYCLE_WORKLOAD) + ":ember_workload_wait=on_target_ret",
             "--interval", "100000", "-p", std::to_string(w.pid())},
            nullptr, "u");
  if (!wait_for_err("probes attached", ember, "u")) {
    TraceRun r = finish(ember, "u");
    if (ptrace_refused(r.err)) GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    FAIL() << r.err;
  }
  EXPECT_EQ(w.ask("block"), "waiting 7");
  kill(ember, SIGINT);
  TraceRun r = finish(ember, "u");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("stays"), std::string::npos) << r.err;
  EXPECT_TRUE(agent_mappings(w.pid()).empty()) << "not unloaded: " << r.err;
  EXPECT_EQ(code_mappings(w.pid()), code_before) << "code left behind";
  EXPECT_EQ(w.ask("release"), "released " + std::to_string(7 + 'x'));
  EXPECT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
  EXPECT_EQ(w.ask("block"), "waiting 7");  // and again, unprobed
  EXPECT_EQ(w.ask("release"), "released " + std::to_string(7 + 'x'));
  int st = w.quit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// Ctrl-C while a thread calls the probed function (entry and return
// probes) in a tight loop: the hooks come out under it, its replaced return
// addresses are written back with every thread stopped, the agent is
// unloaded, every call returns its own value and the thread goes on; a
// second round does the same.
TEST_F(TraceLifecycle, DetachWhileAThreadHammersTheProbedFunction) {
  Workload w;
  ASSERT_EQ(w.ask("main 1 2"), "main " + sum_of(1, 2));
  const auto code_before = code_mappings(w.pid());
  for (long round : {70, 80}) {
    const std::string a = std::to_string(round);
    TraceRun r = session(
        w,
        [&] {
          EXPECT_EQ(w.ask("spin " + a), "spinning " + a);
          usleep(200 * 1000);
        },
        a);
    if (skipped_) GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    EXPECT_EQ(r.status, 0) << r.err;
    auto calls = dumped("\n" + r.out, "calls");
    EXPECT_GT(u64_at(calls[static_cast<uint64_t>(round)], 0), 0u) << r.out;
    EXPECT_EQ(r.err.find("stays"), std::string::npos) << r.err;
    EXPECT_TRUE(agent_mappings(w.pid()).empty()) << "round " << round << ": not unloaded\n" << r.err;
    EXPECT_EQ(code_mappings(w.pid()), code_before) << "round " << round << ": code left behind";
    EXPECT_EQ(w.ask("stop"), "stopped 1") << "a call returned a wrong value";
    EXPECT_EQ(w.ask("thread 3 4"), "thread " + sum_of(3, 4));
  }
  int st = w.quit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// A second `ember trace -p` on a process another session is attached to is
// refused with a clear error (two hook engines would patch the same code
// over each other); its agent copy is unloaded again and the first session
// goes on counting.
TEST_F(TraceLifecycle, ASecondSessionOnTheSameProcessIsRefused) {
  Workload w;
  pid_t first = start(lifecycle_args(w.pid()), nullptr, "a");
  if (!wait_for_err("probes attached", first, "a")) {
    TraceRun r = finish(first, "a");
    if (ptrace_refused(r.err)) GTEST_SKIP() << "ptrace is not allowed here: " << r.err;
    FAIL() << r.err;
  }
  TraceRun second = finish(start(lifecycle_args(w.pid()), nullptr, "b"), "b");
  EXPECT_EQ(second.status, 1) << second.err;
  EXPECT_NE(second.err.find("already traced by another ember trace"), std::string::npos) << second.err;
  auto maps = agent_mappings(w.pid());
  for (const auto& m : maps)
    EXPECT_EQ(m.find("libember_agent-"), std::string::npos) << "the refused copy stays: " << m;
  EXPECT_EQ(w.ask("thread 40 3"), "thread " + sum_of(40, 3));
  kill(first, SIGINT);
  TraceRun r = finish(first, "a");
  EXPECT_EQ(r.status, 0) << r.err;
  expect_counted(r, 40, 3);
  EXPECT_TRUE(agent_mappings(w.pid()).empty()) << r.err;
}

// The same for a command `ember trace` started with the agent preloaded:
// `ember trace -p` on it is refused while the first session runs.
TEST_F(TraceLifecycle, APreloadedSessionRefusesAnInjectedOne) {
  int in = -1;
  pid_t first = start(
      {obj_path("lifecycle"), "-e", lifecycle_probe("uprobe", "on_target"), "-e",
       lifecycle_probe("uretprobe", "on_target_ret"), "--interval", "100000", "--", EMBER_LIFECYCLE_WORKLOAD},
      &in, "a");
  ASSERT_TRUE(wait_for_err("probes attached to pid ", first, "a")) << read_all(dir_ + "/erra");
  std::string err = read_all(dir_ + "/erra");
  pid_t target = std::atoi(err.c_str() + err.find("probes attached to pid ") + 23);
  ASSERT_GT(target, 0) << err;
  TraceRun second = finish(start(lifecycle_args(target), nullptr, "b"), "b");
  if (ptrace_refused(second.err)) {
    close(in);
    finish(first, "a");
    GTEST_SKIP() << "ptrace is not allowed here: " << second.err;
  }
  EXPECT_EQ(second.status, 1) << second.err;
  EXPECT_NE(second.err.find("already traced by another ember trace"), std::string::npos) << second.err;
  std::string cmds = "thread 40 3\nquit\n";
  ASSERT_EQ(write(in, cmds.data(), cmds.size()), static_cast<ssize_t>(cmds.size()));
  close(in);
  TraceRun r = finish(first, "a");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("thread " + sum_of(40, 3) + "\n"), std::string::npos) << r.out;
  auto calls = dumped(r.out, "calls");
  EXPECT_EQ(calls.size(), 3u) << r.out;
  for (uint64_t i = 40; i < 43; ++i) EXPECT_EQ(u64_at(calls[i], 0), 1u) << i;
}

// fork then exec in a traced command: with --follow-forks the child is
// traced, and so is the program it execs, which loads the agent again and
// counts in maps of its own (printed after the target's: its calls are not
// in the target's); without --follow-forks the child is untouched and the
// exec'd image runs without the agent (which took itself out of the
// environment its children inherit). No crash, no hang; the command's
// status is ember's. More in trace_exec_test.cpp.
TEST_F(TraceLifecycle, ForkThenExecRunsTheNewImageUntraced) {
  for (bool follow : {false, true}) {
    std::vector<std::string> args{obj_path("uprobe_workload"),
                                  "-e",
                                  lifecycle_probe("uprobe", "on_target"),
                                  "-e",
                                  lifecycle_probe("uretprobe", "on_target_ret"),
                                  "--interval",
                                  "100000"};
    if (follow) args.push_back("--follow-forks");
    args.insert(args.end(), {"--", EMBER_LIFECYCLE_WORKLOAD});
    int in = -1;
    pid_t ember = start(args, &in);
    std::string cmds = "main 1 2\nforkexec 100 3 200\nmain 5 1\nquit\n";
    ASSERT_EQ(write(in, cmds.data(), cmds.size()), static_cast<ssize_t>(cmds.size()));
    close(in);
    TraceRun r = finish(ember);
    ASSERT_EQ(r.status, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("run " + sum_of(200, 3) + "\n"), std::string::npos)
        << "the exec'd image ran: " << r.out;
    EXPECT_NE(r.out.find("child 0\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("main " + sum_of(5, 1) + "\n"), std::string::npos) << r.out;
    auto calls = dumped(r.out, "calls");
    for (uint64_t i : {1, 2, 5}) EXPECT_EQ(u64_at(calls[i], 0), 1u) << i;
    for (uint64_t i = 100; i < 103; ++i)
      EXPECT_EQ(calls.count(i), follow ? 1u : 0u) << "follow " << follow << " " << i;
    for (uint64_t i = 200; i < 203; ++i)
      EXPECT_EQ(calls.count(i), 0u) << "the exec'd image counted in the target's maps: " << i;
    EXPECT_EQ(r.err.find("forked from") != std::string::npos, follow) << r.err;
    size_t own = r.out.find("\n# process ");
    EXPECT_EQ(own != std::string::npos, follow) << "the exec'd image's own maps\n" << r.out;
    if (own != std::string::npos) {
      auto execd = dumped(r.out.substr(own), "calls");
      for (uint64_t i = 200; i < 203; ++i) EXPECT_EQ(u64_at(execd[i], 0), 1u) << i;
    }
  }
}

}  // namespace
}  // namespace ember::cli
