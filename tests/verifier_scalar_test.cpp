// The verifier's numeric domain (src/verifier/scalar.hpp): randomized
// soundness against a concrete reference of every operation (written here,
// independently of scalar.cpp), and hand-written precision checks of what
// the kernel's verifier proves for the same code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "verifier/scalar.hpp"

namespace ember::verifier {
namespace {

// ---- Concrete reference (RFC 9669) ----

template <class U>
U ref_op(AluOp op, U x, U y) {
  using S = std::make_signed_t<U>;
  constexpr unsigned kMask = sizeof(U) * 8 - 1;
  const S sx = static_cast<S>(x), sy = static_cast<S>(y);
  switch (op) {
    case AluOp::Add: return static_cast<U>(x + y);
    case AluOp::Sub: return static_cast<U>(x - y);
    case AluOp::Mul: return static_cast<U>(x * y);
    case AluOp::Div: return y ? static_cast<U>(x / y) : 0;
    case AluOp::Mod: return y ? static_cast<U>(x % y) : x;
    case AluOp::SDiv:
      if (y == 0) return 0;
      if (sy == -1) return static_cast<U>(U(0) - x);  // INT_MIN / -1 == INT_MIN
      return static_cast<U>(sx / sy);
    case AluOp::SMod:
      if (y == 0) return x;
      if (sy == -1) return 0;
      return static_cast<U>(sx % sy);
    case AluOp::Or: return x | y;
    case AluOp::And: return x & y;
    case AluOp::Xor: return x ^ y;
    case AluOp::Lsh: return static_cast<U>(x << (y & kMask));
    case AluOp::Rsh: return static_cast<U>(x >> (y & kMask));
    case AluOp::Arsh: return static_cast<U>(sx >> (y & kMask));
    case AluOp::Mov: return y;
    case AluOp::Neg: return static_cast<U>(U(0) - x);
  }
  return 0;
}

uint64_t ref_alu(AluOp op, uint64_t d, uint64_t s, bool is64) {
  if (is64) return ref_op<uint64_t>(op, d, s);
  return ref_op<uint32_t>(op, static_cast<uint32_t>(d), static_cast<uint32_t>(s));  // zero-extended
}

uint64_t ref_movsx(uint64_t v, uint8_t bits, bool is64) {
  int64_t x = bits == 8 ? int64_t(int8_t(v)) : bits == 16 ? int64_t(int16_t(v)) : int64_t(int32_t(v));
  return is64 ? uint64_t(x) : uint64_t(uint32_t(x));
}

uint64_t ref_endian(uint64_t v, bool to_big_or_swap, uint8_t bits, bool is_bswap) {
  bool swap = to_big_or_swap || is_bswap;
  switch (bits) {
    case 16: return swap ? __builtin_bswap16(uint16_t(v)) : uint16_t(v);
    case 32: return swap ? __builtin_bswap32(uint32_t(v)) : uint32_t(v);
    default: return swap ? __builtin_bswap64(v) : v;
  }
}

bool ref_jmp(JmpOp op, uint64_t a, uint64_t b, bool is32) {
  if (is32) {
    a = uint32_t(a);
    b = uint32_t(b);
  }
  int64_t sa = is32 ? int64_t(int32_t(a)) : int64_t(a), sb = is32 ? int64_t(int32_t(b)) : int64_t(b);
  switch (op) {
    case JmpOp::Eq: return a == b;
    case JmpOp::Ne: return a != b;
    case JmpOp::Gt: return a > b;
    case JmpOp::Ge: return a >= b;
    case JmpOp::Lt: return a < b;
    case JmpOp::Le: return a <= b;
    case JmpOp::Sgt: return sa > sb;
    case JmpOp::Sge: return sa >= sb;
    case JmpOp::Slt: return sa < sb;
    case JmpOp::Sle: return sa <= sb;
    case JmpOp::Set: return (a & b) != 0;
  }
  return false;
}

constexpr AluOp kAluOps[] = {AluOp::Add, AluOp::Sub,  AluOp::Mul,  AluOp::Div, AluOp::SDiv,
                             AluOp::Mod, AluOp::SMod, AluOp::Or,   AluOp::And, AluOp::Xor,
                             AluOp::Lsh, AluOp::Rsh,  AluOp::Arsh, AluOp::Mov, AluOp::Neg};
constexpr JmpOp kJmpOps[] = {JmpOp::Eq,  JmpOp::Ne,  JmpOp::Gt,  JmpOp::Ge,  JmpOp::Lt, JmpOp::Le,
                             JmpOp::Sgt, JmpOp::Sge, JmpOp::Slt, JmpOp::Sle, JmpOp::Set};
const char* const kAluNames[] = {"add", "sub", "mul", "div", "sdiv", "mod", "smod", "or",
                                 "and", "xor", "lsh", "rsh", "arsh", "mov", "neg"};
const char* const kJmpNames[] = {"eq", "ne", "gt", "ge", "lt", "le", "sgt", "sge", "slt", "sle", "set"};

// ---- Random abstract values with known members ----

struct Abs {
  Scalar s;
  std::vector<uint64_t> members;  // concrete values s must contain
};

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint64_t u() { return rng_(); }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  // Values near the places where bounds logic goes wrong: zero, the sign
  // boundaries of both widths, powers of two, small and large magnitudes.
  uint64_t interesting() {
    switch (below(10)) {
      case 0: return below(17);
      case 1: return uint64_t(0) - below(17);
      case 2: return (1ull << below(64)) + (below(5) - 2);
      case 3: return 0x80000000ull + below(9) - 4;
      case 4: return 0x100000000ull + below(9) - 4;
      case 5: return 0x8000000000000000ull + below(9) - 4;
      case 6: return 0xffffffffull - below(5);
      case 7: return below(1000);
      case 8: return u() >> below(64);
      default: return u();
    }
  }

