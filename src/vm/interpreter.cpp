// The interpreter: threaded dispatch (computed goto) over the decoded IR.
// Three instantiations: fast (verified code), checked (unverified code:
// every access bounded, instruction budget) and traced (checked + a hook
// before each instruction).
#include <algorithm>
#include <bit>
#include <cstring>
#include <sstream>

#include "ember/asm.hpp"
#include "ember/vm.hpp"
#include "vm/superinstructions.hpp"

namespace ember {

bool MemoryGuard::allows(uint64_t addr, uint64_t size, bool write) const {
  if (addr >= stack_lo_ && addr <= stack_hi_ && size <= stack_hi_ - addr) return true;
  for (const MemRegion& r : regions_) {
    if (addr >= r.start && addr - r.start <= r.size && size <= r.size - (addr - r.start))
      if (!write || r.writable) return true;
  }
  return false;
}

bool MemoryGuard::release(uint64_t addr) {
  auto it = std::find_if(held_.begin(), held_.end(), [&](const Held& h) { return h.addr == addr; });
  if (it == held_.end()) return false;
  held_.erase(it);
  // Emptied, not erased: nested runs restore the region list by its length.
  for (MemRegion& r : regions_)
    if (r.start == addr) r.size = 0;
  return true;
}

void MemoryGuard::drop_held() {
  for (const Held& h : held_) h.drop(h.addr);
  held_.clear();
}

namespace {

std::string hex(uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

Error fault_at(const Program& prog, size_t pc, const std::string& what) {
  return fail("instruction ", pc, " (", disassemble_insn(prog.insts[pc], pc), "): ", what);
}

// ld_imm64 sources that only the object loader can resolve.
bool needs_loader(Pseudo p) { return p != Pseudo::None && p != Pseudo::Func; }

}  // namespace

Interpreter::Interpreter(const Program& prog, std::vector<HelperFn> fns)
    : prog_(&prog), helper_fns_(std::move(fns)) {
  code_.reserve(prog.insts.size());
  for (const Inst& in : prog.insts) {
    ExecInsn x{static_cast<uint16_t>(in.op), in.dst, in.src, in.off, 0, in.imm, in.target};
    // ld_imm64: both halves of the constant, one per slot.
    if (in.op == Op::LDDW)
      x.imm = static_cast<int32_t>(static_cast<uint32_t>(in.second_half ? in.imm64 >> 32 : in.imm64));
    code_.push_back(x);
  }
  fast_code_ = code_;
  fused::fuse(fast_code_);
}

Result<Interpreter> Interpreter::create(const Program& prog, const HelperTable& helpers) {
  std::vector<HelperFn> fns(prog.insts.size(), nullptr);
  for (size_t i = 0; i < prog.insts.size(); ++i) {
    const Inst& in = prog.insts[i];
    if (in.second_half) continue;
    if (in.op == Op::CALL) {
      const HelperDef* def = helpers.find(static_cast<int64_t>(in.imm));
      if (!def) return fault_at(prog, i, "unknown helper function id " + std::to_string(in.imm));
      fns[i] = def->fn;
    } else if (in.op == Op::CALL_KFUNC) {
      return fault_at(prog, i, "kernel function (kfunc) calls are not supported in user space");
    } else if (in.op == Op::LDDW && needs_loader(in.pseudo())) {
      return fault_at(
          prog, i,
          "ld_imm64 with pseudo source " + std::to_string(in.src) +
              " refers to a map: load the program from an object file so the loader can resolve it");
    }
  }
  Interpreter interp(prog, std::move(fns));
  for (const HelperDef* def : helpers.all()) {
    if (interp.helper_by_id_.size() <= static_cast<size_t>(def->id)) interp.helper_by_id_.resize(def->id + 1);
    interp.helper_by_id_[def->id] = def->fn;
  }
  return interp;
}

// Where an exec starts: the program's first instruction with r1 = context,
// or, for a helper's callback or a tail call, an instruction with given
// registers, inside the run of the helper call `parent`.
struct Interpreter::Entry {
  size_t pc = 0;
  uint64_t args[5] = {};
  HelperCall* parent = nullptr;
  int frames_below = 0;  // frames of the parent run beneath this one
};

Result<uint64_t> Interpreter::run(const RunInput& in, const RunOptions& opts) const {
  return run_entry(in, opts, Entry{});
}

Result<uint64_t> Interpreter::run_entry(const RunInput& in, const RunOptions& opts, const Entry& e) const {
  if (opts.trace) return exec<true, true>(in, opts, e);
  if (opts.checked) return exec<true, false>(in, opts, e);
  return exec<false, false>(in, opts, e);
}

Result<uint64_t> Interpreter::call_function(HelperCall& parent, size_t target, const uint64_t args[5]) const {
  if (target >= prog_->insts.size() || prog_->insts[target].second_half)
    return fail("callback at instruction ", target, " is not an instruction of the program");
  Entry e{target, {args[0], args[1], args[2], args[3], args[4]}, &parent, parent.depth + 1};
  return run_entry(*parent.input, *parent.options, e);
}

Result<uint64_t> Interpreter::run_tail_call(HelperCall& parent, uint64_t ctx) const {
  // The target replaces the calling function: it runs at that frame's depth.
  Entry e{0, {ctx, 0, 0, 0, 0}, &parent, parent.depth};
  return run_entry(*parent.input, *parent.options, e);
}

Result<uint64_t> HelperCall::invoke(uint64_t fn, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                    uint64_t r5) {
  if ((fn & kFuncAddrMask) != kFuncAddrTag || (!interp && !runner))
    return fail("callback ", hex(fn), " is not a program function");
  const uint64_t args[5] = {r1, r2, r3, r4, r5};
  if (runner) return runner->call_function(*this, fn & ~kFuncAddrMask, args);
  return interp->call_function(*this, fn & ~kFuncAddrMask, args);
}

namespace {

// A nested exec borrows its parent's memory guard: the parent's stack stays
// accessible (callbacks get pointers into it) and the guard is restored on
// the way out, however the nested exec ends.
class GuardScope {
 public:
  GuardScope(MemoryGuard& g, bool nested) : g_(g), nested_(nested), saved_(g.save()) {
    if (nested) g.grant_stack_as_region();
  }
  ~GuardScope() {
    if (nested_) g_.restore(saved_);
  }

