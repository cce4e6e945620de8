// Ring buffers and perf event arrays: the helpers' results as the kernel's
// (reserve/submit/discard/output/query, flags, errno), the record layout,
// wrap-around, a full ring, wakeups, a consumer in another process, many
// producers at once, perf rings per CPU with lost samples, and the same
// program run in Ember and in the kernel leaving the same bytes in the ring.
#include "ember/ringbuf.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "maps/ringbuf_map.hpp"
#include "support/kernel_bpf.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr int kOutput = 130, kReserve = 131, kSubmit = 132, kDiscard = 133, kQuery = 134, kPerfOutput = 25;

MapPtr make_map(MapType type, uint32_t max_entries, uint32_t key = 0, uint32_t value = 0,
                uint32_t ncpus = 0) {
  MapSpec s{"events", type, key, value, max_entries};
  auto m = Map::create(s, MapOptions{ncpus});
  EXPECT_TRUE(m.ok()) << m.error().message;
  return m.ok() ? *m : nullptr;
}

MapPtr make_ringbuf(uint32_t size) { return make_map(MapType::Ringbuf, size); }

// Calls helper `id` as a verified program would (no checked mode).
uint64_t call(int id, uint64_t r1 = 0, uint64_t r2 = 0, uint64_t r3 = 0, uint64_t r4 = 0, uint64_t r5 = 0) {
  static const HelperTable table = default_helper_table();
  const HelperDef* d = table.find(id);
  EXPECT_NE(d, nullptr) << id;
  HelperCall c;
  return d ? d->fn(c, r1, r2, r3, r4, r5) : 0;
}
uint64_t u(const void* p) { return reinterpret_cast<uint64_t>(p); }
uint64_t u(const MapPtr& m) { return reinterpret_cast<uint64_t>(m.get()); }
int64_t s64(uint64_t v) { return static_cast<int64_t>(v); }

