// BPF_MAP_TYPE_LPM_TRIE: IPv4 and IPv6 routing tables, the kernel's errno
// results and get_next_key order, a second mapping of the segment, readers
// racing a writer, and random operation sequences compared with a kernel
// LPM trie (skipped visibly where bpf() is not allowed).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ember/maps.hpp"
#include "support/kernel_bpf.hpp"

namespace ember {
namespace {

struct V4Key {
  uint32_t prefixlen;
  uint8_t addr[4];
};
struct V6Key {
  uint32_t prefixlen;
  uint8_t addr[16];
};

V4Key v4(const char* ip, uint32_t plen) {
  V4Key k{plen, {}};
  EXPECT_EQ(inet_pton(AF_INET, ip, k.addr), 1) << ip;
  return k;
}
V6Key v6(const char* ip, uint32_t plen) {
  V6Key k{plen, {}};
  EXPECT_EQ(inet_pton(AF_INET6, ip, k.addr), 1) << ip;
  return k;
}

MapSpec lpm_spec(uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                 uint32_t flags = map_flag::kNoPrealloc) {
  return MapSpec{"lpm", MapType::LpmTrie, key_size, value_size, max_entries, flags};
}

MapPtr make_trie(uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  auto m = Map::create(lpm_spec(key_size, value_size, max_entries));
  EXPECT_TRUE(m.ok()) << m.error().message;
  return m.ok() ? *m : nullptr;
}

// The route a host lookup finds for `key` (-errno when none).
template <class K>
int64_t route(const Map& m, const K& key) {
  uint64_t v = 0;
  int r = m.lookup(&key, &v);
  return r ? r : static_cast<int64_t>(v);
}

template <class K>
void add(Map& m, const K& key, uint64_t v, uint64_t flags = kBpfAny) {
  ASSERT_EQ(m.update(&key, &v, flags), 0);
}

template <class K>
std::vector<std::string> iteration(const Map& m) {
  std::vector<std::string> out;
  K k{}, n{};
  for (int r = m.next_key(nullptr, &n); r == 0; r = m.next_key(&k, &n)) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(sizeof n.addr == 4 ? AF_INET : AF_INET6, n.addr, buf, sizeof buf);
    out.push_back(std::string(buf) + "/" + std::to_string(n.prefixlen));
    k = n;
  }
  return out;
}

TEST(LpmTrieTest, CreateChecksFollowTrieAlloc) {
  auto err = [](MapSpec s) {
    auto m = Map::create(s);
    return m.ok() ? std::string() : m.error().message;
  };
  EXPECT_NE(err(lpm_spec(8, 8, 16, 0)).find("BPF_F_NO_PREALLOC"), std::string::npos);
  EXPECT_NE(err(lpm_spec(4, 8, 16)).find("key_size"), std::string::npos);
  EXPECT_NE(err(lpm_spec(261, 8, 16)).find("key_size"), std::string::npos);
  EXPECT_NE(err(lpm_spec(8, 0, 16)).find("value_size"), std::string::npos);
  EXPECT_NE(err(lpm_spec(8, 8, 0)).find("max_entries 0"), std::string::npos);
  EXPECT_NE(err(lpm_spec(8, 8, 16, map_flag::kNoPrealloc | map_flag::kMmapable)).find("map_flags"),
            std::string::npos);
  EXPECT_TRUE(Map::create(lpm_spec(260, 1, 16)).ok());
  EXPECT_TRUE(Map::create(lpm_spec(5, 1, 16)).ok());
}

TEST(LpmTrieTest, Ipv4RoutingTable) {
  auto m = make_trie(8, 8, 16);
  EXPECT_EQ(route(*m, v4("8.8.8.8", 32)), -ENOENT);
  add(*m, v4("0.0.0.0", 0), 1);
  add(*m, v4("10.0.0.0", 8), 2);
  add(*m, v4("10.1.0.0", 16), 3);
  add(*m, v4("10.1.2.0", 24), 4);
  add(*m, v4("192.168.0.0", 16), 5);
  add(*m, v4("10.1.2.3", 32), 6);
  EXPECT_EQ(route(*m, v4("8.8.8.8", 32)), 1);
  EXPECT_EQ(route(*m, v4("10.200.0.1", 32)), 2);
  EXPECT_EQ(route(*m, v4("10.1.77.1", 32)), 3);
  EXPECT_EQ(route(*m, v4("10.1.2.9", 32)), 4);
  EXPECT_EQ(route(*m, v4("10.1.2.3", 32)), 6);
  EXPECT_EQ(route(*m, v4("192.168.4.4", 32)), 5);
  // A shorter lookup prefix only sees routes at most that long.
  EXPECT_EQ(route(*m, v4("10.1.2.3", 20)), 3);
  EXPECT_EQ(route(*m, v4("10.1.2.3", 0)), 1);
  // Programs get a pointer to the value.
  auto key = v4("10.1.2.200", 32);
  auto* p = static_cast<uint64_t*>(m->prog_lookup(&key));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 4u);
  *p = 40;
  EXPECT_EQ(route(*m, key), 40);
}

