// The abstract interpreter: walks every path of the program from its entry
// with a State, one instruction at a time (the kernel's do_check), storing
// states at pruning points so that a path whose state a fully explored one
// includes stops early (is_state_visited). The instruction semantics live
// in alu.cpp, memory.cpp, jumps.cpp and calls.cpp; the walk in analyzer.cpp.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/verifier.hpp"
#include "verifier/cfg.hpp"
#include "verifier/prog_type_rules.hpp"
#include "verifier/state.hpp"

namespace ember::verifier {

// Why the current path is unsafe.
struct Fail {
  VerifyReason reason;
  std::string message;
  int reg = -1;  // the register at fault, for the explanation
};
using Step = std::optional<Fail>;  // nullopt: the instruction is safe

inline Fail fail_with(VerifyReason r, std::string msg, int reg = -1) { return Fail{r, std::move(msg), reg}; }

// A state stored at a pruning point; `branches` counts the paths below it
// still being explored (the kernel's bpf_verifier_state.branches).
struct Checkpoint {
  State st;
  uint32_t branches = 1;
  Checkpoint* parent = nullptr;
  uint32_t hits = 0, misses = 0;  // to drop states that never prune (as the kernel does)
  uint64_t hash = 0;              // state_hash, to find equal states fast
};

enum class Access : uint8_t { Read, Write, Atomic };

// What a widened loop iteration knows of the values it started from: per
// slot (r0-r9, then the 64 stack slots), bounds of the values at the head,
// and which slot proves termination once one is found.
constexpr int kLoopSlots = 10 + kStackSize / 8;
struct EpochInfo {
  std::array<uint64_t, kLoopSlots> entry_umax{}, entry_umin{};
  int slot = -1;
};

class Analyzer {
 public:
  Analyzer(const Program& prog, const VerifyInput& in, const HelperTable& helpers, const Cfg& cfg);
  VerifyResult run();

  // For the instruction handlers.
  const Program& prog() const { return prog_; }
  const VerifyInput& input() const { return in_; }
  const ProgTypeRules& rules() const { return rules_; }
  uint32_t new_id() { return ++last_id_; }
  void fork(const State& s);  // explore `s` later (the other side of a branch)
  VerifyStats& stats() { return stats_; }

  Step step(State& s, bool& path_done);
  Step straight(State& s, const Inst& in);
  Step alu(State& s, const Inst& in);
  Step load_imm64(State& s, const Inst& in);
  Step load(State& s, const Inst& in);
  Step store(State& s, const Inst& in);
  Step atomic(State& s, const Inst& in);
  Step legacy_packet_load(State& s, const Inst& in);
  Step jump(State& s, const Inst& in, bool& path_done);
  Step call_helper(State& s, const Inst& in, bool& path_done);
  Step call_local(State& s, const Inst& in);
  Step exit(State& s, bool& path_done);

  // The memory check shared by loads, stores, atomics and helper arguments:
  // `size` bytes at ptr + off. For stores `value` is what is written (null:
  // unknown bytes); for loads it receives the value read.
  Step access(State& s, int regno, int32_t off, int size, Access kind, const Reg* value, Reg* loaded);
  // `size` (from a register, umax) bytes at the pointer in `regno`, for
  // helpers: readable and initialized (or writable, then marked written).
  Step helper_memory(State& s, int regno, const Scalar& size, bool write, bool zero_ok, const char* what,
                     bool pointers_ok = false);
  // Bytes [lo, hi) relative to the pointer in `regno` (its fixed and
  // variable offset added): inside the object it points to, and for reads
  // of the stack, initialized. Writes to the stack mark the bytes written.
  Step region(State& s, int regno, int64_t lo, int64_t hi, Access kind, const char* what);
  Step no_spilled_pointers(const State& s, int regno, int64_t lo, int64_t hi) const;
  std::string where(size_t insn) const;  // " (file.c:12: text)" or ""
  std::string map_desc(uint32_t map) const;

