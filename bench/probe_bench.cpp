// Cost per hit of a user-space probe: Ember's hook engine (inline and int3
// entry hooks, return hooks) against the kernel's uprobes and uretprobes
// (perf_event_open on /proc/self/exe at the function's file offset, an empty
// BPF_PROG_TYPE_KPROBE program; root only, skipped visibly otherwise), and
// the unprobed call. The table gives the median ns per call and the same
// minus the unprobed call (the probe's own cost).
//
// Extending: add a ProbeCase to cases() with a row, an engine and a setup
// that attaches and returns the teardown (e.g. a JIT-run BPF program as the
// HookFn); every case calls probe_target in the same loop.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "attach/hooks.hpp"
#include "support/kernel_bpf.hpp"

extern "C" __attribute__((noipa, used)) long probe_target(long x) {
  asm volatile("");
  return x + 1;
}

namespace ember::bench {
namespace {

using attach::HookEngine;
using attach::HookKind;
using attach::PtRegs;
using Teardown = std::function<void()>;

struct ProbeCase {
  std::string row;     // what is probed: "call", "uprobe-empty", ...
  std::string engine;  // who probes: "unprobed", "ember", "ember-int3", "kernel"
  std::function<Result<Teardown>()> setup;
};

void empty_hook(void*, PtRegs*) {}

HookEngine& engine() {
  static std::unique_ptr<HookEngine> e = [] {
    auto r = HookEngine::create();
    if (!r) {
      std::fprintf(stderr, "HookEngine::create: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    return std::move(*r);
  }();
  return *e;
}

// function_entry: probe_target's address is its symbol's, so the
// trampolines may save only the ABI's live registers (what `ember trace`
// asks for a uprobe/PATH:FUNC); false: the full save of an offset or USDT
// site.
Result<Teardown> ember_hooks(std::vector<HookKind> kinds, bool int3, bool function_entry = true) {
  std::vector<int> ids;
  attach::HookOptions opts;
  opts.force_int3 = int3;
  opts.function_entry = function_entry;
  for (HookKind k : kinds) {
    auto id = engine().attach(reinterpret_cast<uintptr_t>(&probe_target), k, empty_hook, nullptr, opts);
    if (!id) return id.error();
    ids.push_back(*id);
  }
  return Teardown([ids] {
    for (int id : ids) (void)engine().detach(id);
  });
}

// The file offset of probe_target in /proc/self/exe.
Result<uint64_t> self_offset(uintptr_t addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long s, e, off;
    if (sscanf(line.c_str(), "%lx-%lx %*s %lx", &s, &e, &off) == 3 && addr >= s && addr < e)
      return addr - s + off;
  }
  return fail("probe_target is not mapped");
}

Result<Teardown> kernel_probes(std::vector<bool> returns) {
  static const RawInsn prog[] = {{0xb7, 0, 0, 0}, {0x95, 0, 0, 0}};  // r0 = 0; exit
  auto fd = testing::kernel_load(2 /* BPF_PROG_TYPE_KPROBE */, prog);
  if (!fd) return fd.error();
  int type = 0;
  if (FILE* f = fopen("/sys/bus/event_source/devices/uprobe/type", "r")) {
    if (fscanf(f, "%d", &type) != 1) type = 0;
    fclose(f);
  }
  if (type == 0) return fail("no uprobe PMU in /sys/bus/event_source/devices/uprobe");
  auto off = self_offset(reinterpret_cast<uintptr_t>(&probe_target));
  if (!off) return off.error();
  static const char path[] = "/proc/self/exe";
  std::vector<int> events;
  for (bool ret : returns) {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = static_cast<uint32_t>(type);
    attr.config = ret ? 1 : 0;  // format/retprobe: config:0
    attr.config1 = reinterpret_cast<uint64_t>(path);
    attr.config2 = *off;
    int ev = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
    if (ev < 0) return fail("perf_event_open(uprobe): ", std::strerror(errno));
    if (ioctl(ev, PERF_EVENT_IOC_SET_BPF, fd->get()) != 0 || ioctl(ev, PERF_EVENT_IOC_ENABLE, 0) != 0)
      return fail("attaching the BPF program to the uprobe: ", std::strerror(errno));
    events.push_back(ev);
  }
  auto prog_fd = std::make_shared<testing::Fd>(std::move(*fd));
  return Teardown([events, prog_fd] {
    for (int ev : events) close(ev);
  });
}

std::vector<ProbeCase> cases(bool kernel_ok) {
  std::vector<ProbeCase> c = {
      {"call", "unprobed", [] { return Result<Teardown>(Teardown([] {})); }},
      {"uprobe-empty", "ember", [] { return ember_hooks({HookKind::Entry}, false); }},
      {"uprobe-empty", "ember-int3", [] { return ember_hooks({HookKind::Entry}, true); }},
      {"uretprobe-empty", "ember", [] { return ember_hooks({HookKind::Return}, false); }},
      {"uretprobe-empty", "ember-int3", [] { return ember_hooks({HookKind::Return}, true); }},
      {"both-empty", "ember",
       [] {
         return ember_hooks({HookKind::Entry, HookKind::Return}, false);
       }},
      {"uprobe-empty", "ember-full", [] { return ember_hooks({HookKind::Entry}, false, false); }},
      {"uretprobe-empty", "ember-full", [] { return ember_hooks({HookKind::Return}, false, false); }},
  };
  if (kernel_ok) {
    c.push_back({"uprobe-empty", "kernel", [] { return kernel_probes({false}); }});
    c.push_back({"uretprobe-empty", "kernel", [] { return kernel_probes({true}); }});
    c.push_back({"both-empty", "kernel", [] { return kernel_probes({false, true}); }});
  }
  return c;
}

void run_case(benchmark::State& st, const ProbeCase* pc) {
  auto teardown = pc->setup();
  if (!teardown) {
    st.SkipWithError(teardown.error().message.c_str());
    return;
  }
  long (*volatile fn)(long) = &probe_target;
  long x = 0;
  for (auto _ : st) benchmark::DoNotOptimize(x = fn(x));
  (*teardown)();
}

// Prints median ns per call and the same minus the unprobed call.
class ProbeTable : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred || (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median")) continue;
      std::string name = r.run_name.function_name;
      auto slash = name.find('/');
      medians_[name.substr(0, slash)][name.substr(slash + 1)] = r.GetAdjustedCPUTime();
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    double base = medians_["call"]["unprobed"];
    const char* engines[] = {"ember", "ember-full", "ember-int3", "kernel"};
    std::printf("\nmedian CPU ns per call (net: minus the unprobed call, %.2f ns)\n", base);
    std::printf("%-18s", "probe");
    for (const char* e : engines) std::printf("%14s %10s", e, "net");
    std::printf("\n");
    for (auto& [row, cols] : medians_) {
      if (row == "call") continue;
      std::printf("%-18s", row.c_str());
      for (const char* e : engines) {
        auto it = cols.find(e);
        if (it == cols.end())
          std::printf("%14s %10s", "-", "-");
        else
          std::printf("%14.2f %10.2f", it->second, it->second - base);
      }
      std::printf("\n");
    }
    std::printf(
        "targets (whole path incl. a JIT-run empty program): uprobe < 30 ns, uretprobe < 60 ns net\n");
  }

 private:
  std::map<std::string, std::map<std::string, double>> medians_;
};

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  benchmark::Initialize(&argc, argv);
  std::string why;
  bool kernel_ok = ember::testing::kernel_bpf_available(&why);
  if (!kernel_ok) std::fprintf(stderr, "kernel uprobes skipped: %s\n", why.c_str());
  static std::vector<ProbeCase> all = cases(kernel_ok);
  for (const ProbeCase& c : all) benchmark::RegisterBenchmark((c.row + "/" + c.engine).c_str(), run_case, &c);
  ProbeTable reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
