// The x86-64 JIT against the references: the bpf_conformance suite, the
// interpreter's fast mode on the clang-built corpus and on random programs
// (differential fuzzing), and the code memory's W^X and constant blinding.
#include "ember/jit.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "ember/asm.hpp"
#include "ember/runtime.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"
#include "support/conformance_data.hpp"
#include "support/random_programs.hpp"
#include "verifier/prog_type_rules.hpp"

namespace ember {
namespace {

RunOptions fast_options() {
  RunOptions o;
  o.checked = false;
  o.random_seed = 42;
  return o;
}

// ---- the conformance suite ----

TEST(Jit, ConformanceSuite) {
  auto files = testing::conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  const HelperTable helpers = conformance_helper_table();
  int passed = 0, verified = 0;
  for (const auto& file : files) {
    auto c = testing::read_conformance_case(file);
    ASSERT_TRUE(c) << c.error().message;
    auto insns = testing::conformance_program(*c);
    ASSERT_TRUE(insns) << c->name << ": " << insns.error().message;
    auto prog = decode(*insns);
    auto interp = prog ? Interpreter::create(*prog, helpers) : Result<Interpreter>(prog.error());
    if (!interp) {
      if (!c->error.empty()) {
        ++passed;  // an expected rejection, before the JIT
        continue;
      }
      ADD_FAILURE() << c->name << ": rejected: " << interp.error().message;
      continue;
    }
    VerifyInput vin;
    vin.mem_size = static_cast<int64_t>(c->mem.size());
    vin.helpers = &helpers;
    bool ok = verify(*prog, vin).ok;
    verified += ok;
    JitOptions jo;
    jo.unsafe_unverified = !ok;
    auto jit = JitProgram::compile(*interp, jo);
    if (!jit) {
      ADD_FAILURE() << c->name << ": JIT refused: " << jit.error().message;
      continue;
    }
    std::vector<uint8_t> mem = c->mem;
    auto r0 = jit->run(RunInput::memory(mem), fast_options());
    if (!r0) {
      ADD_FAILURE() << c->name << ": run failed: " << r0.error().message;
      continue;
    }
    if (!c->result || *r0 != *c->result) {
      ADD_FAILURE() << c->name << ": r0 = 0x" << std::hex << *r0 << ", expected 0x" << c->result.value_or(0);
      continue;
    }
    // A JitRunner, reused: the second run must not see the first's state.
    JitRunner runner(*jit, fast_options());
    bool runner_ok = true;
    for (int round = 0; round < 2 && runner_ok; ++round) {
      std::vector<uint8_t> m = c->mem;
      auto again = runner.run(RunInput::memory(m));
      runner_ok = again && *again == *c->result;
      if (!runner_ok)
        ADD_FAILURE() << c->name << ": JitRunner run " << round << ": "
                      << (again ? "r0 differs" : again.error().message);
    }
    if (!runner_ok) continue;
    ++passed;
  }
  std::printf("conformance (JIT): %d/%zu passed, %d compiled as verified\n", passed, files.size(), verified);
  EXPECT_EQ(passed, static_cast<int>(files.size()));
}

// ---- corner cases of ALU and jumps, against the interpreter ----

RawInsn slot(uint8_t opcode, int dst, int src, int off, int32_t imm) {
  RawInsn r;
  r.opcode = opcode;
  r.set_regs(static_cast<uint8_t>(dst), static_cast<uint8_t>(src));
  r.off = static_cast<int16_t>(off);
  r.imm = imm;
  return r;
}

void push_lddw(std::vector<RawInsn>& v, int dst, uint64_t value) {
  v.push_back(slot(0x18, dst, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(value))));
  v.push_back(slot(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(value >> 32))));
}

// Straight-line programs (forward jumps only) of ALU and jump instructions
// on values at the edges: INT_MIN, -1, shifts by 0/31/32/63/64, division by
// 0 and -1, 32-bit operations on 64-bit values; ld_abs/ld_ind at the
// packet's bounds. They need no verifier: they touch no memory but the
// packet, and they end.
class CornerCaseGenerator {
 public:
  explicit CornerCaseGenerator(uint64_t seed) : rng_(seed) {
    for (const OpInfo& op : op_table()) {
      Form f = op.form;
      if (f == Form::AluImm || f == Form::AluReg || f == Form::AluUnary || f == Form::Endian)
        alu_.push_back(&op);
      else if (f == Form::JmpImm || f == Form::JmpReg)
        jmp_.push_back(&op);
      else if (f == Form::LdAbs || f == Form::LdInd)
        packet_.push_back(&op);
    }
  }

  std::vector<RawInsn> next(size_t packet_size) {
    std::vector<RawInsn> v;
    for (int r = 0; r <= 9; ++r) push_lddw(v, r, value64());
    const size_t body = 10 + rng_() % 50;
    const size_t start = v.size();
    for (size_t k = 0; k < body; ++k) {
      const size_t left = start + body - v.size();  // slots until the fold
      uint64_t pick = rng_() % 100;
      if (pick < 15 && left > 1) {
        v.push_back(jump(static_cast<int>(rng_() % left)));
      } else if (pick < 18) {
        v.push_back(packet_load(packet_size));
      } else {
        v.push_back(alu());
      }
    }
    // Fold r0-r9 into r0, so that every register's value shows.
    for (int r = 1; r <= 9; ++r) {
      v.push_back(slot(0x27, 0, 0, 0, 0x9E3779B1));  // r0 *= k
      v.push_back(slot(0xaf, 0, r, 0, 0));           // r0 ^= rN
    }
    v.push_back(slot(0x95, 0, 0, 0, 0));
    return v;
  }

