// Soundness of the verifier, by random testing: every random program it
// accepts runs in the interpreter's checked mode, and no check may fire (a
// fault, or running out of instructions, means the verifier accepted an
// unsafe program). Random garbage and mutated programs must get a verdict,
// never a crash or a hang.
//
// A short run is part of `make test`. For a long one:
//   EMBER_SOUNDNESS_PROGRAMS=1000000 ./ember_tests --gtest_filter='VerifierSoundness*'
// and EMBER_SOUNDNESS_SEED=N to start elsewhere (the default seed is fixed,
// so that a failure in CI is reproducible). fuzz/fuzz_verifier.cpp is the
// coverage-guided counterpart (fuzz/run-fuzzers.sh).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "ember/asm.hpp"
#include "ember/verifier.hpp"
#include "support/random_programs.hpp"

namespace ember {
namespace {

// Release: about a second. Sanitizers make each program ~10x slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EMBER_SOUNDNESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define EMBER_SOUNDNESS_SANITIZED 1
#endif
#endif
#ifdef EMBER_SOUNDNESS_SANITIZED
constexpr uint64_t kDefaultPrograms = 3000;
#else
constexpr uint64_t kDefaultPrograms = 20000;
#endif

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

uint64_t programs() { return env_u64("EMBER_SOUNDNESS_PROGRAMS", kDefaultPrograms); }
uint64_t base_seed() { return env_u64("EMBER_SOUNDNESS_SEED", 0x5eed); }

// Accepted programs end, and quickly: loops are bounded by small counters.
constexpr uint64_t kRunBudget = 1'000'000;
constexpr int kMaxReports = 5;

std::string stats_text(const VerifyStats& s) {
  return "insns_processed=" + std::to_string(s.insns_processed) + " states=" + std::to_string(s.states) +
         " pruned=" + std::to_string(s.pruned) + " stack_depth=" + std::to_string(s.stack_depth) +
         " max_ctx_offset=" + std::to_string(s.max_ctx_offset);
}

std::string describe(const testing::RandomProgram& p, const VerifyResult& v, const testing::CheckedRun& run) {
  return "program seed " + std::to_string(p.seed) + ", type " +
         std::to_string(static_cast<uint32_t>(p.input.type)) + ", mem_size " +
         std::to_string(p.input.mem_size) + ", maps: hash value_size " +
         std::to_string(p.input.maps.empty() ? 0 : p.input.maps[0].value_size) + " key_size " +
         std::to_string(p.input.maps.empty() ? 0 : p.input.maps[0].key_size) + ", array value_size " +
         std::to_string(p.input.maps.size() < 2 ? 0 : p.input.maps[1].value_size) +
         "\nverifier: " + stats_text(v.stats) + "\nchecked mode: " + run.error + "\n" +
         testing::listing(p.insns);
}

TEST(VerifierSoundness, AcceptedRandomProgramsRunWithoutAFault) {
  const uint64_t n = programs();
  testing::RandomProgramGenerator gen(base_seed());
  uint64_t accepted = 0, faults = 0, setup_errors = 0;
  std::map<std::string, uint64_t> reasons;
  const char* show = std::getenv("EMBER_SOUNDNESS_SHOW");
  int shown = 0;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    testing::RandomProgram p = gen.next();
    VerifyInput in = p.input;
    in.insn_budget = 200'000;
    VerifyResult v = verify(std::span<const RawInsn>(p.insns), in);
    if (!v.ok) {
      std::string reason(reason_name(v.reason));
      // EMBER_SOUNDNESS_SHOW=REASON: a few programs rejected for REASON,
      // to see what the generator gets wrong.
      if (show && reason == show && ++shown <= 3)
        std::printf("rejected [%s] seed %llu: %s\n%s\n", show, static_cast<unsigned long long>(p.seed),
                    v.message.c_str(), testing::listing(p.insns).c_str());
      ++reasons[reason];
      continue;
    }
    ++accepted;
    testing::CheckedRun run = testing::run_checked(p, kRunBudget, p.seed ^ 0xda7a);
    if (!run.setup_ok) {
      if (++setup_errors <= kMaxReports)
        ADD_FAILURE() << "accepted, but it cannot run: " << describe(p, v, run);
      continue;
    }
    if (run.fault && ++faults <= kMaxReports)
      ADD_FAILURE() << "the verifier accepted a program that faults in checked mode: " << describe(p, v, run);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string why;
  for (const auto& [name, count] : reasons) why += " " + name + "=" + std::to_string(count);
  std::printf(
      "VerifierSoundness: %llu programs, %llu accepted (%.1f%%), all run in checked mode; %llu faults; "
      "%.2fs\n  rejected:%s\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(accepted),
      n ? 100.0 * static_cast<double>(accepted) / static_cast<double>(n) : 0.0,
      static_cast<unsigned long long>(faults), secs, why.c_str());
  RecordProperty("programs", std::to_string(n));
  RecordProperty("accepted", std::to_string(accepted));
  EXPECT_EQ(faults, 0u);
  EXPECT_EQ(setup_errors, 0u);
  // The check means something only if a good share of programs get through.
  if (n >= 500) {
    EXPECT_GE(static_cast<double>(accepted), 0.15 * static_cast<double>(n));
  }
}

// Garbage: random slots (mostly real opcodes), and generated programs with
// a few slots mutated. Every input gets a verdict within a small budget;
// whatever is accepted runs in checked mode without a fault too.
TEST(VerifierSoundness, GarbageGetsAVerdictAndAcceptedGarbageIsSafe) {
  const uint64_t n = programs();
  testing::RandomProgramGenerator gen(base_seed() + 1);
  std::mt19937_64 rng(base_seed() + 2);
  uint64_t rejected = 0, accepted = 0, faults = 0, long_runs = 0;
  double slowest = 0;
  for (uint64_t i = 0; i < n; ++i) {
    testing::RandomProgram p = gen.next();
    if (i % 2 == 0) {
      p.insns = testing::random_slots(rng, 48);
      if (rng() % 2) p.input.mem_size = static_cast<int64_t>(rng() % 64);
    } else {
      p.insns = testing::mutate(std::move(p.insns), rng);
    }
    VerifyInput in = p.input;
    in.insn_budget = 20'000;
    auto t0 = std::chrono::steady_clock::now();
    VerifyResult v = verify(std::span<const RawInsn>(p.insns), in);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (secs > slowest) slowest = secs;
    if (!v.ok) {
      ++rejected;
      continue;
    }
    ++accepted;
    testing::CheckedRun run = testing::run_checked(p, kRunBudget, p.seed ^ 0xda7a);
    // The verifier proves that loops end, not that they end soon: a counter
    // may run up to 2^62. Garbage loops (`if r9 < 0x4b4d032 goto -4`) may
    // outlast the budget; a memory fault is what counts here. (Generated
    // programs loop at most 20 times, and there a budget overrun fails.)
    if (run.fault && run.error.find("budget") != std::string::npos) {
      ++long_runs;
      continue;
    }
    // Garbage may name a helper the runtime lacks: not the verifier's
    // business if the interpreter refuses to load it.
    if (run.fault && ++faults <= kMaxReports)
      ADD_FAILURE() << "the verifier accepted garbage that faults in checked mode: " << describe(p, v, run);
  }
  std::printf(
      "VerifierSoundness: %llu garbage programs, %llu rejected, %llu accepted (run: %llu faults, %llu beyond "
      "the instruction budget); slowest verdict %.3fs\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(rejected),
      static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(faults),
      static_cast<unsigned long long>(long_runs), slowest);
  EXPECT_EQ(faults, 0u);
  // A verdict within a 20,000-instruction budget takes milliseconds; seconds
  // would mean the budget is not what stops the walk.
  EXPECT_LT(slowest, 5.0);
}

// Found by the generator on a work-in-progress verifier: a loop whose exit
// test never changes, accepted because another register moves by a
// constant step in it (check_progress took any counter moving towards a
// bound), ran forever in checked mode.
TEST(VerifierSoundness, RejectsALoopWhoseExitIgnoresTheMovingCounter) {
  testing::RandomProgram p;
  p.input.mem_size = 8;
  p.input.type = ProgType::Tracepoint;
  auto insns = assemble(R"(
    r9 = 0
    r4 = 0
    r4 += 1
    *(u64 *)(r10 - 8) = r9
    if r9 < 5 goto -3
    r0 = 0
    exit
  )");
  ASSERT_TRUE(insns.ok()) << insns.error().message;
  p.insns = *insns;
  VerifyResult v = verify(std::span<const RawInsn>(p.insns), p.input);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, VerifyReason::UnboundedLoop) << v.message;
  if (!v.ok) return;
  testing::CheckedRun run = testing::run_checked(p, kRunBudget, 1);
  EXPECT_FALSE(run.fault) << describe(p, v, run);
}

}  // namespace
}  // namespace ember
