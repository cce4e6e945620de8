// Maps with the kernel's semantics, each in its own shared-memory segment
// that a second process can map (Map::open) and use alongside the first.
// Host operations follow the bpf() syscall (BPF_MAP_LOOKUP_ELEM ...) and
// return 0 or a negative errno, as the kernel does; program operations are
// what the map helpers call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/map_def.hpp"
#include "ember/result.hpp"

namespace ember {

// X(enumerator, Linux value, name as bpftool prints it)
#define EMBER_MAP_TYPES(X)                            \
  X(Unspec, 0, "unspec")                              \
  X(Hash, 1, "hash")                                  \
  X(Array, 2, "array")                                \
  X(ProgArray, 3, "prog_array")                       \
  X(PerfEventArray, 4, "perf_event_array")            \
  X(PercpuHash, 5, "percpu_hash")                     \
  X(PercpuArray, 6, "percpu_array")                   \
  X(StackTrace, 7, "stack_trace")                     \
  X(CgroupArray, 8, "cgroup_array")                   \
  X(LruHash, 9, "lru_hash")                           \
  X(LruPercpuHash, 10, "lru_percpu_hash")             \
  X(LpmTrie, 11, "lpm_trie")                          \
  X(ArrayOfMaps, 12, "array_of_maps")                 \
  X(HashOfMaps, 13, "hash_of_maps")                   \
  X(Devmap, 14, "devmap")                             \
  X(Sockmap, 15, "sockmap")                           \
  X(Cpumap, 16, "cpumap")                             \
  X(Xskmap, 17, "xskmap")                             \
  X(Sockhash, 18, "sockhash")                         \
  X(CgroupStorage, 19, "cgroup_storage")              \
  X(ReuseportSockarray, 20, "reuseport_sockarray")    \
  X(PercpuCgroupStorage, 21, "percpu_cgroup_storage") \
  X(Queue, 22, "queue")                               \
  X(Stack, 23, "stack")                               \
  X(SkStorage, 24, "sk_storage")                      \
  X(DevmapHash, 25, "devmap_hash")                    \
  X(StructOps, 26, "struct_ops")                      \
  X(Ringbuf, 27, "ringbuf")                           \
  X(InodeStorage, 28, "inode_storage")                \
  X(TaskStorage, 29, "task_storage")                  \
  X(BloomFilter, 30, "bloom_filter")                  \
  X(UserRingbuf, 31, "user_ringbuf")                  \
  X(CgrpStorage, 32, "cgrp_storage")

enum class MapType : uint32_t {
#define EMBER_X(e, v, n) e = v,
  EMBER_MAP_TYPES(EMBER_X)
#undef EMBER_X
};

std::string_view map_type_name(MapType t);  // "hash"; "type 99" when unknown
Result<MapType> map_type_from_name(std::string_view name);

// map_flags (linux/bpf.h)
namespace map_flag {
constexpr uint32_t kNoPrealloc = 1u << 0;
constexpr uint32_t kNoCommonLru = 1u << 1;
constexpr uint32_t kNumaNode = 1u << 2;
constexpr uint32_t kRdonly = 1u << 3;
constexpr uint32_t kWronly = 1u << 4;
constexpr uint32_t kStackBuildId = 1u << 5;
constexpr uint32_t kZeroSeed = 1u << 6;
constexpr uint32_t kRdonlyProg = 1u << 7;
constexpr uint32_t kWronlyProg = 1u << 8;
constexpr uint32_t kClone = 1u << 9;
constexpr uint32_t kMmapable = 1u << 10;
constexpr uint32_t kPreserveElems = 1u << 11;
constexpr uint32_t kInnerMap = 1u << 12;
}  // namespace map_flag

// Element update flags.
constexpr uint64_t kBpfAny = 0, kBpfNoexist = 1, kBpfExist = 2, kBpfFLock = 4;

struct MapSpec {
  std::string name;  // at most 15 characters are kept, as BPF_OBJ_NAME_LEN
  MapType type = MapType::Unspec;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t map_flags = 0;
  uint64_t map_extra = 0;
  std::shared_ptr<const MapSpec> inner;  // map-in-map: what inner maps must look like
  static MapSpec from_def(const MapDef& def);
};

// What a new map is created in.
struct MapOptions {
  // Number of "CPUs" of per-CPU maps; 0: the machine's possible CPUs
  // (the kernel's num_possible_cpus()).
  uint32_t ncpus = 0;
  // Pinned maps (libbpf's LIBBPF_PIN_BY_NAME): the segment is this file,
  // which outlives the process; an existing compatible one is reused.
  std::string pin_path;
};

class Map;
using MapPtr = std::shared_ptr<Map>;

// Resolves map and program ids stored in map-in-map and prog-array slots;
// set by whoever owns the maps (the runtime).
class MapResolver {
 public:
  virtual ~MapResolver() = default;
  virtual Map* map_by_id(uint32_t id) const = 0;
};

class Map {
 public:
  // Validates the spec like the kernel's map_alloc_check and creates the map
  // in a fresh shared-memory segment.
  static Result<MapPtr> create(const MapSpec& spec, const MapOptions& opts = {});
  // Maps an existing segment (an fd from another process) and checks its header.
  static Result<MapPtr> open(int fd);
  // The pinned map at `path` if there is one (an error if it does not
  // match `spec`); nullopt if nothing is pinned there.
  static std::optional<Result<MapPtr>> reuse_pinned(const MapSpec& spec, const std::string& path);

