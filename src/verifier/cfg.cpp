// Functions, reachability, pruning points and liveness (see cfg.hpp).
#include "verifier/cfg.hpp"

#include <algorithm>

namespace ember::verifier {

namespace {

bool is_cond_jump(const Inst& in) {
  Form f = in.info().form;
  return f == Form::JmpImm || f == Form::JmpReg;
}
bool is_jump(const Inst& in) {
  Form f = in.info().form;
  return f == Form::Ja || f == Form::Ja32 || is_cond_jump(in);
}

LiveSet bit(int r) { return static_cast<LiveSet>(1u << r); }
constexpr LiveSet kArgRegs = 0x3e;   // r1-r5
constexpr LiveSet kCallDefs = 0x3f;  // r0-r5: set or clobbered by a call

// Registers an instruction reads and writes (r10 is never tracked).
void uses_defs(const Inst& in, const HelperTable& helpers, LiveSet& use, LiveSet& def) {
  use = def = 0;
  const OpInfo& info = in.info();
  switch (info.form) {
    case Form::AluImm:
      def = bit(in.dst);
      if (info.llvm[0] != '=') use = bit(in.dst);  // every ALU op but mov reads dst
      break;
    case Form::AluReg:
      def = bit(in.dst);
      use = bit(in.src) | (info.llvm[0] != '=' ? bit(in.dst) : 0);
      break;
    case Form::AluUnary:
    case Form::Endian: use = def = bit(in.dst); break;
    case Form::LdImm64: def = in.second_half ? 0 : bit(in.dst); break;
    case Form::LdAbs: use = bit(6), def = kCallDefs; break;
    case Form::LdInd: use = bit(6) | bit(in.src), def = kCallDefs; break;
    case Form::Ldx: use = bit(in.src), def = bit(in.dst); break;
    case Form::St: use = bit(in.dst); break;
    case Form::Stx: use = bit(in.dst) | bit(in.src); break;
    case Form::Atomic: {
      use = bit(in.dst) | bit(in.src);
      bool cmpxchg = in.op == Op::ATOMIC64_CMPXCHG || in.op == Op::ATOMIC32_CMPXCHG;
      if (cmpxchg)
        use |= bit(0), def = bit(0);
      else if (in.imm & 1)
        def = bit(in.src);  // BPF_FETCH
      break;
    }
    case Form::JmpImm: use = bit(in.dst); break;
    case Form::JmpReg: use = bit(in.dst) | bit(in.src); break;
    case Form::Call: {
      use = kArgRegs;  // kfuncs and unknown helpers: all arguments
      if (const HelperDef* h = in.src == 0 ? helpers.find(in.imm) : nullptr) {
        use = 0;
        for (int a = 0; a < 5; ++a)
          if (h->proto.args[a] != ArgType::None) use |= bit(a + 1);
      }
      def = kCallDefs;
      break;
    }
    case Form::CallLocal: use = kArgRegs, def = kCallDefs; break;
    case Form::CallX: use = kArgRegs | bit(in.dst), def = kCallDefs; break;
    case Form::Exit: use = bit(0); break;
    case Form::Ja:
    case Form::Ja32: break;
  }
  use &= 0x3ff, def &= 0x3ff;
}

// Successors within the function (calls continue at the next instruction).
void successors(const Program& p, uint32_t i, std::vector<uint32_t>& out) {
  out.clear();
  const Inst& in = p.insts[i];
  Form f = in.info().form;
  if (f == Form::Exit) return;
  if (f == Form::Ja || f == Form::Ja32) {
    out.push_back(in.target);
    return;
  }
  if (is_cond_jump(in)) out.push_back(in.target);
  uint32_t n = next_insn(p, i);
  if (n < p.insts.size()) out.push_back(n);
}

std::optional<CfgError> find_subprogs(const Program& p, Cfg& c) {
  size_t n = p.insts.size();
  c.subprogs = {0};
  for (uint32_t i = 0; i < n; ++i) {
    const Inst& in = p.insts[i];
    if (in.second_half) continue;
    bool func_ref = in.op == Op::LDDW && in.pseudo() == Pseudo::Func;
    if (in.op == Op::CALL_LOCAL || func_ref) c.subprogs.push_back(in.target);
  }
  std::sort(c.subprogs.begin(), c.subprogs.end());
  c.subprogs.erase(std::unique(c.subprogs.begin(), c.subprogs.end()), c.subprogs.end());
  c.subprog_of.assign(n, 0);
  for (uint32_t s = 0, i = 0; i < n; ++i) {
    if (s + 1 < c.subprogs.size() && c.subprogs[s + 1] == i) ++s;
    c.subprog_of[i] = s;
  }
  // check_subprogs: a function ends with exit or a jump, and jumps stay in it.
  for (size_t s = 0; s < c.subprogs.size(); ++s) {
    uint32_t end = s + 1 < c.subprogs.size() ? c.subprogs[s + 1] : static_cast<uint32_t>(n);
    uint32_t last = end - 1;
    if (p.insts[last].second_half) --last;
    Form f = p.insts[last].info().form;
    if (f != Form::Exit && f != Form::Ja && f != Form::Ja32)
      return CfgError{VerifyReason::InvalidInsn, last,
                      "the last instruction of the function at " + std::to_string(c.subprogs[s]) +
                          " is neither exit nor a jump: execution would fall into the next function"};
  }
  for (uint32_t i = 0; i < n; ++i) {
    const Inst& in = p.insts[i];
    if (!in.second_half && is_jump(in) && c.subprog_of[in.target] != c.subprog_of[i])
      return CfgError{VerifyReason::InvalidInsn, i,
                      "jump from instruction " + std::to_string(i) + " to " + std::to_string(in.target) +
                          " leaves its function"};
  }
  return std::nullopt;
}

std::optional<CfgError> check_reachable(const Program& p, const Cfg& c) {
  size_t n = p.insts.size();
  std::vector<bool> seen(n, false);
  std::vector<uint32_t> work(c.subprogs.begin(), c.subprogs.begin() + 1), succ;
  seen[0] = true;
  // Functions are reached through calls and function references only.
  while (!work.empty()) {
    uint32_t i = work.back();
    work.pop_back();
    successors(p, i, succ);
    const Inst& in = p.insts[i];
    if (in.op == Op::CALL_LOCAL || (in.op == Op::LDDW && in.pseudo() == Pseudo::Func))
      succ.push_back(in.target);
    for (uint32_t s : succ)
      if (!seen[s]) seen[s] = true, work.push_back(s);
  }
  for (uint32_t i = 0; i < n; ++i)
    if (!seen[i] && !p.insts[i].second_half)
      return CfgError{
          VerifyReason::Unreachable, i,
          "instruction " + std::to_string(i) + " is unreachable (the kernel rejects dead code too)"};
  return std::nullopt;
}

void compute_liveness(const Program& p, const HelperTable& helpers, Cfg& c) {
  size_t n = p.insts.size();
  std::vector<LiveSet> use(n), def(n);
  for (size_t i = 0; i < n; ++i)
    if (!p.insts[i].second_half) uses_defs(p.insts[i], helpers, use[i], def[i]);
  c.live.assign(n + 1, 0);
  std::vector<uint32_t> succ;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t k = n; k-- > 0;) {
      if (p.insts[k].second_half) continue;
      successors(p, static_cast<uint32_t>(k), succ);
      LiveSet out = 0;
      for (uint32_t s : succ) out |= c.live[s];
      LiveSet in = static_cast<LiveSet>(use[k] | (out & ~def[k]));
      if (in != c.live[k]) c.live[k] = in, changed = true;
    }
  }
}

