// JitProgram: compile (codegen + sealed code memory) and run (the entry
// trampoline on a JitFrame). Callbacks and tail calls are nested runs on the
// caller's frame: HelperCall::invoke reaches call_function() below through
// HelperCall::runner, and tail_call_thunk() is what JIT code calls after a
// successful bpf_tail_call. A tail call continues in the target's JIT code
// when the environment has one (HelperEnv::jit_program), else in the
// interpreter's fast mode (Interpreter::run_tail_call).
#include <sstream>

#include "ember/asm.hpp"
#include "ember/jit.hpp"
#include "jit/codegen.hpp"
#include "jit/exec_memory.hpp"
#include "jit/jit_frame.hpp"

namespace ember {

struct JitProgram::Impl final : FunctionRunner {
  using EntryFn = uint64_t (*)(HelperCall* frame, const void* code);
  using Entry0Fn = uint64_t (*)(HelperCall* frame, uint64_t r1, uint64_t r2);

  const Interpreter* interp = nullptr;
  jit::ExecMemory mem;
  EntryFn entry = nullptr;
  Entry0Fn entry0 = nullptr;  // runs from instruction 0 (Codegen::emit_lean_entry)
  bool may_tail_call = false;
  bool uses_packet = false;
  std::vector<JitLine> lines;
  std::vector<uint64_t> code_table;  // per instruction slot: its code's address, 0 if not compiled

  // enter(): a run from instruction pc on frame f, setting up every field of
  // its state; execute(): a run nested in a run on f (callbacks, tail calls),
  // whose state it saves and restores around enter().
  // pc kProgramStart: a run of the program from instruction 0 with r1 and
  // r2 set, r3-r5 zero (a run, a tail call), through the lean entry; else
  // a call of the function at pc with r1-r5 (callbacks).
  static constexpr size_t kProgramStart = ~size_t{0};
  Result<uint64_t> execute(jit::JitFrame& f, size_t pc, const uint64_t args[5], int frames_below) const;
  Result<uint64_t> enter(jit::JitFrame& f, size_t pc, const uint64_t args[5], int frames_below) const;
  Result<uint64_t> call_function(HelperCall& parent, size_t target, const uint64_t args[5]) const override;
  Error error_of(jit::JitFrame& f) const;
};

namespace jit {

struct Access {
  static Result<uint64_t> run(const JitProgram& p, const RunInput& in, const RunOptions& opts) {
    JitFrame f;
    f.env = opts.helper_env;
    f.trace_out = opts.trace_out;
    f.input = &in;
    f.options = &opts;
    f.attach_cookie = opts.attach_cookie;
    f.func_ip = opts.func_ip;
    f.prandom_state = opts.random_seed;  // 0: bpf_get_prandom_u32 seeds it from the clock on first use
    const uint64_t args[5] = {reinterpret_cast<uint64_t>(in.ctx), in.ctx_size, 0, 0, 0};
    return p.impl_->enter(f, JitProgram::Impl::kProgramStart, args,
                          0);  // the outermost run: no state to save
  }
  static Result<uint64_t> tail_call(const JitProgram& p, JitFrame& f, uint64_t ctx) {
    const uint64_t args[5] = {ctx, 0, 0, 0, 0};
    return p.impl_->execute(f, JitProgram::Impl::kProgramStart, args, f.depth);
  }
};

uint64_t tail_call_thunk(HelperCall* call) {
  auto& f = static_cast<JitFrame&>(*call);
  const Interpreter* target = f.tail_target;
  f.tail_target = nullptr;
  const int depth = f.depth;
  const JitProgram* jit = f.env ? f.env->jit_program(*target) : nullptr;
  Result<uint64_t> r =
      jit ? Access::tail_call(*jit, f, f.st.tail_ctx) : target->run_tail_call(f, f.st.tail_ctx);
  f.depth = depth;  // the interpreter leaves its own depth there
  if (!r) {
    f.nested_error = r.error();
    f.st.err_kind = kErrNested;
    return 0;
  }
  return *r;
}

}  // namespace jit

namespace {

std::string hex(uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

}  // namespace

Error JitProgram::Impl::error_of(jit::JitFrame& f) const {
  const Program& prog = interp->program();
  const uint32_t pc = f.st.err_insn;
  auto at = [&](const std::string& what) {
    return fail("instruction ", pc, " (", disassemble_insn(prog.insts[pc], pc), "): ", what);
  };
  switch (f.st.err_kind) {
    case jit::kErrTooDeep:
      return at("call depth exceeds " + std::to_string(kMaxCallFrames) + " frames (the kernel's limit)");
    case jit::kErrCallx: {
      uint64_t v = f.st.err_value;
      if ((v & kFuncAddrMask) == kFuncAddrTag)
        return at("callx to " + hex(v) + ", not an instruction of this program");
      return at("callx to " + hex(v) + ": neither a helper id nor a function");
    }
    case jit::kErrNested: {
      Error e = f.nested_error ? *f.nested_error : fail("tail call failed");
      f.nested_error.reset();
      return e;
    }
    default:
      if (pc < prog.insts.size()) return at("reached an instruction the JIT hints said was dead");
      return fail("JIT code reached instruction ", pc, ", which is not in the program");
  }
}

Result<uint64_t> JitProgram::Impl::enter(jit::JitFrame& f, size_t pc, const uint64_t args[5],
                                         int frames_below) const {
  alignas(16) uint8_t stack[kMaxCallFrames * kStackSize];
  f.st.err_kind = jit::kErrNone;
  f.st.err_insn = 0;
  f.st.err_value = 0;
  f.st.tail_ctx = 0;
  f.st.code_table = code_table.data();
  f.st.n_insns = code_table.size();
  auto helpers = interp->helpers_by_id();
  f.st.helpers = helpers.data();
  f.st.n_helpers = helpers.size();
  f.st.packet = f.input->packet.data();
  f.st.packet_len = f.input->packet.size();
  for (int r = 0; r < 5; ++r) f.st.args[r] = args[r];
  f.st.fp = reinterpret_cast<uint64_t>(stack) + sizeof stack;
  f.depth = frames_below;
  f.interp = interp;
  f.runner = this;
  // The lean entry falls into instruction 0 when it can: it must be called
  // as a C function (the trampoline's callees start at another stack
  // alignment).
  const uint64_t r0 = pc == kProgramStart ? entry0(&f, args[0], args[1])
                                          : entry(&f, reinterpret_cast<const void*>(code_table[pc]));
  if (f.st.err_kind != jit::kErrNone) [[unlikely]]
    return error_of(f);
  return r0;
}

Result<uint64_t> JitProgram::Impl::execute(jit::JitFrame& f, size_t pc, const uint64_t args[5],
                                           int frames_below) const {
  if (frames_below >= kMaxCallFrames)
    return fail("call depth exceeds ", kMaxCallFrames, " frames (the kernel's limit), counting callbacks");
  const jit::JitState saved = f.st;
  const int saved_depth = f.depth;
  const Interpreter* const saved_interp = f.interp;
  const FunctionRunner* const saved_runner = f.runner;
  Result<uint64_t> out = enter(f, pc, args, frames_below);
  f.st = saved;
  f.depth = saved_depth;
  f.interp = saved_interp;
  f.runner = saved_runner;
  return out;
}

Result<uint64_t> JitProgram::Impl::call_function(HelperCall& parent, size_t target,
                                                 const uint64_t args[5]) const {
  if (target >= code_table.size() || !code_table[target])
    return fail("callback at instruction ", target, " is not an instruction of the program");
  return execute(static_cast<jit::JitFrame&>(parent), target, args, parent.depth + 1);
}

struct JitRunner::State {
  RunOptions opts;
  jit::JitFrame f;
  JitProgram::Impl::Entry0Fn entry0;
  alignas(16) uint8_t stack[kMaxCallFrames * kStackSize];

