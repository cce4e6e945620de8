// The bpf_conformance suite (../shared/conformance) in the interpreter, in
// checked and fast mode, and through the `ember conformance-plugin`
// protocol that the suite's own runner speaks.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "support/conformance_data.hpp"

namespace ember::testing {
namespace {

std::vector<std::filesystem::path> files() { return conformance_files(EMBER_CONFORMANCE_DIR); }

std::string hex_bytes(const std::vector<uint8_t>& bytes) {
  std::string s;
  char b[3];
  for (uint8_t v : bytes) std::snprintf(b, sizeof b, "%02x", v), s += b;
  return s;
}

struct Outcome {
  int passed = 0;
  std::vector<std::string> failures;
};

void run_case(const std::filesystem::path& file, bool checked, Outcome& out) {
  auto c = read_conformance_case(file);
  if (!c) return out.failures.push_back(c.error().message);
  auto insns = conformance_program(*c);
  auto prog = insns ? decode(*insns) : Result<Program>(insns.error());
  auto helpers = conformance_helper_table();
  auto interp = prog ? Interpreter::create(*prog, helpers) : Result<Interpreter>(prog.error());
  if (!interp) {
    if (!c->error.empty()) return void(++out.passed);  // an expected rejection
    return out.failures.push_back(c->name + ": rejected: " + interp.error().message);
  }
  std::vector<uint8_t> mem = c->mem;
  RunOptions opts;
  opts.checked = checked;
  auto r0 = interp->run(RunInput::memory(mem), opts);
  if (!r0) return out.failures.push_back(c->name + ": run failed: " + r0.error().message);
  if (!c->result || *r0 != *c->result) {
    std::ostringstream os;
    os << c->name << ": r0 = 0x" << std::hex << *r0 << ", expected 0x" << c->result.value_or(0);
    return out.failures.push_back(os.str());
  }
  ++out.passed;
}

void run_suite(bool checked) {
  auto all = files();
  if (all.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  Outcome out;
  for (const auto& f : all) run_case(f, checked, out);
  for (const auto& f : out.failures) ADD_FAILURE() << f;
  std::printf("conformance (%s mode): %d/%zu passed\n", checked ? "checked" : "fast", out.passed, all.size());
  EXPECT_EQ(out.passed, static_cast<int>(all.size()));
  EXPECT_GE(all.size(), 313u) << "the shared suite should hold 313 tests";
}

TEST(Conformance, AllPassCheckedMode) { run_suite(true); }
TEST(Conformance, AllPassFastMode) { run_suite(false); }

// The plugin protocol: program hex on stdin, memory hex as argv[1], r0 in
// hex on stdout.
TEST(Conformance, AllPassThroughPluginProtocol) {
  auto all = files();
  if (all.empty()) GTEST_SKIP() << "bpf_conformance suite not found at " << EMBER_CONFORMANCE_DIR;
  int passed = 0;
  for (const auto& f : all) {
    auto c = read_conformance_case(f);
    ASSERT_TRUE(c) << c.error().message;
    auto insns = conformance_program(*c);
    ASSERT_TRUE(insns) << c->name << ": " << insns.error().message;
    std::string tmp = ::testing::TempDir() + "ember_plugin_in.txt";
    FILE* in = std::fopen(tmp.c_str(), "w");
    ASSERT_NE(in, nullptr);
    std::fputs((hex_bytes(insns_to_bytes(*insns)) + "\n").c_str(), in);
    std::fclose(in);
    std::string cmd = std::string(EMBER_BIN) + " conformance-plugin " + hex_bytes(c->mem) + " < " + tmp + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {};
    std::string output;
    while (std::fgets(buf, sizeof buf, p)) output += buf;
    int status = pclose(p);
    uint64_t r0 = std::strtoull(output.c_str(), nullptr, 16);
    if (status == 0 && c->result && r0 == *c->result) ++passed;
    else ADD_FAILURE() << c->name << ": plugin said '" << output << "' (status " << status << ")";
  }
  std::printf("conformance (plugin protocol): %d/%zu passed\n", passed, all.size());
  EXPECT_EQ(passed, static_cast<int>(all.size()));
}

}  // namespace
}  // namespace ember::testing
