// Log2 histograms printed the way BCC's tools print them (print_log2_hist):
//
//      value               : count     distribution
//          0 -> 1          : 3        |****************************************|
//          2 -> 3          : 1        |*************                           |
//
// Slot i counts values in [2^i, 2^(i+1) - 1], slot 0 also counting 0 (what a
// program computes with a log2 of the value, as libbpf-tools' do); rows run
// from slot 0 to the last non-empty slot; with more than 33 slots the
// columns widen and the bars halve, as in BCC.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/maps.hpp"
#include "ember/result.hpp"

namespace ember::cli {

// "" when every slot is empty (BCC prints nothing then).
std::string format_log2_hist(std::span<const uint64_t> slots, std::string_view val_type = "value");

// The slots a map holds: key = slot index (4 or 8 bytes), value = count (4
// or 8 bytes; per-CPU values summed). Array and hash maps alike; keys beyond
// 64 are an error naming the map.
Result<std::vector<uint64_t>> log2_slots(const Map& m);

}  // namespace ember::cli
