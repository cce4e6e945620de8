#include "helpers/trace_printk.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ember {
namespace {

// Reads a NUL-terminated string argument for %s, bounded and checked.
std::string string_arg(HelperCall& call, uint64_t addr) {
  std::string s;
  for (uint64_t i = 0; i < 256; ++i) {
    if (!call.check(addr + i, 1, false, "bpf_trace_printk %s argument")) {
      call.fault.clear();  // the kernel prints what it can read, not a fault
      break;
    }
    char ch = *reinterpret_cast<const char*>(addr + i);
    if (!ch) break;
    s += ch;
  }
  return s;
}

std::string integer(char conv, int longs, uint64_t v) {
  char buf[32];
  bool is_signed = conv == 'd' || conv == 'i';
  if (longs == 0) v = is_signed ? static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)))
                                : static_cast<uint32_t>(v);
  if (is_signed) std::snprintf(buf, sizeof buf, "%" PRId64, static_cast<int64_t>(v));
  else if (conv == 'u') std::snprintf(buf, sizeof buf, "%" PRIu64, v);
  else if (conv == 'x') std::snprintf(buf, sizeof buf, "%" PRIx64, v);
  else std::snprintf(buf, sizeof buf, "%" PRIX64, v);
  return buf;
}

}  // namespace

std::optional<std::string> format_trace_printk(HelperCall& call, const char* fmt, uint64_t size,
                                               std::array<uint64_t, 3> args) {
  if (size == 0 || std::memchr(fmt, 0, size) == nullptr) return std::nullopt;
  std::string out;
  size_t next = 0;
  for (const char* p = fmt; *p; ++p) {
    if (*p != '%') {
      out += *p;
      continue;
    }
    ++p;
    if (*p == '%') {
      out += '%';
      continue;
    }
    int longs = 0;
    while (*p == 'l' && longs < 2) ++longs, ++p;
    if (next >= args.size()) return std::nullopt;
    uint64_t v = args[next++];
    switch (*p) {
      case 'd': case 'i': case 'u': case 'x': case 'X':
        out += integer(*p, longs, v);
        break;
      case 'c':
        out += static_cast<char>(v);
        break;
      case 'p':
        out += "0x" + integer('x', 2, v);
        break;
      case 's':
        out += string_arg(call, v);
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

}  // namespace ember
