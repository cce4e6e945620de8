// String helpers (kernel/bpf/helpers.c): bpf_snprintf, bpf_trace_vprintk,
// bpf_strtol, bpf_strtoul, bpf_strncmp.
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>

#include "ember/helpers.hpp"
#include "helpers/trace_printk.hpp"

namespace ember {
namespace {

constexpr ArgType N = ArgType::None;
constexpr ArgType A = ArgType::Anything;
constexpr uint32_t kMaxVarargs = 12;  // MAX_BPF_FUNC_VARARGS

uint64_t err(int e) { return static_cast<uint64_t>(static_cast<int64_t>(-e)); }

// The u64 argument array of snprintf/vprintk: a multiple of 8 bytes, at
// most 12 arguments.
bool varargs(HelperCall& c, uint64_t data, uint64_t len, std::span<const uint64_t>* out, const char* what) {
  if (len % 8 || len > kMaxVarargs * 8 || (len && !data)) return false;
  if (!c.check(data, len, false, what)) return false;
  *out = {reinterpret_cast<const uint64_t*>(data), len / 8};
  return true;
}

// bpf_snprintf(str, str_size, fmt, data, data_len): the bytes the whole
// output takes including its NUL, even when str_size cut it short.
uint64_t snprintf_helper(HelperCall& c, uint64_t str, uint64_t size, uint64_t fmt, uint64_t data,
                         uint64_t len) {
  std::span<const uint64_t> args;
  if (!varargs(c, data, len, &args, "bpf_snprintf data")) return err(EINVAL);
  if (size && !c.check(str, size, true, "bpf_snprintf buffer")) return err(EFAULT);
  auto text = format_bprintf(c, reinterpret_cast<const char*>(fmt), 4096, args);
  if (!text) return err(EINVAL);
  if (size) {
    size_t n = std::min<size_t>(text->size(), size - 1);
    std::memcpy(reinterpret_cast<char*>(str), text->data(), n);
    reinterpret_cast<char*>(str)[n] = '\0';
  }
  return text->size() + 1;
}

uint64_t trace_vprintk(HelperCall& c, uint64_t fmt, uint64_t fmt_size, uint64_t data, uint64_t len,
                       uint64_t) {
  std::span<const uint64_t> args;
  if (!varargs(c, data, len, &args, "bpf_trace_vprintk data")) return err(EINVAL);
  if (!c.check(fmt, fmt_size, false, "bpf_trace_vprintk format")) return err(EFAULT);
  auto text = format_bprintf(c, reinterpret_cast<const char*>(fmt), fmt_size, args);
  if (!text) return err(EINVAL);
  emit_trace_line(c, *text);
  return text->size();
}

// The kernel's _parse_integer rules: leading spaces, for strtol one '-',
// base 0 (auto: 0x hex, 0 octal), 8, 10 or 16; the characters consumed.
long parse_integer(const char* s, size_t n, uint64_t flags, bool allow_sign, int64_t* out) {
  unsigned base = static_cast<unsigned>(flags & 0x1F);
  if ((flags & ~0x1Full) || (base != 0 && base != 8 && base != 10 && base != 16) || n == 0) return -EINVAL;
  size_t i = 0;
  while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  bool neg = allow_sign && i < n && s[i] == '-';
  if (neg) ++i;
  if ((base == 0 || base == 16) && i + 1 < n && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X'))
    i += 2, base = 16;
  else if (base == 0)
    base = i < n && s[i] == '0' ? 8 : 10;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < n; ++i, ++digits) {
    int d = std::isdigit(static_cast<unsigned char>(s[i]))    ? s[i] - '0'
            : std::isxdigit(static_cast<unsigned char>(s[i])) ? std::tolower(s[i]) - 'a' + 10
                                                              : 99;
    if (d >= static_cast<int>(base)) break;
    if (v > (UINT64_MAX - d) / base) return -ERANGE;
    v = v * base + d;
  }
  if (!digits) return -EINVAL;
  if (allow_sign && v > (neg ? static_cast<uint64_t>(INT64_MAX) + 1 : static_cast<uint64_t>(INT64_MAX)))
    return -ERANGE;
  *out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return static_cast<long>(i);
}

uint64_t strto(HelperCall& c, uint64_t buf, uint64_t len, uint64_t flags, uint64_t res, bool is_signed) {
  if (!c.check(buf, len, false, "bpf_strtol buffer") || !c.check(res, 8, true, "bpf_strtol result"))
    return err(EFAULT);
  int64_t v = 0;
  long r = parse_integer(reinterpret_cast<const char*>(buf), len, flags, is_signed, &v);
  // On error the result is zeroed, as the kernel has done since "bpf: Zero
  // former ARG_PTR_TO_{LONG,INT} args in case of error" (6.12).
  if (r < 0) v = 0;
  std::memcpy(reinterpret_cast<void*>(res), &v, 8);
  return static_cast<uint64_t>(r);
}

uint64_t strtol(HelperCall& c, uint64_t buf, uint64_t len, uint64_t flags, uint64_t res, uint64_t) {
  return strto(c, buf, len, flags, res, true);
}
uint64_t strtoul(HelperCall& c, uint64_t buf, uint64_t len, uint64_t flags, uint64_t res, uint64_t) {
  return strto(c, buf, len, flags, res, false);
}

// bpf_strncmp(s1, s1_sz, s2): s2 is a constant string; -1, 0 or 1 like
// the kernel's strncmp.
uint64_t strncmp_helper(HelperCall& c, uint64_t s1, uint64_t s1_sz, uint64_t s2, uint64_t, uint64_t) {
  if (!c.check(s1, s1_sz, false, "bpf_strncmp s1")) return err(EFAULT);
  const char* a = reinterpret_cast<const char*>(s1);
  const char* b = reinterpret_cast<const char*>(s2);
  for (uint64_t i = 0; i < s1_sz; ++i) {
    if (!c.check(s2 + i, 1, false, "bpf_strncmp s2")) return err(EFAULT);
    unsigned char x = a[i], y = b[i];
    if (x != y) return x < y ? static_cast<uint64_t>(-1) : 1;
    if (!x) break;
  }
  return 0;
}

constexpr HelperDef kStringHelpers[] = {
    {105,
     "bpf_strtol",
     {RetType::Integer, {ArgType::PtrToMem, ArgType::ConstSize, A, ArgType::PtrToUninitMem, N}},
     strtol},
    {106,
     "bpf_strtoul",
     {RetType::Integer, {ArgType::PtrToMem, ArgType::ConstSize, A, ArgType::PtrToUninitMem, N}},
     strtoul},
    {165,
     "bpf_snprintf",
     {RetType::Integer,
      {ArgType::PtrToUninitMem, ArgType::ConstSizeOrZero, ArgType::PtrToConstStr, ArgType::PtrToMem,
       ArgType::ConstSizeOrZero}},
     snprintf_helper},
    {177,
     "bpf_trace_vprintk",
     {RetType::Integer,
      {ArgType::PtrToMem, ArgType::ConstSize, ArgType::PtrToMem, ArgType::ConstSizeOrZero, N}},
     trace_vprintk},
    {182,
     "bpf_strncmp",
     {RetType::Integer, {ArgType::PtrToMem, ArgType::ConstSize, ArgType::PtrToConstStr, N, N}},
     strncmp_helper},
};

}  // namespace

std::span<const HelperDef> string_helpers() { return kStringHelpers; }

}  // namespace ember
