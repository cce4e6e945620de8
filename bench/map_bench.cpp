// Map operations in Ember and in the kernel, side by side: from the host
// (Ember's Map API against the bpf() system call) and from a program (a
// loop of N helper calls, run by Ember's interpreter and by the kernel's
// JIT through BPF_PROG_TEST_RUN; the time per operation is the run's time
// divided by N).
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "support/kernel_bpf.hpp"
#include "table_reporter.hpp"

namespace ember::bench {
namespace {

constexpr uint32_t kEntries = 1024;  // keys 0..1023 are present
constexpr int kProgOps = 1000;       // helper calls per program run

struct MapCase {
  std::string name;
  MapType type;
  uint32_t key_size, value_size, flags;
};

const MapCase kCases[] = {
    {"hash", MapType::Hash, 4, 8, 0},
    {"array", MapType::Array, 4, 8, 0},
    {"lru_hash", MapType::LruHash, 4, 8, 0},
    {"lpm_trie", MapType::LpmTrie, 8, 8, map_flag::kNoPrealloc},
};

// Keys as each type wants them: u32 index, or an LPM key {prefixlen, addr}.
std::vector<uint8_t> key_for(const MapCase& c, uint32_t i) {
  std::vector<uint8_t> k(c.key_size);
  if (c.type == MapType::LpmTrie) {
    uint32_t plen = 32, addr = __builtin_bswap32(0x0A000000u + i);
    std::memcpy(k.data(), &plen, 4);
    std::memcpy(k.data() + 4, &addr, 4);
  } else {
    std::memcpy(k.data(), &i, 4);
  }
  return k;
}

struct Pair {
  MapCase c;
  MapPtr ember;
  testing::Fd kernel;
};

Result<Pair> make_pair(const MapCase& c, bool kernel_ok) {
  MapSpec s{c.name, c.type, c.key_size, c.value_size, kEntries, c.flags};
  auto m = Map::create(s);
  if (!m) return m.error();
  Pair p{c, *m, testing::Fd()};
  if (kernel_ok) {
    LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = c.flags);
    int fd = bpf_map_create(static_cast<bpf_map_type>(c.type), c.name.c_str(), c.key_size, c.value_size,
                            kEntries, &o);
    if (fd < 0) return fail("kernel map ", c.name, ": ", std::strerror(errno));
    p.kernel = testing::Fd(fd);
  }
  uint64_t v = 1;
  for (uint32_t i = 0; i < kEntries; ++i) {
    auto k = key_for(c, i);
    if (p.ember->update(k.data(), &v, kBpfAny) != 0) return fail(c.name, ": fill failed at ", i);
    if (p.kernel.get() >= 0 && bpf_map_update_elem(p.kernel.get(), k.data(), &v, BPF_ANY) != 0)
      return fail("kernel ", c.name, ": fill failed at ", i);
  }
  return p;
}

// ---- host side ----

enum class HostOp { Lookup, Update, DeleteInsert };

void host_ember(benchmark::State& st, Pair* p, HostOp op) {
  std::vector<std::vector<uint8_t>> keys;
  for (uint32_t i = 0; i < kEntries; ++i) keys.push_back(key_for(p->c, i));
  uint64_t v = 2;
  uint32_t i = 0;
  for (auto _ : st) {
    const uint8_t* k = keys[i++ % kEntries].data();
    if (op == HostOp::Lookup) benchmark::DoNotOptimize(p->ember->lookup(k, &v));
    if (op == HostOp::Update) benchmark::DoNotOptimize(p->ember->update(k, &v, kBpfAny));
    if (op == HostOp::DeleteInsert) {
      p->ember->erase(k);
      p->ember->update(k, &v, kBpfAny);
    }
  }
}

void host_kernel(benchmark::State& st, Pair* p, HostOp op) {
  std::vector<std::vector<uint8_t>> keys;
  for (uint32_t i = 0; i < kEntries; ++i) keys.push_back(key_for(p->c, i));
  uint64_t v = 2;
  uint32_t i = 0;
  int fd = p->kernel.get();
  for (auto _ : st) {
    const uint8_t* k = keys[i++ % kEntries].data();
    if (op == HostOp::Lookup) benchmark::DoNotOptimize(bpf_map_lookup_elem(fd, k, &v));
    if (op == HostOp::Update) benchmark::DoNotOptimize(bpf_map_update_elem(fd, k, &v, BPF_ANY));
    if (op == HostOp::DeleteInsert) {
      bpf_map_delete_elem(fd, k);
      bpf_map_update_elem(fd, k, &v, BPF_ANY);
    }
  }
}

// ---- program side ----

RawInsn insn(uint8_t op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  RawInsn r{op, 0, off, imm};
  r.set_regs(dst, src);
  return r;
}

// for (i = 0; i < kProgOps; i++) lookup (or update) key i % 1024; r0 = hits.
// The map is named by ld_imm64: a kernel map fd (pseudo 1) or Ember's Map*.
std::vector<RawInsn> loop_program(const MapCase& c, bool update, uint64_t map, bool kernel) {
  std::vector<RawInsn> p;
  p.push_back(insn(0xb7, 6, 0, 0, 0));     // r6 = 0
  p.push_back(insn(0xb7, 7, 0, 0, 0));     // r7 = 0
  p.push_back(insn(0x7a, 10, 0, -16, 2));  // *(u64 *)(r10 - 16) = 2: the value to store
  size_t loop = p.size();
  p.push_back(insn(0xbf, 1, 6, 0, 0));             // r1 = r6
  p.push_back(insn(0x57, 1, 0, 0, kEntries - 1));  // r1 &= 1023
  if (c.type == MapType::LpmTrie) {
    p.push_back(insn(0x62, 10, 0, -8, 32));  // prefixlen
    p.push_back(insn(0xdc, 1, 0, 0, 32));    // be32: the address in network order
    p.push_back(insn(0x47, 1, 0, 0, 0x0A));  // r1 |= 10 (after the swap: 10.x.y.z)
    p.push_back(insn(0x63, 10, 1, -4, 0));   // *(u32 *)(r10 - 4) = r1
  } else {
    p.push_back(insn(0x63, 10, 1, -8, 0));  // *(u32 *)(r10 - 8) = r1
  }
  p.push_back(insn(0x18, 1, kernel ? 1 : 0, 0, static_cast<int32_t>(static_cast<uint32_t>(map))));
  p.push_back(insn(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(map >> 32))));
  p.push_back(insn(0xbf, 2, 10, 0, 0));  // r2 = r10
  p.push_back(insn(0x07, 2, 0, 0, -8));  // r2 += -8
  if (update) {
    p.push_back(insn(0xbf, 3, 10, 0, 0));  // r3 = r10
    p.push_back(insn(0x07, 3, 0, 0, -16));
    p.push_back(insn(0xb7, 4, 0, 0, 0));
    p.push_back(insn(0x85, 0, 0, 0, 2));  // bpf_map_update_elem
    p.push_back(insn(0x55, 0, 0, 1, 0));  // if r0 != 0 goto +1
  } else {
    p.push_back(insn(0x85, 0, 0, 0, 1));  // bpf_map_lookup_elem
    p.push_back(insn(0x15, 0, 0, 1, 0));  // if r0 == 0 goto +1
  }
  p.push_back(insn(0x07, 7, 0, 0, 1));  // r7 += 1
  p.push_back(insn(0x07, 6, 0, 0, 1));  // r6 += 1
  p.push_back(insn(0xa5, 6, 0, static_cast<int16_t>(static_cast<int>(loop) - static_cast<int>(p.size()) - 1),
                   kProgOps));          // if r6 < kProgOps goto loop
  p.push_back(insn(0xbf, 0, 7, 0, 0));  // r0 = r7
  p.push_back(insn(0x95, 0, 0, 0, 0));
  return p;
}