  uint64_t random_mask() {
    switch (below(6)) {
      case 0: return (1ull << below(64)) - 1;     // low bits
      case 1: return u() & u() & u();             // sparse
      case 2: return ~((1ull << below(64)) - 1);  // high bits
      case 3: return 1ull << below(64);           // one bit
      case 4: return ((1ull << below(64)) - 1) << below(8);
      default: return u();
    }
  }

  // An abstract value built in one of many ways, with members it must hold.
  Abs scalar(int depth = 0) {
    Abs a;
    switch (below(depth < 2 ? 14 : 11)) {
      case 0: {
        uint64_t v = interesting();
        a.s = Scalar::constant(v);
        a.members = {v};
        break;
      }
      case 1: {
        uint64_t x = interesting(), y = interesting();
        if (x > y) std::swap(x, y);
        a.s = Scalar::urange(x, y);
        a.members = {x, y, x + below(y - x + 1)};
        break;
      }
      case 2: {
        auto x = int64_t(interesting()), y = int64_t(interesting());
        if (x > y) std::swap(x, y);
        a.s = Scalar::srange(x, y);
        a.members = {uint64_t(x), uint64_t(y)};
        break;
      }
      case 3: {
        uint64_t mask = random_mask(), v = interesting() & ~mask;
        a.s.tn = {v, mask};
        a.s.sync();
        for (int i = 0; i < 4; ++i) a.members.push_back(v | (u() & mask));
        a.members.push_back(v);
        a.members.push_back(v | mask);
        break;
      }
      case 4: {
        auto x = uint32_t(interesting()), y = uint32_t(interesting());
        if (x > y) std::swap(x, y);
        a.s.u32min = x;
        a.s.u32max = y;
        uint64_t hi = below(2) ? 0 : (u() << 32);
        if (hi == 0) {
          a.s.umax = 0xffffffff;
        }
        a.s.sync();
        a.members = {hi | x, hi | y};
        break;
      }
      case 5: {
        auto x = int32_t(interesting()), y = int32_t(interesting());
        if (x > y) std::swap(x, y);
        a.s.s32min = x;
        a.s.s32max = y;
        a.s.sync();
        a.members = {(u() & ~0xffffffffull) | uint32_t(x), (u() & ~0xffffffffull) | uint32_t(y)};
        break;
      }
      case 6: {
        uint64_t x = interesting(), n = below(300);
        if (x + n < x) x -= n;
        a.s = Scalar::urange(x, x + n);
        a.members = {x, x + n, x + below(n + 1)};
        break;
      }
      case 7: {
        int64_t x = -int64_t(below(1ull << below(63))), y = int64_t(below(1ull << below(63)));
        a.s = Scalar::srange(x, y);
        a.members = {uint64_t(x), uint64_t(y), 0};
        break;
      }
      case 8: {
        a.s = Scalar::unknown();
        for (int i = 0; i < 4; ++i) a.members.push_back(interesting());
        break;
      }
      case 9: {
        const uint8_t widths[] = {1, 2, 4, 8};
        uint8_t bytes = widths[below(4)];
        bool sx = below(2);
        a.s = Scalar::of_width(bytes, sx);
        for (int i = 0; i < 4; ++i) {
          uint64_t v = u();
          if (bytes < 8) {
            unsigned sh = 64 - bytes * 8u;
            v = sx ? uint64_t(int64_t(v << sh) >> sh) : (v << sh) >> sh;
          }
          a.members.push_back(v);
        }
        break;
      }
      case 10: {
        uint64_t x = interesting(), y = interesting();
        a.s = Scalar::constant(x).join(Scalar::constant(y));
        a.members = {x, y};
        break;
      }
      case 11: {  // the result of an operation
        Abs l = scalar(depth + 1), r = scalar(depth + 1);
        AluOp op = kAluOps[below(std::size(kAluOps))];
        bool is64 = below(2);
        a.s = alu(op, l.s, r.s, is64);
        for (uint64_t x : l.members)
          for (uint64_t y : r.members)
            if (a.members.size() < 12) a.members.push_back(ref_alu(op, x, y, is64));
        break;
      }
      case 12: {  // a join
        Abs l = scalar(depth + 1), r = scalar(depth + 1);
        a.s = l.s.join(r.s);
        a.members = l.members;
        a.members.insert(a.members.end(), r.members.begin(), r.members.end());
        break;
      }
      default: {  // one side of a branch against a constant
        Abs l = scalar(depth + 1);
        uint64_t c = below(3) == 0 ? l.members[below(l.members.size())] : interesting();
        Scalar k = Scalar::constant(c);
        JmpOp op = kJmpOps[below(std::size(kJmpOps))];
        bool is32 = below(2), taken = below(2);
        a.s = l.s;
        std::vector<uint64_t> kept;
        for (uint64_t x : l.members)
          if (ref_jmp(op, x, c, is32) == taken) kept.push_back(x);
        if (kept.empty() || !refine(op, taken, a.s, k, is32)) return l;
        a.members = kept;
        break;
      }
    }
    return a;
  }

