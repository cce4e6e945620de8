// The same random sequences of bpf() map operations on an Ember map and on a
// kernel map of the same definition: every result (0 or errno) and every
// value read must agree. Skips visibly where bpf() does not work.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "ember/maps.hpp"
#include "support/kernel_bpf.hpp"

namespace ember {
namespace {

struct Pair {
  MapPtr ember;
  testing::Fd kernel;
};

Pair make_pair(MapType type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
               uint32_t flags = 0) {
  MapSpec s{"diff", type, key_size, value_size, max_entries, flags};
  auto m = Map::create(s);
  EXPECT_TRUE(m.ok()) << m.error().message;
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
  int fd = bpf_map_create(static_cast<bpf_map_type>(type), "diff", key_size, value_size, max_entries, &o);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  return {m.ok() ? *m : nullptr, testing::Fd(fd)};
}

int kerr(int r) { return r < 0 ? -errno : r; }

// Runs `ops` random operations over keys drawn from [0, key_range).
void run_random_ops(Pair& p, uint32_t key_range, int ops, uint32_t seed, bool keyless = false) {
  const Map& spec_of = *p.ember;
  const uint32_t ks = spec_of.spec().key_size, vs = p.ember->host_value_size();
  std::mt19937 rng(seed);
  std::vector<uint8_t> key(ks ? ks : 1), val(vs), ev(vs), kv(vs);
  for (int i = 0; i < ops; ++i) {
    std::fill(key.begin(), key.end(), 0);
    uint32_t k = rng() % key_range;
    std::memcpy(key.data(), &k, std::min<size_t>(4, ks));
    for (auto& b : val) b = static_cast<uint8_t>(rng());
    const void* kp = keyless ? nullptr : key.data();
    int op = rng() % 5;
    uint64_t flags = rng() % 4;  // includes the invalid 3
    SCOPED_TRACE("op " + std::to_string(i) + " kind " + std::to_string(op) + " key " + std::to_string(k) +
                 " flags " + std::to_string(flags));
    switch (op) {
      case 0:
      case 1: {
        int e = p.ember->update(kp, val.data(), flags);
        int kr = kerr(bpf_map_update_elem(p.kernel.get(), kp, val.data(), flags));
        ASSERT_EQ(e, kr);
        break;
      }
      case 2: {
        std::fill(ev.begin(), ev.end(), 0xAA);
        std::fill(kv.begin(), kv.end(), 0xAA);
        int e = p.ember->lookup(kp, ev.data());
        int kr = kerr(bpf_map_lookup_elem(p.kernel.get(), kp, kv.data()));
        ASSERT_EQ(e, kr);
        if (e == 0) {
          ASSERT_EQ(ev, kv);
        }
        break;
      }
      case 3: {
        int e = p.ember->erase(kp);
        int kr = kerr(bpf_map_delete_elem(p.kernel.get(), kp));
        ASSERT_EQ(e, kr);
        break;
      }
      case 4: {
        if (keyless) {
          int e = p.ember->lookup_and_delete(nullptr, ev.data());
          int kr = kerr(bpf_map_lookup_and_delete_elem(p.kernel.get(), nullptr, kv.data()));
          ASSERT_EQ(e, kr);
          if (e == 0) {
            ASSERT_EQ(ev, kv);
          }
        } else {
          // Hash iteration orders differ, so the key after a given one
          // does too; whether there is a first key may not.
          bool array = spec_of.type() == MapType::Array || spec_of.type() == MapType::PercpuArray;
          const void* from = array ? kp : nullptr;
          std::vector<uint8_t> en(ks), kn(ks);
          int e = p.ember->next_key(from, en.data());
          int kr = kerr(bpf_map_get_next_key(p.kernel.get(), from, kn.data()));
          ASSERT_EQ(e, kr);
          if (e == 0 && array) {
            ASSERT_EQ(en, kn);
          }
        }
        break;
      }
    }
  }
}

std::set<std::vector<uint8_t>> all_keys_ember(const Map& m) {
  std::set<std::vector<uint8_t>> keys;
  std::vector<uint8_t> k(m.spec().key_size), n(m.spec().key_size);
  for (int r = m.next_key(nullptr, n.data()); r == 0; r = m.next_key(k.data(), n.data())) {
    keys.insert(n);
    k = n;
  }
  return keys;
}

std::set<std::vector<uint8_t>> all_keys_kernel(int fd, uint32_t ks) {
  std::set<std::vector<uint8_t>> keys;
  std::vector<uint8_t> k(ks), n(ks);
  for (int r = bpf_map_get_next_key(fd, nullptr, n.data()); r == 0;
       r = bpf_map_get_next_key(fd, k.data(), n.data())) {
    keys.insert(n);
    k = n;
  }
  return keys;
}

class MapKernelDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!testing::kernel_bpf_available(&why)) GTEST_SKIP() << "kernel bpf() unavailable: " << why;
  }
};