  // What a successful run leaves as it found it (calls restore the depth,
  // nested runs their interpreter and runner, the tail-call thunk its
  // target) and an error exit may not: set before the first run and after
  // each error.
  void reset(const JitProgram::Impl& impl) {
    f.depth = 0;
    f.tail_target = nullptr;
    f.interp = impl.interp;
    f.runner = &impl;
    f.st.tail_ctx = 0;
    f.st.err_kind = jit::kErrNone;
    f.nested_error.reset();
  }
};

JitRunner::JitRunner(const JitProgram& prog, const RunOptions& opts)
    : prog_(&prog), s_(std::make_unique<State>()) {
  State& s = *s_;
  s.opts.checked = false;
  s.opts.helper_env = opts.helper_env;
  s.opts.trace_out = opts.trace_out;
  s.opts.random_seed = opts.random_seed;
  jit::JitFrame& f = s.f;
  f.env = opts.helper_env;
  f.trace_out = opts.trace_out;
  f.options = &s.opts;
  f.prandom_state = opts.random_seed;
  set_attach(opts.attach_cookie, opts.func_ip);
  const JitProgram::Impl& impl = *prog.impl_;
  f.st.code_table = impl.code_table.data();
  f.st.n_insns = impl.code_table.size();
  auto helpers = impl.interp->helpers_by_id();
  f.st.helpers = helpers.data();
  f.st.n_helpers = helpers.size();
  for (uint64_t& a : f.st.args) a = 0;
  f.st.fp = reinterpret_cast<uint64_t>(s.stack) + sizeof s.stack;
  f.st.packet = nullptr;
  f.st.packet_len = 0;
  f.input = nullptr;
  f.tail_calls = 0;
  s.entry0 = impl.entry0;
  s.reset(impl);
  frame_ = &f;
  entry0_ = impl.entry0;
  err_kind_ = &f.st.err_kind;
  slow_ = impl.may_tail_call || impl.uses_packet;
}

JitRunner::~JitRunner() = default;

void JitRunner::set_attach(uint64_t cookie, uint64_t func_ip) {
  s_->opts.attach_cookie = s_->f.attach_cookie = cookie;
  s_->opts.func_ip = s_->f.func_ip = func_ip;
}

// run() (jit.hpp) when the code may tail-call or load packet bytes: the
// tail-call count and the packet are per run.
Result<uint64_t> JitRunner::run_slow(const RunInput& in) {
  State& s = *s_;
  jit::JitFrame& f = s.f;
  f.input = &in;
  f.tail_calls = 0;
  f.st.packet = in.packet.data();
  f.st.packet_len = in.packet.size();
  const uint64_t r0 = s.entry0(&f, reinterpret_cast<uint64_t>(in.ctx), in.ctx_size);
  if (f.st.err_kind != jit::kErrNone) [[unlikely]]
    return failed();
  return r0;
}

// Out of line and cold, so that the inline run() stays small.
Result<uint64_t> JitRunner::failed() {
  const JitProgram::Impl& impl = *prog_->impl_;
  Error e = impl.error_of(s_->f);
  s_->reset(impl);
  return e;
}

JitProgram::JitProgram(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JitProgram::JitProgram(JitProgram&&) noexcept = default;
JitProgram& JitProgram::operator=(JitProgram&&) noexcept = default;
JitProgram::~JitProgram() = default;

std::vector<JitHint> jit_hints(std::span<const InsnFacts> facts) {
  std::vector<JitHint> hints(facts.size());
  for (size_t i = 0; i < facts.size(); ++i) {
    hints[i].dead = !facts[i].reached;
    hints[i].nonzero_divisor = facts[i].reached && facts[i].divisor_nonzero;
    hints[i].divisor_not_minus_one = facts[i].reached && facts[i].divisor_not_minus_one;
  }
  return hints;
}

Result<JitProgram> JitProgram::compile(const Interpreter& interp, const JitOptions& opts) {
  const Program& prog = interp.program();
  if (prog.insts.empty()) return fail("JIT: the program is empty");
  if (!opts.hints.empty() && opts.hints.size() != prog.insts.size())
    return fail("JIT hints: ", opts.hints.size(), " given for ", prog.insts.size(), " instruction slots");
  jit::Codegen cg(prog, interp, opts);
  auto out = cg.generate();
  if (!out) return out.error();
  auto mem = jit::ExecMemory::create(out->code);
  if (!mem) return mem.error();
  auto impl = std::make_unique<Impl>();
  impl->interp = &interp;
  impl->mem = std::move(*mem);
  const auto base = reinterpret_cast<uint64_t>(impl->mem.data());
  impl->entry = reinterpret_cast<Impl::EntryFn>(base);  // the trampoline is at offset 0
  impl->entry0 = reinterpret_cast<Impl::Entry0Fn>(base + out->entry0_offset);
  impl->may_tail_call = out->may_tail_call;
  impl->uses_packet = out->uses_packet;
  impl->code_table.assign(prog.insts.size(), 0);
  for (size_t i = 0; i < prog.insts.size(); ++i)
    if (out->insn_offset[i] >= 0) impl->code_table[i] = base + static_cast<uint64_t>(out->insn_offset[i]);
  impl->lines = std::move(out->lines);
  return JitProgram(std::move(impl));
}

Result<uint64_t> JitProgram::run(const RunInput& in, const RunOptions& opts) const {
  if (opts.checked || opts.trace) [[unlikely]] {
    // Nested runs in the interpreter (tail calls into programs without JIT
    // code) run in its fast mode too. (A copy only then: RunOptions holds a
    // std::function.)
    RunOptions fast = opts;
    fast.checked = false;
    fast.trace = nullptr;
    return jit::Access::run(*this, in, fast);
  }
  return jit::Access::run(*this, in, opts);
}

std::span<const uint8_t> JitProgram::code() const { return {impl_->mem.data(), impl_->mem.size()}; }
std::span<const JitLine> JitProgram::lines() const { return impl_->lines; }
const Program& JitProgram::program() const { return impl_->interp->program(); }

}  // namespace ember
