// BPF_MAP_TYPE_RINGBUF: creation checks, the double-mapped view, and the
// producer side (reserve, commit, output, query) as kernel/bpf/ringbuf.c
// does them. The consumer side is src/maps/ringbuf_consumer.cpp.
#include "maps/ringbuf_map.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ember::maps {
namespace {

using namespace ringbuf;
constexpr size_t P = shm::kPageSize;

// What page 0 holds after the shm::Header.
struct RingMeta {
  uint32_t lock;  // the kernel's rb->spinlock: serializes reservations
  uint32_t pad;
  shm::WakeWord wake;
};
static_assert(shm::kHeaderSize + sizeof(RingMeta) <= P);

constexpr size_t kConsumerPosOffset = 1 * P;
constexpr size_t kProducerPosOffset = 2 * P;
constexpr size_t kPendingPosOffset = 2 * P + 8;
constexpr size_t kDataOffset = kMetaPages * P;

RingMeta& meta(uint8_t* view) { return *reinterpret_cast<RingMeta*>(view + shm::kHeaderSize); }
std::atomic_ref<uint64_t> word64(uint8_t* view, size_t off) {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(view + off));
}
std::atomic_ref<uint32_t> len_word(uint8_t* hdr) {
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(hdr));
}

// Maps the segment's meta pages and data, then the data again right after,
// as the kernel's ringbuf_map_alloc vmaps the data pages twice. Null if the
// address space cannot be had.
uint8_t* map_double_view(int fd, size_t data_size) {
  const size_t total = kDataOffset + 2 * data_size;
  void* va = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (va == MAP_FAILED) return nullptr;
  auto* v = static_cast<uint8_t*>(va);
  const int prot = PROT_READ | PROT_WRITE;
  if (mmap(v, kDataOffset + data_size, prot, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
      mmap(v + kDataOffset + data_size, data_size, prot, MAP_SHARED | MAP_FIXED, fd,
           static_cast<off_t>(kDataOffset)) == MAP_FAILED) {
    munmap(va, total);
    return nullptr;
  }
  return v;
}

void maybe_wake(uint8_t* view, uint64_t rec_pos, uint64_t mask, uint64_t flags) {
  // bpf_ringbuf_commit: wake only a consumer that has caught up with this
  // record (it may be asleep); one that has not will find the record anyway.
  uint64_t cons = word64(view, kConsumerPosOffset).load(std::memory_order_acquire) & mask;
  if ((flags & kForceWakeup) || (cons == rec_pos && !(flags & kNoWakeup))) shm::wake(meta(view).wake);
}

}  // namespace

RingbufMap::RingbufMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus, uint8_t* view)
    : Map(spec, seg.fd, seg.base, seg.size, ncpus), view_(view) {}

RingbufMap::~RingbufMap() { munmap(view_, kDataOffset + 2 * static_cast<size_t>(spec_.max_entries)); }

std::atomic_ref<uint64_t> RingbufMap::consumer_pos() const { return word64(view_, kConsumerPosOffset); }
std::atomic_ref<uint64_t> RingbufMap::producer_pos() const { return word64(view_, kProducerPosOffset); }
shm::WakeWord& RingbufMap::wake_word() const { return meta(view_).wake; }
uint32_t RingbufMap::record_len(uint64_t pos) const {
  return len_word(view_ + kDataOffset + (pos & mask())).load(std::memory_order_acquire);
}