TEST(LpmTrieTest, DeletingAnIntermediatePrefixKeepsMoreSpecificOnes) {
  auto m = make_trie(8, 8, 16);
  add(*m, v4("10.0.0.0", 8), 2);
  add(*m, v4("10.1.0.0", 16), 3);
  add(*m, v4("10.1.2.0", 24), 4);
  add(*m, v4("10.1.128.0", 24), 5);
  auto k16 = v4("10.1.0.0", 16);
  EXPECT_EQ(m->erase(&k16), 0);
  EXPECT_EQ(m->erase(&k16), -ENOENT);
  EXPECT_EQ(route(*m, v4("10.1.77.1", 32)), 2);
  EXPECT_EQ(route(*m, v4("10.1.2.1", 32)), 4);
  EXPECT_EQ(route(*m, v4("10.1.128.1", 32)), 5);
  // The node stays as an intermediate one: it is no element, yet it can become one again.
  EXPECT_EQ(m->update(&k16, &k16, kBpfExist), -ENOENT);
  add(*m, k16, 33, kBpfNoexist);
  EXPECT_EQ(route(*m, v4("10.1.77.1", 32)), 33);
  // Deleting needs the exact prefix, not a covering one.
  auto k20 = v4("10.1.2.0", 20);
  EXPECT_EQ(m->erase(&k20), -ENOENT);
  auto k24 = v4("10.1.2.0", 24);
  EXPECT_EQ(m->erase(&k24), 0);
  EXPECT_EQ(route(*m, v4("10.1.2.1", 32)), 33);
}

TEST(LpmTrieTest, Ipv6RoutingTable) {
  auto m = make_trie(20, 8, 16);
  add(*m, v6("::", 0), 1);
  add(*m, v6("2001:db8::", 32), 2);
  add(*m, v6("2001:db8:1::", 48), 3);
  add(*m, v6("2001:db8:1:2::", 64), 4);
  add(*m, v6("fe80::", 10), 5);
  add(*m, v6("2001:db8:1:2::1", 128), 6);
  EXPECT_EQ(route(*m, v6("2606:4700::1111", 128)), 1);
  EXPECT_EQ(route(*m, v6("2001:db8:ffff::1", 128)), 2);
  EXPECT_EQ(route(*m, v6("2001:db8:1:3::1", 128)), 3);
  EXPECT_EQ(route(*m, v6("2001:db8:1:2::2", 128)), 4);
  EXPECT_EQ(route(*m, v6("2001:db8:1:2::1", 128)), 6);
  EXPECT_EQ(route(*m, v6("febf::1", 128)), 5);
  auto def = v6("::", 0);
  EXPECT_EQ(m->erase(&def), 0);
  EXPECT_EQ(route(*m, v6("2606:4700::1111", 128)), -ENOENT);
  EXPECT_EQ(route(*m, v6("2001:db8:1:2::2", 128)), 4);
}

