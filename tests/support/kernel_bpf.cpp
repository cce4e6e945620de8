#include "support/kernel_bpf.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "test_util.hpp"

namespace ember::testing {
namespace {

long sys_bpf(int cmd, bpf_attr& attr) { return syscall(__NR_bpf, cmd, &attr, sizeof attr); }

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }

std::string errno_text(int e) { return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")"; }

// Splits a verifier log into its non-empty lines.
std::vector<std::string> log_lines(const std::string& log) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    if (nl == std::string::npos) nl = log.size();
    std::string line = log.substr(pos, nl - pos);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\0'))
      line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    pos = nl + 1;
  }
  return lines;
}

// The verifier's statistics at the end of its log, which say nothing of why.
bool is_statistics(const std::string& line) {
  return line.starts_with("processed ") || line.starts_with("verification time") ||
         line.starts_with("stack depth") || line.starts_with("max_states_per_insn");
}

// "REASON\nTAIL": the last line that says why, then the log's last lines.
std::string explain_rejection(const std::string& log, size_t tail_lines) {
  std::vector<std::string> lines = log_lines(log);
  std::string reason = "(empty verifier log)";
  for (size_t i = lines.size(); i-- > 0;)
    if (!is_statistics(lines[i])) {
      reason = lines[i];
      break;
    }
  std::string out = reason;
  for (size_t i = lines.size() > tail_lines ? lines.size() - tail_lines : 0; i < lines.size(); ++i)
    out += "\n  " + lines[i];
  return out;
}

RawInsn insn(uint8_t opcode, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return raw(opcode, dst, src, off, imm);
}

constexpr size_t kWrapperLen = 15;

// The socket-filter wrapper around a conformance-style body (see header).
std::vector<RawInsn> wrap(std::span<const RawInsn> body, int map_fd, uint32_t mem_len) {
  std::vector<RawInsn> w = {
      insn(0x62, 10, 0, -4, 0),  // *(u32 *)(r10 - 4) = 0
      insn(0xbf, 2, 10, 0, 0),   // r2 = r10
      insn(0x07, 2, 0, 0, -4),   // r2 += -4
      insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
      insn(0, 0, 0, 0, 0),                                 // r1 = map ll
      insn(0x85, 0, 0, 0, BPF_FUNC_map_lookup_elem),       // call map_lookup_elem
      insn(0x15, 0, 0, 7, 0),                              // if r0 == 0 goto out (returns 0)
      insn(0xbf, 6, 0, 0, 0),                              // r6 = r0
      insn(0xbf, 1, 0, 0, 0),                              // r1 = r0
      insn(0x07, 1, 0, 0, 8),                              // r1 += 8
      insn(0xb7, 2, 0, 0, static_cast<int32_t>(mem_len)),  // r2 = len
      insn(0x85, 0, BPF_PSEUDO_CALL, 0, 3),                // call body
      insn(0x7b, 6, 0, 0, 0),                              // *(u64 *)(r6 + 0) = r0
      insn(0xb7, 0, 0, 0, 1),                              // r0 = 1: the body ran
      insn(0x95, 0, 0, 0, 0),                              // out: exit
  };
  static_assert(kWrapperLen == 15);  // the call's offset (3) and the jump's (7) depend on it
  assert(w.size() == kWrapperLen);
  w.insert(w.end(), body.begin(), body.end());
  return w;
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

bool kernel_bpf_available(std::string* why) {
  const RawInsn prog[] = {insn(0xb7, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)};
  auto fd = kernel_load(BPF_PROG_TYPE_SOCKET_FILTER, prog);
  if (!fd) {
    if (why) *why = "bpf(BPF_PROG_LOAD) of a trivial socket filter failed: " + fd.error().message;
    return false;
  }
  std::vector<uint8_t> packet(64, 0);
  auto run = kernel_test_run(fd->get(), packet);
  if (!run) {
    if (why) *why = "bpf(BPF_PROG_TEST_RUN) of a trivial socket filter failed: " + run.error().message;
    return false;
  }
  return true;
}

Result<Fd> kernel_array_map(uint32_t value_size, uint32_t max_entries) {
  bpf_attr a{};
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = value_size;
  a.max_entries = max_entries;
  long fd = sys_bpf(BPF_MAP_CREATE, a);
  if (fd < 0) return fail("BPF_MAP_CREATE: ", errno_text(errno));
  return Fd(static_cast<int>(fd));
}

Status kernel_map_update(int map_fd, uint32_t key, std::span<const uint8_t> value) {
  bpf_attr a{};
  a.map_fd = static_cast<uint32_t>(map_fd);
  a.key = ptr(&key);
  a.value = ptr(value.data());
  a.flags = BPF_ANY;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, a) < 0) return fail("BPF_MAP_UPDATE_ELEM: ", errno_text(errno));
  return ok_status();
}

