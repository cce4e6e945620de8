// BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c): one multi-producer,
// single-consumer ring of variable-length records, laid out as the
// kernel's struct bpf_ringbuf so that offsets, record headers and positions
// match byte for byte:
//
//   page 0   shm::Header, then the lock and the wakeup word
//   page 1   consumer_pos (u64), written by the consumer
//   page 2   producer_pos, pending_pos (u64)
//   page 3.. data, max_entries bytes, mapped twice in a row in every
//            process so that a record wrapping past the end is contiguous
//
// A record is an 8-byte header {u32 len | BUSY | DISCARD, u32 pg_off} and
// its data, rounded up to 8. pg_off is the header's page within the view,
// which is how bpf_ringbuf_submit(sample) finds its ring without a map.
#pragma once

#include <atomic>
#include <cstdint>

#include "ember/ringbuf.hpp"
#include "maps/event_wait.hpp"
#include "maps/map_impl.hpp"

namespace ember::maps {

namespace ringbuf {
constexpr uint32_t kBusyBit = 1u << 31;          // BPF_RINGBUF_BUSY_BIT
constexpr uint32_t kDiscardBit = 1u << 30;       // BPF_RINGBUF_DISCARD_BIT
constexpr uint32_t kHdrSize = 8;                 // BPF_RINGBUF_HDR_SZ
constexpr uint64_t kMaxRecord = UINT32_MAX / 4;  // RINGBUF_MAX_RECORD_SZ
using namespace ringbuf_flag;                    // BPF_RB_* (include/ember/ringbuf.hpp)
constexpr size_t kMetaPages = 3;                 // what precedes the data, as in the kernel

// The length word of a record, without its flag bits, rounded up as the
// consumer steps over it.
inline uint64_t record_span(uint32_t len) {
  return shm::round_up((len & ~(kBusyBit | kDiscardBit)) + kHdrSize, 8);
}
}  // namespace ringbuf

class RingbufMap final : public Map {
 public:
  RingbufMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus, uint8_t* view);
  ~RingbufMap() override;

  // ---- program side ----
  // __bpf_ringbuf_reserve: the sample (after its BUSY header) or null when
  // it does not fit.
  void* reserve(uint64_t size);
  // bpf_ringbuf_commit: clears BUSY (sets DISCARD) and wakes the consumer
  // as `flags` say. `sample` must come from reserve() of a live ring.
  static void commit(void* sample, uint64_t flags, bool discard);
  // bpf_ringbuf_output: 0, -EINVAL (flags) or -EAGAIN (no room).
  long output(const void* data, uint64_t size, uint64_t flags);
  // bpf_ringbuf_query; 0 for unknown flags.
  uint64_t query(uint64_t flags) const;

  // ---- consumer side ----
  const uint8_t* data() const { return view_ + ringbuf::kMetaPages * shm::kPageSize; }
  uint64_t mask() const { return spec_.max_entries - 1; }
  // The length word of the record at position `pos` (acquire: the data
  // before a cleared BUSY bit is visible).
  uint32_t record_len(uint64_t pos) const;
  std::atomic_ref<uint64_t> consumer_pos() const;
  std::atomic_ref<uint64_t> producer_pos() const;
  shm::WakeWord& wake_word() const;

 private:
  uint8_t* view_;  // the double-mapped view described above
};

}  // namespace ember::maps