std::vector<Bytes> drain(const MapPtr& m) {
  std::vector<Bytes> out;
  auto c = RingBufferConsumer::create(m, [&](const void* d, size_t n) {
    out.emplace_back(static_cast<const uint8_t*>(d), static_cast<const uint8_t*>(d) + n);
    return 0;
  });
  EXPECT_TRUE(c.ok());
  if (c.ok()) {
    int n = (*c)->consume();
    EXPECT_EQ(n, static_cast<int>(out.size()));
  }
  return out;
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

std::string create_error(MapSpec s) {
  auto m = Map::create(s);
  return m.ok() ? "" : m.error().message;
}

TEST(RingbufMapTest, DefinitionsTheKernelRejectsAreErrors) {
  EXPECT_NE(create_error({"rb1", MapType::Ringbuf, 4, 0, 4096}).find("'rb1'"), std::string::npos);
  EXPECT_NE(create_error({"rb2", MapType::Ringbuf, 0, 8, 4096}).find("key_size and value_size"),
            std::string::npos);
  for (uint32_t bad : {0u, 2048u, 3 * 4096u, 4096u + 8})
    EXPECT_NE(create_error({"rb3", MapType::Ringbuf, 0, 0, bad}).find("power of 2"), std::string::npos)
        << bad;
  EXPECT_NE(create_error({"rb4", MapType::Ringbuf, 0, 0, 4096, map_flag::kMmapable}).find("map_flags"),
            std::string::npos);
  EXPECT_EQ(create_error({"rb5", MapType::Ringbuf, 0, 0, 1u << 20, map_flag::kNumaNode}), "");
  // The host's bpf() element operations do not apply (-ENOTSUPP).
  auto m = make_ringbuf(4096);
  uint8_t v[8];
  EXPECT_EQ(m->lookup(nullptr, v), -524);
  EXPECT_EQ(m->update(nullptr, v, 0), -524);
}

TEST(RingbufHelpers, ReserveSubmitDiscardOutputQuery) {
  auto m = make_ringbuf(4096);
  auto q = [&](uint64_t f) { return call(kQuery, u(m), f); };
  EXPECT_EQ(q(ringbuf_flag::kRingSize), 4096u);
  EXPECT_EQ(q(ringbuf_flag::kAvailData), 0u);
  EXPECT_EQ(q(ringbuf_flag::kProdPos), 0u);
  EXPECT_EQ(q(99), 0u);  // unknown: 0

  Bytes hello = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(call(kOutput, u(m), u(hello.data()), 5, 0), 0u);
  EXPECT_EQ(s64(call(kOutput, u(m), u(hello.data()), 5, 4)), -EINVAL);  // unknown flag
  EXPECT_EQ(q(ringbuf_flag::kProdPos), 16u);                            // 8-byte header + 5, rounded to 8
  EXPECT_EQ(call(kReserve, u(m), 10, 1), 0u);                           // reserve takes no flags
  auto* p = reinterpret_cast<uint8_t*>(call(kReserve, u(m), 10, 0));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(q(ringbuf_flag::kProdPos), 40u);
  EXPECT_EQ(q(ringbuf_flag::kAvailData), 40u);
  std::memcpy(p, "0123456789", 10);
  auto* gone = reinterpret_cast<uint8_t*>(call(kReserve, u(m), 3, 0));
  ASSERT_NE(gone, nullptr);
  gone[0] = 'x';
  EXPECT_EQ(call(kDiscard, u(gone), 0), 0u);
  // The BUSY record in front holds the discarded one back from the consumer.
  EXPECT_EQ(drain(m), std::vector<Bytes>{hello});
  EXPECT_EQ(call(kQuery, u(m), ringbuf_flag::kConsPos), 16u);
  EXPECT_EQ(call(kSubmit, u(p), 0), 0u);

  // The kernel's layout: {len, pg_off} headers, data at page 3 of the map.
  auto& rb = static_cast<maps::RingbufMap&>(*m);
  uint32_t hdr[2];
  std::memcpy(hdr, rb.data() + 40, 8);
  EXPECT_EQ(hdr[0], 3u | maps::ringbuf::kDiscardBit);
  EXPECT_EQ(hdr[1], 3u);
  std::memcpy(hdr, rb.data() + 16, 8);
  EXPECT_EQ(hdr[0], 10u);

  EXPECT_EQ(drain(m), std::vector<Bytes>{Bytes(p, p + 10)});
  EXPECT_EQ(q(ringbuf_flag::kConsPos), 56u);
  EXPECT_EQ(q(ringbuf_flag::kAvailData), 0u);
}

TEST(RingbufHelpers, WrongMapTypeIsEinval) {
  auto arr = make_map(MapType::Array, 4, 4, 8);
  uint8_t d[8] = {};
  EXPECT_EQ(s64(call(kOutput, u(arr), u(d), 8, 0)), -EINVAL);
  EXPECT_EQ(call(kReserve, u(arr), 8, 0), 0u);
  EXPECT_EQ(call(kQuery, u(arr), ringbuf_flag::kRingSize), 0u);
  auto rb = make_ringbuf(4096);
  EXPECT_EQ(s64(call(kPerfOutput, 0, u(rb), kBpfFCurrentCpu, u(d), 8)), -EINVAL);
}

TEST(RingbufHelpers, RecordsOfOddSizesComeBackExactly) {
  auto m = make_ringbuf(16384);
  for (size_t n = 0; n <= 41; ++n) {
    Bytes b = pattern(n, static_cast<uint8_t>(n));
    ASSERT_EQ(call(kOutput, u(m), u(b.data()), n, 0), 0u) << n;
  }
  auto recs = drain(m);
  ASSERT_EQ(recs.size(), 42u);
  uint64_t pos = 0;
  for (size_t n = 0; n <= 41; ++n) {
    EXPECT_EQ(recs[n], pattern(n, static_cast<uint8_t>(n))) << n;
    pos += (n + 8 + 7) / 8 * 8;
  }
  EXPECT_EQ(call(kQuery, u(m), ringbuf_flag::kProdPos), pos);
}

TEST(RingbufHelpers, RecordsWrapAroundTheEndContiguously) {
  auto m = make_ringbuf(4096);
  std::vector<Bytes> want;
  for (int round = 0; round < 40; ++round) {
    Bytes b = pattern(1000 + round, static_cast<uint8_t>(round));
    auto* p = reinterpret_cast<uint8_t*>(call(kReserve, u(m), b.size(), 0));
    ASSERT_NE(p, nullptr) << round;
    std::memcpy(p, b.data(), b.size());  // across the end: the second mapping
    call(kSubmit, u(p), 0);
    auto got = drain(m);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], b) << round;
  }
  EXPECT_GT(call(kQuery, u(m), ringbuf_flag::kProdPos), 8 * 4096u);
}

TEST(RingbufHelpers, FullRingRefusesReservations) {
  auto m = make_ringbuf(4096);
  uint8_t d[8] = {};
  EXPECT_EQ(call(kReserve, u(m), 4089, 0), 0u);  // 4104 bytes with its header: larger than the ring
  EXPECT_EQ(call(kReserve, u(m), 4081, 0), 0u);  // exactly the ring: producer may get only size - 1 ahead
  auto* p = reinterpret_cast<uint8_t*>(call(kReserve, u(m), 4080, 0));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(call(kReserve, u(m), 0, 0), 0u);
  EXPECT_EQ(s64(call(kOutput, u(m), u(d), 1, 0)), -EAGAIN);
  call(kSubmit, u(p), 0);
  EXPECT_EQ(s64(call(kOutput, u(m), u(d), 1, 0)), -EAGAIN);  // submitted is not consumed
  EXPECT_EQ(drain(m).size(), 1u);
  EXPECT_EQ(call(kOutput, u(m), u(d), 1, 0), 0u);
}

