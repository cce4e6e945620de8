#include "attach/target_libc.hpp"

#include <elf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "attach/elf_image.hpp"

namespace ember::attach {
namespace {

struct MapLine {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms, path;
};

Result<std::vector<MapLine>> read_maps(pid_t pid) {
  std::string name = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream in(name);
  if (!in) return fail("process ", pid, ": cannot read ", name, ": ", std::strerror(errno));
  std::vector<MapLine> out;
  std::string line;
  while (std::getline(in, line)) {
    MapLine m;
    std::istringstream ss(line);
    std::string range, dev, inode;
    ss >> range >> m.perms >> std::hex >> m.offset >> dev >> inode;
    std::getline(ss >> std::ws, m.path);
    size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    out.push_back(std::move(m));
  }
  return out;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// glibc's names: libc.so.6 (and libc-2.NN.so, what the symlink pointed to
// before 2.34), libdl.so.2 / libdl-2.NN.so.
bool is_library(const std::string& path, std::string_view stem, std::string_view soname) {
  std::string base = basename_of(path);
  if (base == soname) return true;
  return base.rfind(std::string(stem) + "-", 0) == 0 && base.size() > 3 && base.ends_with(".so");
}

// The file the process sees at `path`: through /proc/PID/root, so that a
// process in a container or chroot is read from its own filesystem.
std::string host_path(pid_t pid, const std::string& path) {
  std::string through_root = "/proc/" + std::to_string(pid) + "/root" + path;
  std::ifstream probe(through_root);
  return probe ? through_root : path;
}

Result<uintptr_t> offset_to_address(const std::vector<MapLine>& maps, const std::string& library,
                                    uint64_t file_offset, pid_t pid) {
  for (const auto& m : maps) {
    if (m.path != library || m.perms.find('x') == std::string::npos) continue;
    if (file_offset >= m.offset && file_offset < m.offset + (m.end - m.start))
      return m.start + (file_offset - m.offset);
  }
  return fail("process ", pid, ": file offset ", hex(file_offset), " of ", library,
              " is not mapped executable");
}

}  // namespace

Result<uint64_t> dynsym_file_offset(const std::string& path, std::string_view name) {
  auto image = ElfImage::open(path);
  if (!image) return image.error();
  std::optional<uint64_t> vaddr;
  auto st = image->for_each_symbol(/*dynamic=*/true, [&](const ElfSym& sym) {
    if (!vaddr && sym.name == name && sym.shndx != SHN_UNDEF && sym.type == kSttFunc) vaddr = sym.value;
  });
  if (!st) return st.error();
  if (!vaddr) return fail(path, ": no function ", name, " in .dynsym");
  auto off = image->vaddr_to_offset(*vaddr);
  if (!off) return fail(path, ": ", name, " at ", hex(*vaddr), " lies in no loadable segment");
  return *off;
}

Result<uintptr_t> remote_function(pid_t pid, const std::string& library, std::string_view name) {
  auto off = dynsym_file_offset(host_path(pid, library), name);
  if (!off) return off.error();
  auto maps = read_maps(pid);
  if (!maps) return maps.error();
  return offset_to_address(*maps, library, *off, pid);
}

Result<std::vector<Mapping>> process_mappings(pid_t pid) {
  auto maps = read_maps(pid);
  if (!maps) return maps.error();
  std::vector<Mapping> out;
  for (auto& m : *maps) out.push_back({m.start, m.end, m.offset, std::move(m.perms), std::move(m.path)});
  return out;
}

Status check_x86_64(pid_t pid) {
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  std::ifstream in(exe, std::ios::binary);
  if (!in) return fail("process ", pid, ": cannot read ", exe, ": ", std::strerror(errno));
  Elf64_Ehdr eh{};
  in.read(reinterpret_cast<char*>(&eh), sizeof eh);
  if (!in || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return fail("process ", pid, ": its executable is not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
    return fail("process ", pid, ": not an x86-64 process (ELF class ", int{eh.e_ident[EI_CLASS]},
                ", e_machine ", eh.e_machine, "); only x86-64 targets can be injected");
  return ok_status();
}

Result<TargetLoaderApi> find_loader_api(pid_t pid) {
  auto maps = read_maps(pid);
  if (!maps) return maps.error();
  // libc first (glibc >= 2.34), then libdl (older glibc, when linked).
  for (auto [stem, soname] : {std::pair{"libc", "libc.so.6"}, std::pair{"libdl", "libdl.so.2"}}) {
    for (const auto& m : *maps) {
      if (m.path.empty() || m.path[0] != '/' || !is_library(m.path, stem, soname)) continue;
      std::string file = host_path(pid, m.path);
      auto open_off = dynsym_file_offset(file, "dlopen");
      if (!open_off) break;  // an old libc: try libdl
      auto error_off = dynsym_file_offset(file, "dlerror");
      auto close_off = dynsym_file_offset(file, "dlclose");
      if (!error_off) return error_off.error();
      if (!close_off) return close_off.error();
      TargetLoaderApi api;
      api.library = m.path;
      auto a = offset_to_address(*maps, m.path, *open_off, pid);
      auto b = offset_to_address(*maps, m.path, *error_off, pid);
      auto c = offset_to_address(*maps, m.path, *close_off, pid);
      if (!a) return a.error();
      if (!b) return b.error();
      if (!c) return c.error();
      api.dlopen = *a, api.dlerror = *b, api.dlclose = *c;
      return api;
    }
  }
  return fail("process ", pid,
              ": no dlopen found: it maps neither a glibc libc.so.6 >= 2.34 nor libdl.so.2 (a static or "
              "non-glibc program cannot load a library)");
}

}  // namespace ember::attach
