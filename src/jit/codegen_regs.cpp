// What the entry code needs to know before the body is emitted: which eBPF
// registers the code mentions (only their x86 homes that are callee-saved
// are saved), which are read before written on some path from instruction
// 0 (only those are zeroed at entry: the interpreter starts registers at 0,
// and unverified code may read one), and whether the code reaches the frame
// through r12 at all (helper and local calls, packet loads, error stubs).
//
// The liveness is a backward dataflow over the reachable instructions. It is
// conservative where it must be: a use is never missed (a helper call reads
// r1-r5, a local call or callx may read anything), a definition is counted
// only where the register is surely written.
#include "jit/codegen.hpp"

namespace ember::jit {

namespace {

constexpr uint16_t bit(uint8_t r) { return static_cast<uint16_t>(1u << r); }
constexpr uint16_t kArgs = 0x3e;                 // r1-r5
constexpr uint16_t kAll = (1u << kNumRegs) - 1;  // r0-r10

bool is_mov(Op op) {
  switch (op) {
    case Op::MOV64_REG:
    case Op::MOV32_REG:
    case Op::MOV64_IMM:
    case Op::MOV32_IMM:
    case Op::MOVSX64_8:
    case Op::MOVSX64_16:
    case Op::MOVSX64_32:
    case Op::MOVSX32_8:
    case Op::MOVSX32_16: return true;
    default: return false;
  }
}

struct UseDef {
  uint16_t use = 0, def = 0;
};

UseDef use_def(const Inst& in) {
  const uint16_t d = bit(in.dst), s = bit(in.src);
  switch (in.info().form) {
    case Form::AluImm: return is_mov(in.op) ? UseDef{0, d} : UseDef{d, d};
    case Form::AluReg: return is_mov(in.op) ? UseDef{s, d} : UseDef{static_cast<uint16_t>(d | s), d};
    case Form::AluUnary:
    case Form::Endian: return {d, d};
    case Form::LdImm64: return {0, d};
    case Form::LdAbs: return {0, bit(0)};
    case Form::LdInd: return {s, bit(0)};
    case Form::Ldx: return {s, d};
    case Form::St: return {d, 0};
    case Form::Stx: return {static_cast<uint16_t>(d | s), 0};
    // Fetching atomics write src, cmpxchg r0: counting no definition is
    // the safe side.
    case Form::Atomic: return {static_cast<uint16_t>(d | s | bit(0)), 0};
    case Form::Ja:
    case Form::Ja32: return {};
    case Form::JmpImm: return {d, 0};
    case Form::JmpReg: return {static_cast<uint16_t>(d | s), 0};
    // A helper reads at most r1-r5; after it r0-r5 hold what the call left
    // (the native ABI clobbers them), whatever they held at entry.
    case Form::Call: return {kArgs, static_cast<uint16_t>(kArgs | bit(0))};
    // The callee sees every register of the caller.
    case Form::CallLocal:
    case Form::CallX: return {kAll, 0};
    case Form::Exit: return {bit(0), 0};
  }
  return {kAll, 0};
}

}  // namespace

void Codegen::analyze_registers() {
  std::vector<uint16_t> use(n_, 0), def(n_, 0), live_in(n_, 0);
  mentioned_ = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (!live_[i]) continue;
    const Inst& in = prog_.insts[i];
    UseDef ud = use_def(in);
    use[i] = ud.use;
    def[i] = ud.def;
    mentioned_ |= ud.use | ud.def;
    switch (in.info().form) {
      case Form::Call:
        needs_frame_ = true;
        may_tail_call_ |= interp_.helper_at(i) == tail_call_fn_;
        break;
      case Form::CallX: may_tail_call_ = true; [[fallthrough]];
      case Form::CallLocal: needs_frame_ = needs_fp_ = true; break;
      case Form::LdAbs:
      case Form::LdInd: needs_frame_ = uses_packet_ = true; break;
      case Form::JmpImm:
      case Form::JmpReg:
      case Form::Ja:
      case Form::Ja32:
        if (in.target >= n_ || !live_[in.target]) needs_frame_ = true;  // an error stub
        break;
      default: break;
    }
    const size_t next = i + (in.op == Op::LDDW ? 2 : 1);
    if (falls_through(in) && (next >= n_ || !live_[next])) needs_frame_ = true;
  }
  needs_fp_ |= (mentioned_ & bit(10)) != 0;
  // Backward sweeps until nothing changes (loops need more than one).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = n_; i-- > 0;) {
      if (!live_[i]) continue;
      const Inst& in = prog_.insts[i];
      uint16_t out = 0;
      auto succ = [&](size_t t) {
        if (t < n_ && live_[t]) out |= live_in[t];
      };
      switch (in.info().form) {
        case Form::Exit: break;
        case Form::Ja:
        case Form::Ja32: succ(in.target); break;
        case Form::JmpImm:
        case Form::JmpReg:
          succ(in.target);
          succ(i + 1);
          break;
        case Form::LdImm64: succ(i + 2); break;
        default: succ(i + 1); break;
      }
      const auto in_now = static_cast<uint16_t>(use[i] | (out & ~def[i]));
      if (in_now != live_in[i]) {
        live_in[i] = in_now;
        changed = true;
      }
    }
  }
  entry_live_ = live_[0] ? live_in[0] : 0;
}