 private:
  int reg() { return static_cast<int>(rng_() % 10); }

  uint64_t value64() {
    static constexpr uint64_t kEdges[] = {0,
                                          1,
                                          ~0ull,
                                          0x8000000000000000ull,
                                          0x7fffffffffffffffull,
                                          0x80000000ull,
                                          0x7fffffffull,
                                          0xffffffffull,
                                          0x100000000ull,
                                          0xffffffff80000000ull,
                                          31,
                                          32,
                                          63,
                                          64,
                                          0xffff,
                                          0x8000,
                                          0x80,
                                          2};
    return rng_() % 3 == 0 ? rng_() : kEdges[rng_() % std::size(kEdges)];
  }

  int32_t imm32() {
    static constexpr int32_t kEdges[] = {0,  1,    -1,     2,       -2,        3,         7,
                                         8,  16,   31,     32,      33,        63,        64,
                                         65, 0x7f, 0x80,   0xff,    0x7fff,    0x8000,    -8,
                                         16, 48,   0xffff, 0x10000, INT32_MIN, INT32_MAX, INT32_MIN + 1};
    return rng_() % 4 == 0 ? static_cast<int32_t>(rng_()) : kEdges[rng_() % std::size(kEdges)];
  }

  RawInsn alu() {
    const OpInfo& op = *alu_[rng_() % alu_.size()];
    RawInsn r = slot(op.opcode, reg(), op.form == Form::AluReg ? reg() : 0, 0, 0);
    if (op.match == Match::Off) r.off = static_cast<int16_t>(op.disc);
    if (op.match == Match::Imm) r.imm = op.disc;
    if (op.form == Form::AluImm) r.imm = imm32();
    return r;
  }

  RawInsn jump(int max_off) {
    const OpInfo& op = *jmp_[rng_() % jmp_.size()];
    RawInsn r = slot(op.opcode, reg(), op.form == Form::JmpReg ? reg() : 0,
                     max_off ? static_cast<int>(rng_() % max_off) : 0, 0);
    if (op.form == Form::JmpImm) r.imm = imm32();
    return r;
  }

  RawInsn packet_load(size_t packet_size) {
    const OpInfo& op = *packet_[rng_() % packet_.size()];
    int32_t at = static_cast<int32_t>(rng_() % (packet_size + 4)) - 2;
    return slot(op.opcode, 0, op.form == Form::LdInd ? reg() : 0, 0, at);
  }

  std::mt19937_64 rng_;
  std::vector<const OpInfo*> alu_, jmp_, packet_;
};

TEST(Jit, CornerCasesAgreeWithTheInterpreter) {
  constexpr int kPrograms = 4000;
  CornerCaseGenerator gen(0xc0ffee);
  const HelperTable helpers = conformance_helper_table();
  int blinded = 0, failures = 0;
  for (int i = 0; i < kPrograms && failures < 5; ++i) {
    std::vector<uint8_t> packet(16 + i % 48);
    for (size_t k = 0; k < packet.size(); ++k) packet[k] = static_cast<uint8_t>(k * 37 + i);
    auto insns = gen.next(packet.size());
    auto prog = decode(insns);
    ASSERT_TRUE(prog) << prog.error().message;
    auto interp = Interpreter::create(*prog, helpers);
    ASSERT_TRUE(interp) << interp.error().message;
    JitOptions jo;
    jo.unsafe_unverified = true;  // forward jumps may skip code: unreachable instructions
    jo.blind_constants = i % 4 == 3;
    blinded += jo.blind_constants;
    auto jit = JitProgram::compile(*interp, jo);
    ASSERT_TRUE(jit) << jit.error().message;
    std::vector<uint8_t> p1 = packet, p2 = packet;
    auto want = interp->run(RunInput::memory(p1), fast_options());
    auto got = jit->run(RunInput::memory(p2), fast_options());
    ASSERT_TRUE(want && got);
    if (*want != *got) {
      ++failures;
      ADD_FAILURE() << "program " << i << (jo.blind_constants ? " (blinded)" : "") << ": interpreter r0 = 0x"
                    << std::hex << *want << ", JIT r0 = 0x" << *got << "\n"
                    << testing::listing(insns);
    }
  }
  std::printf("JIT corner cases: %d programs (%d blinded) agree with the interpreter\n", kPrograms, blinded);
}

// Memory, stack and atomics through every base register: r1 is copied to a
// base register that nothing else writes (r7 and r10 have encodings of
// their own on x86), memory at aligned in-bounds offsets, atomics of every
// kind with r0 among the operands, stack slots through r10.
class MemoryCaseGenerator {
 public:
  static constexpr int kMem = 64;
  explicit MemoryCaseGenerator(uint64_t seed) : rng_(seed) {
    for (const OpInfo& op : op_table()) {
      if (op.form == Form::Atomic) atomics_.push_back(&op);
      if (op.form == Form::Ldx) loads_.push_back(&op);
      if (op.form == Form::Stx || op.form == Form::St) stores_.push_back(&op);
    }
  }

