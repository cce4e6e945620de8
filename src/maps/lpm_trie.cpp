// BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c) in shared memory.
//
// Keys are struct bpf_lpm_trie_key_u8: a host-order u32 prefixlen followed
// by key_size - 4 bytes of data, read most significant bit first. Like the
// kernel's, the trie is a path-compressed binary trie: every node holds a
// prefix; "intermediate" nodes (no value, exactly two children) are added
// where two prefixes diverge. Lookups are longest-prefix match, for
// programs and for the host alike (the kernel's bpf() lookup is too).
//
// Nodes live in a pool in the segment and link by index + 1, so another
// process can map the segment. n real nodes need at most n - 1
// intermediate ones, plus one spare for the new node of a replacement
// (inserted before the old one is freed, as the kernel does), so the pool
// holds 2 * max_entries + 1 nodes. Nodes are handed out from a free list,
// then from the never-used tail, so untouched pages of a big pool stay
// unbacked.
//
// Writers take a spin lock and bump a sequence counter around their
// changes (a seqlock); readers walk without the lock and start again when
// the counter moved, as the kernel's RCU readers never have to. A pointer a
// program got from a lookup stays valid memory, but its node may be reused
// once the element is deleted or replaced (as with the preallocated hash).
//
// Like the kernel's trie_map_ops, there is no bpf_for_each_map_elem and no
// lookup_and_delete (both answer ENOTSUPP), and a full trie refuses a new
// prefix with ENOSPC rather than the E2BIG of hash maps.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <type_traits>
#include <vector>

#include "maps/map_impl.hpp"

namespace ember::maps {
namespace {

constexpr uint32_t kIntermediate = 1;  // LPM_TREE_NODE_FLAG_IM
constexpr uint32_t kDataSizeMin = 1, kDataSizeMax = 256;
// KMALLOC_MAX_SIZE (4 MiB) - LPM_DATA_SIZE_MAX - sizeof(struct lpm_trie_node).
constexpr uint32_t kValueSizeMax = (4u << 20) - kDataSizeMax - 40;
constexpr size_t kMaxSegment = size_t{1} << 40;  // keeps the pool arithmetic sane
constexpr uint32_t kCreateFlags = map_flag::kNoPrealloc | map_flag::kNumaNode | map_flag::kRdonly |
                                  map_flag::kWronly | map_flag::kRdonlyProg | map_flag::kWronlyProg;

struct Meta {
  uint32_t lock;       // writers
  uint32_t seq;        // odd while a writer changes the trie
  uint32_t root;       // node index + 1; 0: empty
  uint32_t n_entries;  // real (non-intermediate) nodes
  uint32_t free_head;  // index + 1; 0: empty
  uint32_t unused;     // first node never handed out
};
constexpr size_t kMetaOffset = shm::kHeaderSize;
constexpr size_t kNodesOffset = kMetaOffset + 64;
static_assert(sizeof(Meta) <= 64);

struct Node {
  uint32_t child[2];  // index + 1; 0: none
  uint32_t prefixlen;
  uint32_t flags;
  uint32_t free_next;
  uint32_t pad;
  // data (padded to 8), then the value
};
constexpr size_t kNodeHeader = sizeof(Node);

// struct bpf_lpm_trie_key_u8, read out of the caller's memory (which
// need not be aligned).
struct Key {
  uint32_t prefixlen;
  const uint8_t* data;
};
Key key_at(const void* p) {
  Key k;
  std::memcpy(&k.prefixlen, p, 4);
  k.data = static_cast<const uint8_t*>(p) + 4;
  return k;
}

uint32_t data_size(const MapSpec& s) { return s.key_size - 4; }
uint32_t pool_nodes(const MapSpec& s) { return static_cast<uint32_t>(2ull * s.max_entries + 1); }
size_t node_size(const MapSpec& s) {
  return kNodeHeader + shm::round_up(data_size(s), 8) + shm::round_up(s.value_size, 8);
}

template <class T>
T load(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_relaxed);
}
template <class T>
void store(T& v, T x) {
  std::atomic_ref<T>(v).store(x, std::memory_order_relaxed);
}

// Node data and values are read by lock-free readers while a writer may
// be filling the same node again (it was freed and reused): both sides
// copy them with relaxed atomic accesses, and the seqlock throws away what
// a reader got in the middle of a change. Values go by 8-byte words (they
// start 8-byte aligned), key data byte by byte, the same on both sides.
void shared_write_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) std::atomic_ref<uint8_t>(dst[i]).store(src[i], std::memory_order_relaxed);
}
uint8_t shared_byte(const uint8_t& b) { return load(b); }
void shared_write_value(uint8_t* dst, const uint8_t* src, size_t n) {
  for (; n >= 8; n -= 8, dst += 8, src += 8) {
    uint64_t w;
    std::memcpy(&w, src, 8);
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(dst)).store(w, std::memory_order_relaxed);
  }
  shared_write_bytes(dst, src, n);
}
void shared_read_value(uint8_t* dst, const uint8_t* src, size_t n) {
  for (; n >= 8; n -= 8, dst += 8, src += 8) {
    uint64_t w = load(*reinterpret_cast<const uint64_t*>(src));
    std::memcpy(dst, &w, 8);
  }
  for (size_t i = 0; i < n; ++i) dst[i] = load(src[i]);
}