  // Members of s: its ends, the tnum's, and random values forced into the
  // tnum, as many as can be found in a few tries (at most n).
  std::vector<uint64_t> sample(const Abs& a, size_t n) {
    std::vector<uint64_t> out;
    auto add = [&](uint64_t v) {
      if (out.size() < n && a.s.contains(v) && std::find(out.begin(), out.end(), v) == out.end())
        out.push_back(v);
    };
    for (uint64_t v : a.members) add(v);
    const Scalar& s = a.s;
    for (uint64_t v : {s.umin, s.umax, uint64_t(s.smin), uint64_t(s.smax), s.tn.min(), s.tn.max()}) {
      add(v);
      add((v & s.tn.mask) | s.tn.value);
    }
    for (int i = 0; i < int(4 * n) && out.size() < n; ++i) {
      uint64_t v;
      switch (below(4)) {
        case 0: v = s.umin + below(s.umax - s.umin + 1); break;
        case 1: v = uint64_t(s.smin) + below(uint64_t(s.smax) - uint64_t(s.smin) + 1); break;
        case 2: v = (u() & ~0xffffffffull) | (s.u32min + below(uint64_t(s.u32max) - s.u32min + 1)); break;
        default: v = u(); break;
      }
      add(v);
      add((v & s.tn.mask) | s.tn.value);
    }
    return out;
  }

 private:
  std::mt19937_64 rng_;
};

std::string hexs(uint64_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

// Gathers failures and reports the first few (a broken transfer function
// would otherwise print thousands of lines).
struct Failures {
  int count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ < 8) first += what + "\n";
  }
  ~Failures() { EXPECT_EQ(count, 0) << first; }
};

constexpr uint64_t kSeed = 0x5eed'0bad'cafe'f00dull;

// ---- Randomized soundness ----

TEST(VerifierScalar, ConstructionHoldsItsMembers) {
  Gen g(kSeed);
  Failures f;
  for (int i = 0; i < 3000; ++i) {
    Abs a = g.scalar();
    for (uint64_t v : a.members)
      if (!a.s.contains(v)) f.add(a.s.str() + " lacks " + hexs(v));
    if (a.s.empty()) f.add(a.s.str() + " is empty");
    // sync is idempotent and loses nothing.
    Scalar again = a.s;
    again.sync();
    if (!(again == a.s)) f.add("sync not at a fixed point: " + a.s.str() + " -> " + again.str());
  }
}

void check_alu(bool is64, int iterations) {
  Gen g(kSeed + (is64 ? 1 : 2));
  Failures f;
  for (int i = 0; i < iterations; ++i) {
    for (size_t k = 0; k < std::size(kAluOps); ++k) {
      AluOp op = kAluOps[k];
      Abs a = g.scalar(), b = g.scalar();
      // Shift amounts are mostly in range, as compilers emit them.
      if ((op == AluOp::Lsh || op == AluOp::Rsh || op == AluOp::Arsh) && g.below(2)) {
        const uint64_t edges[] = {0, 1, 31, 32, 33, 63, 64};
        uint64_t c = g.below(2) ? edges[g.below(std::size(edges))] : g.below(is64 ? 64 : 32);
        b = g.below(2) ? Abs{Scalar::constant(c), {c}} : Abs{Scalar::urange(0, c), {0, c, g.below(c + 1)}};
      }
      Scalar r = alu(op, a.s, b.s, is64);
      auto xs = g.sample(a, 8), ys = g.sample(b, 8);
      for (uint64_t x : xs)
        for (uint64_t y : ys) {
          uint64_t want = ref_alu(op, x, y, is64);
          if (!r.contains(want))
            f.add(std::string(is64 ? "" : "w") + kAluNames[k] + " " + a.s.str() + ", " + b.s.str() + " = " +
                  r.str() + " lacks " + hexs(x) + " op " + hexs(y) + " = " + hexs(want));
        }
    }
  }
}

TEST(VerifierScalar, Alu64Sound) { check_alu(true, 400); }
TEST(VerifierScalar, Alu32Sound) { check_alu(false, 400); }

TEST(VerifierScalar, MovsxAndEndianSound) {
  Gen g(kSeed + 3);
  Failures f;
  for (int i = 0; i < 1500; ++i) {
    Abs a = g.scalar();
    auto xs = g.sample(a, 12);
    for (uint8_t bits : {8, 16, 32})
      for (bool is64 : {true, false}) {
        Scalar r = movsx(a.s, bits, is64);
        for (uint64_t x : xs)
          if (!r.contains(ref_movsx(x, bits, is64)))
            f.add("movsx" + std::to_string(bits) + (is64 ? "" : " (32)") + " " + a.s.str() + " = " + r.str() +
                  " lacks movsx of " + hexs(x));
      }
    for (uint8_t bits : {16, 32, 64})
      for (int kind = 0; kind < 3; ++kind) {
        bool big = kind == 1, swap = kind == 2;
        Scalar r = endian(a.s, big || swap, bits, swap);
        for (uint64_t x : xs)
          if (!r.contains(ref_endian(x, big || swap, bits, swap)))
            f.add("endian" + std::to_string(bits) + "/" + std::to_string(kind) + " " + a.s.str() + " = " +
                  r.str() + " lacks the result for " + hexs(x));
      }
  }
}

