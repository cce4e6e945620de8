// Helper calls, bpf-to-bpf calls and callx.
#include "jit/codegen.hpp"

namespace ember::jit {

// A helper: r1-r5 are already in rsi, rdx, rcx, r8, r9; rdi = &HelperCall.
// After bpf_tail_call, a set tail_target means the run continues in the
// target (tail_call_thunk) and this function returns what that returns.
Status Codegen::emit_call(size_t i) {
  const Inst& in = prog_.insts[i];
  switch (in.op) {
    case Op::CALL: {
      HelperFn fn = interp_.helper_at(i);
      if (!fn) return unsupported(i, "no helper is bound to this call");
      const bool tail = fn == tail_call_fn_;
      if (tail) e_.store(8, frame(off_.tail_ctx), RSI);
      e_.mov(true, RDI, kCallReg);
      e_.mov_imm(RAX, reinterpret_cast<uint64_t>(fn));
      e_.call(RAX);
      if (tail) {
        e_.alu(Alu::Cmp, true, frame(off_.tail_target), 0);
        e_.jcc(Cond::NE, tail_stub_label_);
      }
      return ok_status();
    }
    case Op::CALL_LOCAL: emit_local_call_via(RAX, target_label(in.target), i); return ok_status();
    case Op::CALLX: emit_callx(i); return ok_status();
    default: return unsupported(i, "kernel function (kfunc) calls are not supported in user space");
  }
}

// Each frame has its own 512 bytes of stack below the caller's, at most 8
// frames counting the callbacks beneath (HelperCall::depth, kept current
// here), and r6-r9 are callee-saved: pushed here, with r10, which keeps the
// native stack 16-byte aligned (five pushes and a return address).
void Codegen::emit_local_call_via(Reg target, int label, size_t i) {
  e_.alu(Alu::Cmp, false, frame(off_.depth), kMaxCallFrames - 1);
  e_.jcc(Cond::GE, error_stub(kErrTooDeep, static_cast<uint32_t>(i)));
  e_.inc32(frame(off_.depth));
  static constexpr Reg kSaved[] = {RBX, R13, R14, R15, RBP};
  for (Reg r : kSaved) e_.push(r);
  e_.lea(RBP, Mem{RBP, -kStackSize});
  if (label >= 0)
    e_.call(label);
  else
    e_.call(target);
  for (int k = 4; k >= 0; --k) e_.pop(kSaved[k]);
  e_.dec32(frame(off_.depth));
}

// callx: the register holds kFuncAddrTag | instruction (a function of this
// program, found in the code table) or a helper id (the helper table), as
// the interpreter accepts; anything else ends the run with an error.
void Codegen::emit_callx(size_t i) {
  const Reg d = reg(prog_.insts[i].dst);
  const int helper = e_.new_label(), bad = e_.new_label(), done = e_.new_label();
  e_.mov(true, kTmp, d);
  e_.mov(true, kTmp2, kTmp);
  e_.shift(Shift::Shr, true, kTmp2, 48);
  e_.alu(Alu::Cmp, false, kTmp2, static_cast<int32_t>(kFuncAddrTag >> 48));
  e_.jcc(Cond::NE, helper);
  e_.shift(Shift::Shl, true, kTmp, 16);
  e_.shift(Shift::Shr, true, kTmp, 16);
  e_.alu(Alu::Cmp, true, kTmp, frame(off_.n_insns));
  e_.jcc(Cond::AE, bad);
  e_.load(8, false, kTmp2, frame(off_.code_table));
  e_.load(8, false, kTmp2, Mem{kTmp2, 0, static_cast<int8_t>(kTmp), 3});
  e_.test(true, kTmp2, kTmp2);
  e_.jcc(Cond::E, bad);
  emit_local_call_via(kTmp2, -1, i);
  e_.jmp(done);
  e_.bind(helper);
  e_.alu(Alu::Cmp, true, kTmp, frame(off_.n_helpers));
  e_.jcc(Cond::AE, bad);
  e_.load(8, false, kTmp2, frame(off_.helpers));
  e_.load(8, false, kTmp2, Mem{kTmp2, 0, static_cast<int8_t>(kTmp), 3});
  e_.test(true, kTmp2, kTmp2);
  e_.jcc(Cond::E, bad);
  e_.store(8, frame(off_.tail_ctx), RSI);
  e_.mov(true, RDI, kCallReg);
  e_.call(kTmp2);
  e_.alu(Alu::Cmp, true, frame(off_.tail_target), 0);
  e_.jcc(Cond::NE, tail_stub_label_);
  e_.jmp(done);
  e_.bind(bad);
  e_.store(8, frame(off_.err_value), d);
  e_.jmp(error_stub(kErrCallx, static_cast<uint32_t>(i)));
  e_.bind(done);
}

}  // namespace ember::jit
