// The x86-64 encodings the JIT uses (Intel SDM vol. 2), and branch sizing.
#include "jit/x86_emitter.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ember::jit {

namespace {
bool fits8(int64_t v) { return v >= -128 && v <= 127; }
}  // namespace

void Emitter::begin(size_t fixed_labels) {
  buf_.resize(fixed_labels * 16 + 4096);  // most programs fit at once
  len_ = 0;
  next_label_ = fixed_labels;
  pos_.assign(fixed_labels, -1);
  branches_.clear();
  tables_.clear();
  aligns_.clear();
}

namespace {
// The recommended multi-byte nops (Intel SDM vol. 2, NOP), 1 to 9 bytes.
void put_nops(uint8_t* out, size_t n) {
  static constexpr uint8_t kNops[9][9] = {
      {0x90},
      {0x66, 0x90},
      {0x0f, 0x1f, 0x00},
      {0x0f, 0x1f, 0x40, 0x00},
      {0x0f, 0x1f, 0x44, 0x00, 0x00},
      {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
      {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
      {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
      {0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
  };
  while (n > 0) {
    const size_t k = std::min<size_t>(n, 9);
    std::memcpy(out, kNops[k - 1], k);
    out += k, n -= k;
  }
}
}  // namespace

void Emitter::align(unsigned boundary) {
  assert(boundary >= 2 && boundary <= 64 && (boundary & (boundary - 1)) == 0);
  const size_t n = boundary - 1;
  ensure(n);
  aligns_.push_back({static_cast<int64_t>(len_), static_cast<uint8_t>(boundary), static_cast<uint8_t>(n)});
  put_nops(buf_.data() + len_, n);
  len_ += n;
}

// Which branches fit an 8-bit displacement once the short ones before them
// have shrunk. A branch's distance changes by what the branches between it
// and its target save: a sweep from the end knows that exactly for forward
// branches (the ones between come after it), a sweep from the start for
// backward ones. Sweeps alternate until neither finds another branch.
bool Emitter::relax() {
  const size_t n = branches_.size();
  short_.assign(n, 0);
  // The first branch at or after each branch's target.
  std::vector<uint32_t> at_target(n);
  for (size_t k = 0; k < n; ++k) {
    const int64_t t = pos_[branches_[k].label];
    auto it = std::lower_bound(branches_.begin(), branches_.end(), t,
                               [](const Branch& b, int64_t x) { return b.start < x; });
    at_target[k] = static_cast<uint32_t>(it - branches_.begin());
  }
  auto saving = [&](size_t k) -> int64_t { return short_[k] ? branches_[k].size - 2 : 0; };
  auto try_short = [&](size_t k, int64_t between) {
    const Branch& b = branches_[k];
    const int64_t t = pos_[b.label];
    // Forward, the branch's own shrinking moves the target too.
    const int64_t d = t > b.start ? t - b.start - between - b.size : t - b.start + between - 2;
    if (!fits8(d)) return false;
    short_[k] = 1;
    return true;
  };
  std::vector<int64_t> sum(n + 1, 0);
  bool any = false;
  for (bool changed = true; changed;) {
    changed = false;
    // From the end: sum[k] = what branches k..n-1 save.
    sum[n] = 0;
    for (size_t k = n; k-- > 0;) {
      const Branch& b = branches_[k];
      if (!short_[k] && b.opcode_short && pos_[b.label] > b.start &&
          try_short(k, sum[k + 1] - sum[at_target[k]]))
        changed = true;
      sum[k] = sum[k + 1] + saving(k);
    }
    // From the start: sum[k] = what branches 0..k-1 save.
    sum[0] = 0;
    for (size_t k = 0; k < n; ++k) {
      const Branch& b = branches_[k];
      if (!short_[k] && b.opcode_short && pos_[b.label] <= b.start &&
          try_short(k, sum[k] - sum[at_target[k]]))
        changed = true;
      sum[k + 1] = sum[k] + saving(k);
    }
    any |= changed;
  }
  return any;
}

// Rewrites the code with the short branches and the alignment paddings cut
// to size. Everything between two points only shrinks, so a branch that
// relax() found short (with every padding at its largest) still fits.
void Emitter::shorten() {
  // Branches and paddings, in code order.
  struct Event {
    int64_t start;
    size_t index;
    bool is_branch;
  };
  std::vector<Event> events;
  events.reserve(branches_.size() + aligns_.size());
  for (size_t k = 0; k < branches_.size(); ++k) events.push_back({branches_[k].start, k, true});
  for (size_t k = 0; k < aligns_.size(); ++k) events.push_back({aligns_[k].start, k, false});
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& x, const Event& y) { return x.start < y.start; });
  std::vector<uint8_t> out(len_);
  std::vector<int64_t> saved(events.size() + 1, 0);  // by the events before each one
  size_t w = 0, r = 0;
  for (size_t e = 0; e < events.size(); ++e) {
    const auto start = static_cast<size_t>(events[e].start);
    std::memcpy(out.data() + w, buf_.data() + r, start - r);
    w += start - r;
    size_t old_size, new_size;
    if (events[e].is_branch) {
      Branch& b = branches_[events[e].index];
      old_size = b.size;
      b.start = static_cast<int64_t>(w);
      if (short_[events[e].index]) {
        out[w] = b.opcode_short;
        b.size = 2;
      } else {
        std::memcpy(out.data() + w, buf_.data() + start, b.size);
      }
      new_size = b.size;
    } else {
      Align& a = aligns_[events[e].index];
      old_size = a.size;
      new_size = (a.boundary - w % a.boundary) % a.boundary;
      put_nops(out.data() + w, new_size);
      a.start = static_cast<int64_t>(w);
      a.size = static_cast<uint8_t>(new_size);
    }
    w += new_size;
    r = start + old_size;
    saved[e + 1] = saved[e] + static_cast<int64_t>(old_size - new_size);
  }
  std::memcpy(out.data() + w, buf_.data() + r, len_ - r);
  w += len_ - r;
  // Each label moves back by what the events before it (in the old layout)
  // save. Labels come mostly in code order: a cursor that moves forward,
  // restarted when a label lies behind it.
  size_t j = 0;
  int64_t last = -1;
  for (int64_t& p : pos_) {
    if (p < 0) continue;
    if (p < last) j = 0;
    last = p;
    while (j < events.size() && events[j].start < p) ++j;
    p -= saved[j];
  }
  buf_.swap(out);
  len_ = w;
}

void Emitter::finish() {
  if (relax() || !aligns_.empty()) shorten();
  for (const Table& t : tables_) {
    assert(pos_[t.label] >= 0);
    for (size_t i = 0; i < t.entries.size(); ++i) {
      assert(pos_[t.entries[i]] >= 0);
      auto v = static_cast<uint32_t>(static_cast<int32_t>(pos_[t.entries[i]] - pos_[t.label]));
      auto at = static_cast<size_t>(pos_[t.label]) + 4 * i;
      for (int b = 0; b < 4; ++b) buf_[at + b] = static_cast<uint8_t>(v >> (8 * b));
    }
  }
  for (const Branch& b : branches_) {
    assert(pos_[b.label] >= 0 && "branch to a label never bound");
    const int64_t end = b.start + b.size;
    const int64_t d = pos_[b.label] - end;
    if (b.size == 2) {
      assert(fits8(d));
      buf_[static_cast<size_t>(end - 1)] = static_cast<uint8_t>(static_cast<int8_t>(d));
    } else {
      auto v = static_cast<uint32_t>(static_cast<int32_t>(d));
      for (int i = 0; i < 4; ++i) buf_[static_cast<size_t>(end - 4 + i)] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
}

int Emitter::new_label() {
  int l = static_cast<int>(next_label_++);
  if (pos_.size() <= static_cast<size_t>(l)) pos_.resize(l + 1, -1);
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

// opcode_short: 0x70+cc for jcc, 0xeb for jmp, 0 for call. Emitted long;
// finish() shortens what fits.
void Emitter::branch(uint8_t opcode_short, int label) {
  const auto start = static_cast<int64_t>(len_);
  if (opcode_short == 0) {
    put(0xe8);
  } else if (opcode_short == 0xeb) {
    put(0xe9);
  } else {
    put(0x0f);
    put(static_cast<uint8_t>(opcode_short + 0x10));
  }
  put32(0);
  branches_.push_back({start, label, opcode_short, static_cast<uint8_t>(len_ - static_cast<size_t>(start))});
}

void Emitter::lea(Reg dst, int label) {
  const auto start = static_cast<int64_t>(len_);
  rex(true, dst, 0, 0, false);
  put(0x8d);
  put(static_cast<uint8_t>(((dst & 7) << 3) | 5));  // mod 00, rm 101: [rip + disp32]
  put32(0);
  branches_.push_back({start, label, 0, static_cast<uint8_t>(len_ - static_cast<size_t>(start))});
}

void Emitter::offset_table(int label, const std::vector<int>& entries) {
  ensure(4 * entries.size() + 4);
  bind(label);
  for (size_t i = 0; i < entries.size(); ++i) put32(0);
  tables_.push_back({label, entries});
}

void Emitter::jcc(Cond c, int label) { branch(static_cast<uint8_t>(0x70 | static_cast<int>(c)), label); }
void Emitter::jmp(int label) { branch(0xeb, label); }
void Emitter::call(int label) { branch(0, label); }

}  // namespace ember::jit
