// Bytes -> ElfFile::parse, then everything an ElfFile offers: every byte of
// every section's data is read (so ASan checks each span), relocations are
// read for every section and checked against the documented guarantees,
// functions are listed, and code sections are decoded slot by slot.
#include <cstdio>
#include <cstdlib>

#include "ember/elf.hpp"
#include "ember/isa.hpp"
#include "ember/map_defs.hpp"
#include "ember/object.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "ElfFile broke a guarantee: %s\n", what);
  std::abort();
}

void walk_section(const ember::ElfFile& elf, const ember::ElfSection& sec) {
  volatile uint8_t sink = 0;
  for (uint8_t b : sec.data) sink = sink ^ b;
  if (sec.data.size() > sec.size) broken("data larger than the section size");
  if (sec.index == 0) return;
  if (auto rel = elf.relocations_for(sec.index)) {
    for (const ember::ElfReloc& r : *rel) {
      if (r.symbol >= elf.symbols().size()) broken("relocation symbol out of range");
      if (r.offset >= sec.size) broken("relocation offset outside its section");
    }
  }
  uint64_t last = 0;
  for (const ember::ElfSymbol* f : elf.functions_in(sec.index)) {
    if (f->section != sec.index) broken("function from another section");
    if (f->value < last) broken("functions not sorted by value");
    last = f->value;
  }
}

void walk_code(const ember::ElfSection& sec) {
  auto insns = ember::bytes_to_insns(sec.data);
  if (!insns) return;
  for (size_t i = 0; i < insns->size(); ++i) {
    auto inst = ember::decode_insn(*insns, i);
    if (inst && inst->op == ember::Op::LDDW) ++i;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto elf = ember::ElfFile::parse({data, size}, "fuzz.o");
  if (!elf) return 0;
  // The object loader links programs: whatever it accepts must be consistent.
  // No vmlinux: CO-RE resolves against the object's own BTF (fast, and the
  // same every run).
  ember::LinkOptions link;
  link.use_vmlinux = false;
  if (auto obj = ember::load_object({data, size}, "fuzz.o", link)) {
    // Map definitions: .maps through BTF, legacy maps.
    if (auto defs = ember::parse_map_definitions(*elf, obj->btf.get())) {
      for (const ember::MapDef& d : *defs)
        if (d.name.empty() && d.section == ".maps") broken("a BTF-defined map without a name");
    }
    for (const ember::ObjectProgram& p : obj->programs) {
      if (p.origin.size() != p.insns.size()) broken("origin and instructions differ in length");
      for (const ember::DataRef& d : p.data_refs)
        if (d.insn + 1 >= p.insns.size()) broken("data reference outside the program");
    }
  }
  for (const ember::ElfSection& sec : elf->sections()) walk_section(*elf, sec);
  for (const ember::ElfSection* sec : elf->code_sections()) {
    if (sec->data.empty()) broken("empty code section");
    walk_code(*sec);
  }
  for (const ember::ElfSymbol& sym : elf->symbols()) (void)elf->section(sym.name);
  return 0;
}
