#include "attach/agent_probes.hpp"

#include <set>

#include "attach/symbols.hpp"

namespace ember::attach {
namespace {

std::string spec_text(const ProbeSpec& s) {
  if (s.usdt) return "usdt:" + s.binary + ":" + s.provider + ":" + s.name;
  std::string t =
      std::string(s.kind == HookKind::Return ? "uretprobe:" : "uprobe:") + s.binary + ":" + s.symbol;
  if (s.offset) t += "+" + std::to_string(s.offset);
  return t;
}

// Finds the binary and the code a spec names.
Status resolve(BoundProbe& b, pid_t pid) {
  auto bin = resolve_binary(b.spec.binary, pid);
  if (!bin) return fail(b.describe(), ": ", bin.error().message);
  b.binary = *bin;
  if (!b.spec.usdt) {
    auto sym = lookup_symbol(b.binary, b.spec.symbol, b.spec.offset);
    if (!sym) return fail(b.describe(), ": ", sym.error().message);
    b.file_offset = sym->file_offset;
    b.ifunc = sym->ifunc;
    // The resolver's size says nothing about the implementation it picks.
    if (b.ifunc && b.spec.offset != 0)
      return fail(b.describe(), ": ", sym->name,
                  " is an IFUNC (its implementation is chosen at run time): an offset into it means nothing; "
                  "probe the implementation's own symbol");
    return ok_status();
  }
  auto notes = read_usdt_notes(b.binary);
  if (!notes) return fail(b.describe(), ": ", notes.error().message);
  for (auto& n : *notes)
    if (n.provider == b.spec.provider && n.name == b.spec.name) b.usdt_sites.push_back(std::move(n));
  if (b.usdt_sites.empty())
    return fail(b.describe(), ": ", b.binary, " has no USDT probe ", b.spec.provider, ":", b.spec.name);
  return ok_status();
}

}  // namespace

std::string BoundProbe::describe() const {
  return spec_text(spec) + " (program " + (prog ? prog->name() : spec.prog) + ")";
}

Result<std::vector<BoundProbe>> bind_probes(const Object& obj, const std::vector<std::string>& cli_specs,
                                            pid_t pid) {
  std::vector<BoundProbe> out;
  std::string errors;
  auto add_error = [&](const std::string& e) { errors += (errors.empty() ? "" : "\n") + e; };
  std::set<const Prog*> bound_by_cli;
  for (const auto& text : cli_specs) {
    auto spec = parse_cli_probe(text);
    if (!spec) {
      add_error("-e " + text + ": " + spec.error().message);
      continue;
    }
    const Prog* p = obj.prog(spec->prog);
    if (!p) {
      add_error("-e " + text + ": " + obj.name() + " has no program '" + spec->prog + "'");
      continue;
    }
    if (!is_probe_section(p->section())) {
      add_error("-e " + text + ": program '" + spec->prog + "' is in section '" + p->section() +
                "', not a probe section (uprobe, uretprobe, usdt)");
      continue;
    }
    bound_by_cli.insert(p);
    out.push_back({.spec = std::move(*spec), .prog = p});
  }
  for (const Prog* p : obj.progs()) {
    if (!is_probe_section(p->section())) continue;
    auto spec = parse_section_probe(p->section());
    if (spec) {
      out.push_back({.spec = std::move(*spec), .prog = p});
      out.back().spec.prog = p->name();
    } else if (!bound_by_cli.count(p)) {
      add_error("program '" + p->name() + "': " + spec.error().message);
    }
  }
  if (out.empty() && errors.empty())
    add_error(obj.name() +
              " has no probe programs (sections uprobe/PATH:FUNC, uretprobe/PATH:FUNC, "
              "usdt/PATH:PROVIDER:NAME, or SEC(\"uprobe\") with -e)");
  for (auto& b : out)
    if (auto st = resolve(b, pid); !st) add_error(st.error().message);
  if (!errors.empty()) return Error{errors};
  return out;
}

}  // namespace ember::attach
