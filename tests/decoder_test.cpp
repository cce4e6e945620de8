// The decoder: every table entry decodes to its own Op; every kind of
// invalid encoding is rejected with its instruction index.
#include <gtest/gtest.h>

#include "ember/isa.hpp"
#include "test_util.hpp"

namespace ember::testing {
namespace {

std::string decode_error(std::vector<RawInsn> insns) {
  auto p = decode(insns);
  return p ? "" : p.error().message;
}

TEST(Decoder, EveryTableEntryDecodesToItself) {
  for (const OpInfo& info : op_table()) {
    Inst in;
    in.op = info.op;
    in.dst = info.form == Form::LdAbs || info.form == Form::LdInd || info.form == Form::Call ||
                     info.form == Form::CallLocal || info.form == Form::Ja || info.form == Form::Ja32 ||
                     info.form == Form::Exit
                 ? 0
                 : 1;
    in.src = info.form == Form::AluReg || info.form == Form::Ldx || info.form == Form::Stx ||
                     info.form == Form::Atomic || info.form == Form::JmpReg || info.form == Form::LdInd
                 ? 2
                 : 0;
    std::vector<RawInsn> out;
    encode(in, out);
    ASSERT_FALSE(out.empty());
    const OpInfo* found = lookup_opcode(out[0]);
    ASSERT_NE(found, nullptr) << info.name;
    EXPECT_EQ(found->op, info.op) << info.name;
  }
}

TEST(Decoder, NumberOfOpsCoversTheIsa) {
  // 36 ALU64 + 37 ALU32 + 50 jumps/calls + 7 LD + 7 LDX + 8 ST/STX + 20 atomics.
  EXPECT_EQ(kNumOps, op_table().size());
  EXPECT_GE(kNumOps, 160u);
}

TEST(Decoder, LdImm64JoinsBothHalves) {
  auto p =
      decode(std::vector<RawInsn>{raw(0x18, 0, 0, 0, 0x55667788), raw(0, 0, 0, 0, 0x11223344), exit_insn()});
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->insts.size(), 3u);
  EXPECT_EQ(p->insts[0].imm64, 0x1122334455667788ull);
  EXPECT_TRUE(p->insts[1].second_half);
}

TEST(Decoder, JumpTargetsAreAbsolute) {
  auto p = decode(std::vector<RawInsn>{raw(0x15, 1, 0, 1, 0), mov64_imm(0, 1), exit_insn()});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->insts[0].target, 2u);
}

TEST(Decoder, RejectsEmptyProgram) { EXPECT_NE(decode_error({}), ""); }

TEST(Decoder, RejectsUnknownOpcode) {
  EXPECT_EQ(decode_error({mov64_imm(0, 0), raw(0xff), exit_insn()}), "instruction 1: unknown opcode 0xff");
}

TEST(Decoder, RejectsBadRegister) {
  EXPECT_EQ(decode_error({mov64_imm(11, 0), exit_insn()}), "instruction 0: invalid register r11");
  EXPECT_EQ(decode_error({mov64_imm(0, 0), mov64_reg(0, 12), exit_insn()}),
            "instruction 1: invalid register r12");
}

TEST(Decoder, RejectsWriteToR10) {
  EXPECT_EQ(decode_error({mov64_imm(10, 0), exit_insn()}),
            "instruction 0: write to the read-only frame pointer r10");
  EXPECT_EQ(decode_error({raw(0x61, 10, 1), exit_insn()}),
            "instruction 0: write to the read-only frame pointer r10");
  // Atomic fetch writes its source register.
  EXPECT_NE(decode_error({raw(0xdb, 1, 10, 0, 0x01), exit_insn()}), "");
  // Storing through r10 is fine.
  EXPECT_EQ(decode_error({raw(0x7a, 10, 0, -8, 1), mov64_imm(0, 0), exit_insn()}), "");
}

TEST(Decoder, RejectsReservedFields) {
  EXPECT_NE(decode_error({raw(0xb7, 0, 1, 0, 1), exit_insn()}), "");  // mov imm with src set
  EXPECT_NE(decode_error({raw(0xbf, 0, 1, 0, 7), exit_insn()}), "");  // mov reg with imm set
  EXPECT_NE(decode_error({raw(0x07, 0, 0, 3, 1), exit_insn()}), "");  // add with offset
  EXPECT_NE(decode_error({raw(0x95, 0, 0, 0, 1)}), "");               // exit with imm
  EXPECT_NE(decode_error({raw(0x85, 1, 0, 0, 1), exit_insn()}), "");  // call with dst
  EXPECT_NE(decode_error({raw(0x05, 0, 0, 0, 1), exit_insn()}), "");  // ja with imm
}

