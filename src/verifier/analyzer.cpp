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
    widen_state(widen_from->st, s);
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

VerifyResult Analyzer::finish(const State* s, size_t insn, const Fail* f) {
  VerifyResult r;
  r.ok = f == nullptr;
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
Fail Analyzer::budget_exhausted() const {
  size_t hot = std::max_element(visits_.begin(), visits_.end()) - visits_.begin();
  size_t head = hot;
  for (size_t i = 0; i < visits_.size(); ++i)
    if (cfg_.loop_head[i] && (!cfg_.loop_head[head] || visits_[i] > visits_[head])) head = i;
  std::string budget = std::to_string(in_.insn_budget);
  if (cfg_.loop_head[head] && visits_[head] * 2 >= visits_[hot]) {
    Fail f = fail_with(VerifyReason::UnboundedLoop,
                       "no proof that the loop at instruction " + std::to_string(head) + where(head) +
                           " ends: the analysis went round it " + std::to_string(visits_[head]) +
                           " times and used up its budget of " + budget +
                           " instructions (bound the loop with a counter compared against a constant)");
    f.reg = static_cast<int>(head);
    return f;
  }
  Fail f =
      fail_with(VerifyReason::Complexity, "the analysis processed " + budget +
                                              " instructions without finishing; it spent most of them at "
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
      if (++stats_.insns_processed > in_.insn_budget) {
        Fail f = budget_exhausted();
        return done(finish(&s, f.reg < 0 ? s.pc : static_cast<size_t>(f.reg), &f));
      }
      ++visits_[s.pc];
      if (cfg_.prune_point[s.pc]) {
        Step err;
        if (prune(s, err)) {
          if (err) return done(finish(&s, s.pc, &*err));
          path_finished(s.parent);
          break;
        }
      }
      if (in_.log_level >= 2) log_ += std::to_string(s.pc) + ": " + state_str(s) + "\n";
      bool path_done = false;
      size_t pc = s.pc;
      if (Step err = step(s, path_done)) return done(finish(&s, pc, &*err));
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
