// Probe specs: what a libbpf section name (SEC("uprobe/PATH:FUNC+0x10")) or
// an `ember trace -e` argument asks to attach. Pure parsing: no file is
// opened here (symbols.hpp resolves the binary and the symbol).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "attach/hooks.hpp"
#include "ember/result.hpp"

namespace ember::attach {

struct ProbeSpec {
  HookKind kind = HookKind::Entry;  // Return: uretprobe
  bool usdt = false;                // provider/name set; symbol/offset unused
  std::string binary;               // as written: a path or a library name (resolve_binary)
  std::string symbol;          // a function name (maybe "@VERSION"), or an address as written ("0x1234"):
                               // give it to symbol_file_offset(binary, symbol, offset) as is
  uint64_t offset = 0;         // +OFFSET after the function or address
  std::string provider, name;  // USDT
  std::string prog;            // -e: the program's name; sections: empty
  bool sleepable = false;      // uprobe.s / uretprobe.s / usdt.s (runs the same in user space)
};

// libbpf's section names: "uprobe/PATH:FUNC[+OFFSET]", "uretprobe/PATH:FUNC",
// "uprobe.s/...", "uretprobe.s/...", "usdt/PATH:PROVIDER:NAME", "usdt.s/...".
// FUNC may be an address. PATH may contain ':' (split at the last one, as
// libbpf first did; function, provider and probe names never hold one).
// Uretprobes take no +OFFSET (as libbpf). A plain
// "uprobe", "uretprobe" or "usdt" section is an error that says the probe
// must be given with -e.
Result<ProbeSpec> parse_section_probe(std::string_view section);

// `ember trace -e`: "uprobe:PATH:FUNC[+OFF]=PROG", "uretprobe:PATH:FUNC[+OFF]=PROG",
// "usdt:PATH:PROVIDER:NAME=PROG".
Result<ProbeSpec> parse_cli_probe(std::string_view spec);
// A FUNC given as an address or a +OFFSET, as libbpf reads them (%li:
// decimal, 0x hex, 0 octal), the whole string; nullopt if it is not one.
std::optional<uint64_t> parse_probe_number(std::string_view s);

// True for the section names of probe programs (with or without extras):
// uprobe, uretprobe, usdt and their .s forms.
bool is_probe_section(std::string_view section);

}  // namespace ember::attach
