// The verifier on real programs: every bpf_conformance program it can prove
// safe, the clang-built corpus of tests/bpf, and small programs whose
// verdicts and explanations are checked one by one.
#include "ember/verifier.hpp"

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "ember/asm.hpp"
#include "ember/runtime.hpp"
#include "support/conformance_data.hpp"
#include "support/kernel_bpf.hpp"
#include "support/verifier_fixtures.hpp"

namespace ember {
namespace {

VerifyResult verify_text(const std::string& text, VerifyInput in = {}) {
  auto insns = assemble(text);
  EXPECT_TRUE(insns.ok()) << insns.error().message;
  if (!insns) return {};
  auto prog = decode(*insns);
  EXPECT_TRUE(prog.ok()) << prog.error().message;
  if (!prog) return {};
  return verify(*prog, in);
}

MapSpec hash_map(uint32_t key, uint32_t value) {
  MapSpec m;
  m.name = "h";
  m.type = MapType::Hash;
  m.key_size = key, m.value_size = value, m.max_entries = 16;
  return m;
}

// Conformance programs read and write the memory they are given; all of
// them are safe except those whose expected result is an error at run time.
TEST(Verifier, AcceptsTheConformanceSuite) {
  auto files = testing::conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  int accepted = 0, expected_errors = 0;
  std::string rejected;
  for (const auto& f : files) {
    auto c = testing::read_conformance_case(f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto insns = testing::conformance_program(*c);
    ASSERT_TRUE(insns.ok()) << f << ": " << insns.error().message;
    auto prog = decode(*insns);
    if (!prog) continue;  // the decoder's own error cases
    VerifyInput in;
    in.mem_size = static_cast<int64_t>(c->mem.size());
    VerifyResult r = verify(*prog, in);
    if (!c->error.empty()) {
      ++expected_errors;
      continue;
    }
    if (r.ok)
      ++accepted;
    else
      rejected += "  " + c->name + ": [" + std::string(reason_name(r.reason)) + "] " + r.message + "\n";
  }
  RecordProperty("accepted", accepted);
  EXPECT_TRUE(rejected.empty()) << accepted << " accepted; rejected:\n" << rejected;
}

// What the walk proves for the JIT: which slots run, which divisors are
// never 0 or -1 there.
TEST(Verifier, FactsForTheJit) {
  VerifyInput in;
  in.mem_size = 8;
  VerifyResult r = verify_text(R"(
    r3 = *(u8 *)(r1 + 0)
    r3 |= 1
    r4 = *(u8 *)(r1 + 1)
    r0 = 100
    r0 /= r3
    r0 /= r4
    r0 s/= r3
    r5 = 0
    if r5 != 0 goto +1
    exit
    r0 = 1
    exit
  )",
                               in);
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(r.facts.size(), 12u);
  EXPECT_TRUE(r.facts[4].divisor_nonzero);
  EXPECT_FALSE(r.facts[5].divisor_nonzero);
  EXPECT_TRUE(r.facts[6].divisor_nonzero);
  EXPECT_TRUE(r.facts[6].divisor_not_minus_one);
  EXPECT_TRUE(r.facts[9].reached);
  EXPECT_FALSE(r.facts[10].reached) << "the branch at 8 is never taken";
  EXPECT_FALSE(r.facts[11].reached);
}

// The kernel resolves every map reference before verifying: one in code no
// path reaches still fails the load.
TEST(Verifier, RejectsAMapReferenceInDeadCode) {
  VerifyInput in;
  in.maps = {hash_map(4, 8)};
  const char* dead = R"(
    r0 = 0
    if r0 == 0 goto +2
    r1 = map[idx:%d] ll
    r0 = 1
    exit
  )";
  char text[256];
  std::snprintf(text, sizeof text, dead, 0);
  VerifyResult ok = verify_text(text, in);
  EXPECT_TRUE(ok.ok) << ok.message;
  std::snprintf(text, sizeof text, dead, 3);
  VerifyResult r = verify_text(text, in);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.insn, 2u);
  EXPECT_NE(r.message.find("map index 3 names no map (the program has 1)"), std::string::npos) << r.message;
}

