// Building raw instructions in tests without the assembler.
#pragma once

#include <vector>

#include "ember/isa.hpp"

namespace ember::testing {

inline RawInsn raw(uint8_t opcode, uint8_t dst = 0, uint8_t src = 0, int16_t off = 0, int32_t imm = 0) {
  RawInsn r;
  r.opcode = opcode;
  r.set_regs(dst, src);
  r.off = off;
  r.imm = imm;
  return r;
}

inline RawInsn mov64_imm(uint8_t dst, int32_t imm) { return raw(0xb7, dst, 0, 0, imm); }
inline RawInsn mov64_reg(uint8_t dst, uint8_t src) { return raw(0xbf, dst, src); }
inline RawInsn exit_insn() { return raw(0x95); }

}  // namespace ember::testing
