// A bounds-checked reader for x86-64 ELF executables and shared objects
// (ET_EXEC, ET_DYN): program headers, section headers, symbol tables with
// their GNU versions, and notes. Ember's loader (ember/elf.hpp) reads BPF
// relocatable objects; this one reads the files probes go into. Input is
// untrusted (fuzzed): every offset is checked, errors name the file and the
// section.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

struct ElfSegment {  // a PT_LOAD program header
  uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0;
  uint32_t flags = 0;  // PF_X 1, PF_W 2, PF_R 4
};

struct ElfSectionHeader {
  std::string name;
  uint32_t index = 0, type = 0, link = 0;
  uint64_t flags = 0, addr = 0, offset = 0, size = 0, entsize = 0, addralign = 0;
};

struct ElfSym {
  std::string_view name;        // without version
  std::string_view version;     // "" when unversioned
  bool hidden_version = false;  // "name@VER" (not the default "name@@VER")
  uint64_t value = 0, size = 0;
  uint16_t shndx = 0;
  uint8_t type = 0, bind = 0;  // STT_*, STB_*
};

struct ElfNote {
  uint32_t type = 0;
  std::string_view owner;
  std::span<const uint8_t> desc;
};

constexpr uint32_t kPfX = 1, kPfW = 2;
constexpr uint8_t kSttFunc = 2, kSttGnuIfunc = 10;
constexpr uint8_t kStbGlobal = 1, kStbWeak = 2;

class ElfImage {
 public:
  // Reads the whole file.
  static Result<ElfImage> open(const std::string& path);
  // Parses bytes it takes ownership of; `name` is used in error messages.
  static Result<ElfImage> parse(std::vector<uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  uint16_t type() const { return type_; }  // ET_EXEC 2, ET_DYN 3
  const std::vector<ElfSegment>& loads() const { return loads_; }
  const std::vector<ElfSectionHeader>& sections() const { return sections_; }
  const ElfSectionHeader* section(std::string_view name) const;
  // The section's bytes (empty for SHT_NOBITS); parse() checked the range.
  std::span<const uint8_t> data(const ElfSectionHeader& sec) const;

  // Calls fn for every symbol of .symtab (dynamic = false) or .dynsym (true);
  // a missing table is no symbols. Names with a version (from .gnu.version
  // and .gnu.version_d for .dynsym, from "name@VER"/"name@@VER" spelled in
  // .symtab) are split. Errors: a malformed table.
  Status for_each_symbol(bool dynamic, const std::function<void(const ElfSym&)>& fn) const;
  bool has_table(bool dynamic) const;

  // Every note of a SHT_NOTE section (owner and desc bounded).
  Result<std::vector<ElfNote>> notes(const ElfSectionHeader& sec) const;

  // vaddr -> file offset through the PT_LOAD whose file part holds it.
  Result<uint64_t> vaddr_to_offset(uint64_t vaddr) const;
  const ElfSegment* segment_of(uint64_t vaddr) const;

 private:
  // Version index -> name; the views point into bytes_.
  Result<std::vector<std::string_view>> version_names(const ElfSectionHeader& verdef) const;

  std::string name_;
  std::vector<uint8_t> bytes_;
  uint16_t type_ = 0;
  std::vector<ElfSegment> loads_;
  std::vector<ElfSectionHeader> sections_;
};

// "0x1a2b" -> the number it is written as.
std::string hex_string(uint64_t v);

}  // namespace ember::attach
