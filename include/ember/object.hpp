// An ELF object built by `clang -target bpf`, read the way libbpf reads it:
// its programs (one per function in a SEC() section), each linked with the
// subprograms it calls from .text, and the references to maps and global
// data that the map layer resolves.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/btf.hpp"
#include "ember/elf.hpp"
#include "ember/isa.hpp"
#include "ember/prog_types.hpp"
#include "ember/result.hpp"

namespace ember {

// Where a linked instruction came from: for messages and BTF line info.
struct InsnOrigin {
  uint32_t section = 0;  // ELF section index
  uint32_t index = 0;    // instruction index within that section
};

// An ld_imm64 that names a map or global data (.maps, .data, .rodata, .bss,
// .kconfig ...) through an R_BPF_64_64 relocation.
struct DataRef {
  size_t insn = 0;      // slot in the linked program
  std::string symbol;   // the symbol relocated against ("" for a section symbol)
  std::string section;  // the section that symbol lives in; "" for an extern
  uint64_t offset = 0;  // symbol value + the instruction's addend
  bool weak = false;    // a weak extern (may stay unresolved: reads 0)
};

struct ObjectProgram {
  std::string name;                // the function's name
  std::string section;             // its SEC() name
  SectionMatch type;               // program type, attach type and extras
  std::vector<RawInsn> insns;      // the program, then each subprogram it reaches
  std::vector<InsnOrigin> origin;  // one per slot of insns
  std::vector<DataRef> data_refs;
};

struct ObjectFile {
  std::string name;
  std::string license;  // the "license" section, "" if absent
  std::vector<ObjectProgram> programs;
  std::vector<std::string> section_names;  // by ELF section index
  std::shared_ptr<const Btf> btf;          // .BTF, null if absent
  std::shared_ptr<const BtfExt> btf_ext;   // .BTF.ext, null if absent

  const ObjectProgram* find(std::string_view name_or_section) const;
  // The C source line of instruction `insn` of `prog` (BTF line info), or
  // null when the object has none.
  const BtfLineInfo* source_line(const ObjectProgram& prog, size_t insn) const;
  // " (file.c:12: the source text)", or "" when there is no line info.
  std::string where(const ObjectProgram& prog, size_t insn) const;
};

struct LinkOptions {
  // CO-RE target for kernel types: this BTF, else vmlinux_path when
  // use_vmlinux (and it can be read). Types it lacks resolve against the
  // object's own BTF.
  const Btf* kernel_btf = nullptr;
  bool use_vmlinux = true;
  std::string vmlinux_path = "/sys/kernel/btf/vmlinux";
};

// Reads and links every program of an object, CO-RE relocations applied.
// `bytes` may be dropped after.
Result<ObjectFile> load_object(std::span<const uint8_t> bytes, const std::string& name,
                               const LinkOptions& opts = {});

}  // namespace ember
