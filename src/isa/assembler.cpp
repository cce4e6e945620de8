// Text -> instruction slots. Each line is matched against the templates of
// asm_syntax (llvm-objdump syntax and bpf_conformance syntax, both derived
// from the opcode table); labels are resolved in a second pass. Lines pasted
// from `llvm-objdump -d` (index, raw bytes, `<target>` annotations) are
// accepted as they are.
#include <cctype>
#include <map>
#include <optional>

#include "ember/asm.hpp"
#include "isa/asm_syntax.hpp"

namespace ember {
namespace {

using asm_syntax::Hole;
using asm_syntax::Template;
using asm_syntax::Token;
using asm_syntax::TokKind;
using Tokens = std::span<const Token>;

// The operand values a template match collects.
struct Operands {
  int dst = -1, src = -1;
  int64_t off = 0, imm = 0;
  uint64_t imm64 = 0, hi = 0;
  std::optional<std::string> label;
  Hole label_hole = Hole::JumpOff;
};

enum class Verdict { NoMatch, Match, BadValue };

struct Cursor {
  Tokens in;
  size_t i = 0;
  bool at(TokKind k) const { return i < in.size() && in[i].kind == k; }
  bool at_punct(std::string_view p) const { return at(TokKind::Punct) && in[i].text == p; }
};

// [-]NUMBER as a signed value with magnitude limits; nullopt if absent.
std::optional<std::pair<bool, uint64_t>> take_number(Cursor& c, bool sign_required) {
  bool neg = false, sign = false;
  if (c.at_punct("-") || c.at_punct("+")) {
    neg = c.in[c.i].text == "-";
    sign = true;
    ++c.i;
  }
  if ((sign_required && !sign) || !c.at(TokKind::Number)) return std::nullopt;
  return std::pair{neg, c.in[c.i++].value};
}

// Range checks: `lo_mag` is the largest magnitude allowed for a negative
// number, `hi` the largest positive value (hex immediates up to 0xffffffff
// are bit patterns, as in bpf_conformance's assembler).
Verdict checked(std::pair<bool, uint64_t> n, uint64_t lo_mag, uint64_t hi, const char* what, int64_t& out,
                std::string& err) {
  auto [neg, mag] = n;
  if (neg ? mag > lo_mag : mag > hi) {
    err = std::string(what) + " " + (neg ? "-" : "") + std::to_string(mag) + " is out of range";
    return Verdict::BadValue;
  }
  out = neg ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
  return Verdict::Match;
}

Verdict match_register(const Token& hole, const Token& tok, bool lenient, int& field) {
  if (tok.kind != TokKind::Reg) return Verdict::NoMatch;
  if (!lenient && tok.reg_prefix != hole.reg_prefix) return Verdict::NoMatch;
  if (field >= 0 && field != tok.reg) return Verdict::NoMatch;  // a register named twice must agree
  field = tok.reg;
  return Verdict::Match;
}

Verdict match_jump(Cursor& c, Hole hole, Operands& ops, std::string& err) {
  if (c.at(TokKind::Ident)) {
    ops.label = c.in[c.i++].text;
    ops.label_hole = hole;
    return Verdict::Match;
  }
  auto n = take_number(c, false);
  if (!n) return Verdict::NoMatch;
  if (hole == Hole::JumpOff) return checked(*n, 32768, 32767, "jump offset", ops.off, err);
  return checked(*n, 1ull << 31, (1ull << 31) - 1, "jump offset", ops.imm, err);
}

Verdict match_mem_offset(Cursor& c, Hole hole, Operands& ops, std::string& err) {
  if (c.at_punct(")") || c.at_punct("]")) return Verdict::Match;  // "[%r1]": offset 0
  auto n = take_number(c, true);
  if (!n) return Verdict::NoMatch;
  if (hole == Hole::MemOff) return checked(*n, 32768, 32767, "offset", ops.off, err);
  return checked(*n, 1ull << 31, (1ull << 31) - 1, "offset", ops.imm, err);
}

Verdict match_value(Cursor& c, Hole hole, Operands& ops, std::string& err) {
  auto n = take_number(c, false);
  if (!n) return Verdict::NoMatch;
  int64_t v = 0;
  switch (hole) {
    case Hole::Imm:
      if (checked(*n, 1ull << 31, 0xffffffffull, "immediate", ops.imm, err) != Verdict::Match) {
        err += " (32-bit immediates only; use lddw or 'll' for 64-bit constants)";
        return Verdict::BadValue;
      }
      ops.imm = static_cast<int32_t>(static_cast<uint32_t>(ops.imm));  // hex bit patterns
      return Verdict::Match;
    case Hole::Imm64:
      if (n->first && n->second > (1ull << 63)) {
        err = "64-bit immediate -" + std::to_string(n->second) + " is out of range";
        return Verdict::BadValue;
      }
      ops.imm64 = n->first ? 0 - n->second : n->second;
      return Verdict::Match;
    case Hole::Hi:
      if (n->first) return Verdict::NoMatch;
      if (checked(*n, 0, 0xffffffffull, "value offset", v, err) != Verdict::Match) return Verdict::BadValue;
      ops.hi = static_cast<uint64_t>(v);
      return Verdict::Match;
    default: return Verdict::NoMatch;
  }
}

Verdict match_hole(const Token& hole, Cursor& c, bool lenient, Operands& ops, std::string& err) {
  switch (hole.hole) {
    case Hole::Dst:
    case Hole::Src: {
      if (c.i >= c.in.size()) return Verdict::NoMatch;
      Verdict v = match_register(hole, c.in[c.i], lenient, hole.hole == Hole::Dst ? ops.dst : ops.src);
      if (v == Verdict::Match) ++c.i;
      return v;
    }
    case Hole::JumpOff:
    case Hole::JumpImm: return match_jump(c, hole.hole, ops, err);
    case Hole::MemOff:
    case Hole::MemImm: return match_mem_offset(c, hole.hole, ops, err);
    default: return match_value(c, hole.hole, ops, err);
  }
}

bool same_token(const Token& want, const Token& got, bool lenient) {
  if (want.kind != got.kind) return false;
  if (want.kind == TokKind::Reg) return want.reg == got.reg && (lenient || want.reg_prefix == got.reg_prefix);
  return want.text == got.text;
}

Verdict match(const Template& t, Tokens in, bool lenient, Operands& ops, std::string& err) {
  Cursor c{in};
  for (const Token& want : t.tokens) {
    if (want.kind == TokKind::Hole) {
      Verdict v = match_hole(want, c, lenient, ops, err);
      if (v != Verdict::Match) return v;
    } else if (c.i < in.size() && same_token(want, in[c.i], lenient)) {
      ++c.i;
    } else {
      return Verdict::NoMatch;
    }
  }
  return c.i == in.size() ? Verdict::Match : Verdict::NoMatch;
}

Inst build(const Template& t, const Operands& ops) {
  Inst inst;
  inst.op = t.op;
  inst.dst = static_cast<uint8_t>(ops.dst < 0 ? 0 : ops.dst);
  inst.src = static_cast<uint8_t>(ops.src < 0 ? 0 : ops.src);
  inst.off = static_cast<int16_t>(ops.off);
  inst.imm = static_cast<int32_t>(ops.imm);
  if (inst.info().form == Form::LdImm64) {
    inst.src = static_cast<uint8_t>(t.pseudo);
    inst.imm64 = t.pseudo == Pseudo::None ? ops.imm64 : (ops.hi << 32) | static_cast<uint32_t>(ops.imm);
  }
  return inst;
}

std::string join(Tokens in) {
  std::string s;
  for (const Token& t : in) {
    if (!s.empty() && t.kind != TokKind::Punct && s.back() != '[' && s.back() != '(') s += ' ';
    s += t.text;
  }
  return s;
}

// Why no template matched: the forms of the mnemonic, if it is one.
std::string explain(Tokens in) {
  std::string forms;
  if (!in.empty() && in[0].kind == TokKind::Ident)
    for (const Template& t : asm_syntax::templates())
      if (!t.tokens.empty() && t.tokens[0].kind == TokKind::Ident && t.tokens[0].text == in[0].text)
        forms += (forms.empty() ? "'" : ", '") + asm_syntax::describe(t) + "'";
  if (!forms.empty()) return "invalid operands in '" + join(in) + "'; expected " + forms;
  if (!in.empty() && in[0].kind == TokKind::Ident) return "unknown instruction '" + in[0].text + "'";
  return "'" + join(in) + "' is not an instruction";
}

struct Matched {
  const Template* t;
  Operands ops;
};

Result<Matched> match_line(Tokens in) {
  std::string first_value_error;
  for (bool lenient : {false, true}) {
    for (const Template& t : asm_syntax::templates()) {
      Operands ops;
      std::string err;
      Verdict v = match(t, in, lenient, ops, err);
      if (v == Verdict::Match) return Matched{&t, std::move(ops)};
      if (v == Verdict::BadValue && first_value_error.empty()) first_value_error = err;
    }
  }
  if (!first_value_error.empty()) return fail(first_value_error);
  return fail(explain(in));
}

// Drops what llvm-objdump prints around an instruction: "  12:\t b7 01 ...\t"
// in front and "<LBB0_2>" behind.
std::string_view strip_objdump(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  size_t digits = i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  if (i > digits && i < line.size() && line[i] == ':') {
    line.remove_prefix(i + 1);
    for (;;) {  // raw bytes: two hex digits, then whitespace
      size_t j = 0;
      while (j < line.size() && std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j + 2 <= line.size() && std::isxdigit(static_cast<unsigned char>(line[j])) &&
          std::isxdigit(static_cast<unsigned char>(line[j + 1])) &&
          (j + 2 == line.size() || std::isspace(static_cast<unsigned char>(line[j + 2]))))
        line.remove_prefix(j + 2);
      else
        break;
    }
  }
  if (size_t lt = line.rfind('<');
      lt != std::string_view::npos && line.find('>', lt) != std::string_view::npos)
    line = line.substr(0, lt);
  return line;
}

std::string_view strip_comment(std::string_view line) {
  size_t cut = line.find_first_of("#;");
  if (size_t slashes = line.find("//"); slashes < cut) cut = slashes;
  return line.substr(0, cut == std::string_view::npos ? line.size() : cut);
}

// "name:" at the start of a line defines a label; returns the label (or an
// empty view) and leaves the rest of the line in `line`.
std::string_view take_label(std::string_view& line) {
  size_t i = 0;
  while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  size_t start = i;
  if (i >= line.size() ||
      !(std::isalpha(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == '.'))
    return {};
  while (i < line.size() &&
         (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == '.'))
    ++i;
  size_t end = i;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (i >= line.size() || line[i] != ':') return {};
  std::string_view label = line.substr(start, end - start);
  line.remove_prefix(i + 1);
  return label;
}

struct LabelUse {
  size_t slot;
  size_t line;
  Hole hole;
  std::string name;
};

struct Assembly {
  std::vector<RawInsn> out;
  std::map<std::string, size_t, std::less<>> labels;
  std::vector<LabelUse> uses;
  std::optional<size_t> first_exit;
};

Error at_line(size_t line, const std::string& what) { return fail("line ", line, ": ", what); }

Status assemble_line(std::string_view line, size_t lineno, Assembly& a) {
  line = strip_objdump(strip_comment(line));
  std::string_view label = take_label(line);
  if (!label.empty() && !a.labels.emplace(std::string(label), a.out.size()).second)
    return at_line(lineno, "label '" + std::string(label) + "' is defined twice");
  auto tokens = asm_syntax::lex(line);
  if (!tokens) return at_line(lineno, tokens.error().message);
  if (tokens->empty()) return ok_status();
  Token& first = tokens->front();
  if (first.kind == TokKind::Ident && first.text.starts_with("swap")) first.text = "b" + first.text;
  auto m = match_line(*tokens);
  if (!m) return at_line(lineno, m.error().message);
  Inst inst = build(*m->t, m->ops);
  if (inst.op == Op::EXIT && !a.first_exit) a.first_exit = a.out.size();
  if (m->ops.label) a.uses.push_back({a.out.size(), lineno, m->ops.label_hole, *m->ops.label});
  encode(inst, a.out);
  return ok_status();
}

Status resolve_labels(Assembly& a) {
  // bpf_conformance: the first exit is the implicit target of "ja exit".
  if (a.first_exit) a.labels.emplace("exit", *a.first_exit);
  for (const LabelUse& use : a.uses) {
    auto it = a.labels.find(use.name);
    if (it == a.labels.end()) return at_line(use.line, "unknown label '" + use.name + "'");
    int64_t rel = static_cast<int64_t>(it->second) - static_cast<int64_t>(use.slot) - 1;
    RawInsn& r = a.out[use.slot];
    if (use.hole == Hole::JumpImm) {
      r.imm = static_cast<int32_t>(rel);
    } else if (rel < -32768 || rel > 32767) {
      return at_line(use.line, "jump to '" + use.name + "' is " + std::to_string(rel) +
                                   " instructions away, beyond the 16-bit offset (use ja32/gotol)");
    } else {
      r.off = static_cast<int16_t>(rel);
    }
  }
  return ok_status();
}

}  // namespace

Result<std::vector<RawInsn>> assemble(std::string_view text) {
  Assembly a;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto st = assemble_line(line, ++lineno, a); !st) return st.error();
  }
  if (auto st = resolve_labels(a); !st) return st.error();
  if (a.out.empty()) return fail("no instructions in the input");
  return std::move(a.out);
}

}  // namespace ember