void check_branches(bool is32, int iterations) {
  Gen g(kSeed + (is32 ? 4 : 5));
  Failures f;
  for (int i = 0; i < iterations; ++i) {
    for (size_t k = 0; k < std::size(kJmpOps); ++k) {
      JmpOp op = kJmpOps[k];
      Abs a = g.scalar(), b = g.scalar();
      // Comparisons against constants and near-equal values are the
      // interesting ones.
      if (g.below(3) == 0) {
        uint64_t c = g.below(2) ? a.members[g.below(a.members.size())] : g.interesting();
        b = {Scalar::constant(c), {c}};
      }
      auto xs = g.sample(a, 8), ys = g.sample(b, 8);
      std::string what = std::string(is32 ? "w" : "") + kJmpNames[k] + " " + a.s.str() + ", " + b.s.str();
      Branch br = branch(op, a.s, b.s, is32);
      for (bool taken : {true, false}) {
        Scalar ra = a.s, rb = b.s;
        bool ok = refine(op, taken, ra, rb, is32);
        // Refinement only narrows.
        if (ok && (!a.s.includes(ra) || !b.s.includes(rb)))
          f.add(what + (taken ? " taken" : " not taken") + ": refined to " + ra.str() + ", " + rb.str() +
                ", which is not narrower");
        // A side branch() rules out is one refine() finds impossible.
        if (ok && br == (taken ? Branch::Never : Branch::Always))
          f.add(what + (taken ? " taken" : " not taken") + ": branch() rules it out, refine() does not");
        for (uint64_t x : xs)
          for (uint64_t y : ys) {
            bool t = ref_jmp(op, x, y, is32);
            if (taken && ((br == Branch::Always && !t) || (br == Branch::Never && t)))
              f.add(what + ": branch() wrong for " + hexs(x) + ", " + hexs(y));
            if (t != taken) continue;
            if (!ok)
              f.add(what + (taken ? " taken" : " not taken") + ": refine says impossible, but " + hexs(x) +
                    ", " + hexs(y));
            else if (!ra.contains(x) || !rb.contains(y))
              f.add(what + (taken ? " taken" : " not taken") + ": refined to " + ra.str() + ", " + rb.str() +
                    " lacks " + hexs(x) + ", " + hexs(y));
          }
      }
    }
  }
}

TEST(VerifierScalar, Branch64Sound) { check_branches(false, 300); }
TEST(VerifierScalar, Branch32Sound) { check_branches(true, 300); }

TEST(VerifierScalar, JoinWidenIncludesSound) {
  Gen g(kSeed + 6);
  Failures f;
  for (int i = 0; i < 1500; ++i) {
    Abs a = g.scalar(), b = g.scalar();
    Scalar j = a.s.join(b.s), w = a.s.widen(b.s);
    if (!j.includes(a.s) || !j.includes(b.s)) f.add("join " + j.str() + " does not include its operands");
    if (!w.includes(a.s)) f.add("widen " + w.str() + " does not include " + a.s.str());
    for (const Abs* p : {&a, &b})
      for (uint64_t x : g.sample(*p, 8)) {
        if (!j.contains(x))
          f.add("join " + a.s.str() + ", " + b.s.str() + " = " + j.str() + " lacks " + hexs(x));
        if (!w.contains(x))
          f.add("widen " + a.s.str() + ", " + b.s.str() + " = " + w.str() + " lacks " + hexs(x));
      }
    // includes() is a promise about every value.
    if (a.s.includes(b.s))
      for (uint64_t y : g.sample(b, 8))
        if (!a.s.contains(y)) f.add(a.s.str() + " includes " + b.s.str() + " but lacks " + hexs(y));
  }
}

// ---- Precision (what the kernel proves) ----

Scalar alu64(AluOp op, const Scalar& a, const Scalar& b) { return alu(op, a, b, true); }
Scalar alu32(AluOp op, const Scalar& a, const Scalar& b) { return alu(op, a, b, false); }
Scalar k(uint64_t v) { return Scalar::constant(v); }

TEST(VerifierScalar, AndWithMaskBoundsTheValue) {
  Scalar r = alu64(AluOp::And, Scalar::unknown(), k(0xff));
  EXPECT_EQ(r.umin, 0u);
  EXPECT_EQ(r.umax, 255u);
  EXPECT_EQ(r.smin, 0);
  EXPECT_EQ(r.smax, 255);
  EXPECT_EQ(r.u32max, 255u);
  EXPECT_EQ(r.tn, (Tnum{0, 0xff}));
  EXPECT_EQ(r.str(), "scalar(umax=255,var_off=(0x0; 0xff))");
}

