// Reading the maps an object declares: BTF-defined maps in `.maps` and
// legacy `struct bpf_map_def` entries in `maps`, as libbpf reads them.
#pragma once

#include <vector>

#include "ember/btf.hpp"
#include "ember/elf.hpp"
#include "ember/map_def.hpp"
#include "ember/result.hpp"

namespace ember {

struct MapDefOptions {
  // libbpf's default (strict): a member of a `.maps` definition that libbpf
  // does not know is an error; relaxed, it is ignored.
  bool strict = true;
};

// Every map of `elf`: `.maps` ones first, in the order of the `.maps`
// DATASEC (libbpf's order), then legacy ones by symbol. `btf` is the
// object's parsed .BTF; it may be null when the object has no `.maps`.
// Errors name the file, the map and the problem ("map 'counts': value_size 0").
Result<std::vector<MapDef>> parse_map_definitions(const ElfFile& elf, const Btf* btf,
                                                  MapDefOptions options = {});

}  // namespace ember
