// BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY (kernel/bpf/arraymap.c): max_entries
// preallocated values of round_up(value_size, 8) bytes, indexed by a u32
// key; elements cannot be deleted. Per-CPU arrays keep one value per CPU.
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

// Offset of the values: page-aligned for mmapable arrays, so that another
// process (or a skeleton-style user) can mmap them directly.
size_t data_offset(const MapSpec& s) {
  return (s.map_flags & map_flag::kMmapable) ? shm::kPageSize : shm::kHeaderSize;
}

class ArrayMap final : public Map {
 public:
  ArrayMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        data_(seg.base + data_offset(spec)),
        stride_(value_stride(spec)),
        cpus_(percpu() ? ncpus : 1) {}

  int lookup(const void* key, void* value) const override {
    uint8_t* v = slot(key);
    if (!v) return -ENOENT;
    copy_out(v, static_cast<uint8_t*>(value));
    return 0;
  }

  int update(const void* key, const void* value, uint64_t flags) override {
    if (int e = check_update(key, flags)) return e;
    const uint8_t* in = static_cast<const uint8_t*>(value);
    uint8_t* v = slot(key);
    // Per-CPU values travel padded to 8 bytes each, padding included, as
    // the kernel's bpf_long_memcpy of round_up(value_size, 8) does.
    std::memcpy(v, in, cpus_ == 1 ? spec_.value_size : static_cast<size_t>(cpus_) * stride_);
    return 0;
  }

  int erase(const void*) override { return -EINVAL; }  // array elements always exist

  int next_key(const void* key, void* next) const override { return array_next_key(spec_, key, next); }

  uint8_t* mmap_data() override { return (spec_.map_flags & map_flag::kMmapable) ? data_ : nullptr; }

  void* prog_lookup(const void* key) override {
    uint8_t* v = slot(key);
    return v && cpus_ > 1 ? v + current_cpu(cpus_) * stride_ : v;
  }

  long prog_update(const void* key, const void* value, uint64_t flags) override {
    if (int e = check_update(key, flags)) return e;
    std::memcpy(prog_lookup(key), value, spec_.value_size);
    return 0;
  }

  long prog_delete(const void*) override { return -EINVAL; }

  long prog_for_each(const std::function<uint64_t(const void*, void*)>& fn) override {
    uint32_t cpu = cpus_ > 1 ? current_cpu(cpus_) : 0;
    long n = 0;
    for (uint32_t i = 0; i < spec_.max_entries;) {
      uint32_t key = i;
      ++n, ++i;
      if (fn(&key, data_ + (static_cast<size_t>(key) * cpus_ + cpu) * stride_)) break;
    }
    return n;
  }

 private:
  static uint32_t index(const void* key) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    return i;
  }
  uint8_t* slot(const void* key) const {
    uint32_t i = index(key);
    return i < spec_.max_entries ? data_ + static_cast<size_t>(i) * cpus_ * stride_ : nullptr;
  }
  int check_update(const void* key, uint64_t flags) const {
    if ((flags & ~kBpfFLock) > kBpfExist) return -EINVAL;
    if (index(key) >= spec_.max_entries) return -E2BIG;  // all elements exist already
    if ((flags & ~kBpfFLock) == kBpfNoexist) return -EEXIST;
    return 0;
  }
  void copy_out(const uint8_t* v, uint8_t* out) const {
    std::memcpy(out, v, cpus_ == 1 ? spec_.value_size : static_cast<size_t>(cpus_) * stride_);
  }

  uint8_t* data_;
  uint32_t stride_;
  uint32_t cpus_;
};

constexpr uint32_t kArrayFlags = map_flag::kNumaNode | map_flag::kRdonly | map_flag::kWronly |
                                 map_flag::kRdonlyProg | map_flag::kWronlyProg | map_flag::kMmapable |
                                 map_flag::kInnerMap | map_flag::kPreserveElems;

Status check_array(const MapSpec& s) {
  if (s.key_size != 4) return fail("map '", s.name, "': an array's key_size must be 4, not ", s.key_size);
  if (s.value_size == 0) return fail("map '", s.name, "': value_size 0");
  if (s.max_entries == 0) return fail("map '", s.name, "': max_entries 0");
  bool per_cpu = s.type == MapType::PercpuArray;
  if (per_cpu && (s.map_flags & map_flag::kMmapable))
    return fail("map '", s.name, "': per-CPU arrays cannot be mmapable");
  if (per_cpu && s.value_size > 32768)
    return fail("map '", s.name, "': per-CPU value_size ", s.value_size, " exceeds 32768");
  if (static_cast<uint64_t>(s.max_entries) * value_stride(s) > (1ull << 32))
    return fail("map '", s.name, "': ", s.max_entries, " entries of ", s.value_size, " bytes is too large");
  return check_flags(s, kArrayFlags);
}

size_t array_size(const MapSpec& s, uint32_t ncpus) {
  size_t cpus = s.type == MapType::PercpuArray ? ncpus : 1;
  return shm::round_up(data_offset(s) + static_cast<size_t>(s.max_entries) * cpus * value_stride(s),
                       shm::kPageSize);
}

MapPtr make_array(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  return std::make_shared<ArrayMap>(s, seg, ncpus);
}

}  // namespace

const MapImpl kArrayImpl = {MapType::Array, check_array, array_size, make_array};
const MapImpl kPercpuArrayImpl = {MapType::PercpuArray, check_array, array_size, make_array};

}  // namespace ember::maps
