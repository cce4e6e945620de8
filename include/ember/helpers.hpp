// The helper table: every helper a program may call, with its id, its
// libbpf name, the prototype the verifier checks calls against, and its
// implementation. Defined once (src/helpers/); runtimes pick from it.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember {

class CgroupView;
class MemoryGuard;
class Map;
class Interpreter;
class JitProgram;
struct HelperCall;
struct RunInput;
struct RunOptions;

// What helpers need from whoever owns the maps and programs a run uses
// (the runtime). Optional: without one, map helpers fail cleanly.
class HelperEnv {
 public:
  virtual ~HelperEnv() = default;
  // The map behind a pointer a program loaded with ld_imm64, or null if it
  // names none. Checked mode asks; verified code is trusted.
  virtual Map* map_at(uint64_t ptr) const = 0;
  // Checked mode, at the start of a run: memory the program may touch
  // without a helper handing it out (global data).
  virtual void grant_static(MemoryGuard& guard) const = 0;
  // The program a prog-array slot holds (bpf_tail_call), or null.
  virtual const Interpreter* program_by_id(uint32_t id) const = 0;
  // Where bpf_trace_printk and bpf_trace_vprintk lines go (a ring buffer
  // `ember tracelog` streams, like tracefs's trace_pipe); null: trace_out.
  virtual Map* trace_pipe() const { return nullptr; }
  // The JIT code of a program that program_by_id() returned, if it was
  // compiled: a tail call from JIT code continues there (else in the
  // interpreter's fast mode).
  virtual const JitProgram* jit_program(const Interpreter& prog) const {
    (void)prog;
    return nullptr;
  }
  // Where this process sits in the cgroup v2 hierarchy, kept between calls
  // (bpf_current_task_under_cgroup); null: the helper looks each time.
  virtual CgroupView* cgroup_view() const { return nullptr; }
};

// An engine other than the interpreter (the JIT) that runs program
// functions for callbacks: HelperCall::invoke goes through it when set.
class FunctionRunner {
 public:
  virtual Result<uint64_t> call_function(HelperCall& parent, size_t target, const uint64_t args[5]) const = 0;

 protected:
  ~FunctionRunner() = default;
};

// Argument and return kinds, named after the kernel's bpf_arg_type and
// bpf_return_type (include/linux/bpf.h); the verifier consumes them.
enum class ArgType : uint8_t {
  None,            // argument not used
  Anything,        // any initialized value
  PtrToMem,        // readable memory; size in the next ConstSize argument
  PtrToUninitMem,  // writable memory the helper fills; size follows
  ConstSize,
  ConstSizeOrZero,
  PtrToCtx,
  ConstMapPtr,
  PtrToMapKey,
  PtrToMapValue,
  PtrToUninitMapValue,  // the helper writes a whole value there (map_pop/peek)
  PtrToConstStr,
  PtrToFunc,
  PtrToStackOrNull,      // callback context
  PtrToSpinLock,         // a struct bpf_spin_lock inside a map value
  PtrToAllocMem,         // memory a helper handed out (ARG_PTR_TO_ALLOC_MEM: bpf_ringbuf_reserve's)
  ConstAllocSizeOrZero,  // the size of memory the helper allocates (ARG_CONST_ALLOC_SIZE_OR_ZERO)
};

enum class RetType : uint8_t {
  Integer,
  Void,
  MapValueOrNull,
  MemOrNull,
  RingbufMemOrNull,  // RET_PTR_TO_RINGBUF_MEM_OR_NULL: bpf_ringbuf_reserve
};

struct HelperProto {
  RetType ret = RetType::Integer;
  std::array<ArgType, 5> args{};
};

