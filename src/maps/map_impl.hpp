// How the map types plug into Map::create and Map::open: one entry per type,
// each defined next to its implementation.
#pragma once

#include <cerrno>
#include <cstring>

#include "ember/maps.hpp"
#include "maps/segment.hpp"

namespace ember::maps {

struct MapImpl {
  MapType type;
  // The type's own checks of the spec (the kernel's map_alloc_check), after
  // the common ones; an error message says what is wrong.
  Status (*check)(const MapSpec& spec);
  // Bytes of shared memory the map needs, header included.
  size_t (*segment_size)(const MapSpec& spec, uint32_t ncpus);
  // Builds the map over a segment; `fresh` when it was just created (zeroed)
  // and its layout must be initialized.
  MapPtr (*make)(const MapSpec& spec, shm::Segment seg, uint32_t ncpus, bool fresh);
};

// Every implemented type (src/maps/*.cpp); null for types Ember lacks.
const MapImpl* find_impl(MapType type);

extern const MapImpl kArrayImpl, kPercpuArrayImpl;
extern const MapImpl kHashImpl, kPercpuHashImpl, kLruHashImpl, kLruPercpuHashImpl;
extern const MapImpl kQueueImpl, kStackImpl, kBloomFilterImpl;
extern const MapImpl kProgArrayImpl, kArrayOfMapsImpl, kCgroupArrayImpl, kHashOfMapsImpl;
extern const MapImpl kLpmTrieImpl;
extern const MapImpl kStackTraceImpl;
extern const MapImpl kRingbufImpl, kPerfEventArrayImpl;

// Whether `inner` may be stored in the map-in-map `outer`.
bool inner_map_compatible(const MapSpec& outer, const MapSpec& inner);
// What slot `index` of a PROG_ARRAY, ARRAY_OF_MAPS or CGROUP_ARRAY holds
// (program id, map id, cgroup id); 0 when empty or not such a map.
uint64_t fd_array_slot(const Map& m, uint32_t index);

Status check_flags(const MapSpec& spec, uint32_t allowed);
// array_map_get_next_key: after `key` comes key + 1; a null or out of range
// key restarts at 0; the last index has no next (-ENOENT).
inline int array_next_key(const MapSpec& s, const void* key, void* next) {
  uint32_t i = UINT32_MAX;
  if (key) std::memcpy(&i, key, 4);
  uint32_t n = i >= s.max_entries ? 0 : i + 1;
  if (n >= s.max_entries) return -ENOENT;
  std::memcpy(next, &n, 4);
  return 0;
}

inline uint32_t value_stride(const MapSpec& s) {
  return static_cast<uint32_t>(shm::round_up(s.value_size, 8));
}

}  // namespace ember::maps
