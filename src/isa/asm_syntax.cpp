// Templates for both syntaxes, built from the opcode table's form, width and
// operator columns, and the lexer shared by the assembler.
#include "isa/asm_syntax.hpp"

#include <cassert>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace ember::asm_syntax {
namespace {

bool is_alu32(const OpInfo& info) { return (info.opcode & 0x07) == 0x04; }
bool is_jmp32(const OpInfo& info) { return (info.opcode & 0x07) == 0x06; }

std::string size_name(const OpInfo& info, bool sign) {
  return std::string(sign ? "s" : "u") + std::to_string(info.width * 8);
}

// llvm-objdump's rendering, as printed by LLVM 18+ (hex immediates).
std::string llvm_alu(const OpInfo& info) {
  const char* r = is_alu32(info) ? "$w" : "$r";
  std::string d = std::string(r) + "d", s = std::string(r) + "s";
  std::string op = info.llvm;
  switch (info.form) {
    case Form::AluImm: return d + " " + op + " $imm";
    case Form::AluUnary: return d + " = -" + d;
    case Form::Endian: return "$rd = " + op + std::to_string(info.width) + " $rd";
    default: break;
  }
  if (info.width != 0)  // movsx: the width column is the source width
    return d + " = (s" + std::to_string(info.width) + ")" + s;
  return d + " " + op + " " + s;
}

std::string llvm_atomic(const OpInfo& info) {
  bool w32 = info.width == 4;
  std::string v = w32 ? "$ws" : "$rs";
  std::string mem = "(" + size_name(info, false) + " *)($rd $moff)";
  std::string op = info.llvm;
  if (op == "xchg") return v + " = xchg" + std::string(w32 ? "32_32" : "_64") + "($rd $moff, " + v + ")";
  if (op == "cmpxchg") {
    std::string r0 = w32 ? "w0" : "r0";
    return r0 + " = cmpxchg" + std::string(w32 ? "32_32" : "_64") + "($rd $moff, " + r0 + ", " + v + ")";
  }
  if (op.starts_with("fetch_")) return v + " = atomic_" + op + "(" + mem + ", " + v + ")";
  static constexpr struct {
    const char* name;
    const char* assign;
  } kAssign[] = {{"add", "+="}, {"or", "|="}, {"and", "&="}, {"xor", "^="}};
  for (const auto& a : kAssign)
    if (op == a.name) return "lock *" + mem + " " + a.assign + " " + v;
  assert(false && "atomic operation without an llvm rendering");
  return {};
}

std::string llvm_ld_imm64(Pseudo p) {
  switch (p) {
    case Pseudo::None: return "$rd = $imm64 ll";
    case Pseudo::MapFd: return "$rd = map[fd:$imm] ll";
    case Pseudo::MapValue: return "$rd = map_value[fd:$imm]+$hi ll";
    case Pseudo::BtfId: return "$rd = btf_id[$imm]+$hi ll";  // hi: module BTF fd
    case Pseudo::Func: return "$rd = func pc$jimm ll";
    case Pseudo::MapIdx: return "$rd = map[idx:$imm] ll";
    case Pseudo::MapIdxValue: return "$rd = map_value[idx:$imm]+$hi ll";
  }
  return {};
}

std::string llvm_text(const OpInfo& info, Pseudo pseudo) {
  const char* r = is_jmp32(info) ? "$w" : "$r";
  std::string op = info.llvm;
  std::string mem = "*(" + size_name(info, op == "s") + " *)";
  switch (info.form) {
    case Form::AluImm:
    case Form::AluReg:
    case Form::AluUnary:
    case Form::Endian: return llvm_alu(info);
    case Form::LdImm64: return llvm_ld_imm64(pseudo);
    case Form::LdAbs: return "r0 = " + mem + "skb[$imm]";
    case Form::LdInd: return "r0 = " + mem + "skb[$rs $mimm]";
    case Form::Ldx: return "$rd = " + mem + "($rs $moff)";
    case Form::St: return mem + "($rd $moff) = $imm";
    case Form::Stx: return mem + "($rd $moff) = $rs";
    case Form::Atomic: return llvm_atomic(info);
    case Form::Ja: return "goto $joff";
    case Form::Ja32: return "gotol $jimm";
    case Form::JmpImm: return "if " + std::string(r) + "d " + op + " $imm goto $joff";
    case Form::JmpReg: return "if " + std::string(r) + "d " + op + " " + r + "s goto $joff";
    case Form::Call: return info.op == Op::CALL_KFUNC ? "call kfunc $imm" : "call $imm";
    case Form::CallLocal: return "call pc$jimm";
    case Form::CallX: return "callx $rd";
    case Form::Exit: return "exit";
  }
  return {};
}

// bpf_conformance's assembler syntax (and uBPF's): mnemonic, then operands.
std::string conformance_text(const OpInfo& info) {
  std::string m = info.mnemonic;
  switch (info.form) {
    case Form::AluImm: return m + " $pd, $imm";
    case Form::AluReg: return m + " $pd, $ps";
    case Form::AluUnary:
    case Form::Endian: return m + " $pd";
    case Form::LdImm64: return m + " $pd, $imm64";
    case Form::LdAbs: return m + " $imm";
    case Form::LdInd: return m + " $ps, $imm";
    case Form::Ldx: return m + " $pd, [$ps$moff]";
    case Form::St: return m + " [$pd$moff], $imm";
    case Form::Stx:
    case Form::Atomic: return m + " [$pd$moff], $ps";
    case Form::Ja: return m + " $joff";
    case Form::Ja32: return m + " $jimm";
    case Form::JmpImm: return m + " $pd, $imm, $joff";
    case Form::JmpReg: return m + " $pd, $ps, $joff";
    case Form::Call: return m + " $imm";
    case Form::CallLocal: return m + " $jimm";
    case Form::CallX: return "call $pd";
    case Form::Exit: return m;
  }
  return {};
}

struct HoleName {
  std::string_view name;
  Hole hole;
  char prefix;
};
constexpr HoleName kHoles[] = {
    {"rd", Hole::Dst, 'r'},     {"wd", Hole::Dst, 'w'},    {"pd", Hole::Dst, '%'},
    {"rs", Hole::Src, 'r'},     {"ws", Hole::Src, 'w'},    {"ps", Hole::Src, '%'},
    {"imm64", Hole::Imm64, 0},  {"imm", Hole::Imm, 0},     {"hi", Hole::Hi, 0},
    {"moff", Hole::MemOff, 0},  {"mimm", Hole::MemImm, 0}, {"joff", Hole::JumpOff, 0},
    {"jimm", Hole::JumpImm, 0},
};

Template make_template(const OpInfo& info, Pseudo pseudo, Syntax syntax, std::string text) {
  auto tokens = lex(text, /*allow_holes=*/true);
  assert(tokens.ok() && "malformed built-in template");
  return Template{info.op, pseudo, syntax, std::move(text), std::move(tokens.value())};
}

std::vector<Template> build_templates() {
  std::vector<Template> out;
  for (const OpInfo& info : op_table()) {
    if (info.form != Form::LdImm64) {
      out.push_back(make_template(info, Pseudo::None, Syntax::Llvm, llvm_text(info, Pseudo::None)));
      continue;
    }
    for (uint8_t p = 0; p <= static_cast<uint8_t>(Pseudo::MapIdxValue); ++p)
      out.push_back(make_template(info, Pseudo{p}, Syntax::Llvm, llvm_text(info, Pseudo{p})));
  }
  for (const OpInfo& info : op_table())
    out.push_back(make_template(info, Pseudo::None, Syntax::Conformance, conformance_text(info)));
  return out;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A signed number: "-0x5" / "0x5" (llvm) or "-5" / "5" (conformance).
std::string signed_number(int64_t v, Syntax syntax) {
  uint64_t mag = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits = syntax == Syntax::Llvm ? hex(mag) : std::to_string(mag);
  return v < 0 ? "-" + digits : digits;
}

// An offset with its sign always shown: "+ 0x4" (llvm memory), "+0x3"
// (llvm jump), "+4" (conformance).
std::string offset(int64_t v, Syntax syntax, bool spaced) {
  std::string n = signed_number(v, syntax);
  if (n[0] != '-') n = "+" + n;
  if (spaced) n.insert(1, " ");
  return n;
}

std::string reg_text(char prefix, int reg) {
  return (prefix == '%' ? std::string("%r") : std::string(1, prefix)) + std::to_string(reg);
}

std::string fill(const Token& hole, const Template& t, const Inst& inst) {
  bool llvm = t.syntax == Syntax::Llvm;
  switch (hole.hole) {
    case Hole::Dst: return reg_text(hole.reg_prefix, inst.dst);
    case Hole::Src: return reg_text(hole.reg_prefix, inst.src);
    case Hole::Imm: return signed_number(inst.imm, t.syntax);
    case Hole::Imm64: return hex(inst.imm64);
    case Hole::Hi: return hex(inst.imm64 >> 32);
    case Hole::MemOff: return offset(inst.off, t.syntax, llvm);
    case Hole::MemImm: return offset(inst.imm, t.syntax, llvm);
    case Hole::JumpOff: return offset(inst.off, t.syntax, false);
    case Hole::JumpImm: return offset(inst.imm, t.syntax, false);
  }
  return {};
}

const HoleName* find_hole(std::string_view text, size_t& len) {
  for (const HoleName& h : kHoles)  // longest names first where they share a prefix
    if (text.starts_with(h.name)) {
      len = h.name.size();
      return &h;
    }
  return nullptr;
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

Result<Token> lex_number(std::string_view text, size_t& i) {
  size_t start = i;
  while (i < text.size() && ident_char(text[i])) ++i;
  std::string_view s = text.substr(start, i - start);
  Token t{TokKind::Number, std::string(s)};
  bool is_hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  std::string_view digits = is_hex ? s.substr(2) : s;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.value, is_hex ? 16 : 10);
  if (ec == std::errc::result_out_of_range) return fail("number '", s, "' does not fit in 64 bits");
  if (ec != std::errc() || end != digits.data() + digits.size()) return fail("malformed number '", s, "'");
  return t;
}

Result<Token> lex_register(char prefix, std::string_view digits, std::string_view written) {
  int n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n > kFramePointer)
    return fail("invalid register '", written, "' (registers are r0 to r10)");
  Token t{TokKind::Reg, std::string(written)};
  t.reg_prefix = prefix;
  t.reg = n;
  return t;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

Result<Token> lex_word(std::string_view text, size_t& i) {
  size_t start = i;
  while (i < text.size() && ident_char(text[i])) ++i;
  std::string_view w = text.substr(start, i - start);
  if ((w[0] == 'r' || w[0] == 'w') && all_digits(w.substr(1))) return lex_register(w[0], w.substr(1), w);
  return Token{TokKind::Ident, std::string(w)};
}

}  // namespace

Result<std::vector<Token>> lex(std::string_view text, bool allow_holes) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '%' && i + 1 < text.size() && text[i + 1] == 'r') {
      size_t start = i;
      i += 2;
      while (i < text.size() && ident_char(text[i])) ++i;
      auto reg = lex_register('%', text.substr(start + 2, i - start - 2), text.substr(start, i - start));
      if (!reg) return reg.error();
      out.push_back(std::move(*reg));
    } else if (allow_holes && c == '$') {
      size_t len = 0;
      const HoleName* h = find_hole(text.substr(i + 1), len);
      if (!h) return fail("unknown template hole at '", text.substr(i), "'");
      Token t{TokKind::Hole, std::string(h->name)};
      t.hole = h->hole;
      t.reg_prefix = h->prefix;
      out.push_back(std::move(t));
      i += 1 + len;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      auto n = lex_number(text, i);
      if (!n) return n.error();
      out.push_back(std::move(*n));
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '.') {
      auto w = lex_word(text, i);
      if (!w) return w.error();
      out.push_back(std::move(*w));
    } else if (std::string_view("+-*/%=<>!&|^()[],:").find(c) != std::string_view::npos) {
      out.push_back(Token{TokKind::Punct, std::string(1, c)});
      ++i;
    } else {
      return fail(
          "unexpected character '",
          std::isprint(static_cast<unsigned char>(c)) ? std::string(1, c) : hex(static_cast<uint8_t>(c)),
          "' at column ", i + 1);
    }
  }
  return out;
}

