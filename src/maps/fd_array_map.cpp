// Arrays whose slots name other objects (kernel/bpf/arraymap.c, "fd
// arrays"): PROG_ARRAY (programs for bpf_tail_call), ARRAY_OF_MAPS (inner
// maps) and CGROUP_ARRAY (cgroups for bpf_current_task_under_cgroup).
// The host stores a program id, a map id or a cgroup fd, as the kernel's
// bpf() takes fds; a slot keeps the id (for cgroups: the cgroup
// directory's inode, which is the kernel's cgroup id).
#include <sys/stat.h>
#include <sys/vfs.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

constexpr size_t kSlotsOffset = shm::kHeaderSize;
constexpr uint64_t kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

class FdArrayMap final : public Map {
 public:
  FdArrayMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        slots_(reinterpret_cast<uint64_t*>(seg.base + kSlotsOffset)) {}

  int lookup(const void* key, void* value) const override {
    uint32_t i = index(key);
    if (i >= spec_.max_entries) return -ENOENT;
    uint64_t v = slot(i).load(std::memory_order_acquire);
    if (!v) return -ENOENT;
    uint32_t id = static_cast<uint32_t>(v);
    std::memcpy(value, &id, 4);
    return 0;
  }

  int update(const void* key, const void* value, uint64_t flags) override {
    if (flags != kBpfAny) return -EINVAL;  // bpf_fd_array_map_update_elem
    uint32_t i = index(key);
    if (i >= spec_.max_entries) return -E2BIG;
    uint32_t ref;
    std::memcpy(&ref, value, 4);
    auto v = resolve(ref);
    if (v < 0) return static_cast<int>(v);
    slot(i).store(static_cast<uint64_t>(v), std::memory_order_release);
    return 0;
  }

  int erase(const void* key) override {
    uint32_t i = index(key);
    if (i >= spec_.max_entries) return -E2BIG;
    return slot(i).exchange(0, std::memory_order_acq_rel) ? 0 : -ENOENT;
  }

  int next_key(const void* key, void* next) const override { return array_next_key(spec_, key, next); }

  // Programs look up inner maps only; the other kinds are reached through
  // their own helpers (slot()).
  void* prog_lookup(const void* key) override {
    uint32_t i = index(key);
    if (spec_.type != MapType::ArrayOfMaps || i >= spec_.max_entries || !resolver_) return nullptr;
    uint64_t v = slot(i).load(std::memory_order_acquire);
    return v ? resolver_->map_by_id(static_cast<uint32_t>(v)) : nullptr;
  }
  long prog_update(const void*, const void*, uint64_t) override { return -EINVAL; }
  long prog_delete(const void*) override { return -EINVAL; }

  uint64_t slot_value(uint32_t i) const {
    return i < spec_.max_entries ? slot(i).load(std::memory_order_acquire) : 0;
  }

 private:
  static uint32_t index(const void* key) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    return i;
  }
  std::atomic_ref<uint64_t> slot(uint32_t i) const { return std::atomic_ref<uint64_t>(slots_[i]); }

  // What a slot stores for the fd or id the host passed, or -errno.
  int64_t resolve(uint32_t ref) const {
    switch (spec_.type) {
      case MapType::ProgArray:
        return ref ? ref : -EBADF;  // program ids are checked when a tail call uses them
      case MapType::ArrayOfMaps: return resolve_inner_map(ref);
      case MapType::CgroupArray: return cgroup_id(static_cast<int>(ref));
      default: return -EINVAL;
    }
  }

  int64_t resolve_inner_map(uint32_t id) const {
    Map* inner = resolver_ ? resolver_->map_by_id(id) : nullptr;
    if (!inner) return -EBADF;
    return inner_map_compatible(spec_, inner->spec()) ? id : -EINVAL;
  }

  static int64_t cgroup_id(int fd) {
    struct statfs fs {};
    struct stat st {};
    if (fstatfs(fd, &fs) != 0 || fstat(fd, &st) != 0) return -EBADF;
    if (static_cast<uint64_t>(fs.f_type) != kCgroup2Magic || !S_ISDIR(st.st_mode)) return -EBADF;
    return static_cast<int64_t>(st.st_ino);
  }

  uint64_t* slots_;
};

Status check_fd_array(const MapSpec& s) {
  if (s.key_size != 4 || s.value_size != 4)
    return fail("map '", s.name, "': a ", map_type_name(s.type), " needs key_size 4 and value_size 4");
  if (s.max_entries == 0 || s.max_entries >= (1u << 28))
    return fail("map '", s.name, "': max_entries ", s.max_entries);
  if (s.type == MapType::ArrayOfMaps && !s.inner)
    return fail("map '", s.name, "': a map-in-map needs an inner map definition");
  return check_flags(s, map_flag::kNumaNode | map_flag::kRdonly | map_flag::kWronly | map_flag::kRdonlyProg |
                            map_flag::kWronlyProg | map_flag::kPreserveElems);
}

size_t fd_array_size(const MapSpec& s, uint32_t) {
  return shm::round_up(kSlotsOffset + 8ull * s.max_entries, shm::kPageSize);
}

MapPtr make_fd_array(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  return std::make_shared<FdArrayMap>(s, seg, ncpus);
}

}  // namespace

// bpf_map_meta_equal: inner maps must match the template in everything but
// max_entries (which must match too unless the template says
// BPF_F_INNER_MAP).
bool inner_map_compatible(const MapSpec& outer, const MapSpec& inner) {
  const MapSpec* t = outer.inner.get();
  if (!t) return false;
  uint32_t flags_mask = ~map_flag::kInnerMap;
  return t->type == inner.type && t->key_size == inner.key_size && t->value_size == inner.value_size &&
         (t->map_flags & flags_mask) == (inner.map_flags & flags_mask) &&
         ((t->map_flags & map_flag::kInnerMap) || t->max_entries == inner.max_entries);
}

uint64_t fd_array_slot(const Map& m, uint32_t index) {
  auto* a = dynamic_cast<const FdArrayMap*>(&m);
  return a ? a->slot_value(index) : 0;
}

const MapImpl kProgArrayImpl = {MapType::ProgArray, check_fd_array, fd_array_size, make_fd_array};
const MapImpl kArrayOfMapsImpl = {MapType::ArrayOfMaps, check_fd_array, fd_array_size, make_fd_array};
const MapImpl kCgroupArrayImpl = {MapType::CgroupArray, check_fd_array, fd_array_size, make_fd_array};

}  // namespace ember::maps
