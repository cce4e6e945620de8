// Loads, stores and atomics: which memory a pointer may reach (the kernel's
// check_mem_access and its check_stack_*, check_map_access, check_ctx_access
// and check_packet_access), what a load gives, what a store leaves behind.
#include <algorithm>
#include <cstring>
#include <string>

#include "verifier/analyzer.hpp"

namespace ember::verifier {

namespace {

std::string rname(int r) { return "r" + std::to_string(r); }
constexpr uint32_t kRdonlyProg = 0x80;   // BPF_F_RDONLY_PROG
constexpr uint32_t kWronlyProg = 0x100;  // BPF_F_WRONLY_PROG

const char* access_word(Access k) {
  return k == Access::Read ? "read" : k == Access::Write ? "write" : "atomic update";
}

std::string range_text(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
}

}  // namespace

// What a pointer that cannot be dereferenced is, in words.
static Step not_memory(const Analyzer& a, const Reg& p, int regno) {
  switch (p.kind) {
    case Kind::NotInit:
      return fail_with(VerifyReason::UninitReg, rname(regno) + " is used before it is set", regno);
    case Kind::Scalar:
      if (p.is_const_zero()) {
        // NULL as a helper returned it is a missing check; a plain 0 is a number.
        bool from_call = p.origin && a.prog().insts[p.origin - 1].op == Op::CALL;
        return fail_with(from_call ? VerifyReason::NullDeref : VerifyReason::ScalarDeref,
                         rname(regno) + " is 0 (NULL) here" +
                             (from_call ? " (returned by the call at instruction " +
                                              std::to_string(p.origin - 1) + a.where(p.origin - 1) + ")"
                                        : std::string()) +
                             "; it cannot be dereferenced",
                         regno);
      }
      return fail_with(
          VerifyReason::ScalarDeref,
          rname(regno) + " holds a number (" + p.val.str() + "), not a pointer: it cannot be dereferenced",
          regno);
    case Kind::PacketEnd:
      return fail_with(VerifyReason::PacketOutOfBounds,
                       rname(regno) + " is data_end, the end of the packet: it cannot be dereferenced",
                       regno);
    case Kind::MapPtr:
      return fail_with(VerifyReason::ScalarDeref,
                       rname(regno) + " points to the map itself (" + a.map_desc(p.map) +
                           "), not to a value: look the value up with bpf_map_lookup_elem",
                       regno);
    case Kind::Func:
      return fail_with(VerifyReason::ScalarDeref, rname(regno) + " points to a function, not to memory",
                       regno);
    default: break;
  }
  return std::nullopt;
}

static Fail null_fail(const Analyzer& a, const Reg& p, int regno) {
  std::string from = p.origin ? " (the value returned at instruction " + std::to_string(p.origin - 1) +
                                    a.where(p.origin - 1) + ")"
                              : "";
  return fail_with(VerifyReason::NullDeref,
                   rname(regno) + " may be NULL here" + from + ": it is used without a check against NULL",
                   regno);
}

Step Analyzer::region(State& s, int regno, int64_t lo, int64_t hi, Access kind, const char* what) {
  const Reg& p = s.reg(regno);
  if (Step e = not_memory(*this, p, regno)) return e;
  if (p.maybe_null) return null_fail(*this, p, regno);
  // Where the access may start and end, the variable offset included.
  bool var = !p.val.is_const();
  int64_t vmin = var ? p.val.smin : static_cast<int64_t>(p.val.const_value());
  int64_t vmax = var ? p.val.smax : vmin;
  int64_t first = p.off + lo + vmin, end = p.off + hi + vmax;
  std::string at = std::string(what) + " of " + std::to_string(hi - lo) + " bytes at " + rname(regno) +
                   (lo ? (lo > 0 ? "+" : "") + std::to_string(lo) : "") + " (" + reg_str(p) + ")";
  switch (p.kind) {
    case Kind::Stack: {
      if (first < -kStackSize || end > 0)
        return fail_with(VerifyReason::StackOutOfBounds,
                         at + " reaches stack bytes " + range_text(first, end) + "; a frame has [-512, 0)",
                         regno);
      Frame& f = s.frames[p.frame];
      note_depth(s, p.frame, static_cast<int32_t>(-first));
      f.depth = std::max(f.depth, static_cast<int32_t>(-first));
      if (kind != Access::Write) {
        for (int64_t b = first; b < end; ++b)
          if (f.slot[b + kStackSize] == Slot::Invalid)
            return fail_with(VerifyReason::UninitStack,
                             at + " reads fp" + std::to_string(b) + ", which is not initialized on this path",
                             regno);
      }
      if (kind != Access::Read) {
        // A write wipes any spilled register it touches (8-byte slots).
        for (int64_t sl = (first + kStackSize) / 8; sl * 8 < end + kStackSize; ++sl)
          if (f.slot[sl * 8] == Slot::Spill)
            for (int b = 0; b < 8; ++b) f.slot[sl * 8 + b] = Slot::Misc;
        // At a variable offset, bytes never written stay uninitialized: the
        // write may not have reached them (the kernel refuses such writes
        // to unprivileged programs; marking them would hide a leak).
        for (int64_t b = first; b < end; ++b)
          if (!var || f.slot[b + kStackSize] != Slot::Invalid) f.slot[b + kStackSize] = Slot::Misc;
      }
      return std::nullopt;
    }
    case Kind::MapValue: {
      if (p.map >= in_.maps.size())
        return fail_with(VerifyReason::HelperArg, "no map " + std::to_string(p.map), regno);
      const MapSpec& m = p.inner_map && in_.maps[p.map].inner ? *in_.maps[p.map].inner : in_.maps[p.map];
      if (var && p.val.smin < 0)
        return fail_with(VerifyReason::MapValueOutOfBounds,
                         at + ": the offset may be negative (" + p.val.str() +
                             "); check it against 0 or use an "
                             "unsigned bound",
                         regno);
      if (first < 0 || end > m.value_size)
        return fail_with(VerifyReason::MapValueOutOfBounds,
                         at + " reaches bytes " + range_text(first, end) + " of a " +
                             std::to_string(m.value_size) + "-byte value of " + map_desc(p.map),
                         regno);
      if (kind != Access::Read && (m.map_flags & kRdonlyProg))
        return fail_with(
            VerifyReason::ReadOnlyWrite,
            at + ": " + map_desc(p.map) + " is read-only to programs (BPF_F_RDONLY_PROG, like .rodata)",
            regno);
      if (kind != Access::Write && (m.map_flags & kWronlyProg))
        return fail_with(VerifyReason::ReadOnlyWrite,
                         at + ": " + map_desc(p.map) + " is write-only to programs", regno);
      return std::nullopt;
    }
    case Kind::Mem: {
      if (kind != Access::Read && p.rdonly)
        return fail_with(VerifyReason::ReadOnlyWrite, at + ": this memory is read-only", regno);
      if (first < 0 || end > p.size)
        return fail_with(VerifyReason::MemOutOfBounds,
                         at + " reaches bytes " + range_text(first, end) + " of " + std::to_string(p.size) +
                             " bytes the helper returned",
                         regno);
      return std::nullopt;
    }
    case Kind::Packet:
    case Kind::PacketMeta: {
      if (var && p.val.smin < 0)
        return fail_with(VerifyReason::PacketOutOfBounds, at + ": the offset may be negative", regno);
      if (kind != Access::Read && !rules_.packet_write)
        return fail_with(
            VerifyReason::ReadOnlyWrite,
            at + ": " + std::string(prog_type_name(in_.type)) + " programs may not write the packet", regno);
      // The range is proven for pointers of this id, whose variable part is
      // the same: compare the fixed parts.
      int64_t flo = p.off + lo, fhi = p.off + hi;
      if (flo < 0 || fhi > p.range)
        return fail_with(VerifyReason::PacketOutOfBounds,
                         at + " reaches packet bytes " + range_text(flo, fhi) + " but only " +
                             std::to_string(p.range) + " are proven to exist" +
                             (p.range ? "" : ": compare the pointer with data_end first"),
                         regno);
      return std::nullopt;
    }
    case Kind::Ctx:
      return fail_with(VerifyReason::CtxAccess, at + ": context fields are read one at a time", regno);
    default: break;
  }
  return fail_with(VerifyReason::ScalarDeref, at + ": not memory", regno);
}

// A context access (the kernel's check_ctx_access): a constant offset from
// the unmodified context pointer, to a field the program type allows.
static Step ctx_access(Analyzer& a, State& s, int regno, int32_t off, int size, Access kind, Reg* loaded) {
  const Reg& p = s.reg(regno);
  std::string at = std::string(access_word(kind)) + " of " + std::to_string(size) + " bytes at " +
                   rname(regno) + "+" + std::to_string(off) + " (the context)";
  if (!p.val.is_const() || p.val.const_value() != 0)
    return fail_with(VerifyReason::CtxAccess, at + ": the context may not be accessed at a variable offset",
                     regno);
  if (p.off != 0)
    return fail_with(VerifyReason::CtxAccess,
                     at + ": the context pointer was moved by " + std::to_string(p.off) +
                         "; access fields from the original pointer with an offset in the instruction",
                     regno);
  if (kind == Access::Atomic)
    return fail_with(VerifyReason::CtxAccess, at + ": atomic operations on the context are not allowed",
                     regno);
  CtxAccess ca = check_ctx_access(a.input().type, off, size, kind == Access::Write);
  if (!ca.ok) return fail_with(VerifyReason::CtxAccess, at + ": " + ca.why, regno);
  auto& st = a.stats();
  st.max_ctx_offset = std::max<uint32_t>(st.max_ctx_offset, static_cast<uint32_t>(off + size));
  if (loaded) {
    switch (ca.value) {
      case CtxValue::Scalar: *loaded = Reg::scalar(Scalar::of_width(static_cast<uint8_t>(size))); break;
      case CtxValue::PacketData: *loaded = Reg::pointer(Kind::Packet); break;
      case CtxValue::PacketEnd: *loaded = Reg::pointer(Kind::PacketEnd); break;
      case CtxValue::PacketMeta: *loaded = Reg::pointer(Kind::PacketMeta); break;
    }
  }
  return std::nullopt;
}

// A load from the stack: a spilled register comes back whole; otherwise
// the bytes' kind decides.
static Reg stack_load(const State& s, const Reg& p, int32_t off, int size, bool sext, Step& err, int regno) {
  const Frame& f = s.frames[p.frame];
  int64_t o = p.off + off;
  int slot8 = static_cast<int>((o + kStackSize) / 8);
  bool any_spill = false, all_spill = true, zero = true;
  for (int b = 0; b < size; ++b) {
    Slot sl = f.slot[o + kStackSize + b];
    any_spill = any_spill || sl == Slot::Spill;
    all_spill = all_spill && sl == Slot::Spill;
    zero = zero && sl == Slot::Zero;
  }
  if (any_spill) {
    const Reg& sp = f.spill(slot8);
    if (all_spill && o % 8 == 0 && size == 8) return sp;
    if (sp.kind != Kind::Scalar) {
      err = fail_with(VerifyReason::PointerLeak,
                      "reading " + std::to_string(size) + " bytes of a pointer spilled at fp" +
                          std::to_string(slot8 * 8 - kStackSize) + " would turn part of it into a number",
                      regno);
      return {};
    }
    if (all_spill && o % 8 == 0) {  // the low bytes of a spilled number
      Scalar v = size == 4 ? alu(AluOp::Mov, Scalar::unknown(), sp.val, false)
                           : alu(AluOp::And, sp.val, Scalar::constant(size == 2 ? 0xffff : 0xff), true);
      Reg r = Reg::scalar(sext ? movsx(v, static_cast<uint8_t>(size * 8), true) : v);
      if (!sext && (sp.val.umax >> (size * 8)) == 0)  // nothing cut off: still the loop value
        r.epoch = sp.epoch, r.dslot = sp.dslot, r.dmin = sp.dmin, r.dmax = sp.dmax;
      return r;
    }
    return Reg::scalar(Scalar::of_width(static_cast<uint8_t>(size), sext));
  }
  return Reg::scalar(zero ? Scalar::constant(0) : Scalar::of_width(static_cast<uint8_t>(size), sext));
}

// A store to the stack at a constant offset: an aligned store of a register
// spills it (pointers, and numbers of any width, survive the round trip, as
// in the kernel's check_stack_write_fixed_off).
static void stack_store(State& s, const Reg& p, int32_t off, int size, const Reg* value) {
  Frame& f = s.frames[p.frame];
  int64_t o = p.off + off;
  bool zero = value && value->is_const_zero();
  if (value && o % 8 == 0 && (size == 8 || (value->kind == Kind::Scalar && !zero))) {
    int slot8 = static_cast<int>((o + kStackSize) / 8);
    f.spill_mut(slot8) = *value;
    for (int b = 0; b < size; ++b) f.slot[slot8 * 8 + b] = Slot::Spill;
    return;
  }
  // region() already marked the bytes Misc; known zeros stay known.
  if (zero)
    for (int b = 0; b < size; ++b) f.slot[o + kStackSize + b] = Slot::Zero;
}

Step Analyzer::access(State& s, int regno, int32_t off, int size, Access kind, const Reg* value,
                      Reg* loaded) {
  Reg p = s.reg(regno);
  if (Step e = not_memory(*this, p, regno)) return e;
  if (p.maybe_null) return null_fail(*this, p, regno);
  if (value && is_pointer(value->kind) && (p.kind != Kind::Stack || kind == Access::Atomic))
    return fail_with(VerifyReason::PointerLeak,
                     "storing a pointer (" + reg_str(*value) + ") into " + kind_name(p.kind) +
                         " memory would let it leave the program",
                     regno);
  if (p.kind == Kind::Ctx) return ctx_access(*this, s, regno, off, size, kind, loaded);
  // Alignment: the stack always strictly (the kernel's spill tracking relies
  // on it), atomics everywhere; other memory may be unaligned on x86-64.
  if (p.kind == Kind::Stack || kind == Access::Atomic) {
    Tnum at = p.val.tn.add(Tnum::constant(static_cast<uint64_t>(p.off + off)));
    uint64_t low = static_cast<uint64_t>(size) - 1;
    if ((at.value & low) || (at.mask & low))
      return fail_with(VerifyReason::Misaligned,
                       std::string("misaligned ") + kind_name(p.kind) + " " + access_word(kind) + " of " +
                           std::to_string(size) + " bytes at " + rname(regno) + "+" + std::to_string(off) +
                           " (" + reg_str(p) + ")",
                       regno);
  }
  if (p.kind == Kind::Stack && value && is_pointer(value->kind) && !(size == 8 && (p.off + off) % 8 == 0))
    return fail_with(VerifyReason::PointerLeak, "a pointer may only be spilled whole, as 8 aligned bytes",
                     regno);
  if (p.kind == Kind::Stack && !p.val.is_const() && kind == Access::Read) {
    // Variable offset reads: every byte it may read must be initialized.
    if (Step e = region(s, regno, off, off + size, kind, access_word(kind))) return e;
    if (Step e = no_spilled_pointers(s, regno, off, off + size)) return e;
    if (loaded) *loaded = Reg::scalar(Scalar::of_width(static_cast<uint8_t>(size)));
    return std::nullopt;
  }
  Reg prior;  // a fixed-offset stack load must look before region() marks anything
  Step err;
  if (p.kind == Kind::Stack && kind == Access::Read) {
    int64_t o = p.off + off;
    if (o >= -kStackSize && o + size <= 0) prior = stack_load(s, p, off, size, false, err, regno);
    if (err) return err;
  }
  if (Step e = region(s, regno, off, off + size, kind, access_word(kind))) return e;
  if (p.kind == Kind::Stack && kind == Access::Write && p.val.is_const()) stack_store(s, p, off, size, value);
  if (!loaded) return std::nullopt;
  if (p.kind == Kind::Stack) {
    *loaded = prior;
    return std::nullopt;
  }
  *loaded = Reg::scalar(Scalar::of_width(static_cast<uint8_t>(size)));
  // Frozen read-only data (.rodata) gives the bytes it holds.
  if (in_.rodata_frozen && p.kind == Kind::MapValue && p.val.is_const() && p.map < in_.rodata.size() &&
      !in_.rodata[p.map].empty()) {
    const auto& bytes = in_.rodata[p.map];
    int64_t o = p.off + off;
    if (o >= 0 && o + size <= static_cast<int64_t>(bytes.size())) {
      uint64_t v = 0;
      std::memcpy(&v, bytes.data() + o, static_cast<size_t>(size));
      *loaded = Reg::scalar(Scalar::constant(v));
    }
  }
  return std::nullopt;
}

Step Analyzer::load(State& s, const Inst& in) {
  Reg v;
  int size = in.info().width;
  if (Step e = access(s, in.src, in.off, size, Access::Read, nullptr, &v)) return e;
  bool sext = in.info().llvm[0] == 's';
  if (sext && v.kind == Kind::Scalar) v.val = movsx(v.val, static_cast<uint8_t>(size * 8), true);
  if (v.kind == Kind::Scalar) v.id = 0, v.off = 0;
  v.origin = is_pointer(v.kind) && v.origin ? v.origin : s.pc + 1;
  s.reg(in.dst) = v;
  return std::nullopt;
}

Step Analyzer::store(State& s, const Inst& in) {
  int size = in.info().width;
  Reg v;
  if (in.info().form == Form::Stx) {
    v = s.reg(in.src);
    if (v.kind == Kind::NotInit)
      return fail_with(VerifyReason::UninitReg, rname(in.src) + " is stored before it is set", in.src);
    if (size < 8 && v.kind == Kind::Scalar)
      v.val = verifier::alu(AluOp::Mov, Scalar::unknown(), v.val, size == 4 ? false : true);
    if (size < 4 && v.kind == Kind::Scalar)
      v.val = verifier::alu(AluOp::And, v.val, Scalar::constant(size == 2 ? 0xffff : 0xff), true);
  } else {
    uint64_t imm = in.imm64;
    if (size < 8) imm &= size == 4 ? 0xffffffffull : size == 2 ? 0xffffull : 0xffull;
    v = Reg::scalar(Scalar::constant(imm));
  }
  return access(s, in.dst, in.off, size, Access::Write, &v, nullptr);
}

Step Analyzer::atomic(State& s, const Inst& in) {
  int size = in.info().width;
  const Reg& v = s.reg(in.src);
  if (v.kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, rname(in.src) + " is used before it is set", in.src);
  bool cmpxchg = in.op == Op::ATOMIC64_CMPXCHG || in.op == Op::ATOMIC32_CMPXCHG;
  if (cmpxchg && s.reg(0).kind == Kind::NotInit)
    return fail_with(VerifyReason::UninitReg, "r0 (the expected value of cmpxchg) is used before it is set",
                     0);
  if (cmpxchg && is_pointer(s.reg(0).kind))
    return fail_with(VerifyReason::PointerLeak, "cmpxchg compares with a pointer in r0", 0);
  Reg val = v;
  if (Step e = access(s, in.dst, in.off, size, Access::Atomic, &val, nullptr)) return e;
  Reg old = Reg::scalar(Scalar::of_width(static_cast<uint8_t>(size)));
  old.origin = s.pc + 1;
  if (cmpxchg)
    s.reg(0) = old;
  else if (in.imm & 1)
    s.reg(in.src) = old;  // BPF_FETCH
  return std::nullopt;
}

// ld_abs / ld_ind: socket-filter loads from the packet through the skb in
// r6; they may end the program (returning 0) and clobber r1-r5.
Step Analyzer::legacy_packet_load(State& s, const Inst& in) {
  ProgType t = in_.type;
  if (t != ProgType::SocketFilter && t != ProgType::SchedCls && t != ProgType::SchedAct &&
      t != ProgType::CgroupSkb)
    return fail_with(VerifyReason::Unsupported,
                     std::string("ld_abs and ld_ind are only for programs on socket buffers, not ") +
                         std::string(prog_type_name(t)));
  if (s.reg(6).kind != Kind::Ctx)
    return fail_with(VerifyReason::HelperArg, "ld_abs and ld_ind need the context in r6", 6);
  if (in.info().form == Form::LdInd && s.reg(in.src).kind != Kind::Scalar)
    return fail_with(
        s.reg(in.src).kind == Kind::NotInit ? VerifyReason::UninitReg : VerifyReason::PointerArith,
        rname(in.src) + " must be a number here", in.src);
  if (!s.refs.empty())
    return fail_with(VerifyReason::UnreleasedRef, "ld_abs may end the program while a reference is held");
  for (int r = 1; r <= 5; ++r) s.reg(r) = Reg{};
  s.reg(0) = Reg::scalar(Scalar::of_width(in.info().width));
  s.reg(0).origin = s.pc + 1;
  return std::nullopt;
}

Step Analyzer::helper_memory(State& s, int regno, const Scalar& size, bool write, bool zero_ok,
                             const char* what, bool pointers_ok) {
  const Reg& p = s.reg(regno);
  if (size.smin < 0)
    return fail_with(VerifyReason::HelperSize,
                     std::string("the size of ") + what + " may be negative (" + size.str() + ")", regno + 1);
  if (size.umax >= (1u << 29))
    return fail_with(VerifyReason::HelperSize,
                     std::string("the size of ") + what + " has no upper bound (" + size.str() +
                         "): bound it with a comparison",
                     regno + 1);
  if (size.umin == 0 && !zero_ok)
    return fail_with(VerifyReason::HelperSize, std::string("the size of ") + what + " may be zero",
                     regno + 1);
  if (size.umax == 0 && p.is_const_zero()) return std::nullopt;  // NULL with size 0
  if (p.kind == Kind::Ctx)
    return fail_with(VerifyReason::HelperArg, std::string(what) + " may not be the context", regno);
  if (Step e =
          region(s, regno, 0, static_cast<int64_t>(size.umax), write ? Access::Write : Access::Read, what))
    return e;
  return write || pointers_ok ? std::nullopt
                              : no_spilled_pointers(s, regno, 0, static_cast<int64_t>(size.umax));
}

// A helper (or a load at a variable offset) reading stack bytes that hold a
// spilled pointer would copy the address out (into a map, a ring buffer, a
// string).
Step Analyzer::no_spilled_pointers(const State& s, int regno, int64_t lo, int64_t hi) const {
  const Reg& p = s.reg(regno);
  if (p.kind != Kind::Stack) return std::nullopt;
  const Frame& f = s.frames[p.frame];
  int64_t vmin = p.val.is_const() ? static_cast<int64_t>(p.val.const_value()) : p.val.smin;
  int64_t vmax = p.val.is_const() ? vmin : p.val.smax;
  for (int64_t b = p.off + lo + vmin; b < p.off + hi + vmax; ++b) {
    int64_t i = b + kStackSize;
    if (i < 0 || i >= kStackSize || f.slot[i] != Slot::Spill) continue;
    const Reg& sp = f.spill(static_cast<int>(i / 8));
    if (is_pointer(sp.kind) && !rules_.may_leak_pointers)
      return fail_with(VerifyReason::PointerLeak,
                       "the memory at " + rname(regno) + " holds a pointer spilled at fp" +
                           std::to_string((i / 8) * 8 - kStackSize) + " (" + reg_str(sp) +
                           "); reading it out would leak the address",
                       regno);
  }
  return std::nullopt;
}

}  // namespace ember::verifier
