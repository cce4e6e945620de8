// Superinstructions for the fast mode: two adjacent instructions executed by
// one handler, so that the value passed between them stays in a host
// register instead of a store to and a load from the eBPF register file (the
// store-to-load forwarding latency is what bounds an interpreter on chains of
// dependent ALU operations), and one dispatch is saved.
//
// Fusion only rewrites the first slot's op; the second slot keeps its own,
// so a jump to it still runs it alone. Checked and traced runs use the plain
// form (they count and trace every instruction).
#pragma once

#include <cstdint>
#include <vector>

#include "ember/isa.hpp"
#include "ember/vm.hpp"

namespace ember::fused {

// The 64-bit ALU operations that fuse (division and modulo do not: their
// zero checks make the handlers long).
enum class Alu : uint8_t { ADD, SUB, MUL, OR, AND, XOR, LSH, RSH, ARSH, MOV };
constexpr int kAluKinds = 10;

// X(kind): the fusible kinds, in enum order. Two copies because a macro may
// not expand itself; the static_asserts in interpreter.cpp keep them equal.
#define EMBER_FUSED_ALU_A(X, ...)                                                                    \
  X(ADD, __VA_ARGS__)                                                                                \
  X(SUB, __VA_ARGS__)                                                                                \
  X(MUL, __VA_ARGS__) X(OR, __VA_ARGS__) X(AND, __VA_ARGS__) X(XOR, __VA_ARGS__) X(LSH, __VA_ARGS__) \
      X(RSH, __VA_ARGS__) X(ARSH, __VA_ARGS__) X(MOV, __VA_ARGS__)
#define EMBER_FUSED_ALU_B(X, ...)                                                                    \
  X(ADD, __VA_ARGS__)                                                                                \
  X(SUB, __VA_ARGS__)                                                                                \
  X(MUL, __VA_ARGS__) X(OR, __VA_ARGS__) X(AND, __VA_ARGS__) X(XOR, __VA_ARGS__) X(LSH, __VA_ARGS__) \
      X(RSH, __VA_ARGS__) X(ARSH, __VA_ARGS__) X(MOV, __VA_ARGS__)
// X(op, type): loads that fuse with an ALU operation consuming the loaded value.
#define EMBER_FUSED_LOADS(X, ...) \
  X(LDX_B, uint8_t, __VA_ARGS__)  \
  X(LDX_H, uint16_t, __VA_ARGS__) X(LDX_W, uint32_t, __VA_ARGS__) X(LDX_DW, uint64_t, __VA_ARGS__)
constexpr int kLoads = 4;
// X(op, type): immediate stores, which come in runs (struct and stack
// initialization); two of any sizes fuse. Two copies, as above.
#define EMBER_FUSED_STORES_A(X, ...) \
  X(ST_B, uint8_t, __VA_ARGS__)      \
  X(ST_H, uint16_t, __VA_ARGS__) X(ST_W, uint32_t, __VA_ARGS__) X(ST_DW, uint64_t, __VA_ARGS__)
#define EMBER_FUSED_STORES_B(X, ...) \
  X(ST_B, uint8_t, __VA_ARGS__)      \
  X(ST_H, uint16_t, __VA_ARGS__) X(ST_W, uint32_t, __VA_ARGS__) X(ST_DW, uint64_t, __VA_ARGS__)
constexpr int kStores = 4;
// X(cond): the 64-bit conditional jumps, in Cond order.
#define EMBER_FUSED_COND(X, ...)                                                                       \
  X(JEQ, __VA_ARGS__)                                                                                  \
  X(JNE, __VA_ARGS__)                                                                                  \
  X(JGT, __VA_ARGS__) X(JGE, __VA_ARGS__) X(JLT, __VA_ARGS__) X(JLE, __VA_ARGS__) X(JSGT, __VA_ARGS__) \
      X(JSGE, __VA_ARGS__) X(JSLT, __VA_ARGS__) X(JSLE, __VA_ARGS__) X(JSET, __VA_ARGS__)
enum class Cond : uint8_t { JEQ, JNE, JGT, JGE, JLT, JLE, JSGT, JSGE, JSLT, JSLE, JSET };
constexpr int kConds = 11;

template <Cond C>
inline bool cmp64(uint64_t a, uint64_t b) {
  auto sa = static_cast<int64_t>(a), sb = static_cast<int64_t>(b);
  if constexpr (C == Cond::JEQ) return a == b;
  if constexpr (C == Cond::JNE) return a != b;
  if constexpr (C == Cond::JGT) return a > b;
  if constexpr (C == Cond::JGE) return a >= b;
  if constexpr (C == Cond::JLT) return a < b;
  if constexpr (C == Cond::JLE) return a <= b;
  if constexpr (C == Cond::JSGT) return sa > sb;
  if constexpr (C == Cond::JSGE) return sa >= sb;
  if constexpr (C == Cond::JSLT) return sa < sb;
  if constexpr (C == Cond::JSLE) return sa <= sb;
  if constexpr (C == Cond::JSET) return (a & b) != 0;
}

template <Alu K>
inline uint64_t alu64(uint64_t a, uint64_t b) {
  if constexpr (K == Alu::ADD) return a + b;
  if constexpr (K == Alu::SUB) return a - b;
  if constexpr (K == Alu::MUL) return a * b;
  if constexpr (K == Alu::OR) return a | b;
  if constexpr (K == Alu::AND) return a & b;
  if constexpr (K == Alu::XOR) return a ^ b;
  if constexpr (K == Alu::LSH) return a << (b & 63);
  if constexpr (K == Alu::RSH) return a >> (b & 63);
  if constexpr (K == Alu::ARSH) return static_cast<uint64_t>(static_cast<int64_t>(a) >> (b & 63));
  if constexpr (K == Alu::MOV) return b;
}

// Numbering after the plain ops:
//   ALU pairs on one register (a, b, a-imm?, b-imm?);
//   load + ALU whose source is the loaded register (load, alu);
//   load + ALU with an immediate on the loaded register (load, alu);
//   load + conditional jump comparing with the loaded register (load, cond);
//   add-immediate + conditional jump on the same register, the loop
//   counter's step and test (cond, jump-imm?);
//   two jeq-immediate on the same register: a switch's compare chain;
//   two immediate stores (first size, second size).
constexpr uint16_t kFirstAluPair = static_cast<uint16_t>(kNumOps);
constexpr uint16_t kFirstLoadAlu = kFirstAluPair + kAluKinds * kAluKinds * 4;
constexpr uint16_t kFirstLoadAluImm = kFirstLoadAlu + kLoads * kAluKinds;
constexpr uint16_t kFirstLoadJump = kFirstLoadAluImm + kLoads * kAluKinds;
constexpr uint16_t kFirstAddJump = kFirstLoadJump + kLoads * kConds;
constexpr uint16_t kJeqChain = kFirstAddJump + kConds * 2;
constexpr uint16_t kFirstStorePair = kJeqChain + 1;
constexpr uint16_t kNumExecOps = kFirstStorePair + kStores * kStores;

// Rewrites `code` (the plain execution form) for the fast mode.
void fuse(std::vector<ExecInsn>& code);

}  // namespace ember::fused
