// Where a probe goes: the file a path or library name means, the file offset
// of a symbol in it, and the address that offset has in a process. Kernel
// uprobes are placed the same way (a file and an offset in it), so that a
// probe on a shared library or a PIE executable finds the code wherever the
// process mapped it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "attach/probe_spec.hpp"
#include "ember/result.hpp"

namespace ember::attach {

// "libc.so.6", "libc", "/bin/bash", "./app", "bash" -> the absolute path of
// the file that process `pid` (0: this process) maps or would load: a name
// with a '/' is a path (made absolute from the current directory); a bare
// name is looked up in /proc/PID/maps (same basename, then NAME.so*), then
// /etc/ld.so.cache and the standard library directories, then PATH. The file
// must be an x86-64 ELF file. Errors: "no such file", "not an ELF file",
// "not x86-64", "no process".
Result<std::string> resolve_binary(std::string_view path_or_name, pid_t pid = 0);

// What a symbol lookup found.
struct SymbolInfo {
  std::string name;    // as found, with its version: "malloc@@GLIBC_2.2.5"
  uint64_t vaddr = 0;  // st_value (+ offset)
  uint64_t size = 0;   // st_size
  uint64_t file_offset = 0;
  bool ifunc = false;  // STT_GNU_IFUNC: the address is the resolver's, not the implementation's
  bool from_dynsym = false;
};

// SYMBOL (or "SYMBOL@VERSION", "SYMBOL@@VERSION", or a bare address "0x1234"
// / "4660", a vaddr of the file) plus `offset` -> where it is in `binary`.
// .symtab first, then .dynsym; function symbols only (STT_FUNC,
// STT_GNU_IFUNC). "malloc" matches an unversioned "malloc" or the default
// version "malloc@@GLIBC_2.2.5" (else a single hidden version);
// "malloc@GLIBC_2.2.5" matches that version, default or not; "@@" only the
// default. Among aliases at different addresses a global symbol wins over a
// weak one; otherwise the name is ambiguous (an error). `offset` must lie
// within the symbol's st_size when that is known (> 0).
Result<SymbolInfo> lookup_symbol(const std::string& binary, std::string_view symbol, uint64_t offset = 0);

// lookup_symbol(...).file_offset.
Result<uint64_t> symbol_file_offset(const std::string& binary, std::string_view symbol, uint64_t offset = 0);

// A vaddr of `binary` (as in its program headers) -> its file offset, through
// the PT_LOAD segment whose file part holds it.
Result<uint64_t> vaddr_to_file_offset(const std::string& binary, uint64_t vaddr);

// Which mapping of a file offset file_offset_to_address picks when several
// cover it (a page shared by the end of one segment and the start of the next).
enum class MappingUse {
  Code,  // an executable mapping, else any mapping (probe sites)
  Data,  // a writable private mapping, as the kernel wants for a uprobe's
         // ref_ctr_offset (USDT semaphores)
};

// A file offset of `binary` -> its address in process `pid` (0: this process),
// through the lines of /proc/PID/maps that map that file (compared by device
// and inode, so a path through a symlink matches) over that offset:
// start + (file_offset - map_offset). Error when the file is not mapped
// there, or not at that offset.
Result<uintptr_t> file_offset_to_address(const std::string& binary, uint64_t file_offset, pid_t pid = 0,
                                         MappingUse use = MappingUse::Code);

}  // namespace ember::attach