// Bit `i` of a big-endian bit string (the kernel's extract_bit).
unsigned bit(const uint8_t* data, uint32_t i) { return (data[i / 8] >> (7 - i % 8)) & 1; }

// How many leading bits of a node's data and a key agree, at most `limit`
// (longest_prefix_match with limit = min(node and key prefixlen)).
uint32_t common_bits(const uint8_t* node_data, const uint8_t* key, uint32_t nbytes, uint32_t limit) {
  uint32_t bits = 0;
  for (uint32_t i = 0; i < nbytes && bits < limit; ++i) {
    auto diff = static_cast<uint8_t>(shared_byte(node_data[i]) ^ key[i]);
    if (diff) return std::min(limit, bits + static_cast<uint32_t>(std::countl_zero(diff)));
    bits += 8;
  }
  return std::min(bits, limit);
}

class LpmTrie final : public Map {
 public:
  LpmTrie(const MapSpec& spec, shm::Segment seg, uint32_t ncpus)
      : Map(spec, seg.fd, seg.base, seg.size, ncpus),
        meta_(reinterpret_cast<Meta*>(seg.base + kMetaOffset)),
        nodes_(seg.base + kNodesOffset),
        node_size_(node_size(spec)),
        n_nodes_(pool_nodes(spec)),
        data_size_(data_size(spec)),
        max_bits_(data_size(spec) * 8) {}

  // ---- host side ----
  int lookup(const void* key, void* value) const override {
    bool found = read_section([&] {
      const Node* n = longest_match(key_at(key));
      if (n) shared_read_value(static_cast<uint8_t*>(value), value_of(n), spec_.value_size);
      return n != nullptr;
    });
    return found ? 0 : -ENOENT;
  }
  int update(const void* key, const void* value, uint64_t flags) override {
    return upsert(key_at(key), value, flags);
  }
  int erase(const void* key) override { return remove(key_at(key)); }
  int next_key(const void* key, void* next) const override;

  // ---- program side (the same trie_*_elem functions serve both in the kernel) ----
  void* prog_lookup(const void* key) override {
    return read_section([&] {
      const Node* n = longest_match(key_at(key));
      return n ? const_cast<uint8_t*>(value_of(n)) : nullptr;
    });
  }
  long prog_update(const void* key, const void* value, uint64_t flags) override {
    return upsert(key_at(key), value, flags);
  }
  long prog_delete(const void* key) override { return remove(key_at(key)); }

 private:
  // Holds the lock and keeps the sequence odd for the writer's changes.
  class WriteSection {
   public:
    explicit WriteSection(Meta& m) : guard_(m.lock), seq_(m.seq) {
      seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
    }
    ~WriteSection() { seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

   private:
    shm::SpinGuard guard_;
    std::atomic_ref<uint32_t> seq_;
  };

