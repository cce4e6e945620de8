// The driver of code generation: which instructions are reachable, the
// emission, the entry trampoline and the out-of-line stubs. The instruction
// classes are in codegen_alu.cpp, codegen_jmp.cpp, codegen_mem.cpp and
// codegen_call.cpp.
#include "jit/codegen.hpp"

#include <x86intrin.h>

#include <cassert>
#include <cstring>

#include "ember/asm.hpp"

namespace ember::jit {

namespace {

HelperFn find_tail_call_helper() {
  for (const HelperDef& d : map_helpers())
    if (std::strcmp(d.name, "bpf_tail_call") == 0) return d.fn;
  return nullptr;
}

}  // namespace

Codegen::Codegen(const Program& prog, const Interpreter& interp, const JitOptions& opts)
    : prog_(prog),
      interp_(interp),
      opts_(opts),
      n_(prog.insts.size()),
      off_(FrameOffsets::compute()),
      tail_call_fn_(find_tail_call_helper()) {
  exit_label_ = static_cast<int>(n_);
  error_exit_label_ = exit_label_ + 1;
  packet_fail_label_ = exit_label_ + 2;
  tail_stub_label_ = exit_label_ + 3;
  key_state_ = (opts.blinding_seed ? opts.blinding_seed
                                   : (__rdtsc() ^ reinterpret_cast<uint64_t>(this) ^ 0x9E3779B97F4A7C15ull)) |
               1;
}

Error Codegen::unsupported(size_t i, const char* why) const {
  return fail("instruction ", i, " (", disassemble_insn(prog_.insts[i], i), "): ", why);
}

bool Codegen::falls_through(const Inst& in) const {
  Form f = in.info().form;
  return f != Form::Exit && f != Form::Ja && f != Form::Ja32;
}

size_t Codegen::next_live(size_t i) const {
  size_t j = i + (prog_.insts[i].op == Op::LDDW ? 2 : 1);
  while (j < n_ && !live_[j]) ++j;
  return j;
}

// Reachability from the entry, from every function a call names, and from
// every function whose address ld_imm64 loads (callbacks, callx). What no
// path reaches is not compiled; the verifier rejects such programs, so
// without unsafe_unverified they are refused.
Status Codegen::analyze() {
  live_.assign(n_, 0);
  target_.assign(n_, 0);
  loop_head_.assign(n_, 0);
  auto hinted_dead = [&](size_t i) { return !opts_.hints.empty() && opts_.hints[i].dead; };
  std::vector<uint32_t> work;
  auto reach = [&](size_t t) {
    if (t < n_ && !live_[t] && !prog_.insts[t].second_half && !hinted_dead(t)) {
      live_[t] = 1;
      work.push_back(static_cast<uint32_t>(t));
    }
  };
  auto enter = [&](size_t t) {
    if (t < n_) target_[t] = 1;
    reach(t);
  };
  bool has_callx = false;
  for (const Inst& in : prog_.insts) has_callx |= in.op == Op::CALLX;
  if (has_callx) {
    // callx may name any function whose address the program holds.
    for (const Inst& in : prog_.insts)
      if (in.op == Op::LDDW && !in.second_half && (in.imm64 & kFuncAddrMask) == kFuncAddrTag)
        enter(in.imm64 & ~kFuncAddrMask);
  }
  reach(0);
  while (!work.empty()) {
    size_t i = work.back();
    work.pop_back();
    const Inst& in = prog_.insts[i];
    switch (in.info().form) {
      case Form::Ja:
      case Form::Ja32:
        enter(in.target);
        if (in.target <= i) loop_head_[in.target] = 1;
        break;
      case Form::JmpImm:
      case Form::JmpReg:
        enter(in.target);
        if (in.target <= i) loop_head_[in.target] = 1;
        reach(i + 1);
        break;
      case Form::CallLocal:
        enter(in.target);
        reach(i + 1);
        break;
      case Form::Exit: break;
      case Form::LdImm64:
        if (in.pseudo() == Pseudo::Func) enter(in.target);
        reach(i + 2);
        break;
      default: reach(i + 1); break;
    }
  }
  if (!opts_.unsafe_unverified) {
    for (size_t i = 0; i < n_; ++i)
      if (!live_[i] && !prog_.insts[i].second_half && !hinted_dead(i))
        return unsupported(i,
                           "no path reaches it, so the program cannot have passed the verifier (the JIT "
                           "compiles verified code only; JitOptions::unsafe_unverified overrides)");
  }
  return ok_status();
}

int32_t Codegen::next_key() {
  // xorshift64*: keys differ per immediate; never small (no imm8 forms).
  key_state_ ^= key_state_ >> 12;
  key_state_ ^= key_state_ << 25;
  key_state_ ^= key_state_ >> 27;
  uint64_t x = key_state_ * 0x2545F4914F6CDD1Dull;
  return static_cast<int32_t>(static_cast<uint32_t>(x >> 32) | 0x40000000u);
}

void Codegen::load_imm(Reg r, int32_t imm, bool w) {
  if (!blinding()) {
    if (w)
      e_.mov_imm(r, static_cast<uint64_t>(static_cast<int64_t>(imm)));
    else
      e_.mov_imm(r, static_cast<uint32_t>(imm));
    return;
  }
  // The kernel's bpf_jit_blind_constants: the code holds imm ^ key and key,
  // never imm. Sign extension commutes with xor, so the 64-bit form is
  // sext(imm ^ key) ^ sext(key).
  int32_t key = next_key();
  if (w)
    e_.mov_simm(r, imm ^ key);
  else
    e_.mov_imm(r, static_cast<uint32_t>(imm ^ key));
  e_.alu(Alu::Xor, w, r, key);
}

int Codegen::error_stub(ErrKind kind, uint32_t insn) {
  int l = e_.new_label();
  stubs_.push_back({l, kind, insn});
  return l;
}

int Codegen::target_label(size_t target) {
  if (target < n_ && live_[target]) return static_cast<int>(target);
  return error_stub(kErrDeadInsn, static_cast<uint32_t>(target));
}

// Entry: uint64_t (*)(HelperCall* frame, const void* code), for runs from
// any instruction but 0 (callbacks; runs from 0 call the lean entry through
// it). Saves the callee-saved registers the code uses, loads r1-r5 and r10
// from the frame, and calls the code of the instruction where the run
// starts; that code's `exit` returns here. The error exit (emit_stubs())
// restores rsp from the frame, from any call depth, and comes here too.
void Codegen::emit_trampoline() {
  e_.ensure(256);
  in_trampoline_ = true;
  for (Reg r : saved_full_) e_.push(r);  // with the return address: rsp = 8 mod 16
  e_.mov(true, kCallReg, RDI);
  e_.mov(true, kTmp, RSI);
  e_.store(8, frame(off_.saved_rsp), RSP);
  for (int r = 1; r <= 5; ++r)
    e_.load(8, false, reg(static_cast<uint8_t>(r)), frame(off_.args + 8 * (r - 1)));
  e_.load(8, false, RBP, frame(off_.fp));
  // Registers start at 0, as in the interpreter (those the code mentions).
  e_.zero(RAX);
  for (uint8_t r = 6; r <= 9; ++r)
    if (mentioned_ & (1u << r)) e_.zero(reg(r));
  e_.call(kTmp);  // the code runs with rsp = 0 mod 16
  e_.bind(exit_label_);
  for (size_t k = saved_full_.size(); k-- > 0;) e_.pop(saved_full_[k]);
  e_.ret();
  in_trampoline_ = false;
}

// Entry: uint64_t (*)(HelperCall* frame, uint64_t r1, uint64_t r2), for
// runs from instruction 0 (JitRunner, and the trampoline above): r1 and r2
// arrive where the code wants them (rsi, rdx); the entry saves only the
// callee-saved registers the code uses, sets r12 and r10 only if the code
// needs them, and zeroes only the registers some path reads before writing
// (analyze_registers()). Then it falls into instruction 0 when the main
// function's exits can undo it themselves (direct_), else it calls it. An
// empty program is its own entry.
void Codegen::emit_lean_entry() {
  e_.ensure(256);
  in_trampoline_ = true;
  entry0_offset_ = static_cast<uint32_t>(e_.size());
  for (Reg r : saved_lean_) e_.push(r);
  if (needs_frame_) {
    e_.mov(true, kCallReg, RDI);
    e_.store(8, frame(off_.saved_rsp), RSP);
  }
  if (needs_fp_) e_.load(8, false, RBP, Mem{RDI, off_.fp});
  for (uint8_t r : {0, 3, 4, 5, 6, 7, 8, 9})
    if (entry_live_ & (1u << r)) e_.zero(reg(r));
  if (pad_lean_) e_.push(kTmp);
  in_trampoline_ = false;
  if (direct_) return;  // instruction 0 comes next
  e_.call(target_label(0));
  for (size_t k = saved_lean_.size(); k-- > 0;) e_.pop(saved_lean_[k]);
  e_.ret();
}

// An exit returns to whoever called the function; the main function's,
// when the lean entry fell into it, undoes that entry.
void Codegen::emit_exit(size_t i) {
  if (direct_ && main_exit_[i]) {
    if (pad_lean_) e_.pop(kTmp);
    for (size_t k = saved_lean_.size(); k-- > 0;) e_.pop(saved_lean_[k]);
  }
  e_.ret();
}

void Codegen::emit_stubs() {
  e_.ensure(64);
  if (may_tail_call_) {
    // A tail call succeeded: run the target, return its r0 from this function.
    e_.bind(tail_stub_label_);
    e_.mov(true, RDI, kCallReg);
    e_.mov_imm(RAX, reinterpret_cast<uint64_t>(&tail_call_thunk));
    e_.call(RAX);
    e_.alu(Alu::Cmp, false, frame(off_.err_kind), 0);
    e_.jcc(Cond::NE, error_exit_label_);
    e_.ret();
  }
  if (uses_packet_) {
    // ld_abs/ld_ind out of bounds: the program ends with r0 = 0.
    e_.bind(packet_fail_label_);
    e_.zero(RAX);
    e_.jmp(error_exit_label_);
  }
  for (const Stub& s : stubs_) {
    e_.ensure(64);
    e_.bind(s.label);
    e_.store_imm(4, frame(off_.err_insn), static_cast<int32_t>(s.insn));
    e_.store_imm(4, frame(off_.err_kind), static_cast<int32_t>(s.kind));
    e_.jmp(error_exit_label_);
  }
  if (needs_frame_) {
    // Back to the entry that started the run, whichever it was: both push
    // saved_full_ and save rsp after it (choose_saved_registers()).
    e_.ensure(64);
    e_.bind(error_exit_label_);
    e_.load(8, false, RSP, frame(off_.saved_rsp));
    e_.jmp(exit_label_);
  }
  for (const JumpTable& t : tables_) e_.offset_table(t.label, t.entries);
}

Result<size_t> Codegen::emit_insn(size_t i) {
  const Inst& in = prog_.insts[i];
  switch (in.info().form) {
    case Form::AluImm:
    case Form::AluReg:
    case Form::AluUnary: return emit_alu(i);
    case Form::Endian: emit_endian(in); return size_t{1};
    case Form::Ja:
    case Form::Ja32:
    case Form::JmpImm:
    case Form::JmpReg: return emit_jump(i);
    case Form::Ldx:
    case Form::St:
    case Form::Stx: emit_load_store(in); return size_t{1};
    case Form::Atomic: emit_atomic(in); return size_t{1};
    case Form::LdImm64: emit_lddw(in); return size_t{2};
    case Form::LdAbs:
    case Form::LdInd: emit_packet_load(in); return size_t{1};
    case Form::Call:
    case Form::CallLocal:
    case Form::CallX:
      if (auto st = emit_call(i); !st) return st.error();
      return size_t{1};
    case Form::Exit: emit_exit(i); return size_t{1};
  }
  return unsupported(i, "unknown instruction form");
}

Status Codegen::emit_code() {
  e_ = Emitter{};
  e_.begin(n_ + 4);
  tables_.clear();
  stubs_.clear();
  frame_used_ = false;
  emit_trampoline();
  emit_lean_entry();
  for (size_t i = 0; i < n_;) {
    if (!live_[i]) {
      ++i;
      continue;
    }
    e_.ensure(512);
    // A loop that crosses a 64-byte boundary runs up to twice as slowly on
    // the AMD Zen cores measured here (a 6-instruction checksum loop: 1.1 us
    // across 0x80, 0.53 us within a line); starting loops on 32 bytes keeps
    // those up to 32 bytes long within one line. The padding runs once per
    // entry into the loop, if at all.
    if (loop_head_[i]) e_.align(32);
    e_.bind(static_cast<int>(i));
    if (sum_role_[i] == 1) e_.zero(kTmp);  // a sum chain's second accumulator
    auto used = emit_insn(i);
    if (!used) return used.error();
    // A fused pair: the second instruction starts where the first does.
    for (size_t k = 1; k < *used; ++k) e_.bind(static_cast<int>(i + k));
    const Inst& last = prog_.insts[prog_.insts[i].op == Op::LDDW ? i : i + *used - 1];
    size_t next = i + *used;
    if (falls_through(last) && next < n_ && !live_[next]) e_.jmp(target_label(next));
    i = next;
  }
  emit_stubs();
  return ok_status();
}

Result<CodegenOutput> Codegen::generate() {
  if (auto st = analyze(); !st) return st.error();
  analyze_registers();
  analyze_functions();
  find_sum_chains();
  choose_saved_registers();
  if (auto st = emit_code(); !st) return st.error();
  if (frame_used_ && !needs_frame_) {
    // analyze_registers() missed a use of the frame: emit again with it.
    assert(false && "analyze_registers() must foresee every use of the frame");
    needs_frame_ = true;
    choose_saved_registers();
    if (auto st = emit_code(); !st) return st.error();
  }
  e_.finish();
  CodegenOutput out;
  out.insn_offset.assign(n_, -1);
  for (size_t i = 0; i < n_; ++i) {
    if (!live_[i]) continue;
    out.insn_offset[i] = e_.label_pos(static_cast<int>(i));
    out.lines.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(out.insn_offset[i])});
  }
  out.code = e_.take();
  out.entry0_offset = entry0_offset_;
  out.may_tail_call = may_tail_call_;
  out.uses_packet = uses_packet_;
  return out;
}

}  // namespace ember::jit
