// Runtime: the registry of maps and programs by id, and Prog, the helper
// environment of one loaded program.
#include "ember/runtime.hpp"

#include <unistd.h>

#include <cstdlib>

#include "helpers/cgroup_view.hpp"
#include "runtime/registry.hpp"

namespace ember {

Runtime::Runtime(RuntimeOptions opts)
    : opts_(opts), helpers_(default_helper_table()), cgroups_(std::make_unique<CgroupView>()) {
  if (opts_.trace_pipe_bytes) {
    // Without a pipe, printk output falls back to trace_out: not fatal.
    MapSpec spec{"trace_pipe", MapType::Ringbuf, 0, 0, opts_.trace_pipe_bytes, 0};
    if (auto m = create_map(spec)) trace_pipe_ = *m;
  }
}

Runtime::~Runtime() {
  if (opts_.publish) unpublish();
}

// Rewrites the published list; a failure only costs other processes the view.
void Runtime::republish() const {
  if (!opts_.publish) return;
  std::vector<PublishedMap> maps;
  std::vector<PublishedProg> progs;
  pid_t pid = getpid();
  for (const auto& [id, m] : maps_)
    maps.push_back({pid, id, m->fd(), std::string(map_type_name(m->type())),
                    m->spec().name.empty() ? "-" : m->spec().name});
  for (const auto& [id, p] : progs_)
    progs.push_back({pid, id, std::string(prog_type_name(p->type())), p->name(), p->section(),
                     8 * p->code().insts.size(), p->jit() ? p->jit()->code().size() : 0});
  (void)publish(maps, progs);
}

Result<MapPtr> Runtime::create_map(const MapSpec& spec, const std::string& pin_path) {
  MapOptions mo = opts_.maps;
  mo.pin_path = pin_path;
  auto m = Map::create(spec, mo);
  if (!m) return m.error();
  std::unique_lock lock(mu_);
  uint32_t id = next_map_id_++;
  (*m)->set_id(id);
  (*m)->set_resolver(this);
  maps_[id] = *m;
  map_ids_[m->get()] = id;
  republish();
  return *m;
}

Map* Runtime::map_by_id(uint32_t id) const {
  std::shared_lock lock(mu_);
  auto it = maps_.find(id);
  return it == maps_.end() ? nullptr : it->second.get();
}

MapPtr Runtime::map_ptr(uint32_t id) const {
  std::shared_lock lock(mu_);
  auto it = maps_.find(id);
  return it == maps_.end() ? nullptr : it->second;
}

std::vector<MapPtr> Runtime::maps() const {
  std::shared_lock lock(mu_);
  std::vector<MapPtr> out;
  for (const auto& [id, m] : maps_) out.push_back(m);
  return out;
}

bool Runtime::owns_map(const void* ptr) const {
  std::shared_lock lock(mu_);
  return map_ids_.count(ptr) != 0;
}

void Runtime::release_map(uint32_t id) {
  std::unique_lock lock(mu_);
  auto it = maps_.find(id);
  if (it == maps_.end()) return;
  map_ids_.erase(it->second.get());
  maps_.erase(it);
  republish();
}

const Prog* Runtime::prog_by_id(uint32_t id) const {
  std::shared_lock lock(mu_);
  auto it = progs_.find(id);
  return it == progs_.end() ? nullptr : it->second;
}

std::vector<const Prog*> Runtime::progs() const {
  std::shared_lock lock(mu_);
  std::vector<const Prog*> out;
  for (const auto& [id, p] : progs_) out.push_back(p);
  return out;
}

uint32_t Runtime::add_prog(const Prog* p) {
  std::unique_lock lock(mu_);
  uint32_t id = next_prog_id_++;
  progs_[id] = p;
  prog_interps_[&p->interpreter()] = p;
  republish();
  return id;
}

const Prog* Runtime::prog_by_interpreter(const Interpreter* interp) const {
  std::shared_lock lock(mu_);
  auto it = prog_interps_.find(interp);
  return it == prog_interps_.end() ? nullptr : it->second;
}

void Runtime::prog_changed() const {
  std::unique_lock lock(mu_);
  republish();
}

void Runtime::release_prog(uint32_t id) {
  std::unique_lock lock(mu_);
  if (auto it = progs_.find(id); it != progs_.end()) prog_interps_.erase(&it->second->interpreter());
  progs_.erase(id);
  republish();
}

std::string_view engine_name(Engine e) { return e == Engine::Jit ? "jit" : "interpreter"; }

namespace {

// A kprobe program's context is the kernel's x86-64 struct pt_regs (168
// bytes, read-only; the verifier checks its reads against that layout, and
// uprobes, uretprobes and USDT probes run on one): given at least that many
// read-only bytes, and at least what the verifier saw it read, the input is
// what the verifier assumed.
constexpr uint64_t kPtRegsBytes = 168;

bool context_is_faithful(ProgType type, const VerifyStats& stats, const RunInput& in) {
  if (in.ctx_size < stats.max_ctx_offset) return false;
  if (type == ProgType::Syscall) return true;
  return type == ProgType::Kprobe && in.ctx_size >= kPtRegsBytes && !in.ctx_writable;
}

}  // namespace

// The one decision both run() and plan() use. Unchecked only where the
// verifier's proof holds for this input.
RunPlan Prog::choose(const RunInput& in, const RunOptions& opts, Engine engine) const {
  bool faithful = context_is_faithful(type(), verify_stats_, in);
  if (!verified_ || !faithful || opts.checked || opts.trace) return {Engine::Interpreter, true, {}};
  if (engine == Engine::Interpreter || !jit_) return {Engine::Interpreter, false, {}};
  return {Engine::Jit, false, {}};
}

RunPlan Prog::plan(const RunInput& in, const RunOptions& opts, Engine engine) const {
  RunPlan p = choose(in, opts, engine);
  if (p.engine == Engine::Jit) return p;
  if (!verified_)
    p.why = "not verified";
  else if (opts.checked || opts.trace)
    p.why = "checked mode asked for";
  else if (type() != ProgType::Syscall && type() != ProgType::Kprobe)
    p.why = "the verifier's context for " + std::string(prog_type_name(type())) +
            " programs is not built yet; only syscall and kprobe programs run unchecked";
  else if (type() == ProgType::Kprobe && (in.ctx_size < kPtRegsBytes || in.ctx_writable))
    p.why = "a kprobe program runs unchecked only on a read-only struct pt_regs (" +
            std::to_string(kPtRegsBytes) + " bytes); the context has " + std::to_string(in.ctx_size) +
            (in.ctx_writable ? " writable bytes" : " bytes");
  else if (p.checked)
    p.why = "the context has " + std::to_string(in.ctx_size) + " bytes, the program reads up to " +
            std::to_string(verify_stats_.max_ctx_offset);
  else
    p.why = engine == Engine::Interpreter ? "the interpreter asked for" : jit_error_;
  return p;
}

Result<uint64_t> Prog::run(const RunInput& in, RunOptions opts, Engine engine) const {
  opts.helper_env = const_cast<Prog*>(this);
  RunPlan p = choose(in, opts, engine);
  opts.checked = p.checked;
  auto r = p.engine == Engine::Jit ? jit_->run(in, opts) : interp_->run(in, opts);
  if (r) return r;
  // Faults name "instruction N (...)": add N's C source line when BTF has it.
  const std::string& msg = r.error().message;
  size_t at = msg.find("instruction ");
  if (at == std::string::npos) return r;
  size_t pc = std::strtoull(msg.c_str() + at + 12, nullptr, 10);
  std::string where = obj_->file().where(linked_, pc);
  if (where.empty()) return r;
  return fail(msg, "\n  at", where);
}

Map* Prog::map_at(uint64_t ptr) const {
  return rt_->owns_map(reinterpret_cast<const void*>(ptr)) ? reinterpret_cast<Map*>(ptr) : nullptr;
}

void Prog::grant_static(MemoryGuard& guard) const {
  for (const MemRegion& r : static_regions_)
    guard.grant(reinterpret_cast<const void*>(r.start), r.size, r.writable);
}

// A verified program tail-calls only verified ones, as the kernel's prog
// arrays hold only loaded (verified) programs: the target runs in the
// caller's mode, unchecked when the caller is (interpreter or JIT).
const Interpreter* Prog::program_by_id(uint32_t id) const {
  const Prog* p = rt_->prog_by_id(id);
  if (!p || (verified_ && !p->verified_)) return nullptr;
  return &p->interpreter();
}

const JitProgram* Prog::jit_program(const Interpreter& prog) const {
  const Prog* p = rt_->prog_by_interpreter(&prog);
  return p ? p->jit() : nullptr;
}

}  // namespace ember
