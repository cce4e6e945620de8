// Sleeping until a producer in any process says there is new data: a
// sequence word in shared memory that producers bump and consumers wait on
// with futexes (non-private, so that they work across processes mapping the
// same memfd). This stands in for the kernel's wait queue, which ring buffer
// and perf buffer fds expose through epoll.
#pragma once

#include <cstdint>
#include <span>

namespace ember::shm {

// Lives in a segment; zero-initialized.
struct WakeWord {
  uint32_t seq;      // bumped on every wakeup
  uint32_t waiters;  // consumers inside wait_any(); producers skip the syscall when 0
};

// The value to pass to wait_any() as `seen`: read it BEFORE looking for data,
// so that a wakeup after the look is never missed.
uint32_t wake_seq(const WakeWord& w);

// Wakes every consumer waiting on `w` (the kernel's irq_work -> wake_up_all).
void wake(WakeWord& w);

// Sleeps until some words[i]->seq differs from seen[i], a signal arrives or
// `timeout_ms` passes (< 0: no timeout, 0: do not sleep).
void wait_any(std::span<WakeWord* const> words, std::span<const uint32_t> seen, int timeout_ms);

}  // namespace ember::shm
