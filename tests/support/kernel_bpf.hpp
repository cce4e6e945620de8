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

// Whether this process may load and run BPF programs; if not, why.
bool kernel_bpf_available(std::string* why);

Result<Fd> kernel_array_map(uint32_t value_size, uint32_t max_entries);
Status kernel_map_update(int map_fd, uint32_t key, std::span<const uint8_t> value);
Status kernel_map_lookup(int map_fd, uint32_t key, std::span<uint8_t> value);

// Loads a program of the given BPF_PROG_TYPE_*; on rejection the error holds
// the tail of the verifier log.
Result<Fd> kernel_load(uint32_t prog_type, std::span<const RawInsn> insns);

struct KernelRun {
  uint32_t retval = 0;
  uint32_t duration_ns = 0;  // the kernel's own average per repetition
};
Result<KernelRun> kernel_test_run(int prog_fd, std::span<const uint8_t> data, uint32_t repeat = 1);

// A program loaded the way bpf_conformance runs programs (r1 = memory, r2 =
// its length, the 64-bit r0 is the result): a socket-filter wrapper looks up
// an array map value laid out as [8-byte result][memory], calls the program
// as a bpf-to-bpf subprogram with r1 = the memory, and stores r0. The wrapper
// costs one map lookup and one call per run (measure it with an empty body).
class KernelHarness {
 public:
  // A verifier rejection is an error that starts with "kernel rejected".
  static Result<KernelHarness> load(std::span<const RawInsn> body, std::span<const uint8_t> mem);
  // Runs once; `mem` (of the size given to load) receives the memory after.
  Result<uint64_t> run_once(std::vector<uint8_t>& mem);
  // Runs `repeat` times in the kernel; the kernel's average time per run.
  Result<KernelRun> run(uint32_t repeat);

 private:
  KernelHarness(Fd map, Fd prog, size_t mem_size)
      : map_(std::move(map)), prog_(std::move(prog)), mem_size_(mem_size) {}
  Fd map_, prog_;
  size_t mem_size_;
};

// Loads, runs once and returns r0; `mem` is updated with the memory after.
Result<uint64_t> run_in_kernel(std::span<const RawInsn> prog, std::vector<uint8_t>& mem);

}  // namespace ember::testing