TEST(RingbufHelpers, WakeupFlagsFollowTheKernel) {
  auto m = make_ringbuf(4096);
  auto& w = static_cast<maps::RingbufMap&>(*m).wake_word();
  uint8_t d[8] = {};
  uint32_t s0 = shm::wake_seq(w);
  call(kOutput, u(m), u(d), 8, ringbuf_flag::kNoWakeup);  // caught up, but asked not to
  EXPECT_EQ(shm::wake_seq(w), s0);
  drain(m);
  call(kOutput, u(m), u(d), 8, 0);  // the consumer has caught up: wake it
  EXPECT_EQ(shm::wake_seq(w), s0 + 1);
  call(kOutput, u(m), u(d), 8, 0);  // it has not consumed the previous one yet
  EXPECT_EQ(shm::wake_seq(w), s0 + 1);
  call(kOutput, u(m), u(d), 8, ringbuf_flag::kForceWakeup);
  EXPECT_EQ(shm::wake_seq(w), s0 + 2);
  auto* p = reinterpret_cast<uint8_t*>(call(kReserve, u(m), 8, 0));
  call(kDiscard, u(p), ringbuf_flag::kForceWakeup);
  EXPECT_EQ(shm::wake_seq(w), s0 + 3);
}

TEST(RingbufConsumer, CallbackResultStopsConsume) {
  auto m = make_ringbuf(4096);
  uint8_t d[4] = {};
  for (int i = 0; i < 3; ++i) call(kOutput, u(m), u(d), 4, 0);
  int seen = 0;
  auto c = RingBufferConsumer::create(m, [&](const void*, size_t) { return ++seen == 2 ? -7 : 0; });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->consume(), -7);
  EXPECT_EQ(seen, 2);
  EXPECT_EQ((*c)->consume(), 1);  // the stopping record stays consumed
  EXPECT_FALSE(RingBufferConsumer::create(make_map(MapType::Array, 1, 4, 4), [](const void*, size_t) {
                 return 0;
               }).ok());
}

TEST(RingbufConsumer, PollWaitsOnSeveralRings) {
  auto a = make_ringbuf(4096), b = make_ringbuf(4096);
  std::vector<int> got;
  auto c = RingBufferConsumer::create(a, [&](const void*, size_t) {
    got.push_back(1);
    return 0;
  });
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->add(b,
                        [&](const void*, size_t) {
                          got.push_back(2);
                          return 0;
                        })
                  .ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ((*c)->poll(50), 0);  // nothing: times out
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(40));
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint8_t d[4] = {};
    call(kOutput, u(b), u(d), 4, 0);
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ((*c)->poll(10000), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  producer.join();
  EXPECT_EQ(got, std::vector<int>{2});
}

// The child maps the parent's ring from its fd and must receive every
// record, in order, sleeping in poll() until the parent's producer wakes it.
int child_consume(int fd, uint32_t count) {
  auto m = Map::open(fd);
  if (!m) return 2;
  uint32_t next = 0;
  bool bad = false;
  auto c = RingBufferConsumer::create(*m, [&](const void* d, size_t n) {
    uint32_t v;
    std::memcpy(&v, d, 4);
    if (n != 4 + v % 13 || v != next) bad = true;
    ++next;
    return 0;
  });
  if (!c) return 3;
  int slept = 0;
  while (next < count && !bad) {
    auto t0 = std::chrono::steady_clock::now();
    (*c)->poll(5000);
    auto took = std::chrono::steady_clock::now() - t0;
    if (took > std::chrono::seconds(3)) return 4;  // the producer's wakeup never came
    slept += took > std::chrono::milliseconds(5);
  }
  if (bad) return 5;
  return slept ? 0 : 6;  // the parent's pauses must have put us to sleep at least once
}

