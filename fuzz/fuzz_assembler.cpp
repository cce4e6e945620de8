// Text -> assemble. Whatever assembles is decoded slot by slot and every
// instruction that decodes is printed in both syntaxes, so the assembler,
// the decoder and the disassembler all see what the assembler can produce.
// (Assembled text may jump out of range, so whole-program decoding is only
// tried, not required.)
#include <string>
#include <string_view>

#include "ember/asm.hpp"
#include "ember/isa.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto insns = ember::assemble(text);
  if (!insns) return 0;
  for (size_t i = 0; i < insns->size(); ++i) {
    auto inst = ember::decode_insn(*insns, i);
    if (!inst) continue;
    ember::disassemble_insn(*inst, i);
    ember::to_conformance_asm(*inst, i);
    if (inst->op == ember::Op::LDDW) ++i;  // its second slot
  }
  if (auto prog = ember::decode(*insns)) ember::disassemble(*prog);
  return 0;
}
