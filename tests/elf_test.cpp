// The ELF reader on the objects clang builds from tests/bpf/*.bpf.c, checked
// against llvm-objdump where it is installed, and on corrupted copies of them:
// every corruption must give an error that says what and where, never a crash.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ember/elf.hpp"
#include "ember/isa.hpp"

namespace ember {
namespace {

constexpr uint32_t kShtProgbits = 1, kShtNobits = 8, kShtRel = 9;
constexpr uint64_t kShfExecinstr = 0x4;
constexpr uint8_t kSttSection = 3;
constexpr uint8_t kStbGlobal = 1;
constexpr uint32_t kRelBpf64_64 = 1, kRelBpf64_32 = 10;

const char* const kObjects[] = {"sum_loop", "subprog", "maps_and_helpers"};

std::string obj_path(const std::string& stem) { return std::string(EMBER_BPF_OBJ_DIR) + "/" + stem + ".bpf.o"; }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path << " (tests/bpf objects are built with ember_tests)";
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An object's bytes and its parse; the bytes live as long as the ElfFile.
struct Loaded {
  std::vector<uint8_t> bytes;
  ElfFile elf;
};

Loaded load(const std::string& stem) {
  std::vector<uint8_t> bytes = read_bytes(obj_path(stem));
  auto elf = ElfFile::parse(bytes, stem + ".bpf.o");
  if (!elf) ADD_FAILURE() << elf.error().message;
  // The vector's heap buffer moves with it, so the spans stay valid.
  return Loaded{std::move(bytes), elf ? std::move(*elf) : ElfFile{}};
}

template <class T>
T get_le(const std::vector<uint8_t>& b, size_t off) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{b.at(off + i)} << (8 * i);
  return static_cast<T>(v);
}

template <class T>
void put_le(std::vector<uint8_t>& b, size_t off, T value) {
  uint64_t v = static_cast<uint64_t>(value);
  for (size_t i = 0; i < sizeof(T); ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}

// Where field `field` of section header `index` lies in the file.
size_t shdr_field(const std::vector<uint8_t>& b, uint32_t index, size_t field) {
  return get_le<uint64_t>(b, 40) + size_t{index} * 64 + field;
}
constexpr size_t kShName = 0, kShOffset = 24, kShSize = 32, kShLink = 40, kShEntsize = 56;

std::string error_of(const std::vector<uint8_t>& bytes, const std::string& name = "bad.o") {
  auto elf = ElfFile::parse(bytes, name);
  if (elf) return "(parsed without error)";
  return elf.error().message;
}

// Runs a shell command and returns what it printed, or "" if it failed.
std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return pclose(p) == 0 ? out : "";
}

bool have_objdump() { return std::system("command -v llvm-objdump-14 >/dev/null 2>&1") == 0; }

// Calls everything an ElfFile offers; used on corrupted inputs that parse.
void walk(const ElfFile& elf) {
  for (const ElfSection& s : elf.sections()) {
    EXPECT_LE(s.data.size(), s.size);
    if (s.index == 0) continue;
    auto rel = elf.relocations_for(s.index);
    if (rel) {
      for (const ElfReloc& r : *rel) EXPECT_LT(r.symbol, elf.symbols().size());
    } else {
      EXPECT_NE(rel.error().message.find("section"), std::string::npos) << rel.error().message;
    }
    for (const ElfSymbol* f : elf.functions_in(s.index)) EXPECT_EQ(f->section, s.index);
  }
  for (const ElfSection* c : elf.code_sections()) EXPECT_FALSE(c->data.empty());
}

TEST(ElfReader, ParsesEveryObject) {
  for (const char* stem : kObjects) {
    SCOPED_TRACE(stem);
    Loaded o = load(stem);
    const ElfSection* text = o.elf.section(".text");
    const ElfSection* socket = o.elf.section("socket");
    ASSERT_NE(text, nullptr);
    ASSERT_NE(socket, nullptr);
    EXPECT_EQ(socket->type, kShtProgbits);
    EXPECT_TRUE(socket->flags & kShfExecinstr);
    EXPECT_TRUE(text->flags & kShfExecinstr);
    EXPECT_EQ(socket->data.size() % 8, 0u);
    ASSERT_NE(o.elf.section(".BTF"), nullptr);
    ASSERT_NE(o.elf.section(".symtab"), nullptr);
    const ElfSection* license = o.elf.section("license");
    ASSERT_NE(license, nullptr);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(license->data.data()), license->data.size()),
              std::string("GPL\0", 4));
    for (size_t i = 0; i < o.elf.sections().size(); ++i) EXPECT_EQ(o.elf.sections()[i].index, i);
    EXPECT_EQ(o.elf.name(), std::string(stem) + ".bpf.o");
    walk(o.elf);
  }
}

