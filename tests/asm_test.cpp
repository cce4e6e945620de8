// The assembler and disassembler: round trips over every encoding of the
// opcode table in both syntaxes, the conformance suite's programs, located
// errors, and LLVM (llvm-mc-14 / llvm-objdump-14) as an outside reference.
#include "ember/asm.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "support/conformance_data.hpp"

namespace ember::testing {
namespace {

// Instructions covering every table entry with varied registers, offsets and
// immediates (including the extremes of each field).
std::vector<Inst> sample_instructions() {
  std::vector<Inst> out;
  const int32_t imms[] = {0, 1, -1, 0x7fffffff, INT32_MIN, 0x1234, -300};
  const int16_t offs[] = {0, 4, -8, 32767, -32768};
  size_t k = 0;
  for (const OpInfo& info : op_table()) {
    for (int variant = 0; variant < 5; ++variant, ++k) {
      Inst inst;
      inst.op = info.op;
      inst.dst = static_cast<uint8_t>(k % 10);
      inst.src = static_cast<uint8_t>((k * 7 + 3) % 11);
      inst.off = offs[k % std::size(offs)];
      inst.imm = imms[k % std::size(imms)];
      FormFields used = form_fields(info.form);
      if (!used.dst) inst.dst = 0;
      if (!used.src) inst.src = 0;
      if (!used.off) inst.off = 0;
      if (!used.imm) inst.imm = 0;
      if (info.form == Form::LdImm64) {
        inst.src = static_cast<uint8_t>(variant);  // pseudo sources 0..4
        inst.imm64 = variant == 0 ? 0xfedcba9876543210ull : static_cast<uint32_t>(inst.imm);
        if (inst.pseudo() == Pseudo::MapValue) inst.imm64 |= 0x10ull << 32;
      }
      out.push_back(inst);
    }
  }
  return out;
}

bool same(const std::vector<RawInsn>& a, const std::vector<RawInsn>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](const RawInsn& x, const RawInsn& y) {
           return x.opcode == y.opcode && x.regs == y.regs && x.off == y.off && x.imm == y.imm;
         });
}

std::string hex(const std::vector<RawInsn>& raw) {
  std::string s;
  char b[4];
  for (uint8_t v : insns_to_bytes(raw)) std::snprintf(b, sizeof b, "%02x ", v), s += b;
  return s;
}

// The slots of a sample; callers skip samples the decoder rejects (such as
// r10 as a destination).
std::vector<RawInsn> encoded(const Inst& inst) {
  std::vector<RawInsn> raw;
  encode(inst, raw);
  return raw;
}

// Prints every sample in one syntax and assembles it back to its slots.
template <class Print>
void round_trip_samples(Print print) {
  size_t n = 0;
  for (const Inst& sample : sample_instructions()) {
    auto raw = encoded(sample);
    auto inst = decode_insn(raw, 0);
    if (!inst) continue;  // an invalid combination of sample fields (e.g. r10 as dst)
    std::string text = print(*inst);
    auto back = assemble(text);
    ASSERT_TRUE(back.ok()) << inst->info().name << ": '" << text << "': " << back.error().message;
    EXPECT_TRUE(same(*back, raw)) << inst->info().name << ": '" << text << "'\n want " << hex(raw)
                                  << "\n got  " << hex(*back);
    ++n;
  }
  EXPECT_GE(n, kNumOps * 3);
}

TEST(Assembler, EveryEncodingRoundTripsThroughLlvmSyntax) {
  round_trip_samples([](const Inst& i) { return disassemble_insn(i, 0); });
}

TEST(Assembler, EveryEncodingRoundTripsThroughConformanceSyntax) {
  round_trip_samples([](const Inst& i) { return to_conformance_asm(i, 0); });
}

TEST(Assembler, EveryTableEntryIsReachable) {
  // Each op must be produced by some text in each syntax.
  for (const OpInfo& info : op_table()) {
    Inst inst;
    inst.op = info.op;
    inst.dst = form_fields(info.form).dst ? 1 : 0;
    inst.src = form_fields(info.form).src && info.form != Form::LdImm64 ? 2 : 0;
    std::vector<RawInsn> raw;
    encode(inst, raw);
    auto decoded = decode_insn(raw, 0);
    ASSERT_TRUE(decoded.ok()) << info.name << ": " << decoded.error().message;
    for (std::string text : {disassemble_insn(*decoded, 0), to_conformance_asm(*decoded, 0)}) {
      auto back = assemble(text);
      ASSERT_TRUE(back.ok()) << info.name << ": " << back.error().message;
      auto again = decode_insn(*back, 0);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->op, info.op) << text;
    }
  }
}