TEST(RingbufConsumer, ConsumerInAForkedChildGetsEveryRecord) {
  auto m = make_ringbuf(16384);
  constexpr uint32_t kCount = 20000;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(60);
    _exit(child_consume(m->fd(), kCount));
  }
  uint8_t buf[32] = {};
  int status = 0;
  bool child_gone = false;
  for (uint32_t i = 0; i < kCount && !child_gone; ++i) {
    std::memcpy(buf, &i, 4);
    while (s64(call(kOutput, u(m), u(buf), 4 + i % 13, 0)) == -EAGAIN && !child_gone) {
      child_gone = waitpid(pid, &status, WNOHANG) == pid;  // a full ring nobody drains any more
      sched_yield();
    }
    if (i % 5000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it sleep
  }
  if (!child_gone) {
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
  }
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RingbufConsumer, ManyProducersEachRecordOnce) {
  auto m = make_ringbuf(1 << 16);
  constexpr uint32_t kThreads = 8, kPer = 20000;
  std::vector<uint32_t> next(kThreads, 0);
  uint64_t total = 0, errors = 0;
  auto c = RingBufferConsumer::create(m, [&](const void* d, size_t n) {
    uint32_t rec[2];
    std::memcpy(rec, d, 8);
    if (n != 8 + rec[1] % 5 || rec[0] >= kThreads || rec[1] != next[rec[0]]++) ++errors;
    ++total;
    return 0;
  });
  ASSERT_TRUE(c.ok());
  std::vector<std::thread> producers;
  for (uint32_t t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (uint32_t i = 0; i < kPer; ++i) {
        const uint32_t rec[4] = {t, i, 0, 0};  // up to 12 bytes go out
        const size_t n = 8 + i % 5;
        if (i % 2) {
          while (s64(call(kOutput, u(m), u(rec), n, 0)) == -EAGAIN) sched_yield();
        } else {
          uint64_t p;
          while (!(p = call(kReserve, u(m), n, 0))) sched_yield();
          std::memcpy(reinterpret_cast<void*>(p), rec, 8);
          call(kSubmit, p, 0);
        }
      }
    });
  while (total < uint64_t{kThreads} * kPer) ASSERT_GE((*c)->poll(10000), 0);
  for (auto& t : producers) t.join();
  EXPECT_EQ((*c)->consume(), 0);
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(total, uint64_t{kThreads} * kPer);
}

// A HelperEnv that knows one map, for runs in checked mode.
class OneMapEnv : public HelperEnv {
 public:
  explicit OneMapEnv(Map* m) : m_(m) {}
  Map* map_at(uint64_t p) const override { return p == reinterpret_cast<uint64_t>(m_) ? m_ : nullptr; }
  void grant_static(MemoryGuard&) const override {}
  const Interpreter* program_by_id(uint32_t) const override { return nullptr; }

 private:
  Map* m_;
};

using testing::raw;
std::vector<RawInsn> ld_map(uint8_t dst, uint64_t imm, uint8_t src) {
  return {raw(0x18, dst, src, 0, static_cast<int32_t>(imm)),
          raw(0, 0, 0, 0, static_cast<int32_t>(imm >> 32))};
}
void append(std::vector<RawInsn>& a, const std::vector<RawInsn>& b) { a.insert(a.end(), b.begin(), b.end()); }

Result<uint64_t> run_checked(std::span<const RawInsn> insns, Map* m, Bytes mem = Bytes(64)) {
  auto prog = decode(insns);
  if (!prog) return prog.error();
  static const HelperTable table = default_helper_table();
  auto interp = Interpreter::create(*prog, table);
  if (!interp) return interp.error();
  OneMapEnv env(m);
  RunOptions o;
  o.checked = true;
  o.helper_env = &env;
  return interp->run(RunInput::memory(mem), o);
}

TEST(RingbufHelpers, CheckedModeGrantsSamplesAndRefusesOtherPointers) {
  auto m = make_ringbuf(4096);
  // r0 = reserve(map, 16); *(u64 *)(r0 + 8) = 42; submit(r0)
  std::vector<RawInsn> p = ld_map(1, u(m), 0);
  append(p,
         {testing::mov64_imm(2, 16), testing::mov64_imm(3, 0), raw(0x85, 0, 0, 0, kReserve),
          raw(0x15, 0, 0, 5, 0), raw(0x7a, 0, 0, 8, 42), testing::mov64_reg(1, 0), testing::mov64_imm(2, 0),
          raw(0x85, 0, 0, 0, kSubmit), testing::mov64_imm(0, 1), testing::exit_insn()});
  auto r = run_checked(p, m.get());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 1u);
  auto recs = drain(m);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0][8], 42);
  // submit(r10 - 8): not a reservation.
  std::vector<RawInsn> bad = {testing::mov64_reg(1, 10), raw(0x07, 1, 0, 0, -8), testing::mov64_imm(2, 0),
                              raw(0x85, 0, 0, 0, kSubmit), testing::exit_insn()};
  auto rb = run_checked(bad, m.get());
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.error().message.find("bpf_ringbuf_reserve"), std::string::npos) << rb.error().message;
}