// Backward: a register's value matters before an instruction if it is
// used there in a way that matters, or flows into one that matters after.
LiveSet precise_in(const Inst& in, const HelperTable& helpers, bool main_exit, bool return_matters,
                   LiveSet out) {
  LiveSet use, def;
  uses_defs(in, helpers, use, def);
  const OpInfo& info = in.info();
  switch (info.form) {
    case Form::AluImm:
    case Form::AluReg:
    case Form::AluUnary:
    case Form::Endian:
      // Values flow from the operands into dst only.
      return static_cast<LiveSet>((out & ~def) | ((out & def) ? use : 0));
    case Form::Ldx: return static_cast<LiveSet>((out & ~def) | use);  // the address
    case Form::Exit: return main_exit && !return_matters ? 0 : use;
    default: return static_cast<LiveSet>((out & ~def) | use);
  }
}

void compute_precision(const Program& p, const HelperTable& helpers, bool return_matters, Cfg& c) {
  size_t n = p.insts.size();
  c.precise.assign(n + 1, 0);
  std::vector<uint32_t> succ;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t k = n; k-- > 0;) {
      const Inst& in = p.insts[k];
      if (in.second_half) continue;
      successors(p, static_cast<uint32_t>(k), succ);
      LiveSet out = 0;
      for (uint32_t s : succ) out |= c.precise[s];
      bool main_exit = c.subprog_of[k] == 0;
      LiveSet v = static_cast<LiveSet>(precise_in(in, helpers, main_exit, return_matters, out) & c.live[k]);
      if (v != c.precise[k]) c.precise[k] = v, changed = true;
    }
  }
}