 private:
  MemoryGuard& g_;
  bool nested_;
  MemoryGuard::Saved saved_;
};

}  // namespace

template <class T>
static inline T load(uint64_t addr) {
  T v;
  std::memcpy(&v, reinterpret_cast<const void*>(addr), sizeof(T));
  return v;
}

template <class T>
static inline void store(uint64_t addr, T v) {
  std::memcpy(reinterpret_cast<void*>(addr), &v, sizeof(T));
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"  // fault labels are unused in fast mode
template <bool Checked, bool Traced>
Result<uint64_t> Interpreter::exec(const RunInput& in, const RunOptions& opts, const Entry& entry) const {
  struct Frame {
    const ExecInsn* ret;
    uint64_t saved[4];  // r6..r9
    uint64_t fp;
  };
  alignas(16) uint8_t stack[kMaxCallFrames * kStackSize];
  if constexpr (Checked) std::memset(stack, 0, sizeof stack);  // unverified code may read it
  const uint64_t stack_top = reinterpret_cast<uint64_t>(stack) + sizeof stack;
  Frame frames[kMaxCallFrames];
  int depth = 0;
  const int frames_below = entry.frames_below;
  if (frames_below >= kMaxCallFrames)
    return fail("call depth exceeds ", kMaxCallFrames, " frames (the kernel's limit), counting callbacks");
  uint64_t reg[kNumRegs] = {};
  if (entry.parent) {
    for (int r = 0; r < 5; ++r) reg[r + 1] = entry.args[r];
  } else {
    reg[1] = reinterpret_cast<uint64_t>(in.ctx);
    reg[2] = in.ctx_size;
  }
  reg[10] = stack_top;

  HelperCall own_call;
  HelperCall& call = entry.parent ? *entry.parent : own_call;
  MemoryGuard own_guard;
  MemoryGuard& guard = entry.parent && entry.parent->guard ? *entry.parent->guard : own_guard;
  GuardScope guard_scope(guard, Checked && entry.parent);
  // However a checked run ends, it leaves no reference behind.
  struct DropHeld {
    MemoryGuard* g;
    ~DropHeld() {
      if (g) g->drop_held();
    }
  } drop_held{Checked && !entry.parent ? &guard : nullptr};
  if constexpr (Checked) {
    if (!entry.parent) {
      if (in.ctx && in.ctx_size) guard.grant(in.ctx, in.ctx_size, in.ctx_writable);
      if (opts.helper_env) opts.helper_env->grant_static(guard);
    }
    guard.set_stack(stack_top - kStackSize, stack_top);
  }
  if (!entry.parent) {
    call.guard = Checked ? &guard : nullptr;
    call.env = opts.helper_env;
    call.trace_out = opts.trace_out;
    call.interp = this;
    call.input = &in;
    call.options = &opts;
    call.attach_cookie = opts.attach_cookie;
    call.func_ip = opts.func_ip;
    call.prandom_state = opts.random_seed;  // 0: bpf_get_prandom_u32 seeds it from the clock
  }
  // Helpers see this run's interpreter while it runs (a tail call switches
  // it); callbacks run here, not in the JIT code that may have called it.
  const Interpreter* const caller_interp = call.interp;
  const FunctionRunner* const caller_runner = call.runner;
  call.interp = this;
  call.runner = nullptr;
  struct RestoreInterp {
    HelperCall& c;
    const Interpreter* i;
    const FunctionRunner* r;
    ~RestoreInterp() { c.interp = i, c.runner = r; }
  } restore_interp{call, caller_interp, caller_runner};

  const ExecInsn* const base = Checked ? code_.data() : fast_code_.data();
  const size_t n = code_.size();
  const ExecInsn* ip = base + entry.pc;
  const ExecInsn* callee = nullptr;
  uint64_t budget = opts.insn_budget;
  uint64_t fault_addr = 0, fault_size = 0;
  bool fault_write = false;

  static const void* const labels[] = {
#define EMBER_X(name, ...) &&op_##name,
      EMBER_OPCODES(EMBER_X)
#undef EMBER_X
  // Superinstructions, in the numbering of superinstructions.hpp.
#define EMBER_PAIR(KB, KA) \
  &&op_F_##KA##_##KB##_II, &&op_F_##KA##_##KB##_IR, &&op_F_##KA##_##KB##_RI, &&op_F_##KA##_##KB##_RR,
#define EMBER_ROW(KA, ...) EMBER_FUSED_ALU_B(EMBER_PAIR, KA)
              EMBER_FUSED_ALU_A(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_PAIR
#define EMBER_LOAD(KB, LOAD, T) &&op_F_##LOAD##_##KB,
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_ALU_B(EMBER_LOAD, LOAD, T)
                  EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_LOAD(KB, LOAD, T) &&op_FI_##LOAD##_##KB,
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_ALU_B(EMBER_LOAD, LOAD, T)
                      EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_LOAD(C, LOAD, T) &&op_FJ_##LOAD##_##C,
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_COND(EMBER_LOAD, LOAD, T)
                          EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_ADD_JUMP(C, ...) &&op_FA_##C##_I, &&op_FA_##C##_R,
                              EMBER_FUSED_COND(EMBER_ADD_JUMP)
#undef EMBER_ADD_JUMP
          && op_F_JEQ_CHAIN,
#define EMBER_STORE(SB, TB, SA, TA) &&op_FS_##SA##_##SB,
#define EMBER_ROW(SA, TA, ...) EMBER_FUSED_STORES_B(EMBER_STORE, SA, TA)
      EMBER_FUSED_STORES_A(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_STORE
  };
  static_assert(std::size(labels) == fused::kNumExecOps);

#define DISPATCH()                                                              \
  do {                                                                          \
    if constexpr (Checked) {                                                    \
      if (budget-- == 0) goto out_of_budget;                                    \
    }                                                                           \
    if constexpr (Traced) opts.trace(TraceStep{size_t(ip - base), reg, depth}); \
    goto* labels[ip->op];                                                       \
  } while (0)
#define NEXT()  \
  do {          \
    ++ip;       \
    DISPATCH(); \
  } while (0)
#define DST reg[ip->dst]
#define SRC reg[ip->src]
#define IMM static_cast<uint64_t>(static_cast<int64_t>(ip->imm))
#define U32(x) static_cast<uint32_t>(x)
#define S32(x) static_cast<int32_t>(x)
#define S64(x) static_cast<int64_t>(x)

// Binary ALU operations in both widths and both source kinds.
#define ALU_BOTH(NAME, OP)                             \
  op_##NAME##64_IMM : DST = DST OP IMM;                \
  NEXT();                                              \
  op_##NAME##64_REG : DST = DST OP SRC;                \
  NEXT();                                              \
  op_##NAME##32_IMM : DST = U32(U32(DST) OP U32(IMM)); \
  NEXT();                                              \
  op_##NAME##32_REG : DST = U32(U32(DST) OP U32(SRC)); \
  NEXT();

#define SHIFT_BOTH(NAME, EXPR64, EXPR32) \
  op_##NAME##64_IMM : {                  \
    uint64_t s = IMM & 63;               \
    DST = EXPR64;                        \
    NEXT();                              \
  }                                      \
  op_##NAME##64_REG : {                  \
    uint64_t s = SRC & 63;               \
    DST = EXPR64;                        \
    NEXT();                              \
  }                                      \
  op_##NAME##32_IMM : {                  \
    uint32_t s = U32(IMM) & 31;          \
    DST = U32(EXPR32);                   \
    NEXT();                              \
  }                                      \
  op_##NAME##32_REG : {                  \
    uint32_t s = U32(SRC) & 31;          \
    DST = U32(EXPR32);                   \
    NEXT();                              \
  }

// Division follows the ISA, not the CPU: x/0 = 0, x%0 = x, and the signed
// INT_MIN/-1 case wraps (kernel: the verifier patches these the same way).
#define DIV_BOTH(NAME, SRCV)                                             \
  op_DIV64_##NAME : {                                                    \
    uint64_t s = SRCV;                                                   \
    DST = s ? DST / s : 0;                                               \
    NEXT();                                                              \
  }                                                                      \
  op_MOD64_##NAME : {                                                    \
    uint64_t s = SRCV;                                                   \
    DST = s ? DST % s : DST;                                             \
    NEXT();                                                              \
  }                                                                      \
  op_SDIV64_##NAME : {                                                   \
    int64_t s = S64(SRCV), d = S64(DST);                                 \
    DST = s == 0 ? 0 : s == -1 ? 0 - DST : static_cast<uint64_t>(d / s); \
    NEXT();                                                              \
  }                                                                      \
  op_SMOD64_##NAME : {                                                   \
    int64_t s = S64(SRCV), d = S64(DST);                                 \
    DST = s == 0 ? DST : s == -1 ? 0 : static_cast<uint64_t>(d % s);     \
    NEXT();                                                              \
  }                                                                      \
  op_DIV32_##NAME : {                                                    \
    uint32_t s = U32(SRCV);                                              \
    DST = s ? U32(DST) / s : 0;                                          \
    NEXT();                                                              \
  }                                                                      \
  op_MOD32_##NAME : {                                                    \
    uint32_t s = U32(SRCV);                                              \
    DST = s ? U32(DST) % s : U32(DST);                                   \
    NEXT();                                                              \
  }                                                                      \
  op_SDIV32_##NAME : {                                                   \
    int32_t s = S32(SRCV), d = S32(DST);                                 \
    DST = s == 0 ? 0 : s == -1 ? U32(0u - U32(DST)) : U32(d / s);        \
    NEXT();                                                              \
  }                                                                      \
  op_SMOD32_##NAME : {                                                   \
    int32_t s = S32(SRCV), d = S32(DST);                                 \
    DST = s == 0 ? U32(DST) : s == -1 ? 0 : U32(d % s);                  \
    NEXT();                                                              \
  }

