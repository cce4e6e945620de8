// USDT (statically defined tracing, <sys/sdt.h>): the probe sites an ELF
// file declares in its .note.stapsdt notes, their x86-64 argument
// locations, and the argument specs libbpf's usdt.bpf.h reads from its
// __bpf_usdt_specs map, so that unmodified libbpf USDT programs
// (BPF_USDT, bpf_usdt_arg, bpf_usdt_cookie) run on them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

// Where one argument is at the probe site (enum __bpf_usdt_arg_type).
enum class UsdtArgKind : uint32_t {
  Const = 0,     // "-4@$5": the value is val_off
  Reg = 1,       // "8@%rax": the register at reg_off of struct pt_regs
  RegDeref = 2,  // "-4@-8(%rbp)": memory at register + val_off
};

struct UsdtArg {
  uint8_t size = 8;        // bytes: 1, 2, 4 or 8
  bool is_signed = false;  // a negative size in the note
  UsdtArgKind kind = UsdtArgKind::Const;
  int16_t reg_off = 0;   // offset of the register in struct pt_regs (Reg, RegDeref)
  uint64_t val_off = 0;  // Const: the value; RegDeref: the displacement (two's complement)
  std::string reg;       // the register as written ("edi"), empty for Const
};

struct UsdtNote {
  std::string provider, name;
  uint64_t pc_file_offset = 0;         // the probe's nop, as a file offset
  uint64_t semaphore_file_offset = 0;  // 0: no semaphore
  std::string args_text;               // "-4@%edi 8@-8(%rbp)"
  std::vector<UsdtArg> args;
  // As written in the note (the prelink adjustment applied to pc_vaddr).
  uint64_t pc_vaddr = 0, base_vaddr = 0, semaphore_vaddr = 0;
};

// Every note of `binary`'s .note.stapsdt section (none: an empty vector).
// Errors name the file and the note: a malformed note, a pc outside the
// file's executable segments, a semaphore outside its loaded data, an
// argument Ember cannot serve the way libbpf's usdt.bpf.h reads them.
Result<std::vector<UsdtNote>> read_usdt_notes(const std::string& binary);
// The same on the bytes of an ELF file (`name` in messages).
Result<std::vector<UsdtNote>> parse_usdt_notes(std::span<const uint8_t> elf_bytes, const std::string& name);

// How parse_usdt_args resolves a symbolic displacement: GCC passes a static
// variable as "-8@big(%rip)" (libbpf refuses these). With the file's symbols
// the argument becomes a RegDeref of rip with val_off = big - pc, since
// pt_regs.rip is the probe's address when the program runs (as under kernel
// uprobes); "table+8(%rax)" in a non-PIE executable (absolute addresses)
// becomes rax + table + 8.
struct UsdtSymbols {
  std::function<std::optional<uint64_t>(std::string_view)> vaddr_of;  // a data symbol's vaddr
  uint64_t pc_vaddr = 0;                                              // the probe's address in the file
  bool absolute = false;  // ET_EXEC: vaddrs are run-time addresses
};

// One note's argument string -> its arguments (at most 12, libbpf's
// BPF_USDT_MAX_ARG_CNT). `where` starts error messages ("file: USDT p:n").
// Without `syms` a symbolic displacement is an error.
Result<std::vector<UsdtArg>> parse_usdt_args(std::string_view text, std::string_view where,
                                             const UsdtSymbols* syms = nullptr);

// The offset of an x86-64 register (rax/eax/ax/al, r8/r8d/r8w/r8b, rip...)
// in struct pt_regs, or -1 for a name libbpf does not accept.
int usdt_register_offset(std::string_view reg);

// struct __bpf_usdt_arg_spec / __bpf_usdt_spec of /usr/include/bpf/usdt.bpf.h,
// the value type of the __bpf_usdt_specs map, mirrored field by field
// (tests/usdt_test.cpp checks the layout against clang's BTF of that header).
constexpr int kUsdtMaxArgs = 12;
struct BpfUsdtArgSpec {
  uint64_t val_off;
  uint32_t arg_type;  // UsdtArgKind
  int16_t reg_off;
  bool arg_signed;
  int8_t arg_bitshift;  // 64 - 8 * size
};
struct BpfUsdtSpec {
  BpfUsdtArgSpec args[kUsdtMaxArgs];
  uint64_t usdt_cookie;
  int16_t arg_cnt;
};
static_assert(sizeof(BpfUsdtArgSpec) == 16);
static_assert(sizeof(BpfUsdtSpec) == 208);

// The bytes of struct __bpf_usdt_spec for a note and a cookie (the value the
// controller stores in __bpf_usdt_specs[spec_id]); padding is zero.
std::vector<uint8_t> encode_usdt_spec(const UsdtNote& note, uint64_t usdt_cookie);

}  // namespace ember::attach
