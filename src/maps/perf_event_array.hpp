// BPF_MAP_TYPE_PERF_EVENT_ARRAY: in the kernel each slot holds a perf event
// (libbpf's perf_buffer opens one BPF_OUTPUT event per CPU, each with its
// own mmap'ed ring) and bpf_perf_event_output writes PERF_RECORD_SAMPLE
// records into the ring of the slot. Here every slot has its ring inside the
// segment, laid out like perf's: data_head/data_tail counters and a
// power-of-2 data area of records that may wrap around its end.
//
//   page 0   shm::Header, then the wakeup word
//   page 1.. the slots' control blocks (PerfSlot), 64 bytes each
//   then     one data area of kPerfRingBytes per slot
//
// A slot is open (bpf_perf_event_output may write to it) once the host has
// stored a CPU in it, as libbpf stores a perf event fd: PerfBufferConsumer
// does that for CPUs 0..n-1.
#pragma once

#include <atomic>
#include <cstdint>

#include "maps/event_wait.hpp"
#include "maps/map_impl.hpp"

namespace ember::maps {

namespace perf {
constexpr size_t kPerfRingBytes = 64 * 1024;    // each slot's data area
constexpr uint32_t kMaxSlots = 4096;            // bounds the segment (256 MiB of sparse memfd)
constexpr uint64_t kIndexMask = 0xffffffffull;  // BPF_F_INDEX_MASK
constexpr uint64_t kCurrentCpu = kIndexMask;    // BPF_F_CURRENT_CPU
constexpr uint32_t kRecordLost = 2;             // PERF_RECORD_LOST
constexpr uint32_t kRecordSample = 9;           // PERF_RECORD_SAMPLE
constexpr uint16_t kMiscUser = 2;               // PERF_RECORD_MISC_USER

struct EventHeader {  // struct perf_event_header
  uint32_t type;
  uint16_t misc;
  uint16_t size;
};
}  // namespace perf

// A slot's control block: the parts of perf_event_mmap_page a reader uses,
// the ring's lock, its lost count and what the host stored.
struct PerfSlot {
  uint64_t data_head;  // written by the producer (release)
  uint64_t data_tail;  // written by the consumer (release)
  uint64_t lost;       // samples dropped since the last PERF_RECORD_LOST
  uint32_t lock;
  uint32_t open;  // 1 when the host stored a CPU here
  uint32_t cpu;   // the CPU this slot's ring serves
  uint32_t pad[7];
};
static_assert(sizeof(PerfSlot) == 64);

class PerfEventArrayMap final : public Map {
 public:
  PerfEventArrayMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus);

  // ---- host side: the slots hold CPUs (the kernel's perf event fds) ----
  int update(const void* key, const void* value, uint64_t flags) override;
  int erase(const void* key) override;
  int next_key(const void* key, void* next) const override;

  // ---- program side ----
  // __bpf_perf_event_output: 0 or -EINVAL, -E2BIG, -ENOENT, -EOPNOTSUPP,
  // -ENOSPC (ring full: the sample is counted as lost).
  long output(uint64_t flags, const void* data, uint64_t size);

  // ---- consumer side ----
  PerfSlot& slot(uint32_t i) const;
  uint8_t* ring(uint32_t i) const;
  shm::WakeWord& wake_word() const;

 private:
  long write_sample(PerfSlot& s, uint8_t* ring, const void* data, uint32_t size);
};

}  // namespace ember::maps
