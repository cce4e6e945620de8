// Symbol resolution for probes: which file, which offset in it, which
// address in a process. See symbols.hpp.
#include "attach/symbols.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "attach/elf_image.hpp"

namespace ember::attach {
namespace {

namespace fs = std::filesystem;

// The standard directories of the x86-64 dynamic loader, searched after
// /etc/ld.so.cache (ld.so(8)).
constexpr const char* kLibDirs[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"};

std::string proc_dir(pid_t pid) { return pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid); }

// Why `path` cannot be probed, or nothing: it must be a readable x86-64 ELF file.
std::optional<std::string> elf_header_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("no such file");
  unsigned char h[20] = {};
  in.read(reinterpret_cast<char*>(h), sizeof h);
  if (in.gcount() < static_cast<std::streamsize>(sizeof h) || std::memcmp(h,
                                                                          "\x7f"
                                                                          "ELF",
                                                                          4) != 0)
    return std::string("not an ELF file");
  if (h[4] != 2 || h[5] != 1 || (h[18] | (h[19] << 8)) != 62) return std::string("not x86-64");
  return std::nullopt;
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// One line of /proc/PID/maps.
struct MapLine {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms;
  unsigned major = 0, minor = 0;
  uint64_t inode = 0;
  std::string path;
};

Result<std::vector<MapLine>> read_maps(pid_t pid) {
  std::string file = proc_dir(pid) + "/maps";
  std::ifstream in(file);
  if (!in) return fail("no process ", pid, " (cannot read ", file, ": ", std::strerror(errno), ")");
  std::vector<MapLine> out;
  std::string line;
  while (std::getline(in, line)) {
    MapLine m;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %x:%x %lu %n", &m.start, &m.end, perms, &m.offset,
                    &m.major, &m.minor, &m.inode, &path_at) < 7)
      continue;
    m.perms = perms;
    if (path_at > 0 && static_cast<size_t>(path_at) <= line.size()) m.path = line.substr(path_at);
    out.push_back(std::move(m));
  }
  return out;
}

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A bare library name matches a file name: "libc.so.6" itself, "libc" ->
// "libc.so*" or "libc-2.31.so", "libc.so" -> "libc.so.*".
bool library_name_matches(const std::string& name, const std::string& file) {
  if (file == name) return true;
  if (name.ends_with(".so")) return file.starts_with(name + ".");
  if (name.find(".so") != std::string::npos) return false;
  return file.starts_with(name + ".so") ||
         (file.starts_with(name + "-") && file.find(".so") != std::string::npos);
}

std::optional<std::string> find_in_maps(const std::string& name, pid_t pid) {
  auto maps = read_maps(pid);
  if (!maps) return std::nullopt;
  for (int pass = 0; pass < 2; ++pass) {
    for (const MapLine& m : *maps) {
      if (m.path.empty() || m.path[0] != '/') continue;
      std::string base = basename_of(m.path);
      if (pass == 0 ? base == name : library_name_matches(name, base)) return m.path;
    }
  }
  return std::nullopt;
}

// /etc/ld.so.cache in glibc's "glibc-ld.so.cache1.1" format: a header, then
// 24-byte entries whose key (the soname) and value (the path) are offsets of
// strings from the start of the file. x86-64 entries only.
std::optional<std::string> find_in_ld_cache(const std::string& name) {
  std::ifstream in("/etc/ld.so.cache", std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kHeader = 48, kEntry = 24;
  constexpr char kMagic[] = "glibc-ld.so.cache1.1";
  if (b.size() < kHeader || std::memcmp(b.data(), kMagic, sizeof kMagic - 1) != 0) return std::nullopt;
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
  };
  auto str = [&](uint32_t off) -> std::optional<std::string> {
    if (off >= b.size()) return std::nullopt;
    const void* nul = std::memchr(b.data() + off, 0, b.size() - off);
    if (!nul) return std::nullopt;
    return std::string(b.data() + off, static_cast<const char*>(nul) - (b.data() + off));
  };
  uint32_t n = u32(20);
  constexpr uint32_t kTypeMask = 0xff, kElfLibc6 = 3, kArchMask = 0xff00, kX8664Lib64 = 0x0300;
  std::optional<std::string> prefix_match;
  for (uint64_t i = 0; i < n && kHeader + (i + 1) * kEntry <= b.size(); ++i) {
    size_t e = kHeader + i * kEntry;
    uint32_t flags = u32(e);
    if ((flags & kTypeMask) != kElfLibc6 || (flags & kArchMask) != kX8664Lib64) continue;
    auto key = str(u32(e + 4));
    auto value = str(u32(e + 8));
    if (!key || !value) continue;
    if (*key == name) return value;
    if (!prefix_match && library_name_matches(name, *key)) prefix_match = value;
  }
  return prefix_match;
}