  std::vector<RawInsn> next() {
    std::vector<RawInsn> v;
    base_ = 1 + static_cast<int>(rng_() % 9);
    v.push_back(slot(0xbf, base_, 1, 0, 0));  // base = r1
    for (int r = 0; r <= 9; ++r)
      if (r != base_) push_lddw(v, r, rng_() % 2 ? rng_() : rng_() % 5);
    // Stack slots start initialized, as the verifier would demand.
    for (int k = 1; k <= 4; ++k) v.push_back(slot(0x7b, 10, 0, -8 * k, 0));
    const size_t body = 10 + rng_() % 40;
    for (size_t k = 0; k < body; ++k) {
      uint64_t pick = rng_() % 10;
      if (pick < 3)
        v.push_back(atomic());
      else if (pick < 6)
        v.push_back(load());
      else
        v.push_back(store());
    }
    for (int r = 1; r <= 9; ++r) {
      if (r == base_) continue;
      v.push_back(slot(0x27, 0, 0, 0, 0x9E3779B1));
      v.push_back(slot(0xaf, 0, r, 0, 0));
    }
    v.push_back(slot(0x95, 0, 0, 0, 0));
    return v;
  }

 private:
  int value_reg() {
    int r;
    do r = static_cast<int>(rng_() % 10);
    while (r == base_);
    return r;
  }
  // A base and an offset for `size` bytes: the memory or a stack slot.
  std::pair<int, int> place(int size) {
    if (rng_() % 4 == 0) return {10, -8 * static_cast<int>(1 + rng_() % 4)};
    return {base_, size * static_cast<int>(rng_() % (kMem / size))};
  }
  RawInsn atomic() {
    const OpInfo& op = *atomics_[rng_() % atomics_.size()];
    auto [b, off] = place(op.width);
    return slot(op.opcode, b, value_reg(), off, op.disc);
  }
  RawInsn load() {
    const OpInfo& op = *loads_[rng_() % loads_.size()];
    auto [b, off] = place(op.width);
    return slot(op.opcode, value_reg(), b, off, 0);
  }
  RawInsn store() {
    const OpInfo& op = *stores_[rng_() % stores_.size()];
    auto [b, off] = place(op.width);
    int32_t imm = rng_() % 2 ? static_cast<int32_t>(rng_()) : -1;
    return op.form == Form::St ? slot(op.opcode, b, 0, off, imm) : slot(op.opcode, b, value_reg(), off, 0);
  }

  std::mt19937_64 rng_;
  int base_ = 1;
  std::vector<const OpInfo*> atomics_, loads_, stores_;
};

TEST(Jit, MemoryAndAtomicsAgreeWithTheInterpreter) {
  constexpr int kPrograms = 3000;
  MemoryCaseGenerator gen(0xa70);
  const HelperTable helpers = conformance_helper_table();
  int failures = 0;
  for (int i = 0; i < kPrograms && failures < 5; ++i) {
    auto insns = gen.next();
    auto prog = decode(insns);
    ASSERT_TRUE(prog) << prog.error().message;
    auto interp = Interpreter::create(*prog, helpers);
    ASSERT_TRUE(interp) << interp.error().message;
    JitOptions jo;
    jo.blind_constants = i % 4 == 3;
    jo.unsafe_unverified = true;
    auto jit = JitProgram::compile(*interp, jo);
    ASSERT_TRUE(jit) << jit.error().message;
    std::vector<uint8_t> m1(MemoryCaseGenerator::kMem);
    for (size_t k = 0; k < m1.size(); ++k) m1[k] = static_cast<uint8_t>(k * 29 + i);
    std::vector<uint8_t> m2 = m1;
    auto want = interp->run(RunInput::memory(m1), fast_options());
    auto got = jit->run(RunInput::memory(m2), fast_options());
    ASSERT_TRUE(want && got);
    if (*want != *got || m1 != m2) {
      ++failures;
      ADD_FAILURE() << "program " << i << (jo.blind_constants ? " (blinded)" : "") << ": r0 0x" << std::hex
                    << *want << " vs 0x" << *got << (m1 != m2 ? ", memory differs" : "") << "\n"
                    << testing::listing(insns);
    }
  }
  std::printf("JIT memory cases: %d programs agree with the interpreter\n", kPrograms);
}

