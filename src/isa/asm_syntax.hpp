// The two text syntaxes of eBPF instructions, derived from the one opcode
// table: llvm-objdump's (`r0 = *(u32 *)(r1 + 0x4)`) and bpf_conformance's
// (`ldxw %r0, [%r1+4]`). Each encoding gets one template per syntax, e.g.
// "$rd += $imm"; the disassembler fills templates in and the assembler matches
// lines against them, so the two can never disagree.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember::asm_syntax {

enum class Syntax : uint8_t { Llvm, Conformance };

// What a hole in a template stands for.
enum class Hole : uint8_t {
  Dst,      // register in the dst field
  Src,      // register in the src field
  Imm,      // 32-bit immediate
  Imm64,    // ld_imm64 constant
  Hi,       // second half of a pseudo ld_imm64 (map value offset)
  MemOff,   // signed memory offset in the off field: "+ 0x4" / "+4"
  MemImm,   // signed offset in the imm field (ld_ind)
  JumpOff,  // jump distance in the off field: "+0x3" / "+3" / label
  JumpImm,  // jump or call distance in the imm field
};

enum class TokKind : uint8_t { Reg, Ident, Number, Punct, Hole };

struct Token {
  TokKind kind = TokKind::Punct;
  std::string text;     // identifier, punctuation, or the number as written
  char reg_prefix = 0;  // Reg and register holes: 'r', 'w' or '%' (for %r)
  int reg = 0;          // Reg: register number
  uint64_t value = 0;   // Number
  Hole hole = Hole::Imm;
};

// Splits a line into tokens. Numbers are decimal or 0x-hex; "%r1", "r1" and
// "w1" are registers. Fails on characters that belong to no token, numbers
// that overflow 64 bits and registers beyond r10.
Result<std::vector<Token>> lex(std::string_view text, bool allow_holes = false);

struct Template {
  Op op;
  Pseudo pseudo;  // ld_imm64 only
  Syntax syntax;
  std::string text;  // e.g. "$rd += $imm"
  std::vector<Token> tokens;
};

// Every template, llvm syntax first; each (op, pseudo) has an llvm one, and
// every plain encoding a conformance one.
std::span<const Template> templates();
const Template& template_for(Op op, Pseudo pseudo, Syntax syntax);

// A template filled in with an instruction's fields.
std::string render(const Template& t, const Inst& inst);
// A template with its holes named for people: "add %rD, IMM".
std::string describe(const Template& t);

}  // namespace ember::asm_syntax
