#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember::cli {

struct ObjectRunOptions {
  std::string prog;  // name or SEC(); "" when the object has one program
  std::vector<uint8_t> data_in, ctx_in;
  std::string data_out, ctx_out;  // files; "" prints data out instead
  uint32_t repeat = 1;
  uint64_t budget = 100'000'000;
  uint64_t seed = 0;
  bool dump_maps = false;
  bool json = false;
  bool unverified = false;  // skip the verifier: checked mode, never the JIT
  bool interp = false;      // the interpreter, not the JIT
};

int run_object(const std::string& path, const ObjectRunOptions& o);

}  // namespace ember::cli
