// Text around bytecode: the assembler (bpf_conformance syntax, and the
// llvm-objdump syntax the disassembler prints) and the disassembler.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember {

// Assembles text into instruction slots. Errors name the line.
Result<std::vector<RawInsn>> assemble(std::string_view text);

// One instruction in llvm-objdump syntax, e.g. "r0 = *(u32 *)(r1 + 0x4)".
std::string disassemble_insn(const Inst& inst, size_t pc);
// One instruction in bpf_conformance assembler syntax, e.g. "ldxw %r0, [%r1+4]".
std::string to_conformance_asm(const Inst& inst, size_t pc);

struct DisasmOptions {
  bool bytes = true;  // show the raw bytes like llvm-objdump -d
};
// A listing of the whole program, one line per instruction.
std::string disassemble(const Program& prog, const DisasmOptions& opts = {});

}  // namespace ember
