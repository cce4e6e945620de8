#include "attach/agent.hpp"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <cctype>

#include "attach/symbols.hpp"

namespace ember::attach {
namespace {

// Where calls to an IFUNC symbol go in this process: the implementation its
// resolver picked for this CPU when the dynamic loader bound it (strlen ->
// __strlen_avx2). dlsym does that same resolution. (Kernel uprobes placed
// by libbpf 1.1 never get here: it accepts only STT_FUNC symbols, so an
// IFUNC name is "not found" there.)
Result<uintptr_t> ifunc_implementation(const BoundProbe& b) {
  std::string name = b.spec.symbol, version;
  if (size_t at = name.find('@'); at != std::string::npos) {
    version = name.substr(name.find_first_not_of('@', at));
    name.resize(at);
  }
  char exe[PATH_MAX];
  bool main_program = realpath("/proc/self/exe", exe) && b.binary == exe;
  void* h = main_program ? dlopen(nullptr, RTLD_LAZY) : dlopen(b.binary.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return fail("IFUNC ", b.spec.symbol, ": ", b.binary, " is not loaded here");
  void* impl = version.empty() ? dlsym(h, name.c_str()) : dlvsym(h, name.c_str(), version.c_str());
  dlclose(h);
  if (!impl) return fail("IFUNC ", b.spec.symbol, ": the dynamic loader does not resolve it in ", b.binary);
  return reinterpret_cast<uintptr_t>(impl);
}

}  // namespace

Result<std::unique_ptr<Agent>> Agent::start(const AgentConfig& cfg, HookEngine& engine, bool publish) {
  auto a = std::unique_ptr<Agent>(new Agent());
  a->engine_ = &engine;
  if (auto st = a->load(cfg, publish); !st) return st.error();
  auto bound = bind_probes(*a->obj_, cfg.probes);
  if (!bound) return bound.error();
  a->attach_all(*bound);
  a->attached_ = true;
  return a;
}

Status Agent::load(const AgentConfig& cfg, bool publish) {
  RuntimeOptions ro;
  ro.publish = publish;
  rt_ = std::make_unique<Runtime>(ro);
  auto obj = Object::open_file(*rt_, cfg.object_path);
  if (!obj) return obj.error();
  obj_ = std::move(*obj);
  if (auto st = obj_->load(); !st) return fail(cfg.object_path, ": ", st.error().message);
  return ok_status();
}

void Agent::attach_all(std::vector<BoundProbe>& bound) {
  uint32_t next_spec_id = 0;
  for (const BoundProbe& b : bound) {
    if (!b.spec.usdt) {
      attach_one(b, b.file_offset, 0, nullptr);
      continue;
    }
    for (const UsdtNote& note : b.usdt_sites) {
      uint16_t* sem = nullptr;
      if (note.semaphore_file_offset) {
        auto addr = file_offset_to_address(b.binary, note.semaphore_file_offset, 0, MappingUse::Data);
        if (!addr) {
          errors_.push_back(b.describe() + ": semaphore: " + addr.error().message);
          continue;
        }
        sem = reinterpret_cast<uint16_t*>(*addr);
      }
      auto ip = file_offset_to_address(b.binary, note.pc_file_offset);
      if (!ip) {
        errors_.push_back(b.describe() + ": " + ip.error().message);
        continue;
      }
      uint32_t id = next_spec_id++;
      if (auto st = fill_usdt_spec(note, id, *ip); !st) {
        errors_.push_back(b.describe() + ": " + st.error().message);
        continue;
      }
      attach_one(b, note.pc_file_offset, id, sem);
    }
  }
}

// libbpf's usdt.bpf.h finds a site's argument spec by the attach cookie
// (the spec id) in __bpf_usdt_specs, or, without cookies, by the probed ip
// in __bpf_usdt_ip_to_spec_id: both are filled.
Status Agent::fill_usdt_spec(const UsdtNote& note, uint32_t spec_id, uintptr_t ip) {
  Map* specs = obj_->map("__bpf_usdt_specs");
  if (!specs) return fail("the object has no __bpf_usdt_specs map (include <bpf/usdt.bpf.h>)");
  std::vector<uint8_t> spec = encode_usdt_spec(note, 0);
  if (specs->spec().value_size != spec.size())
    return fail("__bpf_usdt_specs values are ", specs->spec().value_size, " bytes, not ", spec.size());
  if (int rc = specs->update(&spec_id, spec.data(), kBpfAny); rc != 0)
    return fail("__bpf_usdt_specs[", spec_id, "]: error ", -rc, " (too many USDT sites for max_entries?)");
  if (Map* by_ip = obj_->map("__bpf_usdt_ip_to_spec_id")) {
    int64_t key = static_cast<int64_t>(ip);
    int32_t value = static_cast<int32_t>(spec_id);
    if (int rc = by_ip->update(&key, &value, kBpfAny); rc != 0)
      return fail("__bpf_usdt_ip_to_spec_id: error ", -rc);
  }
  return ok_status();
}

void Agent::attach_one(const BoundProbe& b, uint64_t file_offset, uint64_t cookie, uint16_t* semaphore) {
  auto addr = b.ifunc ? ifunc_implementation(b) : file_offset_to_address(b.binary, file_offset);
  if (!addr) {
    errors_.push_back(b.describe() + ": " + addr.error().message);
    return;
  }
  auto runner = ProbeRunner::create(*b.prog, {.cookie = cookie, .func_ip = *addr});
  if (!runner) {
    errors_.push_back(b.describe() + ": " + runner.error().message);
    return;
  }
  // Semaphores go up before the site is live: code guarded by one then
  // reaches the probe only once it can run.
  if (semaphore) __atomic_fetch_add(semaphore, 1, __ATOMIC_SEQ_CST);
  HookOptions opts;
  // A probe on a symbol's first byte is a function's entry, where the SysV
  // ABI says which registers carry values: the trampolines then save only
  // those (cheaper hits). Offsets, bare addresses and USDT sites can be any
  // instruction: every register is kept there.
  const std::string& sym = b.spec.symbol;
  opts.function_entry =
      !b.spec.usdt && b.spec.offset == 0 && !sym.empty() && !std::isdigit(static_cast<unsigned char>(sym[0]));
  auto id = engine_->attach(*addr, b.spec.kind, &ProbeRunner::hook, runner->get(), opts);
  if (!id) {
    if (semaphore) __atomic_fetch_sub(semaphore, 1, __ATOMIC_SEQ_CST);
    errors_.push_back(b.describe() + ": " + id.error().message);
    return;
  }
  probes_.push_back({.what = b.describe(),
                     .addr = *addr,
                     .method = engine_->method(*id),
                     .hook_id = *id,
                     .semaphore = semaphore,
                     .runner = std::move(*runner)});
}

void Agent::disable() {
  for (auto& p : probes_) p.runner->set_enabled(false);
}

Status Agent::detach() {
  if (!attached_) return ok_status();
  attached_ = false;
  std::string errors;
  for (auto& p : probes_) {
    p.runner->set_enabled(false);
    if (auto st = engine_->detach(p.hook_id); !st)
      errors += (errors.empty() ? "" : "\n") + st.error().message;
    else
      p.hooked = false;
    if (p.semaphore) __atomic_fetch_sub(p.semaphore, 1, __ATOMIC_SEQ_CST);
    p.semaphore = nullptr;
  }
  if (!errors.empty()) return Error{errors};
  return ok_status();
}

Agent::~Agent() {
  (void)detach();
  // A hook that would not detach may still call its runner: the runner
  // (off, so it touches nothing else) must outlive the process.
  for (auto& p : probes_)
    if (p.hooked) (void)p.runner.release();
}

}  // namespace ember::attach