#define JUMP_IF(COND)         \
  do {                        \
    if (COND)                 \
      ip = base + ip->target; \
    else                      \
      ++ip;                   \
    DISPATCH();               \
  } while (0)

#define JMP_ALL(NAME, CMP64, CMP32)                       \
  op_##NAME##_IMM : JUMP_IF(CMP64(DST, IMM));             \
  op_##NAME##_REG : JUMP_IF(CMP64(DST, SRC));             \
  op_##NAME##32_IMM : JUMP_IF(CMP32(U32(DST), U32(IMM))); \
  op_##NAME##32_REG : JUMP_IF(CMP32(U32(DST), U32(SRC)));

#define UCMP(OP) [](uint64_t a, uint64_t b) { return a OP b; }
#define SCMP64(OP) [](uint64_t a, uint64_t b) { return S64(a) OP S64(b); }
#define SCMP32(OP) [](uint32_t a, uint32_t b) { return S32(a) OP S32(b); }

#define CHECK_ACCESS(ADDR, SIZE, WRITE)                            \
  do {                                                             \
    if constexpr (Checked) {                                       \
      if (!guard.allows(ADDR, SIZE, WRITE)) {                      \
        fault_addr = ADDR, fault_size = SIZE, fault_write = WRITE; \
        goto mem_fault;                                            \
      }                                                            \
    }                                                              \
  } while (0)

