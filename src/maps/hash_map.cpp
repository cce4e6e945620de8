// BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH and
// HASH_OF_MAPS (kernel/bpf/hashtab.c, bpf_lru_list.c), laid out in shared
// memory. A hash of maps stores inner map ids as 4-byte values.
//
// Elements come from a preallocated pool, as in the kernel's default
// (preallocated) hash maps. Buckets are singly-linked chains of element
// indices that end in a "nulls" marker naming the bucket, like the kernel's
// hlist_nulls: readers walk chains without locks, and one who ends at
// another bucket's marker (its element was deleted and reused meanwhile)
// starts again. Writers lock the bucket (plain hashes) or the whole map
// (LRU hashes, whose list the kernel also guards with one lock).
//
// Updating an existing key inserts a new element and then unlinks the old
// one, so a program holding a pointer to the old value never sees a
// half-written new one; per-CPU maps update in place, as the kernel does.
#include <atomic>
#include <cerrno>
#include <cstring>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

constexpr uint32_t kNulls = 0x80000000u;

struct Meta {
  uint32_t n_buckets;
  uint32_t n_elems;
  uint32_t elem_size;
  uint32_t write_lock;  // LRU maps: guards buckets, the LRU list and the pool
  uint32_t free_lock;
  uint32_t free_head;  // index + 1; 0 = empty
  uint32_t count;      // live elements
  uint32_t lru_head;   // most recently inserted; index + 1
  uint32_t lru_tail;
  uint32_t pad;
  uint64_t seed;
};

struct Bucket {
  uint32_t lock;
  uint32_t head;  // element index, or kNulls | bucket
};

struct Elem {
  uint32_t next;  // element index or kNulls | bucket; kept when freed
  uint32_t hash;
  uint32_t free_next;
  uint32_t lru_prev, lru_next;  // index + 1
  uint8_t ref;                  // LRU: looked up since it was last rotated
  uint8_t pad[3];
  // key, padded to 8, then the value(s)
};
constexpr size_t kElemHeader = sizeof(Elem);
static_assert(kElemHeader == 24);

constexpr size_t kMetaOffset = shm::kHeaderSize;
constexpr size_t kBucketsOffset = kMetaOffset + 64;
static_assert(sizeof(Meta) <= 64);

bool is_lru(MapType t) { return t == MapType::LruHash || t == MapType::LruPercpuHash; }
bool is_percpu(MapType t) { return t == MapType::PercpuHash || t == MapType::LruPercpuHash; }

uint32_t bucket_count(uint32_t max_entries) {
  uint32_t n = 1;
  while (n < max_entries && n < (1u << 30)) n <<= 1;
  return n;
}

uint32_t pool_size(const MapSpec& s, uint32_t ncpus) {
  // Plain hashes keep spare elements for replacing an existing key while
  // the map is full, as the kernel's per-CPU extra_elems do; LRU maps evict.
  return is_lru(s.type) ? s.max_entries : s.max_entries + (ncpus < 64 ? 64 : ncpus);
}

size_t elem_size(const MapSpec& s, uint32_t ncpus) {
  size_t values = is_percpu(s.type) ? static_cast<size_t>(ncpus) * value_stride(s) : value_stride(s);
  return kElemHeader + shm::round_up(s.key_size, 8) + values;
}

size_t elems_offset(const MapSpec& s) {
  return shm::round_up(kBucketsOffset + sizeof(Bucket) * bucket_count(s.max_entries), 64);
}

// 64-bit multiply-mix over the key, 8 bytes at a time.
uint32_t hash_key(const uint8_t* p, size_t n, uint64_t seed) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = seed ^ (n * kMul);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
  }
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

template <class T>
T load_acq(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_acquire);
}
template <class T>
void store_rel(T& v, T x) {
  std::atomic_ref<T>(v).store(x, std::memory_order_release);
}