TEST(Assembler, ConformanceProgramsAssembleAndRoundTrip) {
  auto files = conformance_files(EMBER_CONFORMANCE_DIR);
  if (files.empty()) GTEST_SKIP() << "bpf_conformance data not found at " << EMBER_CONFORMANCE_DIR;
  size_t programs = 0;
  for (const auto& f : files) {
    auto c = read_conformance_case(f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto insns = conformance_program(*c);
    ASSERT_TRUE(insns.ok()) << c->name << ": " << insns.error().message;
    auto prog = decode(*insns);
    if (!prog) continue;  // the decoder's own tests cover rejected programs
    std::string llvm_text, conf_text;
    for (size_t i = 0; i < prog->insts.size(); ++i) {
      if (prog->insts[i].second_half) continue;
      llvm_text += disassemble_insn(prog->insts[i], i) + "\n";
      conf_text += to_conformance_asm(prog->insts[i], i) + "\n";
    }
    for (const std::string& text : {llvm_text, conf_text}) {
      auto back = assemble(text);
      ASSERT_TRUE(back.ok()) << c->name << ": " << back.error().message << "\n" << text;
      EXPECT_TRUE(same(*back, *insns)) << c->name << "\n" << text;
    }
    ++programs;
  }
  EXPECT_GE(programs, 250u);
}

TEST(Assembler, LabelsAndTheImplicitExitLabel) {
  auto r = assemble(
      "  mov %r0, 0\n"
      "loop:\n"
      "  add %r0, 1   # count\n"
      "  jlt %r0, 10, loop\n"
      "  ja exit\n"
      "  mov %r0, 99\n"
      "  exit\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ((*r)[2].off, -2);  // back to loop
  EXPECT_EQ((*r)[3].off, 1);   // over the mov, to the first exit
}

TEST(Assembler, AcceptsLlvmObjdumpLinesAsPrinted) {
  auto r = assemble(
      "       0:\tb7 00 00 00 01 00 00 00\tr0 = 0x1\n"
      "       1:\t15 01 01 00 05 00 00 00\tif r1 == 0x5 goto +0x1 <LBB0_2>\n"
      "       2:\t18 01 00 00 89 67 45 23 00 00 00 00 01 00 00 00\tr1 = 0x123456789 ll\n"
      "       4:\t95 00 00 00 00 00 00 00\texit\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[1].off, 1);
  EXPECT_EQ((*r)[3].imm, 1);
}

TEST(Assembler, ImmediatesFollowTheConformanceRules) {
  auto r = assemble(
      "mov %r0, 0xffffffff\nmov %r0, -2147483648\nlddw %r1, 0xFFFFFFFFFFFFFFFF\nlddw %r1, -1\nexit\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].imm, -1);
  EXPECT_EQ((*r)[1].imm, INT32_MIN);
  EXPECT_EQ((*r)[2].imm, -1);
  EXPECT_EQ((*r)[3].imm, -1);
  EXPECT_EQ((*r)[5].imm, -1);
}

void expect_error(const std::string& text, const std::string& part) {
  auto r = assemble(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << "message: " << r.error().message;
}

TEST(Assembler, ErrorsNameTheLineAndTheProblem) {
  expect_error("mov %r0, 1\nfrob %r1\nexit\n", "line 2: unknown instruction 'frob'");
  expect_error("add %r1, [%r2]\n", "line 1: invalid operands");
  expect_error("add %r1, [%r2]\n", "'add %rD, IMM'");
  expect_error("exit\nmov %r11, 1\n", "line 2: invalid register '%r11'");
  expect_error("mov %r0, 0x100000000\n", "line 1: immediate 4294967296 is out of range");
  expect_error("ldxw %r0, [%r1+40000]\n", "offset 40000 is out of range");
  expect_error("ja nowhere\nexit\n", "line 1: unknown label 'nowhere'");
  expect_error("a:\na:\nexit\n", "line 2: label 'a' is defined twice");
  expect_error("mov %r0, 1 @\n", "unexpected character '@'");
  expect_error("mov %r0, 0x\n", "malformed number");
  expect_error("# nothing\n", "no instructions");
  expect_error("r1 = 99999999999999999999 ll\n", "does not fit in 64 bits");
}

TEST(Assembler, FarJumpsNeedJa32) {
  std::string text = "ja far\n";
  for (int i = 0; i < 40000; ++i) text += "mov %r0, 0\n";
  text += "far: exit\n";
  expect_error(text, "beyond the 16-bit offset");
  text[0] = 'j', text.replace(0, 2, "ja32");
  auto r = assemble(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].imm, 40000);
}

TEST(Disassembler, PrintsLlvmObjdumpSyntax) {
  auto r = assemble(
      "ldxw %r0, [%r1+4]\njgt %r1, 5, +3\ncall 1\nlock fetch add [%r1], %r0\nlock add32 [%r2-8], %r3\n"
      "lddw %r1, 0x123456789\nstw [%r10-4], 7\nmovsx816 %r1, %r2\nexit\n");
  ASSERT_FALSE(r.ok());  // movsx816 does not exist: the width comes first, then the class
  r = assemble(
      "ldxw %r0, [%r1+4]\njgt %r1, 5, +3\ncall 1\nlock fetch add [%r1], %r0\nlock add32 [%r2-8], %r3\n"
      "lddw %r1, 0x123456789\nstw [%r10-4], 7\nmovsx832 %r1, %r2\nsdiv %r1, -3\nldabsh 12\nexit\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto prog = decode(*r);
  ASSERT_TRUE(prog.ok()) << prog.error().message;
  std::vector<std::string> want = {
      "r0 = *(u32 *)(r1 + 0x4)",
      "if r1 > 0x5 goto +0x3",
      "call 0x1",
      "r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)",
      "lock *(u32 *)(r2 - 0x8) += w3",
      "r1 = 0x123456789 ll",
      "",
      "*(u32 *)(r10 - 0x4) = 0x7",
      "w1 = (s8)w2",
      "r1 s/= -0x3",
      "r0 = *(u16 *)skb[0xc]",
      "exit",
  };
  for (size_t i = 0; i < want.size(); ++i) {
    if (prog->insts[i].second_half) continue;
    EXPECT_EQ(disassemble_insn(prog->insts[i], i), want[i]) << "instruction " << i;
  }
  std::string listing = disassemble(*prog);
  EXPECT_NE(listing.find("       0:\t61 10 04 00 00 00 00 00\tr0 = *(u32 *)(r1 + 0x4)\n"), std::string::npos)
      << listing;
  EXPECT_NE(listing.find("18 01 00 00 89 67 45 23 00 00 00 00 01 00 00 00\tr1 = 0x123456789 ll"),
            std::string::npos);
}

TEST(Disassembler, PseudoLdImm64FormsRoundTrip) {
  for (const char* text :
       {"r1 = map[fd:0x3] ll", "r2 = map_value[fd:0x3]+0x10 ll", "r3 = btf_id[0x7]+0x0 ll",
        "r3 = btf_id[0x7]+0x5 ll", "r4 = map[idx:0x1] ll", "r5 = map_value[idx:0x2]+0x8 ll"}) {
    auto r = assemble(std::string(text) + "\nexit\n");
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message;
    auto prog = decode(*r);
    ASSERT_TRUE(prog.ok()) << text << ": " << prog.error().message;
    EXPECT_EQ(disassemble_insn(prog->insts[0], 0), text);
  }
  auto r = assemble("r1 = func pc+0x1 ll\nexit\nexit\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].src(), static_cast<uint8_t>(Pseudo::Func));
}

// --- LLVM as the outside reference ---------------------------------------

struct Command {
  int status;
  std::string out;
};

Command run(const std::string& cmd) {
  Command c{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return c;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) c.out += buf;
  int st = pclose(p);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

bool have(const char* tool) { return run(std::string("command -v ") + tool).status == 0; }

// llvm-objdump output lines "  N:\tbytes\ttext" -> (bytes, text).
std::vector<std::pair<std::vector<uint8_t>, std::string>> objdump_lines(const std::string& out) {
  std::vector<std::pair<std::vector<uint8_t>, std::string>> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(":\t");
    size_t tab = line.find('\t', colon + 2);
    if (colon == std::string::npos || tab == std::string::npos) continue;
    std::vector<uint8_t> bytes;
    std::istringstream hexes(line.substr(colon + 2, tab - colon - 2));
    std::string h;
    while (hexes >> h) bytes.push_back(static_cast<uint8_t>(std::stoul(h, nullptr, 16)));
    lines.emplace_back(bytes, line.substr(tab + 1));
  }
  return lines;
}

// Lines of an llvm-mc diagnostic "file:LINE:COL: error: ...".
std::set<size_t> error_lines(const std::string& diagnostics, const std::string& file) {
  std::set<size_t> lines;
  std::istringstream in(diagnostics);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(file + ":") && line.find(": error:") != std::string::npos)
      lines.insert(std::stoul(line.substr(file.size() + 1)));
  return lines;
}

// Every instruction Ember prints that LLVM 14's assembler also understands
// must assemble there to the same bytes; and what llvm-objdump-14 prints for
// them (decimal immediates, r-registers in 32-bit atomics) must assemble in
// Ember to the same bytes.
TEST(Disassembler, AgreesWithLlvm) {
  if (!have("llvm-mc-14") || !have("llvm-objdump-14"))
    GTEST_SKIP() << "llvm-mc-14 / llvm-objdump-14 not installed";
  std::string dir = ::testing::TempDir();
  std::vector<std::string> texts;
  std::vector<std::vector<RawInsn>> raws;
  for (const Inst& sample : sample_instructions()) {
    auto raw = encoded(sample);
    auto inst = decode_insn(raw, 0);
    // LLVM writes local calls, kfunc calls and pseudo ld_imm64 as symbol
    // references; in its text they cannot be told from helper calls and
    // constants.
    if (!inst || inst->op == Op::CALL_LOCAL || inst->op == Op::CALL_KFUNC ||
        (inst->op == Op::LDDW && inst->src != 0))
      continue;
    texts.push_back(disassemble_insn(*inst, 0));
    raws.push_back(raw);
  }
  // Pass 1 finds what LLVM 14 cannot assemble (v4 instructions, newer syntax).
  auto write = [&](const std::string& file, const std::set<size_t>& skip) {
    std::ofstream out(file);
    for (size_t i = 0; i < texts.size(); ++i)
      if (!skip.count(i + 1)) out << texts[i] << "\n";
  };
  std::string s1 = dir + "all.s", s2 = dir + "accepted.s", obj = dir + "accepted.o";
  write(s1, {});
  auto rejected =
      error_lines(run("llvm-mc-14 -triple bpfel -mcpu=v3 -filetype=obj " + s1 + " -o " + obj).out, s1);
  write(s2, rejected);
  auto mc = run("llvm-mc-14 -triple bpfel -mcpu=v3 -filetype=obj " + s2 + " -o " + obj);
  ASSERT_EQ(mc.status, 0) << mc.out;
  auto dump = objdump_lines(run("llvm-objdump-14 -d " + obj).out);
  size_t compared = 0, undecodable = 0, d = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (rejected.count(i + 1)) continue;
    ASSERT_LT(d, dump.size());
    auto [bytes, llvm_text] = dump[d++];
    EXPECT_EQ(bytes, insns_to_bytes(raws[i])) << "llvm assembles '" << texts[i] << "' differently";
    if (llvm_text.find("<unknown>") != std::string::npos) {
      ++undecodable;  // llvm-objdump-14 cannot print what llvm-mc-14 assembled
      continue;
    }
    auto ours = assemble(llvm_text);
    ASSERT_TRUE(ours.ok()) << "llvm-objdump printed '" << llvm_text << "': " << ours.error().message;
    EXPECT_EQ(insns_to_bytes(*ours), insns_to_bytes(raws[i])) << llvm_text;
    ++compared;
  }
  std::printf("LLVM 14 agrees on %zu instructions (%zu it cannot assemble, %zu it cannot print)\n", compared,
              rejected.size(), undecodable);
  EXPECT_GE(compared, 300u);
}

}  // namespace
}  // namespace ember::testing
