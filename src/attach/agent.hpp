// The agent's work inside a traced process: load the object into a runtime
// that publishes its maps (so `ember trace` and `ember map dump` read them
// live), bind its probes, and attach a ProbeRunner to each probe site
// through the process's HookEngine; USDT sites also get libbpf's spec maps
// filled and their semaphores raised while attached. Detaching puts every
// byte back. The process glue (the constructor, the controller socket,
// fork) is agent_main.cpp; this part runs in any process, tests included.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/agent_config.hpp"
#include "attach/agent_probes.hpp"
#include "attach/hooks.hpp"
#include "attach/probe_runner.hpp"
#include "ember/result.hpp"
#include "ember/runtime.hpp"

namespace ember::attach {

struct AttachedProbe {
  std::string what;  // BoundProbe::describe()
  uintptr_t addr = 0;
  HookMethod method = HookMethod::Inline;
  int hook_id = -1;
  bool hooked = true;             // until the engine detached it
  uint16_t* semaphore = nullptr;  // USDT: raised while attached
  std::unique_ptr<ProbeRunner> runner;
};

class Agent {
 public:
  // Loads cfg.object_path (publishing its maps when `publish`), then binds
  // and attaches every probe through `engine`, which must outlive the
  // agent. A probe that cannot be attached is an entry of errors(); a
  // fatal error (the object does not load, nothing binds) is the Result's.
  static Result<std::unique_ptr<Agent>> start(const AgentConfig& cfg, HookEngine& engine,
                                              bool publish = true);

  const std::vector<AttachedProbe>& probes() const { return probes_; }
  const std::vector<std::string>& errors() const { return errors_; }
  Object& object() { return *obj_; }
  Runtime& runtime() { return *rt_; }

  // Runners off at once (a forked child that does not follow forks), before
  // anything else happens to the hooks.
  void disable();
  // Detaches every hook (once the engine says no call runs any more) and
  // lowers the semaphores it raised. Idempotent; the destructor calls it.
  Status detach();
  bool attached() const { return attached_; }
  ~Agent();

 private:
  Agent() = default;
  Status load(const AgentConfig& cfg, bool publish);
  void attach_all(std::vector<BoundProbe>& bound);
  void attach_one(const BoundProbe& b, uint64_t file_offset, uint64_t cookie, uint16_t* semaphore);
  Status fill_usdt_spec(const UsdtNote& note, uint32_t spec_id, uintptr_t ip);

  HookEngine* engine_ = nullptr;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<Object> obj_;
  std::vector<AttachedProbe> probes_;
  std::vector<std::string> errors_;
  bool attached_ = false;
};

}  // namespace ember::attach
