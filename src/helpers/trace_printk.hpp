#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "ember/helpers.hpp"

namespace ember {

// Formats like bpf_trace_printk (kernel/bpf/helpers.c bpf_bprintf_prepare):
// the format must be NUL-terminated within `size`; %d %i %u %x %X %c %s %p
// with optional l/ll, %%, at most three arguments. nullopt on a bad format.
std::optional<std::string> format_trace_printk(HelperCall& call, const char* fmt, uint64_t size,
                                               std::array<uint64_t, 3> args);

}  // namespace ember
