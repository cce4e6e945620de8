// Many threads on the same maps, as programs on many CPUs plus the host:
// no lost atomic updates, no lost or duplicated queue elements, no
// deadlock, and LRU maps that stay within their size. Built with TSan in
// CI (EMBER_SANITIZE=thread) as well.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "ember/maps.hpp"

namespace ember {
namespace {

constexpr int kThreads = 4;

MapPtr make(MapType type, uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  auto m = Map::create(MapSpec{"stress", type, key_size, value_size, max_entries, 0});
  EXPECT_TRUE(m.ok()) << m.error().message;
  return *m;
}

template <class F>
void run_threads(int n, F&& f) {
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t) ts.emplace_back(f, t);
  for (auto& t : ts) t.join();
}

TEST(MapStressTest, HashCountersLoseNoUpdatesWhileOtherKeysChurn) {
  auto m = make(MapType::Hash, 4, 8, 256);
  constexpr uint32_t kCounters = 8;
  constexpr int kIncrements = 20000;
  for (uint32_t k = 0; k < kCounters; ++k) {
    uint64_t zero = 0;
    ASSERT_EQ(m->update(&k, &zero, kBpfAny), 0);
  }
  std::atomic<bool> stop{false};
  // The host churns other keys and iterates, as `ember map dump` would.
  std::thread churn([&] {
    for (uint32_t i = 0; !stop.load(); ++i) {
      uint32_t k = 1000 + i % 200;
      uint64_t v = i;
      m->update(&k, &v, kBpfAny);
      uint32_t gone = 1000 + (i * 7) % 200;
      m->erase(&gone);
      std::vector<uint8_t> key(4), next(4);
      for (int r = m->next_key(nullptr, next.data()), n = 0; r == 0 && n < 64; ++n) {
        key = next;
        r = m->next_key(key.data(), next.data());
      }
    }
  });
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < kIncrements; ++i) {
      uint32_t k = (t + i) % kCounters;
      auto* v = static_cast<uint64_t*>(m->prog_lookup(&k));
      ASSERT_NE(v, nullptr);
      __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);  // what a program's atomic add does
    }
  });
  stop = true;
  churn.join();
  uint64_t total = 0;
  for (uint32_t k = 0; k < kCounters; ++k) {
    uint64_t v = 0;
    ASSERT_EQ(m->lookup(&k, &v), 0);
    total += v;
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads) * kIncrements);
}

TEST(MapStressTest, ConcurrentInsertAndDeleteKeepTheMapConsistent) {
  auto m = make(MapType::Hash, 8, 8, 512);
  run_threads(kThreads, [&](int t) {
    for (uint64_t i = 0; i < 20000; ++i) {
      uint64_t k = static_cast<uint64_t>(t) << 32 | (i % 100);
      uint64_t v = k;
      int rc = m->prog_update(&k, &v, kBpfAny);
      ASSERT_TRUE(rc == 0 || rc == -E2BIG) << rc;
      auto* got = static_cast<uint64_t*>(m->prog_lookup(&k));
      if (got) {
        EXPECT_EQ(*got >> 32, static_cast<uint64_t>(t)) << "a value from another key";
      }
      if (i % 3 == 0) m->prog_delete(&k);
    }
  });
  // Every key left is one some thread wrote, with its own value.
  std::vector<uint8_t> key(8), next(8);
  size_t n = 0;
  for (int r = m->next_key(nullptr, next.data()); r == 0; r = m->next_key(key.data(), next.data())) {
    key = next;
    uint64_t k, v;
    std::memcpy(&k, key.data(), 8);
    ASSERT_EQ(m->lookup(&k, &v), 0);
    EXPECT_EQ(k, v);
    ++n;
  }
  EXPECT_LE(n, static_cast<size_t>(kThreads) * 100);
}

TEST(MapStressTest, LruStaysWithinItsSizeUnderConcurrentPressure) {
  auto m = make(MapType::LruHash, 4, 4, 128);
  run_threads(kThreads, [&](int t) {
    for (uint32_t i = 0; i < 20000; ++i) {
      uint32_t k = static_cast<uint32_t>(t) * 100000 + i % 1000;
      ASSERT_EQ(m->prog_update(&k, &k, kBpfAny), 0) << "LRU maps evict rather than fail";
      m->prog_lookup(&k);
    }
  });
  size_t n = 0;
  std::vector<uint8_t> key(4), next(4);
  for (int r = m->next_key(nullptr, next.data()); r == 0; r = m->next_key(key.data(), next.data()))
    key = next, ++n;
  EXPECT_LE(n, 128u);
  EXPECT_GT(n, 0u);
}

TEST(MapStressTest, QueueDeliversEveryElementExactlyOnce) {
  auto q = make(MapType::Queue, 0, 8, 64);
  constexpr uint64_t kPerProducer = 5000;
  std::atomic<int> producers_left{2};
  std::vector<std::vector<uint64_t>> got(2);
  run_threads(4, [&](int t) {
    if (t < 2) {
      for (uint64_t i = 0; i < kPerProducer;) {
        uint64_t v = static_cast<uint64_t>(t) << 32 | i;
        if (q->prog_push(&v, 0) == 0) ++i;
      }
      --producers_left;
      return;
    }
    uint64_t v;
    for (;;) {
      bool done = producers_left.load() == 0;  // read before the pop that may fail
      if (q->prog_pop(&v) == 0) {
        got[t - 2].push_back(v);
        continue;
      }
      if (done) break;
    }
  });
  std::set<uint64_t> all;
  for (auto& g : got)
    for (uint64_t v : g) EXPECT_TRUE(all.insert(v).second) << "delivered twice: " << v;
  EXPECT_EQ(all.size(), 2 * kPerProducer);
}

}  // namespace
}  // namespace ember
