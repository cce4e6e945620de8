// BPF_MAP_TYPE_STACK_TRACE (kernel/bpf/stackmap.c) in shared memory.
//
// Keys are u32 stack ids, values arrays of u64 instruction pointers (or,
// with BPF_F_STACK_BUILD_ID, of struct bpf_stack_build_id). A
// stack's id is its jhash2 folded into a power-of-two number of buckets;
// each bucket holds at most one stack, so two stacks can want the same id
// (bpf_get_stackid then fails with -EEXIST unless told to replace it). The
// stacks themselves live in a pool of max_entries elements, as the kernel
// preallocates them. One spin lock guards buckets and pool: every
// operation is a short copy of at most 127 frames.
#include "maps/stack_trace_map.hpp"

#include <bit>
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

constexpr uint32_t kCreateFlags =
    map_flag::kNumaNode | map_flag::kRdonly | map_flag::kWronly | map_flag::kStackBuildId;
constexpr size_t kMaxSegment = size_t{1} << 40;

struct Meta {
  uint32_t lock;
  uint32_t free_head;  // element index + 1; 0: empty
  uint32_t unused;     // elements never handed out start here
};
constexpr size_t kMetaOffset = shm::kHeaderSize;
constexpr size_t kBucketsOffset = kMetaOffset + 64;

struct Elem {
  uint32_t hash;
  uint32_t nr;  // frames stored
  uint32_t free_next;
  uint32_t pad;
  uint8_t frames[];  // u64 addresses or StackBuildId entries
};

bool uses_build_id(const MapSpec& s) { return s.map_flags & map_flag::kStackBuildId; }
uint32_t frame_size(const MapSpec& s) { return uses_build_id(s) ? sizeof(StackBuildId) : sizeof(uint64_t); }
uint32_t bucket_count(const MapSpec& s) { return static_cast<uint32_t>(std::bit_ceil(s.max_entries)); }
size_t elem_size(const MapSpec& s) { return sizeof(Elem) + s.value_size; }
size_t elems_offset(const MapSpec& s) {
  return shm::round_up(kBucketsOffset + 4 * static_cast<size_t>(bucket_count(s)), 64);
}

uint32_t rotl(uint32_t x, int k) { return std::rotl(x, k); }

// Bob Jenkins' lookup3 hashword, which the kernel's jhash2 is: the same
// ids as the kernel for the same frames.
uint32_t jhash_words(const uint32_t* k, uint32_t n, uint32_t initval) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeef + (n << 2) + initval;
  for (; n > 3; n -= 3, k += 3) {
    a += k[0], b += k[1], c += k[2];
    a -= c, a ^= rotl(c, 4), c += b;
    b -= a, b ^= rotl(a, 6), a += c;
    c -= b, c ^= rotl(b, 8), b += a;
    a -= c, a ^= rotl(c, 16), c += b;
    b -= a, b ^= rotl(a, 19), a += c;
    c -= b, c ^= rotl(b, 4), b += a;
  }
  if (n == 0) return c;
  if (n == 3) c += k[2];
  if (n >= 2) b += k[1];
  a += k[0];
  c ^= b, c -= rotl(b, 14);
  a ^= c, a -= rotl(c, 11);
  b ^= a, b -= rotl(a, 25);
  c ^= b, c -= rotl(b, 16);
  a ^= c, a -= rotl(c, 4);
  b ^= a, b -= rotl(a, 14);
  c ^= b, c -= rotl(b, 24);
  return c;
}

class StackTraceMap final : public Map {
 public:
  StackTraceMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        meta_(reinterpret_cast<Meta*>(seg.base + kMetaOffset)),
        buckets_(reinterpret_cast<uint32_t*>(seg.base + kBucketsOffset)),
        elems_(seg.base + elems_offset(spec)),
        n_buckets_(bucket_count(spec)),
        frame_size_(frame_size(spec)),
        elem_size_(elem_size(spec)) {}

