// ALU instructions: scalars through the numeric domain; pointer arithmetic
// by the kernel's rules (adjust_ptr_min_max_vals, check_alu_op).
#include <string>

#include "verifier/analyzer.hpp"

namespace ember::verifier {

namespace {

constexpr int64_t kMaxVarOff = 1 << 29;  // BPF_MAX_VAR_OFF

std::string rname(int r) { return "r" + std::to_string(r); }

AluOp alu_op(const Inst& in) {
  switch (in.info().opcode & 0xf0) {
    case 0x00: return AluOp::Add;
    case 0x10: return AluOp::Sub;
    case 0x20: return AluOp::Mul;
    case 0x30: return in.off ? AluOp::SDiv : AluOp::Div;
    case 0x40: return AluOp::Or;
    case 0x50: return AluOp::And;
    case 0x60: return AluOp::Lsh;
    case 0x70: return AluOp::Rsh;
    case 0x80: return AluOp::Neg;
    case 0x90: return in.off ? AluOp::SMod : AluOp::Mod;
    case 0xa0: return AluOp::Xor;
    case 0xb0: return AluOp::Mov;
    default: return AluOp::Arsh;  // 0xc0
  }
}

const char* op_word(AluOp op) {
  switch (op) {
    case AluOp::Add: return "+=";
    case AluOp::Sub: return "-=";
    case AluOp::Mul: return "*=";
    case AluOp::Div:
    case AluOp::SDiv: return "/=";
    case AluOp::Mod:
    case AluOp::SMod: return "%=";
    case AluOp::Or: return "|=";
    case AluOp::And: return "&=";
    case AluOp::Xor: return "^=";
    case AluOp::Lsh: return "<<=";
    case AluOp::Rsh: return ">>=";
    case AluOp::Arsh: return "s>>=";
    case AluOp::Neg: return "neg";
    case AluOp::Mov: return "=";
  }
  return "?";
}

bool unbounded(const Scalar& v) { return v.smin <= -kMaxVarOff || v.smax >= kMaxVarOff; }

// A loop value moved by `by` (added, or subtracted when `sub`): its distance
// from the loop head's value moves with it, while the amount is bounded.
void move_delta(Reg& r, const Scalar& by, bool sub) {
  constexpr int64_t kMax = int64_t{1} << 40;
  if (!r.epoch) return;
  if (by.smin <= -kMax || by.smax >= kMax) {
    r.epoch = 0;
    return;
  }
  r.dmin += sub ? -by.smax : by.smin;
  r.dmax += sub ? -by.smin : by.smax;
  if (r.dmin <= -kMax || r.dmax >= kMax) r.epoch = 0;
}

// A copy of a scalar moved by a constant stays linked to the others at a
// known distance (Reg::off), so that a branch on one bounds all (the
// kernel's BPF_ADD_CONST links, sync_linked_regs: `r7 = r4; r7 += 14;
// if r7 > r2` bounds r4 too). 64-bit wrapping arithmetic keeps the relation
// exact for any constant; the distance must fit Reg::off.
bool keep_link(Reg& dst, const Scalar& by, bool sub) {
  if (!dst.id || !by.is_const()) return false;
  int64_t d = static_cast<int64_t>(by.const_value());
  if (sub) d = d == INT64_MIN ? d : -d;
  int64_t off = int64_t{dst.off} + d;
  if (d < INT32_MIN || d > INT32_MAX || off < INT32_MIN || off > INT32_MAX) return false;
  dst.off = static_cast<int32_t>(off);
  return true;
}

}  // namespace

// dst OP= src where one side is a pointer.
static Step pointer_alu(Analyzer& a, State& s, const Inst& in, AluOp op, bool is64, const Reg& src) {
  Reg& dst = s.reg(in.dst);
  int preg = is_pointer(dst.kind) ? in.dst : in.src;
  const Reg& ptr = is_pointer(dst.kind) ? dst : src;
  if (!is64)
    return fail_with(
        VerifyReason::PointerArith,
        "32-bit arithmetic on a pointer (" + rname(preg) + " is " + reg_str(ptr) + ") is not allowed", preg);
  if (is_pointer(dst.kind) && is_pointer(src.kind)) {
    // Two pointers: only their distance, and only within one object kind
    // (the kernel allows it to privileged programs; data_end - data is common).
    auto packet = [](Kind k) { return k == Kind::Packet || k == Kind::PacketEnd || k == Kind::PacketMeta; };
    bool same = dst.kind == src.kind || (packet(dst.kind) && packet(src.kind));
    if (op == AluOp::Sub && same && !dst.maybe_null && !src.maybe_null && dst.kind != Kind::MapPtr) {
      dst = Reg::scalar(Scalar::unknown());
      dst.origin = s.pc + 1;
      return std::nullopt;
    }
    return fail_with(VerifyReason::PointerArith,
                     std::string("pointer ") + op_word(op) + " pointer is not allowed (" + rname(in.dst) +
                         " is " + reg_str(dst) + ", " + rname(in.src) + " is " + reg_str(src) + ")",
                     in.dst);
  }
  if (op != AluOp::Add && op != AluOp::Sub)
    return fail_with(VerifyReason::PointerArith,
                     std::string("'") + op_word(op) + "' on a pointer (" + rname(preg) + " is " +
                         reg_str(ptr) + ") is not allowed: only adding and subtracting numbers",
                     preg);
  if (op == AluOp::Sub && preg == in.src)
    return fail_with(VerifyReason::PointerArith, "subtracting a pointer from a number is not allowed",
                     in.src);
  if (ptr.maybe_null)
    return fail_with(VerifyReason::NullDeref,
                     rname(preg) + " may be NULL (" + reg_str(ptr) + ", from instruction " +
                         std::to_string(ptr.origin ? ptr.origin - 1 : 0) +
                         a.where(ptr.origin ? ptr.origin - 1 : 0) +
                         "): arithmetic on it needs a NULL check first",
                     preg);
  if (ptr.kind == Kind::MapPtr || ptr.kind == Kind::PacketEnd || ptr.kind == Kind::Func)
    return fail_with(VerifyReason::PointerArith,
                     std::string("arithmetic on a ") + kind_name(ptr.kind) + " pointer (" + rname(preg) +
                         ") is not allowed",
                     preg);
  const Scalar& off = (preg == in.dst ? src : dst).val;
  Reg res = ptr;
  if (preg != in.dst) res.epoch = 0;  // number + pointer: a new value
  if (off.is_const()) {
    int64_t c = static_cast<int64_t>(off.const_value());
    int64_t n = op == AluOp::Add ? res.off + c : res.off - c;
    if (c <= -kMaxVarOff || c >= kMaxVarOff || n <= -kMaxVarOff || n >= kMaxVarOff)
      return fail_with(VerifyReason::PointerArith,
                       "pointer offset " + std::to_string(n) + " is out of the range the verifier tracks",
                       preg);
    res.off = static_cast<int32_t>(n);
    move_delta(res, off, op == AluOp::Sub);
  } else {
    if (unbounded(off) && off.smin > -kMaxVarOff) {
      // Bounded below, not above: the pointer may leave its object.
      VerifyReason r = ptr.kind == Kind::MapValue ? VerifyReason::MapValueOutOfBounds
                       : ptr.kind == Kind::Stack  ? VerifyReason::StackOutOfBounds
                       : ptr.kind == Kind::Mem    ? VerifyReason::MemOutOfBounds
                       : ptr.kind == Kind::Ctx    ? VerifyReason::CtxAccess
                                                  : VerifyReason::PacketOutOfBounds;
      return fail_with(
          r,
          std::string("adding ") + off.str() + " to a " + kind_name(ptr.kind) + " pointer (" + rname(preg) +
              ") may take it out of its object: bound the number with a comparison or a mask first",
          preg == in.dst ? in.src : in.dst);
    }
    if (unbounded(off))
      return fail_with(VerifyReason::PointerArith,
                       std::string("adding a number without bounds to a ") + kind_name(ptr.kind) +
                           " pointer (" + rname(preg == in.dst ? in.src : in.dst) + " is " + off.str() +
                           "): bound it with a comparison or a mask first",
                       preg == in.dst ? in.src : in.dst);
    res.val = alu(op, ptr.val, off, true);
    move_delta(res, off, op == AluOp::Sub);
    if (unbounded(res.val))
      return fail_with(VerifyReason::PointerArith,
                       "pointer offset " + res.val.str() + " may grow without bound", preg);
    if (res.kind == Kind::Packet || res.kind == Kind::PacketMeta) res.id = a.new_id(), res.range = 0;
  }
  dst = res;
  return std::nullopt;
}

Step Analyzer::alu(State& s, const Inst& in) {
  const OpInfo& info = in.info();
  bool is64 = (info.opcode & 7) == 7;
  Reg& dst = s.reg(in.dst);
  if (info.form == Form::Endian) {
    if (dst.kind == Kind::NotInit)
      return fail_with(VerifyReason::UninitReg, rname(in.dst) + " is read before it is set", in.dst);
    if (dst.kind != Kind::Scalar)
      return fail_with(VerifyReason::PointerArith,
                       "byte swap of a pointer (" + rname(in.dst) + ") is not allowed", in.dst);
    bool swap = info.opcode == 0xd7;
    dst = Reg::scalar(endian(dst.val, swap || info.opcode == 0xdc, info.width, swap));
    dst.origin = s.pc + 1;
    return std::nullopt;
  }
  AluOp op = alu_op(in);
  Reg src = info.form == Form::AluReg ? s.reg(in.src) : Reg::scalar(Scalar::constant(in.imm64));
  if (info.form == Form::AluReg && src.kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, rname(in.src) + " is read before it is set", in.src);
  if (op == AluOp::Mov) {
    bool movsx = info.form == Form::AluReg && in.off != 0;
    if (src.kind != Kind::Scalar && (movsx || !is64)) {
      if (movsx)
        return fail_with(VerifyReason::PointerArith, "sign extension of a pointer (" + rname(in.src) + ")",
                         in.src);
      dst = Reg::scalar(Scalar::of_width(4));  // the low half of a pointer: an unknown number
    } else if (src.kind != Kind::Scalar) {
      dst = src;
    } else {
      Scalar v = movsx ? verifier::movsx(src.val, static_cast<uint8_t>(in.off), is64)
                       : verifier::alu(AluOp::Mov, Scalar::unknown(), src.val, is64);
      // Copies of one unknown value share an id: a branch on one narrows
      // both (the kernel's find_equal_scalars).
      uint32_t id = 0;
      int32_t link_off = 0;
      if (!movsx && is64 && info.form == Form::AluReg && !v.is_const()) {
        Reg& sr = s.reg(in.src);
        if (!sr.id) sr.id = new_id(), sr.off = 0;
        id = sr.id;
        link_off = sr.off;
      }
      Reg from = src;
      dst = Reg::scalar(v);
      dst.id = id;
      dst.off = link_off;
      // A 32-bit copy of a value that fits in 32 bits is the value.
      if (!movsx && (is64 || from.val.umax <= 0xffffffffull))
        dst.epoch = from.epoch, dst.dslot = from.dslot, dst.dmin = from.dmin, dst.dmax = from.dmax;
    }
    dst.origin = src.kind == Kind::Scalar ? s.pc + 1 : src.origin;
    return std::nullopt;
  }
  if (dst.kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, rname(in.dst) + " is read before it is set", in.dst);
  if (dst.kind != Kind::Scalar || src.kind != Kind::Scalar) return pointer_alu(*this, s, in, op, is64, src);
  // Adding to or subtracting from a loop value keeps its distance from the
  // loop head (32-bit too, when nothing wraps); anything else loses it.
  bool add = op == AluOp::Add, sub = op == AluOp::Sub;
  bool fits32 = add ? dst.val.umax <= 0xffffffffull && src.val.umax <= 0xffffffffull - dst.val.umax
                    : sub && dst.val.umax <= 0xffffffffull && src.val.umax <= dst.val.umin;
  if ((add || sub) && (is64 || fits32))
    move_delta(dst, src.val, sub);
  else
    dst.epoch = 0;
  // A 32-bit add that cannot wrap computes what the 64-bit one would.
  bool linked = (add || sub) && (is64 || fits32) && keep_link(dst, src.val, sub);
  dst.val = verifier::alu(op, dst.val, src.val, is64);
  if (!linked) dst.id = 0, dst.off = 0;
  dst.origin = s.pc + 1;
  return std::nullopt;
}

Step Analyzer::load_imm64(State& s, const Inst& in) {
  Reg& dst = s.reg(in.dst);
  uint32_t next_imm = static_cast<uint32_t>(in.imm64 >> 32);
  switch (in.pseudo()) {
    case Pseudo::None: dst = Reg::scalar(Scalar::constant(in.imm64)); break;
    case Pseudo::MapIdx:
    case Pseudo::MapIdxValue: {
      uint32_t idx = static_cast<uint32_t>(in.imm);
      if (idx >= in_.maps.size())
        return fail_with(VerifyReason::HelperArg, "map index " + std::to_string(idx) +
                                                      " names no map (the program has " +
                                                      std::to_string(in_.maps.size()) + ")");
      if (in.pseudo() == Pseudo::MapIdx) {
        dst = Reg::pointer(Kind::MapPtr);
      } else {
        if (next_imm >= in_.maps[idx].value_size)
          return fail_with(
              VerifyReason::MapValueOutOfBounds,
              "offset " + std::to_string(next_imm) + " is outside the value of " + map_desc(idx));
        dst = Reg::pointer(Kind::MapValue);
        dst.off = static_cast<int32_t>(next_imm);
      }
      dst.map = idx;
      break;
    }
    case Pseudo::Func:
      dst = Reg::pointer(Kind::Func);
      dst.target = in.target;
      break;
    default:
      return fail_with(VerifyReason::Unsupported,
                       "ld_imm64 with source " + std::to_string(in.src) +
                           " (map fds and kernel BTF ids must be resolved to map indices by the loader)");
  }
  dst.origin = s.pc + 1;
  return std::nullopt;
}

}  // namespace ember::verifier
