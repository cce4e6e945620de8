#include "attach/probe_runner.hpp"

namespace ember::attach {
namespace {

// Set while this thread runs a probe program. Per-thread state is what a
// probe on a thread needs (a helper that calls malloc while malloc is
// probed must not recurse); initial-exec TLS costs one load, and the agent
// needs one byte of the static TLS glibc keeps for libraries loaded later.
[[gnu::tls_model("initial-exec")]] thread_local bool t_in_probe = false;

}  // namespace

Result<std::unique_ptr<ProbeRunner>> ProbeRunner::create(const Prog& prog, const ProbeAttachInfo& info,
                                                         Engine engine) {
  if (prog.type() != ProgType::Kprobe)
    return fail("program '", prog.name(), "' (section '", prog.section(), "') is a ",
                prog_type_name(prog.type()),
                " program; probes run kprobe-type programs (uprobe, uretprobe, usdt)");
  auto runner = std::unique_ptr<ProbeRunner>(new ProbeRunner(prog, info, engine));
  RunPlan plan = prog.plan(runner->input_, runner->opts_, engine);
  if (plan.checked || plan.engine != engine)
    return fail("program '", prog.name(), "' cannot run as a probe in the ", engine_name(engine), ": ",
                plan.why);
  runner->jit_ = plan.engine == Engine::Jit ? prog.jit() : nullptr;
  return runner;
}

ProbeRunner::ProbeRunner(const Prog& prog, const ProbeAttachInfo& info, Engine engine)
    : prog_(&prog), jit_(nullptr), interp_(&prog.interpreter()), info_(info), engine_(engine) {
  opts_.checked = false;
  opts_.helper_env = const_cast<Prog*>(&prog);  // helpers take a mutable env; Prog's are const inside
  opts_.attach_cookie = info.cookie;
  opts_.func_ip = info.func_ip;
  input_.ctx_size = sizeof(PtRegs);
  input_.ctx_writable = false;
}

void ProbeRunner::run(PtRegs* regs) noexcept {
  if (!enabled_.load(std::memory_order_relaxed)) [[unlikely]]
    return;
  if (t_in_probe) [[unlikely]] {
    missed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t_in_probe = true;
  hits_.store(hits_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  try {
    RunInput in = input_;
    in.ctx = regs;
    Result<uint64_t> r = jit_ ? jit_->run(in, opts_) : interp_->run(in, opts_);
    if (!r) [[unlikely]]
      record_error(r.error());
  } catch (...) {  // out of memory building an error message: nothing may reach the traced code
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  t_in_probe = false;
}

void ProbeRunner::record_error(const Error& e) noexcept {
  errors_.fetch_add(1, std::memory_order_relaxed);
  try {
    std::lock_guard lock(error_mu_);
    if (first_error_.empty()) first_error_ = e.message;
  } catch (...) {  // the count stays; the message is lost
  }
}

std::string ProbeRunner::first_error() const {
  std::lock_guard lock(error_mu_);
  return first_error_;
}

}  // namespace ember::attach