  // ---- host side ----
  int lookup(const void* key, void* value) const override { return copy(key, value, false); }
  int lookup_and_delete(const void* key, void* value) override { return copy(key, value, true); }
  int update(const void*, const void*, uint64_t) override { return -EINVAL; }  // stack_map_update_elem
  int erase(const void* key) override;
  int next_key(const void* key, void* next) const override;

  uint32_t depth() const { return spec_.value_size / frame_size_; }
  long get_id(std::span<const uint64_t> ips, const StackBuildId* build_ids, uint64_t flags);

 private:
  Elem* elem(uint32_t ref) const {
    return reinterpret_cast<Elem*>(elems_ + static_cast<size_t>(ref - 1) * elem_size_);
  }
  uint32_t pop_free();
  bool holds(uint32_t id, uint32_t hash, uint32_t nr, const void* frames) const;
  long install(uint32_t id, uint32_t ref, uint32_t hash, uint32_t nr, const void* frames);
  void push_free(uint32_t ref);
  int copy(const void* key, void* value, bool remove) const;

  Meta* meta_;
  uint32_t* buckets_;  // element index + 1; 0: empty
  uint8_t* elems_;
  uint32_t n_buckets_, frame_size_;
  size_t elem_size_;
};

uint32_t StackTraceMap::pop_free() {
  uint32_t ref = meta_->free_head;
  if (ref)
    meta_->free_head = elem(ref)->free_next;
  else if (meta_->unused < spec_.max_entries)
    ref = ++meta_->unused;
  return ref;
}

void StackTraceMap::push_free(uint32_t ref) {
  elem(ref)->free_next = meta_->free_head;
  meta_->free_head = ref;
}

// bpf_stackmap_copy (and bpf_stackmap_extract for lookup_and_delete): the
// frames, zero-padded to value_size; ENOENT for an empty or unknown id.
int StackTraceMap::copy(const void* key, void* value, bool remove) const {
  uint32_t id;
  std::memcpy(&id, key, 4);
  shm::SpinGuard g(meta_->lock);
  if (id >= n_buckets_ || !buckets_[id]) return -ENOENT;
  const Elem* e = elem(buckets_[id]);
  size_t len = e->nr * frame_size_;
  std::memcpy(value, e->frames, len);
  std::memset(static_cast<uint8_t*>(value) + len, 0, spec_.value_size - len);
  if (remove) {
    const_cast<StackTraceMap*>(this)->push_free(buckets_[id]);
    buckets_[id] = 0;
  }
  return 0;
}

// stack_map_delete_elem: E2BIG for an id past the buckets.
int StackTraceMap::erase(const void* key) {
  uint32_t id;
  std::memcpy(&id, key, 4);
  if (id >= n_buckets_) return -E2BIG;
  shm::SpinGuard g(meta_->lock);
  if (!buckets_[id]) return -ENOENT;
  push_free(buckets_[id]);
  buckets_[id] = 0;
  return 0;
}

// stack_map_get_next_key: the next id in use after `key`; from the start
// when `key` is null, past the buckets or empty.
int StackTraceMap::next_key(const void* key, void* next) const {
  shm::SpinGuard g(meta_->lock);
  uint32_t id = 0;
  if (key) {
    std::memcpy(&id, key, 4);
    id = id >= n_buckets_ || !buckets_[id] ? 0 : id + 1;
  }
  while (id < n_buckets_ && !buckets_[id]) ++id;
  if (id >= n_buckets_) return -ENOENT;
  std::memcpy(next, &id, 4);
  return 0;
}

bool StackTraceMap::holds(uint32_t id, uint32_t hash, uint32_t nr, const void* frames) const {
  const Elem* e = buckets_[id] ? elem(buckets_[id]) : nullptr;
  return e && e->hash == hash && e->nr == nr && std::memcmp(e->frames, frames, nr * frame_size_) == 0;
}