#define LDX(NAME, T, EXT)                                      \
  op_##NAME : {                                                \
    uint64_t a = SRC + static_cast<int64_t>(ip->off);          \
    CHECK_ACCESS(a, sizeof(T), false);                         \
    DST = static_cast<uint64_t>(static_cast<EXT>(load<T>(a))); \
    NEXT();                                                    \
  }
#define STORE(NAME, T, VALUE)                         \
  op_##NAME : {                                       \
    uint64_t a = DST + static_cast<int64_t>(ip->off); \
    CHECK_ACCESS(a, sizeof(T), true);                 \
    store<T>(a, static_cast<T>(VALUE));               \
    NEXT();                                           \
  }

// Atomics need natural alignment, as the kernel's verifier demands.
#define ATOMIC_ADDR(T)                                            \
  uint64_t a = DST + static_cast<int64_t>(ip->off);               \
  CHECK_ACCESS(a, sizeof(T), true);                               \
  if constexpr (Checked) {                                        \
    if (a % sizeof(T)) {                                          \
      fault_addr = a, fault_size = sizeof(T), fault_write = true; \
      goto misaligned;                                            \
    }                                                             \
  }                                                               \
  T* p = reinterpret_cast<T*>(a);

#define ATOMIC_RMW(W, NAME, T, BUILTIN)                                             \
  op_ATOMIC##W##_##NAME : {                                                         \
    ATOMIC_ADDR(T);                                                                 \
    BUILTIN(p, static_cast<T>(SRC), __ATOMIC_SEQ_CST);                              \
    NEXT();                                                                         \
  }                                                                                 \
  op_ATOMIC##W##_FETCH_##NAME : {                                                   \
    ATOMIC_ADDR(T);                                                                 \
    SRC = static_cast<uint64_t>(BUILTIN(p, static_cast<T>(SRC), __ATOMIC_SEQ_CST)); \
    NEXT();                                                                         \
  }

  DISPATCH();

  ALU_BOTH(ADD, +)
  ALU_BOTH(SUB, -)
  ALU_BOTH(MUL, *)
  ALU_BOTH(OR, |)
  ALU_BOTH(AND, &)
  ALU_BOTH(XOR, ^)
  SHIFT_BOTH(LSH, DST << s, U32(DST) << s)
  SHIFT_BOTH(RSH, DST >> s, U32(DST) >> s)
  SHIFT_BOTH(ARSH, static_cast<uint64_t>(S64(DST) >> s), static_cast<uint32_t>(S32(DST) >> s))
  DIV_BOTH(IMM, IMM)
  DIV_BOTH(REG, SRC)

