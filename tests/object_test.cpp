// The object loader's linking: programs found by their SEC() names,
// subprograms from .text appended and calls relocated, data references
// recorded, and the linked code run in the interpreter.
#include "ember/object.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>

#include "ember/helpers.hpp"
#include "ember/vm.hpp"

namespace ember::testing {
namespace {

std::vector<uint8_t> read(const std::string& stem) {
  std::ifstream in(std::string(EMBER_BPF_OBJ_DIR) + "/" + stem + ".bpf.o", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

Result<uint64_t> run(const ObjectProgram& p, std::vector<uint8_t> mem) {
  auto prog = decode(p.insns);
  if (!prog) return prog.error();
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return interp.error();
  return interp->run(RunInput::memory(mem));
}

TEST(Object, LinksStaticAndGlobalSubprograms) {
  auto bytes = read("subprog");
  auto obj = load_object(bytes, "subprog.bpf.o");
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  EXPECT_EQ(obj->license, "GPL");
  ASSERT_EQ(obj->programs.size(), 1u);
  const ObjectProgram& p = obj->programs[0];
  EXPECT_EQ(p.name, "subprog");
  EXPECT_EQ(p.section, "socket");
  EXPECT_EQ(p.type.def->prog_type, ProgType::SocketFilter);
  EXPECT_EQ(p.origin.size(), p.insns.size());
  EXPECT_TRUE(p.data_refs.empty());
  auto r0 = run(p, {3, 4, 0, 0, 0, 0, 0, 0});
  ASSERT_TRUE(r0.ok()) << r0.error().message;
  EXPECT_EQ(*r0, 3u * 3 + 4 * 4 + 1);
}

TEST(Object, EachProgramGetsWhatItReaches) {
  auto bytes = read("multi_prog");
  auto obj = load_object(bytes, "multi_prog.bpf.o");
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  EXPECT_EQ(obj->license, "Dual BSD/GPL");
  ASSERT_EQ(obj->programs.size(), 2u);
  const ObjectProgram* first = obj->find("first");
  const ObjectProgram* second = obj->find("tc");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->type.def->prog_type, ProgType::Xdp);
  EXPECT_EQ(second->name, "second");
  EXPECT_LT(second->insns.size(), first->insns.size());  // `second` does not carry `twice`
  auto a = run(*first, {5, 7, 0, 0});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, 2u * 5 + 3 * 7);
  auto b = run(*second, {5, 7, 0, 0});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, 15u);
}

TEST(Object, RunsBoundedLoops) {
  auto bytes = read("sum_loop");
  auto obj = load_object(bytes, "sum_loop.bpf.o");
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  std::vector<uint8_t> mem(64);
  uint64_t want = 0;
  for (size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint8_t>(i * 3), want += mem[i];
  auto r0 = run(obj->programs.at(0), mem);
  ASSERT_TRUE(r0.ok()) << r0.error().message;
  EXPECT_EQ(*r0, want);
}

TEST(Object, RecordsMapAndGlobalDataReferences) {
  auto bytes = read("maps_and_helpers");
  auto obj = load_object(bytes, "maps_and_helpers.bpf.o");
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  const ObjectProgram& p = obj->programs.at(0);
  std::set<std::string> sections;
  for (const DataRef& d : p.data_refs) {
    sections.insert(d.section);
    EXPECT_EQ(p.insns[d.insn].opcode, 0x18) << "a data reference must be an ld_imm64";
  }
  EXPECT_TRUE(sections.count(".maps"));
  EXPECT_TRUE(sections.count(".rodata"));
  EXPECT_TRUE(sections.count(".data"));
  EXPECT_TRUE(sections.count(".bss"));
  // Until the map layer resolves them, running it is an error that says so.
  auto r0 = run(p, std::vector<uint8_t>(16));
  ASSERT_FALSE(r0.ok());
  EXPECT_NE(r0.error().message.find("refers to a map"), std::string::npos) << r0.error().message;
}

TEST(Object, UnknownSectionsAreReportedByName) {
  auto bytes = read("unknown_section");
  auto obj = load_object(bytes, "unknown_section.bpf.o");
  ASSERT_FALSE(obj.ok());
  EXPECT_NE(obj.error().message.find("unknown_section.bpf.o: section 'frobnicate' is not a program section"),
            std::string::npos)
      << obj.error().message;
}

TEST(Object, CorruptObjectsAreErrorsNotCrashes) {
  auto bytes = read("multi_prog");
  ASSERT_FALSE(bytes.empty());
  for (size_t cut = 0; cut < bytes.size(); cut += 97) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + cut);
    EXPECT_FALSE(load_object(part, "cut.o").ok()) << cut;
  }
  std::vector<uint8_t> flipped = bytes;
  for (size_t i = 64; i < flipped.size(); i += 13) {
    flipped[i] ^= 0xff;
    (void)load_object(flipped, "flipped.o");  // any outcome but a crash
    flipped[i] ^= 0xff;
  }
}

}  // namespace
}  // namespace ember::testing
