// Jumps: both sides of a conditional explored with what each side learns
// (the kernel's check_cond_jmp_op: is_branch_taken, reg_set_min_max,
// mark_ptr_or_null_regs, find_good_pkt_pointers).
#include <string>

#include "verifier/analyzer.hpp"

namespace ember::verifier {

namespace {

std::string rname(int r) { return "r" + std::to_string(r); }

JmpOp jmp_op(const Inst& in) {
  switch (in.info().opcode & 0xf0) {
    case 0x10: return JmpOp::Eq;
    case 0x20: return JmpOp::Gt;
    case 0x30: return JmpOp::Ge;
    case 0x40: return JmpOp::Set;
    case 0x50: return JmpOp::Ne;
    case 0x60: return JmpOp::Sgt;
    case 0x70: return JmpOp::Sge;
    case 0xa0: return JmpOp::Lt;
    case 0xb0: return JmpOp::Le;
    case 0xc0: return JmpOp::Slt;
    default: return JmpOp::Sle;  // 0xd0
  }
}

// `b OP' a` for `a OP b`.
JmpOp mirror(JmpOp op) {
  switch (op) {
    case JmpOp::Gt: return JmpOp::Lt;
    case JmpOp::Ge: return JmpOp::Le;
    case JmpOp::Lt: return JmpOp::Gt;
    case JmpOp::Le: return JmpOp::Ge;
    case JmpOp::Sgt: return JmpOp::Slt;
    case JmpOp::Sge: return JmpOp::Sle;
    case JmpOp::Slt: return JmpOp::Sgt;
    case JmpOp::Sle: return JmpOp::Sge;
    default: return op;
  }
}

// Copies of a scalar (same id) learn what it learnt, each at its distance
// from it (Reg::off: the kernel's sync_linked_regs).
void share_scalar(State& s, const Reg& r) {
  if (!r.id) return;
  Reg known = r;
  for_each_reg(s, [&](Reg& o) {
    if (o.kind != Kind::Scalar || o.id != known.id) return;
    if (o.off == known.off)
      o.val = known.val;
    else
      o.val = alu(AluOp::Add, known.val, Scalar::constant(static_cast<uint64_t>(int64_t{o.off} - known.off)), true);
  });
}

// After a NULL check: on one side every copy is NULL (a number 0, holding
// no reference), on the other none is.
void mark_null(State& s, uint32_t id, bool is_null) {
  uint32_t ref = 0;
  for_each_reg(s, [&](Reg& r) {
    if (!is_pointer(r.kind) || !r.maybe_null || r.id != id) return;
    if (is_null) {
      ref = r.ref ? r.ref : ref;
      uint32_t origin = r.origin;  // still names the call that returned NULL
      r = Reg::scalar(Scalar::constant(0));
      r.origin = origin;
    } else {
      r.maybe_null = false;
    }
  });
  if (is_null && ref)
    for (size_t i = 0; i < s.refs.size(); ++i)
      if (s.refs[i] == ref) {
        s.refs.erase(s.refs.begin() + static_cast<long>(i));
        s.ref_sites.erase(s.ref_sites.begin() + static_cast<long>(i));
        break;
      }
}

// `p` (packet data or meta) is proven to lie at most `range` bytes before
// its end: every pointer sharing its id may read that far.
void mark_packet_range(State& s, const Reg& p, int32_t range) {
  if (p.off < 0 || range <= 0) return;
  for_each_reg(s, [&](Reg& r) {
    if (r.kind == p.kind && r.id == p.id && r.range < range) r.range = range;
  });
}

bool is_end_for(const Reg& p, const Reg& e) {
  if (p.kind == Kind::Packet) return e.kind == Kind::PacketEnd;
  if (p.kind == Kind::PacketMeta) return e.kind == Kind::Packet && e.off == 0 && e.val.is_const();
  return false;
}

}  // namespace

Step Analyzer::jump(State& s, const Inst& in, bool& done) {
  const OpInfo& info = in.info();
  if (info.form == Form::Ja || info.form == Form::Ja32) {
    s.pc = in.target;
    return std::nullopt;
  }
  bool is32 = info.width == 32;
  JmpOp op = jmp_op(in);
  bool reg_src = info.form == Form::JmpReg;
  const Reg& a = s.reg(in.dst);
  Reg b = reg_src ? s.reg(in.src) : Reg::scalar(Scalar::constant(in.imm64));
  if (a.kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, rname(in.dst) + " is compared before it is set", in.dst);
  if (b.kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, rname(in.src) + " is compared before it is set", in.src);
  uint32_t fall = next_insn(prog_, s.pc), taken_pc = in.target;

  State taken = s;
  bool take = true, stay = true;
  if (a.kind == Kind::Scalar && b.kind == Kind::Scalar) {
    Branch br = branch(op, a.val, b.val, is32);
    take = br != Branch::Never, stay = br != Branch::Always;
    if (take && stay) {
      Reg ta = taken.reg(in.dst), tb = b;
      take = refine(op, true, ta.val, tb.val, is32);
      if (take) {
        taken.reg(in.dst).val = ta.val;
        share_scalar(taken, taken.reg(in.dst));
        if (reg_src) taken.reg(in.src).val = tb.val, share_scalar(taken, taken.reg(in.src));
      }
      Reg fa = s.reg(in.dst), fb = b;
      stay = refine(op, false, fa.val, fb.val, is32);
      if (stay) {
        s.reg(in.dst).val = fa.val;
        share_scalar(s, s.reg(in.dst));
        if (reg_src) s.reg(in.src).val = fb.val, share_scalar(s, s.reg(in.src));
      }
    }
  } else {
    // A pointer against NULL.
    const Reg* ptr = is_pointer(a.kind) ? &a : &b;
    const Reg* other = ptr == &a ? &b : &a;
    int preg = ptr == &a ? in.dst : in.src;
    if (other->is_const_zero() && (op == JmpOp::Eq || op == JmpOp::Ne)) {
      if (is32)
        return fail_with(
            VerifyReason::PointerCompare,
            "a 32-bit comparison of a pointer (" + rname(preg) + ") with NULL checks only half of it", preg);
      if (ptr->maybe_null) {
        uint32_t id = ptr->id;
        mark_null(taken, id, op == JmpOp::Eq);
        mark_null(s, id, op != JmpOp::Eq);
      } else {
        take = op == JmpOp::Ne, stay = op == JmpOp::Eq;  // a valid pointer is never NULL
      }
    } else if (is_pointer(a.kind) && is_pointer(b.kind)) {
      if (a.maybe_null || b.maybe_null)
        return fail_with(VerifyReason::NullDeref,
                         "a pointer that may be NULL (" + rname(a.maybe_null ? in.dst : in.src) +
                             ") is compared before its NULL check",
                         a.maybe_null ? in.dst : in.src);
      bool pa = is_end_for(a, b), pb = is_end_for(b, a);
      auto packet = [](Kind k) { return k == Kind::Packet || k == Kind::PacketEnd || k == Kind::PacketMeta; };
      if (!pa && !pb && a.kind != b.kind && !(packet(a.kind) && packet(b.kind)))
        return fail_with(VerifyReason::PointerCompare,
                         std::string("comparing pointers to different things (") + kind_name(a.kind) +
                             " in " + rname(in.dst) + ", " + kind_name(b.kind) + " in " + rname(in.src) +
                             ") means nothing",
                         in.dst);
      if ((pa || pb) && !is32) {
        // Normalize to `p OP end`, then see which side proves p <= end or p < end.
        const Reg& p = pa ? a : b;
        JmpOp o = pa ? op : mirror(op);
        auto learn = [&](State& st, JmpOp rel) {
          if (rel == JmpOp::Le || rel == JmpOp::Eq) mark_packet_range(st, p, p.off);
          if (rel == JmpOp::Lt) mark_packet_range(st, p, p.off + 1);
        };
        auto negate = [](JmpOp r) {
          switch (r) {
            case JmpOp::Gt: return JmpOp::Le;
            case JmpOp::Ge: return JmpOp::Lt;
            case JmpOp::Lt: return JmpOp::Ge;
            case JmpOp::Le: return JmpOp::Gt;
            case JmpOp::Eq: return JmpOp::Ne;
            case JmpOp::Ne: return JmpOp::Eq;
            default: return JmpOp::Set;  // signed and jset: nothing learnt
          }
        };
        bool usable = o == JmpOp::Gt || o == JmpOp::Ge || o == JmpOp::Lt || o == JmpOp::Le ||
                      o == JmpOp::Eq || o == JmpOp::Ne;
        if (usable) learn(taken, o), learn(s, negate(o));
      }
    } else {
      return fail_with(VerifyReason::PointerCompare,
                       "comparing a pointer (" + rname(preg) + " is " + reg_str(*ptr) +
                           ") with a number other than NULL is not allowed",
                       preg);
    }
  }
  if (take && stay) {
    taken.pc = taken_pc;
    taken.path = std::make_shared<PathStep>(s.pc, taken_pc, s.path);
    s.path = std::make_shared<PathStep>(s.pc, fall, s.path);
    fork(taken);
    s.pc = fall;
  } else if (take) {
    s = std::move(taken);
    s.pc = taken_pc;
  } else if (stay) {
    s.pc = fall;
  } else {
    done = true;  // neither side is possible: this path cannot happen
  }
  return std::nullopt;
}

}  // namespace ember::verifier
