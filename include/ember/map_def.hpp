// A map as an object file declares it: BTF-defined maps in `.maps`, legacy
// `struct bpf_map_def` in `maps`, and global data sections, all described
// the same way before any map exists. The map layer creates maps from these.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ember {

// libbpf's pinning values (enum libbpf_pin_type).
enum class MapPinning : uint32_t { None = 0, ByName = 1 };

// A slot of a prog array or map-in-map filled at load time from the
// `values` array of a BTF-defined map (libbpf: ".values" initialization).
struct MapInitSlot {
  uint32_t index = 0;
  std::string symbol;  // the program (prog array) or map (map-in-map) named
};

struct MapDef {
  std::string name;          // the variable's name; ".data", ".rodata" ... for global data
  uint32_t type = 0;         // BPF_MAP_TYPE_* (linux/bpf.h numbering)
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t map_flags = 0;    // BPF_F_*
  uint64_t map_extra = 0;    // bloom filter hash count, ...
  uint32_t numa_node = 0;
  MapPinning pinning = MapPinning::None;
  uint32_t btf_key_type_id = 0;    // 0 when the definition gave only sizes
  uint32_t btf_value_type_id = 0;
  std::shared_ptr<MapDef> inner;   // map-in-map: the template of the inner maps
  std::vector<MapInitSlot> init_slots;
  std::vector<uint8_t> initial_value;  // global data: the section's bytes
  std::string section;       // the ELF section it was declared in
};

}  // namespace ember