TEST(ElfReader, LooksLikeElfChecksTheMagicOnly) {
  const uint8_t magic[] = {0x7f, 'E', 'L', 'F'};
  const uint8_t short_magic[] = {0x7f, 'E', 'L'};
  const uint8_t other[] = {0x7f, 'E', 'L', 'G', 2, 1, 1};
  EXPECT_TRUE(ElfFile::looks_like_elf(magic));
  EXPECT_FALSE(ElfFile::looks_like_elf(short_magic));
  EXPECT_FALSE(ElfFile::looks_like_elf(other));
  EXPECT_FALSE(ElfFile::looks_like_elf({}));
  EXPECT_TRUE(ElfFile::looks_like_elf(read_bytes(obj_path("sum_loop"))));
}

TEST(ElfReader, CodeSectionsAreNonEmptyExecutableProgbits) {
  Loaded sum = load("sum_loop");
  auto code = sum.elf.code_sections();
  ASSERT_EQ(code.size(), 1u);  // .text is empty here: no subprograms
  EXPECT_EQ(code[0]->name, "socket");

  Loaded sub = load("subprog");
  code = sub.elf.code_sections();
  ASSERT_EQ(code.size(), 2u);
  EXPECT_EQ(code[0]->name, ".text");
  EXPECT_EQ(code[1]->name, "socket");
}

TEST(ElfReader, SumLoopHasABackwardJumpAndNoRelocations) {
  Loaded o = load("sum_loop");
  const ElfSection* socket = o.elf.section("socket");
  ASSERT_NE(socket, nullptr);
  auto rel = o.elf.relocations_for(socket->index);
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(rel->empty());
  auto funcs = o.elf.functions_in(socket->index);
  ASSERT_EQ(funcs.size(), 1u);
  EXPECT_EQ(funcs[0]->name, "sum_loop");
  EXPECT_EQ(funcs[0]->value, 0u);
  EXPECT_EQ(funcs[0]->size, socket->size);
  EXPECT_EQ(funcs[0]->bind, kStbGlobal);

  // With nothing to relocate the section is a complete program.
  auto prog = decode_bytes(socket->data);
  ASSERT_TRUE(prog) << prog.error().message;
  bool backward = false;
  for (size_t i = 0; i < prog->insts.size(); ++i) {
    const Inst& in = prog->insts[i];
    if (!in.second_half && in.info().form == Form::Ja && in.target <= i) backward = true;
  }
  EXPECT_TRUE(backward) << "the loop should stay a loop (unroll disabled)";
}

