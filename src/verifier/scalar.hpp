// The verifier's numeric domain: what is known of a 64-bit value, as the
// kernel tracks it in struct bpf_reg_state (kernel/bpf/tnum.c and the
// bounds logic of kernel/bpf/verifier.c): a tnum (known bits) together with
// unsigned and signed 64-bit and 32-bit (low half) ranges, kept consistent
// with each other by sync().
//
// Soundness is the contract: for every concrete value v a Scalar contains,
// the result of an operation on v is contained in the result of the same
// operation on the Scalar. tests/verifier_scalar_test.cpp checks it on
// random values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember::verifier {

// Known bits: bit i is unknown where mask has it set; known bits are in
// value (value & mask == 0).
struct Tnum {
  uint64_t value = 0;
  uint64_t mask = ~0ull;

  static Tnum constant(uint64_t v) { return {v, 0}; }
  static Tnum unknown() { return {0, ~0ull}; }
  // The smallest tnum holding every value in [min, max] (tnum_range).
  static Tnum range(uint64_t min, uint64_t max);

  bool is_const() const { return mask == 0; }
  bool contains(uint64_t v) const { return (v & ~mask) == value; }
  // Every value of `o` is a value of this (tnum_in).
  bool includes(Tnum o) const;
  uint64_t min() const { return value; }
  uint64_t max() const { return value | mask; }

  Tnum add(Tnum o) const;
  Tnum sub(Tnum o) const;
  Tnum mul(Tnum o) const;
  Tnum and_(Tnum o) const;
  Tnum or_(Tnum o) const;
  Tnum xor_(Tnum o) const;
  Tnum lshift(uint8_t n) const;
  Tnum rshift(uint8_t n) const;
  Tnum arshift(uint8_t n, uint8_t width) const;  // width 32 or 64
  Tnum intersect(Tnum o) const;                  // both hold
  Tnum union_(Tnum o) const;                     // either holds
  Tnum cast(uint8_t bytes) const;                // keep the low `bytes`
  Tnum subreg() const { return cast(4); }
  Tnum with_subreg(Tnum low) const;  // the high 32 bits of this, the low of `low`
  bool operator==(const Tnum&) const = default;
};

enum class AluOp : uint8_t { Add, Sub, Mul, Div, SDiv, Mod, SMod, Or, And, Xor, Lsh, Rsh, Arsh, Mov, Neg };
enum class JmpOp : uint8_t { Eq, Ne, Gt, Ge, Lt, Le, Sgt, Sge, Slt, Sle, Set };
enum class Branch : uint8_t { Never, Always, Maybe };

struct Thresholds;

struct Scalar {
  Tnum tn = Tnum::unknown();
  uint64_t umin = 0, umax = ~0ull;
  int64_t smin = INT64_MIN, smax = INT64_MAX;
  uint32_t u32min = 0, u32max = ~0u;
  int32_t s32min = INT32_MIN, s32max = INT32_MAX;

  static Scalar constant(uint64_t v);
  static Scalar unknown() { return {}; }
  static Scalar urange(uint64_t min, uint64_t max);  // [min, max] unsigned
  static Scalar srange(int64_t min, int64_t max);
  // A value loaded from memory: `bytes` wide, zero- or sign-extended.
  static Scalar of_width(uint8_t bytes, bool sign_extend = false);

  bool is_const() const { return tn.is_const(); }
  uint64_t const_value() const { return tn.value; }
  bool contains(uint64_t v) const;       // v is one of its values
  bool includes(const Scalar& o) const;  // every value of o is one of its (state pruning)
  bool empty() const;                    // no value at all: an impossible path
  Scalar join(const Scalar& o) const;    // holds every value of either
  // Widening for loop heads: a bound that moved from this to `next` goes to
  // the nearest threshold past it, or to the limit of its type; the tnum
  // keeps only the bits both agree on.
  Scalar widen(const Scalar& next, const Thresholds* t = nullptr) const;

  // Deduces each of the five descriptions from the others (the kernel's
  // reg_bounds_sync: __update_reg_bounds, __reg_deduce_bounds,
  // __reg_bound_offset), to a fixed point.
  void sync();
  // The value zero-extended from its low 32 bits (a 32-bit ALU result).
  Scalar zext32() const;

  // "umax=255,var_off=(0x0; 0xff)" or the constant; like the kernel's log.
  std::string str() const;
  bool operator==(const Scalar&) const = default;
};

// Where widening stops short of a type's limits ("widening with
// thresholds"): the constants a loop's tests compare against, and their
// neighbours, so that a counter tested against 40 widens to 39 or 40 rather
// than to 2^64-1, and the invariant still bounds what the counter indexes.
// Any set is sound: the invariant is only accepted once it includes the
// state that comes back to the loop head.
struct Thresholds {
  std::vector<uint64_t> u;
  std::vector<int64_t> s;
  std::vector<uint32_t> u32;
  std::vector<int32_t> s32;
  // A constant compared against, 64-bit (sign-extended imm) or 32-bit.
  void add(int64_t c, bool is64);
  void finish();  // sorts; call once after the last add
  bool empty() const { return u.empty() && u32.empty(); }
};

// dst = dst OP src with BPF semantics (RFC 9669): division by zero gives 0,
// modulo by zero leaves dst; shifts are masked to the width; 32-bit
// operations (is64 = false) zero-extend their result. For Neg src is
// ignored; for Mov the result is src (zero-extended when 32-bit).
Scalar alu(AluOp op, const Scalar& dst, const Scalar& src, bool is64);
// movsx: src sign-extended from `bits` (8, 16, 32) to 64 bits, or to 32
// bits then zero-extended when !is64.
Scalar movsx(const Scalar& src, uint8_t bits, bool is64);
// le16/32/64, be16/32/64 and bswap16/32/64 on a little-endian host.
Scalar endian(const Scalar& v, bool to_big_or_swap, uint8_t bits, bool is_bswap);

// Whether `a OP b` holds for all values (Always), none (Never) or some.
// is32: compare the low 32 bits (the JMP32 class).
Branch branch(JmpOp op, const Scalar& a, const Scalar& b, bool is32);
// Narrows a and b to the values for which `a OP b` is `taken` (the kernel's
// reg_set_min_max); false if no values remain (the branch is impossible).
bool refine(JmpOp op, bool taken, Scalar& a, Scalar& b, bool is32);

}  // namespace ember::verifier
