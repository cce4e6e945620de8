// BPF_MAP_TYPE_PERF_EVENT_ARRAY: the slots (host side, as fd arrays in
// kernel/bpf/arraymap.c) and the producer side of bpf_perf_event_output
// (kernel/trace/bpf_trace.c, kernel/events/ring_buffer.c). The consumer is
// in src/maps/ringbuf_consumer.cpp.
#include "maps/perf_event_array.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ember::maps {
namespace {

using namespace perf;
constexpr size_t P = shm::kPageSize;
constexpr size_t kSlotsOffset = P;
constexpr uint32_t kLostRecordSize = 24;  // header, u64 id, u64 lost

size_t slots_bytes(uint32_t n) { return shm::round_up(static_cast<size_t>(n) * sizeof(PerfSlot), P); }
uint32_t slot_count(const MapSpec& s, uint32_t ncpus) { return s.max_entries ? s.max_entries : ncpus; }
shm::WakeWord& wake_of(uint8_t* base) { return *reinterpret_cast<shm::WakeWord*>(base + shm::kHeaderSize); }

template <class T>
std::atomic_ref<T> at(T& v) {
  return std::atomic_ref<T>(v);
}

// Copies into the ring at `pos`, wrapping past its end as perf's
// __output_copy does.
void put(uint8_t* ring, uint64_t pos, const void* src, size_t n) {
  if (n == 0) return;  // an empty sample may come with a null pointer
  size_t off = pos & (kPerfRingBytes - 1);
  size_t first = std::min(n, kPerfRingBytes - off);
  std::memcpy(ring + off, src, first);
  std::memcpy(ring, static_cast<const uint8_t*>(src) + first, n - first);
}

void put_zeros(uint8_t* ring, uint64_t pos, size_t n) {
  static constexpr uint8_t kZeros[8] = {};
  put(ring, pos, kZeros, n);
}

}  // namespace

PerfEventArrayMap::PerfEventArrayMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
    : Map(spec, seg.fd, seg.base, seg.size, ncpus) {}

PerfSlot& PerfEventArrayMap::slot(uint32_t i) const {
  return reinterpret_cast<PerfSlot*>(base() + kSlotsOffset)[i];
}

uint8_t* PerfEventArrayMap::ring(uint32_t i) const {
  return base() + kSlotsOffset + slots_bytes(spec_.max_entries) + static_cast<size_t>(i) * kPerfRingBytes;
}

shm::WakeWord& PerfEventArrayMap::wake_word() const { return wake_of(base()); }

// bpf_fd_array_map_update_elem: BPF_ANY only; the value is the CPU whose
// events the slot's ring receives (the kernel takes a perf event fd bound
// to a CPU). A new event comes with an empty ring, so the ring restarts.
int PerfEventArrayMap::update(const void* key, const void* value, uint64_t flags) {
  if (flags != kBpfAny) return -EINVAL;
  uint32_t i, cpu;
  std::memcpy(&i, key, 4);
  std::memcpy(&cpu, value, 4);
  if (i >= spec_.max_entries) return -E2BIG;
  if (cpu >= ncpus()) return -EINVAL;
  PerfSlot& s = slot(i);
  shm::SpinGuard g(s.lock);
  at(s.open).store(0, std::memory_order_relaxed);
  s.data_head = s.data_tail = s.lost = 0;
  s.cpu = cpu;
  at(s.open).store(1, std::memory_order_release);
  return 0;
}

int PerfEventArrayMap::erase(const void* key) {
  uint32_t i;
  std::memcpy(&i, key, 4);
  if (i >= spec_.max_entries) return -E2BIG;
  PerfSlot& s = slot(i);
  shm::SpinGuard g(s.lock);
  return at(s.open).exchange(0, std::memory_order_acq_rel) ? 0 : -ENOENT;
}

int PerfEventArrayMap::next_key(const void* key, void* next) const {
  uint32_t i = UINT32_MAX;
  if (key) std::memcpy(&i, key, 4);
  uint32_t n = i >= spec_.max_entries ? 0 : i + 1;
  if (n >= spec_.max_entries) return -ENOENT;
  std::memcpy(next, &n, 4);
  return 0;
}

