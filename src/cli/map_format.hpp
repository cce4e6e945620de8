// Maps printed the way bpftool prints them: `map show` lines, `map dump`
// entries (hex key and value, per-CPU values one line per CPU, "Found N
// elements"), and the same as JSON for -j; and values printed as their BTF
// type describes them (`ember trace`'s events).
#pragma once

#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/btf.hpp"
#include "ember/maps.hpp"

namespace ember::cli {

// bpftool's fprint_hex: bytes separated by spaces, a wider gap every 8 and
// a new line every 16.
std::string hex_bytes(const uint8_t* p, size_t n);

void print_map_show(std::FILE* out, const Map& m);
std::string map_show_json(const Map& m);

// Every element of the map (queues and stacks are peeked, not drained).
void print_map_dump(std::FILE* out, const Map& m);
std::string map_dump_json(const Map& m);

// A JSON string literal: quotes, backslashes and control characters escaped,
// valid UTF-8 kept, any other byte as \u00XX.
std::string json_quote(std::string_view s);

// A value printed as its BTF type says (what bpftool's btf_dumper does,
// in Ember's own spelling):
//   text: {pid=1 comm="bash" args=[1,2,3] kind=OPEN ptr=0x7f00}
//   json: {"pid":1,"comm":"bash","args":[1,2,3],"kind":"OPEN","ptr":"0x7f00"}
// Integers in decimal, signed or not as BTF says (u64 too: only pointers
// are printed in hex); bools true/false; arrays of `char` as strings cut at
// the first NUL (escaped where not printable); enums by name, the number
// when no name matches; bitfields by value; floats with %g; the members of
// an anonymous struct or union inline, as C names them. 128-bit integers
// print as hex. Whatever does not fit in `bytes` prints as ? (JSON null),
// so `bytes` may be short without reading past them.
struct BtfValueFormat {
  bool json = false;
  bool braces = true;  // text: false leaves out a struct's outer {} (one event per line)
};
std::string format_btf_value(const Btf& btf, uint32_t type_id, std::span<const uint8_t> bytes,
                             BtfValueFormat format = {});

}  // namespace ember::cli