TEST(ElfReader, SubprogramCallsAreR_BPF_64_32) {
  Loaded o = load("subprog");
  const ElfSection* text = o.elf.section(".text");
  const ElfSection* socket = o.elf.section("socket");
  ASSERT_TRUE(text && socket);

  auto funcs = o.elf.functions_in(text->index);
  ASSERT_EQ(funcs.size(), 2u);
  for (size_t i = 1; i < funcs.size(); ++i) EXPECT_LT(funcs[i - 1]->value, funcs[i]->value);
  std::map<std::string, const ElfSymbol*> by_name;
  for (const ElfSymbol* f : funcs) by_name[f->name] = f;
  ASSERT_TRUE(by_name.count("square") && by_name.count("add_one"));
  EXPECT_EQ(by_name["add_one"]->bind, kStbGlobal);
  EXPECT_NE(by_name["square"]->bind, kStbGlobal);  // static

  auto rel = o.elf.relocations_for(socket->index);
  ASSERT_TRUE(rel) << rel.error().message;
  ASSERT_EQ(rel->size(), 3u);  // square twice (through the .text section symbol), add_one once
  auto insns = bytes_to_insns(socket->data);
  ASSERT_TRUE(insns);
  int to_text = 0, to_add_one = 0;
  for (const ElfReloc& r : *rel) {
    EXPECT_EQ(r.type, kRelBpf64_32);
    ASSERT_EQ(r.offset % 8, 0u);
    const RawInsn& call = (*insns)[r.offset / 8];
    EXPECT_EQ(call.opcode, 0x85);
    EXPECT_EQ(call.src(), 1);  // BPF_PSEUDO_CALL
    const ElfSymbol& sym = o.elf.symbols()[r.symbol];
    EXPECT_EQ(sym.section, text->index);
    if (sym.type == kSttSection) ++to_text;
    if (sym.name == "add_one") ++to_add_one;
  }
  EXPECT_EQ(to_text, 2);
  EXPECT_EQ(to_add_one, 1);
}

TEST(ElfReader, MapLookupAndGlobalDataAreR_BPF_64_64) {
  Loaded o = load("maps_and_helpers");
  const ElfSection* socket = o.elf.section("socket");
  const ElfSection* maps = o.elf.section(".maps");
  const ElfSection* bss = o.elf.section(".bss");
  ASSERT_TRUE(socket && maps && bss && o.elf.section(".data") && o.elf.section(".rodata"));
  EXPECT_EQ(bss->type, kShtNobits);
  EXPECT_TRUE(bss->data.empty());
  EXPECT_EQ(bss->size, 8u);
  EXPECT_FALSE(maps->flags & kShfExecinstr);

  auto rel = o.elf.relocations_for(socket->index);
  ASSERT_TRUE(rel) << rel.error().message;
  auto insns = bytes_to_insns(socket->data);
  ASSERT_TRUE(insns);
  std::map<std::string, std::string> section_of;  // symbol -> the section it lives in
  for (const ElfReloc& r : *rel) {
    EXPECT_EQ(r.type, kRelBpf64_64);
    ASSERT_EQ(r.offset % 8, 0u);
    ASSERT_LT(r.offset / 8 + 1, insns->size());
    EXPECT_EQ((*insns)[r.offset / 8].opcode, 0x18) << "an R_BPF_64_64 patches an ld_imm64";
    const ElfSymbol& sym = o.elf.symbols()[r.symbol];
    ASSERT_LT(sym.section, o.elf.sections().size());
    section_of[sym.name] = o.elf.sections()[sym.section].name;
  }
  EXPECT_EQ(section_of["counters"], ".maps");
  EXPECT_EQ(section_of["scale"], ".rodata");
  EXPECT_EQ(section_of["total"], ".data");
  EXPECT_EQ(section_of["calls"], ".bss");
  EXPECT_EQ(rel->size(), 4u);

  // The helper call is a plain call 1 (bpf_map_lookup_elem), not relocated.
  bool lookup = false;
  for (const RawInsn& r : *insns) lookup |= r.opcode == 0x85 && r.src() == 0 && r.imm == 1;
  EXPECT_TRUE(lookup);
}

TEST(ElfReader, DecodesEverySlotOfEveryCodeSection) {
  for (const char* stem : kObjects) {
    Loaded o = load(stem);
    for (const ElfSection* sec : o.elf.code_sections()) {
      SCOPED_TRACE(std::string(stem) + " " + sec->name);
      auto insns = bytes_to_insns(sec->data);
      ASSERT_TRUE(insns) << insns.error().message;
      for (size_t i = 0; i < insns->size(); ++i) {
        auto inst = decode_insn(*insns, i);
        ASSERT_TRUE(inst) << inst.error().message;
        if (inst->op == Op::LDDW) ++i;  // the second slot belongs to it
      }
    }
  }
}

