// Reads x86-64 ELF executables and shared objects. Every field read from the
// file is checked before use with arithmetic that cannot wrap; loops are
// bounded by 16-bit counts or by the file size.
#include "attach/elf_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ember::attach {
namespace {

// Sizes and constants of the System V gABI and the GNU extensions, named
// after <elf.h>.
constexpr uint64_t kEhdrSize = 64, kPhdrSize = 56, kShdrSize = 64, kSymSize = 24;
constexpr uint16_t kEtExec = 2, kEtDyn = 3, kEmX8664 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kShtSymtab = 2, kShtNote = 7, kShtNobits = 8, kShtDynsym = 11;
constexpr uint32_t kShtGnuVerdef = 0x6ffffffd, kShtGnuVersym = 0x6fffffff;
constexpr uint16_t kShnXindex = 0xffff;
constexpr uint16_t kVersymHidden = 0x8000;
constexpr uint64_t kVerdefSize = 20, kVerdauxSize = 8;
constexpr size_t kMaxNameLength = 4096;

bool fits(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

template <class T>
T load(std::span<const uint8_t> b, uint64_t off) {
  assert(fits(off, sizeof(T), b.size()));
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{b[off + i]} << (8 * i);
  return static_cast<T>(v);
}

// The NUL-terminated string at `off` of a string table, or why not.
Result<std::string_view> string_at(std::span<const uint8_t> table, uint64_t off) {
  if (off >= table.size()) return fail("string offset ", hex_string(off), " outside its table");
  const char* start = reinterpret_cast<const char*>(table.data() + off);
  size_t room = std::min<size_t>(table.size() - off, kMaxNameLength + 1);
  const void* nul = std::memchr(start, 0, room);
  if (!nul) return fail("string at ", hex_string(off), " is not terminated");
  return std::string_view(start, static_cast<const char*>(nul) - start);
}

}  // namespace

std::string hex_string(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

Result<ElfImage> ElfImage::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path, ": ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(path, ": not a regular file");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);  // a file that shrank while being read is parsed as it was read
  return parse(std::move(bytes), path);
}

Result<ElfImage> ElfImage::parse(std::vector<uint8_t> bytes, std::string name) {
  ElfImage img;
  img.name_ = std::move(name);
  img.bytes_ = std::move(bytes);
  std::span<const uint8_t> b = img.bytes_;
  const std::string& n = img.name_;
  if (b.size() < kEhdrSize || std::memcmp(b.data(),
                                          "\x7f"
                                          "ELF",
                                          4) != 0)
    return fail(n, ": not an ELF file");
  if (b[4] != 2 || b[5] != 1) return fail(n, ": not x86-64 (not a 64-bit little-endian ELF file)");
  if (load<uint16_t>(b, 18) != kEmX8664)
    return fail(n, ": not x86-64 (e_machine ", load<uint16_t>(b, 18), ")");
  img.type_ = load<uint16_t>(b, 16);
  if (img.type_ != kEtExec && img.type_ != kEtDyn)
    return fail(n, ": not an executable or shared object (e_type ", img.type_, ")");

  uint64_t phoff = load<uint64_t>(b, 32), shoff = load<uint64_t>(b, 40);
  uint16_t phentsize = load<uint16_t>(b, 54), phnum = load<uint16_t>(b, 56);
  uint16_t shentsize = load<uint16_t>(b, 58), shnum = load<uint16_t>(b, 60), shstrndx = load<uint16_t>(b, 62);

  if (phnum > 0) {
    if (phentsize < kPhdrSize || !fits(phoff, uint64_t{phnum} * phentsize, b.size()))
      return fail(n, ": program headers outside the file");
    for (uint16_t i = 0; i < phnum; ++i) {
      uint64_t p = phoff + uint64_t{i} * phentsize;
      if (load<uint32_t>(b, p) != kPtLoad) continue;
      ElfSegment s{load<uint64_t>(b, p + 16), load<uint64_t>(b, p + 40), load<uint64_t>(b, p + 8),
                   load<uint64_t>(b, p + 32), load<uint32_t>(b, p + 4)};
      if (s.filesz > s.memsz || s.vaddr + s.memsz < s.vaddr)
        return fail(n, ": PT_LOAD segment ", i, " has bad sizes");
      // The file part may end past EOF in a truncated file: keep what exists.
      if (!fits(s.offset, s.filesz, b.size())) return fail(n, ": PT_LOAD segment ", i, " outside the file");
      img.loads_.push_back(s);
    }
  }

  if (shoff == 0 || shnum == 0) return img;  // no section headers (sstripped): segments only
  if (shentsize < kShdrSize || !fits(shoff, uint64_t{shnum} * shentsize, b.size()))
    return fail(n, ": section headers outside the file");
  if (shstrndx == kShnXindex) shstrndx = static_cast<uint16_t>(load<uint32_t>(b, shoff + 40));
  if (shstrndx >= shnum) return fail(n, ": section name table index ", shstrndx, " out of range");
  auto raw = [&](uint16_t i) { return shoff + uint64_t{i} * shentsize; };
  uint64_t strs_off = load<uint64_t>(b, raw(shstrndx) + 24),
           strs_size = load<uint64_t>(b, raw(shstrndx) + 32);
  if (!fits(strs_off, strs_size, b.size())) return fail(n, ": section name table outside the file");
  std::span<const uint8_t> names = b.subspan(strs_off, strs_size);
  for (uint16_t i = 0; i < shnum; ++i) {
    uint64_t h = raw(i);
    ElfSectionHeader s;
    s.index = i;
    s.type = load<uint32_t>(b, h + 4);
    s.flags = load<uint64_t>(b, h + 8);
    s.addr = load<uint64_t>(b, h + 16);
    s.offset = load<uint64_t>(b, h + 24);
    s.size = load<uint64_t>(b, h + 32);
    s.link = load<uint32_t>(b, h + 40);
    s.addralign = load<uint64_t>(b, h + 48);
    s.entsize = load<uint64_t>(b, h + 56);
    if (i != 0) {
      auto nm = string_at(names, load<uint32_t>(b, h));
      if (!nm) return fail(n, ": section ", i, ": name: ", nm.error().message);
      s.name = std::string(*nm);
    }
    if (s.type != kShtNobits && i != 0 && !fits(s.offset, s.size, b.size()))
      return fail(n, ": section ", s.name, " (", i, ") outside the file");
    img.sections_.push_back(std::move(s));
  }
  return img;
}

const ElfSectionHeader* ElfImage::section(std::string_view name) const {
  for (const ElfSectionHeader& s : sections_)
    if (s.index != 0 && s.name == name) return &s;
  return nullptr;
}

std::span<const uint8_t> ElfImage::data(const ElfSectionHeader& sec) const {
  if (sec.type == kShtNobits || sec.index == 0) return {};
  return std::span<const uint8_t>(bytes_).subspan(sec.offset, sec.size);
}

bool ElfImage::has_table(bool dynamic) const {
  for (const ElfSectionHeader& s : sections_)
    if (s.type == (dynamic ? kShtDynsym : kShtSymtab)) return true;
  return false;
}

// Version index -> name, from SHT_GNU_verdef (index 0 and 1 stay empty:
// local and global unversioned).
Result<std::vector<std::string_view>> ElfImage::version_names(const ElfSectionHeader& verdef) const {
  std::vector<std::string_view> out;
  if (verdef.link >= sections_.size()) return fail(name_, ": ", verdef.name, ": bad string table link");
  std::span<const uint8_t> strs = data(sections_[verdef.link]);
  std::span<const uint8_t> d = data(verdef);
  uint64_t off = 0;
  // Each entry moves forward by vd_next > 0, so this ends within d.size() steps.
  for (uint64_t k = 0; k < d.size(); ++k) {
    if (!fits(off, kVerdefSize, d.size()))
      return fail(name_, ": ", verdef.name, ": entry outside the section");
    uint16_t ndx = load<uint16_t>(d, off + 4) & 0x7fff;
    uint32_t aux = load<uint32_t>(d, off + 12), next = load<uint32_t>(d, off + 16);
    if (!fits(off + aux, kVerdauxSize, d.size()))
      return fail(name_, ": ", verdef.name, ": aux entry outside the section");
    auto nm = string_at(strs, load<uint32_t>(d, off + aux));
    if (!nm) return fail(name_, ": ", verdef.name, ": ", nm.error().message);
    if (ndx >= out.size()) out.resize(size_t{ndx} + 1);
    out[ndx] = *nm;
    if (next == 0) break;
    off += next;
  }
  if (out.size() > 0) out[0] = {};
  if (out.size() > 1) out[1] = {};  // VER_FLG_BASE: the file's own name, not a symbol version
  return out;
}

Status ElfImage::for_each_symbol(bool dynamic, const std::function<void(const ElfSym&)>& fn) const {
  const ElfSectionHeader* table = nullptr;
  for (const ElfSectionHeader& s : sections_)
    if (s.type == (dynamic ? kShtDynsym : kShtSymtab)) table = &s;
  if (!table) return ok_status();
  if (table->link >= sections_.size() || table->link == 0)
    return fail(name_, ": ", table->name, ": bad string table link");
  std::span<const uint8_t> strs = data(sections_[table->link]);
  std::span<const uint8_t> syms = data(*table);
  uint64_t count = syms.size() / kSymSize;

  std::span<const uint8_t> versym;
  std::vector<std::string_view> versions;  // into the file's bytes, which outlive the callback
  if (dynamic) {
    for (const ElfSectionHeader& s : sections_) {
      if (s.type == kShtGnuVersym) versym = data(s);
      if (s.type == kShtGnuVerdef) {
        auto v = version_names(s);
        if (!v) return v.error();
        versions = std::move(*v);
      }
    }
  }
  for (uint64_t i = 1; i < count; ++i) {
    uint64_t p = i * kSymSize;
    auto nm = string_at(strs, load<uint32_t>(syms, p));
    if (!nm) return fail(name_, ": ", table->name, ": symbol ", i, ": ", nm.error().message);
    ElfSym s;
    s.name = *nm;
    uint8_t info = syms[p + 4];
    s.type = info & 0xf;
    s.bind = info >> 4;
    s.shndx = load<uint16_t>(syms, p + 6);
    s.value = load<uint64_t>(syms, p + 8);
    s.size = load<uint64_t>(syms, p + 16);
    if (size_t at = s.name.find('@'); at != std::string_view::npos) {
      // Spelled in the name (.symtab of a linked file): "name@VER" or "name@@VER".
      bool dflt = s.name.substr(at).starts_with("@@");
      s.version = s.name.substr(at + (dflt ? 2 : 1));
      s.hidden_version = !dflt;
      s.name = s.name.substr(0, at);
    } else if (fits(i * 2, 2, versym.size())) {
      uint16_t v = load<uint16_t>(versym, i * 2);
      uint16_t idx = v & 0x7fff;
      if (idx < versions.size() && !versions[idx].empty()) {
        s.version = versions[idx];
        s.hidden_version = (v & kVersymHidden) != 0;
      }
    }
    fn(s);
  }
  return ok_status();
}

Result<std::vector<ElfNote>> ElfImage::notes(const ElfSectionHeader& sec) const {
  if (sec.type != kShtNote) return fail(name_, ": ", sec.name, " is not a note section");
  std::span<const uint8_t> d = data(sec);
  uint64_t align = sec.addralign == 8 ? 8 : 4;
  auto up = [align](uint64_t v) { return (v + align - 1) & ~(align - 1); };
  std::vector<ElfNote> out;
  uint64_t off = 0;
  while (off < d.size()) {
    if (!fits(off, 12, d.size()))
      return fail(name_, ": ", sec.name, ": note header at ", hex_string(off), " is cut short");
    uint64_t namesz = load<uint32_t>(d, off), descsz = load<uint32_t>(d, off + 4);
    ElfNote note;
    note.type = load<uint32_t>(d, off + 8);
    uint64_t name_off = off + 12;
    if (!fits(name_off, up(namesz), d.size()))
      return fail(name_, ": ", sec.name, ": note at ", hex_string(off), ": name outside the section");
    uint64_t desc_off = name_off + up(namesz);
    if (!fits(desc_off, descsz, d.size()))
      return fail(name_, ": ", sec.name, ": note at ", hex_string(off), ": descriptor outside the section");
    const char* nm = reinterpret_cast<const char*>(d.data() + name_off);
    note.owner = std::string_view(nm, namesz > 0 && nm[namesz - 1] == 0 ? namesz - 1 : namesz);
    note.desc = d.subspan(desc_off, descsz);
    out.push_back(note);
    uint64_t next = desc_off + up(descsz);
    if (next > d.size()) break;  // the last note's padding may be missing
    off = next;
  }
  return out;
}

const ElfSegment* ElfImage::segment_of(uint64_t vaddr) const {
  for (const ElfSegment& s : loads_)
    if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return &s;
  return nullptr;
}

Result<uint64_t> ElfImage::vaddr_to_offset(uint64_t vaddr) const {
  const ElfSegment* s = segment_of(vaddr);
  if (!s) return fail(name_, ": address ", hex_string(vaddr), " is in no loaded part of the file (PT_LOAD)");
  return s->offset + (vaddr - s->vaddr);
}

}  // namespace ember::attach
