// The static pass before the abstract interpretation, as the kernel's
// check_subprogs and check_cfg: functions and their boundaries, jumps that
// stay inside their function, every instruction reachable; plus what the
// walk needs: pruning points and register liveness.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/verifier.hpp"
#include "verifier/state.hpp"

namespace ember::verifier {

struct Cfg {
  std::vector<uint32_t> subprogs;    // first instruction of each function, sorted; [0] = 0
  std::vector<uint32_t> subprog_of;  // per instruction: index into subprogs
  std::vector<bool> prune_point;     // where states are stored and compared
  std::vector<bool> loop_head;       // targets of backward jumps
  std::vector<LiveSet> live;         // registers live before each instruction
  // Registers whose value (not just kind) may still matter to safety: it
  // may flow into an address, a helper argument, a branch, a stored value
  // or a checked return value. Other live scalars match any value when
  // states are compared (what the kernel's precision tracking achieves).
  std::vector<LiveSet> precise;
  // Natural loops: per loop head, the instructions of its body.
  std::vector<std::pair<uint32_t, std::vector<bool>>> loop_bodies;
  const std::vector<bool>* loop_body(uint32_t head) const {
    for (const auto& [h, body] : loop_bodies)
      if (h == head) return &body;
    return nullptr;
  }
  // Per loop head: the constants its body's conditional jumps compare
  // against, where widening at the head stops first.
  std::vector<std::pair<uint32_t, Thresholds>> loop_thresholds;
  const Thresholds* thresholds(uint32_t head) const {
    for (const auto& [h, t] : loop_thresholds)
      if (h == head) return &t;
    return nullptr;
  }
};

struct CfgError {
  VerifyReason reason;
  size_t insn;
  std::string message;
};

// The instruction after `i` in straight-line order (ld_imm64 takes two).
inline uint32_t next_insn(const Program& p, uint32_t i) {
  return i + (p.insts[i].op == Op::LDDW && !p.insts[i].second_half ? 2 : 1);
}

// `return_matters`: the main function's return value is range-checked.
std::optional<CfgError> build_cfg(const Program& prog, const HelperTable& helpers, bool return_matters,
                                  Cfg& out);

}  // namespace ember::verifier