long PerfEventArrayMap::output(uint64_t flags, const void* data, uint64_t size) {
  if (flags & ~kIndexMask) return -EINVAL;
  const uint32_t cpu = current_cpu(ncpus());
  uint64_t index = flags & kIndexMask;
  if (index == kCurrentCpu) index = cpu;
  if (index >= spec_.max_entries) return -E2BIG;
  PerfSlot& s = slot(static_cast<uint32_t>(index));
  if (!at(s.open).load(std::memory_order_acquire)) return -ENOENT;
  // The kernel writes only into the ring of the CPU it runs on.
  if (s.cpu != cpu) return -EOPNOTSUPP;
  // A record's size is a u16 in perf_event_header.
  if (sizeof(EventHeader) + shm::round_up(4 + size, 8) > UINT16_MAX) return -E2BIG;
  long r = write_sample(s, ring(static_cast<uint32_t>(index)), data, static_cast<uint32_t>(size));
  // libbpf's perf buffer asks for a wakeup on every sample (wakeup_events = 1).
  if (r == 0) shm::wake(wake_word());
  return r;
}

// perf_output_begin/perf_output_sample for PERF_SAMPLE_RAW: a pending
// PERF_RECORD_LOST first, then the sample {header, u32 size, data, padding
// to 8}; no room for both: one more lost sample and -ENOSPC.
long PerfEventArrayMap::write_sample(PerfSlot& s, uint8_t* ring, const void* data, uint32_t size) {
  const uint32_t raw = static_cast<uint32_t>(shm::round_up(4 + size, 8));
  const auto rec = static_cast<uint16_t>(sizeof(EventHeader) + raw);
  shm::SpinGuard g(s.lock);
  uint64_t head = s.data_head;
  const uint64_t tail = at(s.data_tail).load(std::memory_order_acquire);
  const uint64_t need = rec + (s.lost ? kLostRecordSize : 0);
  // CIRC_SPACE: the writer stays at least one byte behind the reader.
  if (((tail - (head + 1)) & (kPerfRingBytes - 1)) < need) {
    ++s.lost;
    return -ENOSPC;
  }
  if (s.lost) {
    const EventHeader lh{kRecordLost, 0, kLostRecordSize};
    const uint64_t lost_rec[2] = {static_cast<uint64_t>(&s - &slot(0)), s.lost};  // {id, lost}
    put(ring, head, &lh, sizeof lh);
    put(ring, head + sizeof lh, lost_rec, sizeof lost_rec);
    head += kLostRecordSize;
    s.lost = 0;
  }
  const EventHeader h{kRecordSample, kMiscUser, rec};
  const uint32_t raw_size = raw - 4;  // the size field counts the padding, not itself
  put(ring, head, &h, sizeof h);
  put(ring, head + sizeof h, &raw_size, 4);
  put(ring, head + sizeof h + 4, data, size);
  put_zeros(ring, head + sizeof h + 4 + size, raw_size - size);
  at(s.data_head).store(head + rec, std::memory_order_release);
  return 0;
}

namespace {

// fd_array_map_alloc_check + array_map_alloc_check; max_entries 0 means
// one slot per CPU, which libbpf fills in for perf event arrays.
Status check_perf(const MapSpec& s) {
  if (s.key_size != 4 || s.value_size != 4)
    return fail("map '", s.name, "': perf event arrays need key_size 4 and value_size 4, not ", s.key_size,
                " and ", s.value_size);
  if (s.max_entries > kMaxSlots)
    return fail("map '", s.name, "': max_entries ", s.max_entries, " is more than Ember's ", kMaxSlots,
                " perf event rings");
  return check_flags(s, map_flag::kNumaNode | map_flag::kRdonly | map_flag::kWronly |
                            map_flag::kPreserveElems | map_flag::kInnerMap);
}

size_t perf_size(const MapSpec& s, uint32_t ncpus) {
  uint32_t n = slot_count(s, ncpus);
  return kSlotsOffset + slots_bytes(n) + static_cast<size_t>(n) * kPerfRingBytes;
}

MapPtr make_perf(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool fresh) {
  MapSpec spec = s;
  if (spec.max_entries == 0) {
    spec.max_entries = ncpus;
    // So that Map::open in another process reads the real slot count.
    if (fresh) reinterpret_cast<shm::Header*>(seg.base)->max_entries = ncpus;
  }
  return std::make_shared<PerfEventArrayMap>(spec, seg, ncpus);
}

}  // namespace

const MapImpl kPerfEventArrayImpl = {MapType::PerfEventArray, check_perf, perf_size, make_perf};

}  // namespace ember::maps