// Checked mode tracks each run's reservations: a record left reserved at
// exit is a fault and is discarded (else the consumer would wait behind it
// for good); a record is the program's only until submitted.
TEST(RingbufHelpers, CheckedModeTracksReservationsPerRun) {
  auto m = make_ringbuf(4096);
  // r0 = reserve(map, 16); exit with it reserved.
  std::vector<RawInsn> leak = ld_map(1, u(m), 0);
  append(leak, {testing::mov64_imm(2, 16), testing::mov64_imm(3, 0), raw(0x85, 0, 0, 0, kReserve),
                testing::mov64_imm(0, 0), testing::exit_insn()});
  auto r = run_checked(leak, m.get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("neither submitted nor discarded"), std::string::npos)
      << r.error().message;
  // The leaked record was discarded: the next one reaches the consumer.
  std::vector<RawInsn> ok = ld_map(1, u(m), 0);
  append(ok,
         {testing::mov64_imm(2, 16), testing::mov64_imm(3, 0), raw(0x85, 0, 0, 0, kReserve),
          raw(0x15, 0, 0, 5, 0), raw(0x7a, 0, 0, 0, 7), testing::mov64_reg(1, 0), testing::mov64_imm(2, 0),
          raw(0x85, 0, 0, 0, kSubmit), testing::mov64_imm(0, 1), testing::exit_insn()});
  auto r2 = run_checked(ok, m.get());
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  auto recs = drain(m);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0][0], 7);
  // Written after submit: the record is no longer the program's.
  std::vector<RawInsn> late = ld_map(1, u(m), 0);
  append(late, {testing::mov64_imm(2, 16), testing::mov64_imm(3, 0), raw(0x85, 0, 0, 0, kReserve),
                raw(0x15, 0, 0, 5, 0), testing::mov64_reg(6, 0), testing::mov64_reg(1, 0),
                testing::mov64_imm(2, 0), raw(0x85, 0, 0, 0, kSubmit), raw(0x7a, 6, 0, 0, 9),
                testing::mov64_imm(0, 1), testing::exit_insn()});
  auto r3 = run_checked(late, m.get());
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.error().message.find("write of 8 bytes"), std::string::npos) << r3.error().message;
  // Submitted twice: the second is not a held reservation.
  std::vector<RawInsn> twice = ld_map(1, u(m), 0);
  append(twice,
         {testing::mov64_imm(2, 16), testing::mov64_imm(3, 0), raw(0x85, 0, 0, 0, kReserve),
          raw(0x15, 0, 0, 7, 0), testing::mov64_reg(6, 0), testing::mov64_reg(1, 0), testing::mov64_imm(2, 0),
          raw(0x85, 0, 0, 0, kSubmit), testing::mov64_reg(1, 6), testing::mov64_imm(2, 0),
          raw(0x85, 0, 0, 0, kSubmit), testing::mov64_imm(0, 1), testing::exit_insn()});
  auto r4 = run_checked(twice, m.get());
  ASSERT_FALSE(r4.ok());
  EXPECT_NE(r4.error().message.find("still held by this run"), std::string::npos) << r4.error().message;
}

// ---- the kernel as the oracle ----

// One program for both: r6 = the ring (`map_ld`); output 13 bytes and 0
// bytes from the stack, reserve 20 and submit, reserve 7 and discard, then
// output the four bpf_ringbuf_query values. Returns the first output's result.
std::vector<RawInsn> diff_program(const std::vector<RawInsn>& map_ld) {
  using namespace testing;
  auto call_insn = [](int id) { return raw(0x85, 0, 0, 0, id); };
  std::vector<RawInsn> p = map_ld;
  append(p, ld_map(2, 0x0807060504030201ull, 0));
  p.push_back(raw(0x7b, 10, 2, -16));  // *(u64 *)(r10 - 16) = r2
  append(p, ld_map(2, 0x100f0e0d0c0b0a09ull, 0));
  p.push_back(raw(0x7b, 10, 2, -8));
  for (int32_t size : {13, 0}) {
    append(p, {mov64_reg(1, 6), mov64_reg(2, 10), raw(0x07, 2, 0, 0, -16), mov64_imm(3, size),
               mov64_imm(4, 0), call_insn(kOutput)});
    if (size == 13) p.push_back(mov64_reg(8, 0));
  }
  append(p, {mov64_reg(1, 6), mov64_imm(2, 20), mov64_imm(3, 0), call_insn(kReserve), raw(0x15, 0, 0, 6, 0),
             raw(0x7a, 0, 0, 0, 0x11111111), raw(0x7a, 0, 0, 8, 0x22222222), raw(0x62, 0, 0, 16, 0x3333),
             mov64_reg(1, 0), mov64_imm(2, 0), call_insn(kSubmit)});
  append(p, {mov64_reg(1, 6), mov64_imm(2, 7), mov64_imm(3, 0), call_insn(kReserve), raw(0x15, 0, 0, 4, 0),
             raw(0x62, 0, 0, 0, 0x55555555), mov64_reg(1, 0), mov64_imm(2, 0), call_insn(kDiscard)});
  for (int16_t q = 0; q < 4; ++q)
    append(p, {mov64_reg(1, 6), mov64_imm(2, q), call_insn(kQuery),
               raw(0x7b, 10, 0, static_cast<int16_t>(-48 + 8 * q))});
  append(p, {mov64_reg(1, 6), mov64_reg(2, 10), raw(0x07, 2, 0, 0, -48), mov64_imm(3, 32), mov64_imm(4, 0),
             call_insn(kOutput), mov64_reg(0, 8), exit_insn()});
  return p;
}