  // Runs `f` until no writer ran meanwhile; `f` must survive reading a
  // trie in the middle of a change (node() and the walks bound everything).
  template <class F>
  std::invoke_result_t<F&> read_section(F f) const {
    std::atomic_ref<uint32_t> seq(meta_->seq);
    for (unsigned spins = 0;; ++spins) {
      uint32_t s = seq.load(std::memory_order_acquire);
      if (!(s & 1)) {
        auto r = f();
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq.load(std::memory_order_relaxed) == s) return r;
      }
      // A writer holds the trie: let it run if it was preempted.
      if (spins > 1000)
        sched_yield();
      else
        __builtin_ia32_pause();
    }
  }

  // Null for 0 and for an index a torn read made up.
  Node* node(uint32_t ref) const {
    if (ref == 0 || ref > n_nodes_) return nullptr;
    return reinterpret_cast<Node*>(nodes_ + static_cast<size_t>(ref - 1) * node_size_);
  }
  static uint8_t* data_of(Node* n) { return reinterpret_cast<uint8_t*>(n) + kNodeHeader; }
  static const uint8_t* data_of(const Node* n) { return reinterpret_cast<const uint8_t*>(n) + kNodeHeader; }
  const uint8_t* value_of(const Node* n) const { return data_of(n) + shm::round_up(data_size_, 8); }
  uint8_t* value_of(Node* n) const { return data_of(n) + shm::round_up(data_size_, 8); }
  uint32_t match(const Node* n, const Key& key) const {
    uint32_t limit = std::min(std::min(load(n->prefixlen), key.prefixlen), max_bits_);
    return common_bits(data_of(n), key.data, data_size_, limit);
  }

  const Node* longest_match(const Key& key) const;
  uint32_t* find_slot(const Key& key, uint32_t* matchlen);
  int check_add(uint64_t flags);
  uint32_t alloc_node();
  void free_node(uint32_t ref);
  uint32_t new_leaf(const Key& key, const void* value);
  int upsert(const Key& key, const void* value, uint64_t flags);
  int remove(const Key& key);
  const Node* leftmost(const Node* from) const;
  const Node* successor(const Key* key) const;

  Meta* meta_;
  uint8_t* nodes_;
  size_t node_size_;
  uint32_t n_nodes_, data_size_, max_bits_;
};

// trie_lookup_elem: the deepest real node whose prefix the key matches; a
// full-length match ends the walk at once. A key longer than the data
// matches nothing (current kernels check this; older ones clamped it).
const Node* LpmTrie::longest_match(const Key& key) const {
  if (key.prefixlen > max_bits_) return nullptr;
  const Node* found = nullptr;
  const Node* n = node(load(meta_->root));
  for (uint32_t depth = 0; n && depth <= max_bits_; ++depth) {
    uint32_t matchlen = match(n, key);
    if (matchlen == max_bits_) return n;
    uint32_t plen = load(n->prefixlen);
    if (matchlen < plen || plen >= max_bits_) break;  // the second: only a torn read
    if (!(load(n->flags) & kIntermediate)) found = n;
    n = node(load(n->child[bit(key.data, plen)]));
  }
  return found;
}

// The walk trie_update_elem starts with: the slot holding the node where
// the key's place is (or an empty slot), and the bits that node matches.
uint32_t* LpmTrie::find_slot(const Key& key, uint32_t* matchlen) {
  uint32_t* slot = &meta_->root;
  *matchlen = 0;
  for (Node* n; (n = node(*slot));) {
    *matchlen = match(n, key);
    if (n->prefixlen != *matchlen || n->prefixlen == key.prefixlen) break;
    slot = &n->child[bit(key.data, n->prefixlen)];
  }
  return slot;
}

// trie_check_add_elem: a new element needs !BPF_EXIST and room. A full
// trie is ENOSPC here, not the E2BIG of hashes.
int LpmTrie::check_add(uint64_t flags) {
  if (flags == kBpfExist) return -ENOENT;
  if (meta_->n_entries == spec_.max_entries) return -ENOSPC;
  ++meta_->n_entries;
  return 0;
}

uint32_t LpmTrie::alloc_node() {
  uint32_t ref = meta_->free_head;
  if (ref) {
    meta_->free_head = node(ref)->free_next;
  } else if (meta_->unused < n_nodes_) {
    ref = ++meta_->unused;
  }
  return ref;  // 0 cannot happen: the pool is sized for the worst case
}

