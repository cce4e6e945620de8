// Probe inputs from outside: ELF files with USDT notes and symbol tables,
// note argument strings, and probe specs (section names, -e arguments).
// The first byte picks what the rest is; each parser must return a value
// or an error, and what it returns must keep its documented guarantees.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attach/elf_image.hpp"
#include "attach/probe_spec.hpp"
#include "attach/usdt.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "attach parsing broke a guarantee: %s\n", what);
  std::abort();
}

void check_args(const std::vector<ember::attach::UsdtArg>& args) {
  if (args.size() > ember::attach::kUsdtMaxArgs) broken("more than 12 arguments");
  for (const ember::attach::UsdtArg& a : args) {
    if (a.size != 1 && a.size != 2 && a.size != 4 && a.size != 8) broken("bad argument size");
    if (a.kind != ember::attach::UsdtArgKind::Const && (a.reg_off < 0 || a.reg_off > 160 || a.reg_off % 8))
      broken("register offset outside struct pt_regs");
  }
}

void elf(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto notes = ember::attach::parse_usdt_notes(bytes, "fuzz.so");
  if (notes) {
    for (const ember::attach::UsdtNote& n : *notes) {
      if (n.pc_file_offset >= size) broken("probe offset outside the file");
      if (n.semaphore_vaddr != 0 && n.semaphore_file_offset >= size)
        broken("semaphore offset outside the file");
      check_args(n.args);
      if (ember::attach::encode_usdt_spec(n, 1).size() != sizeof(ember::attach::BpfUsdtSpec))
        broken("spec size");
    }
  }
  auto img = ember::attach::ElfImage::parse(std::move(bytes), "fuzz.so");
  if (!img) return;
  for (bool dynamic : {false, true}) {
    size_t names = 0;
    (void)img->for_each_symbol(
        dynamic, [&](const ember::attach::ElfSym& s) { names += s.name.size() + s.version.size(); });
  }
  for (const ember::attach::ElfSectionHeader& s : img->sections()) {
    volatile uint8_t sink = 0;
    for (uint8_t b : img->data(s)) sink = sink ^ b;
    if (auto n = img->notes(s)) {
      for (const ember::attach::ElfNote& note : *n) (void)note.desc.size();
    }
  }
  // A segment's own address maps to its own offset, unless an earlier
  // segment of a malformed file overlaps it (the first one wins).
  const auto& loads = img->loads();
  for (size_t i = 0; i < loads.size(); ++i) {
    const ember::attach::ElfSegment& seg = loads[i];
    bool shadowed = false;
    for (size_t j = 0; j < i; ++j)
      shadowed |= seg.vaddr >= loads[j].vaddr && seg.vaddr - loads[j].vaddr < loads[j].filesz;
    if (auto off = img->vaddr_to_offset(seg.vaddr); off && *off != seg.offset && seg.filesz > 0 && !shadowed)
      broken("a segment's own address maps elsewhere");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: elf(data + 1, size - 1); break;
    case 1:
      if (auto args = ember::attach::parse_usdt_args(text, "fuzz")) check_args(*args);
      break;
    case 2:
      if (auto spec = ember::attach::parse_section_probe(text)) {
        if (spec->binary.empty()) broken("a section probe without a path");
        if (spec->usdt && (spec->provider.empty() || spec->name.empty()))
          broken("usdt without provider or name");
        if (!spec->usdt && spec->symbol.empty()) broken("uprobe without a function");
      }
      break;
    case 3:
      if (auto spec = ember::attach::parse_cli_probe(text)) {
        if (spec->prog.empty() || spec->binary.empty()) broken("-e probe without program or path");
      }
      break;
  }
  return 0;
}