struct ProgCase {
  Pair* pair;
  bool update;
  Program ember_code;
  std::unique_ptr<Interpreter> interp;
  testing::Fd kernel_prog;
};

void prog_ember(benchmark::State& st, ProgCase* pc) {
  RunOptions o;
  o.checked = false;
  uint64_t r0 = 0;
  for (auto _ : st) r0 = *pc->interp->run(RunInput{}, o);
  if (r0 != static_cast<uint64_t>(kProgOps)) st.SkipWithError("not every operation succeeded");
  st.SetItemsProcessed(st.iterations() * kProgOps);
  st.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(st.iterations()) * kProgOps,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void prog_kernel(benchmark::State& st, ProgCase* pc) {
  std::vector<uint8_t> packet(64);
  for (auto _ : st) {
    auto r = testing::kernel_test_run(pc->kernel_prog.get(), packet, 200);
    if (!r || r->retval != static_cast<uint32_t>(kProgOps)) {
      st.SkipWithError("kernel run failed");
      break;
    }
    st.SetIterationTime(r->duration_ns * 1e-9);
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember;
  using namespace ember::bench;
  benchmark::Initialize(&argc, argv);
  std::string why;
  bool kernel_ok = testing::kernel_bpf_available(&why);
  if (!kernel_ok) std::fprintf(stderr, "kernel peer skipped: %s\n", why.c_str());
  HelperTable helpers = default_helper_table();
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<ProgCase>> progs;
  for (const MapCase& c : kCases) {
    auto p = make_pair(c, kernel_ok);
    if (!p) {
      std::fprintf(stderr, "skipping %s: %s\n", c.name.c_str(), p.error().message.c_str());
      continue;
    }
    pairs.push_back(std::make_unique<Pair>(std::move(*p)));
    Pair* pp = pairs.back().get();
    struct {
      const char* row;
      HostOp op;
    } host_rows[] = {
        {"lookup", HostOp::Lookup}, {"update", HostOp::Update}, {"delete+insert", HostOp::DeleteInsert}};
    for (auto& h : host_rows) {
      if (h.op == HostOp::DeleteInsert && c.type == MapType::Array) continue;  // arrays cannot delete
      std::string row = c.name + " host " + h.row;
      benchmark::RegisterBenchmark((row + "/ember").c_str(), host_ember, pp, h.op)
          ->Unit(benchmark::kNanosecond);
      if (kernel_ok)
        benchmark::RegisterBenchmark((row + "/kernel").c_str(), host_kernel, pp, h.op)
            ->Unit(benchmark::kNanosecond);
    }
    for (bool update : {false, true}) {
      auto pc = std::make_unique<ProgCase>();
      pc->pair = pp;
      pc->update = update;
      auto code = decode(loop_program(c, update, reinterpret_cast<uint64_t>(pp->ember.get()), false));
      if (!code) return std::fprintf(stderr, "%s\n", code.error().message.c_str()), 1;
      pc->ember_code = std::move(*code);
      auto interp = Interpreter::create(pc->ember_code, helpers);
      if (!interp) return std::fprintf(stderr, "%s\n", interp.error().message.c_str()), 1;
      pc->interp = std::make_unique<Interpreter>(std::move(*interp));
      std::string row = c.name + " prog " + (update ? "update" : "lookup") + " x1000";
      benchmark::RegisterBenchmark((row + "/ember").c_str(), prog_ember, pc.get())
          ->Unit(benchmark::kNanosecond);
      if (kernel_ok) {
        auto insns = loop_program(c, update, static_cast<uint64_t>(pp->kernel.get()), true);
        auto fd = testing::kernel_load(1 /* socket filter */, insns);
        if (!fd) return std::fprintf(stderr, "%s\n", fd.error().message.c_str()), 1;
        pc->kernel_prog = std::move(*fd);
        benchmark::RegisterBenchmark((row + "/kernel").c_str(), prog_kernel, pc.get())
            ->UseManualTime()
            ->Iterations(20)
            ->Unit(benchmark::kNanosecond);
      }
      progs.push_back(std::move(pc));
    }
  }
  TableReporter reporter({"median ns per operation (host) or per run of 1000 operations (prog)",
                          {"ember", "kernel"},
                          "ember",
                          {"kernel"},
                          {}});
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