op_MOV64_IMM:
  DST = IMM;
  NEXT();
op_MOV64_REG:
  DST = SRC;
  NEXT();
op_MOV32_IMM:
  DST = U32(IMM);
  NEXT();
op_MOV32_REG:
  DST = U32(SRC);
  NEXT();
op_MOVSX64_8:
  DST = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(SRC)));
  NEXT();
op_MOVSX64_16:
  DST = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int16_t>(SRC)));
  NEXT();
op_MOVSX64_32:
  DST = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(SRC)));
  NEXT();
op_MOVSX32_8:
  DST = U32(static_cast<int32_t>(static_cast<int8_t>(SRC)));
  NEXT();
op_MOVSX32_16:
  DST = U32(static_cast<int32_t>(static_cast<int16_t>(SRC)));
  NEXT();
op_NEG64:
  DST = 0 - DST;
  NEXT();
op_NEG32:
  DST = U32(0u - U32(DST));
  NEXT();
  // The host is little-endian (x86-64): "le" truncates, "be" swaps.
op_LE16:
  DST = static_cast<uint16_t>(DST);
  NEXT();
op_LE32:
  DST = U32(DST);
  NEXT();
op_LE64:
  NEXT();
op_BE16:
op_BSWAP16:
  DST = __builtin_bswap16(static_cast<uint16_t>(DST));
  NEXT();
op_BE32:
op_BSWAP32:
  DST = __builtin_bswap32(U32(DST));
  NEXT();
op_BE64:
op_BSWAP64:
  DST = __builtin_bswap64(DST);
  NEXT();

op_JA:
op_JA32:
  ip = base + ip->target;
  DISPATCH();
  JMP_ALL(JEQ, UCMP(==), UCMP(==))
  JMP_ALL(JNE, UCMP(!=), UCMP(!=))
  JMP_ALL(JGT, UCMP(>), UCMP(>))
  JMP_ALL(JGE, UCMP(>=), UCMP(>=))
  JMP_ALL(JLT, UCMP(<), UCMP(<))
  JMP_ALL(JLE, UCMP(<=), UCMP(<=))
  JMP_ALL(JSGT, SCMP64(>), SCMP32(>))
  JMP_ALL(JSGE, SCMP64(>=), SCMP32(>=))
  JMP_ALL(JSLT, SCMP64(<), SCMP32(<))
  JMP_ALL(JSLE, SCMP64(<=), SCMP32(<=))
op_JSET_IMM:
  JUMP_IF((DST & IMM) != 0);
op_JSET_REG:
  JUMP_IF((DST & SRC) != 0);
op_JSET32_IMM:
  JUMP_IF((U32(DST) & U32(IMM)) != 0);