// trie_get_next_key's example: more specific prefixes first (postorder).
TEST(LpmTrieTest, IterationIsPostorder) {
  auto m = make_trie(8, 8, 16);
  std::vector<uint8_t> k(8), n(8);
  EXPECT_EQ(m->next_key(nullptr, n.data()), -ENOENT);
  add(*m, v4("192.168.0.0", 16), 1);
  add(*m, v4("192.168.0.0", 24), 2);
  add(*m, v4("192.168.1.0", 24), 3);
  add(*m, v4("192.168.128.0", 24), 4);
  add(*m, v4("10.0.0.0", 8), 5);
  std::vector<std::string> want = {"10.0.0.0/8", "192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24",
                                   "192.168.0.0/16"};
  EXPECT_EQ(iteration<V4Key>(*m), want);
  // A key that is not in the trie starts over; the last key ends it.
  auto absent = v4("192.168.2.0", 24), last = v4("192.168.0.0", 16);
  V4Key next{};
  ASSERT_EQ(m->next_key(&absent, &next), 0);
  EXPECT_EQ(next.prefixlen, 8u);
  EXPECT_EQ(m->next_key(&last, &next), -ENOENT);
}

TEST(LpmTrieTest, KernelErrnoResults) {
  auto m = make_trie(8, 8, 3);
  uint64_t v = 7;
  auto a = v4("10.0.0.0", 8), b = v4("10.1.0.0", 16), c = v4("11.0.0.0", 8), d = v4("12.0.0.0", 8);
  EXPECT_EQ(m->update(&a, &v, 3), -EINVAL);
  auto too_long = v4("10.0.0.0", 33);
  EXPECT_EQ(m->update(&too_long, &v, kBpfAny), -EINVAL);
  EXPECT_EQ(m->erase(&too_long), -EINVAL);
  EXPECT_EQ(m->update(&a, &v, kBpfExist), -ENOENT);
  EXPECT_EQ(m->update(&a, &v, kBpfNoexist), 0);
  EXPECT_EQ(m->update(&a, &v, kBpfNoexist), -EEXIST);
  EXPECT_EQ(m->update(&a, &v, kBpfExist), 0);
  EXPECT_EQ(m->update(&b, &v, kBpfAny), 0);
  EXPECT_EQ(m->update(&c, &v, kBpfAny), 0);
  // Full: ENOSPC (not the E2BIG of hashes), yet an existing prefix may change.
  EXPECT_EQ(m->update(&d, &v, kBpfAny), -ENOSPC);
  EXPECT_EQ(m->update(&b, &v, kBpfAny), 0);
  EXPECT_EQ(m->erase(&d), -ENOENT);
  EXPECT_EQ(m->erase(&c), 0);
  EXPECT_EQ(m->update(&d, &v, kBpfAny), 0);
  // Operations the kernel's LPM trie lacks.
  EXPECT_LT(m->lookup_and_delete(&a, &v), 0);
}

TEST(LpmTrieTest, SecondMappingSeesTheSameTrie) {
  auto m = make_trie(8, 8, 16);
  add(*m, v4("10.0.0.0", 8), 2);
  auto other = Map::open(m->fd());
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(route(**other, v4("10.9.9.9", 32)), 2);
  add(**other, v4("10.9.0.0", 16), 3);
  EXPECT_EQ(route(*m, v4("10.9.9.9", 32)), 3);
}

// A reader never sees a route that was never there, while a writer keeps
// adding and removing more specific ones.
TEST(LpmTrieTest, LookupsRaceAWriter) {
  auto m = make_trie(8, 8, 64);
  add(*m, v4("10.0.0.0", 8), 8);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      auto k = v4("10.1.0.0", 16 + i % 17);
      uint64_t v = k.prefixlen;
      m->update(&k, &v, kBpfAny);
      if (i % 3 == 0) m->erase(&k);
    }
    stop = true;
  });
  auto probe = v4("10.1.0.1", 32);
  long bad = 0;
  while (!stop) {
    int64_t r = route(*m, probe);
    if (r != 8 && (r < 16 || r > 32)) ++bad;
    auto* p = static_cast<uint64_t*>(m->prog_lookup(&probe));
    if (!p) ++bad;
  }
  writer.join();
  EXPECT_EQ(bad, 0);
}

