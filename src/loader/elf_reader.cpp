// A bounds-checked reader for the ELF64 little-endian EM_BPF relocatable
// objects that `clang -target bpf -c` writes. The input is untrusted (it is
// fuzzed): every offset, size, count and index read from the file is checked
// before it is used, with arithmetic that cannot overflow, so any byte string
// yields either an ElfFile or an Error that says what is wrong and where.
// Every loop is bounded by the file size or by a 16-bit count.
#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "ember/elf.hpp"

namespace ember {
namespace {

// Sizes and constants of the System V gABI, named after <elf.h>.
constexpr uint64_t kEhdrSize = 64;  // sizeof(Elf64_Ehdr)
constexpr uint64_t kShdrSize = 64;  // sizeof(Elf64_Shdr)
constexpr uint64_t kSymSize = 24;   // sizeof(Elf64_Sym)
constexpr uint64_t kRelSize = 16;   // sizeof(Elf64_Rel)
constexpr uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr uint8_t kClass64 = 2;      // ELFCLASS64
constexpr uint8_t kDataLsb = 1;      // ELFDATA2LSB
constexpr uint16_t kTypeRel = 1;     // ET_REL
constexpr uint16_t kMachineBpf = 247;  // EM_BPF
constexpr uint32_t kShtNull = 0, kShtSymtab = 2, kShtStrtab = 3, kShtRela = 4, kShtNobits = 8, kShtRel = 9;
constexpr uint32_t kShtProgbits = 1;
constexpr uint64_t kShfExecinstr = 0x4;
constexpr uint8_t kSttFunc = 2;
constexpr uint16_t kShnLoreserve = 0xff00;  // section indices from here up are special (ABS, COMMON...)
constexpr uint16_t kShnXindex = 0xffff;     // "the real index is elsewhere" (extended numbering)

// No BPF name comes near this (the kernel's KSYM_NAME_LEN is 512); the cap
// keeps a hostile file from making every symbol copy one huge string.
constexpr size_t kMaxNameLength = 4096;

// Relocation types of the BPF backend (llvm/BinaryFormat/ELFRelocs/BPF.def).
constexpr uint32_t kRelBpf64_64 = 1, kRelBpfAbs64 = 2, kRelBpfAbs32 = 3, kRelBpfNodyld32 = 4, kRelBpf64_32 = 10;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// True when [off, off + len) lies inside a buffer of `total` bytes. Written
// so that no sum can wrap around.
bool fits(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

// Reads a little-endian unsigned integer; the caller has checked the range.
// Byte by byte, so neither the host's byte order nor alignment matters.
template <class T>
T load(std::span<const uint8_t> b, uint64_t off) {
  assert(fits(off, sizeof(T), b.size()));
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{b[off + i]} << (8 * i);
  return static_cast<T>(v);
}

// The fields of Elf64_Ehdr this reader needs.
struct Header {
  uint64_t shoff = 0;
  uint16_t shentsize = 0, shnum = 0, shstrndx = 0;
};

// The fields of Elf64_Shdr this reader needs.
struct RawSection {
  uint32_t name = 0, type = 0, link = 0, info = 0;
  uint64_t flags = 0, offset = 0, size = 0, entsize = 0;
};

// Why a string could not be read, or the string; the caller says where.
Result<std::string> string_at(std::span<const uint8_t> table, uint64_t off) {
  if (off >= table.size()) return fail("name offset ", hex(off), " outside string table (size ", hex(table.size()), ")");
  const uint8_t* start = table.data() + off;
  size_t room = table.size() - off;
  const void* nul = std::memchr(start, 0, std::min(room, kMaxNameLength + 1));
  if (!nul) {
    if (room > kMaxNameLength) return fail("name at offset ", hex(off), " is longer than ", kMaxNameLength, " bytes");
    return fail("name at offset ", hex(off), " is not NUL-terminated within the string table");
  }
  return std::string(reinterpret_cast<const char*>(start), static_cast<const uint8_t*>(nul) - start);
}

Result<Header> read_header(std::span<const uint8_t> b, const std::string& file) {
  if (b.size() < sizeof kMagic || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0)
    return fail(file, ": not an ELF file (no \\x7fELF magic)");
  if (b.size() < kEhdrSize)
    return fail(file, ": truncated ELF header: file is ", b.size(), " bytes, the header needs ", kEhdrSize);
  if (b[4] != kClass64)
    return fail(file, ": ELF class ", int{b[4]}, b[4] == 1 ? " (32-bit)" : "", " is not supported: expected ELFCLASS64 (2)");
  if (b[5] != kDataLsb)
    return fail(file, ": ELF data encoding ", int{b[5]}, b[5] == 2 ? " (big-endian)" : "",
                " is not supported: expected little-endian ELFDATA2LSB (1)");
  uint16_t type = load<uint16_t>(b, 16), machine = load<uint16_t>(b, 18);
  if (machine != kMachineBpf) return fail(file, ": e_machine ", machine, " is not EM_BPF (247)");
  if (type != kTypeRel) return fail(file, ": e_type ", type, " is not ET_REL (1): expected an object from clang -c");
  Header h;
  h.shoff = load<uint64_t>(b, 40);
  h.shentsize = load<uint16_t>(b, 58);
  h.shnum = load<uint16_t>(b, 60);
  h.shstrndx = load<uint16_t>(b, 62);
  return h;
}

// Checks where the section header table lies; clang's objects have a few
// dozen sections at most, so extended numbering (e_shnum 0 with the count in
// section 0) is refused rather than supported.
Status check_section_table(const Header& h, uint64_t file_size, const std::string& file) {
  if (h.shentsize != kShdrSize) return fail(file, ": e_shentsize ", h.shentsize, " is not ", kShdrSize);
  if (h.shnum == 0) {
    if (h.shoff != 0) return fail(file, ": e_shnum 0 with e_shoff ", hex(h.shoff), ": extended section numbering is not supported");
    return fail(file, ": no section header table (e_shnum 0)");
  }
  if (!fits(h.shoff, uint64_t{h.shnum} * kShdrSize, file_size))
    return fail(file, ": section header table at e_shoff ", hex(h.shoff), " with e_shnum ", h.shnum, " (", hex(uint64_t{h.shnum} * kShdrSize),
                " bytes) is outside the file (size ", hex(file_size), ")");
  if (h.shstrndx == kShnXindex) return fail(file, ": e_shstrndx SHN_XINDEX: extended section numbering is not supported");
  if (h.shstrndx == 0 || h.shstrndx >= h.shnum)
    return fail(file, ": e_shstrndx ", h.shstrndx, " is not a section (", h.shnum, " sections)");
  return ok_status();
}

std::vector<RawSection> read_section_headers(std::span<const uint8_t> b, const Header& h) {
  std::vector<RawSection> out(h.shnum);
  for (uint64_t i = 0; i < h.shnum; ++i) {
    uint64_t at = h.shoff + i * kShdrSize;
    RawSection& s = out[i];
    s.name = load<uint32_t>(b, at);
    s.type = load<uint32_t>(b, at + 4);
    s.flags = load<uint64_t>(b, at + 8);
    s.offset = load<uint64_t>(b, at + 24);
    s.size = load<uint64_t>(b, at + 32);
    s.link = load<uint32_t>(b, at + 40);
    s.info = load<uint32_t>(b, at + 44);
    s.entsize = load<uint64_t>(b, at + 56);
  }
  return out;
}

// "symbol 12 (name)", or "symbol 12" for an unnamed one.
std::string symbol_where(uint64_t index, const std::string& name) {
  std::string s = "symbol " + std::to_string(index);
  if (!name.empty()) s += " (" + name + ")";
  return s;
}

// "section 5 (.text)", or "section 5" while names are not known yet.
std::string where(uint64_t index, const std::string& name) {
  std::string s = "section " + std::to_string(index);
  if (!name.empty()) s += " (" + name + ")";
  return s;
}

// Whether a section's bytes are stored in the file (SHT_NOBITS, like .bss,
// only has a size; SHT_NULL has nothing at all).
bool has_file_data(uint32_t type) { return type != kShtNobits && type != kShtNull; }

Status check_data_range(const RawSection& s, const std::string& label, uint64_t file_size, const std::string& file) {
  if (!has_file_data(s.type) || fits(s.offset, s.size, file_size)) return ok_status();
  return fail(file, ": ", label, ": data at offset ", hex(s.offset), " size ", hex(s.size), " is outside the file (size ",
              hex(file_size), ")");
}

// The section-name string table, checked before any name is looked up.
Result<std::span<const uint8_t>> section_names(std::span<const uint8_t> b, const std::vector<RawSection>& raw,
                                               uint16_t shstrndx, const std::string& file) {
  const RawSection& s = raw[shstrndx];
  std::string label = where(shstrndx, "") + " (e_shstrndx)";
  if (s.type != kShtStrtab) return fail(file, ": ", label, ": type ", s.type, " is not SHT_STRTAB (3)");
  auto range = check_data_range(s, label, b.size(), file);
  if (!range) return range.error();
  return b.subspan(s.offset, s.size);
}

Result<std::vector<ElfSection>> build_sections(std::span<const uint8_t> b, const std::vector<RawSection>& raw,
                                               std::span<const uint8_t> names, const std::string& file) {
  std::vector<ElfSection> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const RawSection& s = raw[i];
    auto name = string_at(names, s.name);
    if (!name) return fail(file, ": ", where(i, ""), ": ", name.error().message);
    auto range = check_data_range(s, where(i, *name), b.size(), file);
    if (!range) return range.error();
    ElfSection& e = out[i];
    e.name = std::move(*name);
    e.index = static_cast<uint32_t>(i);
    e.type = s.type;
    e.flags = s.flags;
    e.link = s.link;
    e.info = s.info;
    e.size = s.size;
    if (has_file_data(s.type)) e.data = b.subspan(s.offset, s.size);
  }
  return out;
}

// The one SHT_SYMTAB section, or nullptr if the object has none.
Result<const ElfSection*> find_symtab(const std::vector<ElfSection>& secs, const std::string& file) {
  const ElfSection* found = nullptr;
  for (const ElfSection& s : secs) {
    if (s.type != kShtSymtab) continue;
    if (found) return fail(file, ": more than one symbol table (", where(found->index, found->name), " and ", where(s.index, s.name), ")");
    found = &s;
  }
  return found;
}

// Checks the symbol table's layout and returns its string table.
Result<std::span<const uint8_t>> symbol_names(const std::vector<ElfSection>& secs, const ElfSection& symtab, uint64_t entsize,
                                              const std::string& file) {
  std::string label = file + ": " + where(symtab.index, symtab.name);
  if (entsize != kSymSize) return fail(label, ": sh_entsize ", entsize, " is not ", kSymSize, " (Elf64_Sym)");
  if (symtab.data.size() % kSymSize != 0)
    return fail(label, ": size ", hex(symtab.data.size()), " is not a multiple of ", kSymSize, " (Elf64_Sym)");
  if (symtab.link == 0 || symtab.link >= secs.size())
    return fail(label, ": sh_link ", symtab.link, " is not a section (", secs.size(), " sections)");
  const ElfSection& strtab = secs[symtab.link];
  if (strtab.type != kShtStrtab)
    return fail(label, ": sh_link ", symtab.link, " names ", where(strtab.index, strtab.name), " of type ", strtab.type,
                ", not SHT_STRTAB (3)");
  return strtab.data;
}

Result<ElfSymbol> read_symbol(std::span<const uint8_t> table, uint64_t i, std::span<const uint8_t> names,
                              size_t num_sections, const std::string& file) {
  uint64_t at = i * kSymSize;
  auto name = string_at(names, load<uint32_t>(table, at));
  if (!name) return fail(file, ": symbol ", i, ": ", name.error().message);
  ElfSymbol sym;
  sym.name = std::move(*name);
  uint8_t info = load<uint8_t>(table, at + 4);
  sym.type = info & 0xf;
  sym.bind = info >> 4;
  sym.section = load<uint16_t>(table, at + 6);
  sym.value = load<uint64_t>(table, at + 8);
  sym.size = load<uint64_t>(table, at + 16);
  if (sym.section == kShnXindex)
    return fail(file, ": ", symbol_where(i, sym.name), ": section index SHN_XINDEX: extended section numbering is not supported");
  if (sym.section < kShnLoreserve && sym.section >= num_sections)
    return fail(file, ": ", symbol_where(i, sym.name), ": section index ", sym.section, " is not a section (", num_sections,
                " sections)");
  return sym;
}

// All symbols, index 0 (the null symbol) included, so that relocation symbol
// numbers index the vector directly.
Result<std::vector<ElfSymbol>> read_symbols(const std::vector<ElfSection>& secs, const std::vector<RawSection>& raw,
                                            const std::string& file) {
  auto symtab = find_symtab(secs, file);
  if (!symtab) return symtab.error();
  if (!*symtab) return std::vector<ElfSymbol>{};
  const ElfSection& st = **symtab;
  auto names = symbol_names(secs, st, raw[st.index].entsize, file);
  if (!names) return names.error();
  std::vector<ElfSymbol> out;
  out.reserve(st.data.size() / kSymSize);
  for (uint64_t i = 0; i < st.data.size() / kSymSize; ++i) {
    auto sym = read_symbol(st.data, i, *names, secs.size(), file);
    if (!sym) return sym.error();
    out.push_back(std::move(*sym));
  }
  return out;
}

// Layout checks for every SHT_REL section; the entries themselves are checked
// when relocations_for reads them.
Status check_rel_sections(const std::vector<ElfSection>& secs, const std::vector<RawSection>& raw, const std::string& file) {
  for (const ElfSection& s : secs) {
    if (s.type != kShtRel) continue;
    std::string label = file + ": " + where(s.index, s.name);
    if (raw[s.index].entsize != kRelSize) return fail(label, ": sh_entsize ", raw[s.index].entsize, " is not ", kRelSize, " (Elf64_Rel)");
    if (s.data.size() % kRelSize != 0)
      return fail(label, ": size ", hex(s.data.size()), " is not a multiple of ", kRelSize, " (Elf64_Rel)");
    if (s.link == 0 || s.link >= secs.size() || secs[s.link].type != kShtSymtab)
      return fail(label, ": sh_link ", s.link, " is not the symbol table");
    if (s.info == 0 || s.info >= secs.size())
      return fail(label, ": sh_info ", s.info, " is not a section (", secs.size(), " sections)");
  }
  return ok_status();
}

// How many bytes at r_offset a relocation of this type rewrites: an
// ld_imm64 spans two slots, a call one slot; unknown types get one byte so
// that at least the offset itself must lie inside the section.
uint64_t reloc_width(uint32_t type) {
  switch (type) {
    case kRelBpf64_64: return 16;
    case kRelBpfAbs64: return 8;
    case kRelBpfAbs32: return 4;
    case kRelBpfNodyld32: return 4;
    case kRelBpf64_32: return 8;
    default: return 1;
  }
}

std::string reloc_type_name(uint32_t type) {
  switch (type) {
    case kRelBpf64_64: return "R_BPF_64_64";
    case kRelBpfAbs64: return "R_BPF_64_ABS64";
    case kRelBpfAbs32: return "R_BPF_64_ABS32";
    case kRelBpfNodyld32: return "R_BPF_64_NODYLD32";
    case kRelBpf64_32: return "R_BPF_64_32";
    default: return "type " + std::to_string(type);
  }
}

}  // namespace

bool ElfFile::looks_like_elf(std::span<const uint8_t> bytes) {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

Result<ElfFile> ElfFile::parse(std::span<const uint8_t> bytes, std::string name) {
  auto header = read_header(bytes, name);
  if (!header) return header.error();
  auto table = check_section_table(*header, bytes.size(), name);
  if (!table) return table.error();
  std::vector<RawSection> raw = read_section_headers(bytes, *header);
  auto names = section_names(bytes, raw, header->shstrndx, name);
  if (!names) return names.error();
  auto sections = build_sections(bytes, raw, *names, name);
  if (!sections) return sections.error();
  auto symbols = read_symbols(*sections, raw, name);
  if (!symbols) return symbols.error();
  auto rels = check_rel_sections(*sections, raw, name);
  if (!rels) return rels.error();
  ElfFile f;
  f.name_ = std::move(name);
  f.sections_ = std::move(*sections);
  f.symbols_ = std::move(*symbols);
  return f;
}

const ElfSection* ElfFile::section(std::string_view name) const {
  for (const ElfSection& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<const ElfSection*> ElfFile::code_sections() const {
  std::vector<const ElfSection*> out;
  for (const ElfSection& s : sections_)
    if (s.type == kShtProgbits && (s.flags & kShfExecinstr) && !s.data.empty()) out.push_back(&s);
  return out;
}

std::vector<const ElfSymbol*> ElfFile::functions_in(uint32_t section_index) const {
  std::vector<const ElfSymbol*> out;
  for (const ElfSymbol& s : symbols_)
    if (s.type == kSttFunc && s.section == section_index && section_index != 0) out.push_back(&s);
  std::stable_sort(out.begin(), out.end(), [](const ElfSymbol* a, const ElfSymbol* b) { return a->value < b->value; });
  return out;
}

Result<std::vector<ElfReloc>> ElfFile::relocations_for(uint32_t section_index) const {
  if (section_index == 0 || section_index >= sections_.size())
    return fail(name_, ": relocations for section ", section_index, ": no such section (", sections_.size(), " sections)");
  const ElfSection& target = sections_[section_index];
  std::vector<ElfReloc> out;
  // Several SHT_REL sections may name the same target; their entries are
  // concatenated in section order.
  for (const ElfSection& rel : sections_) {
    if (rel.info != section_index) continue;
    if (rel.type == kShtRela)
      return fail(name_, ": ", where(rel.index, rel.name), ": SHT_RELA relocations are not supported (clang emits SHT_REL for BPF)");
    if (rel.type != kShtRel) continue;
    for (uint64_t i = 0; i < rel.data.size() / kRelSize; ++i) {
      ElfReloc r;
      r.offset = load<uint64_t>(rel.data, i * kRelSize);
      uint64_t info = load<uint64_t>(rel.data, i * kRelSize + 8);
      r.type = static_cast<uint32_t>(info & 0xffffffff);
      uint64_t symbol = info >> 32;
      std::string label = name_ + ": " + where(rel.index, rel.name) + ": relocation " + std::to_string(i);
      if (symbol >= symbols_.size())
        return fail(label, ": symbol ", symbol, " out of range (", symbols_.size(), " symbols)");
      r.symbol = static_cast<uint32_t>(symbol);
      uint64_t width = reloc_width(r.type);
      if (!fits(r.offset, width, target.size))
        return fail(label, ": offset ", hex(r.offset), " (", reloc_type_name(r.type), ", ", width, " bytes) is outside ",
                    where(target.index, target.name), " (size ", hex(target.size), ")");
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace ember
