// Code generation: one eBPF program to x86-64 code, in one pass over the
// instructions (branch sizes are settled after it, x86_emitter.hpp).
//
// Register mapping. eBPF r1-r5 live in the System V argument registers
// after rdi, so that a helper call only loads rdi (= &HelperCall, kept in
// r12) before `call`; the callee-saved r6-r9 and r10 live in callee-saved
// registers, so they survive helper calls untouched:
//   r0=rax r1=rsi r2=rdx r3=rcx r4=r8 r5=r9 r6=rbx r7=r13 r8=r14 r9=r15 r10=rbp
// r11 and r10 (and rdi outside helper calls) are scratch. Shifts by a
// register need cl (eBPF r3) and division needs rdx:rax (r2, r0): those
// sequences move the operands around and restore what they borrowed.
//
// Frames. The eBPF code of a function ends in `ret`: the trampoline at the
// start of the code calls the entry instruction, and a bpf-to-bpf call
// pushes r6-r9 and r10, moves r10 down by 512 bytes and `call`s the callee.
// The native stack stays 16-byte aligned at every call.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/jit.hpp"
#include "jit/jit_frame.hpp"
#include "jit/x86_emitter.hpp"

namespace ember::jit {

constexpr Reg kRegMap[kNumRegs] = {RAX, RSI, RDX, RCX, R8, R9, RBX, R13, R14, R15, RBP};
constexpr Reg kCallReg = R12;  // &HelperCall (the JitFrame)
constexpr Reg kTmp = R11;
constexpr Reg kTmp2 = R10;
constexpr Reg kTmp3 = RDI;

// Called by JIT code after bpf_tail_call succeeded: runs the target, returns
// its r0 (or records an error in the frame).
uint64_t tail_call_thunk(HelperCall* call);

struct CodegenOutput {
  std::vector<uint8_t> code;
  // The lean entry for runs from instruction 0 (emit_lean_entry()).
  uint32_t entry0_offset = 0;
  // Whether the code can take the tail-call path (bpf_tail_call or callx).
  bool may_tail_call = false;
  bool uses_packet = false;  // ld_abs/ld_ind read JitState::packet
  std::vector<JitLine> lines;
  std::vector<int64_t> insn_offset;  // per instruction slot; -1: not compiled
};

class Codegen {
 public:
  Codegen(const Program& prog, const Interpreter& interp, const JitOptions& opts);
  Result<CodegenOutput> generate();

 private:
  Status analyze();
  Status emit_code();
  void emit_trampoline();
  void emit_lean_entry();
  // Which registers the code mentions, which are read before written from
  // instruction 0 (jit_liveness.cpp), and whether it needs r12 (the frame).
  void analyze_registers();
  // Whether the lean entry can fall into instruction 0 (direct_), and which
  // exits then end the main function (main_exit_).
  void analyze_functions();
  // The callee-saved registers each entry saves (analyze_functions()).
  void choose_saved_registers();
  void emit_exit(size_t i);
  // Sum chains (codegen_alu.cpp): runs of `load rT; op rT, imm...; add
  // acc, rT` whose adds alternate between acc and a second accumulator.
  void find_sum_chains();
  void emit_stubs();
  // Each returns the number of instruction slots it consumed (fusions take
  // two), or an error.
  Result<size_t> emit_insn(size_t i);
  size_t emit_alu(size_t i);
  void emit_alu_reg(Op op, bool w, Reg dst, Reg src);
  void emit_alu_imm(Op op, bool w, Reg dst, int32_t imm);
  void emit_shift(Shift kind, bool w, Reg dst, Reg src);
  void emit_divmod(size_t i, bool w, bool is_signed, bool is_mod, bool imm_form);
  void emit_divide(bool w, bool is_signed, bool is_mod, Reg dst);
  void emit_endian(const Inst& in);
  size_t emit_jump(size_t i);
  size_t emit_switch(size_t i);
  void emit_compare(const Inst& in, bool w);
  void emit_load_store(const Inst& in);
  void emit_atomic(const Inst& in);
  void emit_lddw(const Inst& in);
  void emit_packet_load(const Inst& in);
  Status emit_call(size_t i);
  void emit_local_call_via(Reg target, int label, size_t i);
  void emit_callx(size_t i);

  Reg reg(uint8_t bpf) const { return kRegMap[bpf]; }
  Mem frame(int32_t offset) {
    frame_used_ |= !in_trampoline_;
    return Mem{kCallReg, offset};
  }
  bool blinding() const { return opts_.blind_constants; }
  // r = imm, through a blinded pair of instructions when blinding
  // (sign-extended to 64 bits when w).
  void load_imm(Reg r, int32_t imm, bool w);
  int32_t next_key();
  // The label to jump to for instruction `target`: its own, or a stub that
  // reports reaching a dead instruction.
  int target_label(size_t target);
  int error_stub(ErrKind kind, uint32_t insn);
  size_t next_live(size_t i) const;
  bool falls_through(const Inst& in) const;
  Error unsupported(size_t i, const char* why) const;

  const Program& prog_;
  const Interpreter& interp_;
  const JitOptions& opts_;
  const size_t n_;
  const FrameOffsets off_;
  Emitter e_;
  HelperFn tail_call_fn_ = nullptr;
  std::vector<uint8_t> live_, target_, loop_head_;  // loop_head_: target of a backward jump
  // Labels after the n instruction labels.
  int exit_label_, error_exit_label_, packet_fail_label_, tail_stub_label_;
  struct Stub {
    int label;
    ErrKind kind;
    uint32_t insn;
  };
  std::vector<Stub> stubs_;
  struct JumpTable {
    int label;
    std::vector<int> entries;
  };
  std::vector<JumpTable> tables_;
  uint64_t key_state_ = 1;
  // Bit r for eBPF register r (analyze_registers()).
  uint16_t mentioned_ = 0, entry_live_ = 0;
  bool needs_frame_ = false, needs_fp_ = false, may_tail_call_ = false, uses_packet_ = false;
  bool in_trampoline_ = false, frame_used_ = false;
  // The lean entry jumps into the code instead of calling it; the main
  // function's exits pop what it pushed (saved_lean_, then a padding slot
  // if pad_lean_) and return to the entry's caller.
  bool direct_ = false, pad_lean_ = false;
  std::vector<uint8_t> main_exit_;
  // Pushed by the full trampoline and by the lean entry, in this order.
  // When the code needs the frame both push the same ones and save rsp
  // after them, so that the error exit can unwind to either through the
  // full trampoline's epilogue (exit_label_).
  std::vector<Reg> saved_full_, saved_lean_;
  // Per instruction (find_sum_chains()): 1 starts a chain (the second
  // accumulator is cleared), 2 adds into the second accumulator, 3 ends a
  // chain (its add, then the second accumulator is added to acc).
  std::vector<uint8_t> sum_role_;
  uint32_t entry0_offset_ = 0;
};

}  // namespace ember::jit