// Puts element `ref` with the stack into bucket `id`, freeing the old one.
long StackTraceMap::install(uint32_t id, uint32_t ref, uint32_t hash, uint32_t nr, const void* frames) {
  Elem* e = elem(ref);
  e->hash = hash;
  e->nr = nr;
  std::memcpy(e->frames, frames, nr * frame_size_);
  if (buckets_[id]) push_free(buckets_[id]);
  buckets_[id] = ref;
  return id;
}

// __bpf_get_stackid. The id comes from the hash of the addresses, build-id
// maps included. Those take their new element before comparing (so a full
// map answers -ENOMEM even for a collision), as the kernel does.
long StackTraceMap::get_id(std::span<const uint64_t> ips, const StackBuildId* build_ids, uint64_t flags) {
  auto nr = static_cast<uint32_t>(std::min<size_t>(ips.size(), depth()));
  uint32_t words[2 * kMaxStackDepth];
  std::memcpy(words, ips.data(), nr * sizeof(uint64_t));
  uint32_t hash = jhash_words(words, 2 * nr, 0);
  uint32_t id = hash & (n_buckets_ - 1);
  const void* frames = build_ids ? static_cast<const void*>(build_ids) : ips.data();
  shm::SpinGuard g(meta_->lock);
  bool taken = buckets_[id] != 0;
  // BPF_F_FAST_STACK_CMP trusts the hash alone.
  if (taken && elem(buckets_[id])->hash == hash && (flags & stack_flag::kFastStackCmp)) return id;
  uint32_t ref = 0;
  if (build_ids && !(ref = pop_free())) return -ENOMEM;
  bool same = holds(id, hash, nr, frames);
  if (same || (taken && !(flags & stack_flag::kReuseStackid))) {
    if (ref) push_free(ref);
    return same ? static_cast<long>(id) : -EEXIST;
  }
  if (!ref && !(ref = pop_free())) return -ENOMEM;
  return install(id, ref, hash, nr, frames);
}

// stack_map_alloc's checks, with the default perf_event_max_stack of 127.
Status check_stack_trace(const MapSpec& s) {
  if (s.max_entries == 0) return fail("map '", s.name, "': max_entries 0");
  if (s.key_size != 4) return fail("map '", s.name, "': key_size must be 4 for a stack trace map");
  if (s.value_size < 8 || s.value_size % frame_size(s))
    return fail("map '", s.name, "': value_size ", s.value_size, " must be a non-zero multiple of ",
                frame_size(s));
  if (s.value_size / frame_size(s) > kMaxStackDepth)
    return fail("map '", s.name, "': value_size ", s.value_size, " holds more than ", kMaxStackDepth,
                " frames (perf_event_max_stack)");
  if (s.max_entries > (1u << 31))
    return fail("map '", s.name, "': max_entries ", s.max_entries, " too large");
  if (elems_offset(s) + static_cast<size_t>(s.max_entries) * elem_size(s) > kMaxSegment)
    return fail("map '", s.name, "': max_entries ", s.max_entries, " is too large");
  return check_flags(s, kCreateFlags);
}

size_t stack_trace_size(const MapSpec& s, uint32_t) {
  return shm::round_up(elems_offset(s) + static_cast<size_t>(s.max_entries) * elem_size(s), shm::kPageSize);
}

// A fresh segment is zeroed: no stacks, an empty free list.
MapPtr make_stack_trace(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  return std::make_shared<StackTraceMap>(s, seg, ncpus);
}

}  // namespace

uint32_t stack_map_depth(const Map& map) { return map.spec().value_size / frame_size(map.spec()); }

long stack_map_get_id(Map& map, std::span<const uint64_t> ips, const StackBuildId* build_ids,
                      uint64_t flags) {
  auto* m = map.type() == MapType::StackTrace ? dynamic_cast<StackTraceMap*>(&map) : nullptr;
  if (!m || uses_build_id(map.spec()) != (build_ids != nullptr)) return -EINVAL;
  return m->get_id(ips, build_ids, flags);
}

const MapImpl kStackTraceImpl = {MapType::StackTrace, check_stack_trace, stack_trace_size, make_stack_trace};

}  // namespace ember::maps