void mark_points(const Program& p, const HelperTable& helpers, Cfg& c) {
  size_t n = p.insts.size();
  c.prune_point.assign(n, false);
  c.loop_head.assign(n, false);
  for (uint32_t s : c.subprogs) c.prune_point[s] = true;
  for (uint32_t i = 0; i < n; ++i) {
    const Inst& in = p.insts[i];
    if (in.second_half) continue;
    Form f = in.info().form;
    if (is_jump(in)) {
      c.prune_point[in.target] = true;
      if (in.target <= i) c.loop_head[in.target] = true;
      if (is_cond_jump(in) && i + 1 < n) c.prune_point[i + 1] = true;
    }
    if ((f == Form::Call || f == Form::CallLocal || f == Form::CallX) && i + 1 < n)
      c.prune_point[i + 1] = true;
    if (in.op == Op::CALL && in.src == 0)
      if (const HelperDef* h = helpers.find(in.imm))
        for (ArgType a : h->proto.args)
          if (a == ArgType::PtrToFunc) c.prune_point[i] = true;
  }
}

// For each back edge i -> h: h and every instruction that reaches i
// without passing h (predecessors within the function).
void find_loops(const Program& p, Cfg& c) {
  size_t n = p.insts.size();
  std::vector<std::vector<uint32_t>> preds(n);
  std::vector<uint32_t> succ;
  for (uint32_t i = 0; i < n; ++i) {
    if (p.insts[i].second_half) continue;
    successors(p, i, succ);
    for (uint32_t s : succ) preds[s].push_back(i);
  }
  for (uint32_t i = 0; i < n; ++i) {
    const Inst& in = p.insts[i];
    if (in.second_half || !is_jump(in) || in.target > i) continue;
    uint32_t h = in.target;
    std::vector<bool>* body = nullptr;
    for (auto& [hh, b] : c.loop_bodies)
      if (hh == h) body = &b;
    if (!body) {
      c.loop_bodies.emplace_back(h, std::vector<bool>(n, false));
      body = &c.loop_bodies.back().second;
    }
    (*body)[h] = true;
    std::vector<uint32_t> work;
    if (!(*body)[i]) (*body)[i] = true, work.push_back(i);
    while (!work.empty()) {
      uint32_t k = work.back();
      work.pop_back();
      for (uint32_t q : preds[k])
        if (!(*body)[q]) (*body)[q] = true, work.push_back(q);
    }
  }
  for (const auto& [h, body] : c.loop_bodies) {
    Thresholds t;
    for (uint32_t i = 0; i < n; ++i) {
      const Inst& in = p.insts[i];
      if (!body[i] || in.second_half || in.info().form != Form::JmpImm) continue;
      bool is64 = (in.info().opcode & 0x07) == 0x05;  // BPF_JMP; 0x06 is BPF_JMP32
      t.add(in.imm, is64);
    }
    t.finish();
    c.loop_thresholds.emplace_back(h, std::move(t));
  }
}

}  // namespace

std::optional<CfgError> build_cfg(const Program& prog, const HelperTable& helpers, bool return_matters,
                                  Cfg& out) {
  if (prog.insts.empty()) return CfgError{VerifyReason::InvalidInsn, 0, "the program has no instructions"};
  if (auto e = find_subprogs(prog, out)) return e;
  if (auto e = check_reachable(prog, out)) return e;
  compute_liveness(prog, helpers, out);
  compute_precision(prog, helpers, return_matters, out);
  mark_points(prog, helpers, out);
  find_loops(prog, out);
  return std::nullopt;
}

}  // namespace ember::verifier
