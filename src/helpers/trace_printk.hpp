// The printf dialect of bpf_trace_printk, bpf_trace_vprintk and
// bpf_snprintf (kernel/bpf/helpers.c, bpf_bprintf_prepare).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "ember/helpers.hpp"

namespace ember {

// Formats `fmt` (which must be NUL-terminated within `size`) with `args`:
// %d %i %u %x %X with l/ll, optional flags "0 +-" and a width, %c, %%,
// %s, %p, %px, %pK, %pS/%ps (addresses), %pks/%pus (strings), %pI4/%pi4
// and %pI6/%pi6 (addresses read from memory). Strings and memory are read
// fault-safely. nullopt on a bad format or too few arguments.
std::optional<std::string> format_bprintf(HelperCall& call, const char* fmt, uint64_t size,
                                          std::span<const uint64_t> args);

}  // namespace ember
