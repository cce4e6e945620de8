// Cost per hit of a probe program through the whole user-space path: the
// hook engine's inline entry hook or return hook, the probe runner, and a
// JIT-compiled program from tests/bpf/uprobe_bench.bpf.c (an empty one and a
// hash-map counter), and the runner alone without a hook, against the
// unprobed call. The table gives the median CPU ns per call and the same
// minus the unprobed call (the probe's cost). The kernel's uprobe on the
// same kind of function is bench/probe_bench.cpp's row.
//
// Rows: uprobe/ and uretprobe/ attach with HookOptions::function_entry, as
// `ember trace` does for uprobe/PATH:FUNC and uretprobe/PATH:FUNC (the
// trampolines preserve only the SysV ABI's live registers); the -full rows
// without it (the full save of an offset or a USDT site).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "attach/hooks.hpp"
#include "attach/probe_runner.hpp"
#include "ember/runtime.hpp"

extern "C" __attribute__((noipa, used)) long probe_program_target(long x) {
  asm volatile("");
  return x + 1;
}

namespace ember::bench {
namespace {

using attach::HookKind;

// The engine and the object live for the whole run (one hook engine per
// process).
struct Fixture {
  std::unique_ptr<attach::HookEngine> engine;
  Runtime rt{RuntimeOptions{.maps = {}, .publish = false, .trace_pipe_bytes = 0}};
  std::unique_ptr<Object> obj;
};

Fixture& fixture() {
  static Fixture* f = [] {
    auto* f = new Fixture();
    auto e = attach::HookEngine::create();
    auto o = Object::open_file(f->rt, std::string(EMBER_BENCH_BPF_DIR) + "/uprobe_bench.bpf.o");
    if (!e || !o || !(*o)->load()) {
      std::fprintf(stderr, "probe_program_bench: cannot set up: %s\n",
                   !e   ? e.error().message.c_str()
                   : !o ? o.error().message.c_str()
                        : "load failed");
      std::exit(1);
    }
    f->engine = std::move(*e);
    f->obj = std::move(*o);
    return f;
  }();
  return *f;
}

void run(benchmark::State& st, const char* prog, HookKind kind, bool probed, bool function_entry) {
  Fixture& f = fixture();
  std::unique_ptr<attach::ProbeRunner> runner;
  int id = -1;
  if (probed) {
    auto addr = reinterpret_cast<uintptr_t>(&probe_program_target);
    auto r = attach::ProbeRunner::create(*f.obj->prog(prog), {.cookie = 0, .func_ip = addr});
    if (!r) return st.SkipWithError(r.error().message.c_str());
    runner = std::move(*r);
    attach::HookOptions opts;
    opts.function_entry = function_entry;
    auto h = f.engine->attach(addr, kind, &attach::ProbeRunner::hook, runner.get(), opts);
    if (!h) return st.SkipWithError(h.error().message.c_str());
    id = *h;
  }
  long (*volatile fn)(long) = &probe_program_target;
  long x = 0;
  for (auto _ : st) benchmark::DoNotOptimize(x = fn(x));
  if (id >= 0) (void)f.engine->detach(id);
  if (runner && runner->errors()) st.SkipWithError(runner->first_error().c_str());
}

// The runner alone on a PtRegs (no hook): what the program run costs.
void runner_only(benchmark::State& st, const char* prog) {
  Fixture& f = fixture();
  auto r = attach::ProbeRunner::create(*f.obj->prog(prog), {});
  if (!r) return st.SkipWithError(r.error().message.c_str());
  attach::PtRegs regs{};
  for (auto _ : st) {
    (*r)->run(&regs);
    benchmark::ClobberMemory();
  }
}

class Table : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs)
      if (!r.error_occurred && (r.run_type != Run::RT_Aggregate || r.aggregate_name == "median"))
        medians_[r.run_name.function_name] = r.GetAdjustedCPUTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    double base = medians_["call/unprobed"];
    std::printf("\nmedian CPU ns per call; net = minus the unprobed call (%.2f ns)\n", base);
    for (auto& [name, ns] : medians_)
      if (name != "call/unprobed") std::printf("%-28s %8.2f ns  net %8.2f ns\n", name.c_str(), ns, ns - base);
    std::printf("targets: empty uprobe program < 30 ns net, uretprobe < 60 ns net\n");
  }

 private:
  std::map<std::string, double> medians_;
};

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  benchmark::Initialize(&argc, argv);
  const HookKind entry = HookKind::Entry, ret = HookKind::Return;
  benchmark::RegisterBenchmark("call/unprobed", run, "empty", entry, false, false);
  benchmark::RegisterBenchmark("runner-only/empty", runner_only, "empty");
  benchmark::RegisterBenchmark("runner-only/hash-counter", runner_only, "count");
  benchmark::RegisterBenchmark("uprobe/empty", run, "empty", entry, true, true);
  benchmark::RegisterBenchmark("uprobe/hash-counter", run, "count", entry, true, true);
  benchmark::RegisterBenchmark("uprobe-full/empty", run, "empty", entry, true, false);
  benchmark::RegisterBenchmark("uprobe-full/hash-counter", run, "count", entry, true, false);
  benchmark::RegisterBenchmark("uretprobe/empty", run, "empty", ret, true, true);
  benchmark::RegisterBenchmark("uretprobe/hash-counter", run, "count", ret, true, true);
  benchmark::RegisterBenchmark("uretprobe-full/empty", run, "empty", ret, true, false);
  benchmark::RegisterBenchmark("uretprobe-full/hash-counter", run, "count", ret, true, false);
  Table table;
  benchmark::RunSpecifiedBenchmarks(&table);
  benchmark::Shutdown();
  return 0;
}
