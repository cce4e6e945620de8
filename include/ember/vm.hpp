// The interpreter: runs a decoded Program. The reference semantics of the
// ISA for every other engine (the JIT is tested against it).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember {

// Memory a program may touch when it runs unverified (checked mode).
struct MemRegion {
  uint64_t start = 0;
  uint64_t size = 0;
  bool writable = true;
};

// The checked mode's view of memory: the context or memory buffer, the
// stack frames in use, and memory that helpers granted during the run.
class MemoryGuard {
 public:
  void grant(const void* p, uint64_t size, bool writable) {
    regions_.push_back({reinterpret_cast<uint64_t>(p), size, writable});
  }
  bool allows(uint64_t addr, uint64_t size, bool write) const;
  void set_stack(uint64_t lo, uint64_t hi) { stack_lo_ = lo, stack_hi_ = hi; }
  void clear() { regions_.clear(); }

  // For nested runs (callbacks, tail calls): the caller's stack becomes an
  // ordinary region while the nested run has its own; restore() undoes it.
  struct Saved {
    size_t regions;
    uint64_t stack_lo, stack_hi;
  };
  Saved save() const { return {regions_.size(), stack_lo_, stack_hi_}; }
  void grant_stack_as_region() {
    if (stack_hi_ > stack_lo_) regions_.push_back({stack_lo_, stack_hi_ - stack_lo_, true});
  }
  void restore(const Saved& s) {
    regions_.resize(s.regions);
    stack_lo_ = s.stack_lo, stack_hi_ = s.stack_hi;
  }

  // References a helper hands out that the program must give back (ring
  // buffer records: submitted or discarded). The verifier proves verified
  // code does; checked mode tracks them per run instead.
  using DropFn = void (*)(uint64_t addr);
  void hold(uint64_t addr, DropFn drop) { held_.push_back({addr, drop}); }
  // Gives a reference back and takes its memory away from the program (a
  // record written after bpf_ringbuf_submit is a fault); false if `addr`
  // is not held.
  bool release(uint64_t addr);
  size_t held() const { return held_.size(); }
  // Drops every reference still held (a run that ended, or faulted, without
  // giving them back: a reserved record left alone would block its ring
  // buffer's consumer for good).
  void drop_held();

 private:
  struct Held {
    uint64_t addr;
    DropFn drop;
  };
  std::vector<MemRegion> regions_;
  std::vector<Held> held_;
  uint64_t stack_lo_ = 0, stack_hi_ = 0;
};

// One step of a traced run: the instruction about to execute and the
// registers before it.
struct TraceStep {
  size_t pc;
  const uint64_t* regs;  // kNumRegs values
  int frame;
};
using TraceSink = std::function<void(const TraceStep&)>;

struct RunOptions {
  // Checked mode: bound every memory access and the instruction count.
  // Required for programs that have not passed the verifier.
  bool checked = true;
  uint64_t insn_budget = 100'000'000;  // checked mode only
  TraceSink trace;                     // implies checked mode
  HelperEnv* helper_env = nullptr;     // the maps and programs helpers reach
  std::FILE* trace_out = stderr;       // bpf_trace_printk output
  uint64_t random_seed = 0;            // bpf_get_prandom_u32; 0: seeded from the clock
  uint64_t attach_cookie = 0;          // bpf_get_attach_cookie
  uint64_t func_ip = 0;                // bpf_get_func_ip
};

struct RunInput {
  void* ctx = nullptr;    // r1
  uint64_t ctx_size = 0;  // r2, and the size of the checked region at r1
  bool ctx_writable = true;
  std::span<const uint8_t> packet;  // what ld_abs/ld_ind read (socket-filter semantics)
  // Convenience: r1 = mem, r2 = its length, packet = mem.
  static RunInput memory(std::span<uint8_t> mem) {
    RunInput in;
    in.ctx = mem.empty() ? nullptr : mem.data();
    in.ctx_size = mem.size();
    in.packet = mem;
    return in;
  }
};

// The interpreter's execution form of one instruction slot: 16 bytes instead
// of Inst's 24, so that large programs stream through the cache at two thirds
// of the cost. ld_imm64 keeps its high half in the second slot's imm.
struct ExecInsn {
  uint16_t op;  // Op, or a superinstruction of the fast mode
  uint8_t dst;
  uint8_t src;
  int16_t off;
  uint16_t pad = 0;
  int32_t imm;
  uint32_t target;  // jumps and local calls: absolute slot index
};
static_assert(sizeof(ExecInsn) == 16);

class Interpreter {
 public:
  // Fails if the program calls a helper the table lacks or a kfunc.
  static Result<Interpreter> create(const Program& prog, const HelperTable& helpers);

  // Returns r0, or an error naming the instruction that faulted (checked
  // mode), ran out of budget, or exceeded the call depth.
  Result<uint64_t> run(const RunInput& in, const RunOptions& opts = {}) const;

  const Program& program() const { return *prog_; }

  // Runs the function at instruction `target` with r1-r5 on behalf of a
  // helper (callbacks): the caller's memory stays accessible, the frames in
  // use count against the limit of 8.
  Result<uint64_t> call_function(HelperCall& parent, size_t target, const uint64_t args[5]) const;

  // For other engines (the JIT): the helper instruction `insn` calls (null
  // if none), the helpers by id (callx), and continuing the run of `parent`
  // in this program after a tail call with r1 = ctx.
  HelperFn helper_at(size_t insn) const { return helper_fns_[insn]; }
  std::span<const HelperFn> helpers_by_id() const { return helper_by_id_; }
  Result<uint64_t> run_tail_call(HelperCall& parent, uint64_t ctx) const;

 private:
  struct Entry;
  Interpreter(const Program& prog, std::vector<HelperFn> fns);
  Result<uint64_t> run_entry(const RunInput& in, const RunOptions& opts, const Entry& entry) const;
  template <bool Checked, bool Traced>
  Result<uint64_t> exec(const RunInput& in, const RunOptions& opts, const Entry& entry) const;

  const Program* prog_;
  std::vector<ExecInsn> code_;          // prog_->insts in execution form
  std::vector<ExecInsn> fast_code_;     // the same with superinstructions (fast mode)
  std::vector<HelperFn> helper_fns_;    // per instruction index; null where not a helper call
  std::vector<HelperFn> helper_by_id_;  // for callx, which names a helper at run time
};

// Value that ld_imm64 with BPF_PSEUDO_FUNC loads, and that callx recognizes
// as a bpf-to-bpf call target (a real address in the kernel).
constexpr uint64_t kFuncAddrTag = 0xEB0F000000000000ull;
constexpr uint64_t kFuncAddrMask = 0xFFFF000000000000ull;

}  // namespace ember