class HashMap final : public Map {
 public:
  HashMap(const MapSpec& spec, shm::Segment seg, uint32_t ncpus, bool fresh)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        meta_(reinterpret_cast<Meta*>(seg.base + kMetaOffset)),
        buckets_(reinterpret_cast<Bucket*>(seg.base + kBucketsOffset)),
        elems_(seg.base + elems_offset(spec)),
        key_space_(shm::round_up(spec.key_size, 8)),
        stride_(value_stride(spec)),
        cpus_(is_percpu(spec.type) ? ncpus : 1),
        lru_(is_lru(spec.type)),
        of_maps_(spec.type == MapType::HashOfMaps) {
    if (fresh) init(ncpus);
    // Immutable once the map exists: kept here so that lookups do not reload
    // them from the shared header.
    mask_ = meta_->n_buckets - 1;
    elem_size_ = meta_->elem_size;
    seed_ = meta_->seed;
  }

  // ---- host side ----
  int lookup(const void* key, void* value) const override {
    if (of_maps_) return lookup_of_maps(key, value);
    Elem* e = find(key);
    if (!e) return -ENOENT;
    copy_out(e, static_cast<uint8_t*>(value));
    return 0;
  }
  int update(const void* key, const void* value, uint64_t flags) override {
    if (of_maps_) {
      uint32_t id;
      std::memcpy(&id, value, 4);
      Map* inner = resolver_ ? resolver_->map_by_id(id) : nullptr;
      if (!inner) return -EBADF;
      if (!inner_map_compatible(spec_, inner->spec())) return -EINVAL;
    }
    return upsert(key, value, flags, /*all_cpus=*/true);
  }
  int erase(const void* key) override { return remove(key, nullptr); }
  int lookup_and_delete(const void* key, void* value) override {
    return remove(key, static_cast<uint8_t*>(value));
  }
  int next_key(const void* key, void* next) const override;

  // ---- program side ----
  void* prog_lookup(const void* key) override {
    Elem* e = find(key);
    if (!e) return nullptr;
    if (of_maps_) {
      uint32_t id;
      std::memcpy(&id, value_of(e), 4);
      return resolver_ ? resolver_->map_by_id(id) : nullptr;
    }
    if (lru_) set_ref(e);
    return value_of(e) + (cpus_ > 1 ? current_cpu(cpus_) * stride_ : 0);
  }
  long prog_update(const void* key, const void* value, uint64_t flags) override {
    if (of_maps_) return -EINVAL;  // only the host changes a map-in-map
    return upsert(key, value, flags, /*all_cpus=*/false);
  }
  long prog_delete(const void* key) override { return of_maps_ ? -EINVAL : remove(key, nullptr); }
  long prog_for_each(const std::function<uint64_t(const void*, void*)>& fn) override;

 private:
  Elem* elem(uint32_t i) const {
    return reinterpret_cast<Elem*>(elems_ + static_cast<size_t>(i) * elem_size_);
  }
  uint32_t index_of(const Elem* e) const {
    return static_cast<uint32_t>((reinterpret_cast<const uint8_t*>(e) - elems_) / elem_size_);
  }
  uint8_t* key_of(Elem* e) const { return reinterpret_cast<uint8_t*>(e) + kElemHeader; }
  uint8_t* value_of(Elem* e) const { return key_of(e) + key_space_; }
  uint32_t hash(const void* key) const {
    return hash_key(static_cast<const uint8_t*>(key), spec_.key_size, seed_);
  }
  Bucket& bucket_for(uint32_t h) const { return buckets_[h & mask_]; }
  uint32_t& write_lock(Bucket& b) const { return lru_ ? meta_->write_lock : b.lock; }

  void init(uint32_t ncpus) {
    meta_->n_buckets = bucket_count(spec_.max_entries);
    meta_->n_elems = pool_size(spec_, ncpus);
    meta_->elem_size = static_cast<uint32_t>(elem_size(spec_, ncpus));
    meta_->seed =
        (spec_.map_flags & map_flag::kZeroSeed) ? 0 : 0x5DEECE66Dull ^ reinterpret_cast<uintptr_t>(this);
    elem_size_ = meta_->elem_size;  // elem() below needs it
    for (uint32_t b = 0; b < meta_->n_buckets; ++b) buckets_[b].head = kNulls | b;
    for (uint32_t i = 0; i < meta_->n_elems; ++i) elem(i)->free_next = i + 2 <= meta_->n_elems ? i + 2 : 0;
    meta_->free_head = meta_->n_elems ? 1 : 0;
  }