TEST(VerifierScalar, AddSubMulOfRanges) {
  Scalar a = Scalar::urange(1, 10), b = Scalar::urange(100, 200);
  Scalar s = alu64(AluOp::Add, a, b);
  EXPECT_EQ(s.umin, 101u);
  EXPECT_EQ(s.umax, 210u);
  EXPECT_EQ(s.smin, 101);
  EXPECT_EQ(s.u32max, 210u);
  Scalar d = alu64(AluOp::Sub, b, a);
  EXPECT_EQ(d.umin, 90u);
  EXPECT_EQ(d.umax, 199u);
  // a - b may be negative: the unsigned range wraps, the signed one does not.
  Scalar n = alu64(AluOp::Sub, a, b);
  EXPECT_EQ(n.smin, -199);
  EXPECT_EQ(n.smax, -90);
  EXPECT_EQ(n.umin, uint64_t(-199));
  EXPECT_EQ(n.umax, uint64_t(-90));
  Scalar m = alu64(AluOp::Mul, a, b);
  EXPECT_EQ(m.umin, 100u);
  EXPECT_EQ(m.umax, 2000u);
  Scalar sm = alu64(AluOp::Mul, Scalar::srange(-3, 4), Scalar::srange(-5, 2));
  EXPECT_EQ(sm.smin, -20);
  EXPECT_EQ(sm.smax, 15);
  // Overflow on one end only: nothing is known of the unsigned range.
  Scalar o = alu64(AluOp::Add, Scalar::urange(0, ~0ull - 5), k(10));
  EXPECT_EQ(o.umin, 0u);
  EXPECT_EQ(o.umax, ~0ull);
  // Both ends overflow: the range wraps as a whole.
  Scalar w = alu64(AluOp::Add, Scalar::urange(~0ull - 5, ~0ull - 1), k(10));
  EXPECT_EQ(w.umin, 4u);
  EXPECT_EQ(w.umax, 8u);
}

TEST(VerifierScalar, UnsignedCompareRefines) {
  Scalar r = Scalar::unknown(), ten = k(10);
  Scalar t = r, c = ten;
  ASSERT_TRUE(refine(JmpOp::Lt, true, t, c, false));
  EXPECT_EQ(t.umax, 9u);
  EXPECT_EQ(t.smin, 0);
  EXPECT_EQ(t.tn, (Tnum{0, 0xf}));
  Scalar nt = r;
  c = ten;
  ASSERT_TRUE(refine(JmpOp::Lt, false, nt, c, false));
  EXPECT_EQ(nt.umin, 10u);
  EXPECT_EQ(branch(JmpOp::Lt, t, ten, false), Branch::Always);
  EXPECT_EQ(branch(JmpOp::Lt, nt, ten, false), Branch::Never);
  EXPECT_EQ(branch(JmpOp::Ge, t, ten, false), Branch::Never);
  EXPECT_EQ(branch(JmpOp::Lt, r, ten, false), Branch::Maybe);
  // Both operands narrow: a < b with b <= 20 gives a <= 19, and b >= a + 1.
  Scalar a = Scalar::urange(5, 100), b = Scalar::urange(0, 20);
  ASSERT_TRUE(refine(JmpOp::Lt, true, a, b, false));
  EXPECT_EQ(a.umax, 19u);
  EXPECT_EQ(b.umin, 6u);
  // Signed.
  Scalar s = Scalar::unknown();
  c = k(uint64_t(-4));
  ASSERT_TRUE(refine(JmpOp::Sgt, true, s, c, false));
  EXPECT_EQ(s.smin, -3);
  EXPECT_EQ(s.smax, INT64_MAX);
}

TEST(VerifierScalar, Compare32RefinesSubregister) {
  // if w1 < 10: the low half is bounded, the full register is not.
  Scalar r = Scalar::unknown(), c = k(10);
  ASSERT_TRUE(refine(JmpOp::Lt, true, r, c, true));
  EXPECT_EQ(r.u32max, 9u);
  EXPECT_EQ(r.s32min, 0);
  EXPECT_EQ(r.umax, 0xffffffff00000009ull);  // the largest value with a low half <= 9
  EXPECT_EQ(r.tn.subreg(), (Tnum{0, 0xf}));
  EXPECT_EQ(r.tn.mask >> 32, 0xffffffffull);
  // A zero-extended value (a u32 load): the 64-bit bounds follow.
  Scalar z = Scalar::of_width(4);
  c = k(10);
  ASSERT_TRUE(refine(JmpOp::Lt, true, z, c, true));
  EXPECT_EQ(z.umax, 9u);
  EXPECT_EQ(z.smax, 9);
  // Signed 32-bit compare of a sign-extended value.
  Scalar s = Scalar::of_width(4, true);
  c = k(uint64_t(-5));
  ASSERT_TRUE(refine(JmpOp::Slt, true, s, c, true));
  EXPECT_EQ(s.s32max, -6);
  EXPECT_EQ(s.smax, -6);
  EXPECT_EQ(s.smin, INT32_MIN);
  // Upper half known: 0x1_0000_0000 + [0, 9].
  Scalar h = alu64(AluOp::Or, alu64(AluOp::And, Scalar::unknown(), k(0xffffffff)), k(0x100000000));
  c = k(10);
  ASSERT_TRUE(refine(JmpOp::Lt, true, h, c, true));
  EXPECT_EQ(h.umin, 0x100000000u);
  EXPECT_EQ(h.umax, 0x100000009u);
  EXPECT_EQ(branch(JmpOp::Lt, h, k(10), true), Branch::Always);
  EXPECT_EQ(branch(JmpOp::Lt, h, k(10), false), Branch::Never);
}