Status kernel_map_lookup(int map_fd, uint32_t key, std::span<uint8_t> value) {
  bpf_attr a{};
  a.map_fd = static_cast<uint32_t>(map_fd);
  a.key = ptr(&key);
  a.value = ptr(value.data());
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, a) < 0) return fail("BPF_MAP_LOOKUP_ELEM: ", errno_text(errno));
  return ok_status();
}

Result<Fd> kernel_load(uint32_t prog_type, std::span<const RawInsn> insns, std::string* log_out) {
  static constexpr char kLicense[] = "GPL";
  bpf_attr a{};
  a.prog_type = prog_type;
  a.insns = ptr(insns.data());
  a.insn_cnt = static_cast<uint32_t>(insns.size());
  a.license = ptr(kLicense);
  // Without a log first: most programs load, and the log costs time.
  long fd = sys_bpf(BPF_PROG_LOAD, a);
  if (fd >= 0) return Fd(static_cast<int>(fd));
  int e = errno;
  if (e == EPERM || e == ENOSYS) return fail("bpf(BPF_PROG_LOAD): ", errno_text(e));
  // Again with a log to say why. Since Linux 6.4 a log that overflows keeps
  // its tail (ENOSPC then), which is where the verifier says why.
  std::string log(4u << 20, '\0');
  a.log_buf = ptr(log.data());
  a.log_size = static_cast<uint32_t>(log.size());
  a.log_level = 1;
  fd = sys_bpf(BPF_PROG_LOAD, a);
  if (fd >= 0) return Fd(static_cast<int>(fd));  // cannot happen, but it loaded
  if (errno != ENOSPC) e = errno;
  log.resize(std::strlen(log.c_str()));
  if (log_out) *log_out = log;
  return fail("kernel rejected the program (", errno_text(e), "): ", explain_rejection(log, 4));
}

Result<KernelRun> kernel_test_run(int prog_fd, std::span<const uint8_t> data, uint32_t repeat) {
  std::vector<uint8_t> out(data.size() + 256);
  bpf_attr a{};
  a.test.prog_fd = static_cast<uint32_t>(prog_fd);
  a.test.data_in = ptr(data.data());
  a.test.data_size_in = static_cast<uint32_t>(data.size());
  a.test.data_out = ptr(out.data());
  a.test.data_size_out = static_cast<uint32_t>(out.size());
  a.test.repeat = repeat;
  if (sys_bpf(BPF_PROG_TEST_RUN, a) < 0) return fail("BPF_PROG_TEST_RUN: ", errno_text(errno));
  out.resize(std::min<size_t>(a.test.data_size_out, out.size()));
  return KernelRun{a.test.retval, a.test.duration, std::move(out)};
}

Result<KernelHarness> KernelHarness::load(std::span<const RawInsn> body, std::span<const uint8_t> mem,
                                          std::string* log) {
  auto map = kernel_array_map(static_cast<uint32_t>(8 + mem.size()), 1);
  if (!map) return map.error();
  std::vector<uint8_t> value(8 + mem.size(), 0);
  std::copy(mem.begin(), mem.end(), value.begin() + 8);
  if (auto st = kernel_map_update(map->get(), 0, value); !st) return st.error();
  auto fd = kernel_load(BPF_PROG_TYPE_SOCKET_FILTER,
                        wrap(body, map->get(), static_cast<uint32_t>(mem.size())), log);
  if (!fd) return fd.error();
  return KernelHarness(std::move(*map), std::move(*fd), mem.size());
}

Result<KernelRun> KernelHarness::run(uint32_t repeat) {
  std::vector<uint8_t> packet(64, 0);  // a socket filter needs at least an Ethernet header
  return kernel_test_run(prog_.get(), packet, repeat);
}

Result<uint64_t> KernelHarness::run_once(std::vector<uint8_t>& mem) {
  auto r = run(1);
  if (!r) return r.error();
  if (r->retval != 1)
    return fail("the kernel wrapper returned ", r->retval, ", not 1: the map lookup failed");
  std::vector<uint8_t> value(8 + mem_size_);
  if (auto st = kernel_map_lookup(map_.get(), 0, value); !st) return st.error();
  mem.assign(value.begin() + 8, value.end());
  uint64_t r0 = 0;
  std::memcpy(&r0, value.data(), 8);
  return r0;
}

Result<uint64_t> run_in_kernel(std::span<const RawInsn> prog, std::span<const uint8_t> mem, std::string* note,
                               std::vector<uint8_t>* mem_after) {
  auto h = KernelHarness::load(prog, mem, note);
  if (!h) return h.error();
  std::vector<uint8_t> after;
  auto r0 = h->run_once(after);
  if (r0 && mem_after) *mem_after = std::move(after);
  if (r0 && note) note->clear();
  return r0;
}

Result<uint64_t> run_in_kernel(std::span<const RawInsn> prog, std::vector<uint8_t>& mem) {
  return run_in_kernel(prog, mem, nullptr, &mem);
}

}  // namespace ember::testing
