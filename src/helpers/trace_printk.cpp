#include "helpers/trace_printk.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "helpers/user_memory.hpp"

namespace ember {
namespace {

constexpr size_t kMaxStringArg = 512;

std::string string_arg(uint64_t addr) {
  char buf[kMaxStringArg];
  long n = read_user_str(buf, addr, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n - 1)) : std::string("(efault)");
}

// An integer conversion with the flags and width the kernel accepts.
std::string integer(const std::string& flags_width, char conv, int longs, uint64_t v) {
  bool is_signed = conv == 'd' || conv == 'i';
  if (longs == 0)
    v = is_signed ? static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)))
                  : static_cast<uint32_t>(v);
  std::string spec = "%" + flags_width +
                     (is_signed     ? PRId64
                      : conv == 'u' ? PRIu64
                      : conv == 'x' ? PRIx64
                                    : PRIX64);
  char buf[96];
  std::snprintf(buf, sizeof buf, spec.c_str(), v);
  return buf;
}

// printk's %pI4 "1.2.3.4", %pi4 "001.002.003.004", %pI6 "2001:0db8:...",
// %pi6 the same without colons.
std::string ip_arg(uint64_t addr, char kind, bool v6) {
  uint8_t b[16];
  if (read_user(b, addr, v6 ? 16 : 4) != 0) return "(efault)";
  char buf[48];
  if (!v6) {
    std::snprintf(buf, sizeof buf, kind == 'i' ? "%03u.%03u.%03u.%03u" : "%u.%u.%u.%u", b[0], b[1], b[2],
                  b[3]);
    return buf;
  }
  std::string s;
  for (int i = 0; i < 16; i += 2) {
    if (i && kind == 'I') s += ':';
    std::snprintf(buf, sizeof buf, "%02x%02x", b[i], b[i + 1]);
    s += buf;
  }
  return s;
}

// The %p family; `p` points just after "p". Advances p past the modifiers.
std::optional<std::string> pointer(const char*& p, uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  if (*p == 'x' || *p == 'K' || *p == 'S' || *p == 's') {
    ++p;
    return std::string(buf);
  }
  if ((p[0] == 'k' || p[0] == 'u') && p[1] == 's') {
    p += 2;
    return string_arg(v);
  }
  if ((p[0] == 'i' || p[0] == 'I') && (p[1] == '4' || p[1] == '6')) {
    std::string s = ip_arg(v, p[0], p[1] == '6');
    p += 2;
    return s;
  }
  return std::string(buf);
}

}  // namespace

std::optional<std::string> format_bprintf(HelperCall&, const char* fmt, uint64_t size,
                                          std::span<const uint64_t> args) {
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
    std::string flags_width;
    while (*p == '0' || *p == '+' || *p == '-' || *p == ' ') flags_width += *p++;
    while (*p >= '0' && *p <= '9') flags_width += *p++;
    int longs = 0;
    while (*p == 'l' && longs < 2) ++longs, ++p;
    if (next >= args.size()) return std::nullopt;
    uint64_t v = args[next++];
    switch (*p) {
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X': out += integer(flags_width, *p, longs, v); break;
      case 'c': out += static_cast<char>(v); break;
      case 's': out += string_arg(v); break;
      case 'p': {
        ++p;
        auto s = pointer(p, v);
        if (!s) return std::nullopt;
        out += *s;
        --p;  // the loop's ++p moves past the conversion
        break;
      }
      default: return std::nullopt;
    }
  }
  return out;
}

}  // namespace ember
