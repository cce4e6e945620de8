// The walk over all paths (the kernel's do_check and is_state_visited),
// the result and its explanation.
#include "verifier/analyzer.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

namespace ember::verifier {

Analyzer::Analyzer(const Program& prog, const VerifyInput& in, const HelperTable& helpers, const Cfg& cfg)
    : prog_(prog), in_(in), helpers_(helpers), cfg_(cfg), rules_(rules_for(in.type)) {
  visited_.resize(prog.insts.size());
  visits_.assign(prog.insts.size(), 0);
  facts_.assign(prog.insts.size(), InsnFacts{});
  subprog_depth_.assign(cfg.subprogs.size(), 0);
}

State Analyzer::entry_state() const {
  State s;
  s.frames.resize(1);
  if (in_.mem_size >= 0) {
    // r1 may be NULL when there is no memory at all.
    Reg mem = Reg::pointer(Kind::Mem);
    mem.size = static_cast<uint32_t>(in_.mem_size);
    s.frames[0].regs[1] = in_.mem_size ? mem : Reg::scalar(Scalar::constant(0));
    s.frames[0].regs[2] = Reg::scalar(Scalar::constant(static_cast<uint64_t>(in_.mem_size)));
  } else {
    s.frames[0].regs[1] = Reg::pointer(Kind::Ctx);
  }
  s.frames[0].regs[kFramePointer] = Reg::pointer(Kind::Stack);
  return s;
}

bool Analyzer::widen_into(const State& old, State& cur, const Thresholds* t) {
  return merge_state(old, cur, Merge::Widen, t, fresh_id, this);
}

uint32_t Analyzer::fresh_id(void* self) { return static_cast<Analyzer*>(self)->new_id(); }

void Analyzer::fork(const State& s) {
  if (s.parent) ++s.parent->branches;
  pending_.push_back(s);
}

void Analyzer::path_finished(Checkpoint* cp) {
  for (; cp; cp = cp->parent)
    if (--cp->branches > 0) break;
}

namespace {

constexpr size_t kMaxStatesPerInsn = 64;
// The kernel's BPF_COMPLEXITY_LIMIT_JMP_SEQ: a walk that leaves more
// branches than this to explore later is not going to finish.
constexpr size_t kMaxPendingBranches = 8192;

bool is_ancestor(const Checkpoint* cp, const Checkpoint* from) {
  for (; from; from = from->parent)
    if (from == cp) return true;
  return false;
}

}  // namespace

// is_state_visited: true when the path can stop here (a stored state
// includes it), or with `err` set when it provably loops forever.
bool Analyzer::prune(State& s, Step& err) {
  auto& list = visited_[s.pc];
  bool callback_site = is_callback_call(prog_, helpers_, s.pc);
  if (callback_site && !s.cb_again) s.cb_seq = new_id();  // a first arrival, not a callback's return
  uint64_t hash = state_hash(s, cfg_.live, cfg_.precise);
  bool looping = false;
  const Checkpoint* widen_from = nullptr;
  for (size_t i = 0; i < list.size(); ++i) {
    Checkpoint& cp = *list[i];
    if (cp.branches > 0) {
      // Still being explored: it proves nothing yet, except that the same
      // state again below itself is a loop that never ends...
      looping = true;
      if (cp.hash == hash && state_includes(cp.st, s, cfg_.live, cfg_.precise, /*exact=*/true)) {
        bool same_call = callback_site && s.cb_again && cp.st.cb_seq == s.cb_seq;
        if (is_ancestor(&cp, s.parent) && !same_call) {
          // Inside a widened loop, states repeat by design (the invariant is
          // walked again); termination is the progress check's job there,
          // and the budget catches the rest.
          if (!s.loops.empty()) continue;
          err = fail_with(VerifyReason::UnboundedLoop,
                          "infinite loop: the program comes back to instruction " + std::to_string(s.pc) +
                              " in exactly the state it had there before, so it can repeat forever");
          return true;
        }
        ++stats_.pruned;  // an identical path is under way, or the callback converged
        return true;
      }
      // ...and that a callback whose earlier calls include this state has
      // converged (the helper bounds how often it is called).
      if (callback_site && s.cb_again && cp.st.cb_seq == s.cb_seq && is_ancestor(&cp, s.parent)) {
        if (state_includes(cp.st, s, cfg_.live, cfg_.precise, /*exact=*/false)) {
          ++stats_.pruned;
          return true;
        }
        widen_from = &cp;  // not yet: go round with a state that includes both
      }
      continue;
    }
    if (state_includes(cp.st, s, cfg_.live, cfg_.precise, /*exact=*/false)) {
      ++cp.hits, ++stats_.pruned;
      return true;
    }
    // States that keep failing to prune cost time and memory: drop them.
    if (++cp.misses > cp.hits * 3 + 3) {
      list[i] = std::move(list.back());
      list.pop_back();
      --i, --live_states_;
    }
  }
  // Inside a loop, a state per iteration rarely helps: store one only now
  // and then (the kernel waits for 100 instructions or 20 jumps), and keep
  // the number per instruction bounded.
  if (widen_from) {
    // Callbacks run an unknown number of times: widen until the state at
    // the call stops changing (bounds that grow go to their limits).
    widen_into(widen_from->st, s, nullptr);
    hash = state_hash(s, cfg_.live, cfg_.precise);
  } else {
    if (looping && stats_.insns_processed - insns_at_checkpoint_ < 100) return false;
    if (list.size() >= kMaxStatesPerInsn) return false;
  }
  insns_at_checkpoint_ = stats_.insns_processed;
  auto cp = std::make_unique<Checkpoint>();
  cp->st = s;
  cp->hash = hash;
  cp->parent = s.parent;
  s.parent = cp.get();
  list.push_back(std::move(cp));
  ++stats_.states;
  stats_.peak_states = std::max(stats_.peak_states, ++live_states_);
  return false;
}

namespace {

constexpr uint32_t kUnrollBeforeWidening = 8;

const Reg* slot_reg(const Frame& f, int o) {
  if (o < 10) return &f.regs[o];
  int k = o - 10;
  return f.slot[k * 8] == Slot::Spill ? &f.spill(k) : nullptr;
}

}  // namespace

// The path failed inside a widened loop: drop everything explored from the
// widened state (its pending paths and stored states) and walk the loop
// from where widening started, without widening it again.
bool Analyzer::fall_back(State& s) {
  if (s.loops.empty()) return false;
  uint32_t a = s.loops.back().attempt;
  WidenAttempt& at = attempts_[a];
  if (!at.live) return false;
  at.live = false;
  pending_.resize(at.pending);
  auto from_attempt = [a](const State& st) {
    for (const LoopRun& r : st.loops)
      if (r.attempt == a) return true;
    return false;
  };
  for (auto& list : visited_)
    for (size_t i = 0; i < list.size(); ++i)
      if (from_attempt(list[i]->st)) {
        list[i] = std::move(list.back());
        list.pop_back();
        --i, --live_states_;
      }
  uint32_t head = at.pre.pc;
  s = at.pre;
  s.no_widen.push_back(head);
  ++stats_.widen_fallbacks;
  return true;
}

void Analyzer::leave_loops(State& s) {
  for (size_t i = 0; i < s.head_visits.size(); ++i) {
    const State::HeadVisits& v = s.head_visits[i];
    if (v.frames != s.frames.size()) continue;
    const std::vector<bool>* body = cfg_.loop_body(v.head);
    if (body && !(*body)[s.pc]) s.head_visits.erase(s.head_visits.begin() + static_cast<long>(i--));
  }
  while (!s.loops.empty()) {
    const LoopRun& run = s.loops.back();
    if (s.frames.size() != run.frames) return;  // in a function the loop calls
    const std::vector<bool>* body = cfg_.loop_body(run.head);
    if (body && (*body)[s.pc]) return;
    uint32_t epoch = run.epoch;
    s.loops.pop_back();
    for_each_reg(s, [epoch](Reg& r) {
      if (r.epoch == epoch) r.epoch = 0;
    });
  }
}

void Analyzer::start_epoch(State& s, LoopRun& run, const State& pre, const EpochInfo* prev) {
  run.epoch = new_id();
  EpochInfo& ep = epochs_[run.epoch];
  const Frame& pf = pre.frames[run.frames - 1];
  Frame& f = s.frames[run.frames - 1];
  for (int o = 0; o < kLoopSlots; ++o) {
    const Reg* r = slot_reg(pf, o);
    bool num = r && r->kind == Kind::Scalar;
    ep.entry_umax[o] = num ? r->val.umax : ~0ull;
    ep.entry_umin[o] = num ? r->val.umin : 0;
    if (prev) {
      ep.entry_umax[o] = std::max(ep.entry_umax[o], prev->entry_umax[o]);
      ep.entry_umin[o] = std::min(ep.entry_umin[o], prev->entry_umin[o]);
    }
  }
  // The invariant is stored as it is, before this epoch's tags.
  auto cp = std::make_unique<Checkpoint>();
  cp->st = s;
  cp->parent = s.parent;
  s.parent = cp.get();
  run.inv = cp.get();
  invariants_at_[run.head].emplace_back(cp.get(), run.attempt);
  loop_invariants_.push_back(std::move(cp));
  ++stats_.states;
  auto tag = [&](Reg& r, int o) {
    if (r.kind == Kind::NotInit) return;
    r.epoch = run.epoch, r.dslot = static_cast<uint8_t>(o), r.dmin = 0, r.dmax = 0;
  };
  for (int o = 0; o < 10; ++o) tag(f.regs[o], o);
  for (int k = 0; k < kStackSize / 8; ++k)
    if (f.slot[k * 8] == Slot::Spill) tag(f.spill_mut(k), 10 + k);
}

// Termination, checked once the invariant includes the state coming back:
// some counter (a register whose value matters, or a stack slot) moved by
// at least 1 in one direction since the head, on this path as on every
// other, and the invariant bounds it (so, being included, it stays within
// that bound without wrapping). A counter whose value the walk ignores
// proves nothing: its bound would not come from the loop's exit test.
Step Analyzer::check_progress(const State& s, const LoopRun& run) {
  EpochInfo& ep = epochs_[run.epoch];
  const Frame& f = s.frames[run.frames - 1];
  const Frame& inv = run.inv->st.frames[run.frames - 1];
  auto moves = [&](int o) {
    const Reg* r = slot_reg(f, o);
    const Reg* at_head = slot_reg(inv, o);
    if (!r || !at_head || r->kind != Kind::Scalar || at_head->kind != Kind::Scalar) return false;
    if (r->epoch != run.epoch || r->dslot != o) return false;
    if (o < 10 && !((cfg_.precise[run.head] >> o) & 1)) return false;
    if (r->dmin >= 1) return at_head->val.umax < (1ull << 62);   // up, below the invariant's bound
    if (r->dmax <= -1) return at_head->val.umax < (1ull << 62);  // down, never through zero
    return false;
  };
  if (ep.slot < 0)
    for (int o = 0; o < kLoopSlots && ep.slot < 0; ++o)
      if (moves(o)) ep.slot = o;
  if (ep.slot >= 0 && moves(ep.slot)) return std::nullopt;
  std::string slot = ep.slot < 0    ? "no register or stack slot"
                     : ep.slot < 10 ? "r" + std::to_string(ep.slot)
                                    : "fp" + std::to_string((ep.slot - 10) * 8 - kStackSize);
  return fail_with(VerifyReason::UnboundedLoop,
                   "no proof that the loop at instruction " + std::to_string(run.head) + where(run.head) +
                       " ends: it runs more than " + std::to_string(kUnrollBeforeWidening) +
                       " times, so Ember checks it for all iterations at once, and on this path back to it " +
                       slot + " does not move by at least 1 towards a bound its exit test sets");
}

namespace {

// Arrivals at a loop head before joins start there: loops that path-by-path
// walking finishes quickly never lose precision to a join.
constexpr uint32_t kJoinAfterVisits = 256;
constexpr size_t kMaxJoinsPerHead = 64;

// Two states a join may merge: every value that is a number in one is the
// same number in the other (loop counters, flags, indexes stay exact, so
// the join merges paths of the same iteration and does not widen).
// Registers whose value is dead or does not matter to safety (`matters`,
// for the innermost frame) are left out; stack slots are all compared.
bool same_constants(const State& a, const State& b, LiveSet matters) {
  for (size_t f = 0; f < a.frames.size(); ++f) {
    const Frame &fa = a.frames[f], &fb = b.frames[f];
    auto same = [](const Reg& x, const Reg& y) {
      bool cx = x.kind == Kind::Scalar && x.val.is_const(), cy = y.kind == Kind::Scalar && y.val.is_const();
      return !(cx || cy) || (cx && cy && x.val.const_value() == y.val.const_value());
    };
    LiveSet regs = f + 1 == a.frames.size() ? matters : LiveSet{0x3c0};  // callers: r6-r9
    for (int r = 0; r < kNumRegs; ++r)
      if (((regs >> r) & 1) && !same(fa.regs[r], fb.regs[r])) return false;
    for (int k = 0; k < kStackSize / 8; ++k) {
      bool sa = fa.slot[k * 8] == Slot::Spill, sb = fb.slot[k * 8] == Slot::Spill;
      if (sa != sb) return false;
      if (sa && !same(fa.spill(k), fb.spill(k))) return false;
    }
  }
  return true;
}

}  // namespace

Analyzer::HeadResult Analyzer::join_at_head(State& s) {
  for (const LoopRun& run : s.loops)
    if (run.head == s.pc) return HeadResult::Normal;  // the widened walk has its own rules
  auto& joined = joined_at_[s.pc];
  Checkpoint* with = nullptr;
  LiveSet matters = cfg_.live[s.pc] & cfg_.precise[s.pc];
  // (A fully explored state is never an ancestor: those have paths under
  // way. The ancestor walk is long in long loops, so it comes last.)
  for (Checkpoint* cp : joined) {
    if (cp->st.frames.size() != s.frames.size()) continue;
    if (cp->branches == 0 && state_includes(cp->st, s, cfg_.live, cfg_.precise, /*exact=*/false)) {
      ++stats_.pruned;
      return HeadResult::Pruned;
    }
    if (!with && same_constants(cp->st, s, matters) && !is_ancestor(cp, s.parent)) with = cp;
  }
  if (!with)
    for (const auto& cp : visited_[s.pc])
      if (cp->st.frames.size() == s.frames.size() && same_constants(cp->st, s, matters) &&
          !is_ancestor(cp.get(), s.parent)) {
        with = cp.get();
        break;
      }
  if (!with) return HeadResult::Normal;
  // Dead registers would only get in the way (stale ids linking values);
  // nothing reads them again, so they are dropped, as the kernel's
  // clean_live_states does.
  auto drop_dead = [&](State& st) {
    for (int r = 0; r < kNumRegs; ++r)
      if (!((cfg_.live[st.pc] >> r) & 1) && r != 10) st.frames.back().regs[r] = Reg{};
  };
  State old = with->st, merged = s;
  drop_dead(old), drop_dead(merged);
  if (!merge_state(old, merged, Merge::Join, nullptr, fresh_id, this)) return HeadResult::Normal;
  s = std::move(merged);
  auto cp = std::make_unique<Checkpoint>();
  cp->st = s;
  cp->hash = state_hash(s, cfg_.live, cfg_.precise);
  cp->parent = s.parent;
  s.parent = cp.get();
  // The join replaces the state it absorbed as the one later paths meet.
  std::erase(joined, with);
  joined.push_back(cp.get());
  if (joined.size() > kMaxJoinsPerHead) joined.erase(joined.begin());  // the oldest stops being compared
  loop_invariants_.push_back(std::move(cp));
  ++stats_.states;
  joined_ = true;
  return HeadResult::Handled;
}

// A path that comes to a loop head in a state an invariant there includes
// is safe and ends: every iteration from any state of the invariant was
// checked, and so was every way out of the loop.
bool Analyzer::proven_by_invariant(const State& s) const {
  auto it = invariants_at_.find(s.pc);
  if (it == invariants_at_.end()) return false;
  for (const auto& [inv, attempt] : it->second)
    if (inv->branches == 0 && attempts_[attempt].live && inv->st.frames.size() == s.frames.size() &&
        state_includes(inv->st, s, cfg_.live, cfg_.precise, /*exact=*/false))
      return true;
  return false;
}

Analyzer::HeadResult Analyzer::at_loop_head(State& s, Step& err) {
  for (size_t li = 0; li < s.loops.size(); ++li) {
    if (s.loops[li].head != s.pc || s.loops[li].frames != s.frames.size()) continue;
    LoopRun run = s.loops[li];
    // Back at the head of a widened iteration.
    State plain = s;  // compared without this iteration's relations to the head
    uint32_t epoch = run.epoch;
    for_each_reg(plain, [epoch](Reg& r) {
      if (r.epoch == epoch) r.epoch = 0;
    });
    if (state_includes(run.inv->st, plain, cfg_.live, cfg_.precise, /*exact=*/false)) {
      if ((err = check_progress(s, run))) return HeadResult::Handled;
      ++stats_.pruned;
      return HeadResult::Pruned;  // every iteration is safe and ends
    }
    State pre = s;
    s = std::move(plain);
    widen_into(run.inv->st, s, cfg_.thresholds(s.pc));
    EpochInfo prev = epochs_[run.epoch];
    start_epoch(s, run, pre, &prev);
    s.loops[li] = run;
    return HeadResult::Handled;
  }
  if (proven_by_invariant(s)) {
    ++stats_.pruned;
    return HeadResult::Pruned;
  }
  if (joins_ && visits_[s.pc] > kJoinAfterVisits) {
    HeadResult r = join_at_head(s);
    if (r != HeadResult::Normal) return r;
  }
  State::HeadVisits* hv = nullptr;
  for (auto& v : s.head_visits)
    if (v.head == s.pc && v.frames == s.frames.size()) hv = &v;
  if (!hv)
    hv = &s.head_visits.emplace_back(State::HeadVisits{s.pc, static_cast<uint32_t>(s.frames.size()), 0, {}});
  bool widen = ++hv->count > kUnrollBeforeWidening && hv->last;
  for (uint32_t h : s.no_widen) widen = widen && h != s.pc;
  if (!widen) {
    auto copy = std::make_shared<State>(s);
    copy->head_visits.clear();
    copy->path.reset();
    hv->last = std::move(copy);
    return HeadResult::Normal;
  }
  // Widen from the state of the previous iteration of this entry into the loop.
  std::shared_ptr<const State> last = hv->last;
  State pre = s;
  if (!widen_into(*last, s, cfg_.thresholds(s.pc))) {
    s = std::move(pre);
    return HeadResult::Normal;
  }
  LoopRun run{s.pc, 0, nullptr, static_cast<uint32_t>(s.frames.size()),
              static_cast<uint32_t>(attempts_.size())};
  attempts_.push_back({pre, pending_.size()});
  start_epoch(s, run, pre, nullptr);
  s.loops.push_back(run);
  return HeadResult::Handled;
}

Step Analyzer::step(State& s, bool& done) {
  const Inst& in = prog_.insts[s.pc];
  Form form = in.info().form;
  bool control = form == Form::Ja || form == Form::Ja32 || form == Form::JmpImm || form == Form::JmpReg ||
                 form == Form::Call || form == Form::CallLocal || form == Form::CallX || form == Form::Exit;
  if (!control) {
    Step r = straight(s, in);
    if (!r) s.pc = next_insn(prog_, s.pc);
    return r;
  }
  switch (form) {
    case Form::Ja:
    case Form::Ja32:
    case Form::JmpImm:
    case Form::JmpReg: return jump(s, in, done);
    case Form::Call:
      if (in.op == Op::CALL_KFUNC)
        return fail_with(VerifyReason::Unsupported,
                         "kfunc calls are not supported (there is no kernel to call)");
      return call_helper(s, in, done);
    case Form::CallLocal: return call_local(s, in);
    case Form::CallX: {
      // The kernel has no callx; Ember runs it when the register's value is
      // known: a function (local call) or a helper id.
      const Reg& t = s.reg(in.dst);
      Inst direct = in;
      if (t.kind == Kind::Func) {
        direct.op = Op::CALL_LOCAL, direct.target = t.target;
        return call_local(s, direct);
      }
      if (t.kind == Kind::Scalar && t.val.is_const() &&
          helpers_.find(static_cast<int64_t>(t.val.const_value()))) {
        direct.op = Op::CALL, direct.imm = static_cast<int32_t>(t.val.const_value());
        return call_helper(s, direct, done);
      }
      return fail_with(VerifyReason::Unsupported, "callx through r" + std::to_string(in.dst) + " (" +
                                                      reg_str(t) +
                                                      "): the target must be a known function or helper id");
    }
    case Form::Exit: return exit(s, done);
    default: break;
  }
  return fail_with(VerifyReason::InvalidInsn, "unknown instruction form");
}

// Instructions that continue at the next one.
Step Analyzer::straight(State& s, const Inst& in) {
  switch (in.info().form) {
    case Form::AluImm:
    case Form::AluReg:
    case Form::AluUnary:
    case Form::Endian: return alu(s, in);
    case Form::LdImm64: return load_imm64(s, in);
    case Form::LdAbs:
    case Form::LdInd: return legacy_packet_load(s, in);
    case Form::Ldx: return load(s, in);
    case Form::St:
    case Form::Stx: return store(s, in);
    case Form::Atomic: return atomic(s, in);
    default: break;
  }
  return fail_with(VerifyReason::InvalidInsn, "unknown instruction form");
}

std::string Analyzer::where(size_t insn) const {
  if (!in_.source_line) return "";
  std::string line = in_.source_line(insn);
  return line.empty() ? "" : " (" + line + ")";
}

std::string Analyzer::map_desc(uint32_t map) const {
  if (map >= in_.maps.size()) return "map " + std::to_string(map);
  const MapSpec& m = in_.maps[map];
  return "map " + std::to_string(map) + (m.name.empty() ? "" : " '" + m.name + "'");
}

void Analyzer::note_depth(const State& s, int frame, int32_t depth) {
  uint32_t sp = cfg_.subprog_of[s.frames[frame].subprog];
  subprog_depth_[sp] = std::max(subprog_depth_[sp], depth);
}

// check_max_stack_depth: the frames of any chain of calls share 512 bytes
// (each rounded up to 16, the JIT's granularity).
Step Analyzer::check_stack_depth() const {
  size_t n = cfg_.subprogs.size();
  std::vector<std::vector<uint32_t>> callees(n);
  for (uint32_t i = 0; i < prog_.insts.size(); ++i) {
    const Inst& in = prog_.insts[i];
    if (in.second_half) continue;
    if (in.op == Op::CALL_LOCAL || (in.op == Op::LDDW && in.pseudo() == Pseudo::Func))
      callees[cfg_.subprog_of[i]].push_back(cfg_.subprog_of[in.target]);
  }
  std::vector<int> state(n, 0);  // 0 new, 1 on the DFS stack, 2 done
  std::vector<int32_t> total(n, 0);
  std::function<bool(uint32_t)> walk = [&](uint32_t sp) {
    state[sp] = 1;
    int32_t deepest = 0;
    for (uint32_t c : callees[sp]) {
      if (state[c] == 1) return false;
      if (state[c] == 0 && !walk(c)) return false;
      deepest = std::max(deepest, total[c]);
    }
    total[sp] = (subprog_depth_[sp] + 15) / 16 * 16 + deepest;
    state[sp] = 2;
    return true;
  };
  if (!walk(0)) return fail_with(VerifyReason::CallDepth, "recursive bpf-to-bpf calls");
  // A tail call replaces the frames below it only after the frames above
  // it: the kernel's x86-64 JIT allows it under at most 256 bytes of them.
  std::vector<bool> tail(n, false);
  for (uint32_t i = 0; i < prog_.insts.size(); ++i)
    if (prog_.insts[i].op == Op::CALL && prog_.insts[i].imm == 12) tail[cfg_.subprog_of[i]] = true;
  std::function<int32_t(uint32_t, int32_t)> above = [&](uint32_t sp, int32_t depth) -> int32_t {
    if (tail[sp] && sp != 0 && depth > 256) return depth;
    int32_t own = (subprog_depth_[sp] + 15) / 16 * 16;
    for (uint32_t c : callees[sp])
      if (int32_t d = above(c, depth + own)) return d;
    return 0;
  };
  if (int32_t d = above(0, 0))
    return fail_with(VerifyReason::TailCall,
                     "a tail call from a function whose callers use " + std::to_string(d) +
                         " bytes of stack; the limit is 256 when tail calls and function calls mix");
  if (total[0] > kStackSize)
    return fail_with(VerifyReason::StackTooLarge, "the stack frames of a chain of calls use " +
                                                      std::to_string(total[0]) +
                                                      " bytes together; the limit is 512");
  return std::nullopt;
}

// Facts hold for the JIT only if every visit agrees: each visit's state
// includes every concrete state that reaches it along its paths, and the
// walk covers every path (pruned paths are included in walked ones).
void Analyzer::note_facts(const State& s) {
  const Inst& in = prog_.insts[s.pc];
  InsnFacts& f = facts_[s.pc];
  f.reached = true;
  if (in.op == Op::LDDW && s.pc + 1 < facts_.size()) facts_[s.pc + 1].reached = true;
  const OpInfo& info = in.info();
  uint8_t code = info.opcode & 0xf0;
  if (info.form != Form::AluReg || (code != 0x30 && code != 0x90)) return;
  const Scalar& d = s.reg(in.src).val;
  bool is64 = (info.opcode & 7) == 7;  // BPF_ALU64
  if (is64 ? d.umin == 0 : d.u32min == 0) f.divisor_nonzero = false;
  if (is64 ? d.smin <= -1 && d.smax >= -1 : d.s32min <= -1 && d.s32max >= -1) f.divisor_not_minus_one = false;
}

VerifyResult Analyzer::finish(const State* s, size_t insn, const Fail* f) {
  VerifyResult r;
  r.ok = f == nullptr;
  if (r.ok) r.facts = std::move(facts_);
  r.stats = stats_;
  r.stats.stack_depth = static_cast<uint32_t>(subprog_depth_.empty() ? 0 : subprog_depth_[0]);
  if (f) {
    r.reason = f->reason;
    r.insn = insn;
    r.message = "instruction " + std::to_string(insn) + where(insn) + ": " + f->message;
    if (s) {
      r.state = state_str(*s);
      for (const PathStep* p = s->path.get(); p; p = p->prev.get()) r.path.push_back(p->insn);
      std::reverse(r.path.begin(), r.path.end());
    }
  }
  r.log = std::move(log_);
  return r;
}

// Out of budget: where did it go? Usually around a loop whose end could
// not be proven (the kernel's "BPF program is too large").
Fail Analyzer::budget_exhausted(bool branches) const {
  size_t hot = std::max_element(visits_.begin(), visits_.end()) - visits_.begin();
  size_t head = hot;
  for (size_t i = 0; i < visits_.size(); ++i)
    if (cfg_.loop_head[i] && (!cfg_.loop_head[head] || visits_[i] > visits_[head])) head = i;
  std::string budget = branches
                           ? "limit of " + std::to_string(kMaxPendingBranches) + " branches left to explore"
                           : "budget of " + std::to_string(in_.insn_budget) + " instructions";
  if (cfg_.loop_head[head] && visits_[head] * 2 >= visits_[hot]) {
    Fail f = fail_with(VerifyReason::UnboundedLoop,
                       "no proof that the loop at instruction " + std::to_string(head) + where(head) +
                           " ends: the analysis went round it " + std::to_string(visits_[head]) +
                           " times and used up its " + budget +
                           " (bound the loop with a counter compared against a constant)");
    f.reg = static_cast<int>(head);
    return f;
  }
  Fail f = fail_with(VerifyReason::Complexity, "the analysis used up its " + budget +
                                                   " without finishing; it spent most of its work at "
                                                   "instruction " +
                                                   std::to_string(hot) + where(hot) + ", visited " +
                                                   std::to_string(visits_[hot]) + " times");
  f.reg = static_cast<int>(hot);
  return f;
}

VerifyResult Analyzer::run() {
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  auto done = [&](VerifyResult r) {
    r.stats.time_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    r.stats.peak_memory = r.stats.peak_states * (sizeof(Checkpoint) + sizeof(Frame));
    return r;
  };
  pending_.push_back(entry_state());
  while (!pending_.empty()) {
    State s = std::move(pending_.back());
    pending_.pop_back();
    for (;;) {
      bool too_many_branches = pending_.size() > kMaxPendingBranches;
      if (++stats_.insns_processed > in_.insn_budget || too_many_branches) {
        Fail f = budget_exhausted(too_many_branches);
        if (fall_back(s)) continue;
        return done(finish(&s, f.reg < 0 ? s.pc : static_cast<size_t>(f.reg), &f));
      }
      ++visits_[s.pc];
      if (!s.loops.empty() || !s.head_visits.empty()) leave_loops(s);
      HeadResult head = HeadResult::Normal;
      if (cfg_.loop_head[s.pc]) {
        Step err;
        head = at_loop_head(s, err);
        if (err) {
          if (fall_back(s)) continue;
          return done(finish(&s, s.pc, &*err));
        }
        if (head == HeadResult::Pruned) {
          path_finished(s.parent);
          break;
        }
      }
      if (head == HeadResult::Normal && cfg_.prune_point[s.pc]) {
        Step err;
        if (prune(s, err)) {
          if (err) {
            if (fall_back(s)) continue;
            return done(finish(&s, s.pc, &*err));
          }
          path_finished(s.parent);
          break;
        }
      }
      if (in_.log_level >= 2) log_ += std::to_string(s.pc) + ": " + state_str(s) + "\n";
      note_facts(s);
      bool path_done = false;
      size_t pc = s.pc;
      if (Step err = step(s, path_done)) {
        if (fall_back(s)) continue;
        return done(finish(&s, pc, &*err));
      }
      if (path_done) {
        path_finished(s.parent);
        break;
      }
    }
  }
  if (Step err = check_stack_depth()) return done(finish(nullptr, 0, &*err));
  return done(finish(nullptr, 0, nullptr));
}

}  // namespace ember::verifier