  // Lock-free chain walk; restarts when a reused element led it astray.
  // bpf_lru_node_set_ref: written by readers without the lock.
  static void set_ref(Elem* e) {
    std::atomic_ref<uint8_t> r(e->ref);
    if (!r.load(std::memory_order_relaxed)) r.store(1, std::memory_order_relaxed);
  }
  static bool take_ref(Elem* e) {
    return std::atomic_ref<uint8_t>(e->ref).exchange(0, std::memory_order_relaxed);
  }

  // Word-wise: 4- and 8-byte keys (most maps) are one compare.
  bool same_key(const Elem* e, const void* key) const {
    return shm::key_words_equal(key_of(const_cast<Elem*>(e)), key, spec_.key_size);
  }

  Elem* find(const void* key) const {
    uint32_t h = hash(key);
    uint32_t b = h & mask_;
    for (;;) {
      uint32_t v = load_acq(buckets_[b].head);
      for (; !(v & kNulls); v = load_acq(elem(v)->next)) {
        Elem* e = elem(v);
        if (std::atomic_ref<uint32_t>(e->hash).load(std::memory_order_relaxed) == h && same_key(e, key))
          return e;
      }
      if ((v & ~kNulls) == b) return nullptr;
    }
  }

  // Under the bucket's write lock.
  Elem* find_locked(const Bucket& bk, uint32_t h, const void* key, Elem** prev) const {
    *prev = nullptr;
    for (uint32_t v = bk.head; !(v & kNulls); v = elem(v)->next) {
      Elem* e = elem(v);
      if (e->hash == h && same_key(e, key)) return e;
      *prev = e;
    }
    return nullptr;
  }
  void unlink(Bucket& bk, Elem* prev, Elem* e) {
    if (prev)
      store_rel(prev->next, e->next);
    else
      store_rel(bk.head, e->next);
  }

  // Returns the count before adding.
  uint32_t count_add(int d) {
    return std::atomic_ref<uint32_t>(meta_->count)
        .fetch_add(static_cast<uint32_t>(d), std::memory_order_relaxed);
  }
  Elem* pool_pop();
  void pool_push(Elem* e);
  Elem* lru_evict();
  void lru_link_head(Elem* e);
  void lru_unlink(Elem* e);

  void fill_value(Elem* e, const void* value, bool all_cpus, bool fresh);
  void copy_out(Elem* e, uint8_t* out) const;
  int upsert(const void* key, const void* value, uint64_t flags, bool all_cpus);
  int remove(const void* key, uint8_t* value_out);

  int lookup_of_maps(const void* key, void* value) const {
    Elem* e = find(key);
    if (!e) return -ENOENT;
    std::memcpy(value, value_of(e), 4);  // the inner map's id, as the kernel returns
    return 0;
  }

  Meta* meta_;
  Bucket* buckets_;
  uint8_t* elems_;
  uint32_t key_space_, stride_, cpus_;
  bool lru_, of_maps_;
  uint32_t mask_ = 0, elem_size_ = 0;
  uint64_t seed_ = 0;
};

Elem* HashMap::pool_pop() {
  shm::SpinGuard g(meta_->free_lock);
  uint32_t i = meta_->free_head;
  if (!i) return nullptr;
  Elem* e = elem(i - 1);
  meta_->free_head = e->free_next;
  return e;
}

void HashMap::pool_push(Elem* e) {
  shm::SpinGuard g(meta_->free_lock);
  e->free_next = meta_->free_head;
  meta_->free_head = index_of(e) + 1;
}

// LRU list: head = newest. Both are called with the map's write lock held.
void HashMap::lru_link_head(Elem* e) {
  uint32_t i = index_of(e) + 1;
  e->lru_prev = 0;
  e->lru_next = meta_->lru_head;
  if (meta_->lru_head) elem(meta_->lru_head - 1)->lru_prev = i;
  meta_->lru_head = i;
  if (!meta_->lru_tail) meta_->lru_tail = i;
}

void HashMap::lru_unlink(Elem* e) {
  if (e->lru_prev)
    elem(e->lru_prev - 1)->lru_next = e->lru_next;
  else
    meta_->lru_head = e->lru_next;
  if (e->lru_next)
    elem(e->lru_next - 1)->lru_prev = e->lru_prev;
  else
    meta_->lru_tail = e->lru_prev;
}

