// Bytes -> decode_bytes. Whatever decodes must encode back to the very same
// bytes: the decoder rejects every reserved field that is set, so the typed
// IR holds all the information of the slots it came from.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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
    std::fprintf(stderr, "decode/encode round trip differs at byte %zu (slot %zu): %zu bytes in, %zu out\n", i, i / 8,
                 size, bytes.size());
    std::abort();
  }
  return 0;
}