// llvm-objdump -h: "  3 socket  000000d8 0000000000000000 TEXT".
std::map<std::string, uint64_t> objdump_section_sizes(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(capture("llvm-objdump-14 -h '" + path + "'"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    unsigned idx;
    std::string name, size;
    if (!(f >> idx >> name >> size) || idx == 0) continue;
    out[name] = std::stoull(size, nullptr, 16);
  }
  return out;
}

uint32_t reloc_type(const std::string& name) {
  static const std::map<std::string, uint32_t> types = {{"R_BPF_NONE", 0},        {"R_BPF_64_64", 1},
                                                        {"R_BPF_64_ABS64", 2},    {"R_BPF_64_ABS32", 3},
                                                        {"R_BPF_64_NODYLD32", 4}, {"R_BPF_64_32", 10}};
  auto it = types.find(name);
  return it == types.end() ? ~0u : it->second;
}

// llvm-objdump -r: per target section, "offset type symbol" lines.
std::map<std::string, std::vector<std::string>> objdump_relocs(const std::string& path) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(capture("llvm-objdump-14 -r '" + path + "'"));
  std::string line, current;
  const std::string head = "RELOCATION RECORDS FOR [";
  while (std::getline(in, line)) {
    if (line.rfind(head, 0) == 0) {
      current = line.substr(head.size(), line.find(']') - head.size());
      continue;
    }
    std::istringstream f(line);
    std::string off, type, sym;
    if (current.empty() || !(f >> off >> type >> sym) || off == "OFFSET") continue;
    std::ostringstream row;
    row << std::stoull(off, nullptr, 16) << " " << reloc_type(type) << " " << sym;
    out[current].push_back(row.str());
  }
  return out;
}

TEST(ElfReader, AgreesWithLlvmObjdump) {
  if (!have_objdump()) GTEST_SKIP() << "llvm-objdump-14 is not installed";
  for (const char* stem : kObjects) {
    SCOPED_TRACE(stem);
    Loaded o = load(stem);
    auto sizes = objdump_section_sizes(obj_path(stem));
    ASSERT_FALSE(sizes.empty());
    EXPECT_EQ(sizes.size() + 1, o.elf.sections().size());
    for (const auto& [name, size] : sizes) {
      const ElfSection* s = o.elf.section(name);
      ASSERT_NE(s, nullptr) << name;
      EXPECT_EQ(s->size, size) << name;
    }

    auto expected = objdump_relocs(obj_path(stem));
    ASSERT_FALSE(expected.empty());
    size_t sections_with_relocs = 0;
    for (const ElfSection& s : o.elf.sections()) {
      if (s.index == 0) continue;
      auto rel = o.elf.relocations_for(s.index);
      ASSERT_TRUE(rel) << rel.error().message;
      if (rel->empty()) continue;
      ++sections_with_relocs;
      std::vector<std::string> got;
      for (const ElfReloc& r : *rel) {
        const ElfSymbol& sym = o.elf.symbols()[r.symbol];
        // objdump names a section symbol after its section.
        std::string name = sym.type == kSttSection ? o.elf.sections().at(sym.section).name : sym.name;
        got.push_back(std::to_string(r.offset) + " " + std::to_string(r.type) + " " + name);
      }
      EXPECT_EQ(got, expected[s.name]) << s.name;
    }
    EXPECT_EQ(sections_with_relocs, expected.size());
  }
}

// ---- corrupted input: an error naming what and where, never a crash ----

TEST(ElfReader, EveryTruncationIsAnError) {
  for (const char* stem : kObjects) {
    std::vector<uint8_t> full = read_bytes(obj_path(stem));
    ASSERT_GT(full.size(), 64u);
    for (size_t len = 0; len < full.size(); ++len) {
      // A copy of exactly `len` bytes, so ASan catches any read past it.
      std::vector<uint8_t> cut(full.begin(), full.begin() + len);
      auto elf = ElfFile::parse(cut, "cut.o");
      ASSERT_FALSE(elf) << stem << " cut to " << len << " bytes parsed";
      const std::string& m = elf.error().message;
      ASSERT_EQ(m.rfind("cut.o: ", 0), 0u) << m;
      if (len < 4)
        EXPECT_NE(m.find("not an ELF file"), std::string::npos) << m;
      else if (len < 64)
        EXPECT_NE(m.find("truncated ELF header"), std::string::npos) << m;
      else
        EXPECT_NE(m.find("outside the file"), std::string::npos) << m;
    }
  }
}

