// The kernel helpers that need no maps or attach point: time, randomness,
// the current task, trace_printk. Ids and semantics follow
// include/uapi/linux/bpf.h (the "FN(...)" list) and kernel/bpf/helpers.c.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "helpers/trace_printk.hpp"
#include "runtime/kconfig.hpp"

namespace ember {

bool HelperCall::check(uint64_t addr, uint64_t size, bool write, const char* what) {
  if (!guard || guard->allows(addr, size, write)) return true;
  if (fault.empty())
    fault = std::string(what) + ": " + std::to_string(size) + " bytes at " + std::to_string(addr) +
            " are not " + (write ? "writable" : "readable") + " by the program";
  return false;
}

namespace {

constexpr ArgType A = ArgType::Anything;
constexpr ArgType N = ArgType::None;

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t ktime_get_ns(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return clock_ns(CLOCK_MONOTONIC);
}

uint64_t ktime_get_boot_ns(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return clock_ns(CLOCK_BOOTTIME);
}

uint64_t ktime_get_coarse_ns(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return clock_ns(CLOCK_MONOTONIC_COARSE);
}

// xorshift64*: the kernel uses a per-CPU prandom state; ours is per run.
// A run without RunOptions::random_seed starts at 0 and is seeded from the
// time stamp counter here, on first use, so that runs that never ask for a
// random number do not pay for reading the clock.
uint64_t get_prandom_u32(HelperCall& c, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  uint64_t x = c.prandom_state;
  if (x == 0) x = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(__builtin_ia32_rdtsc());
  if (x == 0) x = 0x9E3779B97F4A7C15ull;  // xorshift never leaves 0
  x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
  c.prandom_state = x;
  return static_cast<uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 32);
}

uint64_t get_smp_processor_id(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : static_cast<uint64_t>(cpu);
}

uint64_t get_current_pid_tgid(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return (static_cast<uint64_t>(getpid()) << 32) | static_cast<uint32_t>(syscall(SYS_gettid));
}

uint64_t get_current_uid_gid(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return (static_cast<uint64_t>(getgid()) << 32) | getuid();
}

// bpf_get_current_comm(buf, size): NUL-terminated task name, zero-padded.
uint64_t get_current_comm(HelperCall& c, uint64_t buf, uint64_t size, uint64_t, uint64_t, uint64_t) {
  if (size == 0) return static_cast<uint64_t>(-EINVAL);
  if (!c.check(buf, size, true, "bpf_get_current_comm buffer")) return static_cast<uint64_t>(-EFAULT);
  char name[17] = {};
  prctl(PR_GET_NAME, name);
  char* out = reinterpret_cast<char*>(buf);
  std::memset(out, 0, size);
  std::strncpy(out, name, size - 1);
  return 0;
}

uint64_t trace_printk(HelperCall& c, uint64_t fmt, uint64_t size, uint64_t a1, uint64_t a2, uint64_t a3) {
  if (!c.check(fmt, size, false, "bpf_trace_printk format")) return static_cast<uint64_t>(-EFAULT);
  const uint64_t args[3] = {a1, a2, a3};
  auto text = format_bprintf(c, reinterpret_cast<const char*>(fmt), size, args);
  if (!text) return static_cast<uint64_t>(-EINVAL);
  emit_trace_line(c, *text);
  return text->size();
}

// jiffies at the kernel's CONFIG_HZ (250 on Debian's kernels when the
// config cannot be read), from the coarse monotonic clock.
uint64_t jiffies64(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  static const uint64_t hz = [] {
    uint64_t v = 0;
    if (auto k = kconfig_value("CONFIG_HZ", true); k) v = *k;
    return v ? v : 250;
  }();
  return clock_ns(CLOCK_MONOTONIC_COARSE) / (1000000000ull / hz);
}

uint64_t get_numa_node_id(HelperCall&, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  unsigned cpu = 0, node = 0;
  return getcpu(&cpu, &node) == 0 ? node : 0;
}

uint64_t get_attach_cookie(HelperCall& c, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return c.attach_cookie;
}

uint64_t get_func_ip(HelperCall& c, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return c.func_ip; }

// bpf_send_signal / _thread: to the current process or thread, which in
// user space is the one the program runs in (the traced process).
uint64_t send_signal(HelperCall&, uint64_t sig, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (sig == 0 || sig >= 65) return static_cast<uint64_t>(-EINVAL);
  return kill(getpid(), static_cast<int>(sig)) == 0 ? 0 : static_cast<uint64_t>(-errno);
}

uint64_t send_signal_thread(HelperCall&, uint64_t sig, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (sig == 0 || sig >= 65) return static_cast<uint64_t>(-EINVAL);
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), static_cast<int>(sig)) == 0
             ? 0
             : static_cast<uint64_t>(-errno);
}

