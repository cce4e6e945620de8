// Bytes -> decode_bytes. Whatever decodes must encode back to the very same
// bytes: the decoder rejects every reserved field that is set, so the typed
// IR holds all the information of the slots it came from. And every
// instruction printed in either syntax must assemble back to its slots.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ember/asm.hpp"
#include "ember/isa.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto prog = ember::decode_bytes({data, size});
  if (!prog) return 0;
  std::vector<ember::RawInsn> out;
  for (const ember::Inst& inst : prog->insts) ember::encode(inst, out);
  std::vector<uint8_t> bytes = ember::insns_to_bytes(out);
  if (bytes.size() != size || std::memcmp(bytes.data(), data, size) != 0) {
    size_t i = 0;
    while (i < bytes.size() && i < size && bytes[i] == data[i]) ++i;
    std::fprintf(stderr, "decode/encode round trip differs at byte %zu (slot %zu): %zu bytes in, %zu out\n",
                 i, i / 8, size, bytes.size());
    std::abort();
  }
  for (size_t i = 0; i < prog->insts.size(); ++i) {
    const ember::Inst& inst = prog->insts[i];
    if (inst.second_half) continue;
    std::vector<ember::RawInsn> want;
    ember::encode(inst, want);
    for (const std::string& text : {ember::disassemble_insn(inst, i), ember::to_conformance_asm(inst, i)}) {
      auto back = ember::assemble(text);
      if (!back || back->size() != want.size() ||
          std::memcmp(back->data(), want.data(), want.size() * sizeof(ember::RawInsn)) != 0) {
        std::fprintf(stderr, "slot %zu: '%s' does not assemble back to its bytes: %s\n", i, text.c_str(),
                     back ? "different bytes" : back.error().message.c_str());
        std::abort();
      }
    }
  }
  return 0;
}