op_JSET32_REG:
  JUMP_IF((U32(DST) & U32(SRC)) != 0);

  LDX(LDX_B, uint8_t, uint8_t)
  LDX(LDX_H, uint16_t, uint16_t)
  LDX(LDX_W, uint32_t, uint32_t)
  LDX(LDX_DW, uint64_t, uint64_t)
  LDX(LDXS_B, uint8_t, int8_t)
  LDX(LDXS_H, uint16_t, int16_t)
  LDX(LDXS_W, uint32_t, int32_t)
  STORE(ST_B, uint8_t, IMM)
  STORE(ST_H, uint16_t, IMM)
  STORE(ST_W, uint32_t, IMM)
  STORE(ST_DW, uint64_t, IMM)
  STORE(STX_B, uint8_t, SRC)
  STORE(STX_H, uint16_t, SRC)
  STORE(STX_W, uint32_t, SRC)
  STORE(STX_DW, uint64_t, SRC)

  ATOMIC_RMW(64, ADD, uint64_t, __atomic_fetch_add)
  ATOMIC_RMW(64, OR, uint64_t, __atomic_fetch_or)
  ATOMIC_RMW(64, AND, uint64_t, __atomic_fetch_and)
  ATOMIC_RMW(64, XOR, uint64_t, __atomic_fetch_xor)
  ATOMIC_RMW(32, ADD, uint32_t, __atomic_fetch_add)
  ATOMIC_RMW(32, OR, uint32_t, __atomic_fetch_or)
  ATOMIC_RMW(32, AND, uint32_t, __atomic_fetch_and)
  ATOMIC_RMW(32, XOR, uint32_t, __atomic_fetch_xor)
op_ATOMIC64_XCHG : {
  ATOMIC_ADDR(uint64_t);
  SRC = __atomic_exchange_n(p, SRC, __ATOMIC_SEQ_CST);
  NEXT();
}
op_ATOMIC32_XCHG : {
  ATOMIC_ADDR(uint32_t);
  SRC = __atomic_exchange_n(p, U32(SRC), __ATOMIC_SEQ_CST);
  NEXT();
}
op_ATOMIC64_CMPXCHG : {
  ATOMIC_ADDR(uint64_t);
  uint64_t expected = reg[0];
  __atomic_compare_exchange_n(p, &expected, SRC, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  reg[0] = expected;  // the old value, whether or not it was replaced
  NEXT();
}
op_ATOMIC32_CMPXCHG : {
  ATOMIC_ADDR(uint32_t);
  uint32_t expected = U32(reg[0]);
  __atomic_compare_exchange_n(p, &expected, U32(SRC), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  reg[0] = expected;
  NEXT();
}

// Superinstructions (fast mode only; see superinstructions.hpp). The
// second instruction is ip[1]; its register operand is read after the first
// result is stored, so it sees the new value when it names that register.
#define IMM2 static_cast<uint64_t>(static_cast<int64_t>(ip[1].imm))
#define EMBER_PAIR(KB, KA)                                                            \
  op_F_##KA##_##KB##_II : {                                                           \
    DST = fused::alu64<fused::Alu::KB>(fused::alu64<fused::Alu::KA>(DST, IMM), IMM2); \
    ip += 2;                                                                          \
    DISPATCH();                                                                       \
  }                                                                                   \
  op_F_##KA##_##KB##_IR : {                                                           \
    DST = fused::alu64<fused::Alu::KA>(DST, IMM);                                     \
    DST = fused::alu64<fused::Alu::KB>(DST, reg[ip[1].src]);                          \
    ip += 2;                                                                          \
    DISPATCH();                                                                       \
  }                                                                                   \
  op_F_##KA##_##KB##_RI : {                                                           \
    DST = fused::alu64<fused::Alu::KB>(fused::alu64<fused::Alu::KA>(DST, SRC), IMM2); \
    ip += 2;                                                                          \
    DISPATCH();                                                                       \
  }                                                                                   \
  op_F_##KA##_##KB##_RR : {                                                           \
    DST = fused::alu64<fused::Alu::KA>(DST, SRC);                                     \
    DST = fused::alu64<fused::Alu::KB>(DST, reg[ip[1].src]);                          \
    ip += 2;                                                                          \
    DISPATCH();                                                                       \
  }