// Second chance, like the kernel's inactive-list rotation: elements looked
// up since they were last considered move to the head with their reference
// cleared; the oldest unreferenced element is evicted.
Elem* HashMap::lru_evict() {
  for (uint32_t rotations = 0; meta_->lru_tail; ++rotations) {
    Elem* e = elem(meta_->lru_tail - 1);
    if (take_ref(e) && rotations < meta_->n_elems) {
      lru_unlink(e);
      lru_link_head(e);
      continue;
    }
    lru_unlink(e);
    Bucket& bk = bucket_for(e->hash);
    Elem* prev = nullptr;
    for (uint32_t v = bk.head; !(v & kNulls); v = elem(v)->next) {
      if (elem(v) == e) break;
      prev = elem(v);
    }
    unlink(bk, prev, e);
    count_add(-1);
    return e;
  }
  return nullptr;
}

void HashMap::fill_value(Elem* e, const void* value, bool all_cpus, bool fresh) {
  uint8_t* dst = value_of(e);
  const uint8_t* src = static_cast<const uint8_t*>(value);
  if (cpus_ == 1) {
    std::memcpy(dst, src, spec_.value_size);
    return;
  }
  if (all_cpus) {
    // From the host: every CPU's value, padding included (bpf_long_memcpy).
    std::memcpy(dst, src, static_cast<size_t>(cpus_) * stride_);
    return;
  }
  // From a program: this CPU's value; a new element's others start at zero.
  if (fresh) std::memset(dst, 0, static_cast<size_t>(cpus_) * stride_);
  std::memcpy(dst + current_cpu(cpus_) * stride_, src, spec_.value_size);
}

void HashMap::copy_out(Elem* e, uint8_t* out) const {
  std::memcpy(out, value_of(e), cpus_ == 1 ? spec_.value_size : static_cast<size_t>(cpus_) * stride_);
}

// htab_map_update_elem: EINVAL for unknown flags, EEXIST / ENOENT for
// NOEXIST / EXIST, E2BIG when a plain hash is full.
int HashMap::upsert(const void* key, const void* value, uint64_t flags, bool all_cpus) {
  uint64_t mode = flags & ~kBpfFLock;
  if (mode > kBpfExist) return -EINVAL;
  uint32_t h = hash(key);
  Bucket& bk = bucket_for(h);
  shm::SpinGuard g(write_lock(bk));
  Elem* prev;
  Elem* old = find_locked(bk, h, key, &prev);
  if (old && mode == kBpfNoexist) return -EEXIST;
  if (!old && mode == kBpfExist) return -ENOENT;
  if (old && cpus_ > 1) {
    fill_value(old, value, all_cpus, false);
    if (lru_) set_ref(old);
    return 0;
  }
  if (!old && !lru_ && count_add(1) >= spec_.max_entries) {
    count_add(-1);
    return -E2BIG;
  }
  Elem* e = pool_pop();
  if (!e && lru_) {
    e = lru_evict();
    // Eviction may have taken `old` itself, or the element before it.
    old = find_locked(bk, h, key, &prev);
  }
  if (!e) {
    if (!old) count_add(-1);
    return -E2BIG;
  }
  std::atomic_ref<uint32_t>(e->hash).store(h, std::memory_order_relaxed);
  std::atomic_ref<uint8_t>(e->ref).store(0, std::memory_order_relaxed);
  shm::store_key_words(key_of(e), key, spec_.key_size);
  fill_value(e, value, all_cpus, true);
  // Readers may still be walking `e` from its previous life: its link
  // changes atomically (they then end at the wrong bucket and restart).
  std::atomic_ref<uint32_t>(e->next).store(bk.head, std::memory_order_relaxed);
  store_rel(bk.head, index_of(e));
  if (old) {
    // `old` is now second in line: `e` went in at the head.
    unlink(bk, prev ? prev : e, old);
    if (lru_) lru_unlink(old);
    pool_push(old);
  } else if (lru_) {
    count_add(1);
  }
  if (lru_) lru_link_head(e);
  return 0;
}

