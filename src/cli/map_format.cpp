#include "cli/map_format.hpp"

#include <cinttypes>
#include <cmath>
#include <cstring>

namespace ember::cli {
namespace {

std::string json_bytes(const uint8_t* p, size_t n) {
  std::string s = "[";
  char b[8];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%s\"0x%02x\"", i ? "," : "", p[i]);
    s += b;
  }
  return s + "]";
}

// The length of the UTF-8 sequence at s[i], or 0 if none starts there.
size_t utf8_length(std::string_view s, size_t i) {
  auto b = static_cast<uint8_t>(s[i]);
  size_t n = b < 0x80                 ? 1
             : b >= 0xc2 && b <= 0xdf ? 2
             : b >= 0xe0 && b <= 0xef ? 3
             : b >= 0xf0 && b <= 0xf4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<uint8_t>(s[i + k]) & 0xc0) != 0x80) return 0;
  return n;
}

// s quoted: `json` escapes as JSON does, else as C does (\xNN); printable
// ASCII and valid UTF-8 stay as they are.
std::string quote(std::string_view s, bool json) {
  std::string q = "\"";
  char b[8];
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t n = c >= 0x80 ? utf8_length(s, i) : 1;
    if (n > 1) {
      q.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '"': q += "\\\""; continue;
      case '\\': q += "\\\\"; continue;
      case '\n': q += "\\n"; continue;
      case '\t': q += "\\t"; continue;
      case '\r': q += "\\r"; continue;
      default: break;
    }
    if (c >= 0x20 && c < 0x7f) {
      q += static_cast<char>(c);
    } else {
      std::snprintf(b, sizeof b, json ? "\\u%04x" : "\\x%02x", c);
      q += b;
    }
  }
  return q + "\"";
}

bool keyless(const Map& m) { return m.spec().key_size == 0; }

// Calls fn(key, value) for each element, in get_next_key order.
template <class F>
size_t each_entry(const Map& m, F&& fn) {
  std::vector<uint8_t> key(m.spec().key_size), next(m.spec().key_size), value(m.host_value_size());
  size_t n = 0;
  if (keyless(m)) {
    if (m.lookup(nullptr, value.data()) == 0) fn(key, value), ++n;
    return n;
  }
  for (int r = m.next_key(nullptr, next.data()); r == 0; r = m.next_key(key.data(), next.data())) {
    key = next;
    if (m.lookup(key.data(), value.data()) != 0) continue;  // deleted meanwhile
    fn(key, value);
    ++n;
  }
  return n;
}

}  // namespace

std::string json_quote(std::string_view s) { return quote(s, true); }

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    if (i) s += i % 16 == 0 ? "\n" : i % 8 == 0 ? "  " : " ";
    std::snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

void print_map_show(std::FILE* out, const Map& m) {
  const MapSpec& s = m.spec();
  std::fprintf(out, "%u: %s  name %s  flags 0x%x\n", m.id(), std::string(map_type_name(s.type)).c_str(),
               s.name.c_str(), s.map_flags);
  std::fprintf(out, "\tkey %uB  value %uB  max_entries %u  memlock %zuB\n", s.key_size, s.value_size,
               s.max_entries, m.segment_bytes());
}

std::string map_show_json(const Map& m) {
  const MapSpec& s = m.spec();
  char b[512];
  std::snprintf(b, sizeof b,
                "{\"id\":%u,\"type\":\"%s\",\"name\":%s,\"flags\":%u,\"bytes_key\":%u,\"bytes_value\":%u,"
                "\"max_entries\":%u,\"bytes_memlock\":%zu}",
                m.id(), std::string(map_type_name(s.type)).c_str(), json_quote(s.name).c_str(), s.map_flags,
                s.key_size, s.value_size, s.max_entries, m.segment_bytes());
  return b;
}

void print_map_dump(std::FILE* out, const Map& m) {
  const MapSpec& s = m.spec();
  const size_t stride = (s.value_size + 7) / 8 * 8;
  size_t n = each_entry(m, [&](const std::vector<uint8_t>& k, const std::vector<uint8_t>& v) {
    if (m.percpu()) {
      std::fprintf(out, "key:\n%s\n", hex_bytes(k.data(), k.size()).c_str());
      for (uint32_t c = 0; c < m.ncpus(); ++c)
        std::fprintf(out, "value (CPU %02u): %s\n", c,
                     hex_bytes(v.data() + c * stride, s.value_size).c_str());
      return;
    }
    // bpftool's print_entry_plain: long keys or values go on their own lines.
    bool break_names = s.key_size > 16 || s.value_size > 16;
    bool single_line = s.key_size + s.value_size <= 24 && !break_names;
    std::fprintf(out, "key:%c%s%svalue:%c%s\n", break_names ? '\n' : ' ',
                 hex_bytes(k.data(), k.size()).c_str(), single_line ? "  " : "\n", break_names ? '\n' : ' ',
                 hex_bytes(v.data(), s.value_size).c_str());
  });
  std::fprintf(out, "Found %zu element%s\n", n, n == 1 ? "" : "s");
}