std::optional<std::string> find_in_lib_dirs(const std::string& name) {
  for (const char* dir : kLibDirs) {
    std::string p = std::string(dir) + "/" + name;
    if (is_regular_file(p) && !elf_header_problem(p)) return p;
  }
  for (const char* dir : kLibDirs) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string file = entry.path().filename().string();
      std::string p = entry.path().string();
      if (library_name_matches(name, file) && is_regular_file(p) && !elf_header_problem(p)) return p;
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (is_regular_file(p) && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

int bind_rank(uint8_t bind) { return bind == kStbGlobal ? 2 : bind == kStbWeak ? 1 : 0; }

std::string spelled(const ElfSym& s) {
  std::string out(s.name);
  if (!s.version.empty()) out += (s.hidden_version ? "@" : "@@") + std::string(s.version);
  return out;
}

struct Query {
  std::string base, version;
  bool has_version = false, default_only = false;
};

Query parse_query(std::string_view symbol) {
  Query q;
  size_t at = symbol.find('@');
  q.base = std::string(symbol.substr(0, at));
  if (at != std::string_view::npos) {
    q.has_version = true;
    q.default_only = symbol.substr(at).starts_with("@@");
    q.version = std::string(symbol.substr(at + (q.default_only ? 2 : 1)));
  }
  return q;
}

// The symbols of one table that the query names (defined ones only), with
// the version rules of symbols.hpp.
std::vector<ElfSym> candidates(const std::vector<ElfSym>& named, const Query& q) {
  std::vector<ElfSym> out;
  if (q.has_version) {
    for (const ElfSym& s : named)
      if (s.version == q.version && (!q.default_only || !s.hidden_version)) out.push_back(s);
    return out;
  }
  for (const ElfSym& s : named)
    if (s.version.empty() || !s.hidden_version) out.push_back(s);
  if (out.empty()) out = named;  // only hidden versions: usable when they agree (checked below)
  return out;
}

// One symbol among candidates: all at one address, or the one with the
// strongest binding at a single address.
Result<ElfSym> pick(const std::vector<ElfSym>& cands, const std::string& binary, std::string_view symbol) {
  int best = -1;
  for (const ElfSym& s : cands) best = std::max(best, bind_rank(s.bind));
  std::vector<ElfSym> strongest;
  for (const ElfSym& s : cands)
    if (bind_rank(s.bind) == best) strongest.push_back(s);
  for (const ElfSym& s : strongest) {
    if (s.value != strongest[0].value) {
      std::string list;
      for (const ElfSym& t : strongest) list += " " + spelled(t) + " at " + hex_string(t.value);
      return fail("binary ", binary, ": symbol '", symbol, "' is ambiguous:", list,
                  " (name a version with @VERSION, or give an address)");
    }
  }
  return strongest[0];
}

Result<SymbolInfo> lookup_address(const ElfImage& img, std::string_view symbol, uint64_t addr,
                                  uint64_t offset) {
  uint64_t vaddr = addr + offset;
  if (vaddr < addr) return fail("binary ", img.name(), ": address ", symbol, " + ", offset, " overflows");
  const ElfSegment* seg = img.segment_of(vaddr);
  if (!seg || !(seg->flags & kPfX))
    return fail("binary ", img.name(), ": address ", hex_string(vaddr),
                " is not in executable code of the file");
  SymbolInfo info;
  info.name = std::string(symbol);
  info.vaddr = vaddr;
  info.file_offset = seg->offset + (vaddr - seg->vaddr);
  return info;
}

}  // namespace

Result<std::string> resolve_binary(std::string_view path_or_name, pid_t pid) {
  std::string what(path_or_name);
  if (what.empty()) return fail("resolve binary: empty path");
  if (pid != 0 && ::access(proc_dir(pid).c_str(), F_OK) != 0)
    return fail("resolve '", what, "': no process ", pid);
  std::string path;
  if (what.find('/') != std::string::npos) {
    std::error_code ec;
    path = fs::absolute(what, ec).lexically_normal().string();
    if (ec) return fail("resolve '", what, "': ", ec.message());
    if (!is_regular_file(path)) return fail("resolve '", what, "': ", path, ": no such file");
  } else {
    std::optional<std::string> found = find_in_maps(what, pid);
    if (!found) found = find_in_ld_cache(what);
    if (!found) found = find_in_lib_dirs(what);
    if (!found) found = find_in_path(what);
    if (!found)
      return fail("resolve '", what, "': no such file: not mapped by ",
                  pid == 0 ? "this process" : "process " + std::to_string(pid),
                  ", not in /etc/ld.so.cache, the library directories or PATH");
    path = *found;
  }
  if (auto problem = elf_header_problem(path)) return fail("resolve '", what, "': ", path, ": ", *problem);
  return path;
}

Result<SymbolInfo> lookup_symbol(const std::string& binary, std::string_view symbol, uint64_t offset) {
  if (symbol.empty()) return fail("binary ", binary, ": empty symbol name");
  auto img = ElfImage::open(binary);
  if (!img) return img.error();
  if (auto addr = parse_probe_number(symbol)) return lookup_address(*img, symbol, *addr, offset);

  Query q = parse_query(symbol);
  std::vector<ElfSym> non_functions;
  std::vector<std::string> other_versions;
  for (bool dynamic : {false, true}) {
    std::vector<ElfSym> named;
    Status st = img->for_each_symbol(dynamic, [&](const ElfSym& s) {
      if (s.name == q.base && s.shndx != 0) named.push_back(s);
    });
    if (!st) return st.error();
    std::vector<ElfSym> cands = candidates(named, q);
    std::vector<ElfSym> funcs;
    for (const ElfSym& s : cands)
      (s.type == kSttFunc || s.type == kSttGnuIfunc ? funcs : non_functions).push_back(s);
    if (funcs.empty()) {
      for (const ElfSym& s : named) other_versions.push_back(spelled(s));
      continue;
    }
    auto chosen = pick(funcs, binary, symbol);
    if (!chosen) return chosen.error();
    const ElfSym& s = *chosen;
    if (s.size > 0 && offset >= s.size)
      return fail("binary ", binary, ": offset +", offset, " is beyond ", symbol, "'s ", s.size, " bytes");
    auto info = lookup_address(*img, symbol, s.value, offset);
    if (!info) return info.error();
    info->name = spelled(s);
    info->size = s.size;
    info->ifunc = s.type == kSttGnuIfunc;
    info->from_dynsym = dynamic;
    return info;
  }
  if (!non_functions.empty())
    return fail("binary ", binary, ": symbol '", symbol, "' is not a function (ELF symbol type ",
                int{non_functions[0].type}, ")");
  std::string msg = "binary " + binary + " has no symbol '" + std::string(symbol) + "'";
  if (!other_versions.empty()) {
    msg += " (versions present:";
    for (const std::string& v : other_versions) msg += " " + v;
    msg += ")";
  } else if (!img->has_table(false)) {
    msg += img->has_table(true) ? " (stripped: no .symtab, and .dynsym lacks it)"
                                : " (stripped: no symbol table)";
  }
  return Error{msg};
}

Result<uint64_t> symbol_file_offset(const std::string& binary, std::string_view symbol, uint64_t offset) {
  auto info = lookup_symbol(binary, symbol, offset);
  if (!info) return info.error();
  return info->file_offset;
}

Result<uint64_t> vaddr_to_file_offset(const std::string& binary, uint64_t vaddr) {
  auto img = ElfImage::open(binary);
  if (!img) return img.error();
  return img->vaddr_to_offset(vaddr);
}

Result<uintptr_t> file_offset_to_address(const std::string& binary, uint64_t file_offset, pid_t pid,
                                         MappingUse use) {
  struct stat st {};
  if (::stat(binary.c_str(), &st) != 0) return fail(binary, ": ", std::strerror(errno));
  auto maps = read_maps(pid);
  if (!maps) return maps.error();
  std::error_code ec;
  std::string canonical = fs::weakly_canonical(binary, ec).string();
  auto same_file = [&](const MapLine& m, bool by_path) {
    if (by_path) return !m.path.empty() && (m.path == binary || m.path == canonical);
    return m.inode == st.st_ino && m.major == major(st.st_dev) && m.minor == minor(st.st_dev);
  };
  std::string who = pid == 0 ? "this process" : "process " + std::to_string(pid);
  // By device and inode first; by path where they disagree (overlay file
  // systems show the underlying file's device in maps).
  for (bool by_path : {false, true}) {
    bool mapped = false;
    const MapLine* best = nullptr;
    for (const MapLine& m : *maps) {
      if (!same_file(m, by_path)) continue;
      mapped = true;
      if (file_offset < m.offset || file_offset - m.offset >= m.end - m.start) continue;
      bool exec = m.perms.find('x') != std::string::npos;
      bool writable = m.perms.size() >= 4 && m.perms[1] == 'w' && m.perms[3] == 'p';
      if (use == MappingUse::Data && !writable) continue;
      if (!best || (use == MappingUse::Code && exec && best->perms.find('x') == std::string::npos)) best = &m;
    }
    if (best) return static_cast<uintptr_t>(best->start + (file_offset - best->offset));
    if (mapped)
      return fail(binary, ": file offset ", hex_string(file_offset), " is not mapped",
                  use == MappingUse::Data ? " writable" : "", " in ", who);
  }
  return fail(binary, " is not mapped in ", who);
}

}  // namespace ember::attach
