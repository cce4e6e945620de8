// Jumps: one cmp/test and one jcc per conditional jump (immediates in the
// instruction, `test r, r` against 0), no code for a jump to the next
// instruction, a conditional jump over an unconditional one becomes one jcc
// with the condition reversed, and a chain of `if rX == imm goto` over dense
// values (a C switch) becomes a jump table.
#include <algorithm>

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

// At least kMinCases consecutive `if rX == imm goto` on the same register,
// nothing jumping into the chain after its first, values spanning at most
// kMaxSpread slots per case: bounds check, then an indirect jump through a
// table of offsets (the first case of a repeated value wins, as in the
// chain).
size_t Codegen::emit_switch(size_t i) {
  constexpr size_t kMinCases = 8;
  constexpr int64_t kMaxSpread = 8, kMaxTable = 1 << 16;
  const Inst& first = prog_.insts[i];
  size_t end = i;
  while (end < n_ && live_[end] && prog_.insts[end].op == Op::JEQ_IMM && prog_.insts[end].dst == first.dst &&
         (end == i || !target_[end]))
    ++end;
  if (end - i < kMinCases) return 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (size_t k = i; k < end; ++k)
    lo = std::min<int64_t>(lo, prog_.insts[k].imm), hi = std::max<int64_t>(hi, prog_.insts[k].imm);
  const int64_t span = hi - lo + 1;
  if (span > kMaxTable || span > kMaxSpread * static_cast<int64_t>(end - i)) return 0;
  const int fall = target_label(end);
  std::vector<int> entries(static_cast<size_t>(span), -1);
  for (size_t k = i; k < end; ++k) {
    int& e = entries[static_cast<size_t>(prog_.insts[k].imm - lo)];
    if (e < 0) e = target_label(prog_.insts[k].target);
  }
  for (int& e : entries)
    if (e < 0) e = fall;
  const int table = e_.new_label();
  const Reg r = reg(first.dst);
  e_.mov(true, kTmp, r);
  if (lo != 0) e_.alu(Alu::Sub, true, kTmp, static_cast<int32_t>(lo));
  e_.alu(Alu::Cmp, true, kTmp, static_cast<int32_t>(span - 1));
  e_.jcc(Cond::A, fall);  // unsigned: below lo wraps around to above
  e_.lea(kTmp2, table);
  e_.load(4, true, kTmp, Mem{kTmp2, 0, static_cast<int8_t>(kTmp), 2});
  e_.alu(Alu::Add, true, kTmp, kTmp2);
  e_.jmp(kTmp);
  tables_.push_back({table, std::move(entries)});
  return end - i;
}

size_t Codegen::emit_jump(size_t i) {
  const Inst& in = prog_.insts[i];
  if (in.op == Op::JEQ_IMM && !blinding())
    if (size_t used = emit_switch(i)) return used;
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
  } else if (dest == i + 1 && live_[i + 1]) {
    // Both ways lead to the next instruction. (Not when the fall-through is
    // a dead instruction: that way ends in an error stub, emit_code().)
    return 1;
  }
  emit_compare(in, in.info().width == 64);
  e_.jcc(c, target_label(dest));
  return used;
}

}  // namespace ember::jit
