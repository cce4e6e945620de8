// USDT notes and their arguments, and the specs libbpf's usdt.bpf.h reads.
// The note layout is systemtap's (sys/sdt.h): in section .note.stapsdt,
// notes of owner "stapsdt" and type 3 whose descriptor holds the probe's
// address, the address of .stapsdt.base at link time, the semaphore's
// address (0: none), then "provider\0name\0args\0".
#include "attach/usdt.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "attach/elf_image.hpp"
#include "attach/pt_regs.hpp"

namespace ember::attach {
namespace {

constexpr uint32_t kNtStapsdt = 3;
constexpr uint16_t kEtExec = 2;

struct RegName {
  const char* names[4];  // 64, 32, 16, 8 bits
  int off;
};
// libbpf accepts these; high-byte registers (ah, bh...) hold no whole value
// and are refused, as there.
const RegName kRegs[] = {
    {{"rip", "eip", "", ""}, offsetof(PtRegs, rip)},
    {{"rax", "eax", "ax", "al"}, offsetof(PtRegs, rax)},
    {{"rbx", "ebx", "bx", "bl"}, offsetof(PtRegs, rbx)},
    {{"rcx", "ecx", "cx", "cl"}, offsetof(PtRegs, rcx)},
    {{"rdx", "edx", "dx", "dl"}, offsetof(PtRegs, rdx)},
    {{"rsi", "esi", "si", "sil"}, offsetof(PtRegs, rsi)},
    {{"rdi", "edi", "di", "dil"}, offsetof(PtRegs, rdi)},
    {{"rbp", "ebp", "bp", "bpl"}, offsetof(PtRegs, rbp)},
    {{"rsp", "esp", "sp", "spl"}, offsetof(PtRegs, rsp)},
    {{"r8", "r8d", "r8w", "r8b"}, offsetof(PtRegs, r8)},
    {{"r9", "r9d", "r9w", "r9b"}, offsetof(PtRegs, r9)},
    {{"r10", "r10d", "r10w", "r10b"}, offsetof(PtRegs, r10)},
    {{"r11", "r11d", "r11w", "r11b"}, offsetof(PtRegs, r11)},
    {{"r12", "r12d", "r12w", "r12b"}, offsetof(PtRegs, r12)},
    {{"r13", "r13d", "r13w", "r13b"}, offsetof(PtRegs, r13)},
    {{"r14", "r14d", "r14w", "r14b"}, offsetof(PtRegs, r14)},
    {{"r15", "r15d", "r15w", "r15b"}, offsetof(PtRegs, r15)},
};

// A cursor over one argument string.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  void skip_spaces() {
    while (!done() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool eat(char c) {
    skip_spaces();
    if (peek() != c) return false;
    ++i;
    return true;
  }
  // A signed integer as the assembler writes it (decimal, 0x hex, 0 octal).
  std::optional<int64_t> number() {
    skip_spaces();
    size_t start = i;
    if (peek() == '-' || peek() == '+') ++i;
    while (!done() && std::isalnum(static_cast<unsigned char>(s[i]))) ++i;
    std::string text(s.substr(start, i - start));
    if (text.empty() || text == "-" || text == "+") {
      i = start;
      return std::nullopt;
    }
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 0);
    if (errno != 0 || *end != '\0') {
      // 64-bit constants above INT64_MAX are written unsigned.
      errno = 0;
      unsigned long long u = std::strtoull(text.c_str(), &end, 0);
      if (errno != 0 || *end != '\0' || text[0] == '-') {
        i = start;
        return std::nullopt;
      }
      v = static_cast<long long>(u);
    }
    return v;
  }
  // An assembler symbol: [A-Za-z_.][A-Za-z0-9_.$]*, or empty.
  std::string_view symbol() {
    size_t start = i;
    auto first = [](char ch) {
      return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
    };
    if (done() || !first(s[i])) return {};
    while (!done() && (first(s[i]) || std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '$')) ++i;
    return s.substr(start, i - start);
  }
  std::string_view reg_name() {
    skip_spaces();
    size_t start = i;
    while (!done() && std::isalnum(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(start, i - start);
  }
};

// The part of val_off a symbolic displacement adds (see UsdtSymbols).
Result<uint64_t> resolve_symbol(std::string_view symbol, const UsdtArg& arg, const std::string& where,
                                const UsdtSymbols* syms) {
  if (!syms || !syms->vaddr_of)
    return fail(where, ": a symbolic displacement ('", symbol, "') needs the file's symbols");
  std::optional<uint64_t> vaddr = syms->vaddr_of(symbol);
  if (!vaddr)
    return fail(where, ": no symbol '", symbol, "' in the file (stripped?) for the argument's address");
  if (arg.reg == "rip") return *vaddr - syms->pc_vaddr;
  if (!syms->absolute)
    return fail(where, ": '", symbol, "(%", arg.reg,
                ")' needs an absolute address, and the file is position-independent");
  return *vaddr;
}

// One argument at the cursor; `where` names the note and argument.
Result<UsdtArg> parse_one(Cursor& c, const std::string& where, const UsdtSymbols* syms) {
  UsdtArg arg;
  auto size = c.number();
  if (!size || !c.eat('@')) return fail(where, ": expected SIZE@LOCATION");
  int64_t sz = *size < 0 ? -*size : *size;
  if (sz != 1 && sz != 2 && sz != 4 && sz != 8)
    return fail(where, ": size ", *size, " is not 1, 2, 4 or 8 bytes");
  arg.size = static_cast<uint8_t>(sz);
  arg.is_signed = *size < 0;
  auto reg = [&](UsdtArg& a) -> Status {
    if (!c.eat('%')) return fail(where, ": expected a register (%name)");
    std::string_view name = c.reg_name();
    int off = usdt_register_offset(name);
    if (off < 0) return fail(where, ": register '%", name, "' is not supported");
    a.reg = std::string(name);
    a.reg_off = static_cast<int16_t>(off);
    return ok_status();
  };
  c.skip_spaces();
  if (c.peek() == '$') {
    ++c.i;
    auto v = c.number();
    if (!v) return fail(where, ": expected a constant after '$'");
    arg.kind = UsdtArgKind::Const;
    arg.val_off = static_cast<uint64_t>(*v);
    return arg;
  }
  if (c.peek() == '%') {
    arg.kind = UsdtArgKind::Reg;
    if (Status st = reg(arg); !st) return st.error();
    return arg;
  }
  int64_t disp = 0;
  std::string_view symbol;
  if (c.peek() != '(') {
    c.skip_spaces();
    symbol = c.symbol();
    if (!symbol.empty() && (c.peek() == '+' || c.peek() == '-')) {
      auto v = c.number();
      if (!v) return fail(where, ": expected a number after '", symbol, "'");
      disp = *v;
    } else if (symbol.empty()) {
      auto v = c.number();
      if (!v) return fail(where, ": expected a displacement, a register or a constant");
      disp = *v;
    }
  }
  if (!c.eat('(')) return fail(where, ": expected '(' after the displacement");
  arg.kind = UsdtArgKind::RegDeref;
  arg.val_off = static_cast<uint64_t>(disp);
  if (Status st = reg(arg); !st) return st.error();
  if (c.eat(','))
    return fail(where, ": an index register (base,index,scale) is not supported by libbpf's usdt.bpf.h");
  if (!c.eat(')')) return fail(where, ": expected ')'");
  if (!symbol.empty()) {
    auto sym = resolve_symbol(symbol, arg, where, syms);
    if (!sym) return sym.error();
    arg.val_off += *sym;
  }
  return arg;
}

// Symbol name -> vaddr over .symtab and .dynsym (defined symbols; a name
// with two different values maps to nothing), built on first use.
using SymbolTable = std::optional<std::unordered_map<std::string, std::optional<uint64_t>>>;

std::optional<uint64_t> data_symbol(const ElfImage& img, SymbolTable& table, std::string_view name) {
  if (!table) {
    table.emplace();
    for (bool dynamic : {false, true}) {
      Status st = img.for_each_symbol(dynamic, [&](const ElfSym& s) {
        if (s.shndx == 0 || s.name.empty()) return;
        auto [it, fresh] = table->emplace(std::string(s.name), s.value);
        if (!fresh && it->second != s.value) it->second.reset();
      });
      if (!st) break;  // a broken table adds nothing; arguments naming its symbols fail
    }
  }
  auto it = table->find(std::string(name));
  return it == table->end() ? std::nullopt : it->second;
}

// The notes of one image, with pc and semaphore as file offsets.
Result<std::vector<UsdtNote>> notes_of(const ElfImage& img) {
  std::vector<UsdtNote> out;
  SymbolTable table;
  const ElfSectionHeader* sec = img.section(".note.stapsdt");
  if (!sec) return out;
  auto notes = img.notes(*sec);
  if (!notes) return notes.error();
  // Prelink moves a file without updating its notes; .stapsdt.base tells by
  // how much (its address now minus the one each note recorded).
  const ElfSectionHeader* base_sec = img.section(".stapsdt.base");
  uint64_t base_addr = base_sec ? base_sec->addr : 0;
  size_t index = 0;
  for (const ElfNote& n : *notes) {
    if (n.owner != "stapsdt" || n.type != kNtStapsdt) continue;
    std::string where = img.name() + ": .note.stapsdt note " + std::to_string(index++);
    if (n.desc.size() < 24 + 3) return fail(where, ": descriptor of ", n.desc.size(), " bytes is too short");
    UsdtNote note;
    auto u64 = [&](size_t off) {
      uint64_t v;
      std::memcpy(&v, n.desc.data() + off, 8);
      return v;
    };
    note.pc_vaddr = u64(0);
    note.base_vaddr = u64(8);
    note.semaphore_vaddr = u64(16);
    std::string_view strs(reinterpret_cast<const char*>(n.desc.data() + 24), n.desc.size() - 24);
    std::string_view fields[3];
    for (std::string_view& f : fields) {
      size_t nul = strs.find('\0');
      if (nul == std::string_view::npos)
        return fail(where, ": provider, name and arguments are not NUL-terminated");
      f = strs.substr(0, nul);
      strs.remove_prefix(nul + 1);
    }
    note.provider = std::string(fields[0]);
    note.name = std::string(fields[1]);
    note.args_text = std::string(fields[2]);
    where = img.name() + ": USDT " + note.provider + ":" + note.name;
    if (base_addr != 0) note.pc_vaddr += base_addr - note.base_vaddr;
    const ElfSegment* seg = img.segment_of(note.pc_vaddr);
    if (!seg || !(seg->flags & kPfX))
      return fail(where, ": probe address ", hex_string(note.pc_vaddr), " is not in an executable segment");
    note.pc_file_offset = seg->offset + (note.pc_vaddr - seg->vaddr);
    if (note.semaphore_vaddr != 0) {
      auto off = img.vaddr_to_offset(note.semaphore_vaddr);
      if (!off) return fail(where, ": semaphore: ", off.error().message);
      note.semaphore_file_offset = *off;
    }
    UsdtSymbols syms{[&](std::string_view sym) { return data_symbol(img, table, sym); }, note.pc_vaddr,
                     img.type() == kEtExec};
    auto args = parse_usdt_args(note.args_text, where, &syms);
    if (!args) return args.error();
    note.args = std::move(*args);
    out.push_back(std::move(note));
  }
  return out;
}

}  // namespace

int usdt_register_offset(std::string_view reg) {
  for (const RegName& r : kRegs)
    for (const char* n : r.names)
      if (*n && reg == n) return r.off;
  return -1;
}

Result<std::vector<UsdtArg>> parse_usdt_args(std::string_view text, std::string_view where,
                                             const UsdtSymbols* syms) {
  std::vector<UsdtArg> out;
  Cursor c{text};
  c.skip_spaces();
  while (!c.done()) {
    size_t start = c.i;
    size_t end = text.find_first_of(" \t\n", start);
    std::string arg_where =
        std::string(where) + ": argument #" + std::to_string(out.size() + 1) + " '" +
        std::string(text.substr(start, end == std::string_view::npos ? end : end - start)) + "'";
    if (out.size() == kUsdtMaxArgs) return fail(arg_where, ": more than ", kUsdtMaxArgs, " arguments");
    auto arg = parse_one(c, arg_where, syms);
    if (!arg) return arg.error();
    if (!c.done() && !std::isspace(static_cast<unsigned char>(c.peek())))
      return fail(arg_where, ": unexpected '", c.peek(), "'");
    out.push_back(std::move(*arg));
    c.skip_spaces();
  }
  return out;
}

Result<std::vector<UsdtNote>> read_usdt_notes(const std::string& binary) {
  auto img = ElfImage::open(binary);
  if (!img) return img.error();
  return notes_of(*img);
}

Result<std::vector<UsdtNote>> parse_usdt_notes(std::span<const uint8_t> elf_bytes, const std::string& name) {
  auto img = ElfImage::parse(std::vector<uint8_t>(elf_bytes.begin(), elf_bytes.end()), name);
  if (!img) return img.error();
  return notes_of(*img);
}

std::vector<uint8_t> encode_usdt_spec(const UsdtNote& note, uint64_t usdt_cookie) {
  BpfUsdtSpec spec;
  std::memset(&spec, 0, sizeof spec);  // padding included: the bytes go into a map
  size_t n = std::min<size_t>(note.args.size(), kUsdtMaxArgs);
  for (size_t i = 0; i < n; ++i) {
    const UsdtArg& a = note.args[i];
    spec.args[i].val_off = a.val_off;
    spec.args[i].arg_type = static_cast<uint32_t>(a.kind);
    spec.args[i].reg_off = a.kind == UsdtArgKind::Const ? 0 : a.reg_off;
    spec.args[i].arg_signed = a.is_signed;
    spec.args[i].arg_bitshift = static_cast<int8_t>(64 - 8 * a.size);
  }
  spec.usdt_cookie = usdt_cookie;
  spec.arg_cnt = static_cast<int16_t>(n);
  std::vector<uint8_t> out(sizeof spec);
  std::memcpy(out.data(), &spec, sizeof spec);
  return out;
}

}  // namespace ember::attach
