// Jumps: one cmp/test and one jcc per conditional jump (immediates in the
// instruction, `test r, r` against 0), no code for a jump to the next
// instruction, and a conditional jump over an unconditional one becomes one
// jcc with the condition reversed.
#include "jit/codegen.hpp"

namespace ember::jit {

namespace {

Cond cond_of(const Inst& in) {
  switch (in.info().opcode & 0xf0) {
    case 0x10: return Cond::E;   // jeq
    case 0x20: return Cond::A;   // jgt
    case 0x30: return Cond::AE;  // jge
    case 0x40: return Cond::NE;  // jset (after test)
    case 0x50: return Cond::NE;  // jne
    case 0x60: return Cond::G;   // jsgt
    case 0x70: return Cond::GE;  // jsge
    case 0xa0: return Cond::B;   // jlt
    case 0xb0: return Cond::BE;  // jle
    case 0xc0: return Cond::L;   // jslt
    default: return Cond::LE;    // jsle
  }
}

Cond negate(Cond c) { return static_cast<Cond>(static_cast<uint8_t>(c) ^ 1); }

bool is_ja(Op op) { return op == Op::JA || op == Op::JA32; }

}  // namespace

void Codegen::emit_compare(const Inst& in, bool w) {
  const Reg d = reg(in.dst);
  const bool jset = (in.info().opcode & 0xf0) == 0x40;
  if (in.info().form == Form::JmpReg) {
    if (jset)
      e_.test(w, d, reg(in.src));
    else
      e_.alu(Alu::Cmp, w, d, reg(in.src));
    return;
  }
  if (blinding()) {
    load_imm(kTmp, in.imm, w);
    if (jset)
      e_.test(w, d, kTmp);
    else
      e_.alu(Alu::Cmp, w, d, kTmp);
    return;
  }
  if (jset)
    e_.test(w, d, in.imm);
  else if (in.imm == 0)
    e_.test(w, d, d);  // the same flags as cmp d, 0 (CF = OF = 0)
  else
    e_.alu(Alu::Cmp, w, d, in.imm);
}

size_t Codegen::emit_jump(size_t i) {
  const Inst& in = prog_.insts[i];
  if (is_ja(in.op)) {
    if (in.target != next_live(i)) e_.jmp(target_label(in.target));
    return 1;
  }
  Cond c = cond_of(in);
  size_t dest = in.target;
  size_t used = 1;
  if (i + 1 < n_ && live_[i + 1] && !target_[i + 1] && is_ja(prog_.insts[i + 1].op) &&
      in.target == next_live(i + 1)) {
    c = negate(c);
    dest = prog_.insts[i + 1].target;
    used = 2;
  } else if (dest == next_live(i)) {
    return 1;  // both ways lead to the next instruction
  }
  emit_compare(in, in.info().width == 64);
  e_.jcc(c, target_label(dest));
  return used;
}

}  // namespace ember::jit