std::string map_dump_json(const Map& m) {
  const MapSpec& s = m.spec();
  const size_t stride = (s.value_size + 7) / 8 * 8;
  std::string out = "[";
  bool first = true;
  each_entry(m, [&](const std::vector<uint8_t>& k, const std::vector<uint8_t>& v) {
    out += first ? "{" : ",{";
    first = false;
    out += "\"key\":" + json_bytes(k.data(), k.size());
    if (m.percpu()) {
      out += ",\"values\":[";
      for (uint32_t c = 0; c < m.ncpus(); ++c)
        out += (c ? ",{\"cpu\":" : "{\"cpu\":") + std::to_string(c) +
               ",\"value\":" + json_bytes(v.data() + c * stride, s.value_size) + "}";
      out += "]";
    } else {
      out += ",\"value\":" + json_bytes(v.data(), s.value_size);
    }
    out += "}";
  });
  return out + "]";
}

namespace {

// Walks a value along its BTF type, appending text or JSON to `out`. Every
// read is checked against the bytes (BTF from a file is untrusted, and a
// record may be short); depth is bounded although the parser already
// refuses types that contain themselves.
class BtfValuePrinter {
 public:
  BtfValuePrinter(const Btf& btf, std::span<const uint8_t> bytes, bool json)
      : btf_(btf), bytes_(bytes), json_(json) {}

  // The value of type `id` at bit `bit` of the bytes; `bitfield` bits wide
  // if a bitfield member (0 otherwise).
  void value(uint32_t id, uint64_t bit, uint32_t bitfield, int depth) {
    id = btf_.resolve(id);
    const BtfType* t = btf_.type(id);
    if (!t || depth > kMaxDepth) return unknown();
    switch (t->kind) {
      case BtfKind::Int: return integer(*t, bit, bitfield);
      case BtfKind::Enum:
      case BtfKind::Enum64: return enumerator(id, *t, bit, bitfield);
      case BtfKind::Ptr: return pointer(bit);
      case BtfKind::Float: return floating(*t, bit);
      case BtfKind::Array: return array(*t, bit, depth);
      case BtfKind::Struct:
      case BtfKind::Union: return record(id, bit, depth, true);
      case BtfKind::Var: return value(t->type, bit, 0, depth + 1);
      case BtfKind::Datasec: return datasec(id, bit, depth);
      default: return unknown();  // void, FWD, FUNC...: nothing to print
    }
  }

  // A struct's or union's members; braces false leaves out the outer {}
  // (text only).
  void record(uint32_t id, uint64_t bit, int depth, bool braces) {
    if (json_ || braces) out_ += '{';
    bool first = true;
    members(id, bit, depth, first);
    if (json_ || braces) out_ += '}';
  }

  std::string take() { return std::move(out_); }

 private:
  static constexpr int kMaxDepth = 64;

  void unknown() { out_ += json_ ? "null" : "?"; }

  // nbits (1..64) little-endian bits from bit `bit`; false if outside.
  bool bits(uint64_t bit, uint32_t nbits, uint64_t* v) const {
    if (nbits == 0 || nbits > 64 || bit + nbits > uint64_t{bytes_.size()} * 8) return false;
    uint64_t x = 0;
    if (bit % 8 == 0 && nbits % 8 == 0) {
      std::memcpy(&x, bytes_.data() + bit / 8, nbits / 8);
    } else {
      for (uint32_t i = 0; i < nbits; ++i)
        x |= uint64_t{(bytes_[(bit + i) / 8] >> ((bit + i) % 8)) & 1u} << i;
    }
    *v = x;
    return true;
  }

  static int64_t sign_extend(uint64_t v, uint32_t nbits) {
    return nbits >= 64 ? static_cast<int64_t>(v) : static_cast<int64_t>(v << (64 - nbits)) >> (64 - nbits);
  }

  void number(const char* fmt, auto v) {
    char b[32];
    std::snprintf(b, sizeof b, fmt, v);
    out_ += b;
  }

  void integer(const BtfType& t, uint64_t bit, uint32_t bitfield) {
    uint32_t nbits = bitfield ? bitfield : t.int_bits;
    if (!bitfield) bit += t.int_offset;
    uint64_t v = 0;
    if (nbits > 64) return wide(bit, nbits);
    if (!bits(bit, nbits, &v)) return unknown();
    if (t.int_encoding & btf_int::kBool)
      out_ += v ? "true" : "false";
    else if (t.int_encoding & btf_int::kSigned)
      number("%lld", static_cast<long long>(sign_extend(v, nbits)));
    else
      number("%llu", static_cast<unsigned long long>(v));
  }

