// Host-side consumers of the two event-streaming map types, in the manner of
// libbpf's ring_buffer__new/add/poll/consume and perf_buffer__new/poll/
// consume. They work on a map created here or opened from another process's
// fd (Map::open): producers in any process that maps the segment wake them.
//
//   auto rb = ember::RingBufferConsumer::create(map, [](const void* d, size_t n) {
//     handle(d, n);
//     return 0;
//   });
//   while (running) (*rb)->poll(100);
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ember/maps.hpp"
#include "ember/result.hpp"

namespace ember {

// Flags of bpf_ringbuf_output/submit/discard and bpf_ringbuf_query.
namespace ringbuf_flag {
constexpr uint64_t kNoWakeup = 1;     // BPF_RB_NO_WAKEUP
constexpr uint64_t kForceWakeup = 2;  // BPF_RB_FORCE_WAKEUP
constexpr uint64_t kAvailData = 0;    // BPF_RB_AVAIL_DATA
constexpr uint64_t kRingSize = 1;     // BPF_RB_RING_SIZE
constexpr uint64_t kConsPos = 2;      // BPF_RB_CONS_POS
constexpr uint64_t kProdPos = 3;      // BPF_RB_PROD_POS
}  // namespace ringbuf_flag
// bpf_perf_event_output's flags: the slot index, or this one.
constexpr uint64_t kBpfFCurrentCpu = 0xffffffffull;  // BPF_F_CURRENT_CPU

// Reads BPF_MAP_TYPE_RINGBUF maps. One consumer per ring at a time, as in
// the kernel: consumer_pos lives in the ring and is advanced as records are
// handed out.
class RingBufferConsumer {
 public:
  // Called for each submitted record (discarded ones are skipped); a
  // non-zero result stops consume()/poll(), which return it.
  using Callback = std::function<int(const void* data, size_t size)>;

  static Result<std::unique_ptr<RingBufferConsumer>> create(MapPtr map, Callback cb);
  // Another ring, with its own callback (ring_buffer__add).
  Status add(MapPtr map, Callback cb);

  // Hands out every record available now: the number handled, or the
  // callback's non-zero result (records before it stay consumed).
  int consume();
  // Consumes; if nothing was there, sleeps until a producer wakes a ring
  // (or timeout_ms passes; < 0 waits forever) and consumes again.
  int poll(int timeout_ms);

  size_t ring_count() const { return rings_.size(); }

 private:
  struct Ring {
    MapPtr map;
    Callback cb;
  };
  RingBufferConsumer() = default;
  std::vector<Ring> rings_;
};

// Reads BPF_MAP_TYPE_PERF_EVENT_ARRAY maps: creating it opens slots 0..n-1
// for CPUs 0..n-1 (n = the map's CPUs, at most max_entries), as libbpf's
// perf_buffer__new stores one perf event per CPU; destroying it closes them.
class PerfBufferConsumer {
 public:
  // `size` is the raw sample's size as perf records it, padded so that the
  // record is a multiple of 8 bytes (what libbpf passes on too).
  using SampleFn = std::function<void(uint32_t cpu, const void* data, uint32_t size)>;
  using LostFn = std::function<void(uint32_t cpu, uint64_t count)>;

  static Result<std::unique_ptr<PerfBufferConsumer>> create(MapPtr map, SampleFn sample, LostFn lost = {});
  ~PerfBufferConsumer();
  PerfBufferConsumer(const PerfBufferConsumer&) = delete;
  PerfBufferConsumer& operator=(const PerfBufferConsumer&) = delete;

  // Hands out every record of every CPU's ring: the number of records.
  int consume();
  // Consumes; if nothing was there, sleeps until a sample is written (or
  // timeout_ms passes; < 0 waits forever) and consumes again.
  int poll(int timeout_ms);

 private:
  PerfBufferConsumer(MapPtr map, SampleFn sample, LostFn lost, uint32_t nslots)
      : map_(std::move(map)), sample_(std::move(sample)), lost_(std::move(lost)), nslots_(nslots) {}
  int consume_slot(uint32_t i);

  MapPtr map_;
  SampleFn sample_;
  LostFn lost_;
  uint32_t nslots_;
  std::vector<uint8_t> copy_;  // a record that wraps around its ring's end
};

}  // namespace ember