TEST(ElfReader, RejectsTheWrongKindOfElf) {
  std::vector<uint8_t> good = read_bytes(obj_path("sum_loop"));
  std::vector<uint8_t> b = good;
  b[4] = 1;  // ELFCLASS32
  EXPECT_EQ(error_of(b), "bad.o: ELF class 1 (32-bit) is not supported: expected ELFCLASS64 (2)");
  b = good;
  b[5] = 2;  // ELFDATA2MSB
  EXPECT_NE(error_of(b).find("ELF data encoding 2 (big-endian) is not supported"), std::string::npos);
  b = good;
  put_le<uint16_t>(b, 18, 62);  // EM_X86_64
  EXPECT_EQ(error_of(b), "bad.o: e_machine 62 is not EM_BPF (247)");
  b = good;
  put_le<uint16_t>(b, 16, 2);  // ET_EXEC
  EXPECT_NE(error_of(b).find("e_type 2 is not ET_REL (1)"), std::string::npos);
  b = good;
  b[0] = 0x7e;
  EXPECT_NE(error_of(b).find("not an ELF file"), std::string::npos);
}

TEST(ElfReader, RejectsABadSectionHeaderTable) {
  std::vector<uint8_t> good = read_bytes(obj_path("subprog"));
  std::vector<uint8_t> b = good;
  put_le<uint64_t>(b, 40, good.size() - 10);  // e_shoff near the end
  std::string m = error_of(b);
  EXPECT_NE(m.find("section header table at e_shoff 0x"), std::string::npos) << m;
  EXPECT_NE(m.find("is outside the file (size 0x"), std::string::npos) << m;

  b = good;
  put_le<uint64_t>(b, 40, ~uint64_t{0} - 8);  // e_shoff + size would wrap around
  EXPECT_NE(error_of(b).find("is outside the file"), std::string::npos);

  b = good;
  put_le<uint16_t>(b, 60, 0xffff);  // e_shnum huge
  m = error_of(b);
  EXPECT_NE(m.find("e_shnum 65535"), std::string::npos) << m;
  EXPECT_NE(m.find("outside the file"), std::string::npos) << m;

  b = good;
  put_le<uint16_t>(b, 60, 0);
  EXPECT_NE(error_of(b).find("extended section numbering is not supported"), std::string::npos);

  b = good;
  put_le<uint16_t>(b, 58, 40);  // e_shentsize
  EXPECT_EQ(error_of(b), "bad.o: e_shentsize 40 is not 64");
}

TEST(ElfReader, RejectsABadSectionNameTable) {
  std::vector<uint8_t> good = read_bytes(obj_path("subprog"));
  uint16_t shnum = get_le<uint16_t>(good, 60);
  std::vector<uint8_t> b = good;
  put_le<uint16_t>(b, 62, 0xfff0);
  EXPECT_EQ(error_of(b), "bad.o: e_shstrndx 65520 is not a section (" + std::to_string(shnum) + " sections)");
  b = good;
  put_le<uint16_t>(b, 62, 0);
  EXPECT_NE(error_of(b).find("e_shstrndx 0 is not a section"), std::string::npos);

  ElfFile elf = *ElfFile::parse(good, "good.o");
  uint32_t text = elf.section(".text")->index;
  b = good;
  put_le<uint16_t>(b, 62, static_cast<uint16_t>(text));  // a PROGBITS section
  EXPECT_EQ(error_of(b), "bad.o: section " + std::to_string(text) + " (e_shstrndx): type 1 is not SHT_STRTAB (3)");

  // A section whose name offset is past the end of the name table.
  uint32_t socket = elf.section("socket")->index;
  b = good;
  put_le<uint32_t>(b, shdr_field(b, socket, kShName), 0x7fffff);
  EXPECT_NE(error_of(b).find("bad.o: section " + std::to_string(socket) + ": name offset 0x7fffff outside string table"),
            std::string::npos)
      << error_of(b);

  // Shrink the name table so that one name runs off its end.
  uint16_t shstrndx = get_le<uint16_t>(good, 62);
  uint32_t own_name = get_le<uint32_t>(good, shdr_field(good, shstrndx, kShName));
  ASSERT_GT(elf.sections()[shstrndx].name.size(), 2u);
  b = good;
  put_le<uint64_t>(b, shdr_field(b, shstrndx, kShSize), own_name + 2);
  std::string m = error_of(b);
  EXPECT_NE(m.find("is not NUL-terminated"), std::string::npos) << m;
}

