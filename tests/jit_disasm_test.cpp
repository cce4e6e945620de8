// The JIT listing on hand-written x86-64 bytes whose decoding is known (the
// Intel SDM's encodings): grouping by eBPF instruction, prologue, ld_imm64,
// instructions without code, undecodable bytes, and the text form.
#include "jit/jit_disasm.hpp"

#include <gtest/gtest.h>

#include "ember/asm.hpp"

namespace ember {
namespace {

Program program(const char* text) {
  auto insns = assemble(text);
  EXPECT_TRUE(insns.ok()) << insns.error().message;
  auto p = decode(*insns);
  EXPECT_TRUE(p.ok()) << p.error().message;
  return *p;
}

std::vector<std::string> texts(const JitBlock& b) {
  std::vector<std::string> out;
  for (const NativeInsn& n : b.native) out.push_back(n.text());
  return out;
}

// push %rbp; mov %rsp,%rbp | mov $1,%rax | leave; ret
const std::vector<uint8_t> kCode = {0x55, 0x48, 0x89, 0xe5, 0x48, 0xc7, 0xc0,
                                    0x01, 0x00, 0x00, 0x00, 0xc9, 0xc3};

TEST(JitDisasm, GroupsNativeCodeByEbpfInstruction) {
  Program p = program("mov %r0, 1\nexit\n");
  std::vector<JitLine> lines = {{0, 4}, {1, 11}};
  auto blocks = jit_listing(kCode, lines, p);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_FALSE(blocks[0].insn.has_value()) << "code before instruction 0 is the prologue";
  EXPECT_EQ(texts(blocks[0]), (std::vector<std::string>{"push %rbp", "mov %rsp, %rbp"}));
  EXPECT_EQ(blocks[1].insn, 0u);
  EXPECT_EQ(texts(blocks[1]), (std::vector<std::string>{"mov $0x1, %rax"}));
  EXPECT_EQ(blocks[1].native[0].offset, 4u);
  EXPECT_EQ(blocks[1].native[0].bytes, (std::vector<uint8_t>{0x48, 0xc7, 0xc0, 1, 0, 0, 0}));
  EXPECT_EQ(blocks[1].native[0].operation, "mov");
  EXPECT_EQ(blocks[1].native[0].operands, (std::vector<std::string>{"$0x1", "%rax"}));
  EXPECT_EQ(blocks[2].insn, 1u);
  EXPECT_EQ(texts(blocks[2]), (std::vector<std::string>{"leave", "ret"}));
}

TEST(JitDisasm, IntelSyntaxPutsTheDestinationFirst) {
  Program p = program("mov %r0, 1\nexit\n");
  std::vector<JitLine> lines = {{0, 4}, {1, 11}};
  auto blocks = jit_listing(kCode, lines, p, AsmSyntax::Intel);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(texts(blocks[1]), (std::vector<std::string>{"mov rax, 0x1"}));
}

TEST(JitDisasm, LdImm64IsOneInstructionAndEmptyBlocksKeepTheirPlace) {
  // ja +0 emits nothing; the ld_imm64's second slot is not an instruction.
  Program p = program("ja next\nnext:\nlddw %r0, 0x100000000\nexit\n");
  ASSERT_EQ(p.insts.size(), 4u);
  // movabs $0x100000000,%rax | ret
  std::vector<uint8_t> code = {0x48, 0xb8, 0, 0, 0, 0, 1, 0, 0, 0, 0xc3};
  std::vector<JitLine> lines = {{0, 0}, {1, 0}, {3, 10}};
  auto blocks = jit_listing(code, lines, p);
  ASSERT_EQ(blocks.size(), 3u) << "no prologue, no block for slot 2";
  EXPECT_EQ(blocks[0].insn, 0u);
  EXPECT_TRUE(blocks[0].native.empty());
  EXPECT_EQ(blocks[1].insn, 1u);
  ASSERT_EQ(blocks[1].native.size(), 1u);
  EXPECT_EQ(blocks[1].native[0].operation, "mov");
  EXPECT_EQ(blocks[1].native[0].bytes.size(), 10u);
  EXPECT_EQ(blocks[2].insn, 3u);
  EXPECT_EQ(texts(blocks[2]), (std::vector<std::string>{"ret"}));
}

TEST(JitDisasm, InstructionWithoutALineSitsBeforeTheNextOne) {
  Program p = program("mov %r0, 1\nexit\n");
  std::vector<JitLine> lines = {{1, 11}};  // instruction 0 not named
  auto blocks = jit_listing(kCode, lines, p);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].native.size(), 3u) << "the prologue runs up to the first line";
  EXPECT_EQ(blocks[1].insn, 0u);
  EXPECT_TRUE(blocks[1].native.empty());
  EXPECT_EQ(blocks[2].insn, 1u);
}

TEST(JitDisasm, UndecodableBytesAreListedOneAtATime) {
  Program p = program("exit\n");
  // 0x06 (push %es) does not exist in 64-bit mode; ret after it must still decode.
  std::vector<uint8_t> code = {0x06, 0xc3};
  std::vector<JitLine> lines = {{0, 0}};
  auto blocks = jit_listing(code, lines, p);
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_EQ(blocks[0].native.size(), 2u);
  EXPECT_FALSE(blocks[0].native[0].valid);
  EXPECT_EQ(blocks[0].native[0].text(), "(invalid)");
  EXPECT_EQ(blocks[0].native[0].bytes, std::vector<uint8_t>{0x06});
  EXPECT_TRUE(blocks[0].native[1].valid);
  EXPECT_EQ(blocks[0].native[1].text(), "ret");
}

TEST(JitDisasm, TextShowsSourceOnceEbpfAndNativeLines) {
  Program p = program("mov %r0, 1\nexit\n");
  std::vector<JitLine> lines = {{0, 4}, {1, 11}};
  JitTextOptions opts;
  opts.source = [](size_t) { return std::string("; return 1; @ one.c:3"); };
  auto text = jit_listing_text(jit_listing(kCode, lines, p), p, opts);
  std::vector<std::string> want = {
      "<prologue>:",
      "\t     0:\t55                            push %rbp",
      "\t     1:\t48 89 e5                      mov %rsp, %rbp",
      "; return 1; @ one.c:3",
      "     0: r0 = 0x1",
      "\t     4:\t48 c7 c0 01 00 00 00          mov $0x1, %rax",
      "     1: exit",
      "\t     b:\tc9                            leave",
      "\t     c:\tc3                            ret",
  };
  EXPECT_EQ(text, want);
  opts.bytes = false;
  opts.source = nullptr;
  text = jit_listing_text(jit_listing(kCode, lines, p), p, opts);
  ASSERT_EQ(text.size(), 8u);
  EXPECT_EQ(text[4], "\t     4:\tmov $0x1, %rax");
}

}  // namespace
}  // namespace ember