// Chains of `if rX == imm goto` (C switches): dense ones become jump
// tables. Values around the chain's bounds, between its cases and far
// beyond 32 bits, repeated cases, negative bases.
TEST(Jit, SwitchChainsAgreeWithTheInterpreter) {
  std::mt19937_64 rng(0x5e1ec7);
  const HelperTable helpers = conformance_helper_table();
  int tables = 0, failures = 0;
  constexpr int kPrograms = 400;
  for (int p = 0; p < kPrograms && failures < 5; ++p) {
    const int r = static_cast<int>(rng() % 10);
    const int cases = 6 + static_cast<int>(rng() % 40);
    static constexpr int64_t kBases[] = {0, -3, 100, INT32_MIN, INT32_MAX - 200, -100000};
    const int64_t base = kBases[rng() % std::size(kBases)];
    const int stride = 1 + static_cast<int>(rng() % 9);
    std::vector<int32_t> values;
    for (int c = 0; c < cases; ++c) {
      int64_t v = rng() % 8 == 0 && c > 0 ? values[rng() % values.size()] : base + int64_t{c} * stride;
      values.push_back(static_cast<int32_t>(v));
    }
    std::vector<RawInsn> v;
    v.push_back(slot(0x79, r, 1, 0, 0));  // rX = *(u64 *)(r1 + 0)
    for (int c = 0; c < cases; ++c) v.push_back(slot(0x15, r, 0, 0, values[c]));
    v.push_back(slot(0xb7, 0, 0, 0, -1));  // no case: r0 = -1
    v.push_back(slot(0x95, 0, 0, 0, 0));
    for (int c = 0; c < cases; ++c) {
      v[1 + c].off = static_cast<int16_t>(v.size() - (2 + c));  // to "r0 = c; exit"
      v.push_back(slot(0xb7, 0, 0, 0, c));
      v.push_back(slot(0x95, 0, 0, 0, 0));
    }
    auto prog = decode(v);
    ASSERT_TRUE(prog) << prog.error().message;
    auto interp = Interpreter::create(*prog, helpers);
    ASSERT_TRUE(interp);
    auto jit = JitProgram::compile(*interp);
    ASSERT_TRUE(jit) << jit.error().message;
    static const uint8_t kJmpR11[] = {0x41, 0xff, 0xe3};
    tables += std::search(jit->code().begin(), jit->code().end(), kJmpR11, kJmpR11 + 3) != jit->code().end();
    for (int k = 0; k < 24; ++k) {
      int64_t x = values[rng() % values.size()];
      switch (k % 6) {
        case 1: x += 1; break;
        case 2: x = base - 1 - static_cast<int64_t>(rng() % 3); break;
        case 3: x = base + int64_t{cases} * stride + static_cast<int64_t>(rng() % 3); break;
        case 4: x += int64_t{1} << 40; break;
        case 5: x = static_cast<int64_t>(rng()); break;
        default: break;
      }
      std::vector<uint8_t> m1(8), m2(8);
      std::memcpy(m1.data(), &x, 8);
      m2 = m1;
      auto want = interp->run(RunInput::memory(m1), fast_options());
      auto got = jit->run(RunInput::memory(m2), fast_options());
      ASSERT_TRUE(want && got);
      if (*want != *got && ++failures <= 5)
        ADD_FAILURE() << "input " << x << ": interpreter " << *want << ", JIT " << *got << "\n"
                      << testing::listing(v);
    }
  }
  std::printf("JIT switch chains: %d programs, %d compiled to jump tables\n", kPrograms, tables);
  EXPECT_GT(tables, kPrograms / 4);
}

// ---- random programs that pass the verifier, against the interpreter ----

// ktime_get_ns, made repeatable so that two runs can be compared.
uint64_t fixed_ktime(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 1'000'000'007ull;
}

HelperTable repeatable_helpers() {
  HelperTable t = default_helper_table();
  // The table keeps a pointer to the definition.
  static const HelperDef ktime = [&] {
    HelperDef d = *t.find(5);
    d.fn = fixed_ktime;
    return d;
  }();
  t.add(ktime);
  return t;
}

class Sandbox final : public HelperEnv {
 public:
  Map* map_at(uint64_t ptr) const override {
    for (const MapPtr& m : maps)
      if (reinterpret_cast<uint64_t>(m.get()) == ptr) return m.get();
    return nullptr;
  }
  void grant_static(MemoryGuard&) const override {}
  const Interpreter* program_by_id(uint32_t) const override { return nullptr; }
  std::vector<MapPtr> maps;
};

// One run of a random program, set up as testing::run_checked sets it up
// (maps with a few keys and random values, map references resolved, random
// memory or context), the same for the same seed.
struct RandomRun {
  Sandbox env;
  Program prog;
  std::unique_ptr<Interpreter> interp;
  std::vector<uint8_t> mem;
  RunInput in;
};

std::unique_ptr<RandomRun> prepare(const testing::RandomProgram& p, uint64_t data_seed,
                                   const HelperTable& helpers, std::string* why) {
  auto run = std::make_unique<RandomRun>();
  std::mt19937_64 rng(data_seed);
  for (const MapSpec& spec : p.input.maps) {
    auto m = Map::create(spec);
    if (!m) return *why = m.error().message, nullptr;
    std::vector<uint8_t> key(spec.key_size), value((*m)->host_value_size());
    for (uint32_t k = 0; k < std::min<uint32_t>(spec.max_entries, 4); ++k) {
      std::fill(key.begin(), key.end(), 0);
      std::memcpy(key.data(), &k, std::min<size_t>(4, key.size()));
      for (auto& b : value) b = static_cast<uint8_t>(rng());
      (*m)->update(key.data(), value.data(), kBpfAny);
    }
    run->env.maps.push_back(*m);
  }
  std::vector<RawInsn> exec = p.insns;
  for (size_t i = 0; i + 1 < exec.size(); ++i) {
    if (exec[i].opcode != 0x18) continue;
    auto pseudo = static_cast<Pseudo>(exec[i].src());
    if (pseudo == Pseudo::MapIdx || pseudo == Pseudo::MapIdxValue) {
      size_t idx = static_cast<uint32_t>(exec[i].imm);
      uint64_t addr = 0;
      if (idx < run->env.maps.size()) {
        Map* m = run->env.maps[idx].get();
        addr = reinterpret_cast<uint64_t>(m);
        if (pseudo == Pseudo::MapIdxValue) {
          if (!m->mmap_data()) return *why = "no direct value", nullptr;
          addr = reinterpret_cast<uint64_t>(m->mmap_data()) + static_cast<uint32_t>(exec[i + 1].imm);
        }
      }
      exec[i].set_regs(exec[i].dst(), 0);
      exec[i].imm = static_cast<int32_t>(static_cast<uint32_t>(addr));
      exec[i + 1].imm = static_cast<int32_t>(static_cast<uint32_t>(addr >> 32));
    }
    ++i;
  }
  auto prog = decode(exec);
  if (!prog) return *why = prog.error().message, nullptr;
  run->prog = std::move(*prog);
  auto interp = Interpreter::create(run->prog, helpers);
  if (!interp) return *why = interp.error().message, nullptr;
  run->interp = std::make_unique<Interpreter>(std::move(*interp));
  if (p.input.mem_size >= 0) {
    run->mem.resize(static_cast<size_t>(p.input.mem_size));
    for (auto& b : run->mem) b = static_cast<uint8_t>(rng());
    run->in = RunInput::memory(run->mem);
  } else {
    run->mem.resize(std::max<uint32_t>(verifier::rules_for(p.input.type).ctx_size, 1));
    for (auto& b : run->mem) b = static_cast<uint8_t>(rng());
    run->in.ctx = run->mem.data();
    run->in.ctx_size = run->mem.size();
  }
  return run;
}

