// Ember's JIT against every peer on the same programs, in one run: the same
// algorithm as native C++ (-O2), Ember's interpreter (fast mode), the Linux
// kernel's JIT (BPF_PROG_TEST_RUN, real kernel maps), and DPDK's librte_bpf
// JIT. Every engine's result is checked against the C++ reference before it
// is timed; a disagreement is an error, not a number, and an engine that
// cannot run a program is a visible skip with the reason. Also times
// JitProgram::compile on a generated 10,000-slot program and on the largest
// bench program. At the end: a table of medians, ratios, geometric means and
// the targets.
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/jit.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "jit_programs.hpp"
#include "jit_report.hpp"
#include "native_programs.hpp"
#include "support/kernel_bpf.hpp"

#ifdef EMBER_HAVE_DPDK
#include <rte_bpf.h>
#include <rte_errno.h>
#endif

namespace ember::bench {
namespace {

// Runs per BPF_PROG_TEST_RUN: the kernel reports its average per run in
// whole nanoseconds, so a large repeat keeps the syscall out of the number.
constexpr uint32_t kKernelRepeat = 10000;
constexpr int kKernelIterations = 20;
constexpr size_t kGeneratedSlots = 10000;
constexpr double kCompileTargetNs = 2e6;

// Everything one program needs in every engine; lives until the end of main.
struct Loaded {
  JitBenchProgram spec;
  std::vector<MapPtr> maps;
  std::vector<testing::Fd> kernel_maps;
  std::vector<RawInsn> insns;  // Ember's bytecode: maps named by their Map*
  Program prog;
  HelperTable helpers;
  std::unique_ptr<Interpreter> interp;
  NativeFn native = nullptr;
  std::unique_ptr<JitProgram> jit;
  std::string jit_skip;
  std::unique_ptr<testing::KernelHarness> kernel;
  std::string kernel_skip;
#ifdef EMBER_HAVE_DPDK
  rte_bpf* dpdk = nullptr;
#endif
  std::string dpdk_skip = "built without DPDK (libdpdk-dev not found)";
};

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string wrong(const Loaded& l, const Result<uint64_t>& r) {
  return "wrong result: " + (r ? hex(*r) : r.error().message) + ", expected " + hex(l.spec.base.expected);
}

Map* map0(const Loaded& l) { return l.maps.empty() ? nullptr : l.maps[0].get(); }

void native_engine(benchmark::State& state, Loaded* l) {
  if (!l->native) return state.SkipWithError("no native version of this program");
  std::vector<uint8_t> mem = l->spec.base.mem;
  uint8_t* m = mem.data();
  Map* map = map0(*l);
  NativeFn fn = l->native;
  uint64_t first = fn(m, mem.size(), map);
  if (first != l->spec.base.expected) return state.SkipWithError(wrong(*l, first).c_str());
  for (auto _ : state) {
    benchmark::DoNotOptimize(fn);
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(fn(m, mem.size(), map));
  }
}

RunOptions fast_mode() {
  RunOptions o;
  o.checked = false;
  o.random_seed = 1;  // no clock read per run (no program here draws random numbers)
  return o;
}

void interp_engine(benchmark::State& state, Loaded* l) {
  std::vector<uint8_t> mem = l->spec.base.mem;
  RunOptions opts = fast_mode();
  auto first = l->interp->run(RunInput::memory(mem), opts);
  if (!first || *first != l->spec.base.expected) return state.SkipWithError(wrong(*l, first).c_str());
  for (auto _ : state) benchmark::DoNotOptimize(*l->interp->run(RunInput::memory(mem), opts));
}

void jit_engine(benchmark::State& state, Loaded* l) {
  if (!l->jit) return state.SkipWithError(l->jit_skip.c_str());
  std::vector<uint8_t> mem = l->spec.base.mem;
  // A JitRunner, as a probe or an application running one program many
  // times does: the per-run set-up is paid once (JitProgram::run pays it on
  // every call).
  JitRunner runner(*l->jit, fast_mode());
  const RunInput in = RunInput::memory(mem);
  auto first = runner.run(in);
  if (!first || *first != l->spec.base.expected) return state.SkipWithError(wrong(*l, first).c_str());
  for (auto _ : state) benchmark::DoNotOptimize(*runner.run(in));
}

// One compile (and the unmapping of its code) per iteration.
void compile_engine(benchmark::State& state, const Interpreter* interp) {
  JitOptions o;
  o.unsafe_unverified = true;
  for (auto _ : state) {
    auto j = JitProgram::compile(*interp, o);
    if (!j) return state.SkipWithError(j.error().message.c_str());
    benchmark::DoNotOptimize(j->code().data());
  }
}

// The kernel times itself: each iteration is one BPF_PROG_TEST_RUN of
// kKernelRepeat runs, and its iteration time is the kernel's per-run average.
void kernel_engine(benchmark::State& state, Loaded* l) {
  if (!l->kernel) return state.SkipWithError(l->kernel_skip.c_str());
  std::vector<uint8_t> mem = l->spec.base.mem;
  auto first = l->kernel->run_once(mem);
  if (!first || *first != l->spec.base.expected) return state.SkipWithError(wrong(*l, first).c_str());
  for (auto _ : state) {
    auto r = l->kernel->run(kKernelRepeat);
    if (!r) return state.SkipWithError(r.error().message.c_str());
    state.SetIterationTime(r->duration_ns * 1e-9);
  }
}

#ifdef EMBER_HAVE_DPDK
void dpdk_engine(benchmark::State& state, Loaded* l) {
  if (!l->dpdk) return state.SkipWithError(l->dpdk_skip.c_str());
  rte_bpf_jit j{};
  if (rte_bpf_get_jit(l->dpdk, &j) != 0 || !j.func) return state.SkipWithError("DPDK JIT unavailable");
  std::vector<uint8_t> mem = l->spec.base.mem;
  uint64_t first = j.func(mem.data());
  if (first != l->spec.base.expected) return state.SkipWithError(wrong(*l, first).c_str());
  for (auto _ : state) benchmark::DoNotOptimize(j.func(mem.data()));
}
#endif

// ---- loading ----

Status fill_ember(Loaded& l) {
  for (const BenchMap& bm : l.spec.maps) {
    auto m = Map::create(bm.spec);
    if (!m) return m.error();
    for (const auto& [k, v] : bm.entries)
      if (int e = (*m)->update(k.data(), v.data(), kBpfAny); e != 0)
        return fail(bm.spec.name, ": update failed: ", std::strerror(-e));
    l.maps.push_back(*m);
  }
  return ok_status();
}

Status fill_kernel(Loaded& l) {
  for (const BenchMap& bm : l.spec.maps) {
    LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = bm.spec.map_flags);
    int fd = bpf_map_create(static_cast<bpf_map_type>(bm.spec.type), bm.spec.name.c_str(), bm.spec.key_size,
                            bm.spec.value_size, bm.spec.max_entries, &o);
    if (fd < 0) return fail("kernel map ", bm.spec.name, ": ", std::strerror(errno));
    l.kernel_maps.emplace_back(fd);
    for (const auto& [k, v] : bm.entries)
      if (bpf_map_update_elem(fd, k.data(), v.data(), BPF_ANY) != 0)
        return fail("kernel map ", bm.spec.name, ": update failed: ", std::strerror(errno));
  }
  return ok_status();
}

void load_kernel(Loaded& l, const std::vector<RawInsn>& raw) {
  if (auto st = fill_kernel(l); !st) {
    l.kernel_skip = st.error().message;
    return;
  }
  std::vector<RawInsn> insns = raw;
  std::vector<uint64_t> fds;
  for (const auto& fd : l.kernel_maps) fds.push_back(static_cast<uint64_t>(fd.get()));
  patch_maps(insns, fds, 1 /* BPF_PSEUDO_MAP_FD */);
  auto k = testing::KernelHarness::load(insns, l.spec.base.mem);
  if (k)
    l.kernel = std::make_unique<testing::KernelHarness>(std::move(*k));
  else
    l.kernel_skip = k.error().message.substr(0, k.error().message.find('\n'));
}

void load_dpdk([[maybe_unused]] Loaded& l) {
#ifdef EMBER_HAVE_DPDK
  if (!l.spec.maps.empty()) {
    l.dpdk_skip = "needs a BPF map: librte_bpf has no map helpers";
    return;
  }
  if (l.spec.base.loops) {
    l.dpdk_skip = "DPDK's validator rejects loops";
    return;
  }
  rte_bpf_prm prm{};
  prm.ins = reinterpret_cast<const ebpf_insn*>(l.insns.data());
  prm.nb_ins = static_cast<uint32_t>(l.insns.size());
  prm.prog_arg.type = RTE_BPF_ARG_PTR;
  prm.prog_arg.size = l.spec.base.mem.size();
  l.dpdk = rte_bpf_load(&prm);
  if (!l.dpdk) l.dpdk_skip = std::string("rte_bpf_load failed: ") + std::strerror(rte_errno);
#endif
}

Status load_ember(Loaded& l) {
  if (auto st = fill_ember(l); !st) return st.error();
  std::vector<uint64_t> ptrs;
  for (const auto& m : l.maps) ptrs.push_back(reinterpret_cast<uint64_t>(m.get()));
  if (!patch_maps(l.insns, ptrs, 0)) return fail("a map placeholder names a map the program lacks");
  auto prog = decode(l.insns);
  if (!prog) return prog.error();
  l.prog = std::move(*prog);
  l.helpers = default_helper_table();
  auto interp = Interpreter::create(l.prog, l.helpers);
  if (!interp) return interp.error();
  l.interp = std::make_unique<Interpreter>(std::move(*interp));
  JitOptions o;
  o.unsafe_unverified = true;  // the programs are raw bytecode, not verified objects
  auto jit = JitProgram::compile(*l.interp, o);
  if (jit)
    l.jit = std::make_unique<JitProgram>(std::move(*jit));
  else
    l.jit_skip = jit.error().message;
  return ok_status();
}

Result<std::unique_ptr<Loaded>> load(JitBenchProgram spec, bool kernel_ok, const std::string& kernel_why) {
  auto l = std::make_unique<Loaded>();
  l->spec = std::move(spec);
  const std::string& name = l->spec.base.name;
  auto insns = assemble(l->spec.base.text);
  if (!insns) return fail(name, ": ", insns.error().message);
  l->insns = *insns;
  l->native = native_program(name);
  if (auto st = load_ember(*l); !st) return fail(name, ": ", st.error().message);
  l->kernel_skip = kernel_why;
  if (kernel_ok) load_kernel(*l, *insns);
  load_dpdk(*l);
  return l;
}

// ---- registration ----

const char* const kNative = "native";
const char* const kJit = "ember_jit";
const char* const kInterp = "ember";
const char* const kKernel = "kernel_jit";
const char* const kDpdk = "dpdk_jit";
const char* const kCompile = "compile";

void register_program(Loaded* l) {
  const std::string& n = l->spec.base.name;
  benchmark::RegisterBenchmark((n + "/" + kNative).c_str(), native_engine, l)->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark((n + "/" + kJit).c_str(), jit_engine, l)->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark((n + "/" + kInterp).c_str(), interp_engine, l)->Unit(benchmark::kNanosecond);
  // Fixed iterations: each one is kKernelRepeat runs, but its manual time
  // is one run's, which would make Google Benchmark's iteration estimate
  // kKernelRepeat times too high.
  benchmark::RegisterBenchmark((n + "/" + kKernel).c_str(), kernel_engine, l)
      ->UseManualTime()
      ->Iterations(kKernelIterations)
      ->Unit(benchmark::kNanosecond);
#ifdef EMBER_HAVE_DPDK
  benchmark::RegisterBenchmark((n + "/" + kDpdk).c_str(), dpdk_engine, l)->Unit(benchmark::kNanosecond);
#endif
}

// The compile-time rows: a generated program of kGeneratedSlots slots
// (checked to run like the interpreter first) and the largest program.
Result<std::unique_ptr<Loaded>> load_generated() {
  JitBenchProgram spec{{"", generated_program(kGeneratedSlots), std::vector<uint8_t>(8, 0), 0, false}, {}};
  auto insns = assemble(spec.base.text);
  if (!insns) return fail("generated program: ", insns.error().message);
  spec.base.name = "generated " + std::to_string(insns->size()) + " slots";
  auto l = std::make_unique<Loaded>();
  l->spec = std::move(spec);
  l->insns = std::move(*insns);
  if (auto st = load_ember(*l); !st) return fail("generated program: ", st.error().message);
  std::vector<uint8_t> mem = l->spec.base.mem;
  auto want = l->interp->run(RunInput::memory(mem), fast_mode());
  if (!want) return fail("generated program: ", want.error().message);
  if (!l->jit) return fail("generated program: the JIT failed: ", l->jit_skip);
  auto got = l->jit->run(RunInput::memory(mem), fast_mode());
  if (!got || *got != *want)
    return fail("generated program: the JIT returned ", got ? hex(*got) : got.error().message,
                ", the interpreter ", hex(*want));
  return l;
}

void register_compile(const std::vector<std::unique_ptr<Loaded>>& loaded, const Loaded& generated) {
  const Loaded* largest = loaded.front().get();
  for (const auto& l : loaded)
    if (l->insns.size() > largest->insns.size()) largest = l.get();
  for (const Loaded* l : {&generated, largest}) {
    std::string row = l == &generated
                          ? l->spec.base.name
                          : l->spec.base.name + " (" + std::to_string(l->insns.size()) + " slots)";
    benchmark::RegisterBenchmark((row + "/" + kCompile).c_str(), compile_engine, l->interp.get())
        ->Unit(benchmark::kMicrosecond);
  }
}

JitTableSpec table_spec(const std::string& generated_row) {
  JitTableSpec s;
  s.engines = {kNative, kJit, kInterp, kKernel, net_name(kKernel), kDpdk};
  s.kernel = kKernel;
  s.empty_row = "empty";
  s.ratios = {{kJit, kNative, "<= 1.3"},
              {kInterp, kJit, ""},
              {kKernel, kJit, "> 1"},
              {net_name(kKernel), kJit, "> 1"},
              {kDpdk, kJit, ">= 1.5"}};
  s.compile_engine = kCompile;
  s.compile_target_ns = kCompileTargetNs;
  s.compile_target_row = generated_row;
  return s;
}

// --dump-code=DIR: writes each program's native code as DIR/NAME.ember.bin
// (and NAME.dpdk.bin) for `objdump -D -b binary -mi386:x86-64`, then exits.
int dump_code(const std::vector<std::unique_ptr<Loaded>>& loaded, const std::string& dir) {
  auto write = [&](const std::string& name, const void* p, size_t n) {
    std::FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
    if (!f) return false;
    std::fwrite(p, 1, n, f);
    return std::fclose(f) == 0;
  };
  for (const auto& l : loaded) {
    const std::string& n = l->spec.base.name;
    if (l->jit && !write(n + ".ember.bin", l->jit->code().data(), l->jit->code().size()))
      return std::fprintf(stderr, "error: cannot write to %s\n", dir.c_str()), 1;
#ifdef EMBER_HAVE_DPDK
    rte_bpf_jit j{};
    if (l->dpdk && rte_bpf_get_jit(l->dpdk, &j) == 0 && j.func)
      write(n + ".dpdk.bin", reinterpret_cast<const void*>(j.func), j.sz);
#endif
  }
  return 0;
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  benchmark::Initialize(&argc, argv);
  std::string why;
  bool kernel_ok = ember::testing::kernel_bpf_available(&why);
  if (!kernel_ok) std::fprintf(stderr, "kernel peer skipped: %s\n", why.c_str());
  std::vector<std::unique_ptr<Loaded>> loaded;
  for (auto& spec : jit_bench_programs()) {
    auto l = load(std::move(spec), kernel_ok, why);
    if (!l) return std::fprintf(stderr, "error: %s\n", l.error().message.c_str()), 1;
    loaded.push_back(std::move(*l));
  }
  for (int a = 1; a < argc; ++a)
    if (std::strncmp(argv[a], "--dump-code=", 12) == 0) return dump_code(loaded, argv[a] + 12);
  for (auto& l : loaded) register_program(l.get());
  auto generated = load_generated();
  if (!generated) return std::fprintf(stderr, "error: %s\n", generated.error().message.c_str()), 1;
  register_compile(loaded, **generated);
  JitReporter reporter(table_spec((*generated)->spec.base.name));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
#ifdef EMBER_HAVE_DPDK
  for (auto& l : loaded)
    if (l->dpdk) rte_bpf_destroy(l->dpdk);
#endif
  return 0;
}