void* RingbufMap::reserve(uint64_t size) {
  if (size > kMaxRecord) return nullptr;
  const uint64_t len = shm::round_up(size + kHdrSize, 8);
  if (len > spec_.max_entries) return nullptr;
  const uint64_t cons = consumer_pos().load(std::memory_order_acquire);
  uint8_t* data = view_ + kDataOffset;
  shm::SpinGuard guard(meta(view_).lock);
  const uint64_t prod = producer_pos().load(std::memory_order_relaxed);
  // pending_pos (Linux 6.10): the oldest record still BUSY. A consumer that
  // moved consumer_pos past it must not let us overwrite it.
  uint64_t pend = word64(view_, kPendingPosOffset).load(std::memory_order_relaxed);
  while (pend < prod) {
    uint32_t l = len_word(data + (pend & mask())).load(std::memory_order_acquire);
    if (l & kBusyBit) break;
    pend += record_span(l);
  }
  word64(view_, kPendingPosOffset).store(pend, std::memory_order_relaxed);
  const uint64_t new_prod = prod + len;
  // At most ring size - 1 bytes ahead of the consumer, as the kernel checks.
  if (new_prod - cons > mask() || new_prod - pend > mask()) return nullptr;
  uint8_t* hdr = data + (prod & mask());
  len_word(hdr).store(static_cast<uint32_t>(size) | kBusyBit, std::memory_order_relaxed);
  const uint32_t pg_off = static_cast<uint32_t>((hdr - view_) / P);
  std::memcpy(hdr + 4, &pg_off, 4);
  producer_pos().store(new_prod, std::memory_order_release);
  return hdr + kHdrSize;
}

void RingbufMap::commit(void* sample, uint64_t flags, bool discard) {
  uint8_t* hdr = static_cast<uint8_t*>(sample) - kHdrSize;
  uint32_t pg_off;
  std::memcpy(&pg_off, hdr + 4, 4);
  // bpf_ringbuf_restore_from_rec: the record's page, minus its page offset.
  uint8_t* view = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(hdr) & ~(P - 1)) - pg_off * P;
  const uint64_t mask = reinterpret_cast<const shm::Header*>(view)->max_entries - 1;
  uint32_t new_len = len_word(hdr).load(std::memory_order_relaxed) ^ kBusyBit;
  if (discard) new_len |= kDiscardBit;
  len_word(hdr).exchange(new_len, std::memory_order_seq_cst);  // the kernel's xchg: a full barrier
  maybe_wake(view, static_cast<uint64_t>(hdr - (view + kDataOffset)), mask, flags);
}

long RingbufMap::output(const void* data, uint64_t size, uint64_t flags) {
  if (flags & ~(kNoWakeup | kForceWakeup)) return -EINVAL;
  void* rec = reserve(size);
  if (!rec) return -EAGAIN;
  if (size) std::memcpy(rec, data, size);  // a zero-length record may come with a null pointer
  commit(rec, flags, false);
  return 0;
}

uint64_t RingbufMap::query(uint64_t flags) const {
  switch (flags) {
    case kAvailData:
      return producer_pos().load(std::memory_order_acquire) - consumer_pos().load(std::memory_order_acquire);
    case kRingSize: return spec_.max_entries;
    case kConsPos: return consumer_pos().load(std::memory_order_acquire);
    case kProdPos: return producer_pos().load(std::memory_order_acquire);
    default: return 0;
  }
}

namespace {

// ringbuf_map_alloc: no key or value, a power-of-2 number of whole pages.
Status check_ringbuf(const MapSpec& s) {
  if (s.key_size != 0 || s.value_size != 0)
    return fail("map '", s.name,
                "': ring buffers have no keys or values (key_size and value_size must be 0)");
  if (s.max_entries == 0 || (s.max_entries & (s.max_entries - 1)) || s.max_entries % P)
    return fail("map '", s.name, "': max_entries ", s.max_entries,
                " is the ring buffer's size and must be a power of 2 and a multiple of the page size (", P,
                ")");
  return check_flags(s, map_flag::kNumaNode);
}

size_t ringbuf_size(const MapSpec& s, uint32_t) { return kDataOffset + s.max_entries; }

MapPtr make_ringbuf(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  uint8_t* view = map_double_view(seg.fd, s.max_entries);
  if (!view) {
    // No error path from here (see MapImpl::make); running out of address
    // space is not something callers could handle anyway.
    std::fprintf(stderr, "ember: cannot map ring buffer '%s' twice: %s\n", s.name.c_str(),
                 std::strerror(errno));
    std::abort();
  }
  return std::make_shared<RingbufMap>(s, seg, ncpus, view);
}

}  // namespace

const MapImpl kRingbufImpl = {MapType::Ringbuf, check_ringbuf, ringbuf_size, make_ringbuf};

}  // namespace ember::maps