void LpmTrie::free_node(uint32_t ref) {
  node(ref)->free_next = meta_->free_head;
  meta_->free_head = ref;
}

uint32_t LpmTrie::new_leaf(const Key& key, const void* value) {
  uint32_t ref = alloc_node();
  Node* n = node(ref);
  store(n->child[0], 0u);
  store(n->child[1], 0u);
  store(n->prefixlen, key.prefixlen);
  store(n->flags, 0u);
  // The whole data, bits past the prefix included: get_next_key returns it.
  shared_write_bytes(data_of(n), key.data, data_size_);
  shared_write_value(value_of(n), static_cast<const uint8_t*>(value), spec_.value_size);
  return ref;
}

// trie_update_elem: EINVAL for flags above BPF_EXIST or a prefix longer
// than the data; EEXIST, ENOENT as the flags ask; ENOSPC when full.
int LpmTrie::upsert(const Key& key, const void* value, uint64_t flags) {
  if (flags > kBpfExist || key.prefixlen > max_bits_) return -EINVAL;
  WriteSection w(*meta_);
  uint32_t matchlen;
  uint32_t* slot = find_slot(key, &matchlen);
  Node* n = node(*slot);
  if (!n) {  // an empty slot: the new node is a leaf there
    if (int e = check_add(flags)) return e;
    store(*slot, new_leaf(key, value));
    return 0;
  }
  if (n->prefixlen == matchlen) {  // the same prefix: a new node takes its place
    if (!(n->flags & kIntermediate)) {
      if (flags == kBpfNoexist) return -EEXIST;
    } else if (int e = check_add(flags)) {
      return e;
    }
    uint32_t ref = new_leaf(key, value);
    store(node(ref)->child[0], n->child[0]);
    store(node(ref)->child[1], n->child[1]);
    uint32_t old = *slot;
    store(*slot, ref);
    free_node(old);
    return 0;
  }
  if (int e = check_add(flags)) return e;
  uint32_t ref = new_leaf(key, value);
  if (matchlen == key.prefixlen) {  // the new prefix covers `n`: insert above it
    store(node(ref)->child[bit(data_of(n), matchlen)], *slot);
    store(*slot, ref);
    return 0;
  }
  // The prefixes diverge after `matchlen` bits: an intermediate node splits them.
  uint32_t im = alloc_node();
  Node* m = node(im);
  store(m->prefixlen, matchlen);
  store(m->flags, kIntermediate);
  shared_write_bytes(data_of(m), data_of(n), data_size_);
  unsigned b = bit(key.data, matchlen);
  store(m->child[b], ref);
  store(m->child[1 - b], *slot);
  store(*slot, im);
  return 0;
}

// trie_delete_elem: exact prefix only (ENOENT otherwise). A node with two
// children stays as an intermediate node; a leaf under an intermediate
// node takes that node with it, so intermediate nodes keep two children.
int LpmTrie::remove(const Key& key) {
  if (key.prefixlen > max_bits_) return -EINVAL;
  WriteSection w(*meta_);
  uint32_t *trim = &meta_->root, *trim2 = trim;
  Node *n = nullptr, *parent = nullptr;
  uint32_t matchlen = 0;
  while ((n = node(*trim))) {
    matchlen = match(n, key);
    if (n->prefixlen != matchlen || n->prefixlen == key.prefixlen) break;
    parent = n;
    trim2 = trim;
    trim = &n->child[bit(key.data, n->prefixlen)];
  }
  if (!n || n->prefixlen != key.prefixlen || n->prefixlen != matchlen || (n->flags & kIntermediate))
    return -ENOENT;
  --meta_->n_entries;
  if (n->child[0] && n->child[1]) {
    store(n->flags, n->flags | kIntermediate);
    return 0;
  }
  uint32_t ref = *trim;
  if (parent && (parent->flags & kIntermediate) && !n->child[0] && !n->child[1]) {
    uint32_t sibling = parent->child[0] == ref ? parent->child[1] : parent->child[0];
    uint32_t pref = *trim2;
    store(*trim2, sibling);
    free_node(pref);
    free_node(ref);
    return 0;
  }
  store(*trim, n->child[0] ? n->child[0] : n->child[1]);
  free_node(ref);
  return 0;
}

