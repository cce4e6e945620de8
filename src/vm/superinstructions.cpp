#include "vm/superinstructions.hpp"

#include <optional>

namespace ember::fused {
namespace {

struct AluOp {
  int kind;  // Alu
  bool imm;
};

std::optional<AluOp> alu_of(uint16_t op) {
  switch (static_cast<Op>(op)) {
#define EMBER_CASE(KIND, ...)                                             \
  case Op::KIND##64_IMM: return AluOp{static_cast<int>(Alu::KIND), true}; \
  case Op::KIND##64_REG: return AluOp{static_cast<int>(Alu::KIND), false};
    EMBER_FUSED_ALU_A(EMBER_CASE)
#undef EMBER_CASE
    default: return std::nullopt;
  }
}

int load_of(uint16_t op) {
  int k = 0;
#define EMBER_CASE(LOAD, ...)                    \
  if (static_cast<Op>(op) == Op::LOAD) return k; \
  ++k;
  EMBER_FUSED_LOADS(EMBER_CASE)
#undef EMBER_CASE
  return -1;
}

int store_of(uint16_t op) {
  int k = 0;
#define EMBER_CASE(STORE, ...)                    \
  if (static_cast<Op>(op) == Op::STORE) return k; \
  ++k;
  EMBER_FUSED_STORES_A(EMBER_CASE)
#undef EMBER_CASE
  return -1;
}

struct CondOp {
  int cond;  // Cond
  bool imm;
};

std::optional<CondOp> cond_of(uint16_t op) {
  switch (static_cast<Op>(op)) {
#define EMBER_CASE(C, ...)                                          \
  case Op::C##_IMM: return CondOp{static_cast<int>(Cond::C), true}; \
  case Op::C##_REG: return CondOp{static_cast<int>(Cond::C), false};
    EMBER_FUSED_COND(EMBER_CASE)
#undef EMBER_CASE
    default: return std::nullopt;
  }
}

// The superinstruction for a (first, second) pair, if there is one.
std::optional<uint16_t> fused_op(const ExecInsn& a, const ExecInsn& b) {
  auto ka = alu_of(a.op), kb = alu_of(b.op);
  auto cb = cond_of(b.op);
  int l = load_of(a.op);
  if (ka && kb && b.dst == a.dst)  // the second consumes the first's result
    return kFirstAluPair + (ka->kind * kAluKinds + kb->kind) * 4 + (ka->imm ? 0 : 2) + (kb->imm ? 0 : 1);
  if (l >= 0 && kb && !kb->imm && b.src == a.dst && b.dst != a.dst)  // an ALU operation on the loaded value
    return kFirstLoadAlu + l * kAluKinds + kb->kind;
  if (l >= 0 && kb && kb->imm && b.dst == a.dst)  // the loaded value, transformed in place
    return kFirstLoadAluImm + l * kAluKinds + kb->kind;
  if (l >= 0 && cb && !cb->imm && b.src == a.dst)  // a comparison with the loaded value
    return kFirstLoadJump + l * kConds + cb->cond;
  if (static_cast<Op>(a.op) == Op::ADD64_IMM && cb && b.dst == a.dst)  // a loop counter's step and test
    return kFirstAddJump + cb->cond * 2 + (cb->imm ? 0 : 1);
  if (static_cast<Op>(a.op) == Op::JEQ_IMM && static_cast<Op>(b.op) == Op::JEQ_IMM && b.dst == a.dst)
    return kJeqChain;
  if (int sa = store_of(a.op), sb = store_of(b.op); sa >= 0 && sb >= 0)
    return kFirstStorePair + sa * kStores + sb;
  return std::nullopt;
}

}  // namespace

// Slots that jumps and calls land on. A pair is not fused across one: the
// second slot would run alone whenever it is entered by a jump, and it may
// fuse better with what follows it (a loop's first instruction).
std::vector<bool> jump_targets(const std::vector<ExecInsn>& code) {
  std::vector<bool> target(code.size(), false);
  for (const ExecInsn& x : code) {
    if (x.op >= kNumOps) continue;
    switch (op_info(static_cast<Op>(x.op)).form) {
      case Form::Ja:
      case Form::Ja32:
      case Form::JmpImm:
      case Form::JmpReg:
      case Form::CallLocal:
        if (x.target < target.size()) target[x.target] = true;
        break;
      default: break;
    }
  }
  return target;
}

void fuse(std::vector<ExecInsn>& code) {
  std::vector<bool> target = jump_targets(code);
  for (size_t i = 0; i + 1 < code.size(); ++i) {
    if (code[i].op >= kNumOps || code[i + 1].op >= kNumOps || target[i + 1]) continue;
    if (auto f = fused_op(code[i], code[i + 1])) {
      code[i].op = *f;
      ++i;  // the second slot keeps its op, for calls and returns that land on it
    }
  }
}

}  // namespace ember::fused