TEST(VerifierScalar, ConstantsFoldForEveryOp) {
  const uint64_t vals[] = {
      0,  1,  7,  0xff, 0x80000000, 0xffffffff, 0x100000003, 0x8000000000000000ull, ~0ull, uint64_t(-7),
      63, 64, 31, 33};
  for (size_t i = 0; i < std::size(kAluOps); ++i)
    for (bool is64 : {true, false})
      for (uint64_t x : vals)
        for (uint64_t y : vals) {
          Scalar r = alu(kAluOps[i], k(x), k(y), is64);
          uint64_t want = ref_alu(kAluOps[i], x, y, is64);
          EXPECT_EQ(r, k(want)) << kAluNames[i] << (is64 ? "" : "32") << " " << hexs(x) << ", " << hexs(y);
        }
  EXPECT_EQ(alu64(AluOp::SDiv, k(uint64_t(INT64_MIN)), k(uint64_t(-1))), k(uint64_t(INT64_MIN)));
  EXPECT_EQ(alu64(AluOp::SMod, k(uint64_t(INT64_MIN)), k(uint64_t(-1))), k(0));
  EXPECT_EQ(alu32(AluOp::Mod, k(0x1234500000007ull), k(0)), k(7));  // dst's low half, zero-extended
  EXPECT_EQ(alu64(AluOp::Div, k(5), k(0)), k(0));
  for (uint8_t bits : {8, 16, 32})
    for (uint64_t x : vals)
      for (bool is64 : {true, false}) EXPECT_EQ(movsx(k(x), bits, is64), k(ref_movsx(x, bits, is64)));
  for (uint8_t bits : {16, 32, 64})
    for (uint64_t x : vals) {
      EXPECT_EQ(endian(k(x), false, bits, false), k(ref_endian(x, false, bits, false)));
      EXPECT_EQ(endian(k(x), true, bits, false), k(ref_endian(x, true, bits, false)));
      EXPECT_EQ(endian(k(x), true, bits, true), k(ref_endian(x, true, bits, true)));
    }
}

TEST(VerifierScalar, Shifts) {
  // (r & 1) << 63: 0 or the sign bit.
  Scalar b = alu64(AluOp::And, Scalar::unknown(), k(1));
  Scalar l = alu64(AluOp::Lsh, b, k(63));
  EXPECT_EQ(l.tn, (Tnum{0, 0x8000000000000000ull}));
  EXPECT_EQ(l.umax, 0x8000000000000000ull);
  EXPECT_EQ(l.smin, INT64_MIN);
  EXPECT_EQ(l.smax, 0);
  // Shift amounts are masked: << 64 is << 0.
  EXPECT_EQ(alu64(AluOp::Lsh, k(3), k(64)), k(3));
  EXPECT_EQ(alu32(AluOp::Lsh, k(3), k(33)), k(6));
  // arsh of a negative range stays negative and shrinks.
  Scalar a = alu64(AluOp::Arsh, Scalar::srange(-100, -4), k(2));
  EXPECT_EQ(a.smin, -25);
  EXPECT_EQ(a.smax, -1);
  Scalar a2 = alu64(AluOp::Arsh, Scalar::srange(-100, 50), k(3));
  EXPECT_EQ(a2.smin, -13);
  EXPECT_EQ(a2.smax, 6);
  // rsh of an unknown value bounds it.
  Scalar r = alu64(AluOp::Rsh, Scalar::unknown(), k(60));
  EXPECT_EQ(r.umax, 15u);
  Scalar r32 = alu32(AluOp::Rsh, Scalar::unknown(), k(28));
  EXPECT_EQ(r32.umax, 15u);
  // The compiler's sign extension idiom: << 32 then s>> 32.
  Scalar x = Scalar::of_width(4, true);
  Scalar se = alu64(AluOp::Arsh, alu64(AluOp::Lsh, x, k(32)), k(32));
  EXPECT_EQ(se.smin, INT32_MIN);
  EXPECT_EQ(se.smax, INT32_MAX);
  // A 64-bit shift keeps the low half's signed range when it can.
  Scalar lo = alu64(AluOp::Lsh, Scalar::srange(-4, 3), k(2));
  EXPECT_EQ(lo.smin, -16);
  EXPECT_EQ(lo.smax, 12);
  EXPECT_EQ(lo.s32min, -16);
  EXPECT_EQ(lo.s32max, 12);
  // << 32 of a value whose low half has known signed bounds.
  Scalar sub = Scalar::unknown();
  sub.s32min = -3;
  sub.s32max = 7;
  sub.sync();
  Scalar up = alu64(AluOp::Lsh, sub, k(32));
  EXPECT_EQ(up.smin, -3 * (int64_t(1) << 32));
  EXPECT_EQ(up.smax, 7 * (int64_t(1) << 32));
  // A shift by a bounded unknown amount.
  Scalar v = alu64(AluOp::Lsh, Scalar::urange(1, 3), Scalar::urange(0, 4));
  EXPECT_EQ(v.umin, 1u);
  EXPECT_EQ(v.umax, 48u);
}