#define EMBER_ROW(KA, ...) EMBER_FUSED_ALU_B(EMBER_PAIR, KA)
  EMBER_FUSED_ALU_A(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_PAIR
#define EMBER_LOAD(KB, LOAD, T)                                       \
  op_F_##LOAD##_##KB : {                                              \
    uint64_t v = load<T>(SRC + static_cast<int64_t>(ip->off));        \
    DST = v;                                                          \
    reg[ip[1].dst] = fused::alu64<fused::Alu::KB>(reg[ip[1].dst], v); \
    ip += 2;                                                          \
    DISPATCH();                                                       \
  }
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_ALU_B(EMBER_LOAD, LOAD, T)
  EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_LOAD(KB, LOAD, T)                                                             \
  op_FI_##LOAD##_##KB : {                                                                   \
    DST = fused::alu64<fused::Alu::KB>(load<T>(SRC + static_cast<int64_t>(ip->off)), IMM2); \
    ip += 2;                                                                                \
    DISPATCH();                                                                             \
  }
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_ALU_B(EMBER_LOAD, LOAD, T)
  EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_LOAD(C, LOAD, T)                                                           \
  op_FJ_##LOAD##_##C : {                                                                 \
    uint64_t v = load<T>(SRC + static_cast<int64_t>(ip->off));                           \
    DST = v;                                                                             \
    ip = fused::cmp64<fused::Cond::C>(reg[ip[1].dst], v) ? base + ip[1].target : ip + 2; \
    DISPATCH();                                                                          \
  }
#define EMBER_ROW(LOAD, T, ...) EMBER_FUSED_COND(EMBER_LOAD, LOAD, T)
  EMBER_FUSED_LOADS(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_LOAD
#define EMBER_ADD_JUMP(C, ...)                                                             \
  op_FA_##C##_I : {                                                                        \
    uint64_t v = DST + IMM;                                                                \
    DST = v;                                                                               \
    ip = fused::cmp64<fused::Cond::C>(v, IMM2) ? base + ip[1].target : ip + 2;             \
    DISPATCH();                                                                            \
  }                                                                                        \
  op_FA_##C##_R : {                                                                        \
    DST = DST + IMM;                                                                       \
    ip = fused::cmp64<fused::Cond::C>(DST, reg[ip[1].src]) ? base + ip[1].target : ip + 2; \
    DISPATCH();                                                                            \
  }
  EMBER_FUSED_COND(EMBER_ADD_JUMP)
#undef EMBER_ADD_JUMP
op_F_JEQ_CHAIN : {
  uint64_t v = DST;
  ip = v == IMM ? base + ip->target : v == IMM2 ? base + ip[1].target : ip + 2;
  DISPATCH();
}
#define EMBER_STORE(SB, TB, SA, TA)                                                     \
  op_FS_##SA##_##SB : {                                                                 \
    store<TA>(DST + static_cast<int64_t>(ip->off), static_cast<TA>(IMM));               \
    store<TB>(reg[ip[1].dst] + static_cast<int64_t>(ip[1].off), static_cast<TB>(IMM2)); \
    ip += 2;                                                                            \
    DISPATCH();                                                                         \
  }
#define EMBER_ROW(SA, TA, ...) EMBER_FUSED_STORES_B(EMBER_STORE, SA, TA)
  EMBER_FUSED_STORES_A(EMBER_ROW)
#undef EMBER_ROW
#undef EMBER_STORE
#undef IMM2

op_LDDW:
  DST =
      ip->src == static_cast<uint8_t>(Pseudo::Func)
          ? (kFuncAddrTag | ip->target)
          : (static_cast<uint64_t>(static_cast<uint32_t>(ip[1].imm)) << 32) | static_cast<uint32_t>(ip->imm);
  ip += 2;
  DISPATCH();

  // Legacy packet loads (socket filters): network byte order; an
  // out-of-bounds offset ends the program with r0 = 0, as in the kernel.
#define LD_PACKET(NAME, T, SWAP, INDIRECT)                                                    \
  op_##NAME : {                                                                               \
    int64_t o = static_cast<int64_t>(ip->imm) + (INDIRECT ? S64(S32(SRC)) : 0);               \
    if (o < 0 || static_cast<uint64_t>(o) + sizeof(T) > in.packet.size()) return uint64_t{0}; \
    T v;                                                                                      \
    std::memcpy(&v, in.packet.data() + o, sizeof(T));                                         \
    reg[0] = SWAP(v);                                                                         \
    NEXT();                                                                                   \
  }
#define NOSWAP(v) (v)
  LD_PACKET(LDABS_B, uint8_t, NOSWAP, false)
  LD_PACKET(LDABS_H, uint16_t, __builtin_bswap16, false)
  LD_PACKET(LDABS_W, uint32_t, __builtin_bswap32, false)
  LD_PACKET(LDIND_B, uint8_t, NOSWAP, true)
  LD_PACKET(LDIND_H, uint16_t, __builtin_bswap16, true)
  LD_PACKET(LDIND_W, uint32_t, __builtin_bswap32, true)

