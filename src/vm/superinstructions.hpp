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
#define EMBER_FUSED_ALU_A(X, ...) \
  X(ADD, __VA_ARGS__) X(SUB, __VA_ARGS__) X(MUL, __VA_ARGS__) X(OR, __VA_ARGS__) X(AND, __VA_ARGS__) \
      X(XOR, __VA_ARGS__) X(LSH, __VA_ARGS__) X(RSH, __VA_ARGS__) X(ARSH, __VA_ARGS__) X(MOV, __VA_ARGS__)
#define EMBER_FUSED_ALU_B(X, ...) \
  X(ADD, __VA_ARGS__) X(SUB, __VA_ARGS__) X(MUL, __VA_ARGS__) X(OR, __VA_ARGS__) X(AND, __VA_ARGS__) \
      X(XOR, __VA_ARGS__) X(LSH, __VA_ARGS__) X(RSH, __VA_ARGS__) X(ARSH, __VA_ARGS__) X(MOV, __VA_ARGS__)
// X(op, type): loads that fuse with an ALU operation consuming the loaded value.
#define EMBER_FUSED_LOADS(X, ...) \
  X(LDX_B, uint8_t, __VA_ARGS__) X(LDX_H, uint16_t, __VA_ARGS__) X(LDX_W, uint32_t, __VA_ARGS__) \
      X(LDX_DW, uint64_t, __VA_ARGS__)
constexpr int kLoads = 4;

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

// Numbering after the plain ops: ALU pairs (a, b, a-imm?, b-imm?), then
// (load, ALU with a register source).
constexpr uint16_t kFirstAluPair = static_cast<uint16_t>(kNumOps);
constexpr uint16_t kFirstLoadAlu = kFirstAluPair + kAluKinds * kAluKinds * 4;
constexpr uint16_t kNumExecOps = kFirstLoadAlu + kLoads * kAluKinds;

// Rewrites `code` (the plain execution form) for the fast mode.
void fuse(std::vector<ExecInsn>& code);

}  // namespace ember::fused
