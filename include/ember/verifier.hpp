// The verifier: proves a program safe before it runs, with the kernel's
// notion of safety for its program type (kernel/bpf/verifier.c is the
// reference). It walks the control-flow graph with an abstract state per
// path (register types, scalar ranges and tnums, the stack byte by byte,
// acquired references and locks), prunes paths whose state an already
// verified one includes, and explains a rejection with the instruction, its
// C source line, the state that made it unsafe and the path that led there.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/maps.hpp"
#include "ember/prog_types.hpp"

namespace ember {

// Why a program was rejected. The names (reason_name) are what test
// fixtures and `ember verify -j` use.
#define EMBER_VERIFY_REASONS(X)                                                        \
  X(InvalidInsn, "invalid-insn")            /* undecodable, bad jump, falls off end */ \
  X(Unreachable, "unreachable")             /* an instruction no path reaches */       \
  X(UninitReg, "uninit-reg")                /* a register read before it is set */     \
  X(UninitStack, "uninit-stack")            /* stack bytes read before written */      \
  X(StackOutOfBounds, "stack-oob")          /* outside the frame's 512 bytes */        \
  X(MapValueOutOfBounds, "map-value-oob")   /* outside the map value */                \
  X(MemOutOfBounds, "mem-oob")              /* outside helper-returned memory */       \
  X(CtxAccess, "ctx-access")                /* no such context field, wrong size */    \
  X(PacketOutOfBounds, "packet-oob")        /* beyond what data_end checks proved */   \
  X(NullDeref, "null-deref")                /* a pointer that may be NULL used */      \
  X(ScalarDeref, "scalar-deref")            /* memory access through a number */       \
  X(PointerArith, "pointer-arith")          /* arithmetic not allowed on a pointer */  \
  X(PointerCompare, "pointer-compare")      /* comparison not allowed on a pointer */  \
  X(PointerLeak, "pointer-leak")            /* a pointer stored or returned */         \
  X(ReadOnlyWrite, "readonly-write")        /* .rodata, read-only memory, r10 */       \
  X(Misaligned, "misaligned")               /* unaligned access where not allowed */   \
  X(UnknownHelper, "unknown-helper")        /* no such helper (or kfunc) */            \
  X(HelperNotAllowed, "helper-not-allowed") /* not for this program type */            \
  X(HelperArg, "helper-arg")                /* wrong kind of argument */               \
  X(HelperSize, "helper-size")              /* size argument unbounded or too big */   \
  X(UnreleasedRef, "unreleased-ref")        /* ring buffer record not submitted */     \
  X(LockHeld, "lock-held")                  /* spin lock held at exit or a call */     \
  X(LockMisuse, "lock-misuse")              /* unlock without lock, two locks */       \
  X(UnboundedLoop, "unbounded-loop")        /* no proof that a loop ends */            \
  X(CallDepth, "call-depth")                /* more than 8 frames */                   \
  X(StackTooLarge, "stack-size")            /* frames together above 512 bytes */      \
  X(BadReturn, "bad-return")                /* r0 unset, a pointer, out of range */    \
  X(BadCallback, "bad-callback")            /* callback not a function, bad result */  \
  X(TailCall, "tail-call")                  /* tail call misuse */                     \
  X(Unsupported, "unsupported")             /* kfuncs, features not supported */       \
  X(Complexity, "complexity")               /* the analysis budget ran out */

enum class VerifyReason : uint8_t {
#define EMBER_X(e, n) e,
  EMBER_VERIFY_REASONS(EMBER_X)
#undef EMBER_X
};
std::string_view reason_name(VerifyReason r);
bool reason_from_name(std::string_view name, VerifyReason* out);

// What the verifier needs to know besides the code.
struct VerifyInput {
  ProgType type = ProgType::Syscall;
  AttachType attach = AttachType::None;
  bool sleepable = false;
  bool gpl = true;  // license: GPL-only helpers are refused otherwise
  // The maps the program names by index (map[idx:N] / map_value[idx:N]).
  std::vector<MapSpec> maps;
  // Read-only global data (.rodata, .kconfig) by map index: its bytes, so
  // that loads from it give known constants (as the kernel does for frozen
  // read-only maps).
  std::vector<std::vector<uint8_t>> rodata;
  // Whether those bytes can no longer change (the kernel freezes .rodata at
  // load). Only then do loads from them give constants; otherwise the bytes
  // serve constant-string arguments alone.
  bool rodata_frozen = false;
  const HelperTable* helpers = nullptr;  // null: default_helper_table()
  // >= 0: the program runs on a plain memory buffer, as bpf_conformance and
  // `ember run` of raw bytecode do: r1 points to mem_size bytes and r2 holds
  // mem_size, instead of the program type's context.
  int64_t mem_size = -1;
  // Where messages take their C source line from: "file.c:41: text" for an
  // instruction index, or "" (the loader supplies it from BTF line info).
  std::function<std::string(size_t insn)> source_line;
  // Instructions processed before giving up (the kernel's 1M).
  uint64_t insn_budget = 1'000'000;
  int log_level = 0;  // 1: the path and the failing state; 2: state at every instruction
};

struct VerifyStats {
  uint64_t insns_processed = 0;
  uint64_t states = 0;           // states stored at pruning points
  uint64_t peak_states = 0;      // stored states alive at once
  uint64_t pruned = 0;           // paths cut because a stored state included them
  uint64_t widen_fallbacks = 0;  // widened loops walked again one iteration at a time
  uint64_t time_ns = 0;
  uint64_t peak_memory = 0;     // bytes of abstract states at the peak
  uint32_t stack_depth = 0;     // deepest stack use of the main frame
  uint32_t max_ctx_offset = 0;  // highest context byte accessed, +1
};

// What the walk proved of one instruction slot, for the JIT (JitHint):
// valid for runs that match the verifier's model of the input.
struct InsnFacts {
  bool reached = false;               // some path executes it (else dead)
  bool divisor_nonzero = true;        // div/mod by a register: never 0 here
  bool divisor_not_minus_one = true;  // signed div/mod by a register: never -1 here
};

struct VerifyResult {
  bool ok = false;
  VerifyReason reason = VerifyReason::InvalidInsn;  // when !ok
  size_t insn = 0;                                  // the failing instruction
  std::string message;                              // one paragraph: what, where (insn and source), why
  std::string state;                                // registers and stack at the failure, kernel-like
  std::vector<size_t> path;                         // instructions where branches were decided
  std::vector<InsnFacts> facts;                     // one per instruction slot, when ok
  std::string log;                                  // the verbose log (log_level >= 1)
  VerifyStats stats;
};

// Verifies a decoded program. Never crashes or hangs on any input: a
// rejection is a result, as is running out of budget.
VerifyResult verify(const Program& prog, const VerifyInput& in);
// The same from instruction slots: what the decoder refuses is a rejection
// too (invalid-insn; a write to r10 is readonly-write, as the kernel says).
VerifyResult verify(std::span<const RawInsn> insns, const VerifyInput& in);

}  // namespace ember
