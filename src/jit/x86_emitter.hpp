// An x86-64 instruction encoder with labels, for the JIT. Branches are
// emitted with 32-bit displacements and recorded; finish() then sizes them
// by branch relaxation on that record alone (a branch becomes short, 8-bit,
// when its distance fits, repeated until no more do: making a branch short
// only brings others closer, so the choice only grows) and rewrites the
// code once, shortening those branches. The code between branches does not
// depend on where it lands (rip-relative operands are recorded like
// branches and patched last), so this is the code a second emission pass
// would give; the kernel's x86 JIT reaches the same
// fixed point by emitting the whole program again until its size settles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ember::jit {

enum Reg : uint8_t { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

// Condition codes, numbered as in the Jcc/SETcc encodings.
enum class Cond : uint8_t { O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G };

// The group-1 ALU operations, numbered as their /digit.
enum class Alu : uint8_t { Add = 0, Or = 1, And = 4, Sub = 5, Xor = 6, Cmp = 7 };

// The group-2 shifts, numbered as their /digit.
enum class Shift : uint8_t { Rol = 0, Ror = 1, Shl = 4, Shr = 5, Sar = 7 };

// [base + index * (1 << scale) + disp]; index < 0: none.
struct Mem {
  Reg base;
  int32_t disp = 0;
  int8_t index = -1;
  uint8_t scale = 0;
};

class Emitter {
 public:
  // Starts the code. Labels 0..fixed_labels-1 exist from the start (the
  // JIT uses one per eBPF instruction); new_label() hands out the next ones.
  void begin(size_t fixed_labels);
  // Sizes and patches the branches: the code is final.
  void finish();

  size_t size() const { return len_; }
  // The code, leaving the emitter empty.
  std::vector<uint8_t> take() {
    buf_.resize(len_);
    len_ = 0;
    return std::move(buf_);
  }
  const uint8_t* data() const { return buf_.data(); }
  // Makes room for `bytes` more bytes; call before each group of
  // instructions (an eBPF instruction emits at most a few hundred).
  void ensure(size_t bytes) {
    if (len_ + bytes > buf_.size()) buf_.resize((len_ + bytes) * 2);
  }

  int new_label();
  void bind(int label);
  // The label's offset in the code (final after finish()), or -1 if unbound.
  int64_t label_pos(int label) const { return pos_[label]; }

  // op dst, src / op dst, imm / op [m], src / op dst, [m] / op [m], imm
  void alu(Alu op, bool w, Reg dst, Reg src);
  void alu(Alu op, bool w, Reg dst, int32_t imm);
  void alu(Alu op, bool w, const Mem& m, Reg src, bool lock = false);
  void alu(Alu op, bool w, Reg dst, const Mem& m);
  void alu(Alu op, bool w, const Mem& m, int32_t imm);
  void test(bool w, Reg a, Reg b);
  void test(bool w, Reg a, int32_t imm);
  void mov(bool w, Reg dst, Reg src);
  // dst = value, the shortest encoding that does not touch the flags.
  void mov_imm(Reg dst, uint64_t value);
  void mov_imm32(Reg dst, uint32_t value) { mov_imm(dst, value); }
  // dst = sign-extended imm (REX.W C7): 7 bytes whatever the value.
  void mov_simm(Reg dst, int32_t imm);
  void zero(Reg r) { alu(Alu::Xor, false, r, r); }  // xor r32, r32 (clobbers the flags)
  // Loads of 1, 2, 4, 8 bytes, zero- or sign-extended to 64 bits.
  void load(int size, bool sign, Reg dst, const Mem& m);
  void store(int size, const Mem& m, Reg src);
  void store_imm(int size, const Mem& m, int32_t imm);
  // lea; w = false: the 32-bit result, zero-extended.
  void lea(Reg dst, const Mem& m, bool w = true);
  void shift(Shift op, bool w, Reg dst, uint8_t count);
  void shift_cl(Shift op, bool w, Reg dst);
  void imul(bool w, Reg dst, Reg src);
  void imul(bool w, Reg dst, Reg src, int32_t imm);
  void neg(bool w, Reg r);
  void div(bool w, bool is_signed, Reg divisor);
  void sign_extend_rax(bool w);  // cqo / cdq
  void movsx(int from_bits, bool w, Reg dst, Reg src);
  void movzx(int from_bits, Reg dst, Reg src);
  void bswap(bool w, Reg r);
  void rol16_by8(Reg r);  // swaps the two low bytes
  void xadd(bool w, const Mem& m, Reg src);
  void xchg(bool w, const Mem& m, Reg src);
  void cmpxchg(bool w, const Mem& m, Reg src);
  void inc32(const Mem& m);
  void dec32(const Mem& m);
  void push(Reg r);
  void pop(Reg r);
  void ret() { put(0xc3); }
  void call(Reg r);
  void jmp(Reg r);
  void jcc(Cond c, int label);
  void jmp(int label);
  void call(int label);  // rel32 call
  // Pads with nops so that the next byte starts at a multiple of
  // `boundary` (a power of two, at most 64) in the final code: emitted at
  // its largest and cut to size when finish() shortens the branches.
  void align(unsigned boundary);
  // dst = the address of a label (lea dst, [rip + disp32]).
  void lea(Reg dst, int label);
  // A table of 32-bit offsets from its own start (bound to `label`) to
  // each entry's label: jump tables.
  void offset_table(int label, const std::vector<int>& entries);

 private:
  void put(uint8_t b) { buf_[len_++] = b; }
  void put16(uint16_t v);
  void put32(uint32_t v);
  void put64(uint64_t v);
  void rex(bool w, int reg, int index, int base, bool byte_regs);
  void modrm_mem(int reg, const Mem& m);
  // [prefix] [REX] [0F] opcode modrm: the register-direct and memory forms.
  void enc(uint8_t prefix, bool w, bool ext, uint8_t opc, int reg, Reg rm, bool byte_regs = false);
  void enc(uint8_t prefix, bool w, bool ext, uint8_t opc, int reg, const Mem& m, bool byte_regs = false);
  void branch(uint8_t opcode_short, int label);

  // Which branches can be short (short_).
  bool relax();
  // Shortens those branches, moving the code and the labels after them.
  void shorten();

  struct Branch {
    int64_t start;
    int label;
    uint8_t opcode_short;  // 0x70+cc, 0xeb (jmp); 0: a call or lea, always long
    uint8_t size;          // as emitted: 5, 6 (7: lea), the displacement last
  };
  std::vector<uint8_t> buf_;
  size_t len_ = 0;
  std::vector<int64_t> pos_;
  size_t next_label_ = 0;
  std::vector<Branch> branches_;
  std::vector<uint8_t> short_;  // per branch
  struct Table {
    int label;
    std::vector<int> entries;
  };
  std::vector<Table> tables_;
  struct Align {
    int64_t start;
    uint8_t boundary, size;  // size: as emitted (boundary - 1)
  };
  std::vector<Align> aligns_;
};

}  // namespace ember::jit
