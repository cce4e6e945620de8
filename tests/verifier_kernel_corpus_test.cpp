// The verifier's fixture corpus (tests/verifier, see its README.md) against
// the running kernel: every fixture parses, and the kernel's verifier gives
// each the verdict the fixture records (`; verdict:`, or `; kernel:` where
// Ember deliberately differs, with a `; kernel-note:` saying why). The
// verifier's own test runs ember::verify over the same fixtures.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/kernel_bpf.hpp"
#include "support/verifier_fixtures.hpp"

namespace ember::testing {
namespace {

std::string relative(const std::string& path) {
  std::string dir = verifier_fixtures_dir() + "/";
  return path.starts_with(dir) ? path.substr(dir.size()) : path;
}

// "reject/null-deref/lookup_no_check.txt" -> "reject_null_deref_lookup_no_check".
std::string test_name(const std::string& path) {
  std::string r = relative(path);
  if (r.ends_with(".txt")) r.resize(r.size() - 4);
  for (char& c : r)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return r;
}

TEST(VerifierKernelCorpus, EveryFixtureParses) {
  auto paths = fixture_paths();
  ASSERT_FALSE(paths.empty()) << "no fixtures under " << verifier_fixtures_dir();
  std::map<std::string, std::string> names;
  std::map<std::string, int> per_reason;
  size_t accepts = 0, rejects = 0, kernel_differs = 0;
  for (const std::string& p : paths) {
    auto f = parse_fixture(p);
    if (!f) {
      ADD_FAILURE() << f.error().message;
      continue;
    }
    auto [it, fresh] = names.emplace(f->name, p);
    EXPECT_TRUE(fresh) << "fixture name '" << f->name << "' is used twice: " << it->second << " and " << p;
    std::string r = relative(p);
    EXPECT_TRUE(r.starts_with(f->accept ? "accept/" : "reject/"))
        << p << ": a fixture whose verdict is " << (f->accept ? "accept" : "reject") << " lives under "
        << (f->accept ? "accept/" : "reject/");
    if (!f->accept) {
      std::string reason(fixture_reason_name(f->reason));
      // A reason subdirectory, if any, must be the fixture's reason.
      std::string sub = r.substr(7);
      if (size_t slash = sub.find('/'); slash != std::string::npos) {
        EXPECT_EQ(sub.substr(0, slash), reason) << p << ": filed under the wrong reason";
      }
      ++per_reason[reason];
    }
    (f->accept ? accepts : rejects)++;
    kernel_differs += f->kernel_accept != f->accept;
  }
  std::cout << "[ corpus   ] " << paths.size() << " fixtures: " << accepts << " accept, " << rejects
            << " reject, " << kernel_differs << " where the kernel's verdict differs\n";
  for (const auto& [reason, n] : per_reason) std::cout << "[ corpus   ]   " << reason << ": " << n << "\n";
}

TEST(VerifierKernelCorpus, BadFixturesNameFileAndLine) {
  auto bad = [](const std::string& text, const std::string& part) {
    auto f = parse_fixture_text(text, "x.txt");
    ASSERT_FALSE(f.ok()) << "accepted:\n" << text;
    EXPECT_NE(f.error().message.find(part), std::string::npos) << f.error().message;
  };
  const std::string head = "; type: xdp\n; verdict: reject\n; why: w\n";
  bad(head + "; reason: no-such-reason\nexit\n", "x.txt:4: unknown reason 'no-such-reason'");
  bad("; type: nope\n; verdict: accept\n; why: w\nexit\n", "x.txt:1: unknown program type 'nope'");
  bad(head + "; reason: null-deref\n; map: 1 hash key=4 value=4 entries=1\nexit\n", "x.txt:5: map: index 1");
  bad(head + "; reason: null-deref\n; map: 0 hash key=4 value=4\nexit\n", "entries= is missing");
  bad(head + "; reason: null-deref\n; map: 0 array_of_maps key=4 value=4 entries=1\nexit\n", "needs inner=");
  bad(head + "; reason: null-deref\n; mpa: 0\nexit\n", "x.txt:5: unknown header key");
  bad(head + "; reason: null-deref\nr0 = 0\nfrob\nexit\n", "x.txt: line 6: unknown instruction");
  bad(head + "exit\n", "needs '; reason:'");
  bad(head + "; reason: null-deref\n; kernel: accept\nexit\n", "go together");
  bad(head + "; reason: null-deref\n; kernel: reject\n; kernel-note: n\nexit\n", "only for a kernel verdict");
  bad(head + "; reason: null-deref\nr1 = map[idx:0] ll\nexit\n", "names map 0 but 0 map(s)");
  bad(head + "; reason: null-deref\nexit\n; why: again\n", "x.txt:6: header line 'why:' after");

  auto f = parse_fixture_text(
      "; type: sched_cls\n; verdict: accept\n; why: w\n"
      "; map: 0 array_of_maps key=4 value=4 entries=2 inner=array:4:8:1\n"
      "; map: 1 hash key=8 value=16 entries=4 flags=0x1 lock=8\n"
      "; a comment\nr1 = map[idx:1] ll\n; another\nr0 = 0\nexit\n",
      "dir/good.txt");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->name, "good");
  EXPECT_TRUE(f->accept && f->kernel_accept && f->gpl);
  ASSERT_EQ(f->maps.size(), 2u);
  ASSERT_TRUE(f->maps[0].inner);
  EXPECT_EQ(f->maps[0].inner->value_size, 8u);
  EXPECT_EQ(f->maps[1].map_flags, 1u);
  EXPECT_EQ(f->lock_offsets, (std::vector<int32_t>{-1, 8}));
  EXPECT_EQ(f->insns.size(), 4u);
}

class VerifierKernelCorpusFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(VerifierKernelCorpusFixture, KernelAgrees) {
  static std::string unavailable;
  static const bool available = kernel_bpf_available(&unavailable);
  if (!available) GTEST_SKIP() << "the kernel cannot be asked: " << unavailable;
  auto f = parse_fixture(GetParam());
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto v = kernel_verify_fixture(*f);
  ASSERT_TRUE(v.ok()) << f->path << ": " << v.error().message;
  if (v->accepted == f->kernel_accept) return;
  std::string expected = f->kernel_accept ? "accept" : "reject";
  ADD_FAILURE() << f->path << "\n  the kernel " << (v->accepted ? "accepted" : "rejected")
                << " it; the fixture expects the kernel to " << expected
                << (f->kernel_accept != f->accept ? " (kernel-note: " + f->kernel_note + ")" : "")
                << "\n  why: " << f->why << "\n"
                << (v->accepted
                        ? ""
                        : "  errno " + std::to_string(v->error) + ", log tail:\n" + log_tail(v->log, 12));
}

INSTANTIATE_TEST_SUITE_P(VerifierKernelCorpus, VerifierKernelCorpusFixture,
                         ::testing::ValuesIn(fixture_paths()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return test_name(info.param);
                         });

}  // namespace
}  // namespace ember::testing
