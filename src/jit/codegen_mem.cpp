// Loads, stores, atomics, ld_imm64 and the legacy packet loads.
#include "jit/codegen.hpp"

namespace ember::jit {

void Codegen::emit_load_store(const Inst& in) {
  const int size = in.info().width;
  switch (in.info().form) {
    case Form::Ldx: {
      const bool sign = in.op == Op::LDXS_B || in.op == Op::LDXS_H || in.op == Op::LDXS_W;
      e_.load(size, sign, reg(in.dst), Mem{reg(in.src), in.off});
      return;
    }
    case Form::Stx: e_.store(size, Mem{reg(in.dst), in.off}, reg(in.src)); return;
    default:  // St
      if (blinding()) {
        load_imm(kTmp, in.imm, size == 8);
        e_.store(size, Mem{reg(in.dst), in.off}, kTmp);
      } else {
        e_.store_imm(size, Mem{reg(in.dst), in.off}, in.imm);
      }
      return;
  }
}

// Atomics are locked read-modify-writes. The fetching and/or/xor have no
// x86 instruction that returns the old value: a cmpxchg loop, with rax (r0)
// borrowed as its accumulator.
void Codegen::emit_atomic(const Inst& in) {
  const bool w = in.info().width == 8;
  const Mem m{reg(in.dst), in.off};
  const Reg s = reg(in.src);
  const uint32_t code = static_cast<uint32_t>(in.info().disc);
  const bool fetch = code & 1;
  switch (code & ~1u) {
    case 0x00:  // add
      if (fetch)
        e_.xadd(w, m, s);
      else
        e_.alu(Alu::Add, w, m, s, true);
      return;
    case 0xe0:  // xchg
      e_.xchg(w, m, s);
      return;
    case 0xf0:  // cmpxchg: r0 is the comparand and gets the old value
      e_.cmpxchg(w, m, s);
      if (!w) e_.mov(false, RAX, RAX);  // a successful cmpxchg32 leaves rax's top half
      return;
    default: break;
  }
  const Alu op = (code & ~1u) == 0x40 ? Alu::Or : (code & ~1u) == 0x50 ? Alu::And : Alu::Xor;
  if (!fetch) {
    e_.alu(op, w, m, s, true);
    return;
  }
  e_.lea(kTmp3, m);  // the address, before rax (maybe the base) is borrowed
  e_.mov(true, kTmp2, RAX);
  const Reg operand = s == RAX ? kTmp2 : s;
  e_.load(w ? 8 : 4, false, RAX, Mem{kTmp3});
  const int retry = e_.new_label();
  e_.bind(retry);
  e_.mov(w, kTmp, RAX);
  e_.alu(op, w, kTmp, operand);
  e_.cmpxchg(w, Mem{kTmp3}, kTmp);
  e_.jcc(Cond::NE, retry);
  if (s != RAX) {
    e_.mov(w, s, RAX);
    e_.mov(true, RAX, kTmp2);
  } else if (!w) {
    e_.mov(false, RAX, RAX);
  }
}

void Codegen::emit_lddw(const Inst& in) {
  const Reg d = reg(in.dst);
  const uint64_t v = in.pseudo() == Pseudo::Func ? (kFuncAddrTag | in.target) : in.imm64;
  if (!blinding()) {
    if (v == 0)
      e_.zero(d);
    else
      e_.mov_imm(d, v);
    return;
  }
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(next_key())) << 32) | static_cast<uint32_t>(next_key());
  e_.mov_imm(d, v ^ key);
  e_.mov_imm(kTmp, key);
  e_.alu(Alu::Xor, true, d, kTmp);
}

// ld_abs/ld_ind (socket filters): r0 = the big-endian 1, 2 or 4 bytes at
// offset imm (+ the signed 32-bit src) of the packet; out of bounds, the
// program ends with r0 = 0, as in the kernel and the interpreter.
void Codegen::emit_packet_load(const Inst& in) {
  const int size = in.info().width;
  const bool indirect = in.info().form == Form::LdInd;
  if (indirect) {
    e_.movsx(32, true, kTmp, reg(in.src));
    if (blinding()) {
      load_imm(kTmp2, in.imm, true);
      e_.alu(Alu::Add, true, kTmp, kTmp2);
    } else if (in.imm != 0) {
      e_.alu(Alu::Add, true, kTmp, in.imm);
    }
  } else {
    if (!blinding() && in.imm < 0) {
      e_.jmp(packet_fail_label_);
      return;
    }
    load_imm(kTmp, in.imm, true);
  }
  if (indirect || blinding()) {
    e_.test(true, kTmp, kTmp);
    e_.jcc(Cond::S, packet_fail_label_);
  }
  e_.lea(kTmp2, Mem{kTmp, size});
  e_.alu(Alu::Cmp, true, kTmp2, frame(off_.packet_len));
  e_.jcc(Cond::A, packet_fail_label_);
  e_.load(8, false, kTmp2, frame(off_.packet));
  const Mem at{kTmp2, 0, static_cast<int8_t>(kTmp), 0};
  e_.load(size, false, RAX, at);
  if (size == 2) e_.rol16_by8(RAX);
  if (size == 4) e_.bswap(false, RAX);
}

}  // namespace ember::jit
