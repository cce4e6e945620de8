// Tristate numbers: the kernel's known-bits domain (kernel/bpf/tnum.c). Each
// operation returns a tnum holding every result of the operation on members
// of its operands; the algorithms follow the published ones the kernel uses
// (add/sub by carry propagation, mul by Vishwanathan et al.'s shift-and-add).
#include <bit>

#include "verifier/scalar.hpp"

namespace ember::verifier {

Tnum Tnum::range(uint64_t min, uint64_t max) {
  // As tnum_range: the bits above the highest bit where min and max differ
  // are common to every value in between; the others are unknown.
  if (min > max) return unknown();
  uint64_t chi = min ^ max;
  if (chi == 0) return constant(min);
  int bits = 64 - std::countl_zero(chi);
  if (bits >= 64) return unknown();
  uint64_t delta = (1ull << bits) - 1;
  return {min & ~delta, delta};
}

bool Tnum::includes(Tnum o) const {
  // tnum_in: o may not have an unknown bit where this has a known one, and
  // their known bits must agree where this knows them.
  if (o.mask & ~mask) return false;
  return (o.value & ~mask) == value;
}

Tnum Tnum::add(Tnum o) const {
  // The carries that can differ between the smallest and largest sums mark
  // the uncertain bits, plus the operands' own unknown bits (tnum_add).
  uint64_t sm = mask + o.mask;
  uint64_t sv = value + o.value;
  uint64_t sigma = sm + sv;
  uint64_t chi = sigma ^ sv;
  uint64_t mu = chi | mask | o.mask;
  return {sv & ~mu, mu};
}

Tnum Tnum::sub(Tnum o) const {
  // Borrows, as tnum_sub: compare the largest and smallest differences.
  uint64_t dv = value - o.value;
  uint64_t alpha = dv + mask;
  uint64_t beta = dv - o.mask;
  uint64_t chi = alpha ^ beta;
  uint64_t mu = chi | mask | o.mask;
  return {dv & ~mu, mu};
}

Tnum Tnum::mul(Tnum o) const {
  // Shift-and-add over the multiplier's bits (the kernel's tnum_mul since
  // 5.19): the product of the known parts is exact, and each bit of `a`
  // that is 1 adds b's unknown bits, each unknown bit adds all of b's
  // possibly-set bits, accumulated as an uncertain sum.
  Tnum a = *this, b = o;
  uint64_t exact = a.value * b.value;
  Tnum uncertain = constant(0);
  while (a.value != 0 || a.mask != 0) {
    if (a.value & 1)
      uncertain = uncertain.add({0, b.mask});
    else if (a.mask & 1)
      uncertain = uncertain.add({0, b.value | b.mask});
    a = a.rshift(1);
    b = b.lshift(1);
  }
  return constant(exact).add(uncertain);
}

Tnum Tnum::and_(Tnum o) const {
  // A bit is known 1 only when known 1 in both, known 0 when known 0 in
  // either (tnum_and).
  uint64_t alpha = value | mask;
  uint64_t beta = o.value | o.mask;
  uint64_t v = value & o.value;
  return {v, alpha & beta & ~v};
}

Tnum Tnum::or_(Tnum o) const {
  uint64_t v = value | o.value;
  uint64_t mu = mask | o.mask;
  return {v, mu & ~v};
}

Tnum Tnum::xor_(Tnum o) const {
  uint64_t v = value ^ o.value;
  uint64_t mu = mask | o.mask;
  return {v & ~mu, mu};
}

Tnum Tnum::lshift(uint8_t n) const {
  if (n >= 64) return constant(0);
  return {value << n, mask << n};
}

Tnum Tnum::rshift(uint8_t n) const {
  if (n >= 64) return constant(0);
  return {value >> n, mask >> n};
}

Tnum Tnum::arshift(uint8_t n, uint8_t width) const {
  // Both parts shift arithmetically: an unknown sign bit stays unknown in
  // every copy, a known one copies its value (tnum_arshift). A 32-bit shift
  // works on the low half and yields it zero-extended.
  if (width == 32) {
    if (n > 31) n = 31;
    auto v = static_cast<int32_t>(static_cast<uint32_t>(value));
    auto m = static_cast<int32_t>(static_cast<uint32_t>(mask));
    return {static_cast<uint32_t>(v >> n), static_cast<uint32_t>(m >> n)};
  }
  if (n > 63) n = 63;
  return {static_cast<uint64_t>(static_cast<int64_t>(value) >> n),
          static_cast<uint64_t>(static_cast<int64_t>(mask) >> n)};
}

Tnum Tnum::intersect(Tnum o) const {
  // Callers check first that the known bits agree (otherwise no value is in
  // both); then each bit known in either is known (tnum_intersect).
  uint64_t v = value | o.value;
  uint64_t mu = mask & o.mask;
  return {v & ~mu, mu};
}

Tnum Tnum::union_(Tnum o) const {
  // Known only where known in both with the same value.
  uint64_t mu = mask | o.mask | (value ^ o.value);
  return {value & o.value & ~mu, mu};
}

Tnum Tnum::cast(uint8_t bytes) const {
  if (bytes >= 8) return *this;
  uint64_t keep = (1ull << (bytes * 8)) - 1;
  return {value & keep, mask & keep};
}

Tnum Tnum::with_subreg(Tnum low) const {
  constexpr uint64_t kHigh = 0xffffffff00000000ull;
  Tnum l = low.subreg();
  return {(value & kHigh) | l.value, (mask & kHigh) | l.mask};
}

}  // namespace ember::verifier