TEST(VerifierScalar, DivisionAndModulo) {
  Scalar m = alu64(AluOp::Mod, Scalar::unknown(), k(10));
  EXPECT_EQ(m.umax, 9u);
  Scalar p = alu64(AluOp::Mod, Scalar::unknown(), k(16));
  EXPECT_EQ(p.tn, (Tnum{0, 0xf}));
  Scalar d = alu64(AluOp::Div, Scalar::urange(100, 1000), Scalar::urange(2, 10));
  EXPECT_EQ(d.umin, 10u);
  EXPECT_EQ(d.umax, 500u);
  Scalar d0 = alu64(AluOp::Div, Scalar::urange(100, 1000), Scalar::urange(0, 10));
  EXPECT_EQ(d0.umin, 0u);
  EXPECT_EQ(d0.umax, 1000u);
  Scalar sd = alu64(AluOp::SDiv, Scalar::srange(-100, 50), k(uint64_t(-10)));
  EXPECT_EQ(sd.smin, -5);
  EXPECT_EQ(sd.smax, 10);
  Scalar sm = alu64(AluOp::SMod, Scalar::srange(-100, 50), k(7));
  EXPECT_EQ(sm.smin, -6);
  EXPECT_EQ(sm.smax, 6);
  // Modulo by zero keeps dst.
  Scalar z = alu64(AluOp::Mod, Scalar::urange(3, 9), k(0));
  EXPECT_EQ(z.umin, 3u);
  EXPECT_EQ(z.umax, 9u);
}

TEST(VerifierScalar, EqualityRefines) {
  Scalar r = Scalar::urange(0, 100), c = k(42);
  ASSERT_TRUE(refine(JmpOp::Eq, true, r, c, false));
  EXPECT_TRUE(r.is_const());
  EXPECT_EQ(r, k(42));
  EXPECT_EQ(r.str(), "42");
  // Not equal to the end of a range shrinks it.
  Scalar e = Scalar::urange(0, 10);
  c = k(0);
  ASSERT_TRUE(refine(JmpOp::Ne, true, e, c, false));
  EXPECT_EQ(e.umin, 1u);
  c = k(10);
  ASSERT_TRUE(refine(JmpOp::Eq, false, e, c, false));
  EXPECT_EQ(e.umax, 9u);
  // An impossible branch.
  Scalar five = k(5), six = k(6);
  EXPECT_FALSE(refine(JmpOp::Eq, true, five, six, false));
  Scalar small = Scalar::urange(0, 5);
  c = k(6);
  EXPECT_FALSE(refine(JmpOp::Gt, true, small, c, false));
  EXPECT_EQ(branch(JmpOp::Eq, Scalar::urange(0, 5), k(6), false), Branch::Never);
  EXPECT_EQ(branch(JmpOp::Ne, Scalar::urange(0, 5), k(6), false), Branch::Always);
  // 32-bit equality keeps each register's upper half.
  Scalar h = Scalar::unknown();
  c = k(0x1234);
  ASSERT_TRUE(refine(JmpOp::Eq, true, h, c, true));
  EXPECT_EQ(h.u32min, 0x1234u);
  EXPECT_EQ(h.u32max, 0x1234u);
  EXPECT_EQ(h.tn, (Tnum{0x1234, 0xffffffff00000000ull}));
  EXPECT_FALSE(h.is_const());
  // Two ranges: the intersection.
  Scalar a = Scalar::urange(0, 50), b = Scalar::urange(40, 90);
  ASSERT_TRUE(refine(JmpOp::Eq, true, a, b, false));
  EXPECT_EQ(a.umin, 40u);
  EXPECT_EQ(b.umax, 50u);
}

TEST(VerifierScalar, JsetRefines) {
  Scalar r = Scalar::unknown(), bit = k(4);
  ASSERT_TRUE(refine(JmpOp::Set, true, r, bit, false));
  EXPECT_EQ(r.tn.value, 4u);
  EXPECT_EQ(r.tn.mask, ~4ull);
  Scalar n = Scalar::unknown();
  bit = k(0xf0);
  ASSERT_TRUE(refine(JmpOp::Set, false, n, bit, false));
  EXPECT_EQ(n.tn.mask, ~0xf0ull);
  EXPECT_EQ(n.tn.value, 0u);
  EXPECT_EQ(branch(JmpOp::Set, n, k(0x30), false), Branch::Never);
  EXPECT_EQ(branch(JmpOp::Set, r, k(0x6), false), Branch::Always);
  EXPECT_EQ(branch(JmpOp::Set, Scalar::unknown(), k(0x6), false), Branch::Maybe);
  Scalar z = alu64(AluOp::And, Scalar::unknown(), k(0xf));
  bit = k(0x10);
  EXPECT_FALSE(refine(JmpOp::Set, true, z, bit, false));
  // Two unknowns whose only possible common bit is bit 1: both have it.
  Scalar x = alu64(AluOp::And, Scalar::unknown(), k(0x12)), y = alu64(AluOp::And, Scalar::unknown(), k(0x3));
  ASSERT_TRUE(refine(JmpOp::Set, true, x, y, false));
  EXPECT_EQ(x.tn, (Tnum{0x2, 0x10}));
  EXPECT_EQ(y.tn, (Tnum{0x2, 0x1}));
  // Not set: a bit known in one is clear in the other.
  Scalar p = Scalar::unknown(), q = alu64(AluOp::Or, Scalar::urange(0, 1), k(0x100));
  ASSERT_TRUE(refine(JmpOp::Set, false, p, q, false));
  EXPECT_EQ(p.tn.mask, ~0x100ull);
}

