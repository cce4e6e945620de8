// The Linux kernel as an oracle: a thin wrapper over the bpf(2) system call
// (no libbpf) to load programs, run them with BPF_PROG_TEST_RUN and read
// maps, so that tests can compare Ember with the kernel where bpf() works.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember::testing {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// Whether this process may load and run BPF programs (it loads a trivial
// socket filter and runs it with BPF_PROG_TEST_RUN); if not, why (EPERM:
// not privileged, ENOSYS: no bpf() in this kernel or a seccomp filter...).
bool kernel_bpf_available(std::string* why);

// BPF_MAP_TYPE_ARRAY with 4-byte keys.
Result<Fd> kernel_array_map(uint32_t value_size, uint32_t max_entries);
Status kernel_map_update(int map_fd, uint32_t key, std::span<const uint8_t> value);
Status kernel_map_lookup(int map_fd, uint32_t key, std::span<uint8_t> value);

// Loads a program of the given BPF_PROG_TYPE_* (license GPL). On rejection
// the error reads "kernel rejected the program (ERRNO): REASON" followed, on
// the next lines, by the tail of the verifier log; REASON is the log's last
// line that says why (not its statistics). `log`, if given, receives the
// whole verifier log of a rejected program.
Result<Fd> kernel_load(uint32_t prog_type, std::span<const RawInsn> insns, std::string* log = nullptr);

struct KernelRun {
  uint32_t retval = 0;
  uint32_t duration_ns = 0;        // the kernel's own average per repetition
  std::vector<uint8_t> data_out;   // the packet after the run
};
Result<KernelRun> kernel_test_run(int prog_fd, std::span<const uint8_t> data, uint32_t repeat = 1);

// A program loaded the way bpf_conformance runs programs (r1 = memory, r2 =
// its length, the 64-bit r0 is the result): a socket-filter wrapper looks up
// key 0 of an array map whose value is laid out as [8-byte result][memory],
// calls the program as a bpf-to-bpf subprogram placed right after it with
// r1 = the memory and r2 = its length, stores r0 in the result and returns 1.
// The program's own local calls are relative and stay valid. The kernel
// verifier checks the program as a subprogram: its stack, and its accesses
// against the memory's bounds. The wrapper costs one map lookup and one call
// per run (measure it with an empty body).
class KernelHarness {
 public:
  // A verifier rejection is an error that starts with "kernel rejected"
  // (see kernel_load); `log` receives the whole verifier log then.
  static Result<KernelHarness> load(std::span<const RawInsn> body, std::span<const uint8_t> mem,
                                    std::string* log = nullptr);
  // Runs once; `mem` receives the memory after the run (of the size given
  // to load; it is not reset between runs).
  Result<uint64_t> run_once(std::vector<uint8_t>& mem);
  // Runs `repeat` times in the kernel; the kernel's average time per run.
  Result<KernelRun> run(uint32_t repeat);

 private:
  KernelHarness(Fd map, Fd prog, size_t mem_size)
      : map_(std::move(map)), prog_(std::move(prog)), mem_size_(mem_size) {}
  Fd map_, prog_;
  size_t mem_size_;
};

// Loads `prog` with a fresh copy of `mem`, runs it once and returns its
// 64-bit r0. `mem_after`, if given, receives the memory after the run. A
// verifier rejection is an error that starts with "kernel rejected"; `note`,
// if given, receives the whole verifier log then (it is cleared on success).
Result<uint64_t> run_in_kernel(std::span<const RawInsn> prog, std::span<const uint8_t> mem,
                               std::string* note = nullptr, std::vector<uint8_t>* mem_after = nullptr);
// The same, with `mem` updated in place to the memory after the run.
Result<uint64_t> run_in_kernel(std::span<const RawInsn> prog, std::vector<uint8_t>& mem);

}  // namespace ember::testing
