// Calls and exits: helper arguments checked against the one helper table's
// prototypes (the kernel's check_helper_call / check_func_arg), map and
// helper compatibility (check_map_func_compatibility), references and
// locks, bpf-to-bpf calls with their own frames, callbacks (bpf_loop,
// bpf_for_each_map_elem) verified as repeated calls, and exits.
#include <string>

#include "verifier/analyzer.hpp"

namespace ember::verifier {

namespace {

std::string rname(int r) { return "r" + std::to_string(r); }

enum HelperId : int32_t {
  kLookup = 1,
  kUpdate = 2,
  kDelete = 3,
  kTracePrintk = 6,
  kTailCall = 12,
  kPerfEventOutput = 25,
  kGetStackid = 27,
  kUnderCgroup = 37,
  kPush = 87,
  kPop = 88,
  kPeek = 89,
  kSpinLock = 93,
  kSpinUnlock = 94,
  kRingbufOutput = 130,
  kRingbufReserve = 131,
  kRingbufSubmit = 132,
  kRingbufDiscard = 133,
  kRingbufQuery = 134,
  kForEach = 164,
  kSnprintf = 165,
  kTraceVprintk = 177,
  kLoop = 181,
};

bool is_hash_or_array(MapType t) {
  switch (t) {
    case MapType::Hash:
    case MapType::PercpuHash:
    case MapType::LruHash:
    case MapType::LruPercpuHash:
    case MapType::Array:
    case MapType::PercpuArray: return true;
    default: return false;
  }
}

// check_map_func_compatibility: which helpers a map type works with.
bool map_fits(int32_t helper, MapType t) {
  switch (helper) {
    case kLookup:
    case kUpdate:
    case kDelete:
      return is_hash_or_array(t) || t == MapType::LpmTrie ||
             (helper == kLookup && (t == MapType::ArrayOfMaps || t == MapType::HashOfMaps)) ||
             (helper == kDelete && t == MapType::HashOfMaps);
    case kPush:
    case kPeek: return t == MapType::Queue || t == MapType::Stack || t == MapType::BloomFilter;
    case kPop: return t == MapType::Queue || t == MapType::Stack;
    case kTailCall: return t == MapType::ProgArray;
    case kPerfEventOutput: return t == MapType::PerfEventArray;
    case kGetStackid: return t == MapType::StackTrace;
    case kUnderCgroup: return t == MapType::CgroupArray;
    case kRingbufOutput:
    case kRingbufReserve:
    case kRingbufQuery: return t == MapType::Ringbuf;
    case kForEach: return is_hash_or_array(t);
    default: return true;
  }
}

bool has_callback(const HelperProto& p) {
  for (ArgType a : p.args)
    if (a == ArgType::PtrToFunc) return true;
  return false;
}

bool is_size(ArgType t) { return t == ArgType::ConstSize || t == ArgType::ConstSizeOrZero; }

// bpf_probe_read, _str, _user, _kernel, _user_str, _kernel_str: their third
// argument is the address they read from.
bool is_probe_read_source(int32_t helper_id) {
  switch (helper_id) {
    case 4:
    case 45:
    case 112:
    case 113:
    case 114:
    case 115: return true;
    default: return false;
  }
}

}  // namespace

// One argument of a helper call.
static Step check_arg(Analyzer& a, State& s, const HelperDef& h, int arg, const MapSpec*& map,
                      Reg*& map_reg) {
  ArgType t = h.proto.args[arg];
  int r = arg + 1;
  Reg& v = s.reg(r);
  std::string what = "argument " + std::to_string(r) + " of " + h.name + " (" + rname(r) + ")";
  if (t == ArgType::None) return std::nullopt;
  if (v.kind == Kind::NotInit) return fail_with(VerifyReason::UninitReg, what + " is not set", r);
  auto need = [&](const char* kind) {
    return fail_with(VerifyReason::HelperArg, what + " must be " + kind + ", not " + reg_str(v), r);
  };
  auto memory_ptr = [&]() -> Step {
    if (v.maybe_null && is_pointer(v.kind))
      return fail_with(VerifyReason::NullDeref, what + " may be NULL: check it first", r);
    switch (v.kind) {
      case Kind::Stack:
      case Kind::MapValue:
      case Kind::Packet:
      case Kind::PacketMeta:
      case Kind::Mem: return std::nullopt;
      default: return need("a pointer to memory (stack, map value, packet or helper memory)");
    }
  };
  switch (t) {
    case ArgType::None: return std::nullopt;
    case ArgType::Anything:
      // The address a probe_read helper reads from is used, never shown:
      // libbpf's usdt.bpf.h reads registers with
      // bpf_probe_read_kernel(&val, 8, ctx + reg_off). Not a leak.
      if (arg == 2 && is_probe_read_source(h.id)) return std::nullopt;
      if (is_pointer(v.kind) && !a.rules().may_leak_pointers)
        return fail_with(VerifyReason::PointerLeak, what + " takes a number; passing a pointer would leak it",
                         r);
      return std::nullopt;
    case ArgType::ConstMapPtr:
      if (v.kind != Kind::MapPtr) return need("a map");
      if (v.maybe_null)
        return fail_with(VerifyReason::NullDeref, what + " is an inner map that may be NULL", r);
      map_reg = &v;
      map = v.inner_map ? a.input().maps[v.map].inner.get() : &a.input().maps[v.map];
      if (!map) return need("a map with a known inner map");
      if (!map_fits(h.id, map->type))
        return fail_with(h.id == kTailCall ? VerifyReason::TailCall : VerifyReason::HelperArg,
                         std::string(h.name) + " cannot be used with " + a.map_desc(v.map) + " (a " +
                             std::to_string(static_cast<uint32_t>(map->type)) + "-type map)",
                         r);
      return std::nullopt;
    case ArgType::PtrToMapKey:
    case ArgType::PtrToMapValue:
    case ArgType::PtrToUninitMapValue: {
      if (!map) return fail_with(VerifyReason::HelperArg, what + " needs a map argument before it", r);
      if (Step e = memory_ptr()) return e;
      uint32_t n = t == ArgType::PtrToMapKey ? map->key_size : map->value_size;
      std::string desc = t == ArgType::PtrToMapKey ? " (the key)" : " (the value)";
      return a.helper_memory(s, r, Scalar::constant(n), t == ArgType::PtrToUninitMapValue, false,
                             (what + desc).c_str());
    }
    case ArgType::PtrToMem:
    case ArgType::PtrToUninitMem: {
      bool sized = arg + 1 < 5 && is_size(h.proto.args[arg + 1]);
      bool zero_ok = sized && h.proto.args[arg + 1] == ArgType::ConstSizeOrZero;
      Scalar size = Scalar::constant(8);  // a fixed-size out parameter (bpf_strtol's long *res)
      if (sized) {
        const Reg& sz = s.reg(r + 1);
        if (sz.kind == Kind::NotInit)
          return fail_with(VerifyReason::UninitReg, "the size argument " + rname(r + 1) + " is not set",
                           r + 1);
        if (sz.kind != Kind::Scalar)
          return fail_with(VerifyReason::HelperArg, "the size argument " + rname(r + 1) + " is a pointer",
                           r + 1);
        size = sz.val;
      }
      if (zero_ok && v.is_const_zero()) {
        if (size.umax != 0)
          return fail_with(VerifyReason::HelperArg, what + " is NULL but the size may not be zero", r);
        return std::nullopt;
      }
      if (Step e = memory_ptr()) return e;
      // printf-style argument arrays hold the pointers %s prints.
      bool pointers_ok = (h.id == kTraceVprintk && arg == 2) || (h.id == kSnprintf && arg == 3);
      return a.helper_memory(s, r, size, t == ArgType::PtrToUninitMem, zero_ok, what.c_str(), pointers_ok);
    }
    case ArgType::ConstSize:
    case ArgType::ConstSizeOrZero:
      if (v.kind != Kind::Scalar) return fail_with(VerifyReason::HelperSize, what + " must be a number", r);
      return std::nullopt;  // checked with the memory argument before it
    case ArgType::ConstAllocSizeOrZero:
      if (v.kind != Kind::Scalar || !v.val.is_const())
        return fail_with(VerifyReason::HelperSize, what + " must be a constant (" + reg_str(v) + ")", r);
      return std::nullopt;
    case ArgType::PtrToCtx:
      if (v.kind != Kind::Ctx) return need("the context");
      if (v.off != 0 || !v.val.is_const())
        return fail_with(VerifyReason::HelperArg, what + " must be the context pointer itself, unmoved", r);
      return std::nullopt;
    case ArgType::PtrToConstStr: {
      // A string in frozen read-only data (.rodata), NUL-terminated within it.
      if (v.kind != Kind::MapValue || v.maybe_null || !v.val.is_const())
        return need("a constant string in read-only data");
      const auto& ro = a.input().rodata;
      if (v.map >= ro.size() || ro[v.map].empty() || v.off < 0)
        return fail_with(VerifyReason::HelperArg, what + " must point into read-only data (.rodata)", r);
      const auto& bytes = ro[v.map];
      for (size_t i = static_cast<size_t>(v.off); i < bytes.size(); ++i)
        if (bytes[i] == 0) return std::nullopt;
      return fail_with(VerifyReason::HelperArg, what + " is not NUL-terminated inside its map value", r);
    }
    case ArgType::PtrToFunc:
      if (v.kind != Kind::Func)
        return fail_with(VerifyReason::BadCallback,
                         what + " must be a function (callback), not " + reg_str(v), r);
      return std::nullopt;
    case ArgType::PtrToStackOrNull:
      if (v.kind == Kind::Stack || v.is_const_zero()) return std::nullopt;
      return need("a pointer to the stack or NULL");
    case ArgType::PtrToSpinLock: {
      if (v.kind != Kind::MapValue) return need("a bpf_spin_lock inside a map value");
      if (v.maybe_null) return fail_with(VerifyReason::NullDeref, what + " may be NULL: check it first", r);
      if (!v.val.is_const() || v.off % 4 != 0)
        return fail_with(VerifyReason::LockMisuse, what + " must be a 4-aligned lock at a constant offset",
                         r);
      return a.helper_memory(s, r, Scalar::constant(4), false, false, what.c_str());
    }
    case ArgType::PtrToAllocMem:
      if (v.kind != Kind::Mem || !v.ref)
        return fail_with(VerifyReason::HelperArg,
                         what + " must be a ring buffer record from bpf_ringbuf_reserve", r);
      if (v.maybe_null) return fail_with(VerifyReason::NullDeref, what + " may be NULL: check it first", r);
      if (v.off != 0 || !v.val.is_const() || v.val.const_value() != 0)
        return fail_with(VerifyReason::HelperArg, what + " must be the record's start, as reserved", r);
      return std::nullopt;
  }
  return std::nullopt;
}

static void release_ref(State& s, uint32_t ref) {
  for (size_t i = 0; i < s.refs.size(); ++i)
    if (s.refs[i] == ref) {
      s.refs.erase(s.refs.begin() + static_cast<long>(i));
      s.ref_sites.erase(s.ref_sites.begin() + static_cast<long>(i));
      break;
    }
  // Every copy of the record is gone with it.
  for_each_reg(s, [&](Reg& r) {
    if (r.ref == ref) r = Reg{};
  });
}

// Enters the callback of bpf_loop / bpf_for_each_map_elem once more; the
// path where the helper returns is explored separately.
static Step enter_callback(Analyzer& a, State& s, const HelperDef& h, const MapSpec* map,
                           const Reg* map_reg) {
  if (s.frames.size() >= kMaxCallFrames)
    return fail_with(VerifyReason::CallDepth, "the callback would be call frame 9; at most 8 are allowed");
  Frame f;
  int fno = static_cast<int>(s.frames.size());
  const Frame& caller = s.cur();
  f.regs[kFramePointer] = Reg::pointer(Kind::Stack);
  f.regs[kFramePointer].frame = static_cast<uint8_t>(fno);
  f.callsite = s.pc;
  f.subprog = caller.regs[2].target;
  f.callback = true;
  f.entry = a.new_id();
  if (h.id == kLoop) {
    f.regs[1] = Reg::scalar(Scalar::of_width(4));  // the iteration index
    f.regs[2] = caller.regs[3];                    // callback_ctx
  } else {
    f.regs[1] = *map_reg;
    Reg key = Reg::pointer(Kind::Mem);
    key.size = map->key_size;
    key.rdonly = true;
    f.regs[2] = key;
    Reg value = Reg::pointer(Kind::MapValue);
    value.map = map_reg->map;
    value.inner_map = map_reg->inner_map;
    f.regs[3] = value;
    f.regs[4] = caller.regs[3];
  }
  for (int r = 1; r <= 4; ++r) f.regs[r].origin = s.pc + 1;
  s.frames.push_back(std::move(f));
  s.pc = s.cur().subprog;
  return std::nullopt;
}

Step Analyzer::call_helper(State& s, const Inst& in, bool& done) {
  (void)done;
  const HelperDef* h = helpers_.find(in.imm);
  if (!h)
    return fail_with(VerifyReason::UnknownHelper,
                     "helper " + std::to_string(in.imm) + " does not exist here");
  std::string why;
  if (!helper_allowed(in_.type, h->id, in_.gpl, &why))
    return fail_with(VerifyReason::HelperNotAllowed, std::string(h->name) + ": " + why);
  if (s.lock_map && h->id == kSpinLock)
    return fail_with(VerifyReason::LockMisuse, "bpf_spin_lock while a lock is already held (a deadlock)", 1);
  if (s.lock_map && h->id != kSpinUnlock)
    return fail_with(
        VerifyReason::LockHeld,
        std::string(h->name) + " is called while a bpf_spin_lock is held; only bpf_spin_unlock may be");
  const MapSpec* map = nullptr;
  Reg* map_reg = nullptr;
  for (int arg = 0; arg < 5; ++arg)
    if (Step e = check_arg(*this, s, *h, arg, map, map_reg)) return e;
  // bpf_trace_printk's values (unchecked by the kernel) are printed: no
  // pointers among them.
  if (h->id == kTracePrintk)
    for (int r = 3; r <= 5; ++r)
      if (is_pointer(s.reg(r).kind) && !rules_.may_leak_pointers)
        return fail_with(VerifyReason::PointerLeak, "bpf_trace_printk would print the pointer in " + rname(r),
                         r);
  Reg map_copy = map_reg ? *map_reg : Reg{};
  s.cb_again = false;

  switch (h->id) {
    case kSpinLock:
      if (s.lock_map)
        return fail_with(VerifyReason::LockMisuse, "bpf_spin_lock while another lock is held (a deadlock)",
                         1);
      s.lock_map = s.reg(1).map + 1, s.lock_off = s.reg(1).off,
      s.lock_id = s.reg(1).id ? s.reg(1).id : new_id();
      break;
    case kSpinUnlock:
      if (!s.lock_map)
        return fail_with(VerifyReason::LockMisuse, "bpf_spin_unlock without a bpf_spin_lock", 1);
      if (s.lock_map != s.reg(1).map + 1 || s.lock_off != s.reg(1).off)
        return fail_with(VerifyReason::LockMisuse, "bpf_spin_unlock of a lock other than the one held", 1);
      s.lock_map = 0, s.lock_off = 0, s.lock_id = 0;
      break;
    case kRingbufSubmit:
    case kRingbufDiscard: release_ref(s, s.reg(1).ref); break;
    case kTailCall:
      if (!s.refs.empty())
        return fail_with(VerifyReason::UnreleasedRef,
                         "bpf_tail_call while a ring buffer record (reserved at instruction " +
                             std::to_string(s.ref_sites.back()) + ") is held: it would never be released");
      break;
    default: break;
  }
  if (h->id == kLoop || h->id == kForEach) {
    // One path where the helper returns now; this one runs the callback
    // (again), then comes back to this call.
    State after = s;
    for (int r = 1; r <= 5; ++r) after.reg(r) = Reg{};
    after.reg(0) = Reg::scalar(h->id == kLoop ? Scalar::of_width(4) : Scalar::unknown());
    after.reg(0).origin = s.pc + 1;
    after.pc = next_insn(prog_, s.pc);
    fork(after);
    return enter_callback(*this, s, *h, map, &map_copy);
  }
  uint64_t alloc =
      s.reg(2).kind == Kind::Scalar ? s.reg(2).val.const_value() : 0;  // bpf_ringbuf_reserve's size
  for (int r = 1; r <= 5; ++r) s.reg(r) = Reg{};
  Reg& r0 = s.reg(0);
  switch (h->proto.ret) {
    case RetType::Integer: r0 = Reg::scalar(Scalar::unknown()); break;
    case RetType::Void: r0 = Reg{}; break;
    case RetType::MapValueOrNull:
      if (map && (map->type == MapType::ArrayOfMaps || map->type == MapType::HashOfMaps)) {
        r0 = Reg::pointer(Kind::MapPtr);
        r0.inner_map = true;
      } else {
        r0 = Reg::pointer(Kind::MapValue);
        r0.inner_map = map_copy.inner_map;
      }
      r0.map = map_copy.map;
      r0.maybe_null = true;
      r0.id = new_id();
      break;
    case RetType::MemOrNull:
      r0 = Reg::pointer(Kind::Mem);
      r0.maybe_null = true;
      r0.id = new_id();
      break;
    case RetType::RingbufMemOrNull: {
      r0 = Reg::pointer(Kind::Mem);
      r0.maybe_null = true;
      r0.id = new_id();
      r0.ref = new_id();
      r0.size = static_cast<uint32_t>(alloc);
      s.refs.push_back(r0.ref);
      s.ref_sites.push_back(s.pc);
      break;
    }
  }
  r0.origin = s.pc + 1;
  s.pc = next_insn(prog_, s.pc);
  return std::nullopt;
}

Step Analyzer::call_local(State& s, const Inst& in) {
  if (s.frames.size() >= kMaxCallFrames)
    return fail_with(VerifyReason::CallDepth, "the call to the function at instruction " +
                                                  std::to_string(in.target) +
                                                  " would be call frame 9; at most 8 are allowed");
  if (s.lock_map)
    return fail_with(VerifyReason::LockHeld, "a function call while a bpf_spin_lock is held is not allowed");
  Frame f;
  const Frame& caller = s.cur();
  for (int r = 1; r <= 5; ++r) f.regs[r] = caller.regs[r];
  f.regs[kFramePointer] = Reg::pointer(Kind::Stack);
  f.regs[kFramePointer].frame = static_cast<uint8_t>(s.frames.size());
  f.callsite = s.pc;
  f.subprog = in.target;
  s.frames.push_back(std::move(f));
  s.pc = in.target;
  return std::nullopt;
}

Step Analyzer::exit(State& s, bool& done) {
  if (s.lock_map)
    return fail_with(VerifyReason::LockHeld,
                     "the function returns while holding a bpf_spin_lock (unlock is missing)");
  const Reg& r0 = s.reg(0);
  if (r0.kind == Kind::NotInit) return fail_with(VerifyReason::BadReturn, "r0 is not set at exit", 0);
  size_t fno = s.frames.size() - 1;
  if (fno > 0) {
    Frame& callee = s.cur();
    if (callee.callback) {
      if (r0.kind != Kind::Scalar || r0.val.smin < 0 || r0.val.umax > 1)
        return fail_with(VerifyReason::BadCallback,
                         "a callback must return 0 (continue) or 1 (stop), but r0 is " + reg_str(r0), 0);
      uint32_t site = callee.callsite;
      s.frames.pop_back();
      s.pc = site;  // the helper may call it again
      s.cb_again = true;
      return std::nullopt;
    }
    if (r0.kind == Kind::Stack && r0.frame == fno)
      return fail_with(VerifyReason::PointerLeak,
                       "returning a pointer to the function's own stack, which ends with it", 0);
    Reg ret = r0;
    uint32_t site = callee.callsite;
    s.frames.pop_back();
    for (Reg& r : s.cur().regs)
      if (r.kind == Kind::Stack && r.frame == fno) r = Reg{};
    for (int r = 1; r <= 5; ++r) s.reg(r) = Reg{};
    s.reg(0) = ret;
    s.pc = next_insn(prog_, site);
    return std::nullopt;
  }
  if (!s.refs.empty())
    return fail_with(VerifyReason::UnreleasedRef,
                     "the ring buffer record reserved at instruction " + std::to_string(s.ref_sites.back()) +
                         where(s.ref_sites.back()) + " is neither submitted nor discarded on this path");
  if (is_pointer(r0.kind) && !rules_.may_leak_pointers)
    return fail_with(VerifyReason::PointerLeak, "the program returns a pointer (" + reg_str(r0) + ")", 0);
  if (rules_.ret_checked && (r0.val.smin < rules_.ret_min || r0.val.smax > rules_.ret_max))
    return fail_with(VerifyReason::BadReturn,
                     std::string(prog_type_name(in_.type)) + " programs return a value in [" +
                         std::to_string(rules_.ret_min) + ", " + std::to_string(rules_.ret_max) +
                         "], but r0 is " + r0.val.str(),
                     0);
  done = true;
  return std::nullopt;
}

// For the walk: helper calls whose callbacks make them loop heads.
bool is_callback_call(const Program& p, const HelperTable& helpers, uint32_t pc) {
  const Inst& in = p.insts[pc];
  if (in.op != Op::CALL) return false;
  const HelperDef* h = helpers.find(in.imm);
  return h && has_callback(h->proto);
}

}  // namespace ember::verifier