// The kernel ring as user space maps it: the consumer page, then the
// producer page and the data (mapped twice).
struct KernelRing {
  void* cons = MAP_FAILED;
  void* prod = MAP_FAILED;
  size_t size = 0;
  KernelRing(int fd, size_t sz) : size(sz) {
    cons = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    prod = mmap(nullptr, 4096 + 2 * sz, PROT_READ, MAP_SHARED, fd, 4096);
  }
  ~KernelRing() {
    if (cons != MAP_FAILED) munmap(cons, 4096);
    if (prod != MAP_FAILED) munmap(prod, 4096 + 2 * size);
  }
  uint64_t producer_pos() const { return *static_cast<volatile uint64_t*>(prod); }
  uint64_t consumer_pos() const { return *static_cast<volatile uint64_t*>(cons); }
  Bytes data() const {
    auto* d = static_cast<const uint8_t*>(prod) + 4096;
    return Bytes(d, d + size);
  }
};

int collect(void* ctx, void* data, size_t size) {
  auto* out = static_cast<std::vector<Bytes>*>(ctx);
  out->emplace_back(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  return 0;
}

std::vector<Bytes> drain_kernel(int fd) {
  std::vector<Bytes> out;
  ring_buffer* rb = ring_buffer__new(fd, collect, &out, nullptr);
  EXPECT_NE(rb, nullptr);
  if (rb) {
    EXPECT_GE(ring_buffer__consume(rb), 0);
    ring_buffer__free(rb);
  }
  return out;
}

TEST(RingbufKernelDiff, SameProgramLeavesTheSameBytesInTheRing) {
  std::string why;
  if (geteuid() != 0 || !testing::kernel_bpf_available(&why))
    GTEST_SKIP() << "kernel bpf() unavailable (needs root): " << why;
  constexpr uint32_t kSize = 4096;
  testing::Fd kmap(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "diff", 0, 0, kSize, nullptr));
  ASSERT_GE(kmap.get(), 0) << std::strerror(errno);
  auto kprog = testing::kernel_load(
      BPF_PROG_TYPE_SOCKET_FILTER,
      diff_program(ld_map(6, static_cast<uint32_t>(kmap.get()), 1 /* BPF_PSEUDO_MAP_FD */)));
  ASSERT_TRUE(kprog.ok()) << kprog.error().message;
  auto m = make_ringbuf(kSize);
  const auto eprog = diff_program(ld_map(6, u(m), 0));
  KernelRing kr(kmap.get(), kSize);
  ASSERT_NE(kr.prod, MAP_FAILED);
  auto& rb = static_cast<maps::RingbufMap&>(*m);
  // 120 bytes a run: the ring fills up in the first round; later rounds wrap.
  int refused = 0;
  for (int round = 0; round < 4; ++round) {
    for (int run = 0; run < 40; ++run) {
      SCOPED_TRACE("round " + std::to_string(round) + " run " + std::to_string(run));
      auto k = testing::kernel_test_run(kprog->get(), Bytes(64));
      ASSERT_TRUE(k.ok()) << k.error().message;
      auto e = run_checked(eprog, m.get());
      ASSERT_TRUE(e.ok()) << e.error().message;
      EXPECT_EQ(k->retval, static_cast<uint32_t>(*e));
      refused += k->retval != 0;
      ASSERT_EQ(kr.producer_pos(), rb.producer_pos().load());
    }
    const Bytes ebytes(rb.data(), rb.data() + kSize);
    EXPECT_EQ(kr.data(), ebytes) << "round " << round;  // headers, pg_off, data, padding
    auto krecs = drain_kernel(kmap.get());
    auto erecs = drain(m);
    EXPECT_EQ(krecs, erecs) << "round " << round;
    EXPECT_GE(erecs.size(), 34u * 4);  // about 34 runs of 4 records fit
    EXPECT_EQ(kr.consumer_pos(), rb.consumer_pos().load());
  }
  EXPECT_GT(refused, 0);  // some outputs met a full ring (-EAGAIN)
}

// ---- perf event arrays ----

