// The probe runner: runs one loaded, verified probe program (type kprobe:
// sections uprobe, uretprobe, usdt) on the registers of a thread that hit
// its probe, as the kernel runs a uprobe's program on its struct pt_regs.
//
// One runner per attachment: the program, what bpf_get_attach_cookie and
// bpf_get_func_ip return there, and the engine, all decided once at
// create(); run() is the hot path (no allocation, no lock, no copy of
// RunOptions) and never throws or fails into the traced thread: a program
// that fails at run time is counted and its message kept for the report.
//
//   auto r = ProbeRunner::create(*prog, {.cookie = spec_id, .func_ip = addr});
//   engine.attach(addr, HookKind::Entry, &ProbeRunner::hook, r->get());
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "attach/pt_regs.hpp"
#include "ember/result.hpp"
#include "ember/runtime.hpp"

namespace ember::attach {

struct ProbeAttachInfo {
  uint64_t cookie = 0;   // bpf_get_attach_cookie (USDT: the spec id)
  uint64_t func_ip = 0;  // bpf_get_func_ip: the probed address
};

class ProbeRunner {
 public:
  // Fails, saying why, unless `prog` is a verified kprobe-type program that
  // `engine` runs unchecked on a read-only struct pt_regs (Prog::plan):
  // probes never run in checked mode, whose cost is no probe's to pay. With
  // Engine::Jit the program must have JIT code. `prog` must outlive the
  // runner.
  static Result<std::unique_ptr<ProbeRunner>> create(const Prog& prog, const ProbeAttachInfo& info,
                                                     Engine engine = Engine::Jit);

  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  // A HookFn: `self` is the runner.
  static void hook(void* self, PtRegs* regs) noexcept { static_cast<ProbeRunner*>(self)->run(regs); }

  // Runs the program once on `regs` (read-only to it). A run on a thread
  // already inside a probe program (its helper hit another probe) is
  // skipped and counted as missed, as the kernel does with bpf_prog_active.
  void run(PtRegs* regs) noexcept;

  // A runner that is off returns at once (a forked child that does not
  // follow forks turns its runners off before it restores the text).
  void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }

  // Frees every thread's JitRunners and deletes the pthread key that frees
  // them at thread exit. Only for an agent about to be unloaded, with every
  // runner destroyed and the process's other threads stopped outside the
  // agent: no probe may run afterwards.
  static void release_thread_lists();

  const Prog& prog() const { return *prog_; }
  Engine engine() const { return engine_; }
  const ProbeAttachInfo& info() const { return info_; }
  // Approximate when threads hit at once (a plain increment: a locked one
  // would cost every hit more than the rest of the counting).
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t missed() const { return missed_.load(std::memory_order_relaxed); }
  // The message of the first run that failed ("" if none).
  std::string first_error() const;

 private:
  ProbeRunner(const Prog& prog, const ProbeAttachInfo& info, Engine engine);
  void record_error(const Error& e) noexcept;
  // This thread's JitRunner for the program: its TLS cache slot, else the
  // slow path (created on the thread's first hit).
  inline JitRunner& thread_jit_runner();
  [[gnu::noinline]] JitRunner& thread_jit_runner_slow();

  const Prog* prog_;
  const JitProgram* jit_;  // null: the interpreter's fast mode
  const Interpreter* interp_;
  ProbeAttachInfo info_;
  Engine engine_;
  uint64_t serial_;  // names this runner's per-thread JitRunners
  // Cleared when the runner is destroyed: threads then drop their
  // JitRunners of it.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  RunOptions opts_;  // prepared once: unchecked, cookie, func_ip, the Prog's helper environment
  RunInput input_;   // what the program is planned for (Prog::plan); hits run on t_input, its equal
  std::atomic<bool> enabled_{true};
  std::atomic<uint64_t> hits_{0}, errors_{0}, missed_{0};
  mutable std::mutex error_mu_;
  std::string first_error_;
};

}  // namespace ember::attach
