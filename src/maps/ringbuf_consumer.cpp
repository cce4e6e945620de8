// The host-side readers of ring buffers and perf event arrays
// (include/ember/ringbuf.hpp), following libbpf's ringbuf.c
// (ringbuf_process_ring) and perf_event_read_simple.
#include <algorithm>
#include <cstring>

#include "ember/ringbuf.hpp"
#include "maps/perf_event_array.hpp"
#include "maps/ringbuf_map.hpp"

namespace ember {
namespace {

using maps::PerfEventArrayMap;
using maps::RingbufMap;

RingbufMap& as_ringbuf(const MapPtr& m) { return static_cast<RingbufMap&>(*m); }
PerfEventArrayMap& as_perf(const MapPtr& m) { return static_cast<PerfEventArrayMap&>(*m); }

// Every record committed so far, in order, until a BUSY one or the callback
// says stop. consumer_pos moves past each record as it is handed out, so a
// producer waiting for room gets it early, and a stop loses nothing.
int process_ring(RingbufMap& rb, const RingBufferConsumer::Callback& cb, int* count) {
  using namespace maps::ringbuf;
  uint64_t cons = rb.consumer_pos().load(std::memory_order_acquire);
  for (bool progress = true; progress;) {
    progress = false;
    const uint64_t prod = rb.producer_pos().load(std::memory_order_acquire);
    while (cons < prod) {
      const uint32_t len = rb.record_len(cons);
      if (len & kBusyBit) return 0;
      const uint8_t* hdr = rb.data() + (cons & rb.mask());
      progress = true;
      cons += record_span(len);
      int r = 0;
      if (!(len & kDiscardBit)) {
        r = cb(hdr + kHdrSize, len & ~kDiscardBit);
        ++*count;
      }
      rb.consumer_pos().store(cons, std::memory_order_release);
      if (r != 0) return r;
    }
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<RingBufferConsumer>> RingBufferConsumer::create(MapPtr map, Callback cb) {
  std::unique_ptr<RingBufferConsumer> c(new RingBufferConsumer());
  if (auto st = c->add(std::move(map), std::move(cb)); !st) return st.error();
  return c;
}

Status RingBufferConsumer::add(MapPtr map, Callback cb) {
  if (!map) return fail("ring buffer consumer: no map");
  if (map->type() != MapType::Ringbuf)
    return fail("map '", map->spec().name, "' is a ", map_type_name(map->type()), " map, not a ringbuf");
  if (!cb) return fail("ring buffer consumer for map '", map->spec().name, "': no callback");
  rings_.push_back({std::move(map), std::move(cb)});
  return ok_status();
}

int RingBufferConsumer::consume() {
  int count = 0;
  for (Ring& r : rings_)
    if (int stop = process_ring(as_ringbuf(r.map), r.cb, &count); stop != 0) return stop;
  return count;
}

int RingBufferConsumer::poll(int timeout_ms) {
  // The sequence words are read before looking, so a wakeup in between
  // makes the wait return at once.
  std::vector<shm::WakeWord*> words;
  std::vector<uint32_t> seen;
  for (Ring& r : rings_) {
    words.push_back(&as_ringbuf(r.map).wake_word());
    seen.push_back(shm::wake_seq(*words.back()));
  }
  if (int n = consume(); n != 0) return n;
  shm::wait_any(words, seen, timeout_ms);
  return consume();
}

Result<std::unique_ptr<PerfBufferConsumer>> PerfBufferConsumer::create(MapPtr map, SampleFn sample,
                                                                       LostFn lost) {
  if (!map) return fail("perf buffer consumer: no map");
  if (map->type() != MapType::PerfEventArray)
    return fail("map '", map->spec().name, "' is a ", map_type_name(map->type()),
                " map, not a perf_event_array");
  if (!sample) return fail("perf buffer consumer for map '", map->spec().name, "': no sample callback");
  const uint32_t n = std::min(map->ncpus(), map->spec().max_entries);
  for (uint32_t cpu = 0; cpu < n; ++cpu)
    if (int r = map->update(&cpu, &cpu, kBpfAny); r != 0)
      return fail("map '", map->spec().name, "': opening the ring of CPU ", cpu, ": ", std::strerror(-r));
  return std::unique_ptr<PerfBufferConsumer>(
      new PerfBufferConsumer(std::move(map), std::move(sample), std::move(lost), n));
}

PerfBufferConsumer::~PerfBufferConsumer() {
  // perf_buffer__free: the slots no longer lead to a reader.
  for (uint32_t cpu = 0; cpu < nslots_; ++cpu) map_->erase(&cpu);
}

int PerfBufferConsumer::consume_slot(uint32_t i) {
  using namespace maps::perf;
  maps::PerfSlot& s = as_perf(map_).slot(i);
  const uint8_t* ring = as_perf(map_).ring(i);
  std::atomic_ref<uint64_t> tail_word(s.data_tail);
  const uint64_t head = std::atomic_ref<uint64_t>(s.data_head).load(std::memory_order_acquire);
  uint64_t tail = tail_word.load(std::memory_order_relaxed);
  int n = 0;
  while (tail != head) {
    const size_t off = tail & (kPerfRingBytes - 1);
    EventHeader h;
    std::memcpy(&h, ring + off, sizeof h);
    const uint8_t* rec = ring + off;
    if (off + h.size > kPerfRingBytes) {  // wraps: reassemble it, as libbpf does
      copy_.resize(h.size);
      const size_t first = kPerfRingBytes - off;
      std::memcpy(copy_.data(), ring + off, first);
      std::memcpy(copy_.data() + first, ring, h.size - first);
      rec = copy_.data();
    }
    if (h.type == kRecordSample) {
      uint32_t size;
      std::memcpy(&size, rec + sizeof h, 4);
      sample_(s.cpu, rec + sizeof h + 4, size);
    } else if (h.type == kRecordLost && lost_) {
      uint64_t lost;
      std::memcpy(&lost, rec + sizeof h + 8, 8);
      lost_(s.cpu, lost);
    }
    tail += h.size;
    ++n;
  }
  tail_word.store(tail, std::memory_order_release);
  return n;
}

int PerfBufferConsumer::consume() {
  int n = 0;
  for (uint32_t i = 0; i < nslots_; ++i) n += consume_slot(i);
  return n;
}

int PerfBufferConsumer::poll(int timeout_ms) {
  shm::WakeWord* word = &as_perf(map_).wake_word();
  const uint32_t seen = shm::wake_seq(*word);
  if (int n = consume(); n != 0) return n;
  shm::wait_any({&word, 1}, {&seen, 1}, timeout_ms);
  return consume();
}

}  // namespace ember
