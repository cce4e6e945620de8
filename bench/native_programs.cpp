#include "native_programs.hpp"

#include <benchmark/benchmark.h>

#include <cstring>

namespace ember::bench {
namespace {

constexpr uint64_t kArithIterations = 1000;  // as programs.cpp
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Makes `v` unknown to the optimizer (an input, not a constant).
template <class T>
T opaque(T v) {
  benchmark::DoNotOptimize(v);
  return v;
}

uint64_t empty(uint8_t*, size_t, Map*) { return opaque(uint64_t{0}); }

uint64_t arith(uint8_t*, size_t, Map*) {
  uint64_t n = opaque(kArithIterations), r0 = opaque(uint64_t{0});
  for (uint64_t i = 0; i < n; ++i) r0 = (((r0 + i) * 3) ^ 0x55) >> 1;
  return r0;
}

uint64_t checksum(uint8_t* mem, size_t size, Map*) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < size; i += 2) sum += load<uint16_t>(mem + i);
  for (int k = 0; k < 2; ++k) sum = (sum & 0xffff) + (sum >> 16);
  return sum ^ 0xffff;
}

uint64_t memcmp_bytes(uint8_t* mem, size_t size, Map*) {
  const uint8_t *a = mem, *b = mem + size / 2;
  for (size_t i = 0; i < size / 2; ++i)
    if (a[i] != b[i]) return static_cast<uint64_t>(static_cast<int64_t>(a[i]) - b[i]);
  return 0;
}

// The 256-case switch of programs.cpp: case c * 7 returns c * 3 + 1.
#define EMBER_CASE(c) \
  case (c)*7:         \
    return (c)*3 + 1;
#define EMBER_CASE4(c) EMBER_CASE(c) EMBER_CASE(c + 1) EMBER_CASE(c + 2) EMBER_CASE(c + 3)
#define EMBER_CASE16(c) EMBER_CASE4(c) EMBER_CASE4(c + 4) EMBER_CASE4(c + 8) EMBER_CASE4(c + 12)
#define EMBER_CASE64(c) EMBER_CASE16(c) EMBER_CASE16(c + 16) EMBER_CASE16(c + 32) EMBER_CASE16(c + 48)
uint64_t switch_case(uint8_t* mem, size_t, Map*) {
  switch (load<uint16_t>(mem)) {
    EMBER_CASE64(0)
    EMBER_CASE64(64)
    EMBER_CASE64(128)
    EMBER_CASE64(192)
    default: return ~0ull;
  }
}
#undef EMBER_CASE64
#undef EMBER_CASE16
#undef EMBER_CASE4
#undef EMBER_CASE

uint64_t sieve(uint8_t* marks, size_t limit, Map*) {
  for (size_t p = 2; p * p < limit; ++p) {
    if (marks[p]) continue;
    for (size_t m = p * p; m < limit; m += p) marks[m] = 1;
  }
  uint64_t primes = 0;
  for (size_t i = 2; i < limit; ++i) primes += marks[i] ^ 1;
  return primes;
}

// What bpf_map_lookup_elem does for verified code, minus the helper call.
uint64_t hash_lookup(uint8_t* mem, size_t size, Map* map) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    uint32_t key = load<uint32_t>(mem + i);
    if (auto* v = static_cast<const uint64_t*>(map->prog_lookup(&key))) sum += *v;
  }
  return sum;
}

uint64_t lpm_lookup(uint8_t* mem, size_t size, Map* map) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    uint32_t key[2] = {32, load<uint32_t>(mem + i)};
    if (auto* v = static_cast<const uint64_t*>(map->prog_lookup(key))) sum += *v;
  }
  return sum;
}

// The haystack, then an 8-byte needle.
uint64_t strsearch(uint8_t* mem, size_t size, Map*) {
  constexpr size_t kNeedle = 8;
  const uint8_t* needle = mem + size - kNeedle;
  for (size_t i = 0; i + kNeedle <= size - kNeedle; ++i) {
    if (mem[i] != needle[0]) continue;
    size_t k = 1;
    while (k < kNeedle && mem[i + k] == needle[k]) ++k;
    if (k == kNeedle) return i;
  }
  return ~0ull;
}

uint64_t fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

// The parser of jit_programs.cpp: [u32 length][4 bytes][packet]; 1 = drop,
// 2 = not IP, else the flow hash.
uint64_t xdp_parse(uint8_t* mem, size_t, Map*) {
  uint32_t len = load<uint32_t>(mem);
  const uint8_t* pkt = mem + 8;
  if (len > 511 || len < 14) return 1;
  uint16_t type = load<uint16_t>(pkt + 12);
  size_t l3 = 14;
  if (type == 0xa888 || type == 0x0081) {
    if (len < 18) return 1;
    type = load<uint16_t>(pkt + 16), l3 = 18;
    if (type == 0x0081) {
      if (len < 22) return 1;
      type = load<uint16_t>(pkt + 20), l3 = 22;
    }
  }
  const uint8_t* ip = pkt + l3;
  uint64_t key1, key2 = 0;
  uint8_t proto;
  size_t l4;
  bool ports = true;
  if (type == 0x0008) {
    if (l3 + 20 > len || ip[0] >> 4 != 4 || (ip[0] & 0xf) < 5) return 1;
    l4 = l3 + (ip[0] & 0xf) * 4;
    if (l4 > len) return 1;
    proto = ip[9];
    key1 = static_cast<uint64_t>(load<uint32_t>(ip + 12)) << 32 | load<uint32_t>(ip + 16);
    ports = (load<uint16_t>(ip + 6) & 0xff3f) == 0;
  } else if (type == 0xdd86) {
    l4 = l3 + 40;
    if (l4 > len || ip[0] >> 4 != 6) return 1;
    proto = ip[6];
    key1 = load<uint64_t>(ip + 8) ^ load<uint64_t>(ip + 16);
    key2 = load<uint64_t>(ip + 24) ^ load<uint64_t>(ip + 32);
    if (proto == 0) {
      if (l4 + 8 > len) return 1;
      proto = pkt[l4];
      l4 += (pkt[l4 + 1] + 1) * 8;
      if (l4 > len) return 1;
    }
  } else {
    return 2;
  }
  uint64_t pair = 0;
  if (ports && (proto == 6 || proto == 17)) {
    if (l4 + (proto == 6 ? 20 : 8) > len) return 1;
    pair = load<uint32_t>(pkt + l4);
  }
  return fmix64((key1 * kGolden) ^ key2 ^ ((pair << 8) | proto));
}

struct Named {
  std::string_view name;
  NativeFn fn;
};

const Named kNatives[] = {
    {"empty", empty},
    {"arith", arith},
    {"arith_loop", arith},
    {"checksum", checksum},
    {"checksum_loop", checksum},
    {"memcmp", memcmp_bytes},
    {"switch", switch_case},
    {"sieve", sieve},
    {"hash_lookup", hash_lookup},
    {"lpm_lookup", lpm_lookup},
    {"strsearch", strsearch},
    {"xdp_ipv4", xdp_parse},
    {"xdp_ipv6", xdp_parse},
};

}  // namespace

NativeFn native_program(std::string_view name) {
  for (const Named& n : kNatives)
    if (n.name == name) return n.fn;
  return nullptr;
}

}  // namespace ember::bench