TEST_F(MapKernelDiff, Hash) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    auto p = make_pair(MapType::Hash, 8, 12, 32);
    run_random_ops(p, 48, 3000, seed);
    EXPECT_EQ(all_keys_ember(*p.ember), all_keys_kernel(p.kernel.get(), 8));
  }
}

TEST_F(MapKernelDiff, PercpuHash) {
  auto p = make_pair(MapType::PercpuHash, 4, 4, 16);
  run_random_ops(p, 24, 2000, 11);
  EXPECT_EQ(all_keys_ember(*p.ember), all_keys_kernel(p.kernel.get(), 4));
}

TEST_F(MapKernelDiff, Array) {
  auto p = make_pair(MapType::Array, 4, 12, 16);
  run_random_ops(p, 20, 3000, 5);
}

TEST_F(MapKernelDiff, PercpuArray) {
  auto p = make_pair(MapType::PercpuArray, 4, 12, 8);
  run_random_ops(p, 10, 2000, 6);
}

TEST_F(MapKernelDiff, LruHashBelowCapacity) {
  // Which element an LRU evicts depends on the kernel's per-CPU lists; below
  // capacity the two must agree exactly.
  auto p = make_pair(MapType::LruHash, 4, 8, 256);
  run_random_ops(p, 64, 3000, 8);
  EXPECT_EQ(all_keys_ember(*p.ember), all_keys_kernel(p.kernel.get(), 4));
}

TEST_F(MapKernelDiff, QueueAndStack) {
  for (MapType t : {MapType::Queue, MapType::Stack}) {
    auto p = make_pair(t, 0, 8, 5);
    run_random_ops(p, 1, 3000, 9, /*keyless=*/true);
  }
}

TEST_F(MapKernelDiff, BatchOperations) {
  for (MapType t : {MapType::Hash, MapType::Array}) {
    auto p = make_pair(t, 4, 8, 64);
    std::vector<uint32_t> keys(40);
    std::vector<uint64_t> values(40);
    for (uint32_t i = 0; i < 40; ++i) keys[i] = i, values[i] = i * 11;
    uint32_t n = 40;
    ASSERT_EQ(p.ember->update_batch(keys.data(), values.data(), &n, kBpfAny), 0);
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    uint32_t kn = 40;
    ASSERT_EQ(bpf_map_update_batch(p.kernel.get(), keys.data(), values.data(), &kn, &o), 0);
    // Read everything back in batches of 16; the same elements in both.
    auto drain_ember = [&](bool del) {
      std::set<std::pair<uint32_t, uint64_t>> all;
      uint32_t cursor = 0, next = 0;
      bool first = true;
      for (;;) {
        uint32_t k[16], cnt = 16;
        uint64_t v[16];
        int rc = p.ember->lookup_batch(first ? nullptr : &cursor, &next, k, v, &cnt, del);
        for (uint32_t i = 0; i < cnt; ++i) all.insert({k[i], v[i]});
        if (rc == -ENOENT) break;
        EXPECT_EQ(rc, 0);
        if (rc) break;
        cursor = next, first = false;
      }
      return all;
    };
    auto drain_kernel = [&](bool del) {
      std::set<std::pair<uint32_t, uint64_t>> all;
      uint32_t cursor = 0, next = 0;
      bool first = true;
      for (;;) {
        uint32_t k[16], cnt = 16;
        uint64_t v[16];
        int rc = del ? bpf_map_lookup_and_delete_batch(p.kernel.get(), first ? nullptr : &cursor, &next, k, v,
                                                       &cnt, &o)
                     : bpf_map_lookup_batch(p.kernel.get(), first ? nullptr : &cursor, &next, k, v, &cnt, &o);
        for (uint32_t i = 0; i < cnt; ++i) all.insert({k[i], v[i]});
        if (rc < 0 && errno == ENOENT) break;
        EXPECT_EQ(rc, 0) << std::strerror(errno);
        if (rc) break;
        cursor = next, first = false;
      }
      return all;
    };
    auto e = drain_ember(false), k = drain_kernel(false);
    EXPECT_EQ(e, k) << map_type_name(t);
    EXPECT_EQ(e.size(), t == MapType::Array ? 64u : 40u);
    if (t == MapType::Hash) {
      uint32_t del[3] = {1, 2, 3}, dn = 3, kdn = 3;
      ASSERT_EQ(p.ember->delete_batch(del, &dn), 0);
      ASSERT_EQ(bpf_map_delete_batch(p.kernel.get(), del, &kdn, &o), 0);
      EXPECT_EQ(drain_ember(true), drain_kernel(true));
      uint32_t none = 0;
      EXPECT_EQ(p.ember->next_key(nullptr, &none), -ENOENT) << "lookup_and_delete_batch emptied it";
    }
  }
}

}  // namespace
}  // namespace ember