// Keeps this thread on one CPU so that "the current CPU" stays put.
class PinnedCpu {
 public:
  explicit PinnedCpu(int cpu) {
    sched_getaffinity(0, sizeof old_, &old_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ok_ = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  ~PinnedCpu() { sched_setaffinity(0, sizeof old_, &old_); }
  bool ok() const { return ok_; }

 private:
  cpu_set_t old_;
  bool ok_ = false;
};

// r9 = ctx, r6 = the perf event array (`map_ld`); outputs samples of 5, 8
// and 13 bytes to this CPU, tries an explicit other CPU (1), an index past
// the end (7) and an unknown flag, then outputs the four results.
std::vector<RawInsn> perf_diff_program(const std::vector<RawInsn>& map_ld) {
  using namespace testing;
  auto output = [](int64_t flags, int16_t off, int32_t size) {
    std::vector<RawInsn> v = {mov64_reg(1, 9), mov64_reg(2, 6)};
    append(v, ld_map(3, static_cast<uint64_t>(flags), 0));
    append(v,
           {mov64_reg(4, 10), raw(0x07, 4, 0, 0, off), mov64_imm(5, size), raw(0x85, 0, 0, 0, kPerfOutput)});
    return v;
  };
  std::vector<RawInsn> p = {mov64_reg(9, 1)};
  append(p, map_ld);
  append(p, ld_map(2, 0x0807060504030201ull, 0));
  p.push_back(raw(0x7b, 10, 2, -16));
  append(p, ld_map(2, 0x100f0e0d0c0b0a09ull, 0));
  p.push_back(raw(0x7b, 10, 2, -8));
  for (int32_t size : {5, 8, 13}) append(p, output(kBpfFCurrentCpu, -16, size));
  const int64_t probes[] = {1, 7, int64_t{1} << 32, kBpfFCurrentCpu};
  for (int i = 0; i < 4; ++i) {
    append(p, output(probes[i], -16, i == 3 ? 0 : 4));
    p.push_back(raw(0x7b, 10, 0, static_cast<int16_t>(-48 + 8 * i)));
  }
  append(p, output(kBpfFCurrentCpu, -48, 32));
  append(p, {mov64_imm(0, 0), exit_insn()});
  return p;
}

struct PerfSample {
  uint32_t cpu;
  Bytes data;
  bool operator==(const PerfSample&) const = default;
};

void collect_perf(void* ctx, int cpu, void* data, uint32_t size) {
  auto* out = static_cast<std::vector<PerfSample>*>(ctx);
  auto* d = static_cast<uint8_t*>(data);
  out->push_back({static_cast<uint32_t>(cpu), Bytes(d, d + size)});
}

TEST(PerfEventKernelDiff, SameProgramSameSamplesAndErrors) {
  std::string why;
  if (geteuid() != 0 || !testing::kernel_bpf_available(&why))
    GTEST_SKIP() << "kernel bpf() unavailable (needs root): " << why;
  if (possible_cpus() < 2) GTEST_SKIP() << "needs 2 CPUs";
  const uint32_t ncpus = possible_cpus();
  testing::Fd kmap(bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "pdiff", 4, 4, ncpus, nullptr));
  ASSERT_GE(kmap.get(), 0) << std::strerror(errno);
  std::vector<PerfSample> ksamples, esamples;
  perf_buffer* pb = perf_buffer__new(kmap.get(), 4, collect_perf, nullptr, &ksamples, nullptr);
  if (!pb) GTEST_SKIP() << "perf_buffer__new: " << std::strerror(errno);
  auto kprog = testing::kernel_load(BPF_PROG_TYPE_RAW_TRACEPOINT,
                                    perf_diff_program(ld_map(6, static_cast<uint32_t>(kmap.get()), 1)));
  ASSERT_TRUE(kprog.ok()) << kprog.error().message;
  LIBBPF_OPTS(bpf_test_run_opts, o, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = 0);
  ASSERT_EQ(bpf_prog_test_run_opts(kprog->get(), &o), 0) << std::strerror(errno);
  EXPECT_GE(perf_buffer__consume(pb), 0);
  perf_buffer__free(pb);

  auto m = make_map(MapType::PerfEventArray, ncpus, 4, 4);
  auto c = PerfBufferConsumer::create(m, [&](uint32_t cpu, const void* d, uint32_t n) {
    esamples.push_back({cpu, Bytes(static_cast<const uint8_t*>(d), static_cast<const uint8_t*>(d) + n)});
  });
  ASSERT_TRUE(c.ok());
  {
    PinnedCpu pin(0);
    ASSERT_TRUE(pin.ok());
    auto r = run_checked(perf_diff_program(ld_map(6, u(m), 0)), m.get());
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  (*c)->consume();
  ASSERT_EQ(ksamples.size(), 5u);  // 5, 8, 13 bytes, the 0-byte probe, the results
  // The kernel does not write the padding after a sample; compare what it wrote.
  const size_t sizes[] = {5, 8, 13, 0, 32};
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_EQ(ksamples[i].cpu, esamples.at(i).cpu);
    ASSERT_EQ(ksamples[i].data.size(), esamples[i].data.size());
    ksamples[i].data.resize(sizes[i]);
    esamples[i].data.resize(sizes[i]);
  }
  EXPECT_EQ(ksamples, esamples);
  int64_t results[4];
  std::memcpy(results, esamples[4].data.data(), sizeof results);
  EXPECT_EQ(results[0], -EOPNOTSUPP);
  EXPECT_EQ(results[1], -E2BIG);
  EXPECT_EQ(results[2], -EINVAL);
  EXPECT_EQ(results[3], 0);
}

TEST(PerfEventArray, SlotsAndErrnoResults) {
  auto m = make_map(MapType::PerfEventArray, 0, 4, 4, 2);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->spec().max_entries, 2u);  // 0: one slot per CPU, as libbpf sets it
  auto again = Map::open(m->fd());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->spec().max_entries, 2u);
  EXPECT_NE(create_error({"pe", MapType::PerfEventArray, 4, 8, 4}).find("value_size 4"), std::string::npos);

  PinnedCpu pin(0);
  ASSERT_TRUE(pin.ok());
  uint8_t d[5] = {1, 2, 3, 4, 5};
  EXPECT_EQ(s64(call(kPerfOutput, 0, u(m), kBpfFCurrentCpu, u(d), 5)), -ENOENT);  // no reader yet
  std::vector<std::pair<uint32_t, Bytes>> got;
  auto c = PerfBufferConsumer::create(m, [&](uint32_t cpu, const void* p, uint32_t n) {
    got.push_back({cpu, Bytes(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n)});
  });
  ASSERT_TRUE(c.ok()) << c.error().message;
  const uint32_t cpu = current_cpu(2);
  EXPECT_EQ(call(kPerfOutput, 0, u(m), kBpfFCurrentCpu, u(d), 5), 0u);
  EXPECT_EQ(call(kPerfOutput, 0, u(m), cpu, u(d), 5), 0u);
  EXPECT_EQ(s64(call(kPerfOutput, 0, u(m), 1 - cpu, u(d), 5)), -EOPNOTSUPP);  // another CPU's ring
  EXPECT_EQ(s64(call(kPerfOutput, 0, u(m), 2, u(d), 5)), -E2BIG);
  EXPECT_EQ(s64(call(kPerfOutput, 0, u(m), 1ull << 32, u(d), 5)), -EINVAL);
  EXPECT_EQ((*c)->consume(), 2);
  ASSERT_EQ(got.size(), 2u);
  // The raw size perf records: padded so the record is a multiple of 8.
  Bytes want = {1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(got[0], std::make_pair(cpu, want));
  uint32_t k = 1;
  EXPECT_EQ(m->erase(&k), 0);
  EXPECT_EQ(m->erase(&k), -ENOENT);
  EXPECT_EQ(m->update(&k, &k, kBpfNoexist), -EINVAL);
  k = 2;
  EXPECT_EQ(m->update(&k, &k, kBpfAny), -E2BIG);
}