namespace {

constexpr size_t kNumPseudo = static_cast<size_t>(Pseudo::MapIdxValue) + 1;

// All templates, and for each (op, pseudo, syntax) where to find its own.
struct Tables {
  std::vector<Template> all;
  std::vector<int> index;  // [(op * kNumPseudo + pseudo) * 2 + syntax] -> position in all, or -1
};

size_t slot(Op op, Pseudo pseudo, Syntax syntax) {
  return (static_cast<size_t>(op) * kNumPseudo + static_cast<size_t>(pseudo)) * 2 +
         static_cast<size_t>(syntax);
}

const Tables& tables() {
  static const Tables t = [] {
    Tables t{build_templates(), std::vector<int>(kNumOps * kNumPseudo * 2, -1)};
    for (size_t i = 0; i < t.all.size(); ++i)
      t.index[slot(t.all[i].op, t.all[i].pseudo, t.all[i].syntax)] = static_cast<int>(i);
    return t;
  }();
  return t;
}

}  // namespace

std::span<const Template> templates() { return tables().all; }

const Template& template_for(Op op, Pseudo pseudo, Syntax syntax) {
  const Tables& t = tables();
  if (op_info(op).form != Form::LdImm64 || static_cast<size_t>(pseudo) >= kNumPseudo) pseudo = Pseudo::None;
  int i = t.index[slot(op, pseudo, syntax)];
  // Pseudo ld_imm64 forms exist in llvm syntax only.
  if (i < 0) i = t.index[slot(op, pseudo, Syntax::Llvm)];
  assert(i >= 0);
  return t.all[static_cast<size_t>(i)];
}

