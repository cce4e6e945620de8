// Reads bpf_conformance .data files: sections "-- asm", "-- raw", "-- mem",
// "-- result", "-- error" (other sections, e.g. "-- c", are kept as notes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember::testing {

struct ConformanceCase {
  std::string name;  // file stem
  std::string asm_text;
  std::vector<uint64_t> raw;  // -- raw: 64-bit words replacing the asm
  std::vector<uint8_t> mem;
  std::optional<uint64_t> result;
  std::string error;
};

Result<ConformanceCase> read_conformance_case(const std::filesystem::path& file);
// All *.data files of a directory, sorted by name; empty if it is absent.
std::vector<std::filesystem::path> conformance_files(const std::filesystem::path& dir);
// The program's instruction slots: the raw section if present, else the
// assembled asm.
Result<std::vector<RawInsn>> conformance_program(const ConformanceCase& c);

}  // namespace ember::testing
