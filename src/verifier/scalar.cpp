// The scalar domain: a tnum and four ranges (u64, s64, u32, s32), with the
// transfer functions of kernel/bpf/verifier.c (adjust_scalar_min_max_vals
// and the scalar{,32}_min_max_* helpers), its bounds deduction
// (reg_bounds_sync) and its branch logic (is_branch_taken, reg_set_min_max).
//
// Most operations are written once, generic over the width (uint64_t for
// the register, uint32_t for its low half, the way the kernel keeps
// separate 64- and 32-bit bounds), on a `Val` view: a tnum whose bits above
// the width are known zero, and an unsigned and a signed range. Range
// arithmetic is done in 128 bits: a result interval is kept when every
// mathematical result lies in one window of 2^width values (then wrapping
// is monotone), which is the kernel's overflow check generalised (it also
// keeps ranges whose both ends overflow, as the kernel has done since 6.9).
#include "verifier/scalar.hpp"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <optional>
#include <type_traits>

namespace ember::verifier {
namespace {

using i128 = __int128;
using u128 = unsigned __int128;

template <class U>
struct W {
  using S = std::make_signed_t<U>;
  static constexpr int kBits = sizeof(U) * 8;
  static constexpr U kUMax = std::numeric_limits<U>::max();
  static constexpr S kSMin = std::numeric_limits<S>::min();
  static constexpr S kSMax = std::numeric_limits<S>::max();
  static constexpr U kSign = U(1) << (kBits - 1);
};

// One width's view of a value. For uint32_t the tnum holds the low half,
// its upper bits known zero.
template <class U>
struct Val {
  using S = std::make_signed_t<U>;
  Tnum t{0, W<U>::kUMax};
  U umin = 0, umax = W<U>::kUMax;
  S smin = W<U>::kSMin, smax = W<U>::kSMax;
};

template <class U>
Tnum trunc_t(Tnum t) {
  return sizeof(U) == 8 ? t : t.cast(4);
}

template <class U>
Val<U> konst(U v) {
  using S = std::make_signed_t<U>;
  return {Tnum::constant(v), v, v, static_cast<S>(v), static_cast<S>(v)};
}

template <class U>
Val<U> view(const Scalar& s) {
  if constexpr (sizeof(U) == 8)
    return {s.tn, s.umin, s.umax, s.smin, s.smax};
  else
    return {s.tn.subreg(), s.u32min, s.u32max, s.s32min, s.s32max};
}

template <class U>
Val<U> hull(const Val<U>& a, const Val<U>& b) {
  return {a.t.union_(b.t), std::min(a.umin, b.umin), std::max(a.umax, b.umax), std::min(a.smin, b.smin),
          std::max(a.smax, b.smax)};
}

// Whether two tnums share a value (their known bits agree).
bool tnums_meet(Tnum a, Tnum b) { return ((a.value ^ b.value) & ~a.mask & ~b.mask) == 0; }

// [lo, hi] are mathematical results; keep them if one 2^width window holds
// them all (unsigned windows start at multiples of 2^width, signed ones at
// odd multiples of 2^(width-1)).
template <class U, class Wide>
void wrap_u(Wide lo, Wide hi, Val<U>& r) {
  constexpr int b = W<U>::kBits;
  if ((lo >> b) == (hi >> b)) {
    r.umin = static_cast<U>(lo);
    r.umax = static_cast<U>(hi);
  } else {
    r.umin = 0;
    r.umax = W<U>::kUMax;
  }
}

template <class U>
void wrap_s(i128 lo, i128 hi, Val<U>& r) {
  using S = std::make_signed_t<U>;
  constexpr int b = W<U>::kBits;
  const i128 off = i128(1) << (b - 1);
  if (((lo + off) >> b) == ((hi + off) >> b)) {
    r.smin = static_cast<S>(static_cast<U>(lo));
    r.smax = static_cast<S>(static_cast<U>(hi));
  } else {
    r.smin = W<U>::kSMin;
    r.smax = W<U>::kSMax;
  }
}

// The concrete operation at one width, RFC 9669 semantics.
template <class U>
U fold(AluOp op, U x, U y) {
  using S = std::make_signed_t<U>;
  constexpr U kShiftMask = W<U>::kBits - 1;
  const S sx = static_cast<S>(x), sy = static_cast<S>(y);
  switch (op) {
    case AluOp::Add: return x + y;
    case AluOp::Sub: return x - y;
    case AluOp::Mul: return x * y;
    case AluOp::Div: return y == 0 ? 0 : x / y;
    case AluOp::Mod: return y == 0 ? x : x % y;
    case AluOp::SDiv:
      if (sy == 0) return 0;
      if (sx == W<U>::kSMin && sy == -1) return x;
      return static_cast<U>(sx / sy);
    case AluOp::SMod:
      if (sy == 0) return x;
      if (sy == -1) return 0;
      return static_cast<U>(sx % sy);
    case AluOp::Or: return x | y;
    case AluOp::And: return x & y;
    case AluOp::Xor: return x ^ y;
    case AluOp::Lsh: return x << (y & kShiftMask);
    case AluOp::Rsh: return x >> (y & kShiftMask);
    case AluOp::Arsh: return static_cast<U>(sx >> (y & kShiftMask));
    case AluOp::Mov: return y;
    case AluOp::Neg: return U(0) - x;
  }
  return 0;
}

// x shifted by the constant k (0 < k < width), as scalar{,32}_min_max_lsh /
// _rsh / _arsh do for a constant shift amount.
template <class U>
Val<U> shift_const(AluOp op, const Val<U>& a, unsigned k) {
  using S = std::make_signed_t<U>;
  constexpr int b = W<U>::kBits;
  if (k == 0) return a;
  Val<U> r;
  switch (op) {
    case AluOp::Lsh:
      r.t = trunc_t<U>(a.t.lshift(static_cast<uint8_t>(k)));
      // Monotone when the mathematical products x * 2^k all lie in one
      // window (the kernel requires that nothing is shifted out).
      wrap_u(i128(a.umin) << k, i128(a.umax) << k, r);
      wrap_s(i128(a.smin) * (i128(1) << k), i128(a.smax) * (i128(1) << k), r);
      return r;
    case AluOp::Rsh:
      r.t = a.t.rshift(static_cast<uint8_t>(k));
      r.umin = a.umin >> k;
      r.umax = a.umax >> k;
      // The sign bit is now zero: the signed range is the unsigned one.
      r.smin = static_cast<S>(r.umin);
      r.smax = static_cast<S>(r.umax);
      return r;
    case AluOp::Arsh:
      r.t = trunc_t<U>(a.t.arshift(static_cast<uint8_t>(k), static_cast<uint8_t>(b)));
      r.smin = static_cast<S>(a.smin >> k);
      r.smax = static_cast<S>(a.smax >> k);
      return r;
    default: return r;
  }
}

// Division by the signed range [d0, d1] that excludes 0 and does not meet
// the INT_MIN / -1 overflow: trunc(x / d) is monotone in x for each d and
// in d for each x, so the extremes are at the corners.
template <class U>
void sdiv_corners(const Val<U>& a, std::make_signed_t<U> d0, std::make_signed_t<U> d1, bool& any,
                  std::make_signed_t<U>& lo, std::make_signed_t<U>& hi) {
  using S = std::make_signed_t<U>;
  S c[4] = {static_cast<S>(a.smin / d0), static_cast<S>(a.smin / d1), static_cast<S>(a.smax / d0),
            static_cast<S>(a.smax / d1)};
  for (S v : c) {
    lo = any ? std::min(lo, v) : v;
    hi = any ? std::max(hi, v) : v;
    any = true;
  }
}

template <class U>
Val<U> binop(AluOp op, const Val<U>& a, const Val<U>& b) {
  using S = std::make_signed_t<U>;
  constexpr int bits = W<U>::kBits;
  if (op == AluOp::Mov) return b;
  if (op == AluOp::Neg) return binop(AluOp::Sub, konst<U>(0), a);
  // Constants fold for every operation (the kernel folds through its tnum
  // and bounds; here division and modulo fold too).
  if (a.t.is_const() && b.t.is_const())
    return konst<U>(fold<U>(op, static_cast<U>(a.t.value), static_cast<U>(b.t.value)));
  Val<U> r;
  switch (op) {
    case AluOp::Add:
      r.t = trunc_t<U>(a.t.add(b.t));
      wrap_u(i128(a.umin) + i128(b.umin), i128(a.umax) + i128(b.umax), r);
      wrap_s(i128(a.smin) + i128(b.smin), i128(a.smax) + i128(b.smax), r);
      return r;
    case AluOp::Sub:
      r.t = trunc_t<U>(a.t.sub(b.t));
      wrap_u(i128(a.umin) - i128(b.umax), i128(a.umax) - i128(b.umin), r);
      wrap_s(i128(a.smin) - i128(b.smax), i128(a.smax) - i128(b.smin), r);
      return r;
    case AluOp::Mul: {
      r.t = trunc_t<U>(a.t.mul(b.t));
      wrap_u(u128(a.umin) * u128(b.umin), u128(a.umax) * u128(b.umax), r);  // unsigned: products exceed i128
      // A bilinear function's extremes on a rectangle are at its corners
      // (the kernel's scalar_min_max_mul checks the four products too).
      i128 c[4] = {i128(a.smin) * i128(b.smin), i128(a.smin) * i128(b.smax), i128(a.smax) * i128(b.smin),
                   i128(a.smax) * i128(b.smax)};
      wrap_s(*std::min_element(c, c + 4), *std::max_element(c, c + 4), r);
      return r;
    }
    case AluOp::And:
      // scalar_min_max_and: the result's set bits are a subset of each
      // operand's, so it is at most either operand (unsigned), and at most
      // a non-negative operand (signed).
      r.t = a.t.and_(b.t);
      r.umin = static_cast<U>(r.t.value);
      r.umax = std::min(a.umax, b.umax);
      if (a.smin >= 0 && b.smin >= 0) {
        r.smin = 0;
        r.smax = std::min(a.smax, b.smax);
      } else if (a.smin >= 0) {
        r.smin = 0;
        r.smax = a.smax;
      } else if (b.smin >= 0) {
        r.smin = 0;
        r.smax = b.smax;
      } else if (a.smax < 0 && b.smax < 0) {
        r.smax = std::min(a.smax, b.smax);
      }
      return r;
    case AluOp::Or:
      // scalar_min_max_or: the result is at least either operand (unsigned;
      // signed too when both have the same sign), negative if one is.
      r.t = a.t.or_(b.t);
      r.umin = std::max(a.umin, b.umin);
      r.umax = static_cast<U>(r.t.max());
      if (a.smin >= 0 && b.smin >= 0) {
        r.smin = std::max(a.smin, b.smin);
      } else if (a.smax < 0 && b.smax < 0) {
        r.smin = std::max(a.smin, b.smin);
        r.smax = -1;
      } else if (a.smax < 0) {
        r.smin = a.smin;
        r.smax = -1;
      } else if (b.smax < 0) {
        r.smin = b.smin;
        r.smax = -1;
      }
      return r;
    case AluOp::Xor:
      // scalar_min_max_xor: bounds from the tnum; the sign is known when
      // both operands' signs are.
      r.t = a.t.xor_(b.t);
      r.umin = static_cast<U>(r.t.value);
      r.umax = static_cast<U>(r.t.max());
      if ((a.smin >= 0 && b.smin >= 0) || (a.smax < 0 && b.smax < 0)) {
        r.smin = 0;
      } else if ((a.smin >= 0 && b.smax < 0) || (a.smax < 0 && b.smin >= 0)) {
        r.smax = -1;
      }
      return r;
    case AluOp::Lsh:
    case AluOp::Rsh:
    case AluOp::Arsh: {
      // The amount is masked to the width. The kernel handles constant
      // amounts only; a range of amounts here is the hull of the results
      // for each amount it may hold (at most 64 of them).
      constexpr U kAmt = bits - 1;
      U k0 = 0, k1 = kAmt;
      if (b.umax <= kAmt) {
        k0 = b.umin;
        k1 = b.umax;
      }
      bool any = false;
      for (U k = k0; k <= k1; ++k) {
        if (((k ^ b.t.value) & ~b.t.mask & kAmt) != 0) continue;
        Val<U> s = shift_const(op, a, static_cast<unsigned>(k));
        r = any ? hull(r, s) : s;
        any = true;
      }
      return any ? r : Val<U>{};
    }
    case AluOp::Div: {
      // The kernel marks the result unknown unless both are constants;
      // this is a sound range: x / d shrinks as d grows, and d = 0 gives 0.
      if (b.umax == 0) return konst<U>(0);
      U dlo = b.umin == 0 ? 1 : b.umin;
      r.umin = b.umin == 0 ? 0 : a.umin / b.umax;
      r.umax = a.umax / dlo;
      r.t = Tnum::range(r.umin, r.umax);
      return r;
    }
    case AluOp::Mod: {
      if (b.umax == 0) return a;      // modulo by zero leaves dst
      if (b.umin > a.umax) return a;  // x < d: x % d == x
      r.umin = 0;
      r.umax = std::min<U>(a.umax, b.umax - 1);  // x % d < d, <= x
      if (b.t.is_const() && std::has_single_bit(static_cast<U>(b.t.value)))
        r.t = a.t.and_(Tnum::constant(b.t.value - 1));  // x % 2^k == x & (2^k - 1)
      else
        r.t = Tnum::range(0, r.umax);
      if (b.umin == 0) r = hull(r, a);
      return r;
    }
    case AluOp::SDiv: {
      if (b.t.is_const() && static_cast<S>(b.t.value) == -1) return binop(AluOp::Sub, konst<U>(0), a);
      bool any = false;
      S lo = 0, hi = 0;
      if (b.smax >= 1) sdiv_corners(a, std::max<S>(b.smin, 1), b.smax, any, lo, hi);
      if (b.smin <= -1) {
        S d1 = std::min<S>(b.smax, -1);
        if (d1 == -1 && a.smin == W<U>::kSMin) return Val<U>{};  // INT_MIN / -1 wraps
        sdiv_corners(a, b.smin, d1, any, lo, hi);
      }
      if (b.smin <= 0 && b.smax >= 0) {  // d = 0 gives 0
        lo = any ? std::min<S>(lo, 0) : 0;
        hi = any ? std::max<S>(hi, 0) : 0;
        any = true;
      }
      if (!any) return Val<U>{};
      r.smin = lo;
      r.smax = hi;
      return r;
    }
    case AluOp::SMod: {
      // |x % d| < |d| and |x % d| <= |x|, with the sign of x; d = 0 leaves x.
      if (b.smin == 0 && b.smax == 0) return a;
      auto mag_of = [](S v) { return v < 0 ? static_cast<U>(U(0) - static_cast<U>(v)) : static_cast<U>(v); };
      const U mag = std::max(mag_of(b.smin), mag_of(b.smax));  // the largest |d|, <= 2^(width-1)
      const S bound = static_cast<S>(mag - 1);
      // Every |x| below every |d|: x % d == x.
      if (b.smin > 0 && a.smin > -b.smin && a.smax < b.smin) return a;
      if (b.smax < 0 && b.smax > W<U>::kSMin && a.smin > b.smax && a.smax < -b.smax) return a;
      r.smin = a.smin >= 0 ? 0 : std::max<S>(a.smin, static_cast<S>(-bound));
      r.smax = a.smax <= 0 ? 0 : std::min<S>(a.smax, bound);
      if (b.smin <= 0 && b.smax >= 0 && b.umin == 0) r = hull(r, a);
      return r;
    }
    default: return r;
  }
}

// ---- Bounds deduction (reg_bounds_sync) ----

// Smallest member of t that is >= x.
std::optional<uint64_t> next_member(Tnum t, uint64_t x) {
  uint64_t c = (x & t.mask) | t.value;  // x with t's known bits forced
  if (c == x) return x;
  int d = 63 - std::countl_zero(c ^ x);  // highest bit where they differ: a known bit
  uint64_t below_d = (1ull << d) - 1;
  if ((c >> d) & 1) {
    // c > x there: keep c above and at d, lowest possible below.
    return (c & ~below_d) | (t.value & below_d);
  }
  // c < x there: set the lowest unknown bit above d that is 0 in x.
  uint64_t above_d = d == 63 ? 0 : ~0ull << (d + 1);
  uint64_t cand = t.mask & ~c & above_d;
  if (cand == 0) return std::nullopt;
  int p = std::countr_zero(cand);
  uint64_t below_p = (1ull << p) - 1;
  uint64_t above_p = p == 63 ? 0 : ~0ull << (p + 1);
  return (c & above_p) | (1ull << p) | (t.value & below_p);
}

// Largest member of t that is <= x: the smallest >= ~x of the complement.
std::optional<uint64_t> prev_member(Tnum t, uint64_t x) {
  auto w = next_member({~t.value & ~t.mask, t.mask}, ~x);
  if (!w) return std::nullopt;
  return ~*w;
}

// __update_reg_bounds, tightened: each bound moves to the nearest value the
// tnum holds (the kernel moves it to the tnum's min or max only).
template <class U>
bool bounds_from_tnum(Tnum t, U& umin, U& umax, std::make_signed_t<U>& smin, std::make_signed_t<U>& smax) {
  using S = std::make_signed_t<U>;
  constexpr U kSign = W<U>::kSign;
  auto lo = next_member(t, umin);
  auto hi = prev_member(t, umax);
  if (!lo || !hi || *lo > *hi) return false;
  umin = static_cast<U>(*lo);
  umax = static_cast<U>(*hi);
  // Signed order is unsigned order with the sign bit flipped.
  Tnum tb = t;
  tb.value ^= kSign & ~t.mask;
  auto slo = next_member(tb, static_cast<U>(smin) ^ kSign);
  auto shi = prev_member(tb, static_cast<U>(smax) ^ kSign);
  if (!slo || !shi || *slo > *shi) return false;
  smin = static_cast<S>(static_cast<U>(*slo) ^ kSign);
  smax = static_cast<S>(static_cast<U>(*shi) ^ kSign);
  return true;
}

// Narrows [lo, hi] to the values of the arc from s up to e (mod 2^width;
// s > e means it wraps), keeping the hull of what is left.
template <class U>
bool clip_arc(U s, U e, U& lo, U& hi) {
  if (lo > hi) return false;
  if (s <= e) {
    lo = std::max(lo, s);
    hi = std::min(hi, e);
    return lo <= hi;
  }
  bool low_piece = lo <= e;   // [lo, min(hi, e)]
  bool high_piece = hi >= s;  // [max(lo, s), hi]
  if (!low_piece && !high_piece) return false;
  U nlo = low_piece ? lo : std::max(lo, s);
  U nhi = high_piece ? hi : std::min(hi, e);
  lo = nlo;
  hi = nhi;
  return true;
}

// The same for a signed range [smin, smax], through the order isomorphism
// that flips the sign bit.
template <class U>
bool clip_arc_signed(U s, U e, std::make_signed_t<U>& smin, std::make_signed_t<U>& smax) {
  using S = std::make_signed_t<U>;
  constexpr U kSign = W<U>::kSign;
  U lo = static_cast<U>(smin) ^ kSign, hi = static_cast<U>(smax) ^ kSign;
  if (!clip_arc<U>(s ^ kSign, e ^ kSign, lo, hi)) return false;
  smin = static_cast<S>(lo ^ kSign);
  smax = static_cast<S>(hi ^ kSign);
  return true;
}

// Unsigned and signed ranges of one width narrow each other (the kernel's
// __reg{32,64}_deduce_bounds, including the cases where one range crosses
// the sign boundary): the signed range is an arc of the unsigned circle.
template <class U>
bool cross_deduce(U& umin, U& umax, std::make_signed_t<U>& smin, std::make_signed_t<U>& smax) {
  if (!clip_arc<U>(static_cast<U>(smin), static_cast<U>(smax), umin, umax)) return false;
  return clip_arc_signed<U>(umin, umax, smin, smax);
}

// Narrows [lo, hi] (64-bit, unsigned order) to values whose low 32 bits
// lie in [l0, l1] (__reg_combine_32_into_64 / the 32->64 half of
// __reg_deduce_bounds, generalised to ranges whose upper halves differ).
bool tighten_by_low32(uint64_t& lo, uint64_t& hi, uint32_t l0, uint32_t l1) {
  if (lo > hi || l0 > l1) return false;
  uint64_t nlo, nhi;
  uint32_t L = static_cast<uint32_t>(lo);
  uint64_t H = lo >> 32;
  if (L < l0)
    nlo = (H << 32) | l0;
  else if (L <= l1)
    nlo = lo;
  else if (H == 0xffffffffull)
    return false;
  else
    nlo = ((H + 1) << 32) | l0;
  L = static_cast<uint32_t>(hi);
  H = hi >> 32;
  if (L > l1)
    nhi = (H << 32) | l1;
  else if (L >= l0)
    nhi = hi;
  else if (H == 0)
    return false;
  else
    nhi = ((H - 1) << 32) | l1;
  if (nlo > nhi) return false;
  lo = nlo;
  hi = nhi;
  return true;
}

// The same where the low half is constrained as a signed 32-bit range:
// adding 2^31 turns that into an unsigned one on the low half, and keeps
// the 64-bit order as long as nothing wraps.
bool tighten_by_low32_signed(uint64_t& lo, uint64_t& hi, int32_t s0, int32_t s1) {
  constexpr uint64_t kOff = 1ull << 31;
  if (hi > ~0ull - kOff) return true;  // would wrap: no deduction
  uint64_t blo = lo + kOff, bhi = hi + kOff;
  if (!tighten_by_low32(blo, bhi, static_cast<uint32_t>(s0) ^ 0x80000000u,
                        static_cast<uint32_t>(s1) ^ 0x80000000u))
    return false;
  lo = blo - kOff;
  hi = bhi - kOff;
  return true;
}

bool ranges_ok(const Scalar& s) {
  return s.umin <= s.umax && s.smin <= s.smax && s.u32min <= s.u32max && s.s32min <= s.s32max;
}

bool sync_once(Scalar& s) {
  constexpr uint64_t kSign64 = 1ull << 63;
  if (!ranges_ok(s)) return false;
  // __update_reg_bounds: ranges from the tnum.
  if (!bounds_from_tnum<uint64_t>(s.tn, s.umin, s.umax, s.smin, s.smax)) return false;
  if (!bounds_from_tnum<uint32_t>(s.tn.subreg(), s.u32min, s.u32max, s.s32min, s.s32max)) return false;
  // 64 -> 32 (__reg32_deduce_bounds): when a 64-bit range spans fewer than
  // 2^32 values, its low halves form an arc of the 32-bit circle.
  if (s.umax - s.umin <= 0xffffffffull) {
    auto a = static_cast<uint32_t>(s.umin), e = static_cast<uint32_t>(s.umax);
    if (!clip_arc<uint32_t>(a, e, s.u32min, s.u32max)) return false;
    if (!clip_arc_signed<uint32_t>(a, e, s.s32min, s.s32max)) return false;
  }
  if (static_cast<uint64_t>(s.smax) - static_cast<uint64_t>(s.smin) <= 0xffffffffull) {
    auto a = static_cast<uint32_t>(s.smin), e = static_cast<uint32_t>(s.smax);
    if (!clip_arc<uint32_t>(a, e, s.u32min, s.u32max)) return false;
    if (!clip_arc_signed<uint32_t>(a, e, s.s32min, s.s32max)) return false;
  }
  if (!cross_deduce<uint32_t>(s.u32min, s.u32max, s.s32min, s.s32max)) return false;
  // 32 -> 64 (__reg_deduce_bounds' use of the 32-bit bounds).
  if (!tighten_by_low32(s.umin, s.umax, s.u32min, s.u32max)) return false;
  if (!tighten_by_low32_signed(s.umin, s.umax, s.s32min, s.s32max)) return false;
  uint64_t blo = static_cast<uint64_t>(s.smin) ^ kSign64, bhi = static_cast<uint64_t>(s.smax) ^ kSign64;
  if (!tighten_by_low32(blo, bhi, s.u32min, s.u32max)) return false;
  if (!tighten_by_low32_signed(blo, bhi, s.s32min, s.s32max)) return false;
  s.smin = static_cast<int64_t>(blo ^ kSign64);
  s.smax = static_cast<int64_t>(bhi ^ kSign64);
  if (!cross_deduce<uint64_t>(s.umin, s.umax, s.smin, s.smax)) return false;
  // __reg_bound_offset: the tnum from the unsigned ranges.
  Tnum r64 = Tnum::range(s.umin, s.umax);
  if (!tnums_meet(s.tn, r64)) return false;
  Tnum t = s.tn.intersect(r64);
  Tnum r32 = Tnum::range(s.u32min, s.u32max);
  if (!tnums_meet(t.subreg(), r32)) return false;
  s.tn = t.with_subreg(t.subreg().intersect(r32));
  return true;
}

void make_empty(Scalar& s) {
  s.umin = ~0ull;
  s.umax = 0;
  s.smin = INT64_MAX;
  s.smax = INT64_MIN;
  s.u32min = ~0u;
  s.u32max = 0;
  s.s32min = INT32_MAX;
  s.s32max = INT32_MIN;
}

Scalar from64(const Val<uint64_t>& v) {
  Scalar s;
  s.tn = v.t;
  s.umin = v.umin;
  s.umax = v.umax;
  s.smin = v.smin;
  s.smax = v.smax;
  return s;
}

// A 32-bit result, zero-extended (zext_32_to_64).
Scalar from32(const Val<uint32_t>& v) {
  Scalar s;
  s.tn = v.t.subreg();
  s.u32min = v.umin;
  s.u32max = v.umax;
  s.s32min = v.smin;
  s.s32max = v.smax;
  s.umin = v.umin;
  s.umax = v.umax;
  s.smin = v.umin;
  s.smax = v.umax;
  s.sync();
  return s;
}

template <class U>
void write_back(Scalar& s, const Val<U>& v) {
  if constexpr (sizeof(U) == 8) {
    s.tn = v.t;
    s.umin = v.umin;
    s.umax = v.umax;
    s.smin = v.smin;
    s.smax = v.smax;
  } else {
    s.tn = s.tn.with_subreg(v.t);
    s.u32min = v.umin;
    s.u32max = v.umax;
    s.s32min = v.smin;
    s.s32max = v.smax;
  }
}

// ---- Branches ----

template <class U>
Branch ult(const Val<U>& a, const Val<U>& b, bool or_equal) {
  if (or_equal) {
    if (a.umax <= b.umin) return Branch::Always;
    if (a.umin > b.umax) return Branch::Never;
  } else {
    if (a.umax < b.umin) return Branch::Always;
    if (a.umin >= b.umax) return Branch::Never;
  }
  return Branch::Maybe;
}

template <class U>
Branch slt(const Val<U>& a, const Val<U>& b, bool or_equal) {
  if (or_equal) {
    if (a.smax <= b.smin) return Branch::Always;
    if (a.smin > b.smax) return Branch::Never;
  } else {
    if (a.smax < b.smin) return Branch::Always;
    if (a.smin >= b.smax) return Branch::Never;
  }
  return Branch::Maybe;
}

template <class U>
Branch branch_w(JmpOp op, const Val<U>& a, const Val<U>& b) {
  switch (op) {
    case JmpOp::Eq:
    case JmpOp::Ne: {
      Branch eq = Branch::Maybe;
      if (a.t.is_const() && b.t.is_const())
        eq = a.t.value == b.t.value ? Branch::Always : Branch::Never;
      else if (!tnums_meet(a.t, b.t) || a.umin > b.umax || b.umin > a.umax || a.smin > b.smax ||
               b.smin > a.smax)
        eq = Branch::Never;
      if (op == JmpOp::Eq || eq == Branch::Maybe) return eq;
      return eq == Branch::Always ? Branch::Never : Branch::Always;
    }
    case JmpOp::Lt: return ult(a, b, false);
    case JmpOp::Le: return ult(a, b, true);
    case JmpOp::Gt: return ult(b, a, false);
    case JmpOp::Ge: return ult(b, a, true);
    case JmpOp::Slt: return slt(a, b, false);
    case JmpOp::Sle: return slt(a, b, true);
    case JmpOp::Sgt: return slt(b, a, false);
    case JmpOp::Sge: return slt(b, a, true);
    case JmpOp::Set: {
      Tnum t = a.t.and_(b.t);
      if (t.value != 0) return Branch::Always;
      if (t.max() == 0) return Branch::Never;
      return Branch::Maybe;
    }
  }
  return Branch::Maybe;
}

// The relation that holds on the taken side; `Set` false is NotSet.
enum class Rel : uint8_t { Eq, Ne, Gt, Ge, Lt, Le, Sgt, Sge, Slt, Sle, Set, NotSet };

Rel relation(JmpOp op, bool taken) {
  switch (op) {
    case JmpOp::Eq: return taken ? Rel::Eq : Rel::Ne;
    case JmpOp::Ne: return taken ? Rel::Ne : Rel::Eq;
    case JmpOp::Gt: return taken ? Rel::Gt : Rel::Le;
    case JmpOp::Ge: return taken ? Rel::Ge : Rel::Lt;
    case JmpOp::Lt: return taken ? Rel::Lt : Rel::Ge;
    case JmpOp::Le: return taken ? Rel::Le : Rel::Gt;
    case JmpOp::Sgt: return taken ? Rel::Sgt : Rel::Sle;
    case JmpOp::Sge: return taken ? Rel::Sge : Rel::Slt;
    case JmpOp::Slt: return taken ? Rel::Slt : Rel::Sge;
    case JmpOp::Sle: return taken ? Rel::Sle : Rel::Sgt;
    case JmpOp::Set: return taken ? Rel::Set : Rel::NotSet;
  }
  return Rel::Eq;
}

// x != c removes c from x where it is an end of one of x's ranges (the
// kernel's JNE case of regs_refine_cond_op).
template <class U>
bool refine_ne_const(Val<U>& x, U c) {
  using S = std::make_signed_t<U>;
  if (x.t.is_const()) return x.t.value != c;
  if (x.umin == c && x.umin < x.umax)
    ++x.umin;
  else if (x.umax == c && x.umin < x.umax)
    --x.umax;
  const S sc = static_cast<S>(c);
  if (x.smin == sc && x.smin < x.smax)
    ++x.smin;
  else if (x.smax == sc && x.smin < x.smax)
    --x.smax;
  return true;
}

// a & b != 0 (set) or == 0 (!set). The kernel handles a constant operand:
// a single tested bit becomes known 1 on the taken side, the tested bits
// known 0 on the other. Generalised to tnums: on the !set side a bit known 1
// in one operand is known 0 in the other; on the set side, when only one bit
// may be common, it is known 1 in both.
template <class U>
bool refine_set(Val<U>& a, Val<U>& b, bool set) {
  if (set) {
    if (a.t.value & b.t.value) return true;
    uint64_t possible = a.t.max() & b.t.max();
    if (possible == 0) return false;
    if (std::has_single_bit(possible)) {
      for (Val<U>* x : {&a, &b}) {
        x->t.value |= possible;
        x->t.mask &= ~possible;
      }
    }
    return true;
  }
  if (a.t.value & b.t.value) return false;
  uint64_t a_ones = a.t.value, b_ones = b.t.value;
  a.t.mask &= ~b_ones;
  b.t.mask &= ~a_ones;
  return true;
}

// a < b (or <=), unsigned or signed: a's max drops below b's, b's min rises.
template <class U>
bool refine_lt(Val<U>& a, Val<U>& b, bool or_equal, bool is_signed) {
  if (is_signed) {
    if (or_equal) {
      a.smax = std::min(a.smax, b.smax);
      b.smin = std::max(b.smin, a.smin);
    } else {
      if (b.smax == W<U>::kSMin || a.smin == W<U>::kSMax) return false;
      a.smax = std::min<std::make_signed_t<U>>(a.smax, b.smax - 1);
      b.smin = std::max<std::make_signed_t<U>>(b.smin, a.smin + 1);
    }
    return a.smin <= a.smax && b.smin <= b.smax;
  }
  if (or_equal) {
    a.umax = std::min(a.umax, b.umax);
    b.umin = std::max(b.umin, a.umin);
  } else {
    if (b.umax == 0 || a.umin == W<U>::kUMax) return false;
    a.umax = std::min<U>(a.umax, b.umax - 1);
    b.umin = std::max<U>(b.umin, a.umin + 1);
  }
  return a.umin <= a.umax && b.umin <= b.umax;
}

template <class U>
bool refine_w(Rel rel, Val<U>& a, Val<U>& b) {
  switch (rel) {
    case Rel::Eq: {
      if (!tnums_meet(a.t, b.t)) return false;
      Val<U> m{a.t.intersect(b.t), std::max(a.umin, b.umin), std::min(a.umax, b.umax),
               std::max(a.smin, b.smin), std::min(a.smax, b.smax)};
      if (m.umin > m.umax || m.smin > m.smax) return false;
      a = b = m;
      return true;
    }
    case Rel::Ne:
      if (b.t.is_const() && !refine_ne_const(a, static_cast<U>(b.t.value))) return false;
      if (a.t.is_const() && !refine_ne_const(b, static_cast<U>(a.t.value))) return false;
      return true;
    case Rel::Lt: return refine_lt(a, b, false, false);
    case Rel::Le: return refine_lt(a, b, true, false);
    case Rel::Gt: return refine_lt(b, a, false, false);
    case Rel::Ge: return refine_lt(b, a, true, false);
    case Rel::Slt: return refine_lt(a, b, false, true);
    case Rel::Sle: return refine_lt(a, b, true, true);
    case Rel::Sgt: return refine_lt(b, a, false, true);
    case Rel::Sge: return refine_lt(b, a, true, true);
    case Rel::Set:
    case Rel::NotSet: return refine_set(a, b, rel == Rel::Set);
  }
  return true;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// Sign extension of the low `bits` bits of x.
int64_t sext(uint64_t x, unsigned bits) {
  unsigned sh = 64 - bits;
  return static_cast<int64_t>(x << sh) >> sh;
}

// The low `bytes` of v, zero-extended.
Scalar truncate_to(const Scalar& v, unsigned bytes) {
  if (bytes >= 8) return v;
  if (bytes == 4) return v.zext32();
  unsigned bits = bytes * 8;
  uint64_t keep = (1ull << bits) - 1;
  Scalar r;
  r.tn = v.tn.cast(static_cast<uint8_t>(bytes));
  if ((v.umin >> bits) == (v.umax >> bits)) {
    r.umin = v.umin & keep;
    r.umax = v.umax & keep;
  } else if ((v.u32min >> bits) == (v.u32max >> bits)) {
    r.umin = v.u32min & keep;
    r.umax = v.u32max & keep;
  } else {
    r.umax = keep;
  }
  r.sync();
  return r;
}

}  // namespace

// ---- Scalar ----

Scalar Scalar::constant(uint64_t v) {
  Scalar s;
  s.tn = Tnum::constant(v);
  s.umin = s.umax = v;
  s.smin = s.smax = static_cast<int64_t>(v);
  s.u32min = s.u32max = static_cast<uint32_t>(v);
  s.s32min = s.s32max = static_cast<int32_t>(v);
  return s;
}

Scalar Scalar::urange(uint64_t min, uint64_t max) {
  Scalar s;
  s.umin = min;
  s.umax = max;
  s.sync();
  return s;
}

Scalar Scalar::srange(int64_t min, int64_t max) {
  Scalar s;
  s.smin = min;
  s.smax = max;
  s.sync();
  return s;
}

Scalar Scalar::of_width(uint8_t bytes, bool sign_extend) {
  if (bytes >= 8) return unknown();
  unsigned bits = bytes * 8u;
  if (sign_extend) return srange(-(int64_t(1) << (bits - 1)), (int64_t(1) << (bits - 1)) - 1);
  return urange(0, (1ull << bits) - 1);
}

bool Scalar::contains(uint64_t v) const {
  auto sv = static_cast<int64_t>(v);
  auto v32 = static_cast<uint32_t>(v);
  auto s32 = static_cast<int32_t>(v32);
  return tn.contains(v) && umin <= v && v <= umax && smin <= sv && sv <= smax && u32min <= v32 &&
         v32 <= u32max && s32min <= s32 && s32 <= s32max;
}

bool Scalar::includes(const Scalar& o) const {
  // regsafe's range_within + tnum_in. An impossible `o` has no value to
  // miss.
  if (!ranges_ok(o)) return true;
  return umin <= o.umin && o.umax <= umax && smin <= o.smin && o.smax <= smax && u32min <= o.u32min &&
         o.u32max <= u32max && s32min <= o.s32min && o.s32max <= s32max && tn.includes(o.tn);
}

bool Scalar::empty() const {
  Scalar c = *this;
  c.sync();
  return !ranges_ok(c);
}

Scalar Scalar::join(const Scalar& o) const {
  if (empty()) return o;
  if (o.empty()) return *this;
  Scalar r;
  r.tn = tn.union_(o.tn);
  r.umin = std::min(umin, o.umin);
  r.umax = std::max(umax, o.umax);
  r.smin = std::min(smin, o.smin);
  r.smax = std::max(smax, o.smax);
  r.u32min = std::min(u32min, o.u32min);
  r.u32max = std::max(u32max, o.u32max);
  r.s32min = std::min(s32min, o.s32min);
  r.s32max = std::max(s32max, o.s32max);
  r.sync();
  return r;
}

namespace {

template <typename T>
void add_around(std::vector<T>& v, T c) {
  v.push_back(c);
  if (c != std::numeric_limits<T>::min()) v.push_back(c - 1);
  if (c != std::numeric_limits<T>::max()) v.push_back(c + 1);
}

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The bound `now` reached from `was`: unchanged if it did not grow, else
// the first threshold at or past it, else the type's limit.
template <typename T>
T widen_up(T was, T now, const std::vector<T>* t) {
  if (now <= was) return was;
  if (t) {
    auto it = std::lower_bound(t->begin(), t->end(), now);
    if (it != t->end()) return *it;
  }
  return std::numeric_limits<T>::max();
}

template <typename T>
T widen_down(T was, T now, const std::vector<T>* t) {
  if (now >= was) return was;
  if (t) {
    auto it = std::upper_bound(t->begin(), t->end(), now);
    if (it != t->begin()) return *std::prev(it);
  }
  return std::numeric_limits<T>::min();
}

}  // namespace

void Thresholds::add(int64_t c, bool is64) {
  if (is64) {
    add_around(u, static_cast<uint64_t>(c));
    add_around(s, c);
  }
  add_around(u32, static_cast<uint32_t>(c));
  add_around(s32, static_cast<int32_t>(c));
}

void Thresholds::finish() {
  sort_unique(u);
  sort_unique(s);
  sort_unique(u32);
  sort_unique(s32);
}

Scalar Scalar::widen(const Scalar& next, const Thresholds* t) const {
  if (empty()) return next;
  if (next.empty()) return *this;
  Scalar r;
  r.tn = tn.union_(next.tn);
  r.umin = widen_down(umin, next.umin, t ? &t->u : nullptr);
  r.umax = widen_up(umax, next.umax, t ? &t->u : nullptr);
  r.smin = widen_down(smin, next.smin, t ? &t->s : nullptr);
  r.smax = widen_up(smax, next.smax, t ? &t->s : nullptr);
  r.u32min = widen_down(u32min, next.u32min, t ? &t->u32 : nullptr);
  r.u32max = widen_up(u32max, next.u32max, t ? &t->u32 : nullptr);
  r.s32min = widen_down(s32min, next.s32min, t ? &t->s32 : nullptr);
  r.s32max = widen_up(s32max, next.s32max, t ? &t->s32 : nullptr);
  r.sync();
  return r;
}

void Scalar::sync() {
  // Each round only narrows; the cap keeps a pathological ping-pong between
  // tnum and ranges finite (every intermediate state is sound).
  for (int round = 0; round < 12; ++round) {
    Scalar before = *this;
    if (!sync_once(*this)) {
      make_empty(*this);
      return;
    }
    if (*this == before) return;
  }
}

Scalar Scalar::zext32() const {
  Scalar r;
  r.tn = tn.subreg();
  r.u32min = u32min;
  r.u32max = u32max;
  r.s32min = s32min;
  r.s32max = s32max;
  r.umin = u32min;
  r.umax = u32max;
  r.smin = u32min;
  r.smax = u32max;
  r.sync();
  return r;
}

std::string Scalar::str() const {
  if (empty()) return "scalar(empty)";
  if (is_const()) return std::to_string(static_cast<int64_t>(tn.value));
  // Print a bound only when the bounds printed before it do not imply it,
  // and the tnum whenever anything of it is known (print_scalar_ranges and
  // the var_off part of print_reg_state).
  Scalar implied;
  std::string out;
  auto field = [&](const char* name, auto mine, auto& theirs, const std::string& text) {
    if (mine == theirs) return;
    if (!out.empty()) out += ',';
    out += name;
    out += '=';
    out += text;
    theirs = mine;
    implied.sync();
  };
  field("umin", umin, implied.umin, std::to_string(umin));
  field("umax", umax, implied.umax, std::to_string(umax));
  field("smin", smin, implied.smin, std::to_string(smin));
  field("smax", smax, implied.smax, std::to_string(smax));
  field("umin32", u32min, implied.u32min, std::to_string(u32min));
  field("umax32", u32max, implied.u32max, std::to_string(u32max));
  field("smin32", s32min, implied.s32min, std::to_string(s32min));
  field("smax32", s32max, implied.s32max, std::to_string(s32max));
  if (tn.mask != ~0ull) {
    if (!out.empty()) out += ',';
    out += "var_off=(" + hex(tn.value) + "; " + hex(tn.mask) + ")";
  }
  return "scalar(" + out + ")";
}

// ---- Operations ----

Scalar alu(AluOp op, const Scalar& dst, const Scalar& src, bool is64) {
  if (op == AluOp::Mov) return is64 ? src : src.zext32();
  if (op == AluOp::Neg) return alu(AluOp::Sub, Scalar::constant(0), dst, is64);
  if (!is64) return from32(binop<uint32_t>(op, view<uint32_t>(dst), view<uint32_t>(src)));
  Scalar r = from64(binop<uint64_t>(op, view<uint64_t>(dst), view<uint64_t>(src)));
  // The low half of a sum, difference, product or bitwise result depends
  // only on the operands' low halves: the 32-bit bounds are computed from
  // theirs, as adjust_scalar_min_max_vals does next to the 64-bit ones.
  // Shifts, division and modulo mix the halves; their low half comes from
  // the tnum.
  switch (op) {
    case AluOp::Add:
    case AluOp::Sub:
    case AluOp::Mul:
    case AluOp::And:
    case AluOp::Or:
    case AluOp::Xor: {
      Val<uint32_t> l = binop<uint32_t>(op, view<uint32_t>(dst), view<uint32_t>(src));
      r.u32min = l.umin;
      r.u32max = l.umax;
      r.s32min = l.smin;
      r.s32max = l.smax;
      if (tnums_meet(r.tn.subreg(), l.t)) r.tn = r.tn.with_subreg(r.tn.subreg().intersect(l.t));
      break;
    }
    case AluOp::Lsh:
      // By a constant below 32 the low half is the low half shifted (the
      // 32-bit amount mask does not bite); from 32 on it is zero, which the
      // tnum says.
      if (src.is_const() && (src.const_value() & 63) < 32) {
        Val<uint32_t> l = binop<uint32_t>(op, view<uint32_t>(dst), konst<uint32_t>(src.const_value() & 63));
        r.u32min = l.umin;
        r.u32max = l.umax;
        r.s32min = l.smin;
        r.s32max = l.smax;
      }
      // From 32 on, the result is the low half shifted by k - 32, moved to
      // the upper half: the kernel's <<32 case (its signed bounds are the
      // 32-bit ones times 2^32), generalised.
      if (src.is_const() && (src.const_value() & 63) >= 32) {
        Val<uint32_t> l = shift_const<uint32_t>(AluOp::Lsh, view<uint32_t>(dst),
                                                static_cast<unsigned>((src.const_value() & 63) - 32));
        r.umin = std::max(r.umin, uint64_t(l.umin) << 32);
        r.umax = std::min(r.umax, uint64_t(l.umax) << 32);
        r.smin = std::max(r.smin, static_cast<int64_t>(uint64_t(int64_t(l.smin)) << 32));
        r.smax = std::min(r.smax, static_cast<int64_t>(uint64_t(int64_t(l.smax)) << 32));
      }
      break;
    default: break;
  }
  r.sync();
  return r;
}

Scalar movsx(const Scalar& src, uint8_t bits, bool is64) {
  if (bits >= 64) return is64 ? src : src.zext32();
  const int64_t half = int64_t(1) << (bits - 1);
  Scalar r;
  if (src.smin >= -half && src.smax <= half - 1) {
    r = src;  // every value is already its own sign extension
  } else if (src.is_const()) {
    r = Scalar::constant(static_cast<uint64_t>(sext(src.const_value(), bits)));
  } else {
    // coerce_reg_to_size_sx: the tnum's bits above `bits` copy its sign bit
    // (unknown if the sign bit is).
    const uint64_t low = (1ull << bits) - 1;
    Tnum t = src.tn.cast(static_cast<uint8_t>(bits / 8));
    if (t.mask & (1ull << (bits - 1)))
      t.mask |= ~low;
    else if (t.value & (1ull << (bits - 1)))
      t.value |= ~low;
    r.tn = t;
    r.smin = -half;
    r.smax = half - 1;
    // Monotone when every value lies in one window of 2^bits aligned on
    // -2^(bits-1) (signed) ...
    const i128 off = i128(half);
    if (((i128(src.smin) + off) >> bits) == ((i128(src.smax) + off) >> bits)) {
      r.smin = sext(static_cast<uint64_t>(src.smin), bits);
      r.smax = sext(static_cast<uint64_t>(src.smax), bits);
    }
    // ... or when the low bits form a range on one side of the sign bit.
    auto from_low = [&](uint64_t lo, uint64_t hi) {
      if ((lo >> bits) != (hi >> bits)) return;
      lo &= low;
      hi &= low;
      if ((lo < uint64_t(half)) != (hi < uint64_t(half))) return;
      r.smin = std::max(r.smin, sext(lo, bits));
      r.smax = std::min(r.smax, sext(hi, bits));
    };
    from_low(src.umin, src.umax);
    from_low(src.u32min, src.u32max);
    if (bits == 32) {
      r.smin = std::max<int64_t>(r.smin, src.s32min);
      r.smax = std::min<int64_t>(r.smax, src.s32max);
      r.u32min = src.u32min;
      r.u32max = src.u32max;
      r.s32min = src.s32min;
      r.s32max = src.s32max;
    }
    r.sync();
  }
  return is64 ? r : r.zext32();
}

Scalar endian(const Scalar& v, bool to_big_or_swap, uint8_t bits, bool is_bswap) {
  const unsigned bytes = bits / 8u;
  if (!to_big_or_swap && !is_bswap) return truncate_to(v, bytes);  // le on a little-endian host
  if (v.is_const()) {
    uint64_t x = __builtin_bswap64(v.const_value()) >> (64 - bits);
    return Scalar::constant(x);
  }
  // Swapping bytes permutes bits: the tnum is exact, the ranges follow it.
  Scalar r;
  r.tn = {__builtin_bswap64(v.tn.value) >> (64 - bits), __builtin_bswap64(v.tn.mask) >> (64 - bits)};
  r.sync();
  return r;
}

Branch branch(JmpOp op, const Scalar& a, const Scalar& b, bool is32) {
  if (is32) return branch_w<uint32_t>(op, view<uint32_t>(a), view<uint32_t>(b));
  Branch r = branch_w<uint64_t>(op, view<uint64_t>(a), view<uint64_t>(b));
  // Different low halves mean different values.
  if (r == Branch::Maybe && (op == JmpOp::Eq || op == JmpOp::Ne) &&
      branch_w<uint32_t>(JmpOp::Eq, view<uint32_t>(a), view<uint32_t>(b)) == Branch::Never)
    return op == JmpOp::Eq ? Branch::Never : Branch::Always;
  return r;
}

bool refine(JmpOp op, bool taken, Scalar& a, Scalar& b, bool is32) {
  Rel rel = relation(op, taken);
  bool ok;
  if (is32) {
    Val<uint32_t> va = view<uint32_t>(a), vb = view<uint32_t>(b);
    ok = refine_w(rel, va, vb);
    if (ok) {
      write_back(a, va);
      write_back(b, vb);
    }
  } else {
    Val<uint64_t> va = view<uint64_t>(a), vb = view<uint64_t>(b);
    ok = refine_w(rel, va, vb);
    if (ok && rel == Rel::Eq) {
      // Equal registers have equal low halves.
      Val<uint32_t> la = view<uint32_t>(a), lb = view<uint32_t>(b);
      ok = refine_w(rel, la, lb);
      if (ok) {
        write_back(a, la);
        write_back(b, lb);
        va.t = va.t.with_subreg(la.t);
        vb.t = va.t;
      }
    }
    if (ok) {
      write_back(a, va);
      write_back(b, vb);
    }
  }
  if (!ok) {
    make_empty(a);
    make_empty(b);
    return false;
  }
  a.sync();
  b.sync();
  return ranges_ok(a) && ranges_ok(b);
}

}  // namespace ember::verifier
