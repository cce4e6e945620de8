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
#define EMBER_CASE(KIND, ...)                                                      \
  case Op::KIND##64_IMM: return AluOp{static_cast<int>(Alu::KIND), true};  \
  case Op::KIND##64_REG: return AluOp{static_cast<int>(Alu::KIND), false};
    EMBER_FUSED_ALU_A(EMBER_CASE)
#undef EMBER_CASE
    default: return std::nullopt;
  }
}

int load_of(uint16_t op) {
  int k = 0;
#define EMBER_CASE(LOAD, ...) \
  if (static_cast<Op>(op) == Op::LOAD) return k; \
  ++k;
  EMBER_FUSED_LOADS(EMBER_CASE)
#undef EMBER_CASE
  return -1;
}

}  // namespace

void fuse(std::vector<ExecInsn>& code) {
  for (size_t i = 0; i + 1 < code.size(); ++i) {
    ExecInsn& a = code[i];
    const ExecInsn& b = code[i + 1];
    if (a.op >= kNumOps || b.op >= kNumOps) continue;
    auto ka = alu_of(a.op), kb = alu_of(b.op);
    if (ka && kb && b.dst == a.dst) {  // the second consumes the first's result
      a.op = static_cast<uint16_t>(kFirstAluPair + (ka->kind * kAluKinds + kb->kind) * 4 + (ka->imm ? 0 : 2) +
                                   (kb->imm ? 0 : 1));
      ++i;
      continue;
    }
    int l = load_of(a.op);
    if (l >= 0 && kb && !kb->imm && b.src == a.dst) {  // an ALU operation on the loaded value
      a.op = static_cast<uint16_t>(kFirstLoadAlu + l * kAluKinds + kb->kind);
      ++i;
    }
  }
}

}  // namespace ember::fused
