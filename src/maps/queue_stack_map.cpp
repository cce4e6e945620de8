// BPF_MAP_TYPE_QUEUE and STACK (kernel/bpf/queue_stack_maps.c): a ring of
// max_entries + 1 value slots under one lock. No keys: the host pushes with
// update(NULL), peeks with lookup(NULL) and pops with lookup_and_delete.
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

struct Ring {
  uint32_t lock;
  uint32_t head;  // next slot to write
  uint32_t tail;  // oldest element
  uint32_t size;  // max_entries + 1: one slot stays free to tell full from empty
};
constexpr size_t kRingOffset = shm::kHeaderSize;
constexpr size_t kSlotsOffset = kRingOffset + 64;

class QueueStackMap final : public Map {
 public:
  QueueStackMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus, bool fresh)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        ring_(reinterpret_cast<Ring*>(seg.base + kRingOffset)),
        slots_(seg.base + kSlotsOffset),
        stack_(spec.type == MapType::Stack) {
    if (fresh) ring_->size = spec.max_entries + 1;
  }

  int lookup(const void*, void* value) const override { return take(static_cast<uint8_t*>(value), false); }
  int update(const void*, const void* value, uint64_t flags) override { return push(value, flags); }
  int erase(const void*) override { return -EINVAL; }
  int next_key(const void*, void*) const override { return -EINVAL; }
  int lookup_and_delete(const void*, void* value) override {
    return take(static_cast<uint8_t*>(value), true);
  }

  long prog_push(const void* value, uint64_t flags) override { return push(value, flags); }
  long prog_pop(void* value) override { return take(static_cast<uint8_t*>(value), true); }
  long prog_peek(void* value) override { return take(static_cast<uint8_t*>(value), false); }
  long prog_update(const void*, const void* value, uint64_t flags) override { return push(value, flags); }

 private:
  uint8_t* slot(uint32_t i) const { return slots_ + static_cast<size_t>(i) * spec_.value_size; }
  uint32_t inc(uint32_t i) const { return i + 1 == ring_->size ? 0 : i + 1; }

  // queue_stack_map_push_elem: full is E2BIG unless BPF_EXIST asks to drop
  // the oldest element.
  int push(const void* value, uint64_t flags) {
    if (flags & ~kBpfExist) return -EINVAL;
    shm::SpinGuard g(ring_->lock);
    if (inc(ring_->head) == ring_->tail) {
      if (!(flags & kBpfExist)) return -E2BIG;
      ring_->tail = inc(ring_->tail);
    }
    std::memcpy(slot(ring_->head), value, spec_.value_size);
    ring_->head = inc(ring_->head);
    return 0;
  }

  int take(uint8_t* out, bool remove) const {
    shm::SpinGuard g(ring_->lock);
    if (ring_->head == ring_->tail) return -ENOENT;
    uint32_t i;
    if (stack_) {
      i = ring_->head == 0 ? ring_->size - 1 : ring_->head - 1;
      if (remove) ring_->head = i;
    } else {
      i = ring_->tail;
      if (remove) ring_->tail = inc(i);
    }
    std::memcpy(out, slot(i), spec_.value_size);
    return 0;
  }

  Ring* ring_;
  uint8_t* slots_;
  bool stack_;
};

Status check_queue(const MapSpec& s) {
  if (s.key_size != 0)
    return fail("map '", s.name, "': queue and stack maps have no key (key_size must be 0)");
  if (s.value_size == 0) return fail("map '", s.name, "': value_size 0");
  if (s.max_entries == 0 || s.max_entries >= (1u << 30))
    return fail("map '", s.name, "': max_entries ", s.max_entries);
  return check_flags(s, map_flag::kNumaNode | map_flag::kRdonly | map_flag::kWronly | map_flag::kRdonlyProg |
                            map_flag::kWronlyProg);
}

size_t queue_size(const MapSpec& s, uint32_t) {
  return shm::round_up(kSlotsOffset + (static_cast<size_t>(s.max_entries) + 1) * s.value_size,
                       shm::kPageSize);
}

MapPtr make_queue(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool fresh) {
  return std::make_shared<QueueStackMap>(s, seg, ncpus, fresh);
}

}  // namespace

const MapImpl kQueueImpl = {MapType::Queue, check_queue, queue_size, make_queue};
const MapImpl kStackImpl = {MapType::Stack, check_queue, queue_size, make_queue};

}  // namespace ember::maps
