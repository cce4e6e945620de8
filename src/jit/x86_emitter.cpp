// The x86-64 encodings the JIT uses (Intel SDM vol. 2), and branch sizing.
#include "jit/x86_emitter.hpp"

#include <cassert>

namespace ember::jit {

namespace {
bool fits8(int64_t v) { return v >= -128 && v <= 127; }
}  // namespace

void Emitter::begin_pass(size_t fixed_labels) {
  if (passes_ > 0) {
    prev_pos_.swap(pos_);
    prev_jump_at_.swap(jump_at_);
    prev_size_ = len_;
  }
  ++passes_;
  len_ = 0;
  fixed_labels_ = fixed_labels;
  next_label_ = fixed_labels;
  pos_.assign(std::max(pos_.size(), fixed_labels), -1);
  std::fill(pos_.begin(), pos_.end(), -1);
  jump_at_.clear();
  fixups_.clear();
}

bool Emitter::end_pass() {
  for (const Fixup& f : fixups_) {
    assert(pos_[f.label] >= 0 && "branch to a label never bound");
    int64_t d = pos_[f.label] - static_cast<int64_t>(f.end);
    if (f.short_) {
      assert(fits8(d));
      buf_[f.at] = static_cast<uint8_t>(static_cast<int8_t>(d));
    } else {
      auto v = static_cast<uint32_t>(static_cast<int32_t>(d));
      for (int i = 0; i < 4; ++i) buf_[f.at + i] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
  return passes_ > 1 && len_ == prev_size_;
}

int Emitter::new_label() {
  int l = static_cast<int>(next_label_++);
  if (pos_.size() <= static_cast<size_t>(l)) pos_.resize(l + 1, -1);
  if (prev_pos_.size() <= static_cast<size_t>(l)) prev_pos_.resize(l + 1, -1);
  return l;
}

void Emitter::bind(int label) { pos_[label] = static_cast<int64_t>(len_); }

void Emitter::put16(uint16_t v) {
  put(static_cast<uint8_t>(v));
  put(static_cast<uint8_t>(v >> 8));
}
void Emitter::put32(uint32_t v) {
  for (int i = 0; i < 4; ++i) put(static_cast<uint8_t>(v >> (8 * i)));
}
void Emitter::put64(uint64_t v) {
  for (int i = 0; i < 8; ++i) put(static_cast<uint8_t>(v >> (8 * i)));
}

// REX is needed for 64-bit operands, registers r8-r15, and byte access to
// spl/bpl/sil/dil (without it those encodings mean ah/ch/dh/bh).
void Emitter::rex(bool w, int reg, int index, int base, bool byte_regs) {
  uint8_t r = 0x40 | (w ? 8 : 0) | ((reg & 8) >> 1) | ((index & 8) >> 2) | ((base & 8) >> 3);
  bool low_byte = byte_regs && ((reg >= 4 && reg < 8) || (base >= 4 && base < 8));
  if (r != 0x40 || low_byte) put(r);
}

void Emitter::modrm_mem(int reg, const Mem& m) {
  int base = m.base & 7;
  // rbp/r13 as a base have no mod=00 form (it means rip-relative / no base).
  int mod = (m.disp == 0 && base != 5) ? 0 : fits8(m.disp) ? 1 : 2;
  if (m.index >= 0 || base == 4) {  // rsp/r12 as a base need a SIB byte
    put(static_cast<uint8_t>((mod << 6) | ((reg & 7) << 3) | 4));
    int idx = m.index >= 0 ? (m.index & 7) : 4;
    put(static_cast<uint8_t>((m.scale << 6) | (idx << 3) | base));
  } else {
    put(static_cast<uint8_t>((mod << 6) | ((reg & 7) << 3) | base));
  }
  if (mod == 1) put(static_cast<uint8_t>(static_cast<int8_t>(m.disp)));
  if (mod == 2) put32(static_cast<uint32_t>(m.disp));
}

void Emitter::enc(uint8_t prefix, bool w, bool ext, uint8_t opc, int reg, Reg rm, bool byte_regs) {
  if (prefix) put(prefix);
  rex(w, reg, 0, rm, byte_regs);
  if (ext) put(0x0f);
  put(opc);
  put(static_cast<uint8_t>(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

void Emitter::enc(uint8_t prefix, bool w, bool ext, uint8_t opc, int reg, const Mem& m, bool byte_regs) {
  if (prefix) put(prefix);
  rex(w, reg, m.index >= 0 ? m.index : 0, m.base, byte_regs);
  if (ext) put(0x0f);
  put(opc);
  modrm_mem(reg, m);
}

void Emitter::alu(Alu op, bool w, Reg dst, Reg src) {
  enc(0, w, false, static_cast<uint8_t>((static_cast<int>(op) << 3) | 1), src, dst);
}

void Emitter::alu(Alu op, bool w, Reg dst, int32_t imm) {
  if (fits8(imm)) {
    enc(0, w, false, 0x83, static_cast<int>(op), dst);
    put(static_cast<uint8_t>(imm));
  } else {
    enc(0, w, false, 0x81, static_cast<int>(op), dst);
    put32(static_cast<uint32_t>(imm));
  }
}

void Emitter::alu(Alu op, bool w, const Mem& m, Reg src, bool lock) {
  enc(lock ? 0xf0 : 0, w, false, static_cast<uint8_t>((static_cast<int>(op) << 3) | 1), src, m);
}

void Emitter::alu(Alu op, bool w, Reg dst, const Mem& m) {
  enc(0, w, false, static_cast<uint8_t>((static_cast<int>(op) << 3) | 3), dst, m);
}

void Emitter::alu(Alu op, bool w, const Mem& m, int32_t imm) {
  if (fits8(imm)) {
    enc(0, w, false, 0x83, static_cast<int>(op), m);
    put(static_cast<uint8_t>(imm));
  } else {
    enc(0, w, false, 0x81, static_cast<int>(op), m);
    put32(static_cast<uint32_t>(imm));
  }
}

void Emitter::test(bool w, Reg a, Reg b) { enc(0, w, false, 0x85, b, a); }

void Emitter::test(bool w, Reg a, int32_t imm) {
  if (imm >= 0 && imm <= 255) {  // test r8, imm8: the same flags for ZF
    enc(0, false, false, 0xf6, 0, a, true);
    put(static_cast<uint8_t>(imm));
  } else {
    enc(0, w, false, 0xf7, 0, a);
    put32(static_cast<uint32_t>(imm));
  }
}

void Emitter::mov(bool w, Reg dst, Reg src) { enc(0, w, false, 0x89, src, dst); }

void Emitter::mov_imm(Reg dst, uint64_t value) {
  if (value <= 0xffffffffull) {  // mov r32, imm32 zero-extends
    rex(false, 0, 0, dst, false);
    put(static_cast<uint8_t>(0xb8 | (dst & 7)));
    put32(static_cast<uint32_t>(value));
  } else if (static_cast<int64_t>(value) == static_cast<int32_t>(value)) {
    mov_simm(dst, static_cast<int32_t>(value));
  } else {
    rex(true, 0, 0, dst, false);
    put(static_cast<uint8_t>(0xb8 | (dst & 7)));
    put64(value);
  }
}

void Emitter::mov_simm(Reg dst, int32_t imm) {
  enc(0, true, false, 0xc7, 0, dst);
  put32(static_cast<uint32_t>(imm));
}

void Emitter::load(int size, bool sign, Reg dst, const Mem& m) {
  switch (size) {
    case 1: enc(0, sign, true, sign ? 0xbe : 0xb6, dst, m); break;
    case 2: enc(0, sign, true, sign ? 0xbf : 0xb7, dst, m); break;
    case 4:
      if (sign)
        enc(0, true, false, 0x63, dst, m);  // movsxd
      else
        enc(0, false, false, 0x8b, dst, m);
      break;
    default: enc(0, true, false, 0x8b, dst, m); break;
  }
}

void Emitter::store(int size, const Mem& m, Reg src) {
  switch (size) {
    case 1: enc(0, false, false, 0x88, src, m, true); break;
    case 2: enc(0x66, false, false, 0x89, src, m); break;
    case 4: enc(0, false, false, 0x89, src, m); break;
    default: enc(0, true, false, 0x89, src, m); break;
  }
}

void Emitter::store_imm(int size, const Mem& m, int32_t imm) {
  switch (size) {
    case 1:
      enc(0, false, false, 0xc6, 0, m);
      put(static_cast<uint8_t>(imm));
      break;
    case 2:
      enc(0x66, false, false, 0xc7, 0, m);
      put16(static_cast<uint16_t>(imm));
      break;
    default:
      enc(0, size == 8, false, 0xc7, 0, m);
      put32(static_cast<uint32_t>(imm));
      break;
  }
}

void Emitter::lea(Reg dst, const Mem& m, bool w) { enc(0, w, false, 0x8d, dst, m); }

void Emitter::shift(Shift op, bool w, Reg dst, uint8_t count) {
  if (count == 1) {
    enc(0, w, false, 0xd1, static_cast<int>(op), dst);
  } else {
    enc(0, w, false, 0xc1, static_cast<int>(op), dst);
    put(count);
  }
}

void Emitter::shift_cl(Shift op, bool w, Reg dst) { enc(0, w, false, 0xd3, static_cast<int>(op), dst); }

void Emitter::imul(bool w, Reg dst, Reg src) { enc(0, w, true, 0xaf, dst, src); }

void Emitter::imul(bool w, Reg dst, Reg src, int32_t imm) {
  if (fits8(imm)) {
    enc(0, w, false, 0x6b, dst, src);
    put(static_cast<uint8_t>(imm));
  } else {
    enc(0, w, false, 0x69, dst, src);
    put32(static_cast<uint32_t>(imm));
  }
}

void Emitter::neg(bool w, Reg r) { enc(0, w, false, 0xf7, 3, r); }

void Emitter::div(bool w, bool is_signed, Reg divisor) { enc(0, w, false, 0xf7, is_signed ? 7 : 6, divisor); }

void Emitter::sign_extend_rax(bool w) {
  if (w) put(0x48);
  put(0x99);
}

void Emitter::movsx(int from_bits, bool w, Reg dst, Reg src) {
  if (from_bits == 8)
    enc(0, w, true, 0xbe, dst, src, true);
  else if (from_bits == 16)
    enc(0, w, true, 0xbf, dst, src);
  else
    enc(0, true, false, 0x63, dst, src);  // movsxd
}

void Emitter::movzx(int from_bits, Reg dst, Reg src) {
  if (from_bits == 8)
    enc(0, false, true, 0xb6, dst, src, true);
  else
    enc(0, false, true, 0xb7, dst, src);
}

void Emitter::bswap(bool w, Reg r) {
  rex(w, 0, 0, r, false);
  put(0x0f);
  put(static_cast<uint8_t>(0xc8 | (r & 7)));
}

void Emitter::rol16_by8(Reg r) {
  enc(0x66, false, false, 0xc1, static_cast<int>(Shift::Rol), r);
  put(8);
}

void Emitter::xadd(bool w, const Mem& m, Reg src) { enc(0xf0, w, true, 0xc1, src, m); }
void Emitter::xchg(bool w, const Mem& m, Reg src) { enc(0, w, false, 0x87, src, m); }
void Emitter::cmpxchg(bool w, const Mem& m, Reg src) { enc(0xf0, w, true, 0xb1, src, m); }
void Emitter::inc32(const Mem& m) { enc(0, false, false, 0xff, 0, m); }
void Emitter::dec32(const Mem& m) { enc(0, false, false, 0xff, 1, m); }

void Emitter::push(Reg r) {
  if (r & 8) put(0x41);
  put(static_cast<uint8_t>(0x50 | (r & 7)));
}

void Emitter::pop(Reg r) {
  if (r & 8) put(0x41);
  put(static_cast<uint8_t>(0x58 | (r & 7)));
}

void Emitter::call(Reg r) { enc(0, false, false, 0xff, 2, r); }
void Emitter::jmp(Reg r) { enc(0, false, false, 0xff, 4, r); }

// opcode_short: 0x70+cc for jcc, 0xeb for jmp, -1 for call (always rel32).
void Emitter::branch(int opcode_short, int label) {
  size_t here = len_;
  size_t k = jump_at_.size();
  jump_at_.push_back(static_cast<int64_t>(here));
  bool short_ok = false;
  if (opcode_short >= 0) {
    if (pos_[label] >= 0) {  // backward: the distance is known exactly
      short_ok = fits8(pos_[label] - static_cast<int64_t>(here + 2));
    } else if (k < prev_jump_at_.size() && prev_pos_[label] >= 0) {
      // Forward: at most the previous pass's distance, as code only shrinks.
      short_ok = prev_pos_[label] - (prev_jump_at_[k] + 2) <= 127;
    }
  }
  if (short_ok) {
    put(static_cast<uint8_t>(opcode_short));
    put(0);
    fixups_.push_back({len_ - 1, len_, label, true});
    return;
  }
  if (opcode_short < 0) {
    put(0xe8);
  } else if (opcode_short == 0xeb) {
    put(0xe9);
  } else {
    put(0x0f);
    put(static_cast<uint8_t>(opcode_short + 0x10));
  }
  put32(0);
  fixups_.push_back({len_ - 4, len_, label, false});
}

void Emitter::jcc(Cond c, int label) { branch(0x70 | static_cast<int>(c), label); }
void Emitter::jmp(int label) { branch(0xeb, label); }
void Emitter::call(int label) { branch(-1, label); }

}  // namespace ember::jit
