// Typed IR -> text. Instructions print as llvm-objdump -d prints BPF (LLVM 18
// and later: hexadecimal immediates and offsets); the listing has its layout
// (index, raw bytes, text). The templates come from asm_syntax, which the
// assembler matches against, so every printed line assembles back.
#include <cstdio>

#include "ember/asm.hpp"
#include "isa/asm_syntax.hpp"

namespace ember {

using asm_syntax::Syntax;

std::string disassemble_insn(const Inst& inst, size_t /*pc*/) {
  return asm_syntax::render(asm_syntax::template_for(inst.op, inst.pseudo(), Syntax::Llvm), inst);
}

std::string to_conformance_asm(const Inst& inst, size_t /*pc*/) {
  Pseudo p = inst.info().form == Form::LdImm64 ? inst.pseudo() : Pseudo::None;
  return asm_syntax::render(asm_syntax::template_for(inst.op, p, Syntax::Conformance), inst);
}

namespace {

void append_bytes(std::string& out, const RawInsn& r) {
  const auto* b = reinterpret_cast<const uint8_t*>(&r);
  char buf[4];
  for (size_t k = 0; k < sizeof r; ++k) {
    std::snprintf(buf, sizeof buf, k == 0 ? "%02x" : " %02x", b[k]);
    out += buf;
  }
}

}  // namespace

std::string disassemble(const Program& prog, const DisasmOptions& opts) {
  std::string out;
  char index[32];
  for (size_t i = 0; i < prog.insts.size(); ++i) {
    const Inst& inst = prog.insts[i];
    if (inst.second_half) continue;
    std::snprintf(index, sizeof index, "%8zu:\t", i);
    out += index;
    if (opts.bytes && i < prog.raw.size()) {
      append_bytes(out, prog.raw[i]);
      if (inst.op == Op::LDDW && i + 1 < prog.raw.size()) {
        out += ' ';
        append_bytes(out, prog.raw[i + 1]);
      }
      out += '\t';
    }
    out += disassemble_insn(inst, i);
    out += '\n';
  }
  return out;
}

}  // namespace ember
