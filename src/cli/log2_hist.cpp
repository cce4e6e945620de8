#include "cli/log2_hist.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ember::cli {
namespace {

constexpr int kMaxStars = 40;
constexpr size_t kMaxSlots = 65;  // slot 64 would be values from 2^64: never, but keep the key space whole

// The bar: count / max of the width, and a '+' past the end when a count
// exceeds the maximum (which cannot happen here, but BCC's rule is kept).
std::string bar(uint64_t val, uint64_t max, int width) {
  uint64_t n = max == 0 ? 0 : std::min(val, max) * static_cast<uint64_t>(width) / max;
  std::string s(n, '*');
  s.resize(static_cast<size_t>(width), ' ');
  if (val > max) s += '+';
  return s;
}

uint64_t read_uint(const uint8_t* p, uint32_t size) {
  if (size == 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

std::string format_log2_hist(std::span<const uint64_t> slots, std::string_view val_type) {
  int last = -1;
  uint64_t max = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i]) last = static_cast<int>(i);
    max = std::max(max, slots[i]);
  }
  if (last < 0) return "";
  const bool narrow = last <= 32;
  const int num_width = narrow ? 10 : 20, stars = narrow ? kMaxStars : kMaxStars / 2;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%*s%-*.*s : count     distribution\n", narrow ? 5 : 15, "",
                narrow ? 19 : 29, static_cast<int>(val_type.size()), val_type.data());
  out += line;
  for (int i = 0; i <= last; ++i) {
    uint64_t low = i == 0 ? 0 : uint64_t{1} << i;
    uint64_t high = i >= 63 ? UINT64_MAX : (uint64_t{1} << (i + 1)) - 1;
    std::snprintf(line, sizeof line, "%*" PRIu64 " -> %-*" PRIu64 " : %-8" PRIu64 " |%s|\n", num_width, low,
                  num_width, high, slots[i], bar(slots[i], max, stars).c_str());
    out += line;
  }
  return out;
}

Result<std::vector<uint64_t>> log2_slots(const Map& m) {
  const MapSpec& spec = m.spec();
  if ((spec.key_size != 4 && spec.key_size != 8) || (spec.value_size != 4 && spec.value_size != 8))
    return fail("map '", spec.name, "' is not a log2 histogram: keys of ", spec.key_size,
                " bytes and values of ", spec.value_size,
                " (expected a 4- or 8-byte slot index and a 4- or 8-byte count)");
  std::vector<uint64_t> slots;
  std::vector<uint8_t> key(spec.key_size), next(spec.key_size), value(m.host_value_size());
  const uint32_t stride = m.percpu() ? (spec.value_size + 7) / 8 * 8 : spec.value_size;
  const uint32_t copies = m.percpu() ? m.ncpus() : 1;
  const void* cur = nullptr;
  while (m.next_key(cur, next.data()) == 0) {
    key = next;
    cur = key.data();
    if (m.lookup(key.data(), value.data()) != 0) continue;  // deleted meanwhile
    uint64_t slot = read_uint(key.data(), spec.key_size);
    if (slot >= kMaxSlots)
      return fail("map '", spec.name, "' has key ", slot, ", which is no log2 slot (0..", kMaxSlots - 1, ")");
    uint64_t count = 0;
    for (uint32_t c = 0; c < copies; ++c) count += read_uint(value.data() + c * stride, spec.value_size);
    if (slots.size() <= slot) slots.resize(slot + 1);
    slots[slot] += count;
  }
  return slots;
}

}  // namespace ember::cli
