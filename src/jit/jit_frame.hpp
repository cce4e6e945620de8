// What JIT code reaches through r12 while it runs: the HelperCall that
// helpers receive (r12 is passed to them as is), followed by the state of
// the current (possibly nested) run. A callback or a tail call into JIT
// code is a nested run on the same frame: it saves the state, runs, and
// restores it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "ember/helpers.hpp"
#include "ember/result.hpp"

namespace ember::jit {

// Why JIT code left through the error exit.
enum ErrKind : uint32_t {
  kErrNone = 0,
  kErrTooDeep = 1,   // a ninth call frame (err_insn)
  kErrCallx = 2,     // callx to something that is neither a function nor a helper (err_insn, err_value)
  kErrNested = 3,    // a tail-called run failed (JitFrame::nested_error)
  kErrDeadInsn = 4,  // reached an instruction the hints said was dead (err_insn)
};

// Not zeroed on construction: enter() sets every field before JIT code runs
// (the trampoline writes saved_rsp), so the outermost run of a program pays
// for no clearing it does not need.
struct JitState {
  uint64_t saved_rsp;          // rsp before the trampoline called the code: the error exit's
  const uint64_t* code_table;  // per instruction: its code address, 0 if not compiled
  uint64_t n_insns;
  const HelperFn* helpers;  // by helper id, for callx
  uint64_t n_helpers;
  const uint8_t* packet;  // ld_abs/ld_ind
  uint64_t packet_len;
  uint64_t args[5];   // r1-r5 at entry
  uint64_t fp;        // r10 at entry
  uint64_t tail_ctx;  // r1 at the last bpf_tail_call
  uint32_t err_kind;
  uint32_t err_insn;
  uint64_t err_value;
};

struct JitFrame : HelperCall {
  JitState st;
  std::optional<Error> nested_error;
};

// Offsets from the HelperCall (r12) of the fields JIT code uses.
struct FrameOffsets {
  int32_t depth, tail_target;
  int32_t saved_rsp, code_table, n_insns, helpers, n_helpers, packet, packet_len, args, fp, tail_ctx;
  int32_t err_kind, err_insn, err_value;
  static FrameOffsets compute();
};

inline FrameOffsets FrameOffsets::compute() {
  JitFrame f;
  const char* base = reinterpret_cast<const char*>(static_cast<const HelperCall*>(&f));
  auto at = [&](const void* p) { return static_cast<int32_t>(static_cast<const char*>(p) - base); };
  return {at(&f.depth),         at(&f.tail_target), at(&f.st.saved_rsp), at(&f.st.code_table),
          at(&f.st.n_insns),    at(&f.st.helpers),  at(&f.st.n_helpers), at(&f.st.packet),
          at(&f.st.packet_len), at(&f.st.args[0]),  at(&f.st.fp),        at(&f.st.tail_ctx),
          at(&f.st.err_kind),   at(&f.st.err_insn), at(&f.st.err_value)};
}

}  // namespace ember::jit
