// ALU32/ALU64, movsx, endianness. 32-bit operations write 32-bit x86
// registers, which zero-extends for free (the eBPF rule); only operations
// that would otherwise leave the register untouched (an add of 0, a shift by
// 0) emit an explicit `mov r32, r32`.
#include <bit>

#include "jit/codegen.hpp"

namespace ember::jit {

namespace {

// The operation of an ALU opcode: its high nibble.
enum Kind : uint8_t {
  kAdd = 0x00,
  kSub = 0x10,
  kMul = 0x20,
  kDiv = 0x30,
  kOr = 0x40,
  kAnd = 0x50,
  kLsh = 0x60,
  kRsh = 0x70,
  kMod = 0x90,
  kXor = 0xa0,
  kArsh = 0xc0,
};

Kind kind_of(const Inst& in) { return static_cast<Kind>(in.info().opcode & 0xf0); }

Alu alu_of(Kind k) {
  switch (k) {
    case kAdd: return Alu::Add;
    case kSub: return Alu::Sub;
    case kOr: return Alu::Or;
    case kAnd: return Alu::And;
    default: return Alu::Xor;
  }
}

Shift shift_of(Kind k) { return k == kLsh ? Shift::Shl : k == kRsh ? Shift::Shr : Shift::Sar; }

}  // namespace

// A sum over loaded values, `ldx rT, [..]; (op rT, imm)*; add acc, rT`
// repeated (checksums, counts), is one chain of dependent adds on acc: one
// add per cycle however many loads the core could issue. 64-bit addition
// is associative and commutative, so every other group's add may go to a
// second accumulator (kTmp), added to acc once at the end: two chains of
// half the length. Within a chain nothing else reads acc (the adds are its
// only uses) and nothing jumps in but to its first instruction, so no one
// sees acc's partial value.
namespace {

constexpr size_t kMinSumGroups = 8;

// An ALU-with-immediate or byte swap on `r` that needs no scratch register
// (not division, whose immediate goes through kTmp).
bool scratch_free_update(const Inst& in, uint8_t r) {
  if (in.dst != r) return false;
  if (in.info().form == Form::Endian) return true;
  if (in.info().form != Form::AluImm) return false;
  const auto kind = in.info().opcode & 0xf0;
  return kind != 0x30 && kind != 0x90;  // div, mod
}

}  // namespace

void Codegen::find_sum_chains() {
  sum_role_.assign(n_, 0);
  if (blinding()) return;  // blinded immediates go through kTmp
  // The group starting at i: its add's index, or 0.
  auto group = [&](size_t i, int acc) -> size_t {
    const Inst& ld = prog_.insts[i];
    if (ld.info().form != Form::Ldx || ld.dst == ld.src || ld.src == acc || ld.dst == acc) return 0;
    size_t j = i + 1;
    while (j < n_ && live_[j] && !target_[j] && scratch_free_update(prog_.insts[j], ld.dst)) ++j;
    if (j >= n_ || !live_[j] || target_[j]) return 0;
    const Inst& add = prog_.insts[j];
    if (add.op != Op::ADD64_REG || add.src != ld.dst || add.dst == ld.dst) return 0;
    if (acc >= 0 && add.dst != acc) return 0;
    return j;
  };
  for (size_t i = 0; i < n_;) {
    size_t first_add = live_[i] ? group(i, -1) : 0;
    if (!first_add) {
      ++i;
      continue;
    }
    const int acc = prog_.insts[first_add].dst;
    std::vector<size_t> adds{first_add};
    size_t next = first_add + 1;
    while (next < n_ && live_[next] && !target_[next]) {
      size_t a = group(next, acc);
      if (!a) break;
      adds.push_back(a);
      next = a + 1;
    }
    if (adds.size() >= kMinSumGroups) {
      sum_role_[i] = 1;
      for (size_t k = 1; k < adds.size(); k += 2) sum_role_[adds[k]] = 2;
      sum_role_[adds.back()] = 3;
    }
    i = next;
  }
}

size_t Codegen::emit_alu(size_t i) {
  const Inst& in = prog_.insts[i];
  const Reg d = reg(in.dst), s = reg(in.src);
  if (!sum_role_.empty() && sum_role_[i] >= 2) {  // a sum chain's add (find_sum_chains())
    e_.alu(Alu::Add, true, sum_role_[i] == 2 ? kTmp : d, s);
    if (sum_role_[i] == 3) e_.alu(Alu::Add, true, d, kTmp);
    return 1;
  }
  switch (in.op) {
    case Op::MOV64_REG:
      // mov d, s; add d, imm|reg -> lea (when nothing jumps between them).
      if (d != s && i + 1 < n_ && live_[i + 1] && !target_[i + 1] && !blinding()) {
        const Inst& nx = prog_.insts[i + 1];
        if (nx.dst == in.dst && nx.op == Op::ADD64_IMM) {
          e_.lea(d, Mem{s, nx.imm}, true);
          return 2;
        }
        if (nx.dst == in.dst && nx.op == Op::ADD64_REG && nx.src != in.dst) {
          e_.lea(d, Mem{s, 0, static_cast<int8_t>(reg(nx.src)), 0}, true);
          return 2;
        }
      }
      if (d != s) e_.mov(true, d, s);
      return 1;
    case Op::MOV32_REG: e_.mov(false, d, s); return 1;
    case Op::MOV64_IMM:
    case Op::MOV32_IMM:
      if (in.imm == 0 && !blinding())
        e_.zero(d);
      else
        load_imm(d, in.imm, in.op == Op::MOV64_IMM);
      return 1;
    case Op::MOVSX64_8: e_.movsx(8, true, d, s); return 1;
    case Op::MOVSX64_16: e_.movsx(16, true, d, s); return 1;
    case Op::MOVSX64_32: e_.movsx(32, true, d, s); return 1;
    case Op::MOVSX32_8: e_.movsx(8, false, d, s); return 1;
    case Op::MOVSX32_16: e_.movsx(16, false, d, s); return 1;
    case Op::NEG64: e_.neg(true, d); return 1;
    case Op::NEG32: e_.neg(false, d); return 1;
    default: break;
  }
  const bool w = (in.info().opcode & 0x07) == 0x07;  // BPF_ALU64
  const bool imm_form = in.info().form == Form::AluImm;
  const Kind k = kind_of(in);
  if (k == kDiv || k == kMod) {
    emit_divmod(i, w, in.off == 1, k == kMod, imm_form);
    return 1;
  }
  if (imm_form)
    emit_alu_imm(in.op, w, d, in.imm);
  else
    emit_alu_reg(in.op, w, d, s);
  return 1;
}

void Codegen::emit_alu_imm(Op op, bool w, Reg d, int32_t imm) {
  const Kind k = static_cast<Kind>(op_info(op).opcode & 0xf0);
  switch (k) {
    case kLsh:
    case kRsh:
    case kArsh: {
      // Shift counts are masked as the ISA says (& 63, & 31); a count of 0
      // still zero-extends a 32-bit destination.
      auto count = static_cast<uint8_t>(imm & (w ? 63 : 31));
      if (count)
        e_.shift(shift_of(k), w, d, count);
      else if (!w)
        e_.mov(false, d, d);
      return;
    }
    case kMul:
      if (blinding()) {
        load_imm(kTmp, imm, w);
        e_.imul(w, d, kTmp);
      } else if (imm > 0 && std::has_single_bit(static_cast<uint32_t>(imm))) {
        emit_alu_imm(w ? Op::LSH64_IMM : Op::LSH32_IMM, w, d, std::countr_zero(static_cast<uint32_t>(imm)));
      } else if (imm == 3 || imm == 5 || imm == 9) {  // lea d, [d + d * (imm - 1)]
        e_.lea(d,
               Mem{d, 0, static_cast<int8_t>(d), static_cast<uint8_t>(std::countr_zero(uint32_t(imm - 1)))},
               w);
      } else {
        e_.imul(w, d, d, imm);
      }
      return;
    default: break;
  }
  if (blinding()) {
    load_imm(kTmp, imm, w);
    e_.alu(alu_of(k), w, d, kTmp);
    return;
  }
  if (imm == 0 && k != kAnd) {  // add/sub/or/xor 0: the value stays
    if (!w) e_.mov(false, d, d);
    return;
  }
  if (imm == 0) {  // and 0
    e_.zero(d);
    return;
  }
  e_.alu(alu_of(k), w, d, imm);
}

void Codegen::emit_alu_reg(Op op, bool w, Reg d, Reg s) {
  const Kind k = static_cast<Kind>(op_info(op).opcode & 0xf0);
  switch (k) {
    case kMul: e_.imul(w, d, s); return;
    case kLsh:
    case kRsh:
    case kArsh: emit_shift(shift_of(k), w, d, s); return;
    default: e_.alu(alu_of(k), w, d, s); return;
  }
}

// Shifts by a register count in cl, which is eBPF r3: borrow rcx through
// r11. The hardware masks the count (& 63 / & 31) as the ISA does.
void Codegen::emit_shift(Shift kind, bool w, Reg d, Reg s) {
  if (s == RCX) {
    e_.shift_cl(kind, w, d);
    return;
  }
  e_.mov(true, kTmp, RCX);
  e_.mov(false, RCX, s);
  if (d == RCX) {
    e_.shift_cl(kind, w, kTmp);  // the old rcx, shifted, becomes the result
  } else {
    e_.shift_cl(kind, w, d);
  }
  e_.mov(true, RCX, kTmp);
}

// Division by the value in r11: rdx:rax are eBPF r2 and r0, so they are kept
// in r10 and rdi unless they are the destination.
void Codegen::emit_divide(bool w, bool is_signed, bool is_mod, Reg d) {
  const bool keep_rax = d != RAX, keep_rdx = d != RDX;
  if (keep_rax) e_.mov(true, kTmp2, RAX);
  if (keep_rdx) e_.mov(true, kTmp3, RDX);
  if (d != RAX) e_.mov(w, RAX, d);
  if (is_signed)
    e_.sign_extend_rax(w);
  else
    e_.zero(RDX);
  e_.div(w, is_signed, kTmp);
  const Reg result = is_mod ? RDX : RAX;
  if (d != result) e_.mov(true, d, result);
  if (keep_rax) e_.mov(true, RAX, kTmp2);
  if (keep_rdx) e_.mov(true, RDX, kTmp3);
}

// The ISA's division, not the CPU's: x / 0 = 0, x % 0 = x (zero-extended in
// 32 bits), INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0 where idiv would
// trap (the kernel's verifier patches the same checks in, fixup_bpf_calls).
void Codegen::emit_divmod(size_t i, bool w, bool is_signed, bool is_mod, bool imm_form) {
  const Inst& in = prog_.insts[i];
  const Reg d = reg(in.dst);
  auto by_zero = [&] {
    if (!is_mod)
      e_.zero(d);
    else if (!w)
      e_.mov(false, d, d);
  };
  auto by_minus_one = [&] {
    if (!is_mod)
      e_.neg(w, d);
    else
      e_.zero(d);
  };
  if (imm_form) {
    if (in.imm == 0) return by_zero();
    if (is_signed && in.imm == -1) return by_minus_one();
    const uint64_t u =
        w ? static_cast<uint64_t>(static_cast<int64_t>(in.imm)) : static_cast<uint32_t>(in.imm);
    if (!is_signed && !blinding() && std::has_single_bit(u)) {
      const int log = std::countr_zero(u);
      if (!is_mod) {
        if (log)
          e_.shift(Shift::Shr, w, d, static_cast<uint8_t>(log));
        else if (!w)
          e_.mov(false, d, d);
      } else if (u - 1 <= 0x7fffffffu) {
        if (u == 1)
          e_.zero(d);
        else
          e_.alu(Alu::And, w, d, static_cast<int32_t>(u - 1));
      } else {
        e_.mov_imm(kTmp, u - 1);
        e_.alu(Alu::And, w, d, kTmp);
      }
      return;
    }
    load_imm(kTmp, in.imm, w);  // neither 0 nor -1: no checks
    emit_divide(w, is_signed, is_mod, d);
    return;
  }
  const JitHint hint = opts_.hints.empty() ? JitHint{} : opts_.hints[i];
  e_.mov(w, kTmp, reg(in.src));
  const bool check_zero = !hint.nonzero_divisor;
  const bool check_minus_one = is_signed && !hint.divisor_not_minus_one;
  const int zero_l = check_zero ? e_.new_label() : -1;
  const int minus_one_l = check_minus_one ? e_.new_label() : -1;
  if (check_zero) {
    e_.test(w, kTmp, kTmp);
    e_.jcc(Cond::E, zero_l);
  }
  if (check_minus_one) {
    e_.alu(Alu::Cmp, w, kTmp, -1);
    e_.jcc(Cond::E, minus_one_l);
  }
  emit_divide(w, is_signed, is_mod, d);
  if (!check_zero && !check_minus_one) return;
  const int done = e_.new_label();
  e_.jmp(done);
  if (check_zero) {
    e_.bind(zero_l);
    by_zero();
    if (check_minus_one) e_.jmp(done);
  }
  if (check_minus_one) {
    e_.bind(minus_one_l);
    by_minus_one();
  }
  e_.bind(done);
}

void Codegen::emit_endian(const Inst& in) {
  const Reg d = reg(in.dst);
  switch (in.op) {
    case Op::LE16: e_.movzx(16, d, d); break;
    case Op::LE32: e_.mov(false, d, d); break;
    case Op::LE64: break;
    case Op::BE16:
    case Op::BSWAP16:
      e_.rol16_by8(d);
      e_.movzx(16, d, d);
      break;
    case Op::BE32:
    case Op::BSWAP32: e_.bswap(false, d); break;
    default: e_.bswap(true, d); break;  // BE64, BSWAP64
  }
}

}  // namespace ember::jit