using MapContents = std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>;

MapContents contents(const Map& m) {
  MapContents out;
  std::vector<uint8_t> k(m.spec().key_size), n(k.size()), v(m.host_value_size());
  for (int rc = m.next_key(nullptr, n.data()); rc == 0; rc = m.next_key(k.data(), n.data())) {
    k = n;
    if (m.lookup(k.data(), v.data()) == 0) out.emplace_back(k, v);
  }
  std::sort(out.begin(), out.end());  // hash maps iterate in an order of their own
  return out;
}

// Fast mode is unchecked: only contexts whose fields are all numbers can
// be random bytes (tc and xdp contexts hold packet pointers).
bool runs_unchecked(const testing::RandomProgram& p) {
  if (p.input.mem_size >= 0) return true;
  ProgType t = p.input.type;
  return t == ProgType::Kprobe || t == ProgType::Tracepoint || t == ProgType::PerfEvent ||
         t == ProgType::RawTracepoint;
}

TEST(Jit, RandomVerifiedProgramsAgreeWithTheInterpreter) {
#if defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kPrograms = 3000;
#else
  constexpr uint64_t kPrograms = 14000;
#endif
  const HelperTable helpers = repeatable_helpers();
  testing::RandomProgramGenerator gen(0x717);
  uint64_t compared = 0, blinded = 0, failures = 0;
  static std::FILE* const devnull = std::fopen("/dev/null", "w");
  for (uint64_t i = 0; i < kPrograms && failures < 5; ++i) {
    testing::RandomProgram p = gen.next();
    if (!runs_unchecked(p)) continue;
    VerifyInput vin = p.input;
    vin.insn_budget = 200'000;
    vin.helpers = &helpers;
    if (!verify(std::span<const RawInsn>(p.insns), vin).ok) continue;
    std::string why;
    auto a = prepare(p, p.seed ^ 0xda7a, helpers, &why);
    auto b = prepare(p, p.seed ^ 0xda7a, helpers, &why);
    ASSERT_TRUE(a && b) << why;
    JitOptions jo;
    jo.blind_constants = compared % 5 == 4;
    blinded += jo.blind_constants;
    auto jit = JitProgram::compile(*b->interp, jo);
    ASSERT_TRUE(jit) << "seed " << p.seed << ": " << jit.error().message;
    RunOptions opts = fast_options();
    if (devnull) opts.trace_out = devnull;
    opts.helper_env = &a->env;
    auto want = a->interp->run(a->in, opts);
    opts.helper_env = &b->env;
    auto got = jit->run(b->in, opts);
    ++compared;
    std::string diff;
    if (!want || !got) {
      diff = "run failed: " + (want ? got.error().message : want.error().message);
    } else if (*want != *got) {
      diff = "r0 " + std::to_string(*want) + " vs " + std::to_string(*got);
    } else if (a->mem != b->mem) {
      diff = "memory after the run";
    } else {
      for (size_t m = 0; m < a->env.maps.size(); ++m)
        if (contents(*a->env.maps[m]) != contents(*b->env.maps[m])) diff = "map " + std::to_string(m);
    }
    if (!diff.empty()) {
      ++failures;
      ADD_FAILURE() << "program seed " << p.seed << (jo.blind_constants ? " (blinded)" : "") << ": " << diff
                    << "\n"
                    << testing::listing(p.insns);
    }
  }
  std::printf("JIT differential: %llu verified random programs (%llu blinded) agree with the interpreter\n",
              static_cast<unsigned long long>(compared), static_cast<unsigned long long>(blinded));
  EXPECT_GE(compared, kPrograms / 4);
}

// ---- the clang-built corpus, against the interpreter ----

using Bytes = std::vector<uint8_t>;

// Tail calls from JIT code continue in the target's JIT code.
class JitEnv final : public HelperEnv {
 public:
  JitEnv(const Prog& p, const std::map<const Interpreter*, JitProgram>& jits) : p_(p), jits_(jits) {}
  Map* map_at(uint64_t ptr) const override { return p_.map_at(ptr); }
  void grant_static(MemoryGuard& g) const override { p_.grant_static(g); }
  const Interpreter* program_by_id(uint32_t id) const override { return p_.program_by_id(id); }
  Map* trace_pipe() const override { return p_.trace_pipe(); }
  const JitProgram* jit_program(const Interpreter& prog) const override {
    auto it = jits_.find(&prog);
    return it == jits_.end() ? nullptr : &it->second;
  }

 private:
  const Prog& p_;
  const std::map<const Interpreter*, JitProgram>& jits_;
};

// Fast mode is unchecked: program types whose context holds no pointers,
// so that a zeroed context is a valid one.
bool numeric_context(ProgType t) {
  return t == ProgType::Syscall || t == ProgType::SocketFilter || t == ProgType::Kprobe ||
         t == ProgType::Tracepoint || t == ProgType::RawTracepoint || t == ProgType::PerfEvent;
}