TEST(Verifier, RejectsALookupResultUsedWithoutANullCheck) {
  VerifyInput in;
  in.maps = {hash_map(4, 8)};
  in.source_line = [](size_t i) {
    return i == 6 ? std::string("prog.bpf.c:41: v = *value;") : std::string();
  };
  VerifyResult r = verify_text(R"(
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[idx:0] ll
    call 1
    r0 = *(u64 *)(r0 + 0)
    exit
  )",
                               in);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, VerifyReason::NullDeref) << r.message;
  EXPECT_EQ(r.insn, 6u);
  EXPECT_NE(r.message.find("r0 may be NULL"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("prog.bpf.c:41"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("instruction 5"), std::string::npos) << "names the lookup: " << r.message;
}

TEST(Verifier, AcceptsTheSameLookupWithACheck) {
  VerifyInput in;
  in.maps = {hash_map(4, 8)};
  VerifyResult r = verify_text(R"(
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[idx:0] ll
    call 1
    if r0 == 0 goto +1
    r0 = *(u64 *)(r0 + 0)
    exit
  )",
                               in);
  EXPECT_TRUE(r.ok) << r.message << "\n" << r.state;
}

TEST(Verifier, BoundedLoopsAreWalkedAndInfiniteOnesRejected) {
  VerifyResult ok = verify_text(R"(
    r0 = 0
    r1 = 0
    r0 += r1
    r1 += 1
    if r1 < 100 goto -3
    exit
  )");
  EXPECT_TRUE(ok.ok) << ok.message;
  VerifyResult bad = verify_text(R"(
    r0 = 0
    r1 = 0
    r0 += 1
    if r1 == 0 goto -2
    exit
  )");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.reason, VerifyReason::UnboundedLoop) << bad.message;
}

TEST(Verifier, StackReadsNeedInitializedBytesAndSpillsKeepPointers) {
  VerifyResult bad = verify_text(R"(
    r0 = *(u64 *)(r10 - 8)
    exit
  )");
  EXPECT_EQ(bad.reason, VerifyReason::UninitStack) << bad.message;
  VerifyResult spill = verify_text(R"(
    *(u64 *)(r10 - 16) = r10
    r1 = *(u64 *)(r10 - 16)
    *(u64 *)(r1 - 8) = 7
    r0 = *(u64 *)(r1 - 8)
    exit
  )");
  EXPECT_TRUE(spill.ok) << spill.message;
}

TEST(Verifier, ExplainsWithStateAndPath) {
  VerifyInput in;
  in.log_level = 2;
  VerifyResult r = verify_text(R"(
    r0 = 0
    if r1 == 0 goto +1
    r0 = *(u64 *)(r10 - 600)
    exit
  )",
                               in);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, VerifyReason::StackOutOfBounds) << r.message;
  EXPECT_FALSE(r.state.empty());
  EXPECT_NE(r.log.find("0: "), std::string::npos) << r.log;
}

// Corpus programs written before the verifier, for Ember's raw-memory
// contexts or for what only root may do in the kernel. They stay rejected,
// for these reasons, until they are rewritten (with the contexts Ember will
// build for packet program types).
const std::map<std::string, std::pair<std::string_view, const char*>> kRawContextPrograms = {
    {"core_reads.bpf.o core_reads",
     {"ctx-access", "reads skb->data in a socket filter, which has no direct packet access"}},
    {"task_info.bpf.o task_info",
     {"helper-arg", "passes the syscall context to bpf_get_current_comm; the kernel refuses that too"}},
    {"multi_prog.bpf.o first", {"ctx-access", "reads xdp_md as raw bytes"}},
    {"sum_loop.bpf.o sum_loop", {"ctx-access", "walks the socket filter's context as a byte buffer"}},
    {"btf_legacy_maps.bpf.o legacy",
     {"pointer-leak", "returns a map's address (the kernel allows that to root only)"}},
};

// Corpus programs that are wrong on purpose, with the reason they are
// rejected for.
const std::map<std::string, std::string_view> kMeantToBeRejected = {
    {"xdp_tcp_options.bpf.o tcp_options_unchecked", "packet-oob"},
};

