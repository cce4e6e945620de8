// Map semantics, checked against what the kernel's bpf() returns: errno
// results of every operation, iteration, per-CPU layout, LRU eviction,
// queues, stacks, bloom filters, and a second mapping of the same segment.
#include "ember/maps.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace ember {
namespace {

MapPtr make(MapType type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, uint32_t flags = 0,
            uint32_t ncpus = 0) {
  MapSpec s;
  s.name = "test";
  s.type = type;
  s.key_size = key_size;
  s.value_size = value_size;
  s.max_entries = max_entries;
  s.map_flags = flags;
  auto m = Map::create(s, MapOptions{ncpus});
  EXPECT_TRUE(m.ok()) << m.error().message;
  return m.ok() ? *m : nullptr;
}

std::string create_error(MapType type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                         uint32_t flags = 0) {
  MapSpec s{"bad", type, key_size, value_size, max_entries, flags};
  auto m = Map::create(s);
  return m.ok() ? "" : m.error().message;
}

TEST(MapSpecTest, ImpossibleDefinitionsAreErrors) {
  EXPECT_NE(create_error(MapType::Hash, 0, 8, 10).find("key_size 0"), std::string::npos);
  EXPECT_NE(create_error(MapType::Hash, 4, 0, 10).find("value_size 0"), std::string::npos);
  EXPECT_NE(create_error(MapType::Hash, 4, 8, 0).find("max_entries 0"), std::string::npos);
  EXPECT_NE(create_error(MapType::Array, 8, 8, 10).find("key_size must be 4"), std::string::npos);
  EXPECT_NE(create_error(MapType::Array, 4, 8, 10, 1u << 20).find("map_flags"), std::string::npos);
  EXPECT_NE(create_error(MapType::LruHash, 4, 8, 10, map_flag::kNoPrealloc).find("preallocated"),
            std::string::npos);
  EXPECT_NE(create_error(MapType::PercpuArray, 4, 8, 10, map_flag::kMmapable).find("mmapable"),
            std::string::npos);
  EXPECT_NE(create_error(MapType::Queue, 4, 8, 10).find("key_size must be 0"), std::string::npos);
  for (MapType t : {MapType::Devmap, MapType::Cpumap, MapType::Sockmap, MapType::Xskmap})
    EXPECT_NE(create_error(t, 4, 4, 10).find("not support yet"), std::string::npos) << map_type_name(t);
}

TEST(ArrayMapTest, KernelErrnoResults) {
  auto m = make(MapType::Array, 4, 12, 4);
  uint32_t k = 2, bad = 4;
  uint8_t v[12] = {1, 2, 3}, out[12];
  EXPECT_EQ(m->lookup(&k, out), 0);  // elements always exist, zeroed
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(m->update(&k, v, kBpfAny), 0);
  EXPECT_EQ(m->update(&k, v, kBpfExist), 0);
  EXPECT_EQ(m->update(&k, v, kBpfNoexist), -EEXIST);
  EXPECT_EQ(m->update(&bad, v, kBpfAny), -E2BIG);
  EXPECT_EQ(m->update(&k, v, 3), -EINVAL);
  EXPECT_EQ(m->lookup(&bad, out), -ENOENT);
  EXPECT_EQ(m->erase(&k), -EINVAL);
  ASSERT_EQ(m->lookup(&k, out), 0);
  EXPECT_EQ(std::memcmp(out, v, 12), 0);
  // get_next_key: NULL or out of range gives 0; the last index ENOENT.
  uint32_t next;
  EXPECT_EQ(m->next_key(nullptr, &next), 0);
  EXPECT_EQ(next, 0u);
  EXPECT_EQ(m->next_key(&bad, &next), 0);
  EXPECT_EQ(next, 0u);
  EXPECT_EQ(m->next_key(&k, &next), 0);
  EXPECT_EQ(next, 3u);
  uint32_t last = 3;
  EXPECT_EQ(m->next_key(&last, &next), -ENOENT);
  // Program side: a pointer into the map.
  auto* p = static_cast<uint8_t*>(m->prog_lookup(&k));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[1], 2);
  EXPECT_EQ(m->prog_lookup(&bad), nullptr);
}