// What a helper implementation sees of the run that called it.
struct HelperCall {
  // Set in checked mode: helpers must check every pointer they are handed
  // and may grant the program access to memory they return.
  MemoryGuard* guard = nullptr;
  // A helper that finds its arguments unusable in checked mode sets this;
  // the run stops with the message and the instruction index.
  std::string fault;
  // The runtime's maps and programs; null when the run has none.
  HelperEnv* env = nullptr;
  // Where bpf_trace_printk writes (the kernel's trace_pipe).
  std::FILE* trace_out = stderr;
  // State of bpf_get_prandom_u32 for this run (RunOptions::random_seed; 0:
  // seeded from the clock by the helper's first call).
  uint64_t prandom_state = 0x9E3779B97F4A7C15ull;

  // The run that called the helper: callbacks (bpf_loop,
  // bpf_for_each_map_elem) run program functions through it.
  const Interpreter* interp = nullptr;
  // Set while JIT code runs: callbacks run there instead of in `interp`.
  const FunctionRunner* runner = nullptr;
  const RunInput* input = nullptr;
  const RunOptions* options = nullptr;
  int depth = 0;  // call frames in use, callbacks included (at most 8)
  // Set by bpf_tail_call: the program to continue in once the helper returns.
  const Interpreter* tail_target = nullptr;
  int tail_calls = 0;  // taken so far in this run (the kernel allows 33)
  // What the attach point tells the program (bpf_get_attach_cookie,
  // bpf_get_func_ip); set by whoever runs it on an event.
  uint64_t attach_cookie = 0;
  uint64_t func_ip = 0;

  // Checked mode: may the program's pointer be used this way? Records a
  // fault naming `what` when not.
  bool check(uint64_t addr, uint64_t size, bool write, const char* what);
  // The map a helper argument names (checked against the runtime's maps in
  // checked mode); null after recording a fault.
  Map* map(uint64_t ptr, const char* what);
  // Calls the program function `fn` (a value loaded by ld_imm64 from a
  // function, as callbacks are passed) with r1-r5; its r0, or an error.
  Result<uint64_t> invoke(uint64_t fn, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
};

using HelperFn = uint64_t (*)(HelperCall& call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                              uint64_t r5);

struct HelperDef {
  int32_t id;
  const char* name;
  HelperProto proto;
  HelperFn fn;
};

// A set of helpers by id, drawn from the definitions in src/helpers/.
class HelperTable {
 public:
  HelperTable() = default;
  explicit HelperTable(std::span<const HelperDef> defs) { add(defs); }
  void add(std::span<const HelperDef> defs);
  void add(const HelperDef& def);  // replaces a helper with the same id
  const HelperDef* find(int64_t id) const {
    return id >= 0 && static_cast<size_t>(id) < by_id_.size() ? by_id_[id] : nullptr;
  }
  const HelperDef* find(std::string_view name) const;
  std::vector<const HelperDef*> all() const;

 private:
  std::vector<const HelperDef*> by_id_;
};

// The kernel's helpers that this runtime implements (ids from linux/bpf.h).
std::span<const HelperDef> linux_helpers();

// Emits one bpf_trace_printk line: to the environment's trace pipe with the
// kernel's trace_pipe prefix, or as it is to `trace_out`.
void emit_trace_line(HelperCall& call, const std::string& text);
// Map helpers, bpf_tail_call, bpf_for_each_map_elem, bpf_loop and
// bpf_current_task_under_cgroup (src/helpers/map_helpers.cpp).
std::span<const HelperDef> map_helpers();
// probe_read_user/_str, probe_read_kernel/_str, probe_write_user
// (src/helpers/probe_helpers.cpp).
std::span<const HelperDef> probe_helpers();
// snprintf, trace_vprintk, strtol, strtoul, strncmp (src/helpers/string_helpers.cpp).
std::span<const HelperDef> string_helpers();
// bpf_get_stackid, bpf_get_stack (src/helpers/stack_helpers.cpp).
std::span<const HelperDef> stack_helpers();
// Ring buffer and perf event output (src/helpers/event_helpers.cpp).
std::span<const HelperDef> event_helpers();
// The bpf_conformance suite's table: helper 5 returns its first argument
// (the "unwind" helper of uBPF that call_unwind_fail expects).
HelperTable conformance_helper_table();
HelperTable default_helper_table();

}  // namespace ember