struct ObjectRun {
  std::string error;                        // the object did not load
  std::vector<std::string> progs;           // the programs run, in order
  std::vector<std::string> results;         // r0 or the error, per program
  std::vector<Bytes> ctx;                   // the context after each run
  std::map<std::string, MapContents> maps;  // after all runs
  int compiled = 0;
};

ObjectRun run_object(const std::string& path, bool use_jit) {
  ObjectRun out;
  Runtime rt;
  auto obj = Object::open_file(rt, path);
  if (!obj) return out.error = obj.error().message, out;
  if (auto st = (*obj)->load(); !st) return out.error = st.error().message, out;
  std::map<const Interpreter*, JitProgram> jits;
  if (use_jit) {
    for (Prog* p : (*obj)->progs()) {
      if (!p->verified()) continue;
      auto j = JitProgram::compile(p->interpreter());
      if (!j) return out.error = p->name() + ": " + j.error().message, out;
      jits.emplace(&p->interpreter(), std::move(*j));
      ++out.compiled;
    }
  }
  static std::FILE* const devnull = std::fopen("/dev/null", "w");
  Bytes packet(64);
  for (size_t k = 0; k < packet.size(); ++k) packet[k] = static_cast<uint8_t>(k * 11);
  for (Prog* p : (*obj)->progs()) {
    if (!p->verified() || !numeric_context(p->type())) continue;
    Bytes ctx(std::max<size_t>(p->verify_stats().max_ctx_offset, 256));
    RunInput in;
    in.ctx = ctx.data();
    in.ctx_size = ctx.size();
    in.packet = packet;
    RunOptions opts = fast_options();
    if (devnull) opts.trace_out = devnull;
    JitEnv env(*p, jits);
    opts.helper_env = use_jit ? static_cast<HelperEnv*>(&env) : p;
    auto r = use_jit ? jits.at(&p->interpreter()).run(in, opts) : p->interpreter().run(in, opts);
    out.progs.push_back(p->name());
    out.results.push_back(r ? std::to_string(*r) : "error: " + r.error().message);
    out.ctx.push_back(ctx);
  }
  for (const MapPtr& m : (*obj)->maps()) {
    MapType t = m->type();
    if (t == MapType::ProgArray || t == MapType::ArrayOfMaps || t == MapType::HashOfMaps ||
        t == MapType::PerfEventArray || t == MapType::Ringbuf || t == MapType::StackTrace ||
        m->spec().key_size == 0 || m->percpu())
      continue;
    out.maps[m->spec().name] = contents(*m);
  }
  return out;
}

TEST(Jit, CorpusAgreesWithTheInterpreter) {
  std::vector<std::filesystem::path> objects;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(EMBER_BPF_OBJ_DIR, ec))
    if (e.path().string().ends_with(".bpf.o")) objects.push_back(e.path());
  if (objects.empty()) GTEST_SKIP() << "no clang-built objects in " << EMBER_BPF_OBJ_DIR;
  std::sort(objects.begin(), objects.end());
  // Not repeatable from one run to the next, whatever runs them.
  static const std::set<std::string> kSkip = {
      "pinned",     // its pinned maps outlive the run: the second run sees the first's updates
      "stack_ids",  // stack ids hash the native stack, which differs by engine
  };
  int objects_run = 0, progs_run = 0, compiled = 0;
  std::string not_loaded;
  for (const auto& path : objects) {
    std::string stem = path.filename().string();
    stem = stem.substr(0, stem.find('.'));
    if (kSkip.count(stem)) continue;
    ObjectRun want = run_object(path, false);
    ObjectRun got = run_object(path, true);
    if (!want.error.empty()) {
      not_loaded += " " + stem;
      EXPECT_EQ(got.error, want.error);
      continue;
    }
    ASSERT_EQ(got.error, "") << stem;
    ++objects_run;
    compiled += got.compiled;
    progs_run += static_cast<int>(got.progs.size());
    EXPECT_EQ(got.progs, want.progs) << stem;
    EXPECT_EQ(got.results, want.results) << stem << ": r0 of each program";
    EXPECT_EQ(got.ctx, want.ctx) << stem << ": contexts after the runs";
    for (const auto& [name, entries] : want.maps)
      EXPECT_EQ(got.maps[name], entries) << stem << ": map " << name;
  }
  std::printf(
      "JIT corpus: %d objects, %d programs compiled, %d run with the same results as the interpreter; "
      "not loadable (both refuse):%s\n",
      objects_run, compiled, progs_run, not_loaded.c_str());
  EXPECT_GT(progs_run, 10);
}

// ---- code memory, blinding, bad input ----

struct Assembled {
  Program prog;
  std::unique_ptr<Interpreter> interp;
};

std::unique_ptr<Assembled> assembled(const std::string& text, const HelperTable& helpers) {
  auto insns = assemble(text);
  EXPECT_TRUE(insns) << insns.error().message;
  if (!insns) return nullptr;
  auto a = std::make_unique<Assembled>();
  auto prog = decode(*insns);
  EXPECT_TRUE(prog) << prog.error().message;
  if (!prog) return nullptr;
  a->prog = std::move(*prog);
  auto interp = Interpreter::create(a->prog, helpers);
  EXPECT_TRUE(interp) << interp.error().message;
  if (!interp) return nullptr;
  a->interp = std::make_unique<Interpreter>(std::move(*interp));
  return a;
}

// The permissions of the mapping that holds `addr` in /proc/self/maps, or
// "" if none does.
std::string permissions_at(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "";
}

