#include "cli/run_raw.hpp"

#include <array>
#include <cinttypes>
#include <cstdio>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/jit.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return 1;
}

// --trace: each executed instruction, then the registers it changed.
class TracePrinter {
 public:
  explicit TracePrinter(const Program& prog) : prog_(prog) {}
  void step(const TraceStep& s) {
    flush(s.regs);
    pending_ = true;
    pc_ = s.pc;
    frame_ = s.frame;
    std::copy(s.regs, s.regs + kNumRegs, before_.begin());
  }
  // Prints the pending instruction with what changed since it started.
  void flush(const uint64_t* now) {
    if (!pending_) return;
    std::printf("%5zu:%*s %-40s", pc_, frame_ * 2, "", disassemble_insn(prog_.insts[pc_], pc_).c_str());
    if (now)
      for (int r = 0; r < kNumRegs; ++r)
        if (now[r] != before_[r]) std::printf(" r%d=0x%" PRIx64, r, now[r]);
    std::printf("\n");
    pending_ = false;
  }

 private:
  const Program& prog_;
  bool pending_ = false;
  size_t pc_ = 0;
  int frame_ = 0;
  std::array<uint64_t, kNumRegs> before_{};
};

// The verifier's view of a raw run is bpf_conformance's: r1 points to
// exactly the bytes given (a constant size), r2 holds their count.
VerifyResult verify_raw(const Program& prog, const HelperTable& helpers, size_t mem_size) {
  VerifyInput in;
  in.mem_size = static_cast<int64_t>(mem_size);
  in.helpers = &helpers;
  return verify(prog, in);
}

std::string rejection(const LoadedCode& code, const VerifyResult& r) {
  std::string path;
  for (size_t i : r.path) path += (path.empty() ? "" : " -> ") + std::to_string(i);
  return code.origin + ": the verifier rejects it [" + std::string(reason_name(r.reason)) +
         "]: " + r.message + (r.state.empty() ? "" : "\n  state: " + r.state) +
         (path.empty() ? "" : "\n  path (branches decided at): " + path) +
         "\n  (--unverified runs it anyway, in the interpreter's checked mode)";
}

// The JIT for verified code; a program it cannot compile falls back to the
// interpreter's fast mode, and says so (never wrong code).
Result<uint64_t> run_verified(const Interpreter& interp, RunInput in, const RunOptions& opts, bool use_jit,
                              std::span<const InsnFacts> facts) {
  if (use_jit) {
    JitOptions jo;
    jo.hints = jit_hints(facts);  // what the verifier proved: dead code, safe divisors
    auto jit = JitProgram::compile(interp, jo);
    if (jit) return jit->run(in, opts);
    std::fprintf(stderr, "ember: note: the JIT cannot compile it (%s); running it in the interpreter\n",
                 jit.error().message.c_str());
  }
  return interp.run(in, opts);
}

}  // namespace

int run_raw(const LoadedCode& code, const RawRunOptions& o) {
  auto prog = decode(code.insns);
  if (!prog) return error(code.origin + ": " + prog.error().message);
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return error(code.origin + ": " + interp.error().message);
  VerifyResult verdict;
  if (!o.unverified) {
    verdict = verify_raw(*prog, helpers, o.mem.size());
    if (!verdict.ok) return error(rejection(code, verdict));
  }
  std::vector<uint8_t> mem = o.mem;  // the program may write to it
  RunInput in = RunInput::memory(mem);
  RunOptions opts;
  // Unverified code runs only in checked mode (every access bounded, a
  // budget of instructions); tracing needs it too.
  opts.checked = o.unverified || o.trace;
  opts.insn_budget = o.budget;
  if (o.seed) opts.random_seed = *o.seed;
  TracePrinter tracer(*prog);
  if (o.trace) opts.trace = [&](const TraceStep& s) { tracer.step(s); };
  auto r0 = opts.checked ? interp->run(in, opts) : run_verified(*interp, in, opts, !o.interp, verdict.facts);
  if (o.trace) tracer.flush(nullptr);  // the exit, or the instruction that faulted
  std::fflush(stdout);
  if (!r0) return error(code.origin + ": " + r0.error().message);
  std::printf("0x%" PRIx64 "\n", *r0);
  return 0;
}

}  // namespace ember::cli
