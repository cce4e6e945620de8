// The x86-64 JIT: compiles a verified Program to native code. Same
// semantics as the interpreter's fast mode (the reference: the JIT is tested
// against it), same helper table, same RunInput/RunOptions.
//
// Only verified code: JitProgram::compile cannot tell whether its caller
// ran the verifier, and the code it makes is as unchecked as the
// interpreter's fast mode (a wild pointer is a wild native access). The
// runtime compiles only programs that passed verify(); benchmarks of raw
// programs say unsafe_unverified to take the responsibility themselves.
//
// Memory: code is written into a private read-write mapping, then made
// read-only and executable before first use (never writable and executable
// at once), and unmapped when the JitProgram is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/result.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"

namespace ember {

// Facts about one instruction that the JIT may rely on (the verifier knows
// them; the JIT does not prove them). A wrong hint makes wrong code: pass
// only what was proven.
struct JitHint {
  // Never executed: not compiled; a jump to it ends the run with an error.
  bool dead = false;
  // div/mod/sdiv/smod by a register that is never 0: no zero check.
  bool nonzero_divisor = false;
  // sdiv/smod by a register that is never -1: no INT_MIN / -1 check.
  bool divisor_not_minus_one = false;
};

// The verifier's facts (VerifyResult::facts of an accepted program) as JIT
// hints, one per instruction slot.
std::vector<JitHint> jit_hints(std::span<const InsnFacts> facts);

struct JitOptions {
  // Constant blinding against JIT spraying (the kernel's bpf_jit_harden):
  // every immediate is emitted xor'ed with a random key and un-xor'ed at
  // run time. Shift counts (6 bits) and memory offsets are left as they
  // are, as in the kernel.
  bool blind_constants = false;
  // The JIT compiles only verified code; compile() refuses programs with
  // instructions no path reaches (the verifier would have) unless this is
  // set. Benchmarks of raw programs set it to say the caller knows the
  // program is unverified.
  bool unsafe_unverified = false;
  // Empty, or one per instruction slot of the program.
  std::vector<JitHint> hints;
  // The blinding keys' seed; 0: from the clock and the address space.
  uint64_t blinding_seed = 0;
};

// Where the native code of one eBPF instruction starts, for
// `ember disasm --jited` and for error messages.
struct JitLine {
  uint32_t insn;    // eBPF instruction index
  uint32_t offset;  // byte offset into code()
};

namespace jit {
struct Access;
}
class JitRunner;

class JitProgram {
 public:
  // `interp` supplies the helper bindings (and runs callbacks and tail
  // calls into programs that are not compiled); it must outlive the
  // JitProgram. Fails with a located message on an instruction the JIT
  // cannot compile.
  static Result<JitProgram> compile(const Interpreter& interp, const JitOptions& opts = {});

  JitProgram(JitProgram&&) noexcept;
  JitProgram& operator=(JitProgram&&) noexcept;
  ~JitProgram();

  // Runs the program once: r0. Unchecked (verified code only), like the
  // interpreter's fast mode: opts.checked, insn_budget and trace are not
  // used; call depth and tail-call limits are reported like the fast mode's.
  // Callbacks (bpf_loop, bpf_for_each_map_elem) run in this JIT code; a
  // tail call continues in the target's JIT code when
  // opts.helper_env->jit_program() has one, else in the interpreter's fast
  // mode.
  Result<uint64_t> run(const RunInput& in, const RunOptions& opts = {}) const;

  // The whole code: an entry trampoline, then the instructions (lines()),
  // then out-of-line paths.
  std::span<const uint8_t> code() const;
  std::span<const JitLine> lines() const;
  const Program& program() const;

 private:
  friend struct jit::Access;
  friend class JitRunner;
  struct Impl;
  explicit JitProgram(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One program run many times on one thread (a probe on every hit, a
// benchmark loop): the run's frame, stacks and options are set up once, so
// that a run costs little more than the program. Same semantics as
// JitProgram::run in fast mode. Not reentrant: one run at a time (a probe
// that fires inside its own program's helper must be skipped by the
// caller). The program must outlive the runner.
class JitRunner {
 public:
  // opts: helper_env, attach_cookie, func_ip, trace_out, random_seed are
  // used (checked mode and tracing are not: verified code only).
  JitRunner(const JitProgram& prog, const RunOptions& opts);
  ~JitRunner();
  JitRunner(const JitRunner&) = delete;
  JitRunner& operator=(const JitRunner&) = delete;

  // r0, or the error the run ended with. `in` must stay valid during it.
  // Inline: a run of a program without tail calls or packet loads is one
  // call into the JIT code's lean entry and a test of the error word.
  Result<uint64_t> run(const RunInput& in) {
    if (slow_) [[unlikely]]
      return run_slow(in);
    frame_->input = &in;
    const uint64_t r0 = entry0_(frame_, reinterpret_cast<uint64_t>(in.ctx), in.ctx_size);
    if (*err_kind_ != 0) [[unlikely]]
      return failed();
    return r0;
  }
  // What bpf_get_attach_cookie and bpf_get_func_ip return from now on.
  void set_attach(uint64_t cookie, uint64_t func_ip);

 private:
  struct State;
  Result<uint64_t> run_slow(const RunInput& in);
  [[gnu::noinline, gnu::cold]] Result<uint64_t> failed();
  const JitProgram* prog_;
  std::unique_ptr<State> s_;
  // Copies of what run() needs from s_, so that it reads no more than this.
  HelperCall* frame_;
  uint64_t (*entry0_)(HelperCall* frame, uint64_t r1, uint64_t r2);
  const uint32_t* err_kind_;
  bool slow_;  // the code may tail-call or load packet bytes: run_slow()
};

}  // namespace ember