// struct bpf_spin_lock { __u32 val; } inside a map value, shared with other
// processes that map the same segment: a test-and-set lock.
uint64_t spin_lock(HelperCall& c, uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (!c.check(lock, 4, true, "bpf_spin_lock lock")) return 0;
  std::atomic_ref<uint32_t> w(*reinterpret_cast<uint32_t*>(lock));
  while (w.exchange(1, std::memory_order_acquire))
    while (w.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  return 0;
}

uint64_t spin_unlock(HelperCall& c, uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (!c.check(lock, 4, true, "bpf_spin_unlock lock")) return 0;
  std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(lock)).store(0, std::memory_order_release);
  return 0;
}

constexpr HelperDef kLinuxHelpers[] = {
    {5, "bpf_ktime_get_ns", {RetType::Integer, {N, N, N, N, N}}, ktime_get_ns},
    {6,
     "bpf_trace_printk",
     // The kernel declares only fmt and its size; r3-r5 are not checked
     // (bpf_printk with fewer arguments leaves them unset).
     {RetType::Integer, {ArgType::PtrToMem, ArgType::ConstSize, N, N, N}},
     trace_printk},
    {7, "bpf_get_prandom_u32", {RetType::Integer, {N, N, N, N, N}}, get_prandom_u32},
    {8, "bpf_get_smp_processor_id", {RetType::Integer, {N, N, N, N, N}}, get_smp_processor_id},
    {14, "bpf_get_current_pid_tgid", {RetType::Integer, {N, N, N, N, N}}, get_current_pid_tgid},
    {15, "bpf_get_current_uid_gid", {RetType::Integer, {N, N, N, N, N}}, get_current_uid_gid},
    {16,
     "bpf_get_current_comm",
     {RetType::Integer, {ArgType::PtrToUninitMem, ArgType::ConstSize, N, N, N}},
     get_current_comm},
    {42, "bpf_get_numa_node_id", {RetType::Integer, {N, N, N, N, N}}, get_numa_node_id},
    {93, "bpf_spin_lock", {RetType::Void, {ArgType::PtrToSpinLock, N, N, N, N}}, spin_lock},
    {94, "bpf_spin_unlock", {RetType::Void, {ArgType::PtrToSpinLock, N, N, N, N}}, spin_unlock},
    {109, "bpf_send_signal", {RetType::Integer, {A, N, N, N, N}}, send_signal},
    {117, "bpf_send_signal_thread", {RetType::Integer, {A, N, N, N, N}}, send_signal_thread},
    {118, "bpf_jiffies64", {RetType::Integer, {N, N, N, N, N}}, jiffies64},
    {125, "bpf_ktime_get_boot_ns", {RetType::Integer, {N, N, N, N, N}}, ktime_get_boot_ns},
    {173, "bpf_get_func_ip", {RetType::Integer, {ArgType::PtrToCtx, N, N, N, N}}, get_func_ip},
    {174, "bpf_get_attach_cookie", {RetType::Integer, {ArgType::PtrToCtx, N, N, N, N}}, get_attach_cookie},
    {160, "bpf_ktime_get_coarse_ns", {RetType::Integer, {N, N, N, N, N}}, ktime_get_coarse_ns},
};

// uBPF's "unwind" test helper as the bpf_conformance suite uses it (id 5):
// returns its argument.
uint64_t conformance_unwind(HelperCall&, uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t) { return r1; }
constexpr HelperDef kConformanceUnwind = {
    5, "conformance_unwind", {RetType::Integer, {A, N, N, N, N}}, conformance_unwind};

}  // namespace

std::span<const HelperDef> linux_helpers() { return kLinuxHelpers; }

HelperTable default_helper_table() {
  HelperTable t(linux_helpers());
  t.add(map_helpers());
  t.add(probe_helpers());
  t.add(string_helpers());
  t.add(stack_helpers());
  t.add(event_helpers());
  return t;
}

HelperTable conformance_helper_table() {
  HelperTable t = default_helper_table();
  t.add(kConformanceUnwind);
  return t;
}

}  // namespace ember