TEST(VerifierScalar, SyncDeducesAcrossWidthsAndSigns) {
  // A signed range of non-negative values is an unsigned one too.
  Scalar s = Scalar::srange(0, 1000);
  EXPECT_EQ(s.umax, 1000u);
  EXPECT_EQ(s.u32max, 1000u);
  EXPECT_EQ(s.s32min, 0);
  // A range inside one 2^32 window gives the low half's range.
  Scalar w = Scalar::urange(0x500000010ull, 0x500000020ull);
  EXPECT_EQ(w.u32min, 0x10u);
  EXPECT_EQ(w.u32max, 0x20u);
  // [-1, 1] as 64 bits: the low half is [-1, 1] as s32.
  Scalar c = Scalar::srange(-1, 1);
  EXPECT_EQ(c.s32min, -1);
  EXPECT_EQ(c.s32max, 1);
  // An s32 range narrows a small s64 range (sign extension).
  Scalar x = Scalar::srange(-100, 100);
  x.s32min = -5;
  x.s32max = 5;
  x.sync();
  EXPECT_EQ(x.smin, -5);
  EXPECT_EQ(x.smax, 5);
  // Contradictions are empty.
  Scalar e = Scalar::urange(10, 20);
  e.tn = Tnum::constant(5);
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(Scalar::unknown().empty());
}

TEST(VerifierScalar, MovsxAndEndianPrecision) {
  Scalar b = Scalar::of_width(1);
  Scalar s = movsx(b, 8, true);
  EXPECT_EQ(s.smin, -128);
  EXPECT_EQ(s.smax, 127);
  Scalar small = Scalar::urange(0, 100);
  EXPECT_EQ(movsx(small, 8, true), small);
  Scalar neg = Scalar::urange(0x80, 0xff);
  Scalar n = movsx(neg, 8, true);
  EXPECT_EQ(n.smin, -128);
  EXPECT_EQ(n.smax, -1);
  Scalar n32 = movsx(neg, 8, false);
  EXPECT_EQ(n32.umin, 0xffffff80u);
  EXPECT_EQ(n32.umax, 0xffffffffu);
  // be16 of a byte: the byte moves up.
  Scalar e = endian(Scalar::of_width(1), true, 16, false);
  EXPECT_EQ(e.tn, (Tnum{0, 0xff00}));
  EXPECT_EQ(e.umax, 0xff00u);
  Scalar le = endian(Scalar::unknown(), false, 16, false);
  EXPECT_EQ(le.umax, 0xffffu);
}

TEST(VerifierScalar, JoinWidenIncludes) {
  Scalar a = Scalar::urange(0, 10), b = Scalar::urange(20, 30);
  Scalar j = a.join(b);
  EXPECT_EQ(j.umin, 0u);
  EXPECT_EQ(j.umax, 30u);
  EXPECT_TRUE(j.includes(a));
  EXPECT_FALSE(a.includes(j));
  EXPECT_TRUE(Scalar::unknown().includes(a));
  Scalar wd = Scalar::urange(0, 10).widen(Scalar::urange(0, 11));
  EXPECT_EQ(wd.umin, 0u);
  EXPECT_EQ(wd.smin, 0);  // unchanged bounds stay
  EXPECT_GE(wd.umax, 11u);
  // A counter stepping by 8: the tnum, which only loses bits, bounds the
  // widened ranges (sync), so each widening gains about one bit: the chain
  // is finite (at most a few per bit) and keeps the alignment.
  Scalar c = alu64(AluOp::And, Scalar::urange(0, 8), k(~7ull));
  int steps = 0;
  for (;;) {
    Scalar next = c.widen(c.join(alu64(AluOp::Add, c, k(8))));
    if (next == c) break;
    c = next;
    ASSERT_LT(++steps, 130) << c.str();
  }
  EXPECT_EQ(c.tn, (Tnum{0, ~7ull}));
  Scalar ws = Scalar::srange(-5, 5).widen(Scalar::srange(-6, 5));
  EXPECT_EQ(ws.smin, INT64_MIN);
  EXPECT_EQ(ws.smax, 5);
}

TEST(VerifierScalar, Printing) {
  EXPECT_EQ(k(42).str(), "42");
  EXPECT_EQ(k(uint64_t(-1)).str(), "-1");
  EXPECT_EQ(Scalar::unknown().str(), "scalar()");
  EXPECT_EQ(Scalar::urange(1, 10).str(), "scalar(umin=1,umax=10,var_off=(0x0; 0xf))");
  EXPECT_EQ(Scalar::srange(-3, 3).str(), "scalar(smin=-3,smax=3)");
}

}  // namespace
}  // namespace ember::verifier
