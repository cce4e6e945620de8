// Writing code in a live multithreaded process. Text is never made writable:
// bytes go through /proc/self/mem (the kernel writes read-only private
// mappings for it, as for a debugger), and a multi-byte change follows the
// kernel's text_poke_bp protocol so that no thread ever executes a
// half-written instruction.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ember/result.hpp"

namespace ember::attach {

class TextPatcher {
 public:
  // The process-wide patcher: /proc/self/mem opened once, membarrier
  // registered once (both belong to the process, not to an engine).
  static Result<TextPatcher*> instance();

  // Plain write into any mapping of this process (code not yet reachable).
  Status write(uintptr_t addr, const void* bytes, size_t n);
  // Replaces n >= 1 bytes of live code. n == 1 is a single store (atomic
  // for instruction fetch). Longer: int3 at the first byte, serialize every
  // core, bytes 1..n-1, serialize, the first byte, serialize. A thread that
  // hits the temporary int3 is sent on by the SIGTRAP handler (which must
  // know the address before this is called).
  Status poke(uintptr_t addr, const void* bytes, size_t n);
  // Whether other cores can be serialized (membarrier); without it only
  // one-byte pokes are safe and inline hooks fall back to int3.
  bool can_serialize() const { return sync_cmd_ != 0; }
  // Closes /proc/self/mem: the agent is about to be unloaded and nothing
  // may be written afterwards. (The membarrier registration is the
  // process's and cannot be undone; it costs nothing when unused.)
  void release();
  // A full barrier on every running thread of the process (the grace period
  // of the hook lists uses it). Falls back to nothing when unavailable.
  void barrier_all_threads();
  void serialize_all_cores();

 private:
  TextPatcher(int fd, int sync_cmd, int barrier_cmd)
      : fd_(fd), pid_(getpid()), sync_cmd_(sync_cmd), barrier_cmd_(barrier_cmd) {}
  // The process whose /proc/self/mem fd_ is: a forked child inherits the
  // fd, which still writes into the parent, so write() reopens it first.
  int fd_;
  pid_t pid_;
  int sync_cmd_;     // MEMBARRIER_CMD_PRIVATE_EXPEDITED[_SYNC_CORE], 0: none
  int barrier_cmd_;  // MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0: none
};

// Parks every other thread of the process in a signal handler (SIGRTMIN+3:
// the one signal number the engine takes from the application) and tells
// whether one of them was stopped with its rip strictly inside (lo, hi):
// such a thread would resume in the middle of a jmp written over [lo, hi).
// Threads stay parked until the returned guard is destroyed. Error when a
// thread does not answer within a second (the signal blocked): the caller
// does not patch a multi-instruction window then.
class ParkedThreads {
 public:
  static Result<std::unique_ptr<ParkedThreads>> park(uintptr_t lo, uintptr_t hi);
  bool someone_inside() const { return inside_; }
  ~ParkedThreads();

 private:
  explicit ParkedThreads(bool inside) : inside_(inside) {}
  bool inside_;
};

// The mapping of this process that holds `addr`, from /proc/self/maps.
struct MappingInfo {
  uintptr_t start = 0, end = 0;
  bool readable = false, executable = false;
};
Result<MappingInfo> mapping_of(uintptr_t addr);

// Executable memory close to an address (within +-1 GiB, so that relocated
// RIP-relative operands reach what they did), carved from 64 KiB chunks
// mapped r-x and filled through TextPatcher::write. Chunks stay mapped for
// the life of the process: a thread may be inside a trampoline at any time,
// and the only way to know it is not would cost every hit an atomic. The
// exception is an agent being unloaded, whose controller has stopped every
// thread and checked that none is in or returns into one (release()).
class CodeArena {
 public:
  static CodeArena& instance();
  // Unmaps every chunk; what alloc() gave is gone.
  void release();
  // Reserves `size` bytes near `near` (0: anywhere); error when no gap is
  // close enough.
  Result<uintptr_t> alloc(uintptr_t near, size_t size);

 private:
  struct Chunk {
    uintptr_t base;
    size_t used;
  };
  Result<uintptr_t> map_chunk(uintptr_t near);
  static constexpr size_t kChunk = 64 * 1024;
  Chunk chunks_[256];
  size_t nchunks_ = 0;
};

}  // namespace ember::attach