TEST(Decoder, RejectsBadDiscriminators) {
  auto e = decode_error({raw(0x3f, 0, 1, 2, 0), exit_insn()});  // div with offset 2
  EXPECT_NE(e.find("invalid offset 2"), std::string::npos) << e;
  EXPECT_NE(decode_error({raw(0xdc, 0, 0, 0, 24), exit_insn()}), "");         // be24
  EXPECT_NE(decode_error({raw(0xbc, 0, 1, 32, 0), exit_insn()}), "");         // movsx32 from 32 bits
  EXPECT_NE(decode_error({raw(0xdb, 0, 1, 0, 0x02), exit_insn()}), "");       // atomic op 2
  EXPECT_NE(decode_error({raw(0x85, 0, 3, 0, 1), exit_insn()}), "");          // call kind 3
  EXPECT_NE(decode_error({raw(0x18, 0, 7, 0, 1), raw(0), exit_insn()}), "");  // pseudo 7
  // A map fd, map index or function has nothing in the second immediate.
  EXPECT_EQ(decode_error({raw(0x18, 0, 1, 0, 3), raw(0, 0, 0, 0, 1), exit_insn()}),
            "instruction 1: second slot of this ld_imm64 must have a zero immediate");
  EXPECT_EQ(decode_error({raw(0x18, 0, 2, 0, 3), raw(0, 0, 0, 0, 8), exit_insn()}), "");  // map value + 8
}

TEST(Decoder, RejectsJumpsOutOfRange) {
  EXPECT_EQ(decode_error({raw(0x05, 0, 0, 5, 0), exit_insn()}),
            "instruction 0: jump out of range to 6 (program has 2 instructions)");
  EXPECT_NE(decode_error({raw(0x05, 0, 0, -2, 0), exit_insn()}), "");
  EXPECT_NE(decode_error({raw(0x06, 0, 0, 0, 9), exit_insn()}), "");  // ja32
  EXPECT_NE(decode_error({raw(0x85, 0, 1, 0, 7), exit_insn()}), "");  // call local
}

TEST(Decoder, RejectsJumpIntoLdImm64) {
  auto e = decode_error({raw(0x05, 0, 0, 1, 0), raw(0x18, 0, 0, 0, 1), raw(0), exit_insn()});
  EXPECT_EQ(e, "instruction 0: jump into the middle of ld_imm64 at 1");
}

TEST(Decoder, RejectsTruncatedLdImm64) {
  EXPECT_EQ(decode_error({raw(0x18, 0, 0, 0, 1)}), "instruction 0: ld_imm64 is missing its second slot");
  EXPECT_NE(decode_error({raw(0x18, 0, 0, 0, 1), raw(0x07), exit_insn()}), "");
}

TEST(Decoder, RejectsFallingOffTheEnd) {
  auto e = decode_error({mov64_imm(0, 0)});
  EXPECT_NE(e.find("instruction 0: the last instruction is not exit"), std::string::npos) << e;
  EXPECT_NE(decode_error({mov64_imm(0, 0), raw(0x15, 0, 0, -2, 0)}), "");  // conditional at the end
  EXPECT_EQ(decode_error({mov64_imm(0, 0), raw(0x05, 0, 0, -2, 0)}), "");  // a loop back is fine
}

TEST(Decoder, RejectsLengthNotMultipleOfEight) {
  std::vector<uint8_t> bytes(13);
  auto p = decode_bytes(bytes);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("not a multiple of 8"), std::string::npos);
}

TEST(Decoder, EncodeRoundTripsEveryDecodedProgram) {
  std::vector<RawInsn> in = {
      raw(0x18, 1, 0, 0, -1), raw(0, 0, 0, 0, 7),     raw(0xdb, 1, 2, -8, 0xf1), raw(0xbf, 3, 4, 16, 0),
      raw(0x3f, 1, 2, 1, 0),  raw(0xd7, 1, 0, 0, 64), raw(0x85, 0, 1, 0, 0),     exit_insn()};
  auto p = decode(in);
  ASSERT_TRUE(p) << p.error().message;
  std::vector<RawInsn> out;
  for (const Inst& i : p->insts) encode(i, out);
  EXPECT_EQ(insns_to_bytes(out), insns_to_bytes(in));
}

}  // namespace
}  // namespace ember::testing
