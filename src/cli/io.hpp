// Reading what users hand the command: files, hex, and programs in any of
// the formats the command accepts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/btf.hpp"
#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/object.hpp"
#include "ember/result.hpp"

namespace ember::cli {

Result<std::vector<uint8_t>> read_file(const std::string& path);
Status write_file(const std::string& path, const std::vector<uint8_t>& bytes);
// Hex bytes, whitespace allowed between pairs ("b7 00 ..." or "b700...").
Result<std::vector<uint8_t>> parse_hex(std::string_view text, const std::string& what);
std::string to_hex(const std::vector<uint8_t>& bytes);

enum class Format { Auto, Raw, Asm, Elf, Hex };
Result<Format> parse_format(const std::string& name);

// A program's slots from a file: raw bytecode, assembler text, hex text, or
// (for ELF objects) one code section chosen by name or the only one.
struct LoadedCode {
  std::vector<RawInsn> insns;
  std::string origin;  // "file.o section xdp" etc. for messages
};
Result<LoadedCode> load_code(const std::string& path, Format format, const std::string& section);
Format detect_format(const std::vector<uint8_t>& bytes);

// A JSON string literal: quotes, backslashes and control characters escaped.
std::string json_text(const std::string& v);

// "; the source text @ file.c:LINE", as `ember objdump` shows BTF line info.
std::string source_comment(const BtfLineInfo& l);

// What listings add after an instruction of a linked program: the map,
// global or extern an ld_imm64 names, the helper a call calls
// ("  ; map counts", "  ; bpf_map_lookup_elem"); "" for the others.
class InsnNotes {
 public:
  explicit InsnNotes(const ObjectProgram& p);
  std::string operator()(size_t index, const Inst& insn) const;

 private:
  std::map<size_t, std::string> refs_;
  HelperTable helpers_;
};

}  // namespace ember::cli
