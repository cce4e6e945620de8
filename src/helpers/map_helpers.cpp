// Helpers that work on maps and on program control flow through them:
// lookup/update/delete, push/pop/peek, bpf_for_each_map_elem, bpf_loop,
// bpf_tail_call and bpf_current_task_under_cgroup. Semantics follow
// kernel/bpf/helpers.c, bpf_iter.c and the x86 JIT's tail call.
#include <cerrno>
#include <chrono>
#include <string>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "helpers/cgroup_view.hpp"
#include "maps/map_impl.hpp"

namespace ember {

Map* HelperCall::map(uint64_t ptr, const char* what) {
  if (!guard) return reinterpret_cast<Map*>(ptr);  // verified: the verifier proved it is a map
  Map* m = env ? env->map_at(ptr) : nullptr;
  if (!m && fault.empty())
    fault = std::string(what) + ": " + std::to_string(ptr) + " is not a map of this program";
  return m;
}

namespace {

constexpr ArgType A = ArgType::Anything;
constexpr ArgType N = ArgType::None;
constexpr ArgType M = ArgType::ConstMapPtr;
constexpr int kMaxTailCalls = 33;           // MAX_TAIL_CALL_CNT
constexpr uint64_t kMaxLoops = 1ull << 23;  // BPF_MAX_LOOPS

uint64_t err(int e) { return static_cast<uint64_t>(static_cast<int64_t>(-e)); }
uint64_t ret(long r) { return static_cast<uint64_t>(static_cast<int64_t>(r)); }
const void* ptr(uint64_t v) { return reinterpret_cast<const void*>(v); }

bool is_map_of_maps(const Map& m) {
  return m.type() == MapType::ArrayOfMaps || m.type() == MapType::HashOfMaps;
}

uint64_t map_lookup_elem(HelperCall& c, uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_map_lookup_elem map");
  if (!m || !c.check(key, m->spec().key_size, false, "bpf_map_lookup_elem key")) return 0;
  void* v = m->prog_lookup(ptr(key));
  // Checked mode: the program may use the value it was handed, read-only if
  // the map is BPF_F_RDONLY_PROG. Inner maps are handles, not memory.
  if (v && c.guard && !is_map_of_maps(*m))
    c.guard->grant(v, m->spec().value_size, !(m->spec().map_flags & map_flag::kRdonlyProg));
  return reinterpret_cast<uint64_t>(v);
}

uint64_t map_update_elem(HelperCall& c, uint64_t map, uint64_t key, uint64_t value, uint64_t flags,
                         uint64_t) {
  Map* m = c.map(map, "bpf_map_update_elem map");
  if (!m || !c.check(key, m->spec().key_size, false, "bpf_map_update_elem key") ||
      !c.check(value, m->spec().value_size, false, "bpf_map_update_elem value"))
    return err(EFAULT);
  return ret(m->prog_update(ptr(key), ptr(value), flags));
}

uint64_t map_delete_elem(HelperCall& c, uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_map_delete_elem map");
  if (!m || !c.check(key, m->spec().key_size, false, "bpf_map_delete_elem key")) return err(EFAULT);
  return ret(m->prog_delete(ptr(key)));
}

uint64_t map_push_elem(HelperCall& c, uint64_t map, uint64_t value, uint64_t flags, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_map_push_elem map");
  if (!m || !c.check(value, m->spec().value_size, false, "bpf_map_push_elem value")) return err(EFAULT);
  return ret(m->prog_push(ptr(value), flags));
}

uint64_t map_pop_elem(HelperCall& c, uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_map_pop_elem map");
  if (!m || !c.check(value, m->spec().value_size, true, "bpf_map_pop_elem value")) return err(EFAULT);
  return ret(m->prog_pop(reinterpret_cast<void*>(value)));
}

uint64_t map_peek_elem(HelperCall& c, uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_map_peek_elem map");
  if (!m || !c.check(value, m->spec().value_size, true, "bpf_map_peek_elem value")) return err(EFAULT);
  return ret(m->prog_peek(reinterpret_cast<void*>(value)));
}

// Runs a callback; a fault inside it ends the whole run (checked mode).
bool run_callback(HelperCall& c, uint64_t fn, const uint64_t args[4], uint64_t* r0) {
  auto r = c.invoke(fn, args[0], args[1], args[2], args[3], 0);
  if (!r) {
    if (c.fault.empty()) c.fault = "in a callback: " + r.error().message;
    return false;
  }
  *r0 = *r;
  return true;
}

// bpf_for_each_map_elem(map, callback(map, key, value, ctx), ctx, flags):
// the number of elements visited; the callback returns 1 to stop.
uint64_t for_each_map_elem(HelperCall& c, uint64_t map, uint64_t fn, uint64_t cb_ctx, uint64_t flags,
                           uint64_t) {
  if (flags) return err(EINVAL);
  Map* m = c.map(map, "bpf_for_each_map_elem map");
  if (!m) return err(EINVAL);
  bool failed = false;
  long n = m->prog_for_each([&](const void* key, void* value) -> uint64_t {
    MemoryGuard::Saved saved{};
    if (c.guard) {
      saved = c.guard->save();
      c.guard->grant(key, m->spec().key_size, false);
      c.guard->grant(value, m->spec().value_size, !(m->spec().map_flags & map_flag::kRdonlyProg));
    }
    const uint64_t args[4] = {map, reinterpret_cast<uint64_t>(key), reinterpret_cast<uint64_t>(value),
                              cb_ctx};
    uint64_t r0 = 1;
    if (!run_callback(c, fn, args, &r0)) failed = true;
    if (c.guard) c.guard->restore(saved);
    return failed ? 1 : r0;
  });
  return failed ? err(EFAULT) : ret(n);
}

// bpf_loop(nr_loops, callback(index, ctx), ctx, flags): iterations run.
uint64_t loop(HelperCall& c, uint64_t nr_loops, uint64_t fn, uint64_t cb_ctx, uint64_t flags, uint64_t) {
  if (flags) return err(EINVAL);
  if (nr_loops > kMaxLoops) return err(E2BIG);
  for (uint64_t i = 0; i < nr_loops; ++i) {
    const uint64_t args[4] = {i, cb_ctx, 0, 0};
    uint64_t r0;
    if (!run_callback(c, fn, args, &r0)) return err(EFAULT);
    if (r0) return i + 1;
  }
  return nr_loops;
}

// bpf_tail_call(ctx, prog_array, index): on success the interpreter
// continues in the target and never comes back; on failure (empty slot,
// index out of range, 33 tail calls taken) the program goes on.
uint64_t tail_call(HelperCall& c, uint64_t, uint64_t map, uint64_t index, uint64_t, uint64_t) {
  Map* m = c.map(map, "bpf_tail_call prog array");
  if (!m || m->type() != MapType::ProgArray) return err(EINVAL);
  if (c.tail_calls >= kMaxTailCalls) return err(ENOENT);
  uint64_t id = maps::fd_array_slot(*m, static_cast<uint32_t>(index));
  if (index >= m->spec().max_entries || !id || !c.env) return err(ENOENT);
  const Interpreter* target = c.env->program_by_id(static_cast<uint32_t>(id));
  if (!target) return err(ENOENT);
  ++c.tail_calls;
  c.tail_target = target;
  return 0;
}

// bpf_current_task_under_cgroup(map, index): 1 if this process's cgroup is
// the one in the slot or below it, 0 if not, negative on error. The
// process's place comes from the runtime's CgroupView (kept between calls;
// see cgroup_view.hpp), or is looked up afresh without one.
uint64_t current_task_under_cgroup(HelperCall& c, uint64_t map, uint64_t index, uint64_t, uint64_t,
                                   uint64_t) {
  Map* m = c.map(map, "bpf_current_task_under_cgroup map");
  if (!m || m->type() != MapType::CgroupArray) return err(EINVAL);
  uint64_t want = maps::fd_array_slot(*m, static_cast<uint32_t>(index));
  if (index >= m->spec().max_entries) return err(E2BIG);
  if (!want) return err(EAGAIN);
  CgroupView* view = c.env ? c.env->cgroup_view() : nullptr;
  CgroupView fresh(std::chrono::milliseconds(0));
  Result<bool> under = (view ? view : &fresh)->under(want);
  if (!under) return err(ENOENT);
  return *under ? 1 : 0;
}

constexpr HelperDef kMapHelpers[] = {
    {1,
     "bpf_map_lookup_elem",
     {RetType::MapValueOrNull, {M, ArgType::PtrToMapKey, N, N, N}},
     map_lookup_elem},
    {2,
     "bpf_map_update_elem",
     {RetType::Integer, {M, ArgType::PtrToMapKey, ArgType::PtrToMapValue, A, N}},
     map_update_elem},
    {3, "bpf_map_delete_elem", {RetType::Integer, {M, ArgType::PtrToMapKey, N, N, N}}, map_delete_elem},
    {12, "bpf_tail_call", {RetType::Integer, {ArgType::PtrToCtx, M, A, N, N}}, tail_call},
    {37, "bpf_current_task_under_cgroup", {RetType::Integer, {M, A, N, N, N}}, current_task_under_cgroup},
    {87, "bpf_map_push_elem", {RetType::Integer, {M, ArgType::PtrToMapValue, A, N, N}}, map_push_elem},
    {88, "bpf_map_pop_elem", {RetType::Integer, {M, ArgType::PtrToUninitMapValue, N, N, N}}, map_pop_elem},
    {89, "bpf_map_peek_elem", {RetType::Integer, {M, ArgType::PtrToUninitMapValue, N, N, N}}, map_peek_elem},
    {164,
     "bpf_for_each_map_elem",
     {RetType::Integer, {M, ArgType::PtrToFunc, ArgType::PtrToStackOrNull, A, N}},
     for_each_map_elem},
    {181, "bpf_loop", {RetType::Integer, {A, ArgType::PtrToFunc, ArgType::PtrToStackOrNull, A, N}}, loop},
};

}  // namespace

std::span<const HelperDef> map_helpers() { return kMapHelpers; }

}  // namespace ember