// Another process maps the segment and rewrites routes while this one
// looks them up: every answer is a route that exists at some moment.
TEST(LpmTrieTest, AnotherProcessWritesWhileThisOneReads) {
  auto m = make_trie(8, 8, 512);
  add(*m, v4("10.0.0.0", 8), 8);
  pid_t child = fork();
  if (child == 0) {
    auto other = Map::open(m->fd());
    if (!other.ok()) _exit(2);
    for (int round = 0; round < 20; ++round) {
      for (uint32_t i = 0; i < 256; ++i) {
        auto k = v4("10.0.0.0", 24);
        k.addr[1] = static_cast<uint8_t>(i);
        uint64_t v = 100 + i;
        if ((*other)->update(&k, &v, kBpfAny) != 0) _exit(3);
        if (round % 2 && (*other)->erase(&k) != 0) _exit(4);
      }
    }
    _exit(0);
  }
  long bad = 0, lookups = 0;
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    for (uint32_t i = 0; i < 256; i += 7, ++lookups) {
      auto probe = v4("10.0.0.1", 32);
      probe.addr[1] = static_cast<uint8_t>(i);
      int64_t r = route(*m, probe);
      if (r != 8 && r != 100 + static_cast<int64_t>(i)) ++bad;
    }
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(bad, 0) << "of " << lookups;
  EXPECT_EQ(iteration<V4Key>(*m),
            std::vector<std::string>{"10.0.0.0/8"});  // the last round deleted its routes
}

// ---- the kernel as an oracle ----

int kerr(int r) { return r < 0 ? -errno : r; }

struct KernelPair {
  MapPtr ember;
  testing::Fd kernel;
};

KernelPair make_pair(uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  auto m = Map::create(lpm_spec(key_size, value_size, max_entries));
  EXPECT_TRUE(m.ok()) << m.error().message;
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = map_flag::kNoPrealloc);
  int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "lpm", key_size, value_size, max_entries, &o);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  return {m.ok() ? *m : nullptr, testing::Fd(fd)};
}

// Keys that share prefixes often: data bytes come from a small alphabet,
// prefix lengths from the whole range (and beyond it, for invalid keys).
class KeyMaker {
 public:
  KeyMaker(uint32_t data_size, uint32_t seed) : data_size_(data_size), rng_(seed) {}
  std::vector<uint8_t> make(bool allow_invalid) {
    static constexpr uint8_t kBytes[] = {0x00, 0x0a, 0x80, 0xc0, 0xff, 0x01};
    std::vector<uint8_t> k(4 + data_size_);
    uint32_t max = data_size_ * 8;
    uint32_t plen = allow_invalid && rng_() % 16 == 0 ? max + 1 + rng_() % 8 : rng_() % (max + 1);
    std::memcpy(k.data(), &plen, 4);
    for (uint32_t i = 0; i < data_size_; ++i) k[4 + i] = kBytes[rng_() % sizeof kBytes];
    if (rng_() % 4 == 0) k[4 + rng_() % data_size_] = static_cast<uint8_t>(rng_());
    return k;
  }
  std::mt19937& rng() { return rng_; }

 private:
  uint32_t data_size_;
  std::mt19937 rng_;
};

std::vector<std::vector<uint8_t>> ember_order(const Map& m) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> k(m.spec().key_size), n(k.size());
  for (int r = m.next_key(nullptr, n.data()); r == 0; r = m.next_key(k.data(), n.data())) {
    out.push_back(n);
    k = n;
    if (out.size() > 2 * m.spec().max_entries) break;  // a cycle would be a bug; stop it
  }
  return out;
}

std::vector<std::vector<uint8_t>> kernel_order(int fd, uint32_t key_size, uint32_t max_entries) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> k(key_size), n(key_size);
  for (int r = bpf_map_get_next_key(fd, nullptr, n.data()); r == 0;
       r = bpf_map_get_next_key(fd, k.data(), n.data())) {
    out.push_back(n);
    k = n;
    if (out.size() > 2 * max_entries) break;
  }
  return out;
}