// Every program of the clang-built corpus is accepted, with its maps.
TEST(Verifier, AcceptsTheClangBuiltCorpus) {
  std::string failures;
  int programs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(EMBER_BPF_OBJ_DIR)) {
    if (entry.path().extension() != ".o") continue;
    std::string stem = entry.path().filename().string();
    if (stem.rfind("out_of_bounds", 0) == 0) continue;  // meant to fault at run time (unverified)
    Runtime rt;
    auto obj = Object::open_file(rt, entry.path().string());
    if (!obj) continue;  // objects meant to fail loading are tested elsewhere
    if (!(*obj)->load()) continue;
    for (Prog* p : (*obj)->progs()) {
      ++programs;
      VerifyInput in = p->verify_input();
      VerifyResult r = verify(p->code(), in);
      if (auto gap = kRawContextPrograms.find(stem + " " + p->name()); gap != kRawContextPrograms.end()) {
        EXPECT_FALSE(r.ok) << stem << " " << p->name()
                           << " is accepted now: remove it from kRawContextPrograms";
        EXPECT_EQ(reason_name(r.reason), gap->second.first) << r.message;
        std::printf("[ NOT YET  ] %s %s: %s\n", stem.c_str(), p->name().c_str(), gap->second.second);
        continue;
      }
      if (auto bad = kMeantToBeRejected.find(stem + " " + p->name()); bad != kMeantToBeRejected.end()) {
        EXPECT_FALSE(r.ok) << stem << " " << p->name() << " must be rejected";
        EXPECT_EQ(reason_name(r.reason), bad->second) << r.message;
        continue;
      }
      if (!r.ok)
        failures += "  " + stem + " " + p->name() + ": [" + std::string(reason_name(r.reason)) + "] " +
                    r.message + "\n    state: " + r.state + "\n";
    }
  }
  EXPECT_GT(programs, 30);
  EXPECT_TRUE(failures.empty()) << failures;
}

// Beyond the kernel: a clang-built XDP parser whose TCP-options loop forks
// a few ways per iteration. The kernel walks every path and gives up after
// 1M instructions (E2BIG); Ember joins paths at the loop head and proves
// it, and still rejects the same parser missing one bounds check.
TEST(Verifier, ProvesTheTcpOptionsParserTheKernelGivesUpOn) {
  std::string path = std::string(EMBER_BPF_OBJ_DIR) + "/xdp_tcp_options.bpf.o";
  Runtime rt;
  auto obj = Object::open_file(rt, path);
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  ASSERT_TRUE((*obj)->load(LoadOptions{.verify = false}).ok());
  Prog* good = (*obj)->prog("tcp_options");
  Prog* bad = (*obj)->prog("tcp_options_unchecked");
  ASSERT_TRUE(good && bad);
  VerifyResult r = verify(good->code(), good->verify_input());
  EXPECT_TRUE(r.ok) << reason_name(r.reason) << ": " << r.message;
  std::printf("Ember: tcp_options verified in %llu instructions, %.1f ms\n",
              static_cast<unsigned long long>(r.stats.insns_processed), r.stats.time_ns / 1e6);
  VerifyResult rb = verify(bad->code(), bad->verify_input());
  EXPECT_FALSE(rb.ok);
  EXPECT_EQ(rb.reason, VerifyReason::PacketOutOfBounds) << rb.message;

  std::string why;
  if (!testing::kernel_bpf_available(&why)) GTEST_SKIP() << "the kernel cannot be asked: " << why;
  bpf_object* kobj = bpf_object__open_file(path.c_str(), nullptr);
  ASSERT_NE(kobj, nullptr);
  bpf_program* unchecked = bpf_object__find_program_by_name(kobj, "tcp_options_unchecked");
  ASSERT_NE(unchecked, nullptr);
  bpf_program__set_autoload(unchecked, false);
  libbpf_print_fn_t quiet = libbpf_set_print(nullptr);  // its log of the 1M-instruction walk
  int err = bpf_object__load(kobj);
  libbpf_set_print(quiet);
  bpf_object__close(kobj);
  EXPECT_EQ(err, -E2BIG) << "the kernel was expected to give up on tcp_options (1M instructions)";
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// The fixture corpus (tests/verifier): every accept fixture is accepted and
// every reject fixture rejected for its stated reason.
TEST(Verifier, FixtureCorpusVerdictsAndReasons) {
  auto paths = testing::fixture_paths();
  ASSERT_GT(paths.size(), 300u);
  int agree = 0;
  std::string mismatches;
  for (const std::string& path : paths) {
    auto f = testing::parse_fixture(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    VerifyInput in;
    in.type = f->type;
    in.attach = f->attach;
    in.sleepable = f->sleepable;
    in.gpl = f->gpl;
    in.maps = f->maps;
    VerifyResult r = verify(std::span<const RawInsn>(f->insns), in);
    bool good = f->accept ? r.ok : (!r.ok && r.reason == f->reason);
    if (good) {
      ++agree;
      continue;
    }
    mismatches += "  " + f->name + " (" + (f->accept ? "accept" : std::string(reason_name(f->reason))) +
                  "): Ember says " + (r.ok ? std::string("accept") : std::string(reason_name(r.reason))) +
                  (r.ok ? "" : ": " + r.message) + "\n";
  }
  EXPECT_TRUE(mismatches.empty()) << agree << " of " << paths.size() << " agree; disagreements:\n"
                                  << mismatches;
}

}  // namespace
}  // namespace ember
