// A bounds-checked reader for ELF64 little-endian BPF objects built by clang.
// This is the bottom of the loader: sections, symbols, relocations.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/result.hpp"

namespace ember {

struct ElfSymbol {
  std::string name;
  uint64_t value = 0;
  uint64_t size = 0;
  uint16_t section = 0;
  uint8_t type = 0;  // STT_*
  uint8_t bind = 0;  // STB_*
};

struct ElfSection {
  std::string name;
  uint32_t index = 0;
  uint32_t type = 0;
  uint64_t flags = 0;
  uint32_t link = 0;
  uint32_t info = 0;
  std::span<const uint8_t> data;  // empty for SHT_NOBITS
  uint64_t size = 0;
};

struct ElfReloc {
  uint64_t offset = 0;
  uint32_t symbol = 0;
  uint32_t type = 0;
};

class ElfFile {
 public:
  // Parses and validates headers, section table and symbol table. `bytes`
  // must outlive the ElfFile. `name` is used in error messages.
  static Result<ElfFile> parse(std::span<const uint8_t> bytes, std::string name);
  static bool looks_like_elf(std::span<const uint8_t> bytes);

  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }
  const ElfSection* section(std::string_view name) const;
  // Executable sections holding BPF code (SHF_EXECINSTR, non-empty).
  std::vector<const ElfSection*> code_sections() const;
  // Function symbols defined in a section, sorted by offset.
  std::vector<const ElfSymbol*> functions_in(uint32_t section_index) const;
  // Relocations that apply to a section (from its SHT_REL section).
  Result<std::vector<ElfReloc>> relocations_for(uint32_t section_index) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<ElfSection> sections_;
  std::vector<ElfSymbol> symbols_;
};

}  // namespace ember