TEST(ArrayMapTest, PercpuValuesArePaddedPerCpu) {
  auto m = make(MapType::PercpuArray, 4, 4, 2, 0, 3);
  EXPECT_EQ(m->host_value_size(), 24u);  // round_up(4, 8) x 3 CPUs
  uint32_t k = 1;
  uint8_t in[24], out[24];
  for (int i = 0; i < 24; ++i) in[i] = static_cast<uint8_t>(i + 1);
  ASSERT_EQ(m->update(&k, in, kBpfAny), 0);
  ASSERT_EQ(m->lookup(&k, out), 0);
  // The kernel copies round_up(value_size, 8) per CPU both ways, padding too.
  EXPECT_EQ(std::memcmp(out, in, 24), 0);
  uint32_t cpu = current_cpu(3);
  auto* p = static_cast<uint8_t*>(m->prog_lookup(&k));
  EXPECT_EQ(p[0], in[8 * cpu]);
}

TEST(HashMapTest, KernelErrnoResults) {
  auto m = make(MapType::Hash, 8, 8, 3);
  uint64_t k = 7, v = 70, out = 0;
  EXPECT_EQ(m->lookup(&k, &out), -ENOENT);
  EXPECT_EQ(m->erase(&k), -ENOENT);
  EXPECT_EQ(m->update(&k, &v, kBpfExist), -ENOENT);
  EXPECT_EQ(m->update(&k, &v, kBpfNoexist), 0);
  EXPECT_EQ(m->update(&k, &v, kBpfNoexist), -EEXIST);
  EXPECT_EQ(m->update(&k, &v, 3), -EINVAL);
  v = 71;
  EXPECT_EQ(m->update(&k, &v, kBpfExist), 0);
  EXPECT_EQ(m->lookup(&k, &out), 0);
  EXPECT_EQ(out, 71u);
  for (uint64_t i = 100; i < 102; ++i) EXPECT_EQ(m->update(&i, &i, kBpfAny), 0);
  uint64_t extra = 200;
  EXPECT_EQ(m->update(&extra, &extra, kBpfAny), -E2BIG);
  // Replacing an existing key still works when the map is full.
  v = 72;
  EXPECT_EQ(m->update(&k, &v, kBpfAny), 0);
  EXPECT_EQ(m->lookup(&k, &out), 0);
  EXPECT_EQ(out, 72u);
  EXPECT_EQ(m->lookup_and_delete(&k, &out), 0);
  EXPECT_EQ(out, 72u);
  EXPECT_EQ(m->lookup(&k, &out), -ENOENT);
  EXPECT_EQ(m->update(&extra, &extra, kBpfAny), 0);
}