  // An __int128 (or a wider bitfield): hex, most significant byte first.
  void wide(uint64_t bit, uint32_t nbits) {
    if (bit % 8 != 0 || nbits % 8 != 0 || bit / 8 + nbits / 8 > bytes_.size()) return unknown();
    std::string h = "0x";
    char b[4];
    bool lead = true;
    for (size_t i = nbits / 8; i-- > 0;) {
      uint8_t byte = bytes_[bit / 8 + i];
      if (lead && byte == 0 && i > 0) continue;
      std::snprintf(b, sizeof b, lead ? "%x" : "%02x", byte);
      h += b;
      lead = false;
    }
    out_ += json_ ? quote(h, true) : h;
  }

  void enumerator(uint32_t id, const BtfType& t, uint64_t bit, uint32_t bitfield) {
    uint32_t nbits = bitfield ? bitfield : t.size * 8;
    uint64_t v = 0;
    if (!bits(bit, nbits, &v)) return unknown();
    int64_t value = t.kflag ? sign_extend(v, nbits) : static_cast<int64_t>(v);
    for (const BtfEnumValue& e : btf_.enum_values(id)) {
      if (e.value != value) continue;
      out_ += json_ ? quote(e.name, true) : std::string(e.name);
      return;
    }
    if (t.kflag)
      number("%lld", static_cast<long long>(value));
    else
      number("%llu", static_cast<unsigned long long>(v));
  }

  void pointer(uint64_t bit) {
    uint64_t v = 0;
    if (!bits(bit, 64, &v)) return unknown();
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    out_ += json_ ? quote(b, true) : std::string(b);
  }

  void floating(const BtfType& t, uint64_t bit) {
    uint64_t v = 0;
    if ((t.size != 4 && t.size != 8) || bit % 8 != 0) return wide(bit, t.size * 8);
    if (!bits(bit, t.size * 8, &v)) return unknown();
    double d = 0;
    if (t.size == 4) {
      float f = 0;
      uint32_t u = static_cast<uint32_t>(v);
      std::memcpy(&f, &u, 4);
      d = f;
    } else {
      std::memcpy(&d, &v, 8);
    }
    if (json_ && !std::isfinite(d)) return unknown();  // JSON has no NaN or infinity
    number("%g", d);
  }

  // `char` (the name clang gives it; BTF_INT_CHAR where an encoder sets it):
  // arrays of it are strings. `unsigned char` (__u8) arrays stay numbers.
  bool is_char(uint32_t id) const {
    const BtfType* t = btf_.type(btf_.resolve(id));
    return t && t->kind == BtfKind::Int && t->size == 1 &&
           ((t->int_encoding & btf_int::kChar) || t->name == "char" || t->name == "signed char");
  }

  void array(const BtfType& t, uint64_t bit, int depth) {
    auto elem_size = btf_.size_of(t.array_elem);
    if (!elem_size || bit % 8 != 0) return unknown();
    if (is_char(t.array_elem)) {
      size_t start = bit / 8;
      if (start + t.array_nelems > bytes_.size()) return unknown();
      std::string_view s(reinterpret_cast<const char*>(bytes_.data()) + start, t.array_nelems);
      return void(out_ += quote(s.substr(0, s.find('\0')), json_));
    }
    out_ += '[';
    for (uint32_t i = 0; i < t.array_nelems; ++i) {
      if (i) out_ += ',';
      value(t.array_elem, bit + uint64_t{i} * *elem_size * 8, 0, depth + 1);
    }
    out_ += ']';
  }

  void name(std::string_view n, bool& first) {
    if (!first) out_ += json_ ? "," : " ";
    first = false;
    if (json_)
      out_ += quote(n, true) + ":";
    else
      out_ += std::string(n) + "=";
  }

  void members(uint32_t id, uint64_t bit, int depth, bool& first) {
    if (depth > kMaxDepth) return;
    for (const BtfMember& m : btf_.members(id)) {
      uint32_t mt = btf_.resolve(m.type);
      BtfKind k = btf_.kind(mt);
      if (m.name.empty() && (k == BtfKind::Struct || k == BtfKind::Union)) {
        members(mt, bit + m.bit_offset, depth + 1, first);  // C names these members directly
        continue;
      }
      name(m.name, first);
      value(m.type, bit + m.bit_offset, m.bitfield_size, depth + 1);
    }
  }

  void datasec(uint32_t id, uint64_t bit, int depth) {
    out_ += '{';
    bool first = true;
    for (const BtfVarSecinfo& v : btf_.secinfos(id)) {
      name(btf_.name(v.type), first);
      value(v.type, bit + uint64_t{v.offset} * 8, 0, depth + 1);
    }
    out_ += '}';
  }

  const Btf& btf_;
  std::span<const uint8_t> bytes_;
  bool json_;
  std::string out_;
};

}  // namespace

std::string format_btf_value(const Btf& btf, uint32_t type_id, std::span<const uint8_t> bytes,
                             BtfValueFormat format) {
  BtfValuePrinter p(btf, bytes, format.json);
  BtfKind k = btf.kind(btf.resolve(type_id));
  if (!format.json && !format.braces && (k == BtfKind::Struct || k == BtfKind::Union))
    p.record(btf.resolve(type_id), 0, 0, false);
  else
    p.value(type_id, 0, 0, 0);
  return p.take();
}

}  // namespace ember::cli
