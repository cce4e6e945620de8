// The verifier's abstract state of one path: registers, the stack of each
// call frame byte by byte, acquired references and the lock held. Modelled
// on the kernel's bpf_verifier_state / bpf_func_state / bpf_reg_state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "verifier/scalar.hpp"

namespace ember::verifier {

// What a register holds (the kernel's enum bpf_reg_type, for the types
// Ember's helpers and program types produce).
enum class Kind : uint8_t {
  NotInit,
  Scalar,
  Ctx,         // the context (r1 at entry)
  Stack,       // a frame's stack; `frame` says which
  MapPtr,      // a map (ld_imm64 map[idx]); CONST_PTR_TO_MAP
  MapValue,    // an element of a map, or global data
  Packet,      // packet data; `range` bytes proven readable
  PacketEnd,   // data_end
  PacketMeta,  // data_meta; `range` bytes proven readable up to data
  Mem,         // memory a helper returned (ring buffer record): `size` bytes
  Func,        // a subprogram (ld_imm64 of a function): callbacks
};
const char* kind_name(Kind k);
bool is_pointer(Kind k);

struct Reg {
  Kind kind = Kind::NotInit;
  bool maybe_null = false;  // MapValue, Mem, MapPtr (inner map): may be NULL
  bool inner_map = false;   // MapPtr: an inner map of maps[map]
  bool rdonly = false;      // Mem: read-only (a map key handed to a callback)
  uint8_t frame = 0;        // Stack: the frame it points into
  uint32_t id = 0;          // pointers: shared by copies (NULL checks, packet ranges); scalars: equal copies
  uint32_t ref = 0;         // an acquired reference (ring buffer record) it holds, 0 if none
  uint32_t map = 0;         // MapPtr, MapValue: map index
  uint32_t size = 0;        // Mem: bytes
  uint32_t target = 0;      // Func: first instruction
  int32_t off = 0;          // pointers: fixed offset
  int32_t range = 0;        // Packet, PacketMeta: proven accessible bytes from the packet start + off 0
  uint32_t origin = 0;      // instruction that produced it (+1; 0: entry), for messages
  Scalar val;               // Scalar: its value; pointers: variable offset
  // Inside a widened loop iteration (see LoopRun): this value is the value
  // slot `dslot` held at the loop head plus some d in [dmin, dmax]; epoch 0:
  // no such relation. How termination is proven.
  uint32_t epoch = 0;
  uint8_t dslot = 0;
  int64_t dmin = 0, dmax = 0;

  static Reg scalar(const Scalar& s) {
    Reg r;
    r.kind = Kind::Scalar;
    r.val = s;
    return r;
  }
  static Reg pointer(Kind k) {
    Reg r;
    r.kind = k;
    r.val = Scalar::constant(0);
    return r;
  }
  bool is_const_zero() const { return kind == Kind::Scalar && val.is_const() && val.const_value() == 0; }
};

// Per byte of a frame's stack (the kernel's STACK_INVALID / MISC / ZERO /
// SPILL slot types).
enum class Slot : uint8_t { Invalid, Misc, Zero, Spill };

struct Frame {
  std::array<Reg, kNumRegs> regs;
  std::array<Slot, kStackSize> slot{};  // index = 512 + offset from r10
  // Spilled registers, one per aligned 8-byte slot (valid where all of its
  // bytes are Slot::Spill); empty until the first spill, to keep stored
  // states small.
  std::vector<Reg> spilled;
  uint32_t callsite = 0;  // the call instruction (frames above 0)
  uint32_t subprog = 0;   // first instruction of the function
  bool callback = false;  // entered by a helper (bpf_loop ...), not a call
  uint32_t entry = 0;     // callbacks: which run of the callback (loop detection)
  int32_t depth = 0;      // deepest stack byte used, as a positive count