  virtual ~Map();
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;

  const MapSpec& spec() const { return spec_; }
  MapType type() const { return spec_.type; }
  uint32_t id() const { return id_; }
  void set_id(uint32_t id) { id_ = id; }
  int fd() const { return fd_; }  // the shared-memory segment
  size_t segment_bytes() const { return size_; }
  uint32_t ncpus() const { return ncpus_; }
  // The value size the host reads and writes: round_up(value_size, 8) x
  // ncpus for per-CPU maps, as the kernel's bpf() syscall does.
  uint32_t host_value_size() const;
  bool percpu() const;
  void set_resolver(const MapResolver* r) { resolver_ = r; }

  // ---- host side: bpf() semantics, 0 or -errno ----
  virtual int lookup(const void* key, void* value) const;
  virtual int update(const void* key, const void* value, uint64_t flags);
  virtual int erase(const void* key);
  // key null (or absent from the map, for hashes): the first key.
  virtual int next_key(const void* key, void* next) const;
  virtual int lookup_and_delete(const void* key, void* value);
  // Batch operations (BPF_MAP_*_BATCH). `in_batch` null starts from the
  // beginning; `out_batch` (key_size bytes) receives the cursor for the next
  // call. Up to *count elements are copied into `keys` and `values` (host
  // value size each); *count is set to how many. -ENOENT once the map is
  // exhausted, as the kernel returns it (the elements copied still count).
  int lookup_batch(const void* in_batch, void* out_batch, void* keys, void* values, uint32_t* count,
                   bool and_delete = false);
  // Update or delete *count elements in order; on an error *count says how
  // many were done, and the error is returned.
  int update_batch(const void* keys, const void* values, uint32_t* count, uint64_t flags);
  int delete_batch(const void* keys, uint32_t* count);

  // Direct pointer to the values of an mmapable array (global data), else null.
  virtual uint8_t* mmap_data() { return nullptr; }

  // ---- program side: what the helpers call ----
  // Pointer to the value (this CPU's copy for per-CPU maps) or null.
  virtual void* prog_lookup(const void* key);
  virtual long prog_update(const void* key, const void* value, uint64_t flags);
  virtual long prog_delete(const void* key);
  virtual long prog_push(const void* value, uint64_t flags);
  virtual long prog_pop(void* value);
  virtual long prog_peek(void* value);
  // bpf_for_each_map_elem: calls fn(key, value) for each element until it
  // returns non-zero; returns the number of elements visited or -errno.
  virtual long prog_for_each(const std::function<uint64_t(const void* key, void* value)>& fn);

 protected:
  Map(MapSpec spec, int fd, uint8_t* base, size_t size, uint32_t ncpus);
  uint8_t* base() const { return base_; }
  size_t segment_size() const { return size_; }

  MapSpec spec_;
  const MapResolver* resolver_ = nullptr;

 private:
  int fd_;
  uint8_t* base_;
  size_t size_;
  uint32_t ncpus_;
  uint32_t id_ = 0;
};

// The CPU a per-CPU map serves to the calling thread: the CPU it runs on,
// as in the kernel, folded into [0, ncpus).
uint32_t current_cpu(uint32_t ncpus);
uint32_t possible_cpus();

}  // namespace ember
