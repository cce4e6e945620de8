#include "support/conformance_data.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "ember/asm.hpp"

namespace ember::testing {
namespace fs = std::filesystem;

namespace {

Status parse_hex_bytes(const std::string& text, std::vector<uint8_t>& out) {
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v, 16);
    if (ec != std::errc() || p != tok.data() + tok.size() || v > 0xff) return fail("bad mem byte '", tok, "'");
    out.push_back(static_cast<uint8_t>(v));
  }
  return ok_status();
}

std::optional<uint64_t> parse_u64(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
          s.end());
  int base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) s = s.substr(2), base = 16;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Result<ConformanceCase> read_conformance_case(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return fail(file.string(), ": cannot open");
  ConformanceCase c;
  c.name = file.stem().string();
  std::string line, section, body;
  auto flush = [&]() -> Status {
    if (section == "asm") c.asm_text = body;
    else if (section == "mem") return parse_hex_bytes(body, c.mem);
    else if (section == "result") {
      auto v = parse_u64(body);
      if (!v) return fail("bad result '", body, "'");
      c.result = *v;
    } else if (section == "error") c.error = body;
    else if (section == "raw") {
      std::istringstream words(body);
      std::string w;
      while (words >> w) {
        auto v = parse_u64(w);
        if (!v) return fail("bad raw word '", w, "'");
        c.raw.push_back(*v);
      }
    }
    return ok_status();
  };
  while (std::getline(in, line)) {
    if (line.starts_with("-- ")) {
      if (auto st = flush(); !st) return fail(file.string(), ": section ", section, ": ", st.error().message);
      section = line.substr(3), body.clear();
      while (!section.empty() && std::isspace(static_cast<unsigned char>(section.back()))) section.pop_back();
      continue;
    }
    if (section.empty()) continue;  // the copyright header
    body += line + "\n";
  }
  if (auto st = flush(); !st) return fail(file.string(), ": section ", section, ": ", st.error().message);
  return c;
}

std::vector<fs::path> conformance_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".data") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<RawInsn>> conformance_program(const ConformanceCase& c) {
  if (c.raw.empty()) return assemble(c.asm_text);
  std::vector<RawInsn> insns(c.raw.size());
  for (size_t i = 0; i < c.raw.size(); ++i) {
    uint64_t w = c.raw[i];
    insns[i].opcode = static_cast<uint8_t>(w);
    insns[i].regs = static_cast<uint8_t>(w >> 8);
    insns[i].off = static_cast<int16_t>(w >> 16);
    insns[i].imm = static_cast<int32_t>(w >> 32);
  }
  return insns;
}

}  // namespace ember::testing
