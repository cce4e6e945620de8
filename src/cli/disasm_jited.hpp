// `ember disasm --jited OBJ [--prog NAME] [-j] [--no-bytes]`.
#pragma once

#include <string>

namespace ember::cli {

struct JitedOptions {
  std::string path;
  std::string prog;  // name or SEC(); "" for every program
  bool json = false;
  bool bytes = true;
};

// Exit code: 0, or 1 if a program is missing, rejected by the verifier or
// not compiled (the others are still listed).
int disasm_jited(const JitedOptions& o);

}  // namespace ember::cli
