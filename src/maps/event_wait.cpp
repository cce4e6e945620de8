#include "maps/event_wait.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <vector>

namespace ember::shm {
namespace {

constexpr uint32_t kFutexSizeU32 = 2;  // FUTEX2_SIZE_U32 (FUTEX_32 in older headers)

std::atomic_ref<uint32_t> ref(uint32_t& w) { return std::atomic_ref<uint32_t>(w); }
uint32_t load(const WakeWord& w) { return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(w.seq)).load(); }

timespec to_timespec(int64_t ms) {
  return timespec{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the kernel keys the wait on the
// memfd's page, so a waker in another process finds it.
void wait_one(WakeWord& w, uint32_t seen, int timeout_ms) {
  timespec ts = to_timespec(timeout_ms);
  syscall(SYS_futex, &w.seq, FUTEX_WAIT, seen, timeout_ms < 0 ? nullptr : &ts, nullptr, 0);
}

// futex_waitv (Linux 5.16): one sleep on several words. Returns false when
// the kernel lacks it.
bool wait_many(std::span<WakeWord* const> words, std::span<const uint32_t> seen, int timeout_ms) {
  std::vector<futex_waitv> v(words.size());
  for (size_t i = 0; i < words.size(); ++i)
    v[i] = futex_waitv{seen[i], reinterpret_cast<uint64_t>(&words[i]->seq), kFutexSizeU32, 0};
  timespec abs{};
  if (timeout_ms >= 0) {
    abs = to_timespec(now_ms() + timeout_ms);
  }
  long r = syscall(SYS_futex_waitv, v.data(), v.size(), 0, timeout_ms < 0 ? nullptr : &abs, CLOCK_MONOTONIC);
  return !(r < 0 && errno == ENOSYS);
}

// Without futex_waitv: short sleeps on each word in turn.
void wait_sliced(std::span<WakeWord* const> words, std::span<const uint32_t> seen, int timeout_ms) {
  const int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
  constexpr int kSliceMs = 5;
  for (;;) {
    for (size_t i = 0; i < words.size(); ++i)
      if (load(*words[i]) != seen[i]) return;
    int64_t left = deadline - now_ms();
    if (left <= 0) return;
    wait_one(*words[0], seen[0], static_cast<int>(left < kSliceMs ? left : kSliceMs));
  }
}

}  // namespace

uint32_t wake_seq(const WakeWord& w) { return load(w); }

void wake(WakeWord& w) {
  // seq_cst on both sides: either the consumer counted itself as a waiter
  // before we look, or its FUTEX_WAIT sees the new seq and does not sleep.
  ref(w.seq).fetch_add(1);
  if (ref(w.waiters).load() != 0) syscall(SYS_futex, &w.seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void wait_any(std::span<WakeWord* const> words, std::span<const uint32_t> seen, int timeout_ms) {
  if (words.empty() || timeout_ms == 0) return;
  for (WakeWord* w : words) ref(w->waiters).fetch_add(1);
  if (words.size() == 1)
    wait_one(*words[0], seen[0], timeout_ms);
  else if (!wait_many(words, seen, timeout_ms))
    wait_sliced(words, seen, timeout_ms);
  for (WakeWord* w : words) ref(w->waiters).fetch_sub(1);
}

}  // namespace ember::shm
