// Reading and writing memory a program names by address: the probe_read
// family and probe_write_user (kernel/trace/bpf_trace.c). In user space
// "user" memory is this process's, read fault-safely; kernel memory cannot
// be read at all, so the kernel variants fail with -EFAULT and zero their
// buffer, as the kernel does for an unreadable address.
#include <cerrno>
#include <cstring>

#include "ember/helpers.hpp"
#include "ember/vm.hpp"
#include "helpers/user_memory.hpp"

namespace ember {
namespace {

constexpr ArgType N = ArgType::None;
constexpr ArgType A = ArgType::Anything;
constexpr ArgType kBuf = ArgType::PtrToUninitMem;
constexpr ArgType kSize = ArgType::ConstSizeOrZero;

uint64_t err(int e) { return static_cast<uint64_t>(static_cast<int64_t>(-e)); }

bool dst_ok(HelperCall& c, uint64_t dst, uint64_t size, const char* what) {
  return c.check(dst, size, true, what);
}

uint64_t probe_read_user(HelperCall& c, uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (!dst_ok(c, dst, size, "bpf_probe_read_user buffer")) return err(EFAULT);
  return static_cast<uint64_t>(read_user(reinterpret_cast<void*>(dst), src, size));
}

uint64_t probe_read_user_str(HelperCall& c, uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (!dst_ok(c, dst, size, "bpf_probe_read_user_str buffer")) return err(EFAULT);
  return static_cast<uint64_t>(read_user_str(reinterpret_cast<char*>(dst), src, size));
}

// x86-64's TASK_SIZE_MAX + a page: below it, addresses are user space.
constexpr uint64_t kUserSpaceEnd = 0x00007ffffffff000ull + 4096;

// The one "kernel" memory a program has in Ember is what the runtime hands
// it: its context (a probe's struct pt_regs lives in the agent, not in the
// traced code). libbpf's usdt.bpf.h reads argument registers with
// bpf_probe_read_kernel(&val, 8, ctx + reg_off), which the kernel serves
// from its pt_regs: so is a read wholly inside the run's context here.
uint64_t probe_read_kernel_fail(uint64_t dst, uint64_t size, uint64_t src);

bool in_context(const HelperCall& c, uint64_t src, uint64_t size) {
  if (!c.input || !c.input->ctx) return false;
  const auto base = reinterpret_cast<uint64_t>(c.input->ctx);
  return src >= base && size <= c.input->ctx_size && src - base <= c.input->ctx_size - size;
}

uint64_t probe_read_kernel(HelperCall& c, uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (!dst_ok(c, dst, size, "bpf_probe_read_kernel buffer")) return err(EFAULT);
  if (in_context(c, src, size)) {
    std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), size);
    return 0;
  }
  return probe_read_kernel_fail(dst, size, src);
}

uint64_t probe_read_kernel_str(HelperCall& c, uint64_t dst, uint64_t size, uint64_t src, uint64_t, uint64_t) {
  if (!dst_ok(c, dst, size, "bpf_probe_read_kernel_str buffer")) return err(EFAULT);
  return probe_read_kernel_fail(dst, size, src);
}

uint64_t probe_read_kernel_fail(uint64_t dst, uint64_t size, uint64_t src) {
  std::memset(reinterpret_cast<void*>(dst), 0, size);
  // No kernel memory in user space. For a user address the kernel refuses
  // with -ERANGE (copy_from_kernel_nofault_allowed); anything else would
  // fault there: -EFAULT.
  return err(src < kUserSpaceEnd ? ERANGE : EFAULT);
}

uint64_t probe_write_user(HelperCall& c, uint64_t dst, uint64_t src, uint64_t size, uint64_t, uint64_t) {
  if (!c.check(src, size, false, "bpf_probe_write_user source")) return err(EFAULT);
  return static_cast<uint64_t>(write_user(dst, reinterpret_cast<const void*>(src), size));
}

constexpr HelperDef kProbeHelpers[] = {
    // The legacy bpf_probe_read / _str read user memory here: on x86-64 the
    // kernel's compat versions accept both address spaces.
    {4, "bpf_probe_read", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_user},
    {36,
     "bpf_probe_write_user",
     {RetType::Integer, {A, ArgType::PtrToMem, ArgType::ConstSize, N, N}},
     probe_write_user},
    {45, "bpf_probe_read_str", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_user_str},
    {112, "bpf_probe_read_user", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_user},
    {113, "bpf_probe_read_kernel", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_kernel},
    {114, "bpf_probe_read_user_str", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_user_str},
    {115, "bpf_probe_read_kernel_str", {RetType::Integer, {kBuf, kSize, A, N, N}}, probe_read_kernel_str},
};

}  // namespace

std::span<const HelperDef> probe_helpers() { return kProbeHelpers; }

}  // namespace ember
