#include "cli/io.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "ember/asm.hpp"
#include "ember/elf.hpp"
#include "ember/object.hpp"

namespace ember::cli {

std::string json_text(const std::string& v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      s += '\\', s += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      s += buf;
    } else {
      s += c;
    }
  }
  return s + "\"";
}

std::string source_comment(const BtfLineInfo& l) {
  std::string src = l.source;
  src.erase(0, src.find_first_not_of(" \t"));
  std::string file = l.file.substr(l.file.find_last_of('/') + 1);
  return "; " + src + " @ " + file + ":" + std::to_string(l.line);
}

InsnNotes::InsnNotes(const ObjectProgram& p) : helpers_(default_helper_table()) {
  for (const DataRef& r : p.data_refs)
    refs_[r.insn] =
        r.section.empty() ? "extern " + r.symbol
        : r.section == ".maps" || r.section == "maps"
            ? "map " + r.symbol
            : r.section + (r.symbol.empty() ? "" : " " + r.symbol) + "+" + std::to_string(r.offset);
}

std::string InsnNotes::operator()(size_t index, const Inst& insn) const {
  std::string s;
  if (auto r = refs_.find(index); r != refs_.end()) s += "  ; " + r->second;
  if (insn.op == Op::CALL)
    if (const HelperDef* h = helpers_.find(static_cast<int64_t>(insn.imm)))
      s += "  ; " + std::string(h->name);
  return s;
}

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return fail(path, ": read error");
  return bytes;
}

Status write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fail(path, ": cannot create: ", std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) return fail(path, ": write error");
  return ok_status();
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::vector<uint8_t>> parse_hex(std::string_view text, const std::string& what) {
  std::vector<uint8_t> out;
  int pending = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (pending >= 0) return fail(what, ": odd hex digit before position ", i);
      continue;
    }
    int d = hex_digit(c);
    if (d < 0) return fail(what, ": '", c, "' at position ", i, " is not a hex digit");
    if (pending < 0)
      pending = d;
    else
      out.push_back(static_cast<uint8_t>(pending << 4 | d)), pending = -1;
  }
  if (pending >= 0) return fail(what, ": odd number of hex digits");
  return out;
}

std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) s += kDigits[b >> 4], s += kDigits[b & 15];
  return s;
}

Result<Format> parse_format(const std::string& name) {
  if (name == "auto") return Format::Auto;
  if (name == "raw") return Format::Raw;
  if (name == "asm") return Format::Asm;
  if (name == "elf") return Format::Elf;
  if (name == "hex") return Format::Hex;
  return fail("unknown format '", name, "' (expected auto, raw, asm, hex or elf)");
}

Format detect_format(const std::vector<uint8_t>& bytes) {
  if (ElfFile::looks_like_elf(bytes)) return Format::Elf;
  bool text = !bytes.empty();
  bool hex_only = true;
  for (uint8_t b : bytes) {
    if (!(std::isprint(b) || std::isspace(b))) text = false;
    if (!(std::isxdigit(b) || std::isspace(b))) hex_only = false;
  }
  if (!text) return Format::Raw;
  return hex_only ? Format::Hex : Format::Asm;
}

// A program of an object, linked with its subprograms: chosen by --section
// (a SEC() name or a function name) unless the object has only one.
static Result<LoadedCode> load_elf_program(const std::string& path, const std::vector<uint8_t>& bytes,
                                           const std::string& section) {
  auto obj = load_object(bytes, path);
  if (!obj) return obj.error();
  std::string names;
  for (const ObjectProgram& p : obj->programs)
    names += (names.empty() ? "" : ", ") + p.name + " (" + p.section + ")";
  const ObjectProgram* chosen = section.empty() ? nullptr : obj->find(section);
  if (!section.empty() && !chosen)
    return fail(path, ": no program or section '", section, "' (have: ", names, ")");
  if (!chosen) {
    if (obj->programs.size() != 1)
      return fail(path, ": ", obj->programs.size(), " programs (", names, "): choose one with --section");
    chosen = &obj->programs[0];
  }
  if (!chosen->data_refs.empty())
    return fail(path, ": program ", chosen->name, " uses maps or global data (", chosen->data_refs[0].section,
                "), which Ember's map layer does not provide yet");
  return LoadedCode{chosen->insns, path + " program " + chosen->name + " (" + chosen->section + ")"};
}

Result<LoadedCode> load_code(const std::string& path, Format format, const std::string& section) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  if (format == Format::Auto) format = detect_format(*bytes);
  switch (format) {
    case Format::Elf: return load_elf_program(path, *bytes, section);
    case Format::Asm: {
      auto insns = assemble(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
      if (!insns) return fail(path, ": ", insns.error().message);
      return LoadedCode{std::move(*insns), path};
    }
    case Format::Hex: {
      auto raw =
          parse_hex(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), path);
      if (!raw) return raw.error();
      *bytes = std::move(*raw);
      [[fallthrough]];
    }
    case Format::Raw:
    case Format::Auto: {
      auto insns = bytes_to_insns(*bytes);
      if (!insns) return fail(path, ": ", insns.error().message);
      return LoadedCode{std::move(*insns), path};
    }
  }
  return fail("unreachable");
}

}  // namespace ember::cli