TEST(ElfReader, RejectsSectionDataOutsideTheFile) {
  std::vector<uint8_t> good = read_bytes(obj_path("maps_and_helpers"));
  ElfFile elf = *ElfFile::parse(good, "good.o");
  uint32_t socket = elf.section("socket")->index;
  uint64_t size = elf.section("socket")->size;
  char expect[200];

  std::vector<uint8_t> b = good;
  put_le<uint64_t>(b, shdr_field(b, socket, kShOffset), good.size() + 0x100);
  std::snprintf(expect, sizeof expect,
                "bad.o: section %u (socket): data at offset 0x%zx size 0x%llx is outside the file (size 0x%zx)", socket,
                good.size() + 0x100, static_cast<unsigned long long>(size), good.size());
  EXPECT_EQ(error_of(b), expect);

  b = good;
  put_le<uint64_t>(b, shdr_field(b, socket, kShSize), ~uint64_t{0});  // offset + size wraps
  EXPECT_NE(error_of(b).find("section " + std::to_string(socket) + " (socket): data at offset"), std::string::npos);

  // .bss has no bytes in the file, so its offset and size are not checked.
  uint32_t bss = elf.section(".bss")->index;
  b = good;
  put_le<uint64_t>(b, shdr_field(b, bss, kShOffset), ~uint64_t{0});
  put_le<uint64_t>(b, shdr_field(b, bss, kShSize), 1 << 20);
  auto ok = ElfFile::parse(b, "bss.o");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->section(".bss")->size, 1u << 20);
}

TEST(ElfReader, RejectsABadSymbolTable) {
  std::vector<uint8_t> good = read_bytes(obj_path("subprog"));
  ElfFile elf = *ElfFile::parse(good, "good.o");
  const ElfSection& symtab = *elf.section(".symtab");
  size_t sym12 = get_le<uint64_t>(good, shdr_field(good, symtab.index, kShOffset)) + 12 * 24;
  ASSERT_GT(elf.symbols().size(), 12u);

  std::vector<uint8_t> b = good;
  put_le<uint32_t>(b, sym12, 0xabcdef);  // st_name
  std::string m = error_of(b);
  EXPECT_EQ(m.rfind("bad.o: symbol 12: name offset 0xabcdef outside string table (size 0x", 0), 0u) << m;

  size_t add_one = 0;
  while (add_one < elf.symbols().size() && elf.symbols()[add_one].name != "add_one") ++add_one;
  ASSERT_LT(add_one, elf.symbols().size());
  b = good;
  put_le<uint16_t>(b, sym12 - 12 * 24 + add_one * 24 + 6, 0xfe00);  // st_shndx: not a section, not special
  m = error_of(b);
  EXPECT_NE(m.find("bad.o: symbol " + std::to_string(add_one) + " (add_one): section index 65024 is not a section (" +
                   std::to_string(elf.sections().size()) + " sections)"),
            std::string::npos)
      << m;

  b = good;
  put_le<uint64_t>(b, shdr_field(b, symtab.index, kShEntsize), 16);
  m = error_of(b);
  EXPECT_NE(m.find("section " + std::to_string(symtab.index) + " (.symtab): sh_entsize 16 is not 24"), std::string::npos)
      << m;

  b = good;
  put_le<uint32_t>(b, shdr_field(b, symtab.index, kShLink), elf.section(".text")->index);
  m = error_of(b);
  EXPECT_NE(m.find("(.symtab): sh_link"), std::string::npos) << m;
  EXPECT_NE(m.find("not SHT_STRTAB"), std::string::npos) << m;

  b = good;
  put_le<uint32_t>(b, shdr_field(b, symtab.index, kShLink), 999);
  EXPECT_NE(error_of(b).find("sh_link 999 is not a section"), std::string::npos);
}