op_CALL:
  call.depth = frames_below + depth;
  reg[0] = helper_fns_[ip - base](call, reg[1], reg[2], reg[3], reg[4], reg[5]);
  if constexpr (Checked) {
    if (!call.fault.empty()) return fault_at(*prog_, ip - base, "helper fault: " + call.fault);
  }
  if (call.tail_target) [[unlikely]]
    goto tail_call;
  NEXT();
tail_call : {
  // bpf_tail_call succeeded: the target replaces the calling function, with
  // the context (r1) it was given; what it returns, that function returns.
  const Interpreter* target = call.tail_target;
  call.tail_target = nullptr;
  Entry e{0, {reg[1], 0, 0, 0, 0}, &call, frames_below + depth};
  auto r = target->run_entry(in, opts, e);
  if (!r) return r;
  reg[0] = *r;
  goto op_EXIT;
}
op_CALL_KFUNC:
  return fault_at(*prog_, ip - base, "kfunc call");  // rejected by create()
op_CALLX : {
  uint64_t v = DST;
  if ((v & kFuncAddrMask) == kFuncAddrTag) {
    uint64_t t = v & ~kFuncAddrMask;
    if (t >= n || prog_->insts[t].second_half)
      return fault_at(*prog_, ip - base, "callx to " + hex(v) + ", not an instruction of this program");
    callee = base + t;
    goto enter_call;
  }
  HelperFn fn = v < helper_by_id_.size() ? helper_by_id_[v] : nullptr;
  if (!fn) return fault_at(*prog_, ip - base, "callx to " + hex(v) + ": neither a helper id nor a function");
  call.depth = frames_below + depth;
  reg[0] = fn(call, reg[1], reg[2], reg[3], reg[4], reg[5]);
  if constexpr (Checked) {
    if (!call.fault.empty()) return fault_at(*prog_, ip - base, "helper fault: " + call.fault);
  }
  if (call.tail_target) [[unlikely]]
    goto tail_call;
  NEXT();
}
op_CALL_LOCAL:
  callee = base + ip->target;
enter_call:
  // Each frame gets its own 512-byte stack below the caller's; r6-r9 are
  // callee-saved, as the kernel's interpreter and JITs arrange.
  if (frames_below + depth + 1 >= kMaxCallFrames) goto too_deep;
  frames[depth] = {ip + 1, {reg[6], reg[7], reg[8], reg[9]}, reg[10]};
  ++depth;
  reg[10] -= kStackSize;
  if constexpr (Checked) guard.set_stack(reg[10] - kStackSize, stack_top);
  ip = callee;
  DISPATCH();
op_EXIT:
  if (depth == 0) {
    if constexpr (Checked)
      if (!entry.parent && guard.held())
        return fault_at(*prog_, ip - base,
                        std::to_string(guard.held()) +
                            " ring buffer record(s) reserved and neither submitted nor discarded at exit "
                            "(the kernel's verifier refuses this: unreleased reference); discarded");
    return reg[0];
  }
  --depth;
  reg[6] = frames[depth].saved[0];
  reg[7] = frames[depth].saved[1];
  reg[8] = frames[depth].saved[2];
  reg[9] = frames[depth].saved[3];
  reg[10] = frames[depth].fp;
  if constexpr (Checked) guard.set_stack(reg[10] - kStackSize, stack_top);
  ip = frames[depth].ret;
  DISPATCH();

too_deep:
  return fault_at(*prog_, ip - base,
                  "call depth exceeds " + std::to_string(kMaxCallFrames) + " frames (the kernel's limit)");
out_of_budget:
  return fault_at(*prog_, ip - base,
                  "instruction budget of " + std::to_string(opts.insn_budget) +
                      " exhausted (runaway loop?); raise it with the budget option");
mem_fault:
  return fault_at(*prog_, ip - base,
                  std::string(fault_write ? "write" : "read") + " of " + std::to_string(fault_size) +
                      " bytes at " + hex(fault_addr) +
                      " is outside the memory the program may access (its context, its stack frames, "
                      "memory granted by helpers)");
misaligned:
  return fault_at(*prog_, ip - base,
                  "atomic access of " + std::to_string(fault_size) + " bytes at " + hex(fault_addr) +
                      " is not naturally aligned");
#undef DISPATCH
#undef NEXT
}
#pragma GCC diagnostic pop

template Result<uint64_t> Interpreter::exec<false, false>(const RunInput&, const RunOptions&,
                                                          const Entry&) const;
template Result<uint64_t> Interpreter::exec<true, false>(const RunInput&, const RunOptions&,
                                                         const Entry&) const;
template Result<uint64_t> Interpreter::exec<true, true>(const RunInput&, const RunOptions&,
                                                        const Entry&) const;

}  // namespace ember
