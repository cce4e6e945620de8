// Maps printed the way bpftool prints them: `map show` lines, `map dump`
// entries (hex key and value, per-CPU values one line per CPU, "Found N
// elements"), and the same as JSON for -j.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "ember/maps.hpp"

namespace ember::cli {

// bpftool's fprint_hex: bytes separated by spaces, a wider gap every 8 and
// a new line every 16.
std::string hex_bytes(const uint8_t* p, size_t n);

void print_map_show(std::FILE* out, const Map& m);
std::string map_show_json(const Map& m);

// Every element of the map (queues and stacks are peeked, not drained).
void print_map_dump(std::FILE* out, const Map& m);
std::string map_dump_json(const Map& m);

}  // namespace ember::cli