// How often each errno came back (0: success), to show the sequence covers them.
using Outcomes = std::map<int, int>;

void one_random_op(KernelPair& p, KeyMaker& keys, std::vector<std::vector<uint8_t>>& used, Outcomes& seen) {
  auto& rng = keys.rng();
  const uint32_t vs = p.ember->spec().value_size;
  std::vector<uint8_t> key = !used.empty() && rng() % 2 ? used[rng() % used.size()] : keys.make(true);
  std::vector<uint8_t> val(vs), ev(vs, 0xAA), kv(vs, 0xAA);
  for (auto& b : val) b = static_cast<uint8_t>(rng());
  int op = rng() % 6;
  std::string hex;
  for (uint8_t b : key) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
  SCOPED_TRACE("op " + std::to_string(op) + " key " + hex);
  if (op <= 1) {
    uint64_t flags = rng() % 4;  // 3 is invalid
    int e = p.ember->update(key.data(), val.data(), flags);
    ASSERT_EQ(e, kerr(bpf_map_update_elem(p.kernel.get(), key.data(), val.data(), flags)));
    ++seen[e];
    used.push_back(key);
  } else if (op == 2) {
    int e = p.ember->erase(key.data());
    ASSERT_EQ(e, kerr(bpf_map_delete_elem(p.kernel.get(), key.data())));
    ++seen[e];
  } else if (op <= 4) {
    // Lookups mostly with full-length keys, as a router's.
    if (op == 3) {
      uint32_t max = p.ember->spec().key_size * 8 - 32;
      std::memcpy(key.data(), &max, 4);
    }
    int e = p.ember->lookup(key.data(), ev.data());
    ASSERT_EQ(e, kerr(bpf_map_lookup_elem(p.kernel.get(), key.data(), kv.data())));
    ++seen[e];
    if (e == 0) {
      ASSERT_EQ(ev, kv);
    }
  } else {
    std::vector<uint8_t> en(key.size()), kn(key.size());
    int e = p.ember->next_key(key.data(), en.data());
    ASSERT_EQ(e, kerr(bpf_map_get_next_key(p.kernel.get(), key.data(), kn.data())));
    if (e == 0) {
      ASSERT_EQ(en, kn);
    }
  }
}

void run_against_kernel(uint32_t data_size, uint32_t max_entries, int ops, uint32_t seed) {
  std::string why;
  if (!testing::kernel_bpf_available(&why)) GTEST_SKIP() << "bpf() unavailable: " << why;
  KernelPair p = make_pair(4 + data_size, 12, max_entries);
  ASSERT_TRUE(p.ember && p.kernel.get() >= 0);
  KeyMaker keys(data_size, seed);
  std::vector<std::vector<uint8_t>> used;
  Outcomes seen;
  for (int i = 0; i < ops; ++i) {
    SCOPED_TRACE("operation " + std::to_string(i));
    ASSERT_NO_FATAL_FAILURE(one_random_op(p, keys, used, seen));
    // The trie's shape decides the order: equal orders mean equal shapes.
    if (i % 97 == 0) {
      ASSERT_EQ(ember_order(*p.ember), kernel_order(p.kernel.get(), 4 + data_size, max_entries));
    }
  }
  ASSERT_EQ(ember_order(*p.ember), kernel_order(p.kernel.get(), 4 + data_size, max_entries));
  for (int e : {0, -ENOENT, -EEXIST, -EINVAL, -ENOSPC})
    EXPECT_GT(seen[e], 0) << "errno " << -e << " never came";
}

TEST(LpmTrieKernelDiff, Ipv4) { run_against_kernel(4, 200, 6000, 1); }
TEST(LpmTrieKernelDiff, Ipv4SmallAndFull) { run_against_kernel(4, 12, 4000, 2); }
TEST(LpmTrieKernelDiff, Ipv6) { run_against_kernel(16, 300, 6000, 3); }
TEST(LpmTrieKernelDiff, OddDataSize) { run_against_kernel(3, 50, 3000, 4); }

}  // namespace
}  // namespace ember
