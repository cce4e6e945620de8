// Where the dynamic loader's entry points (dlopen, dlerror, dlclose) are in
// another process: the C library it maps (glibc >= 2.34 has them in
// libc.so.6, older ones in libdl.so.2 when the program links it), the
// symbols' file offsets from that file's .dynsym, and the addresses those
// offsets have in the process's /proc/PID/maps.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/result.hpp"

namespace ember::attach {

struct TargetLoaderApi {
  std::string library;  // the file, as /proc/PID/maps names it
  uintptr_t dlopen = 0, dlerror = 0, dlclose = 0;
};

Result<TargetLoaderApi> find_loader_api(pid_t pid);

// The file offset of a defined function symbol of the ELF file at `path`
// (.dynsym; the first match, whatever its version: glibc keeps its old and
// new versions of dlopen at one address).
Result<uint64_t> dynsym_file_offset(const std::string& path, std::string_view name);

// The address of function `name` (its .dynsym) of `library` (a path as
// /proc/PID/maps names it) in process `pid`.
Result<uintptr_t> remote_function(pid_t pid, const std::string& library, std::string_view name);

// The mappings of process `pid` (/proc/PID/maps).
struct Mapping {
  uintptr_t start = 0, end = 0;
  uint64_t offset = 0;
  std::string perms, path;
  bool executable() const { return perms.find('x') != std::string::npos; }
};
Result<std::vector<Mapping>> process_mappings(pid_t pid);

// Checks that process `pid` runs x86-64 code (its /proc/PID/exe).
Status check_x86_64(pid_t pid);

}  // namespace ember::attach
