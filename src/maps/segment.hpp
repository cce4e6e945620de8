// A map's shared-memory segment: a memfd (or a file under a pin directory)
// mapped MAP_SHARED, starting with a header that says what map it holds so
// that another process handed the fd can map it and check it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
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