  const Reg& spill(int slot8) const;
  Reg& spill_mut(int slot8) {
    if (spilled.empty()) spilled.resize(kStackSize / 8);
    return spilled[slot8];
  }
};

struct Checkpoint;

// A branch decision on the path, for the explanation of a rejection.
struct PathStep {
  uint32_t insn;
  uint32_t next;
  mutable std::shared_ptr<const PathStep> prev;
  PathStep(uint32_t i, uint32_t n, std::shared_ptr<const PathStep> p)
      : insn(i), next(n), prev(std::move(p)) {}
  // Paths are long: release the chain in a loop, not by recursion (which
  // overflowed the stack under ASan).
  ~PathStep() {
    std::shared_ptr<const PathStep> p = std::move(prev);
    while (p && p.use_count() == 1) {
      std::shared_ptr<const PathStep> up = std::move(p->prev);
      p = std::move(up);
    }
  }
  PathStep(const PathStep&) = delete;
  PathStep& operator=(const PathStep&) = delete;
};

// A loop being verified with a widened state at its head (analyzer.cpp).
struct LoopRun {
  uint32_t head;
  uint32_t epoch;
  Checkpoint* inv;   // the widened state at the head: the loop invariant
  uint32_t frames;   // the frame depth of the loop
  uint32_t attempt;  // Analyzer::attempts_ index: where to go back if it fails
};

struct State {
  std::vector<Frame> frames;
  std::vector<uint32_t> refs;       // acquired references not yet released
  std::vector<uint32_t> ref_sites;  // the instruction that acquired each
  uint32_t lock_map = 0;            // map index +1 of the lock held, 0: none
  int32_t lock_off = 0;
  uint32_t lock_id = 0;
  uint32_t pc = 0;
  std::shared_ptr<const PathStep> path;
  Checkpoint* parent = nullptr;  // the last stored state on this path
  // Callback helpers: set when a callback returns to its helper call; the
  // runs of one call share cb_seq (widening compares only among them).
  bool cb_again = false;
  uint32_t cb_seq = 0;
  std::vector<LoopRun> loops;  // widened loops the path is in
  // Loops walked one iteration at a time since the path entered them: the
  // arrivals at the head and the state at the last one (widening starts
  // from it). Forgotten when the path leaves the loop.
  struct HeadVisits {
    uint32_t head, frames, count;
    std::shared_ptr<const State> last;
  };
  std::vector<HeadVisits> head_visits;
  std::vector<uint32_t> no_widen;  // loop heads walked one iteration at a time (widening failed)

  Frame& cur() { return frames.back(); }
  const Frame& cur() const { return frames.back(); }
  Reg& reg(int r) { return frames.back().regs[r]; }
  const Reg& reg(int r) const { return frames.back().regs[r]; }
};

// Register liveness per instruction (bit r set: r may be read before it is
// written on some path from there); from cfg.cpp.
using LiveSet = uint16_t;

// Does `old` (a fully verified state) include `cur`, so that `cur` needs no
// further exploration? Registers not live (by frame) are ignored.
// `exact` asks for equality instead (infinite-loop detection).
// `precise`: registers whose scalar values matter (others match any value).
bool state_includes(const State& old, const State& cur, const std::vector<LiveSet>& live,
                    const std::vector<LiveSet>& precise, bool exact);

// A state that includes both `old` and `cur`, written into `cur`.
// Widen: repeated, it stops growing (scalar bounds that moved go to the
// next threshold or their limits). Join: the least such state the domain
// has (bounds are unions; packet and map value pointers at different fixed
// offsets meet at the smaller one, the difference moved into the variable
// part). Both: mismatched registers become unusable, stack bytes that
// differ become unknown or uninitialized; references are cur's, and an id
// links values only where it linked the same values in both (else scalars
// lose it and pointers get a fresh one from `fresh_id`). False if the two
// cannot be merged (different frames, references or locks).
enum class Merge : uint8_t { Widen, Join };
bool merge_state(const State& old, State& cur, Merge how, const Thresholds* t, uint32_t (*fresh_id)(void*),
                 void* id_ctx);

// A hash that states equal under state_includes(..., exact=true) share
// (ids left out: equality maps them one to one).
uint64_t state_hash(const State& s, const std::vector<LiveSet>& live, const std::vector<LiveSet>& precise);

// "R1=map_value(map=0,off=0,vs=8) R10=fp0 fp-8=mmmmmmmm" as the kernel logs.
std::string reg_str(const Reg& r);
std::string state_str(const State& s);

}  // namespace ember::verifier
