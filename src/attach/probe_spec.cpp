// Parsing of probe specs (libbpf section names and `ember trace -e`).
#include "attach/probe_spec.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <optional>

namespace ember::attach {
namespace {

struct ProbeType {
  std::string_view name;
  HookKind kind;
  bool usdt, sleepable;
};
constexpr ProbeType kTypes[] = {
    {"uprobe", HookKind::Entry, false, false},  {"uretprobe", HookKind::Return, false, false},
    {"uprobe.s", HookKind::Entry, false, true}, {"uretprobe.s", HookKind::Return, false, true},
    {"usdt", HookKind::Entry, true, false},     {"usdt.s", HookKind::Entry, true, true},
};

const ProbeType* find_type(std::string_view name) {
  for (const ProbeType& t : kTypes)
    if (t.name == name) return &t;
  return nullptr;
}

// "PATH:FUNC[+OFF]" (uprobes) or "PATH:PROVIDER:NAME" (usdt) after the type;
// `what` is the whole spec, for messages.
Result<ProbeSpec> parse_target(const ProbeType& t, std::string_view rest, std::string_view what) {
  ProbeSpec spec;
  spec.kind = t.kind;
  spec.usdt = t.usdt;
  spec.sleepable = t.sleepable;
  if (t.usdt) {
    size_t c2 = rest.rfind(':');
    size_t c1 = c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : rest.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos)
      return fail("probe '", what, "': expected PATH:PROVIDER:NAME after '", t.name, "'");
    spec.binary = std::string(rest.substr(0, c1));
    spec.provider = std::string(rest.substr(c1 + 1, c2 - c1 - 1));
    spec.name = std::string(rest.substr(c2 + 1));
    if (spec.binary.empty() || spec.provider.empty() || spec.name.empty())
      return fail("probe '", what, "': empty path, provider or name in PATH:PROVIDER:NAME");
    return spec;
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos)
    return fail("probe '", what, "': missing ':function[+offset]' after the path");
  spec.binary = std::string(rest.substr(0, colon));
  std::string_view func = rest.substr(colon + 1);
  if (spec.binary.empty()) return fail("probe '", what, "': empty path before ':'");
  if (size_t plus = func.rfind('+'); plus != std::string_view::npos) {
    auto off = parse_probe_number(func.substr(plus + 1));
    if (!off) return fail("probe '", what, "': bad offset '", func.substr(plus), "' (a number: +16, +0x10)");
    spec.offset = *off;
    func = func.substr(0, plus);
  }
  if (func.empty()) return fail("probe '", what, "': empty function name after ':'");
  spec.symbol = std::string(func);
  if (t.kind == HookKind::Return && spec.offset != 0)
    return fail("probe '", what, "': uretprobes do not support an offset (they hook the function's entry)");
  return spec;
}

}  // namespace

bool is_probe_section(std::string_view section) {
  return find_type(section.substr(0, section.find('/'))) != nullptr;
}

Result<ProbeSpec> parse_section_probe(std::string_view section) {
  size_t slash = section.find('/');
  std::string_view type = section.substr(0, slash);
  const ProbeType* t = find_type(type);
  if (!t)
    return fail("section '", section, "' is not a probe section (uprobe, uretprobe, usdt, and .s forms)");
  if (slash == std::string_view::npos || slash + 1 == section.size())
    return fail("section '", section, "' names no probe point: attach it with -e ", t->name,
                t->usdt ? ":PATH:PROVIDER:NAME=PROG" : ":PATH:FUNC=PROG");
  return parse_target(*t, section.substr(slash + 1), section);
}

Result<ProbeSpec> parse_cli_probe(std::string_view spec) {
  size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq + 1 == spec.size())
    return fail("probe '", spec, "': missing '=PROG' (the program to run, by name)");
  std::string_view prog = spec.substr(eq + 1);
  for (char c : prog)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      return fail("probe '", spec, "': '", prog, "' is not a program name");
  std::string_view body = spec.substr(0, eq);
  size_t colon = body.find(':');
  const ProbeType* t = find_type(body.substr(0, colon));
  if (!t || colon == std::string_view::npos)
    return fail("probe '", spec, "': expected uprobe:, uretprobe: or usdt: (and .s forms) before the path");
  auto parsed = parse_target(*t, body.substr(colon + 1), spec);
  if (!parsed) return parsed;
  parsed->prog = std::string(prog);
  return parsed;
}

std::optional<uint64_t> parse_probe_number(std::string_view s) {
  if (s.empty() || !(s[0] >= '0' && s[0] <= '9')) return std::nullopt;
  std::string copy(s);
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(copy.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace ember::attach