namespace {

// Copies a template's text, replacing each hole with what `fill_hole` says.
template <class Fill>
std::string expand(const std::string& s, Fill&& fill_hole) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const HoleName* h = s[i] == '$' ? find_hole(std::string_view(s).substr(i + 1), len) : nullptr;
    if (!h) {
      out += s[i++];
      continue;
    }
    out += fill_hole(*h);
    i += 1 + len;
  }
  return out;
}

}  // namespace

std::string render(const Template& t, const Inst& inst) {
  return expand(t.text, [&](const HoleName& h) {
    Token hole{TokKind::Hole};
    hole.hole = h.hole;
    hole.reg_prefix = h.prefix;
    return fill(hole, t, inst);
  });
}

std::string describe(const Template& t) {
  static constexpr struct {
    Hole hole;
    const char* name;
  } kNames[] = {{Hole::Dst, "D"},
                {Hole::Src, "S"},
                {Hole::Imm, "IMM"},
                {Hole::Imm64, "IMM64"},
                {Hole::Hi, "OFF"},
                {Hole::MemOff, "+OFF"},
                {Hole::MemImm, "+IMM"},
                {Hole::JumpOff, "+OFF|LABEL"},
                {Hole::JumpImm, "+IMM|LABEL"}};
  return expand(t.text, [](const HoleName& h) {
    std::string out = h.prefix ? (h.prefix == '%' ? "%r" : std::string(1, h.prefix)) : "";
    for (const auto& n : kNames)
      if (n.hole == h.hole) out += n.name;
    return out;
  });
}

}  // namespace ember::asm_syntax
