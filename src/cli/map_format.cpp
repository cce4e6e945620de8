#include "cli/map_format.hpp"

#include <cinttypes>

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

std::string json_string(const std::string& v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + "\"";
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
                m.id(), std::string(map_type_name(s.type)).c_str(), json_string(s.name).c_str(), s.map_flags,
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

}  // namespace ember::cli