TEST(Jit, CodeIsNeverWritableAndExecutable) {
  const HelperTable helpers = conformance_helper_table();
  auto a = assembled("mov %r0, 7\nexit\n", helpers);
  ASSERT_TRUE(a);
  const void* where = nullptr;
  {
    auto jit = JitProgram::compile(*a->interp);
    ASSERT_TRUE(jit) << jit.error().message;
    where = jit->code().data();
    EXPECT_EQ(permissions_at(where), "r-xp") << "sealed read+execute before the first run";
    auto r = jit->run(RunInput{}, fast_options());
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 7u);
    EXPECT_EQ(permissions_at(jit->code().data() + jit->code().size() - 1), "r-xp");
  }
  EXPECT_NE(permissions_at(where), "r-xp") << "unmapped with the JitProgram";
}

bool contains(std::span<const uint8_t> code, uint32_t v) {
  const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
                        static_cast<uint8_t>(v >> 24)};
  return std::search(code.begin(), code.end(), b, b + 4) != code.end();
}

TEST(Jit, BlindedConstantsDoNotAppearInTheCode) {
  constexpr uint32_t kMagic = 0x5a17c0de;
  // The constant in every place an immediate goes.
  const std::string text =
      "mov %r0, 0x5a17c0de\n"
      "add %r0, 0x5a17c0de\n"
      "mov32 %r2, 0x5a17c0de\n"
      "xor32 %r2, 0x5a17c0de\n"
      "or %r0, %r2\n"
      "jeq %r0, 0x5a17c0de, skip\n"
      "mul %r0, 0x5a17c0de\n"
      "skip:\n"
      "stw [%r10-8], 0x5a17c0de\n"
      "stdw [%r10-16], 0x5a17c0de\n"
      "ldxw %r1, [%r10-8]\n"
      "ldxdw %r3, [%r10-16]\n"
      "add %r0, %r1\n"
      "sub %r0, %r3\n"
      "lddw %r4, 0x5a17c0de5a17c0de\n"
      "xor %r0, %r4\n"
      "div %r0, 0x5a17c0de\n"
      "mod32 %r4, 0x5a17c0de\n"
      "add %r0, %r4\n"
      "jset32 %r0, 0x5a17c0de, out\n"
      "add %r0, 1\n"
      "out:\n"
      "exit\n";
  const HelperTable helpers = conformance_helper_table();
  auto a = assembled(text, helpers);
  ASSERT_TRUE(a);
  auto want = a->interp->run(RunInput{}, fast_options());
  ASSERT_TRUE(want);
  auto plain = JitProgram::compile(*a->interp);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_TRUE(contains(plain->code(), kMagic)) << "the test's constant shows in unblinded code";
  for (uint64_t seed : {1ull, 2ull, 0ull}) {
    JitOptions jo;
    jo.blind_constants = true;
    jo.blinding_seed = seed;
    auto blinded = JitProgram::compile(*a->interp, jo);
    ASSERT_TRUE(blinded) << blinded.error().message;
    EXPECT_FALSE(contains(blinded->code(), kMagic)) << "seed " << seed;
    auto got = blinded->run(RunInput{}, fast_options());
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, *want) << "seed " << seed;
  }
  auto got = plain->run(RunInput{}, fast_options());
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, *want);
}

TEST(Jit, RefusesWhatItCannotCompile) {
  const HelperTable helpers = conformance_helper_table();
  // A kfunc call or an unknown helper: the interpreter's bindings refuse it
  // already, so there is nothing for the JIT to compile.
  std::vector<RawInsn> kfunc = {slot(0x85, 0, 2, 0, 1234), slot(0x95, 0, 0, 0, 0)};
  auto prog = decode(kfunc);
  ASSERT_TRUE(prog);
  auto interp = Interpreter::create(*prog, helpers);
  ASSERT_FALSE(interp);
  EXPECT_NE(interp.error().message.find("kfunc"), std::string::npos) << interp.error().message;
  std::vector<RawInsn> unknown = {slot(0x85, 0, 0, 0, 99999), slot(0x95, 0, 0, 0, 0)};
  prog = decode(unknown);
  ASSERT_TRUE(prog);
  EXPECT_FALSE(Interpreter::create(*prog, helpers));

  // Code no path reaches: not a verified program.
  auto a = assembled("mov %r0, 3\nja end\nmov %r0, 4\nend:\nexit\n", helpers);
  ASSERT_TRUE(a);
  auto refused = JitProgram::compile(*a->interp);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("instruction 2 (r0 = 0x4)"), std::string::npos)
      << refused.error().message;
  JitOptions unsafe;
  unsafe.unsafe_unverified = true;
  auto jit = JitProgram::compile(*a->interp, unsafe);
  ASSERT_TRUE(jit) << jit.error().message;
  EXPECT_EQ(jit->lines().size(), 3u) << "the unreachable instruction is not compiled";
  auto r = jit->run(RunInput{}, fast_options());
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 3u);

  JitOptions bad_hints;
  bad_hints.hints.resize(2);
  EXPECT_FALSE(JitProgram::compile(*a->interp, bad_hints));
}