int HashMap::remove(const void* key, uint8_t* value_out) {
  uint32_t h = hash(key);
  Bucket& bk = bucket_for(h);
  shm::SpinGuard g(write_lock(bk));
  Elem* prev;
  Elem* e = find_locked(bk, h, key, &prev);
  if (!e) return -ENOENT;
  if (value_out) copy_out(e, value_out);
  unlink(bk, prev, e);
  if (lru_) lru_unlink(e);
  count_add(-1);
  pool_push(e);
  return 0;
}

// htab_map_get_next_key: the element after `key` in bucket order; the first
// element when `key` is null or no longer in the map.
int HashMap::next_key(const void* key, void* next) const {
  uint32_t b = 0;
  if (key) {
    Elem* e = find(key);
    if (e) {
      uint32_t v = load_acq(e->next);
      if (!(v & kNulls)) {
        shm::load_key_words(next, key_of(elem(v)), spec_.key_size);
        return 0;
      }
      b = (hash(key) & mask_) + 1;
    }
  }
  for (; b < meta_->n_buckets; ++b) {
    uint32_t v = load_acq(buckets_[b].head);
    if (!(v & kNulls)) {
      shm::load_key_words(next, key_of(elem(v)), spec_.key_size);
      return 0;
    }
  }
  return -ENOENT;
}

long HashMap::prog_for_each(const std::function<uint64_t(const void*, void*)>& fn) {
  uint32_t cpu = cpus_ > 1 ? current_cpu(cpus_) : 0;
  long n = 0;
  for (uint32_t b = 0; b < meta_->n_buckets; ++b) {
    for (uint32_t v = load_acq(buckets_[b].head); !(v & kNulls);) {
      Elem* e = elem(v);
      v = load_acq(e->next);  // read first: the callback may delete `e`
      ++n;
      if (fn(key_of(e), value_of(e) + cpu * stride_)) return n;
    }
  }
  return n;
}

constexpr uint32_t kHashFlags = map_flag::kNoPrealloc | map_flag::kNoCommonLru | map_flag::kNumaNode |
                                map_flag::kRdonly | map_flag::kWronly | map_flag::kRdonlyProg |
                                map_flag::kWronlyProg | map_flag::kZeroSeed | map_flag::kInnerMap;

Status check_hash(const MapSpec& s) {
  if (s.key_size == 0) return fail("map '", s.name, "': key_size 0");
  if (s.value_size == 0) return fail("map '", s.name, "': value_size 0");
  if (s.max_entries == 0) return fail("map '", s.name, "': max_entries 0");
  if (s.max_entries >= (1u << 30))
    return fail("map '", s.name, "': max_entries ", s.max_entries, " is too large");
  if (is_lru(s.type) && (s.map_flags & map_flag::kNoPrealloc))
    return fail("map '", s.name, "': LRU maps are always preallocated (BPF_F_NO_PREALLOC is not allowed)");
  if (!is_lru(s.type) && (s.map_flags & map_flag::kNoCommonLru))
    return fail("map '", s.name, "': BPF_F_NO_COMMON_LRU applies to LRU maps only");
  if (is_percpu(s.type) && s.value_size > 32768)
    return fail("map '", s.name, "': per-CPU value_size ", s.value_size, " exceeds 32768");
  if (s.type == MapType::HashOfMaps && (s.value_size != 4 || !s.inner))
    return fail("map '", s.name, "': a hash of maps needs value_size 4 and an inner map definition");
  return check_flags(s, kHashFlags);
}

size_t hash_size(const MapSpec& s, uint32_t ncpus) {
  return shm::round_up(elems_offset(s) + static_cast<size_t>(pool_size(s, ncpus)) * elem_size(s, ncpus),
                       shm::kPageSize);
}

MapPtr make_hash(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool fresh) {
  return std::make_shared<HashMap>(s, seg, ncpus, fresh);
}

}  // namespace

const MapImpl kHashImpl = {MapType::Hash, check_hash, hash_size, make_hash};
const MapImpl kPercpuHashImpl = {MapType::PercpuHash, check_hash, hash_size, make_hash};
const MapImpl kLruHashImpl = {MapType::LruHash, check_hash, hash_size, make_hash};
const MapImpl kLruPercpuHashImpl = {MapType::LruPercpuHash, check_hash, hash_size, make_hash};
const MapImpl kHashOfMapsImpl = {MapType::HashOfMaps, check_hash, hash_size, make_hash};

}  // namespace ember::maps
