// Which probe goes where: the probe programs of a loaded object bound to
// their probe specs (their libbpf section names, or `ember trace -e`
// arguments for plain SEC("uprobe") programs), each binary resolved and each
// symbol or USDT note found. The controller binds before it starts or
// touches the target (every error then, none later); the agent binds again
// inside the target and attaches what it found.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "attach/probe_spec.hpp"
#include "attach/usdt.hpp"
#include "ember/result.hpp"
#include "ember/runtime.hpp"

namespace ember::attach {

struct BoundProbe {
  ProbeSpec spec;
  const Prog* prog = nullptr;
  std::string binary;        // resolved, absolute
  uint64_t file_offset = 0;  // uprobe, uretprobe: where in `binary`
  // The symbol is an STT_GNU_IFUNC (strlen, memcpy... in glibc): file_offset
  // is its resolver's; the probe goes on the implementation the resolver
  // picks in the target (ifunc_implementation in agent.cpp).
  bool ifunc = false;
  std::vector<UsdtNote> usdt_sites;  // usdt: every note PROVIDER:NAME of `binary`
  std::string describe() const;      // "uprobe:/usr/lib/.../libc.so.6:malloc (prog on_malloc)"
};

// Binds every probe program of `obj` (a loaded object) and every -e spec
// in `cli_specs`, resolving names as process `pid` (0: this one) would.
// Errors: an -e spec that does not parse or names no program, a plain
// SEC("uprobe") program that no -e binds, no probe program at all, a
// binary, symbol or USDT probe that does not exist; each names what was
// asked. All errors, one a line.
Result<std::vector<BoundProbe>> bind_probes(const Object& obj, const std::vector<std::string>& cli_specs,
                                            pid_t pid = 0);

}  // namespace ember::attach
