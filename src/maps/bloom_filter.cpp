// BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c): values are pushed
// (update with no key) and tested (peek/lookup: 0 when possibly present,
// -ENOENT when surely absent). map_extra's low 4 bits give the number of
// hash functions, 5 when 0, as in the kernel.
#include <atomic>
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

constexpr size_t kBitsOffset = shm::kHeaderSize;

uint32_t hash_count(const MapSpec& s) {
  uint32_t n = static_cast<uint32_t>(s.map_extra & 0xF);
  return n ? n : 5;
}

// Bits for max_entries at hash_count functions and a ~1% false positive
// rate: n * k / ln 2, rounded up to a power of two (so a mask picks the bit).
uint64_t bit_count(const MapSpec& s) {
  uint64_t want = static_cast<uint64_t>(s.max_entries) * hash_count(s) * 10 / 7;
  uint64_t bits = 64;
  while (bits < want) bits <<= 1;
  return bits;
}

uint64_t mix(const uint8_t* p, size_t n, uint64_t seed) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + n;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

class BloomFilterMap final : public Map {
 public:
  BloomFilterMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        bits_(reinterpret_cast<uint64_t*>(seg.base + kBitsOffset)),
        mask_(bit_count(spec) - 1),
        k_(hash_count(spec)) {}

  int lookup(const void*, void* value) const override { return test(value); }
  int update(const void*, const void* value, uint64_t flags) override { return push(value, flags); }
  int erase(const void*) override { return -EINVAL; }
  int next_key(const void*, void*) const override { return -EINVAL; }
  long prog_push(const void* value, uint64_t flags) override { return push(value, flags); }
  long prog_peek(void* value) override { return test(value); }

 private:
  // Double hashing: bit i = h1 + i * h2.
  template <class F>
  bool each_bit(const void* value, F&& f) const {
    const uint8_t* p = static_cast<const uint8_t*>(value);
    uint64_t h1 = mix(p, spec_.value_size, 1), h2 = mix(p, spec_.value_size, 2) | 1;
    for (uint32_t i = 0; i < k_; ++i)
      if (!f((h1 + i * h2) & mask_)) return false;
    return true;
  }
  int push(const void* value, uint64_t flags) {
    if (flags != kBpfAny) return -EINVAL;
    each_bit(value, [&](uint64_t b) {
      std::atomic_ref<uint64_t>(bits_[b / 64]).fetch_or(1ull << (b % 64), std::memory_order_relaxed);
      return true;
    });
    return 0;
  }
  int test(const void* value) const {
    bool maybe = each_bit(value, [&](uint64_t b) {
      return (std::atomic_ref<uint64_t>(bits_[b / 64]).load(std::memory_order_relaxed) >> (b % 64)) & 1;
    });
    return maybe ? 0 : -ENOENT;
  }

  uint64_t* bits_;
  uint64_t mask_;
  uint32_t k_;
};

Status check_bloom(const MapSpec& s) {
  if (s.key_size != 0) return fail("map '", s.name, "': bloom filters have no key (key_size must be 0)");
  if (s.value_size == 0) return fail("map '", s.name, "': value_size 0");
  if (s.max_entries == 0 || s.max_entries >= (1u << 28))
    return fail("map '", s.name, "': max_entries ", s.max_entries);
  if (s.map_extra & ~0xFull)
    return fail("map '", s.name, "': map_extra 0x", s.map_extra, " has unknown bits");
  return check_flags(s, map_flag::kNumaNode | map_flag::kZeroSeed | map_flag::kRdonly | map_flag::kWronly |
                            map_flag::kRdonlyProg | map_flag::kWronlyProg);
}

size_t bloom_size(const MapSpec& s, uint32_t) {
  return shm::round_up(kBitsOffset + bit_count(s) / 8, shm::kPageSize);
}

MapPtr make_bloom(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  return std::make_shared<BloomFilterMap>(s, seg, ncpus);
}

}  // namespace

const MapImpl kBloomFilterImpl = {MapType::BloomFilter, check_bloom, bloom_size, make_bloom};

}  // namespace ember::maps