TEST(ElfReader, RejectsBadRelocations) {
  std::vector<uint8_t> good = read_bytes(obj_path("maps_and_helpers"));
  ElfFile elf = *ElfFile::parse(good, "good.o");
  const ElfSection* socket = elf.section("socket");
  const ElfSection* relsec = nullptr;
  for (const ElfSection& s : elf.sections())
    if (s.type == kShtRel && s.info == socket->index) relsec = &s;
  ASSERT_NE(relsec, nullptr);
  size_t rel0 = get_le<uint64_t>(good, shdr_field(good, relsec->index, kShOffset));
  std::string where = "bad.o: section " + std::to_string(relsec->index) + " (" + relsec->name + "): relocation 0: ";

  std::vector<uint8_t> b = good;
  put_le<uint64_t>(b, rel0 + 8, (uint64_t{5000} << 32) | kRelBpf64_64);  // symbol 5000
  auto bad = ElfFile::parse(b, "bad.o");
  ASSERT_TRUE(bad) << "relocation entries are checked when they are read";
  auto rel = bad->relocations_for(socket->index);
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().message,
            where + "symbol 5000 out of range (" + std::to_string(elf.symbols().size()) + " symbols)");

  // An ld_imm64 relocation whose second slot would be past the end.
  b = good;
  put_le<uint64_t>(b, rel0, socket->size - 8);
  bad = ElfFile::parse(b, "bad.o");
  ASSERT_TRUE(bad);
  rel = bad->relocations_for(socket->index);
  ASSERT_FALSE(rel);
  EXPECT_NE(rel.error().message.find(where + "offset 0x"), std::string::npos) << rel.error().message;
  EXPECT_NE(rel.error().message.find("(R_BPF_64_64, 16 bytes) is outside section " + std::to_string(socket->index) +
                                     " (socket)"),
            std::string::npos)
      << rel.error().message;

  b = good;
  put_le<uint64_t>(b, shdr_field(b, relsec->index, kShEntsize), 24);
  EXPECT_NE(error_of(b).find("sh_entsize 24 is not 16 (Elf64_Rel)"), std::string::npos);

  b = good;
  put_le<uint32_t>(b, shdr_field(b, relsec->index, 44), 0x1234);  // sh_info
  EXPECT_NE(error_of(b).find("sh_info 4660 is not a section"), std::string::npos);

  EXPECT_FALSE(elf.relocations_for(0));
  auto out_of_range = elf.relocations_for(9999);
  ASSERT_FALSE(out_of_range);
  EXPECT_NE(out_of_range.error().message.find("good.o: relocations for section 9999: no such section"), std::string::npos);
}

// A small deterministic fuzz over the headers: every byte of the ELF header
// and the section header table set to a few values must parse or fail
// cleanly, and whatever parses must be safe to walk.
TEST(ElfReader, SurvivesCorruptedHeaders) {
  std::vector<uint8_t> good = read_bytes(obj_path("maps_and_helpers"));
  size_t shoff = get_le<uint64_t>(good, 40);
  std::vector<size_t> positions;
  for (size_t i = 0; i < 64; ++i) positions.push_back(i);
  for (size_t i = shoff; i < good.size(); ++i) positions.push_back(i);
  const uint8_t values[] = {0x00, 0x01, 0x7f, 0xff};
  for (size_t pos : positions) {
    for (uint8_t v : values) {
      std::vector<uint8_t> b = good;
      b[pos] = v;
      auto elf = ElfFile::parse(b, "fuzz.o");
      if (elf)
        walk(*elf);
      else
        ASSERT_EQ(elf.error().message.rfind("fuzz.o: ", 0), 0u) << elf.error().message;
    }
  }
}

}  // namespace
}  // namespace ember