// Run-time errors are the interpreter's, word for word.
TEST(Jit, RunTimeErrorsMatchTheInterpreter) {
  const HelperTable helpers = conformance_helper_table();
  const char* programs[] = {
      // Unbounded recursion: the ninth frame.
      "mov %r0, 1\ncall local f\nexit\nf:\ncall local f\nexit\n",
      // callx to a number that names nothing.
      "mov %r1, 12345\ncallx %r1\nexit\n",
  };
  for (const char* text : programs) {
    auto a = assembled(text, helpers);
    ASSERT_TRUE(a);
    JitOptions unsafe;
    unsafe.unsafe_unverified = true;
    auto jit = JitProgram::compile(*a->interp, unsafe);
    ASSERT_TRUE(jit) << jit.error().message;
    auto want = a->interp->run(RunInput{}, fast_options());
    auto got = jit->run(RunInput{}, fast_options());
    ASSERT_FALSE(want) << text;
    ASSERT_FALSE(got) << text;
    EXPECT_EQ(got.error().message, want.error().message);
    // A JitRunner reports the same error, and again on its next run.
    JitRunner runner(*jit, fast_options());
    for (int round = 0; round < 2; ++round) {
      auto r = runner.run(RunInput{});
      ASSERT_FALSE(r) << text;
      EXPECT_EQ(r.error().message, want.error().message);
    }
  }
}

TEST(Jit, HintsRemoveChecksAndDeadCode) {
  const HelperTable helpers = conformance_helper_table();
  auto a = assembled(
      "mov %r0, 100\nmov %r1, 7\njeq %r1, 0, zero\ndiv %r0, %r1\nsdiv %r0, %r1\nexit\nzero:\nmov %r0, "
      "9\nexit\n",
      helpers);
  ASSERT_TRUE(a);
  auto plain = JitProgram::compile(*a->interp);
  ASSERT_TRUE(plain) << plain.error().message;
  JitOptions jo;
  jo.hints.resize(a->prog.insts.size());
  jo.hints[3].nonzero_divisor = true;
  jo.hints[4].nonzero_divisor = jo.hints[4].divisor_not_minus_one = true;
  jo.hints[6].dead = jo.hints[7].dead = true;
  auto hinted = JitProgram::compile(*a->interp, jo);
  ASSERT_TRUE(hinted) << hinted.error().message;
  // The two divisions (instructions 3 and 4) without their checks. (The
  // whole code is not smaller: a jump to a dead instruction needs the
  // frame, which the plain program's entry does not set up.)
  auto division_bytes = [](const JitProgram& j) {
    uint32_t from = 0, to = 0;
    for (const JitLine& l : j.lines()) {
      if (l.insn == 3) from = l.offset;
      if (l.insn == 5) to = l.offset;
    }
    return to - from;
  };
  EXPECT_LT(division_bytes(*hinted), division_bytes(*plain));
  EXPECT_EQ(hinted->lines().size(), plain->lines().size() - 2);
  auto want = a->interp->run(RunInput{}, fast_options());
  auto got = hinted->run(RunInput{}, fast_options());
  ASSERT_TRUE(want && got);
  EXPECT_EQ(*got, *want);
  EXPECT_EQ(*got, 2u);  // 100 / 7 = 14, 14 / 7 = 2

  // A wrong hint: reaching the dead instruction ends the run with an error.
  auto b = assembled("mov %r0, 1\nmov %r1, 0\njeq %r1, 0, zero\nexit\nzero:\nmov %r0, 9\nexit\n", helpers);
  ASSERT_TRUE(b);
  JitOptions wrong;
  wrong.hints.resize(b->prog.insts.size());
  wrong.hints[4].dead = wrong.hints[5].dead = true;
  auto jit = JitProgram::compile(*b->interp, wrong);
  ASSERT_TRUE(jit) << jit.error().message;
  auto r = jit->run(RunInput{}, fast_options());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("instruction 4"), std::string::npos) << r.error().message;
}

TEST(Jit, LinesMapEveryInstructionInOrder) {
  const HelperTable helpers = conformance_helper_table();
  auto a = assembled(
      "mov %r0, 1\nlddw %r1, 0x1122334455667788\nadd %r0, %r1\njne %r0, 3, out\nmov %r0, 0\nout:\nexit\n",
      helpers);
  ASSERT_TRUE(a);
  auto jit = JitProgram::compile(*a->interp);
  ASSERT_TRUE(jit) << jit.error().message;
  std::vector<uint32_t> insns;
  uint32_t last = 0;
  for (const JitLine& l : jit->lines()) {
    insns.push_back(l.insn);
    EXPECT_GE(l.offset, last);
    EXPECT_LT(l.offset, jit->code().size());
    last = l.offset;
  }
  EXPECT_EQ(insns, (std::vector<uint32_t>{0, 1, 3, 4, 5, 6}));
  EXPECT_EQ(&jit->program(), &a->interp->program());
}

// Tail calls from JIT code into a program that has none continue in the
// interpreter's fast mode.
TEST(Jit, TailCallsIntoInterpretedPrograms) {
  std::string path = std::string(EMBER_BPF_OBJ_DIR) + "/tail_calls.bpf.o";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not built";
  for (const char* name : {"entry", "again"}) {
    Runtime rt;
    auto obj = Object::open_file(rt, path);
    ASSERT_TRUE(obj) << obj.error().message;
    ASSERT_TRUE((*obj)->load());
    Prog* p = (*obj)->prog(name);
    ASSERT_NE(p, nullptr);
    auto jit = JitProgram::compile(p->interpreter());
    ASSERT_TRUE(jit) << jit.error().message;
    uint64_t ctx = 0;
    RunInput in;
    in.ctx = &ctx;
    in.ctx_size = sizeof ctx;
    RunOptions opts = fast_options();
    opts.helper_env = p;  // no jit_program(): targets run in the interpreter
    auto r = jit->run(in, opts);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, std::string(name) == "entry" ? 7u : 34u) << name;
  }
}

}  // namespace
}  // namespace ember