TEST(PerfEventArray, FullRingCountsLostSamplesAndWraps) {
  auto m = make_map(MapType::PerfEventArray, 0, 4, 4, 2);
  PinnedCpu pin(0);
  ASSERT_TRUE(pin.ok());
  const uint32_t cpu = current_cpu(2);
  std::vector<uint32_t> seqs;
  uint64_t lost = 0;
  auto c = PerfBufferConsumer::create(
      m,
      [&](uint32_t on, const void* p, uint32_t n) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        if (on == cpu && n == 1004) seqs.push_back(v);
      },
      [&](uint32_t on, uint64_t n) {
        EXPECT_EQ(on, cpu);
        lost += n;
      });
  ASSERT_TRUE(c.ok());
  uint8_t buf[1000] = {};
  uint32_t seq = 0, refused = 0;
  for (int i = 0; i < 80; ++i, ++seq) {  // 1016-byte records: 64 fit in 64 KiB
    std::memcpy(buf, &seq, 4);
    if (s64(call(kPerfOutput, 0, u(m), kBpfFCurrentCpu, u(buf), 1000)) == -ENOSPC) ++refused;
  }
  EXPECT_EQ(refused, 16u);
  EXPECT_EQ((*c)->consume(), 64);
  EXPECT_EQ(lost, 0u);                    // reported with the next sample that fits
  for (int i = 0; i < 100; ++i, ++seq) {  // wraps around the ring's end
    std::memcpy(buf, &seq, 4);
    ASSERT_EQ(call(kPerfOutput, 0, u(m), kBpfFCurrentCpu, u(buf), 1000), 0u);
    if (i % 10 == 9) (*c)->poll(0);
  }
  (*c)->consume();
  EXPECT_EQ(lost, 16u);
  ASSERT_EQ(seqs.size(), 164u);
  for (uint32_t i = 0; i < 64; ++i) EXPECT_EQ(seqs[i], i);
  for (uint32_t i = 64; i < 164; ++i) EXPECT_EQ(seqs[i], i + 16);
}

TEST(PerfEventArray, PollIsWokenByASample) {
  auto m = make_map(MapType::PerfEventArray, 0, 4, 4);
  int got = 0;
  auto c = PerfBufferConsumer::create(m, [&](uint32_t, const void*, uint32_t) { ++got; });
  ASSERT_TRUE(c.ok());
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint8_t d[4] = {};
    EXPECT_EQ(call(kPerfOutput, 0, u(m), kBpfFCurrentCpu, u(d), 4), 0u);
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ((*c)->poll(10000), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  producer.join();
  EXPECT_EQ(got, 1);
}

}  // namespace
}  // namespace ember