// Functions: instruction 0 and the targets of local calls and of function
// addresses (callbacks). What each reaches without following calls is its
// body. The lean entry falls into instruction 0 when the main function's
// exits are its own (no other function reaches them, nothing calls
// instruction 0) and no tail call returns through the shared tail stub.
void Codegen::analyze_functions() {
  main_exit_.assign(n_, 0);
  direct_ = false;
  if (!live_[0] || may_tail_call_ || blinding()) return;
  std::vector<uint8_t> fentry(n_, 0);
  for (size_t i = 0; i < n_; ++i) {
    if (!live_[i]) continue;
    const Inst& in = prog_.insts[i];
    if (in.op == Op::CALLX) return;  // any function address may be called
    if ((in.op == Op::CALL_LOCAL || (in.op == Op::LDDW && in.pseudo() == Pseudo::Func)) && in.target < n_)
      fentry[in.target] = 1;
  }
  if (fentry[0]) return;
  auto walk = [&](size_t start, std::vector<uint8_t>& seen) {
    std::vector<uint32_t> work{static_cast<uint32_t>(start)};
    auto go = [&](size_t t) {
      if (t < n_ && live_[t] && !seen[t]) {
        seen[t] = 1;
        work.push_back(static_cast<uint32_t>(t));
      }
    };
    seen[start] = 1;
    while (!work.empty()) {
      const size_t i = work.back();
      work.pop_back();
      const Inst& in = prog_.insts[i];
      switch (in.info().form) {
        case Form::Exit: break;
        case Form::Ja:
        case Form::Ja32: go(in.target); break;
        case Form::JmpImm:
        case Form::JmpReg:
          go(in.target);
          go(i + 1);
          break;
        case Form::LdImm64: go(i + 2); break;
        default: go(i + 1); break;
      }
    }
  };
  std::vector<uint8_t> in_main(n_, 0), in_other(n_, 0);
  walk(0, in_main);
  for (size_t t = 0; t < n_; ++t)
    if (fentry[t] && live_[t]) walk(t, in_other);
  for (size_t i = 0; i < n_; ++i)
    if (in_main[i] && in_other[i] && prog_.insts[i].op == Op::EXIT) return;
  for (size_t i = 0; i < n_; ++i) main_exit_[i] = in_main[i] && prog_.insts[i].op == Op::EXIT;
  direct_ = true;
}

void Codegen::choose_saved_registers() {
  std::vector<Reg> used;
  for (uint8_t r = 6; r <= 9; ++r)
    if (mentioned_ & bit(r)) used.push_back(reg(r));
  saved_full_ = used;
  saved_full_.push_back(RBP);
  saved_full_.push_back(kCallReg);
  // The code runs with rsp = 0 mod 16 (it was called from an rsp = 8 mod
  // 16 with the return address): an even number of slots before the call.
  if (saved_full_.size() % 2) saved_full_.push_back(kTmp);
  if (needs_frame_) {
    saved_lean_ = saved_full_;
  } else {
    saved_lean_ = used;
    if (needs_fp_) saved_lean_.push_back(RBP);
    if (!direct_ && saved_lean_.size() % 2) saved_lean_.push_back(kTmp);
  }
  // Falling into the code without a call: an odd number of slots, for the
  // calls the code makes (code that calls nothing needs the frame for
  // nothing either, and no alignment).
  pad_lean_ = direct_ && needs_frame_ && saved_lean_.size() % 2 == 0;
}

}  // namespace ember::jit
