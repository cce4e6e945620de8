// A map's shared-memory segment: a memfd (or a file under a pin directory)
// mapped MAP_SHARED, starting with a header that says what map it holds so
// that another process handed the fd can map it and check it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "ember/maps.hpp"
#include "ember/result.hpp"

namespace ember::shm {

constexpr char kMagic[8] = {'E', 'M', 'B', 'E', 'R', 'M', 'A', 'P'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 256;
constexpr size_t kPageSize = 4096;

struct InnerSpec {
  uint32_t type, key_size, value_size, max_entries, map_flags, pad;
};

// The first kHeaderSize bytes of every segment. Only fixed-size fields: the
// segment is read by processes that share nothing else.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t type, key_size, value_size, max_entries, map_flags;
  uint64_t map_extra;
  uint32_t ncpus;
  uint32_t has_inner;
  InnerSpec inner;
  char name[16];
  uint64_t size;  // of the whole segment
};
static_assert(sizeof(Header) <= kHeaderSize);

struct Segment {
  int fd = -1;
  uint8_t* base = nullptr;
  size_t size = 0;
};

// A zero-filled segment of `size` bytes.
Result<Segment> create(const char* name, size_t size);
// A zero-filled segment in a new file (pinned maps); fails if it exists.
Result<Segment> create_file(const std::string& path, size_t size);
// Maps the segment behind `fd` (duplicated; the caller keeps its fd).
Result<Segment> attach(int fd);
void release(Segment& s);

inline size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Keys that lock-free readers compare while a writer may be reusing their
// element (the kernel's hlist_nulls readers see the same): stored and read as
// relaxed 8-byte words, so a torn key is a failed compare, never undefined
// behaviour. `slot` is 8-aligned and round_up(n, 8) bytes; padding is zero.
inline void store_key_words(uint8_t* slot, const void* key, size_t n) {
  const auto* src = static_cast<const uint8_t*>(key);
  for (size_t off = 0; off < n; off += 8) {
    uint64_t w = 0;
    std::memcpy(&w, src + off, n - off < 8 ? n - off : 8);
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(slot + off)).store(w, std::memory_order_relaxed);
  }
}
inline void load_key_words(void* out, const uint8_t* slot, size_t n) {
  auto* dst = static_cast<uint8_t*>(out);
  for (size_t off = 0; off < n; off += 8) {
    auto* word = const_cast<uint64_t*>(reinterpret_cast<const uint64_t*>(slot + off));
    uint64_t w = std::atomic_ref<uint64_t>(*word).load(std::memory_order_relaxed);
    std::memcpy(dst + off, &w, n - off < 8 ? n - off : 8);
  }
}
inline bool key_words_equal(const uint8_t* slot, const void* key, size_t n) {
  const auto* src = static_cast<const uint8_t*>(key);
  auto* first = const_cast<uint64_t*>(reinterpret_cast<const uint64_t*>(slot));
  if (n == 4 || n == 8) {  // most maps: one compare with a constant-size copy
    uint64_t w = 0;
    n == 4 ? std::memcpy(&w, src, 4) : std::memcpy(&w, src, 8);
    return std::atomic_ref<uint64_t>(*first).load(std::memory_order_relaxed) == w;
  }
  for (size_t off = 0; off < n; off += 8) {
    uint64_t w = 0;
    std::memcpy(&w, src + off, n - off < 8 ? n - off : 8);
    auto* word = const_cast<uint64_t*>(reinterpret_cast<const uint64_t*>(slot + off));
    if (std::atomic_ref<uint64_t>(*word).load(std::memory_order_relaxed) != w) return false;
  }
  return true;
}

// A test-and-test-and-set lock on a word of shared memory. Critical
// sections are a few dozen instructions, so spinning beats sleeping; after a
// while the waiter yields so that a preempted holder can run.
class SpinGuard {
 public:
  explicit SpinGuard(uint32_t& word) : w_(word) {
    for (unsigned spins = 0; w_.exchange(1, std::memory_order_acquire);) {
      while (w_.load(std::memory_order_relaxed)) {
        if (++spins < 1000)
          __builtin_ia32_pause();
        else
          yield();
      }
    }
  }
  ~SpinGuard() { w_.store(0, std::memory_order_release); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  static void yield();
  std::atomic_ref<uint32_t> w_;
};

}  // namespace ember::shm