// The first real node in postorder under `from`: down the left side,
// taking the right child where there is no left one.
const Node* LpmTrie::leftmost(const Node* from) const {
  const Node* found = nullptr;
  for (const Node* n = from; n;) {
    if (!(n->flags & kIntermediate)) found = n;
    const Node* next = node(n->child[0]);
    if (!next && !(n->flags & kIntermediate)) next = node(n->child[1]);
    n = next;
  }
  return found;
}

// trie_get_next_key: keys come in postorder, so more specific prefixes
// come before the prefixes that cover them. A key that is not in the trie
// (or a null one) starts over at the first.
const Node* LpmTrie::successor(const Key* key) const {
  const Node* root = node(meta_->root);
  if (!key || key->prefixlen > max_bits_) return leftmost(root);
  std::vector<const Node*> path;
  const Node* n = root;
  uint32_t matchlen = 0;
  for (; n; n = node(n->child[bit(key->data, n->prefixlen)])) {
    path.push_back(n);
    matchlen = match(n, *key);
    if (n->prefixlen != matchlen || n->prefixlen == key->prefixlen) break;
  }
  if (!n || n->prefixlen != matchlen || (n->flags & kIntermediate)) return leftmost(root);
  for (size_t i = path.size() - 1; i > 0; --i) {
    const Node* parent = path[i - 1];
    if (node(parent->child[0]) == path[i] && parent->child[1]) return leftmost(node(parent->child[1]));
    if (!(parent->flags & kIntermediate)) return parent;
  }
  return nullptr;
}

int LpmTrie::next_key(const void* key, void* next) const {
  shm::SpinGuard g(meta_->lock);  // a host call: simply keep writers out
  if (!meta_->root) return -ENOENT;
  Key k = key ? key_at(key) : Key{};
  const Node* n = successor(key ? &k : nullptr);
  if (!n) return -ENOENT;
  std::memcpy(next, &n->prefixlen, 4);
  std::memcpy(static_cast<uint8_t*>(next) + 4, data_of(n), data_size_);
  return 0;
}

// trie_alloc's checks.
Status check_lpm(const MapSpec& s) {
  if (s.max_entries == 0) return fail("map '", s.name, "': max_entries 0");
  if (!(s.map_flags & map_flag::kNoPrealloc))
    return fail("map '", s.name, "': an LPM trie needs BPF_F_NO_PREALLOC, as the kernel requires");
  if ((s.map_flags & map_flag::kRdonlyProg) && (s.map_flags & map_flag::kWronlyProg))
    return fail("map '", s.name, "': BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together");
  if (s.key_size < 4 + kDataSizeMin || s.key_size > 4 + kDataSizeMax)
    return fail("map '", s.name, "': key_size ", s.key_size,
                " must be 4 (prefixlen) + 1..256 bytes of data for an LPM trie");
  if (s.value_size == 0 || s.value_size > kValueSizeMax)
    return fail("map '", s.name, "': value_size ", s.value_size, " must be 1..", kValueSizeMax);
  if (kNodesOffset + static_cast<size_t>(pool_nodes(s)) * node_size(s) > kMaxSegment)
    return fail("map '", s.name, "': max_entries ", s.max_entries, " is too large for the node pool");
  return check_flags(s, kCreateFlags);
}

size_t lpm_size(const MapSpec& s, uint32_t) {
  return shm::round_up(kNodesOffset + static_cast<size_t>(pool_nodes(s)) * node_size(s), shm::kPageSize);
}

// A fresh segment is zeroed, which is an empty trie with an empty free list.
MapPtr make_lpm(const MapSpec& s, shm::Segment seg, uint32_t ncpus, bool) {
  return std::make_shared<LpmTrie>(s, seg, ncpus);
}

}  // namespace

const MapImpl kLpmTrieImpl = {MapType::LpmTrie, check_lpm, lpm_size, make_lpm};

}  // namespace ember::maps
