// Ember's interpreter against its peers on the same bytecode, in one run:
// DPDK's librte_bpf (interpreter, and its JIT for reference) and the Linux
// kernel (BPF_PROG_TEST_RUN, JIT on). Every engine's result is checked
// against the C++ reference before it is timed; a disagreement is an error,
// not a number. At the end a table of medians and ratios is printed.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "programs.hpp"
#include "support/kernel_bpf.hpp"
#include "table_reporter.hpp"

#ifdef EMBER_HAVE_DPDK
#include <rte_bpf.h>
#endif

namespace ember::bench {
namespace {

constexpr uint32_t kKernelRepeat = 1000;

// Everything one program needs in every engine; lives until the end of main.
struct Loaded {
  BenchProgram spec;
  std::vector<RawInsn> insns;
  Program prog;
  HelperTable helpers;
  std::unique_ptr<Interpreter> interp;
  std::unique_ptr<testing::KernelHarness> kernel;
  std::string kernel_skip;
#ifdef EMBER_HAVE_DPDK
  rte_bpf* dpdk = nullptr;
#endif
  std::string dpdk_skip;
};

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

void ember_engine(benchmark::State& state, Loaded* l, bool checked) {
  std::vector<uint8_t> mem = l->spec.mem;
  RunOptions opts;
  opts.checked = checked;
  auto first = l->interp->run(RunInput::memory(mem), opts);
  if (!first || *first != l->spec.expected)
    return state.SkipWithError(("wrong result: " + (first ? hex(*first) : first.error().message)).c_str());
  for (auto _ : state) benchmark::DoNotOptimize(*l->interp->run(RunInput::memory(mem), opts));
}

#ifdef EMBER_HAVE_DPDK
void dpdk_engine(benchmark::State& state, Loaded* l, bool jit) {
  if (!l->dpdk) return state.SkipWithError(l->dpdk_skip.c_str());
  std::vector<uint8_t> mem = l->spec.mem;
  rte_bpf_jit j{};
  if (jit && (rte_bpf_get_jit(l->dpdk, &j) != 0 || !j.func))
    return state.SkipWithError("DPDK JIT unavailable");
  auto once = [&] { return jit ? j.func(mem.data()) : rte_bpf_exec(l->dpdk, mem.data()); };
  uint64_t first = once();
  if (first != l->spec.expected) return state.SkipWithError(("wrong result: " + hex(first)).c_str());
  for (auto _ : state) benchmark::DoNotOptimize(once());
}
#endif

// The kernel times itself: each iteration is one BPF_PROG_TEST_RUN of
// kKernelRepeat runs, and its iteration time is the kernel's per-run average.
void kernel_engine(benchmark::State& state, Loaded* l) {
  if (!l->kernel) return state.SkipWithError(l->kernel_skip.c_str());
  std::vector<uint8_t> mem = l->spec.mem;
  auto first = l->kernel->run_once(mem);
  if (!first || *first != l->spec.expected)
    return state.SkipWithError(("wrong result: " + (first ? hex(*first) : first.error().message)).c_str());
  for (auto _ : state) {
    auto r = l->kernel->run(kKernelRepeat);
    if (!r) return state.SkipWithError(r.error().message.c_str());
    state.SetIterationTime(r->duration_ns * 1e-9);
  }
}

Result<std::unique_ptr<Loaded>> load(BenchProgram spec, bool kernel_ok, const std::string& kernel_why) {
  auto l = std::make_unique<Loaded>();
  l->spec = std::move(spec);
  auto insns = assemble(l->spec.text);
  if (!insns) return fail(l->spec.name, ": ", insns.error().message);
  l->insns = std::move(*insns);
  auto prog = decode(l->insns);
  if (!prog) return fail(l->spec.name, ": ", prog.error().message);
  l->prog = std::move(*prog);
  l->helpers = default_helper_table();
  auto interp = Interpreter::create(l->prog, l->helpers);
  if (!interp) return fail(l->spec.name, ": ", interp.error().message);
  l->interp = std::make_unique<Interpreter>(std::move(*interp));
  l->kernel_skip = kernel_why;
  if (kernel_ok) {
    auto k = testing::KernelHarness::load(l->insns, l->spec.mem);
    if (k)
      l->kernel = std::make_unique<testing::KernelHarness>(std::move(*k));
    else
      l->kernel_skip = k.error().message;
  }
#ifdef EMBER_HAVE_DPDK
  rte_bpf_prm prm{};
  prm.ins = reinterpret_cast<const ebpf_insn*>(l->insns.data());
  prm.nb_ins = static_cast<uint32_t>(l->insns.size());
  prm.prog_arg.type = RTE_BPF_ARG_PTR;
  prm.prog_arg.size = l->spec.mem.size();
  l->dpdk = rte_bpf_load(&prm);
  if (!l->dpdk) l->dpdk_skip = l->spec.loops ? "DPDK's validator rejects loops" : "rte_bpf_load failed";
#else
  l->dpdk_skip = "built without DPDK (libdpdk-dev not found)";
#endif
  return l;
}

const char* const kEngines[] = {"ember", "ember_checked", "dpdk", "dpdk_jit", "kernel_jit"};

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  benchmark::Initialize(&argc, argv);
  std::string why;
  bool kernel_ok = ember::testing::kernel_bpf_available(&why);
  if (!kernel_ok) std::fprintf(stderr, "kernel peer skipped: %s\n", why.c_str());
  std::vector<std::unique_ptr<Loaded>> loaded;
  for (auto& spec : bench_programs()) {
    auto l = load(std::move(spec), kernel_ok, why);
    if (!l) {
      std::fprintf(stderr, "error: %s\n", l.error().message.c_str());
      return 1;
    }
    loaded.push_back(std::move(*l));
  }
  for (auto& lp : loaded) {
    Loaded* l = lp.get();
    const std::string& n = l->spec.name;
    benchmark::RegisterBenchmark((n + "/ember").c_str(), ember_engine, l, false)
        ->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark((n + "/ember_checked").c_str(), ember_engine, l, true)
        ->Unit(benchmark::kNanosecond);
#ifdef EMBER_HAVE_DPDK
    if (!l->spec.loops) {
      benchmark::RegisterBenchmark((n + "/dpdk").c_str(), dpdk_engine, l, false)
          ->Unit(benchmark::kNanosecond);
      benchmark::RegisterBenchmark((n + "/dpdk_jit").c_str(), dpdk_engine, l, true)
          ->Unit(benchmark::kNanosecond);
    }
#endif
    benchmark::RegisterBenchmark((n + "/kernel_jit").c_str(), kernel_engine, l)
        ->UseManualTime()
        ->Iterations(100)
        ->Unit(benchmark::kNanosecond);
  }
  TableReporter reporter(
      {"median ns per run", {kEngines, kEngines + 5}, "ember", {"dpdk", "kernel_jit"}, {"empty"}});
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
#ifdef EMBER_HAVE_DPDK
  for (auto& l : loaded)
    if (l->dpdk) rte_bpf_destroy(l->dpdk);
#endif
  return 0;
}
