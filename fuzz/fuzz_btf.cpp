// Bytes -> the BTF layer. An ELF object is read as the loader reads it: its
// .BTF, its .BTF.ext against that, its map definitions, and CO-RE
// relocation of every code section against its own BTF. Anything else is
// parsed as a raw BTF blob (as /sys/kernel/btf/vmlinux). Every query is
// then asked of every type, so ASan checks each read the parser allowed.
#include <cstdio>
#include <cstdlib>

#include "ember/btf.hpp"
#include "ember/elf.hpp"
#include "ember/map_defs.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "BTF layer broke a guarantee: %s\n", what);
  std::abort();
}

void walk_types(const ember::Btf& btf) {
  if (btf.count() == 0) broken("no void type");
  for (uint32_t id = 0; id < btf.count(); ++id) {
    (void)btf.to_string(id);
    (void)btf.describe(id);
    (void)btf.size_of(id);
    if (btf.resolve(id) >= btf.count()) broken("resolve left the id range");
    for (const ember::BtfMember& m : btf.members(id))
      if (m.type >= btf.count()) broken("member type out of range");
    for (const ember::BtfParam& p : btf.params(id))
      if (p.type >= btf.count()) broken("parameter type out of range");
    (void)btf.enum_values(id);
    (void)btf.secinfos(id);
    std::string_view name = btf.name(id);
    if (!name.empty() && btf.find(name, btf.kind(id)) == 0) broken("find misses a named type");
  }
}

void walk_object(const ember::ElfFile& elf) {
  const ember::ElfSection* sec = elf.section(".BTF");
  auto btf = sec ? ember::Btf::parse(sec->data, "fuzz.o") : ember::Result<ember::Btf>(ember::fail("none"));
  (void)ember::parse_map_definitions(elf, btf ? &*btf : nullptr);
  if (!btf) return;
  walk_types(*btf);
  const ember::ElfSection* ext_sec = elf.section(".BTF.ext");
  if (!ext_sec) return;
  auto ext = ember::BtfExt::parse(ext_sec->data, *btf, "fuzz.o");
  if (!ext) return;
  for (const auto& s : ext->line_info()) (void)ext->line_at(s.name, 0), (void)ext->func_at(s.name, 1u << 20);
  auto patches = ember::resolve_core_relocations(*btf, *ext, *btf, "fuzz.o");
  if (!patches) return;
  for (const ember::ElfSection* code : elf.code_sections()) {
    auto insns = ember::bytes_to_insns(code->data);
    if (insns) (void)ember::apply_core_patches(code->name, *insns, *patches, "fuzz.o");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  if (ember::ElfFile::looks_like_elf(bytes)) {
    if (auto elf = ember::ElfFile::parse(bytes, "fuzz.o")) walk_object(*elf);
    return 0;
  }
  if (auto btf = ember::Btf::parse(bytes, "fuzz.btf")) walk_types(*btf);
  return 0;
}
