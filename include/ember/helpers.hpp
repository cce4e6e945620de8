// The helper table: every helper a program may call, with its id, its
// libbpf name, the prototype the verifier checks calls against, and its
// implementation. Defined once (src/helpers/); runtimes pick from it.
#pragma once

#include <array>
#include <cstdio>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember {

class MemoryGuard;

// Argument and return kinds, named after the kernel's bpf_arg_type and
// bpf_return_type (include/linux/bpf.h); the verifier consumes them.
enum class ArgType : uint8_t {
  None,         // argument not used
  Anything,     // any initialized value
  PtrToMem,     // readable memory; size in the next ConstSize argument
  PtrToUninitMem,  // writable memory the helper fills; size follows
  ConstSize,
  ConstSizeOrZero,
  PtrToCtx,
  ConstMapPtr,
  PtrToMapKey,
  PtrToMapValue,
  PtrToConstStr,
  PtrToFunc,
};

enum class RetType : uint8_t { Integer, Void, MapValueOrNull, MemOrNull };

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
  // Embedder state (maps, output sinks); opaque to the VM.
  void* env = nullptr;
  // Where bpf_trace_printk writes (the kernel's trace_pipe).
  std::FILE* trace_out = stderr;
  // State of bpf_get_prandom_u32 for this run (seeded by the runner).
  uint64_t prandom_state = 0x9E3779B97F4A7C15ull;

  // Checked mode: may the program's pointer be used this way? Records a
  // fault naming `what` when not.
  bool check(uint64_t addr, uint64_t size, bool write, const char* what);
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
// The bpf_conformance suite's table: helper 5 returns its first argument
// (the "unwind" helper of uBPF that call_unwind_fail expects).
HelperTable conformance_helper_table();
HelperTable default_helper_table();

}  // namespace ember