TEST(HashMapTest, IterationSurvivesDeletingTheCurrentKey) {
  auto m = make(MapType::Hash, 4, 4, 1000);
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(m->update(&i, &i, kBpfAny), 0);
  std::set<uint32_t> seen;
  uint32_t key, next;
  // The bpftool pattern: fetch the next key, then delete the previous one.
  bool have = m->next_key(nullptr, &key) == 0;
  while (have) {
    EXPECT_TRUE(seen.insert(key).second) << "key " << key << " visited twice";
    have = m->next_key(&key, &next) == 0;
    EXPECT_EQ(m->erase(&key), 0);
    key = next;
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(m->next_key(nullptr, &key), -ENOENT);
}

TEST(HashMapTest, MissingKeyRestartsIteration) {
  auto m = make(MapType::Hash, 4, 4, 16);
  uint32_t a = 1, gone = 99, next;
  ASSERT_EQ(m->update(&a, &a, kBpfAny), 0);
  EXPECT_EQ(m->next_key(&gone, &next), 0);
  EXPECT_EQ(next, 1u);
}

TEST(HashMapTest, PercpuProgramUpdateTouchesOnlyThisCpu) {
  auto m = make(MapType::PercpuHash, 4, 8, 4, 0, 4);
  uint32_t k = 5;
  uint64_t v = 9;
  ASSERT_EQ(m->prog_update(&k, &v, kBpfAny), 0);
  uint64_t out[4];
  ASSERT_EQ(m->lookup(&k, out), 0);
  uint32_t cpu = current_cpu(4);
  for (uint32_t c = 0; c < 4; ++c) EXPECT_EQ(out[c], c == cpu ? 9u : 0u);
}

TEST(LruHashTest, EvictsTheLeastRecentlyUsedUnderPressure) {
  auto m = make(MapType::LruHash, 4, 4, 64);
  for (uint32_t i = 0; i < 64; ++i) ASSERT_EQ(m->update(&i, &i, kBpfAny), 0);
  // Touch the first half, as programs do with lookups.
  for (uint32_t i = 0; i < 32; ++i) ASSERT_NE(m->prog_lookup(&i), nullptr);
  for (uint32_t i = 1000; i < 1032; ++i) ASSERT_EQ(m->update(&i, &i, kBpfAny), 0) << "LRU maps never fill up";
  uint32_t out;
  int kept_hot = 0, kept_cold = 0;
  for (uint32_t i = 0; i < 32; ++i) kept_hot += m->lookup(&i, &out) == 0;
  for (uint32_t i = 32; i < 64; ++i) kept_cold += m->lookup(&i, &out) == 0;
  EXPECT_EQ(kept_hot, 32);
  EXPECT_EQ(kept_cold, 0);
  for (uint32_t i = 1000; i < 1032; ++i) EXPECT_EQ(m->lookup(&i, &out), 0);
}

TEST(QueueStackTest, FifoLifoAndFullBehaviour) {
  auto q = make(MapType::Queue, 0, 4, 3);
  auto s = make(MapType::Stack, 0, 4, 3);
  for (uint32_t v = 1; v <= 3; ++v) {
    ASSERT_EQ(q->update(nullptr, &v, kBpfAny), 0);
    ASSERT_EQ(s->prog_push(&v, kBpfAny), 0);
  }
  uint32_t v = 4, out;
  EXPECT_EQ(q->update(nullptr, &v, kBpfAny), -E2BIG);
  EXPECT_EQ(q->update(nullptr, &v, kBpfExist), 0);  // drops the oldest (1)
  EXPECT_EQ(q->lookup(nullptr, &out), 0);
  EXPECT_EQ(out, 2u) << "peek";
  for (uint32_t want : {2u, 3u, 4u}) {
    ASSERT_EQ(q->lookup_and_delete(nullptr, &out), 0);
    EXPECT_EQ(out, want);
  }
  EXPECT_EQ(q->prog_pop(&out), -ENOENT);
  for (uint32_t want : {3u, 2u, 1u}) {
    ASSERT_EQ(s->prog_pop(&out), 0);
    EXPECT_EQ(out, want);
  }
  EXPECT_EQ(q->erase(nullptr), -EINVAL);
  EXPECT_EQ(q->update(nullptr, &v, 7), -EINVAL);
}

TEST(BloomFilterTest, PushedValuesAreFoundAndMostOthersAreNot) {
  auto m = make(MapType::BloomFilter, 0, 8, 1000);
  for (uint64_t v = 0; v < 1000; ++v) ASSERT_EQ(m->prog_push(&v, kBpfAny), 0);
  for (uint64_t v = 0; v < 1000; ++v) ASSERT_EQ(m->prog_peek(&v), 0);
  int false_pos = 0;
  for (uint64_t v = 1000000; v < 1010000; ++v) false_pos += m->lookup(nullptr, &v) == 0;
  EXPECT_LT(false_pos, 500) << "false positive rate above 5%";
  uint64_t v = 1;
  EXPECT_EQ(m->update(nullptr, &v, kBpfExist), -EINVAL);
}

TEST(SharedMapTest, AnotherProcessSeesAndChangesTheSameMap) {
  auto m = make(MapType::Hash, 4, 8, 128);
  uint32_t k = 1;
  uint64_t v = 10;
  ASSERT_EQ(m->update(&k, &v, kBpfAny), 0);
  pid_t child = fork();
  if (child == 0) {
    // The child maps the segment anew from the fd, as another process would.
    auto other = Map::open(m->fd());
    if (!other.ok()) _exit(2);
    uint64_t got = 0;
    if ((*other)->lookup(&k, &got) != 0 || got != 10) _exit(3);
    for (uint32_t i = 2; i < 100; ++i) {
      uint64_t x = i * 3;
      if ((*other)->update(&i, &x, kBpfNoexist) != 0) _exit(4);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  for (uint32_t i = 2; i < 100; ++i) {
    uint64_t got = 0;
    ASSERT_EQ(m->lookup(&i, &got), 0);
    EXPECT_EQ(got, i * 3);
  }
}

TEST(SharedMapTest, OpenRejectsWhatIsNotAMap) {
  int fd = memfd_create("junk", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  auto m = Map::open(fd);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("not an Ember map"), std::string::npos);
  close(fd);
}

}  // namespace
}  // namespace ember
