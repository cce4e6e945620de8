#include "attach/target_libc.hpp"

#include <elf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

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

template <class T>
bool read_at(const std::vector<uint8_t>& file, uint64_t off, T* out) {
  if (off > file.size() || file.size() - off < sizeof(T)) return false;
  std::memcpy(out, file.data() + off, sizeof(T));
  return true;
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
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Elf64_Ehdr eh;
  if (!read_at(file, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return fail(path, ": not a 64-bit ELF file");
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh, strsh;
    if (!read_at(file, eh.e_shoff + uint64_t{i} * sizeof sh, &sh))
      return fail(path, ": truncated section headers");
    if (sh.sh_type != SHT_DYNSYM) continue;
    if (!read_at(file, eh.e_shoff + uint64_t{sh.sh_link} * sizeof strsh, &strsh) ||
        strsh.sh_offset > file.size())
      return fail(path, ": .dynsym has no string table");
    for (uint64_t off = sh.sh_offset; off + sizeof(Elf64_Sym) <= sh.sh_offset + sh.sh_size;
         off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      if (!read_at(file, off, &sym)) return fail(path, ": truncated .dynsym");
      if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC) continue;
      uint64_t name_off = strsh.sh_offset + sym.st_name;
      if (name_off >= file.size()) continue;
      const char* s = reinterpret_cast<const char*>(file.data() + name_off);
      if (strnlen(s, file.size() - name_off) != name.size() || std::memcmp(s, name.data(), name.size()) != 0)
        continue;
      // st_value is a virtual address: find the PT_LOAD segment holding it.
      for (unsigned p = 0; p < eh.e_phnum; ++p) {
        Elf64_Phdr ph;
        if (!read_at(file, eh.e_phoff + uint64_t{p} * sizeof ph, &ph)) break;
        if (ph.p_type == PT_LOAD && sym.st_value >= ph.p_vaddr && sym.st_value < ph.p_vaddr + ph.p_filesz)
          return sym.st_value - ph.p_vaddr + ph.p_offset;
      }
      return fail(path, ": ", name, " at ", hex(sym.st_value), " lies in no loadable segment");
    }
  }
  return fail(path, ": no function ", name, " in .dynsym");
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