 private:
  bool prune(State& s, Step& err);
  bool widen_into(const State& old, State& cur, const Thresholds* t);  // merge_state(Widen) with fresh ids
  static uint32_t fresh_id(void* self);
  // Loops (see LoopRun): at a loop head, after a few iterations walked one
  // by one, the state is widened into an invariant and one more iteration
  // is walked with it; coming back, a counter must have moved towards a
  // bound on every path (termination) and the invariant must include the
  // state (safety of every iteration), else the state is widened further.
  enum class HeadResult { Normal, Handled, Pruned };
  HeadResult at_loop_head(State& s, Step& err);
  void start_epoch(State& s, LoopRun& run, const State& pre, const struct EpochInfo* prev);
  Step check_progress(const State& s, const LoopRun& run);
  void leave_loops(State& s);
  void path_finished(Checkpoint* cp);
  State entry_state() const;
  VerifyResult finish(const State* failing, size_t insn, const Fail* f);
  Step check_stack_depth() const;
  // Out of instructions, or of pending branches; `reg` holds the instruction to blame.
  Fail budget_exhausted(bool branches) const;

  const Program& prog_;
  const VerifyInput& in_;
  const HelperTable& helpers_;
  const Cfg& cfg_;
  const ProgTypeRules& rules_;
  std::vector<State> pending_;
  std::vector<std::vector<std::unique_ptr<Checkpoint>>> visited_;  // per instruction
  std::vector<InsnFacts> facts_;  // what every visit had in common, for the JIT
  void note_facts(const State& s);
  std::vector<uint32_t> visits_;                                   // per instruction, for the budget message
  std::vector<int32_t> subprog_depth_;                             // deepest stack use per function
  uint32_t last_id_ = 0;
  VerifyStats stats_;
  std::string log_;
  uint64_t live_states_ = 0;
  uint64_t insns_at_checkpoint_ = 0;
  std::vector<std::unique_ptr<Checkpoint>> loop_invariants_;
  // Widening is a shortcut: when a path inside a widened loop fails, the
  // loop is walked again from where widening started, one iteration at a
  // time, as the kernel does.
  struct WidenAttempt {
    State pre;
    size_t pending;  // pending_ size when it started: later entries descend from it
    bool live = true;
  };
  std::vector<WidenAttempt> attempts_;
  // Per loop head, the invariants widening stored there and the attempt
  // each belongs to: once fully explored (branches 0) and not fallen back,
  // they prune later arrivals like any stored state.
  std::map<uint32_t, std::vector<std::pair<const Checkpoint*, uint32_t>>> invariants_at_;
  bool proven_by_invariant(const State& s) const;
  // Path explosion inside loops (a parser whose every iteration forks a few
  // ways): at a hot loop head, a path's state is joined with a state that
  // another path (not an ancestor: not the previous iteration) brought
  // there with the same constants, and the join is explored once in place
  // of both. If the program is then rejected, verify() runs again without
  // joins, so joining never costs a program the kernel's precision.
  HeadResult join_at_head(State& s);
  std::map<uint32_t, std::vector<Checkpoint*>> joined_at_;
  bool joins_ = true;
  bool joined_ = false;

 public:
  void disable_joins() { joins_ = false; }
  bool joined() const { return joined_; }

 private:
  bool fall_back(State& s);
  std::map<uint32_t, EpochInfo> epochs_;

 public:
  // Stack depth bookkeeping (memory.cpp) and the helper table (calls.cpp).
  void note_depth(const State& s, int frame, int32_t depth);
  const HelperTable& helpers() const { return helpers_; }
  const Cfg& cfg() const { return cfg_; }
};

// A helper call that takes a callback (bpf_loop ...): the walk comes back
// to it after each run of the callback, so it is a loop head whose
// iterations the helper bounds.
bool is_callback_call(const Program& p, const HelperTable& helpers, uint32_t pc);

// Marks every register (in all frames) and spilled register with pointer id
// `id` by `fn` (NULL checks, packet ranges, scalar copies).
template <class Fn>
void for_each_reg(State& s, Fn&& fn) {
  for (Frame& f : s.frames) {
    for (Reg& r : f.regs) fn(r);
    for (int i = 0; i < static_cast<int>(f.spilled.size()); ++i)
      if (f.slot[i * 8] == Slot::Spill) fn(f.spilled[i]);
  }
}

}  // namespace ember::verifier
